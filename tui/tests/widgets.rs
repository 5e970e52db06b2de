//! Widgets rendered into ratatui buffers, the UI state machine, and the
//! recorded session (snapshots, packets, headers), on bundled scenarios.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::widgets::Widget;
use scenarios::RunOptions;
use tui::app::{Action, App, Pane, TableChoice, action_for_key};
use tui::session::PacketOutcome;
use tui::snap::TableKind;
use tui::ui::{self, View};
use tui::{Session, buffer_text};

fn scenario(name: &str) -> scenarios::Scenario {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/files")
        .join(name);
    scenarios::load_file(&p.to_string_lossy()).expect("bundled scenario loads")
}

fn session(name: &str) -> Session {
    Session::run(&scenario(name), &RunOptions::default())
}

fn render(w: impl Widget, width: u16, height: u16) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
    w.render(buf.area, &mut buf);
    buf
}

/// The rows of a buffer whose text contains `needle`.
fn rows_with(buf: &Buffer, needle: &str) -> Vec<u16> {
    buffer_text(buf)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i as u16)
        .collect()
}

fn row_style_has(buf: &Buffer, row: u16, f: impl Fn(&ratatui::buffer::Cell) -> bool) -> bool {
    (0..buf.area.width).all(|x| f(&buf[(x, row)]))
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// The VXLAN ping (#1 of the seed scenario) at a step (1-based).
fn vxlan_at(step: usize) -> (Session, App) {
    let mut s = session("seed-vxlan-routed.ron");
    let mut app = App::new(&s);
    select(&mut s, &mut app, 1, step - 1);
    (s, app)
}

fn select(s: &mut Session, app: &mut App, packet: u64, step: usize) {
    app.update(s, Action::Select { packet, step });
    assert_eq!(app.message(), None, "packet #{packet} is there");
    let p = app.packet().unwrap();
    assert_eq!(s.packets[p].id.0, packet);
}

#[test]
fn packet_list_shows_time_id_summary_and_outcome() {
    let (s, app) = vxlan_at(1);
    let buf = render(ui::PacketList(View::new(&s, &app)), 100, 6);
    let text = buffer_text(&buf);
    let first = text.lines().nth(1).unwrap();
    assert!(first.starts_with("▶ 1.000000000 #1"), "{text}");
    assert!(
        first.contains("ICMP 172.16.1.1 > 172.16.2.1 echo request"),
        "{text}"
    );
    assert!(first.contains("delivered node2:test3"), "{text}");
    assert!(
        text.contains("ARP who-has 169.254.1.1 tell 172.16.1.1"),
        "{text}"
    );
    assert!(row_style_has(&buf, 1, |c| c
        .modifier
        .contains(Modifier::REVERSED)));
}

#[test]
fn steps_are_numbered_grouped_and_the_current_one_marked() {
    let (s, app) = vxlan_at(13);
    let buf = render(ui::StepList(View::new(&s, &app)), 120, 40);
    let text = buffer_text(&buf);
    for header in [
        "[node1:test3]",
        "[node1]",
        "[lan]",
        "[node2]",
        "[node2:test3]",
    ] {
        assert!(
            text.lines().any(|l| l == header),
            "missing {header}:\n{text}"
        );
    }
    let cur = rows_with(&buf, "▶");
    assert_eq!(cur.len(), 1, "{text}");
    let line = text.lines().nth(cur[0] as usize).unwrap();
    assert!(
        line.contains(" 13. ") && line.contains("vxlan.1: VXLAN encapsulate vni 1"),
        "{line}"
    );
    assert!(row_style_has(&buf, cur[0], |c| c
        .modifier
        .contains(Modifier::REVERSED)));
    // The sentences are the trace's own.
    let topo = s.topo();
    let rec = &s.records[s.packets[0].steps[6] as usize];
    assert!(text.contains(&sim_core::trace::sentence(topo, &rec.event)));
}

#[test]
fn tables_pane_highlights_the_matched_route() {
    // Step 7: node1's route lookup for 172.16.2.1.
    let (s, app) = vxlan_at(7);
    let v = View::new(&s, &app);
    assert_eq!(v.table_kind(), TableKind::Routes);
    let buf = render(ui::TablesPane(v), 90, 12);
    let text = buffer_text(&buf);
    assert!(text.contains("Tables node1"), "{text}");
    assert!(text.contains("$ ip route show table all"), "{text}");
    let hits = rows_with(&buf, "▶");
    assert_eq!(hits.len(), 1, "{text}");
    let line = text.lines().nth(hits[0] as usize).unwrap();
    assert_eq!(line, "▶ 172.16.2.0/24 via 172.16.2.0 dev vxlan.1 onlink");
    assert!(row_style_has(&buf, hits[0], |c| c.bg == Color::Yellow));
    // Only that row.
    for row in 1..buf.area.height {
        if row != hits[0] {
            assert!(!row_style_has(&buf, row, |c| c.bg == Color::Yellow));
        }
    }
}

#[test]
fn tables_pane_marks_neighbour_and_fdb_entries() {
    let (s, app) = vxlan_at(10);
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(
        text.contains("▶ 172.16.2.0 dev vxlan.1 lladdr 2a:c5:85:90:a7:65 PERMANENT"),
        "{text}"
    );
    let (s, app) = vxlan_at(11);
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(
        text.contains("▶ 2a:c5:85:90:a7:65 dev vxlan.1 dst 192.168.56.2 self permanent"),
        "{text}"
    );
    // Step 13 (encapsulation) consulted no table: the FDB entry of step 11 stays marked.
    let (s, app) = vxlan_at(13);
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(text.contains("▶ used at step 11"), "{text}");
    // Step 9: the FORWARD rule.
    let (s, app) = vxlan_at(9);
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(
        text.contains("▶ -A FORWARD -d 172.16.0.0/16 -j ACCEPT"),
        "{text}"
    );
}

#[test]
fn a_drop_shows_its_reason_and_the_reverse_route() {
    let s = session("neg-rp-filter-strict.ron");
    let mut app = App::new(&s);
    let mut s = s;
    app.update(&mut s, Action::NextDrop);
    let p = &s.packets[app.packet().unwrap()];
    assert_eq!(p.id.0, 1);
    assert!(matches!(p.outcome, PacketOutcome::Dropped { .. }));
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 12));
    assert!(
        text.contains("DROP at node2: reverse path filter (rp_filter)"),
        "{text}"
    );
    assert!(
        text.contains("▶ 172.16.1.0/24 via 10.9.0.1 dev eth1"),
        "{text}"
    );
    let steps = buffer_text(&render(ui::StepList(View::new(&s, &app)), 90, 20));
    assert!(
        steps.contains("▶  14. DROP: reverse path filter (rp_filter)"),
        "{steps}"
    );
}

#[test]
fn path_strip_shows_outer_and_inner_headers_when_encapsulated() {
    let (s, app) = vxlan_at(13);
    let text = buffer_text(&render(ui::PathStrip(View::new(&s, &app)), 140, 4));
    assert!(
        text.contains("node1:test3 (veth3) → ▶ node1 (br-veth3 [vxlan.1] eth0) → lan → node2 (eth0 vxlan.1 br-veth3) → node2:test3 (veth3)"),
        "{text}"
    );
    assert!(
        text.contains("outer   IP 192.168.56.6.42934 > 192.168.56.2.8472: VXLAN, vni 1"),
        "{text}"
    );
    assert!(
        text.contains("inner   IP 172.16.1.1 > 172.16.2.1: ICMP echo request, id 4096, seq 1, length 64 (ttl 63)"),
        "{text}"
    );
    // Before encapsulation and after decapsulation: one header line.
    let (s, app) = vxlan_at(5);
    let text = buffer_text(&render(ui::PathStrip(View::new(&s, &app)), 140, 4));
    assert!(
        text.contains("headers IP 172.16.1.1 > 172.16.2.1"),
        "{text}"
    );
    assert!(!text.contains("outer"), "{text}");
    let (s, app) = vxlan_at(24);
    let text = buffer_text(&render(ui::PathStrip(View::new(&s, &app)), 140, 4));
    assert!(!text.contains("outer"), "{text}");
}

#[test]
fn tables_are_as_they_were_at_the_step() {
    // node1:test3's neighbour table: empty when ping's first packet looks
    // up the gateway (a miss), holding the gateway when the reply comes back.
    let (mut s, mut app) = vxlan_at(3);
    app.update(&mut s, Action::CycleTable); // routes
    app.update(&mut s, Action::CycleTable); // rules
    app.update(&mut s, Action::CycleTable); // neigh
    assert_eq!(app.table(), TableChoice::Pinned(TableKind::Neigh));
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(text.contains("Tables node1:test3"), "{text}");
    assert!(text.contains("(empty)"), "{text}");
    select(&mut s, &mut app, 8, 1000); // the echo reply's last step, in node1:test3
    let text = buffer_text(&render(ui::TablesPane(View::new(&s, &app)), 90, 10));
    assert!(text.contains("Tables node1:test3"), "{text}");
    assert!(text.contains("169.254.1.1 dev veth3 lladdr"), "{text}");
}

#[test]
fn stepping_back_and_forth_runs_nothing_and_gives_the_same_tables() {
    let (mut s, mut app) = vxlan_at(1);
    let events = s.events();
    let n = s.packets[0].steps.len();
    let mut forward = Vec::new();
    for _ in 0..n {
        forward.push(tui::render_to_string(&s, &app, 100, 30));
        app.update(&mut s, Action::NextStep);
    }
    app.update(&mut s, Action::NextStep);
    assert_eq!(app.step(), n - 1, "stops at the last step");
    for i in (0..n).rev() {
        assert_eq!(
            tui::render_to_string(&s, &app, 100, 30),
            forward[i],
            "step {}",
            i + 1
        );
        app.update(&mut s, Action::PrevStep);
    }
    assert_eq!(app.step(), 0);
    assert_eq!(s.events(), events, "no event ran");
}

#[test]
fn keys_map_to_actions() {
    let (mut s, mut app) = vxlan_at(1);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(action_for_key(&app, ctrl_c), Some(Action::Quit));
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char('q'))),
        Some(Action::Quit)
    );
    assert_eq!(
        action_for_key(&app, key(KeyCode::Down)),
        Some(Action::NextPacket)
    );
    assert_eq!(
        action_for_key(&app, key(KeyCode::Right)),
        Some(Action::NextStep)
    );
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char('p'))),
        Some(Action::PrevStep)
    );
    assert_eq!(
        action_for_key(&app, key(KeyCode::End)),
        Some(Action::LastStep)
    );
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char(' '))),
        Some(Action::TogglePlay)
    );
    app.update(&mut s, Action::FocusNext);
    assert_eq!(app.focus(), Pane::Steps);
    assert_eq!(
        action_for_key(&app, key(KeyCode::Down)),
        Some(Action::NextStep)
    );
    app.update(&mut s, Action::FocusNext);
    assert_eq!(app.focus(), Pane::Tables);
    assert_eq!(
        action_for_key(&app, key(KeyCode::Down)),
        Some(Action::ScrollTables(1))
    );
    app.update(&mut s, Action::OpenFilter);
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char('q'))),
        Some(Action::FilterChar('q'))
    );
    assert_eq!(action_for_key(&app, ctrl_c), Some(Action::Quit));
    app.update(&mut s, Action::CancelFilter);
    app.update(&mut s, Action::ToggleHelp);
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char('x'))),
        Some(Action::ToggleHelp)
    );
}

#[test]
fn filters_select_packets() {
    let mut s = session("seed-vxlan-routed.ron");
    let mut app = App::new(&s);
    let all = app.filtered().len();
    let filter = |app: &mut App, s: &mut Session, f: &str| {
        app.update(s, Action::OpenFilter);
        while app.editing().is_some_and(|e| !e.is_empty()) {
            app.update(s, Action::FilterBackspace);
        }
        for c in f.chars() {
            app.update(s, Action::FilterChar(c));
        }
        app.update(s, Action::ApplyFilter);
        app.filtered()
            .iter()
            .map(|&p| s.packets[p].id.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(filter(&mut app, &mut s, "proto:icmp"), vec![1, 8]);
    assert_eq!(
        filter(&mut app, &mut s, "proto:icmp addr:172.16.2.1"),
        vec![1, 8]
    );
    assert_eq!(
        filter(&mut app, &mut s, "proto:icmp ns:node2:test3"),
        vec![1, 8]
    );
    assert_eq!(
        filter(&mut app, &mut s, "proto:arp host:node2 outcome:answered"),
        vec![9]
    );
    assert_eq!(
        filter(&mut app, &mut s, "outcome:dropped"),
        Vec::<u64>::new()
    );
    assert!(app.message().unwrap().contains("no packet matches"));
    app.update(&mut s, Action::ClearFilter);
    assert_eq!(app.filtered().len(), all);
}

#[test]
fn next_drop_finds_the_dropped_packet() {
    let mut s = session("neg-forwarding-off.ron");
    let mut app = App::new(&s);
    app.update(&mut s, Action::NextDrop);
    let p = &s.packets[app.packet().unwrap()];
    let rec = &s.records[p.steps[app.step()] as usize];
    assert!(matches!(
        rec.event,
        sim_core::trace::TraceEvent::Drop { .. }
    ));
}

#[test]
fn playing_from_before_time_zero_records_the_same_run() {
    let sc = scenario("seed-vxlan-routed.ron");
    let full = Session::run(&sc, &RunOptions::default());
    let mut s = Session::new(&sc, &RunOptions::default());
    let mut app = App::new(&s);
    assert!(s.packets.is_empty());
    let screen = tui::render_to_string(&s, &app, 80, 24);
    assert!(screen.contains("press space to play"), "{screen}");
    app.update(&mut s, Action::TogglePlay);
    assert!(app.playing());
    let mut ticks = 0;
    while app.playing() {
        app.update(&mut s, Action::Tick);
        ticks += 1;
        assert!(ticks < 10_000);
    }
    assert!(ticks > 3, "played in several instants");
    assert_eq!(s.records, full.records);
    assert_eq!(app.packet(), Some(0));
    app.update(&mut s, Action::TogglePlay);
    assert!(!app.playing());
    assert!(app.message().unwrap().contains("complete"));
}

#[test]
fn never_panics_on_any_small_size() {
    let (mut s, mut app) = vxlan_at(13);
    for help in [false, true] {
        if help {
            app.update(&mut s, Action::ToggleHelp);
        }
        assert_eq!(app.help_shown(), help);
        for w in 0..=90 {
            for h in 0..=26 {
                let text = tui::render_to_string(&s, &app, w, h);
                if (w < ui::MIN_WIDTH || h < ui::MIN_HEIGHT) && w >= 30 && h >= 4 {
                    assert!(text.contains("too small"), "{w}x{h}: {text}");
                }
            }
        }
    }
}

#[test]
fn graph_draws_the_path() {
    let sc = scenario("seed-vxlan-routed.ron");
    let dot = tui::graph::scenario_graph(&sc, &RunOptions::default(), Some(1), false).unwrap();
    assert!(dot.starts_with("digraph podpath {"));
    for edge in [
        "\"node1:test3:veth3\" -> \"node1:br-veth3\" [color=red",
        "\"node1:eth0\" -> \"lan\" [color=red",
        "\"lan\" -> \"node2:eth0\" [color=red",
        "\"node1:vxlan.1\" -> \"node2:vxlan.1\" [color=red, style=dashed",
    ] {
        assert!(dot.contains(edge), "missing {edge}:\n{dot}");
    }
    assert!(dot.contains("delivered at node2:test3 to ICMP echo (kernel)"));
    let err = tui::graph::scenario_graph(&sc, &RunOptions::default(), Some(999), false);
    assert!(err.unwrap_err().contains("no packet #999"));
}

#[test]
fn command_log_keys_and_cursor() {
    let (mut s, mut app) = vxlan_at(1);
    assert_eq!(
        action_for_key(&app, key(KeyCode::Char('c'))),
        Some(Action::ToggleCommands)
    );
    app.update(&mut s, Action::ToggleCommands);
    assert!(app.commands_shown());
    for (k, a) in [
        (KeyCode::Down, Action::MoveCommand(1)),
        (KeyCode::Char('k'), Action::MoveCommand(-1)),
        (KeyCode::PageDown, Action::MoveCommand(10)),
        (KeyCode::End, Action::LastCommand),
        (KeyCode::Home, Action::FirstCommand),
        (KeyCode::Right, Action::ScrollBatch(10)),
        (KeyCode::Left, Action::ScrollBatch(-10)),
        (KeyCode::Esc, Action::ToggleCommands),
        (KeyCode::Char('c'), Action::ToggleCommands),
        (KeyCode::Char('q'), Action::Quit),
    ] {
        assert_eq!(action_for_key(&app, key(k)), Some(a), "{k:?}");
    }
    // The cursor stays within the log.
    let n = s.commands().len();
    assert!(n > 1);
    app.update(&mut s, Action::MoveCommand(-5));
    assert_eq!(app.command(), 0);
    app.update(&mut s, Action::LastCommand);
    assert_eq!(app.command(), n - 1);
    app.update(&mut s, Action::MoveCommand(1000));
    assert_eq!(app.command(), n - 1);
    let text = tui::render_to_string(&s, &app, 100, 30);
    assert!(text.contains(&format!("Commands {n}/{n}")), "{text}");
    // A scenario without batches has nothing to expand.
    assert!(!s.batches_expanded());
    assert!(s.batch(app.command()).is_none());
    app.update(&mut s, Action::ToggleCommands);
    assert!(!app.commands_shown());
}
