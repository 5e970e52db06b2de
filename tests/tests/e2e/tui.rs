//! The terminal UI: whole screens as insta snapshots (80x24 and 160x48) on
//! a test backend; the real binary in a pseudo-terminal (tmux) with keys
//! pressed and the screen read back; `podpath graph` rendered to SVG.
//!
//! The tmux and Graphviz tests skip (saying so) when the tool is missing,
//! unless `PODPATH_REQUIRE_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use scenarios::RunOptions;
use tui::app::Action;
use tui::{App, Session};

use crate::{podpath, root};

fn rel(name: &str) -> String {
    format!("../scenarios/files/{name}")
}

fn session(name: &str) -> Session {
    let sc = scenarios::load_file(&rel(name)).expect("bundled scenario loads");
    Session::run(&sc, &RunOptions::default())
}

fn screen(s: &Session, app: &App, w: u16, h: u16) -> String {
    tui::render_to_string(s, app, w, h)
}

/// The UI with packet `id` selected at its step `step` (1-based).
fn at(s: &mut Session, id: u64, step: usize) -> App {
    let mut app = App::new(s);
    app.update(
        s,
        Action::Select {
            packet: id,
            step: step - 1,
        },
    );
    assert_eq!(app.message(), None);
    app
}

#[test]
fn screens_vxlan_ping_at_its_encapsulation_step() {
    let mut s = session("seed-vxlan-routed.ron");
    let app = at(&mut s, 1, 13);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        assert!(text.contains("VXLAN encapsulate vni 1"));
        assert!(text.contains("outer   IP 192.168.56.6.42934 > 192.168.56.2.8472: VXLAN, vni 1"));
        insta::assert_snapshot!(format!("tui-vxlan-encap-{w}x{h}"), text);
    }
}

#[test]
fn screens_dropped_packet_with_its_reason() {
    let mut s = session("neg-rp-filter-strict.ron");
    let mut app = App::new(&s);
    app.update(&mut s, Action::NextDrop);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        assert!(text.contains("DROP at node2: reverse path filter (rp_filter)"));
        insta::assert_snapshot!(format!("tui-rp-filter-drop-{w}x{h}"), text);
    }
}

#[test]
fn screens_tables_with_the_matched_route() {
    let mut s = session("seed-vxlan-routed.ron");
    let app = at(&mut s, 1, 7);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        assert!(text.contains("▶ 172.16.2.0/24 via 172.16.2.0 dev vxlan.1 onlink"));
        insta::assert_snapshot!(format!("tui-route-hit-{w}x{h}"), text);
    }
}

#[test]
fn screens_help() {
    let mut s = session("seed-vxlan-routed.ron");
    let mut app = at(&mut s, 1, 1);
    app.update(&mut s, Action::ToggleHelp);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        assert!(text.contains("podpath tui: keys"));
        insta::assert_snapshot!(format!("tui-help-{w}x{h}"), text);
    }
}

/// The command log of a generated cluster, open at the first command of
/// node1's batch of per-peer commands (its neighbour entry for node2's
/// VXLAN address).
fn command_log_at_batch(s: &mut Session) -> App {
    let mut app = App::new(s);
    app.update(s, Action::ToggleCommands);
    assert!(app.commands_shown());
    let k = s
        .commands()
        .iter()
        .position(|c| c.place == "node1" && c.line.starts_with("ip neigh replace 10.244.1.0 "))
        .expect("node1's neighbour entry for node2 is a command of its own");
    app.update(s, Action::MoveCommand(k as i32));
    assert_eq!(app.command(), k);
    app
}

#[test]
fn screens_command_log_of_a_generated_cluster_line_by_line() {
    // k8s-flannel-vxlan: 3 nodes; each node's route, neighbour and FDB
    // entries for the other nodes are one batch, expanded by the UI.
    let sc = scenarios::load_file(&rel("k8s-flannel-vxlan.ron")).expect("bundled scenario loads");
    assert!(
        sc.commands
            .iter()
            .any(|c| matches!(c.cmd.kind, sim_models::cmd::CommandKind::Batch(_))),
        "the generated cluster has batches"
    );
    let mut s = Session::run(&sc, &RunOptions::default());
    assert!(s.batches_expanded());
    // Every line of the scenario is an entry of its own (besides the
    // machines' own address commands, which come from no line).
    let from_lines = s.commands().iter().filter(|c| c.origin != usize::MAX);
    assert_eq!(from_lines.count(), sc.command_lines());
    assert!(s.commands().iter().all(|c| !c.line.starts_with("# ")));
    let app = command_log_at_batch(&mut s);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        for l in [
            // The selected line in full (below the list).
            "$ ip neigh replace 10.244.1.0 lladdr 0e:fe:0a:00:00:0c dev flannel.1 nud",
            "node1 bridge fdb replace 0e:fe:0a:00:00:0c dev flannel.1",
            "node1 ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
            "node1 ip neigh replace 10.244.2.0 lladdr 0e:fe:0a:00:00:0d",
        ] {
            assert!(text.contains(l), "{l}:\n{text}");
        }
        insta::assert_snapshot!(format!("tui-commands-cluster-{w}x{h}"), text);
    }
}

#[test]
fn screens_command_log_batch_above_the_expansion_bound() {
    // The same cluster with a bound of 0 lines: each node's batch stays one
    // entry, which says how many lines it stands for, how to print them,
    // and pages through them.
    let sc = scenarios::load_file(&rel("k8s-flannel-vxlan.ron")).expect("bundled scenario loads");
    let mut s = Session::with_expand_limit(&sc, &RunOptions::default(), 0);
    s.run_to_end();
    assert!(!s.batches_expanded());
    let mut app = App::new(&s);
    app.update(&mut s, Action::ToggleCommands);
    let k = s
        .commands()
        .iter()
        .position(|c| c.place == "node1" && c.line.starts_with("# "))
        .expect("node1's batch is one entry");
    assert_eq!(s.batch(k).map(|b| b.0.len()), Some(6));
    // Not a batch: paging says so.
    app.update(&mut s, Action::ScrollBatch(10));
    assert_eq!(app.message(), Some("the selected command is not a batch"));
    app.update(&mut s, Action::MoveCommand(k as i32));
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, &app, w, h);
        assert!(
            text.contains("a batch of 6 command lines, kept whole"),
            "{text}"
        );
        assert!(text.contains("lines 1-"), "{text}");
        insta::assert_snapshot!(format!("tui-commands-batch-kept-{w}x{h}"), text);
    }
    let text = screen(&s, &app, 160, 48);
    assert!(text.contains("podpath expand ../scenarios/files/k8s-flannel-vxlan.ron --node node1"));
    for l in [
        "  ip neigh replace 10.244.1.0 lladdr 0e:fe:0a:00:00:0c dev flannel.1 nud permanent",
        "  bridge fdb replace 0e:fe:0a:00:00:0c dev flannel.1 dst 10.0.0.12 self permanent",
        "  ip route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
    ] {
        assert!(text.contains(l), "{l}:\n{text}");
    }
    // Paging stops at the last line.
    app.update(&mut s, Action::ScrollBatch(10));
    assert_eq!(app.batch_line(), 5);
    assert!(screen(&s, &app, 160, 48).contains("lines 6-6 of 6"));
    // The run is the same as with the batches expanded.
    let e = Session::run(&sc, &RunOptions::default());
    assert_eq!(e.records, s.records);
    assert_eq!(e.events(), s.events());
}

#[test]
fn screens_too_small() {
    let mut s = session("seed-vxlan-routed.ron");
    let app = at(&mut s, 1, 1);
    for (w, h) in [(60, 20), (79, 24)] {
        let text = screen(&s, &app, w, h);
        assert!(text.contains("too small"));
        insta::assert_snapshot!(format!("tui-too-small-{w}x{h}"), text);
    }
}

// ------------------------------------------------------------ tools --

#[allow(clippy::disallowed_methods)] // test orchestration, not a simulation path
fn require_tools() -> bool {
    std::env::var("PODPATH_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Skips a test for a missing tool (fails instead under PODPATH_REQUIRE_TOOLS=1).
fn skip(why: &str) {
    assert!(!require_tools(), "PODPATH_REQUIRE_TOOLS=1: {why}");
    eprintln!("SKIPPED: {why}");
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The `podpath` binary of this build, built now if need be: the target
/// directory and profile are this test binary's own
/// (`TARGET/PROFILE/deps/e2e-HASH`). `PODPATH_BIN` overrides.
#[allow(clippy::disallowed_methods)] // test orchestration, not a simulation path
fn podpath_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("PODPATH_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("test binary outside a target directory")?;
    let target = profile_dir.parent().ok_or("no target directory")?;
    let profile = profile_dir
        .file_name()
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or("no profile")?;
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bin", "podpath", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        p => {
            cmd.args(["--profile", p]);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building podpath failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bin = profile_dir.join("podpath");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("no binary at {}", bin.display()))
    }
}

/// A tmux server of our own (its own socket file), killed and its socket
/// removed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        Tmux {
            socket: std::env::temp_dir()
                .join(format!("podpath-e2e-tmux-{tag}-{}", std::process::id())),
        }
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a detached session of the given size. When it
    /// exits, the pane says so with its exit status (and stays).
    fn start(&self, w: u16, h: u16, command: &str) {
        let script = format!("{command}; echo \"podpath exited with $?\"; sleep 600");
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            &script,
        ]);
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "t", k]);
        }
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen shows all of `texts` (a frame may be half
    /// drawn when read); returns that screen.
    fn wait_for_all(&self, texts: &[&str]) -> String {
        let mut last = String::new();
        for _ in 0..300 {
            last = self.screen();
            if texts.iter().all(|t| last.contains(t)) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("timed out waiting for {texts:?}; the screen:\n{last}");
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_for_all(&[text])
    }

    fn wait_gone(&self, text: &str) -> String {
        let mut last = String::new();
        for _ in 0..300 {
            last = self.screen();
            if !last.contains(text) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("timed out waiting for {text:?} to go; the screen:\n{last}");
    }

    /// Waits for podpath to exit; returns its exit status and the screen.
    fn wait_exit(&self) -> (String, String) {
        let s = self.wait_for("podpath exited with");
        let status = s
            .lines()
            .find_map(|l| l.trim().strip_prefix("podpath exited with "))
            .unwrap_or("")
            .trim()
            .to_string();
        (status, s)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn tmux_and_binary() -> Option<PathBuf> {
    if !have("tmux", "-V") {
        skip("tmux is not installed");
        return None;
    }
    match podpath_bin() {
        Ok(b) => Some(b),
        Err(e) => {
            skip(&format!("no podpath binary: {e}"));
            None
        }
    }
}

fn shell_command(bin: &Path, args: &str) -> String {
    format!(
        "cd {} && TERM=xterm-256color {} {args}",
        root().display(),
        bin.display()
    )
}

#[test]
fn real_binary_in_a_terminal_steps_filters_and_quits() {
    let Some(bin) = tmux_and_binary() else {
        return;
    };
    let t = Tmux::new("keys");
    t.start(
        120,
        40,
        &shell_command(&bin, "tui scenarios/files/seed-vxlan-routed.ron"),
    );
    t.wait_for_all(&[
        "Packets 14/14",
        "▶ 1.000000000 #1",
        "seed-vxlan-routed seed 1",
        "step 1/32",
    ]);
    // Forward twelve steps: the encapsulation, with both headers.
    t.keys(&["Right"; 12]);
    t.wait_for_all(&[
        "step 13/32",
        "VXLAN encapsulate vni 1",
        "outer   IP 192.168.56.6.42934 > 192.168.56.2.8472",
        "inner   IP 172.16.1.1 > 172.16.2.1",
    ]);
    // And back: the route lookup of step 7, its route marked.
    t.keys(&["p", "Left", "Left", "Left", "Left", "Left"]);
    t.wait_for_all(&[
        "step 7/32",
        "▶ 172.16.2.0/24 via 172.16.2.0 dev vxlan.1 onlink",
    ]);
    t.keys(&["End"]);
    t.wait_for("step 32/32");
    t.keys(&["Home"]);
    t.wait_for("step 1/32");
    // Help, then any key closes it.
    t.keys(&["?"]);
    t.wait_for("podpath tui: keys");
    t.keys(&["x"]);
    t.wait_gone("podpath tui: keys");
    // Filter.
    t.keys(&["/", "proto:icmp", "Enter"]);
    t.wait_for_all(&["Packets 2/14", "filter: proto:icmp"]);
    t.keys(&["Down"]);
    t.wait_for("packet #8");
    t.keys(&["q"]);
    let (status, s) = t.wait_exit();
    assert_eq!(status, "0", "{s}");
    // The alternate screen is gone: the UI is no longer on the screen.
    assert!(!s.contains("Packets 2/14"), "{s}");
}

#[test]
fn real_binary_step_mode_plays_and_ctrl_c_quits() {
    let Some(bin) = tmux_and_binary() else {
        return;
    };
    let t = Tmux::new("step");
    t.start(
        100,
        30,
        &shell_command(&bin, "tui --step scenarios/files/seed-vxlan-routed.ron"),
    );
    t.wait_for("press space to play");
    t.keys(&["Space"]);
    t.wait_for("Packets 14/14");
    t.keys(&["C-c"]);
    let (status, s) = t.wait_exit();
    assert_eq!(status, "0", "{s}");
    assert!(!s.contains("Packets"), "{s}");
}

#[test]
fn real_binary_too_small_then_resized() {
    let Some(bin) = tmux_and_binary() else {
        return;
    };
    let t = Tmux::new("resize");
    t.start(
        60,
        20,
        &shell_command(&bin, "tui scenarios/files/neg-rp-filter-strict.ron"),
    );
    t.wait_for("too small");
    t.cmd(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    t.wait_for("Packets 5/5");
    t.wait_gone("too small");
    t.keys(&["d"]);
    t.wait_for("DROP at node2: reverse path filter (rp_filter)");
    t.keys(&["q"]);
    let (status, s) = t.wait_exit();
    assert_eq!(status, "0", "{s}");
}

#[test]
fn graph_renders_the_vxlan_path_to_svg() {
    let dot = podpath(&["graph", &rel("seed-vxlan-routed.ron"), "--packet", "1"]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(dot.stdout.starts_with("digraph podpath {"));
    let path_devices = [
        "node1:test3:veth3",
        "node1:br-veth3",
        "node1:vxlan.1",
        "node1:eth0",
        "lan",
        "node2:eth0",
        "node2:vxlan.1",
        "node2:br-veth3",
        "node2:test3:veth3",
    ];
    for d in path_devices {
        assert!(dot.stdout.contains(&format!("\"{d}\" [label=")), "{d}");
    }
    if !have("dot", "-V") {
        skip("Graphviz `dot` is not installed");
        return;
    }
    let svg = podpath(&[
        "graph",
        &rel("seed-vxlan-routed.ron"),
        "--packet",
        "1",
        "--format",
        "svg",
    ]);
    assert_eq!(svg.code, 0, "{}", svg.stderr);
    assert!(svg.stdout.contains("<svg"), "{}", svg.stdout);
    // Graphviz writes `-` in titles as `&#45;`.
    let text = svg.stdout.replace("&#45;", "-");
    for d in path_devices {
        assert!(
            text.contains(&format!("<title>{d}</title>")),
            "{d} not in the SVG"
        );
    }
    // The path's edges are drawn red and numbered.
    assert!(text.contains("stroke=\"red\""));
    assert!(text.contains("packet #1: delivered at node2:test3"));
    let bad = podpath(&["graph", &rel("seed-vxlan-routed.ron"), "--packet", "999"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no packet #999"), "{}", bad.stderr);
}
