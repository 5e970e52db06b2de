//! Rendering: every widget draws from a borrowed [`View`] of the session and
//! the UI state; nothing here changes either.
//!
//! Layout, from 80x24 up (below that the screen says the window is too
//! small): the packet list, the selected packet's steps, the path strip
//! (places and devices crossed, and the headers at the current step), the
//! tables of the current step's namespace, and a status line. From 150
//! columns the tables go beside the packet list.

use std::net::Ipv4Addr;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use sim_core::trace::{DropReason, TraceEvent, TraceRecord, drop_text, sentence, table_name};

use crate::app::{App, Pane, TableChoice};
use crate::session::{PacketOutcome, Session};
use crate::snap::{SnapId, TableKind};

/// The smallest screen the UI lays itself out on.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this width the tables go beside the packet list.
pub const WIDE: u16 = 150;

/// Marks the current step, the selected packet and the table entry a step used.
const MARK: &str = "▶ ";
const NO_MARK: &str = "  ";

/// What the widgets render from.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub session: &'a Session,
    pub app: &'a App,
}

impl<'a> View<'a> {
    pub fn new(session: &'a Session, app: &'a App) -> View<'a> {
        View { session, app }
    }

    /// The selected packet (index into `Session::packets`), its current
    /// step, and that step's record.
    fn current(&self) -> Option<(usize, usize, &'a TraceRecord)> {
        let p = self.app.packet()?;
        let steps = &self.session.packets[p].steps;
        let s = self.app.step.min(steps.len().checked_sub(1)?);
        Some((p, s, &self.session.records[steps[s] as usize]))
    }

    /// The table shown for the current step: the one pinned with `t`, or
    /// the one the step (else the last step in the same place that
    /// consulted a table) consulted, else the routes.
    pub fn table_kind(&self) -> TableKind {
        match self.app.table {
            TableChoice::Pinned(k) => k,
            TableChoice::Auto => {
                let Some((p, s, rec)) = self.current() else {
                    return TableKind::Routes;
                };
                let records = &self.session.records;
                self.session.packets[p].steps[..=s]
                    .iter()
                    .rev()
                    .map(|&r| &records[r as usize])
                    .take_while(|r| r.place == rec.place)
                    .find_map(|r| auto_table(&r.event))
                    .unwrap_or(TableKind::Routes)
            }
        }
    }

    /// The snapshot of the current step's namespace.
    fn snapshot(&self) -> Option<SnapId> {
        let (p, s, _) = self.current()?;
        self.session.snapshot_for(p, s)
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, session: &Session, app: &App) {
    let area = frame.area();
    render(View::new(session, app), area, frame.buffer_mut());
}

/// Renders the whole screen into a buffer.
pub fn render(view: View, area: Rect, buf: &mut Buffer) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        TooSmall {
            width: area.width,
            height: area.height,
        }
        .render(area, buf);
        return;
    }
    let l = Areas::of(area);
    PacketList(view).render(l.packets, buf);
    StepList(view).render(l.steps, buf);
    PathStrip(view).render(l.path, buf);
    TablesPane(view).render(l.tables, buf);
    StatusLine(view).render(l.status, buf);
    if view.app.commands {
        let above = Rect::new(area.x, area.y, area.width, area.height - 1);
        Clear.render(above, buf);
        CommandLog(view).render(above, buf);
    }
    if view.app.help {
        HelpPopup.render(area, buf);
    }
}

/// Where each pane goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub packets: Rect,
    pub steps: Rect,
    pub path: Rect,
    pub tables: Rect,
    pub status: Rect,
}

impl Areas {
    pub fn of(a: Rect) -> Areas {
        let status = Rect::new(a.x, a.y + a.height - 1, a.width, 1);
        let path = Rect::new(a.x, status.y - 4, a.width, 4);
        let rest = Rect::new(a.x, a.y, a.width, a.height - 5);
        if a.width >= WIDE {
            // Packets and tables side by side, the steps (the longest
            // lines) below at full width.
            let left_w = a.width * 55 / 100;
            let top_h = (rest.height * 45 / 100).max(8);
            Areas {
                packets: Rect::new(rest.x, rest.y, left_w, top_h),
                tables: Rect::new(rest.x + left_w, rest.y, a.width - left_w, top_h),
                steps: Rect::new(rest.x, rest.y + top_h, rest.width, rest.height - top_h),
                path,
                status,
            }
        } else {
            let packets_h = (rest.height * 27 / 100).max(5);
            let steps_h = (rest.height * 37 / 100).max(6);
            Areas {
                packets: Rect::new(rest.x, rest.y, rest.width, packets_h),
                steps: Rect::new(rest.x, rest.y + packets_h, rest.width, steps_h),
                tables: Rect::new(
                    rest.x,
                    rest.y + packets_h + steps_h,
                    rest.width,
                    rest.height - packets_h - steps_h,
                ),
                path,
                status,
            }
        }
    }
}

fn pane_block<'a>(title: Vec<Span<'a>>, focused: bool, left: bool) -> Block<'a> {
    let style = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let mut t = vec![Span::styled(if focused { "■ " } else { "─ " }, style)];
    t.extend(title);
    t.push(Span::raw(" "));
    Block::new()
        .borders(if left {
            Borders::TOP | Borders::LEFT
        } else {
            Borders::TOP
        })
        .border_style(style)
        .title(Line::from(t))
}

/// The first line of a window of `len` lines, `height` high, that shows
/// line `cur` (centred when it can be).
fn window(len: usize, height: usize, cur: usize) -> usize {
    if len <= height {
        return 0;
    }
    cur.saturating_sub(height / 2).min(len - height)
}

/// Styles a whole row of `area` (a highlight reaches the right edge, not
/// just the end of the text).
fn highlight_row(buf: &mut Buffer, area: Rect, row: usize, style: Style) {
    if row < area.height as usize {
        buf.set_style(Rect::new(area.x, area.y + row as u16, area.width, 1), style);
    }
}

fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

fn entry_style() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

fn is_wide(area: Rect) -> bool {
    area.width >= 100
}

// ---------------------------------------------------------------- packets --

/// The packet list.
pub struct PacketList<'a>(pub View<'a>);

impl Widget for PacketList<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let (s, app) = (v.session, v.app);
        let mut title = vec![Span::styled(
            "Packets",
            Style::new().add_modifier(Modifier::BOLD),
        )];
        title.push(Span::raw(format!(
            " {}/{}",
            app.filtered.len(),
            s.packets.len()
        )));
        if !app.filter.is_empty() {
            title.push(Span::styled(
                format!(" filter: {}", app.filter),
                Style::new().fg(Color::Yellow),
            ));
        }
        let block = pane_block(title, app.focus == Pane::Packets, false);
        let mut inner = block.inner(area);
        block.render(area, buf);
        // A run stopped by a failing command or a bound says why, first.
        if let crate::session::RunState::Stopped(m) = s.state() {
            let rows = 2.min(inner.height);
            Paragraph::new(Span::styled(
                format!("the run stopped: {m}"),
                Style::new().fg(Color::Red),
            ))
            .wrap(Wrap { trim: true })
            .render(Rect::new(inner.x, inner.y, inner.width, rows), buf);
            inner = Rect::new(inner.x, inner.y + rows, inner.width, inner.height - rows);
        }
        let h = inner.height as usize;
        if app.filtered.is_empty() {
            let msg = if s.packets.is_empty() {
                if s.can_advance() {
                    "no packet yet: press space to play the simulation"
                } else {
                    "no packet in this run"
                }
            } else {
                "no packet matches the filter (Esc clears it)"
            };
            Paragraph::new(Span::styled(msg, Style::new().fg(Color::DarkGray))).render(inner, buf);
            return;
        }
        let first = window(app.filtered.len(), h, app.selected);
        // marker, time, id: 20 columns; the outcome gets at least 26.
        let summary_w = (inner.width as usize).saturating_sub(20 + 26).clamp(20, 56);
        let lines: Vec<Line> = app.filtered[first..(first + h).min(app.filtered.len())]
            .iter()
            .enumerate()
            .map(|(k, &pi)| {
                let sel = first + k == app.selected;
                packet_line(s, pi, sel, summary_w)
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
        highlight_row(buf, inner, app.selected - first, selected_style());
    }
}

/// The short form of a packet: `ICMP 172.16.1.1 > 172.16.2.1 echo request`,
/// `ARP who-has 169.254.1.1 tell 172.16.1.1`.
pub fn packet_summary(s: &Session, pi: usize) -> String {
    let p = &s.packets[pi];
    match (p.proto, p.src, p.dst) {
        ("ARP", _, _) => {
            let rest = p.summary.trim_start_matches("ARP").trim_start();
            let rest = rest
                .strip_prefix("request ")
                .or_else(|| rest.strip_prefix("reply "))
                .unwrap_or(rest);
            format!("ARP {rest}")
        }
        (proto, Some(a), Some(b)) => {
            // What follows the addresses, up to the first comma, without
            // the protocol's own name: `echo request`, `Flags [S]`.
            let what = p
                .summary
                .split_once(": ")
                .map(|(_, w)| w.split(',').next().unwrap_or(w))
                .unwrap_or("");
            let what = what.strip_prefix(proto).unwrap_or(what).trim();
            format!("{proto} {a} > {b} {what}").trim_end().to_string()
        }
        _ => p.summary.to_string(),
    }
}

/// `s` cut to `w` columns (with `…`), padded to `w`.
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn outcome_span(s: &Session, pi: usize) -> Span<'static> {
    let topo = s.topo();
    match &s.packets[pi].outcome {
        PacketOutcome::InFlight => Span::styled(
            if s.can_advance() {
                "in flight"
            } else {
                "not delivered"
            },
            Style::new().fg(Color::DarkGray),
        ),
        PacketOutcome::Answered { at, reply } => Span::styled(
            format!("answered {} (#{})", topo.path(*at), reply.0),
            Style::new().fg(Color::Green),
        ),
        PacketOutcome::Delivered { at, .. } => Span::styled(
            format!("delivered {}", topo.path(*at)),
            Style::new().fg(Color::Green),
        ),
        PacketOutcome::Dropped { at, reason } => Span::styled(
            format!("dropped {}: {}", topo.path(*at), reason.code()),
            Style::new().fg(Color::Red),
        ),
    }
}

fn packet_line(s: &Session, pi: usize, selected: bool, summary_w: usize) -> Line<'static> {
    let p = &s.packets[pi];
    let style = if selected {
        selected_style()
    } else {
        Style::new()
    };
    let summary = packet_summary(s, pi);
    Line::from(vec![
        Span::raw(if selected { MARK } else { NO_MARK }),
        Span::styled(
            p.first.fixed().to_string(),
            Style::new().fg(Color::DarkGray),
        ),
        Span::styled(format!(" #{:<4} ", p.id.0), Style::new().fg(Color::Cyan)),
        Span::raw(format!("{} ", fit(&summary, summary_w))),
        outcome_span(s, pi),
    ])
    .style(style)
}

// ------------------------------------------------------------------ steps --

/// The selected packet's steps, numbered, grouped by place.
pub struct StepList<'a>(pub View<'a>);

impl Widget for StepList<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let s = v.session;
        let focused = v.app.focus == Pane::Steps;
        let Some((pi, cur, _)) = v.current() else {
            let block = pane_block(vec![Span::raw("Steps")], focused, false);
            block.render(area, buf);
            return;
        };
        let p = &s.packets[pi];
        let title = vec![
            Span::styled("Steps", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(
                " packet #{} ({} {})",
                p.id.0,
                p.by,
                if p.proto == "?" { "" } else { p.proto }
            )),
            Span::styled(
                format!(" step {}/{}", cur + 1, p.steps.len()),
                Style::new().fg(Color::Yellow),
            ),
        ];
        let block = pane_block(title, focused, false);
        let inner = block.inner(area);
        block.render(area, buf);
        let topo = s.topo();
        let with_time = is_wide(inner);
        let mut lines: Vec<Line> = Vec::new();
        let mut cur_line = 0;
        let mut last_place = None;
        for (i, &r) in p.steps.iter().enumerate() {
            let rec = &s.records[r as usize];
            if last_place != Some(rec.place) {
                lines.push(Line::from(Span::styled(
                    format!("[{}]", topo.path(rec.place)),
                    Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                )));
                last_place = Some(rec.place);
            }
            let drop = matches!(rec.event, TraceEvent::Drop { .. });
            let mut spans = vec![
                Span::raw(if i == cur { MARK } else { NO_MARK }),
                Span::raw(format!("{:>3}. ", i + 1)),
            ];
            if with_time {
                spans.push(Span::styled(
                    format!("{} ", rec.time.fixed()),
                    Style::new().fg(Color::DarkGray),
                ));
            }
            let text_style = if drop {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            spans.push(Span::styled(sentence(topo, &rec.event), text_style));
            if i == cur {
                cur_line = lines.len();
            }
            lines.push(Line::from(spans));
        }
        let h = inner.height as usize;
        let first = window(lines.len(), h, cur_line);
        let shown: Vec<Line> = lines.into_iter().skip(first).take(h).collect();
        Paragraph::new(shown).render(inner, buf);
        highlight_row(buf, inner, cur_line - first, selected_style());
    }
}

// ------------------------------------------------------------------- path --

/// The places and devices the packet crossed, and its headers now.
pub struct PathStrip<'a>(pub View<'a>);

impl Widget for PathStrip<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let s = v.session;
        let block = pane_block(
            vec![Span::styled(
                "Path",
                Style::new().add_modifier(Modifier::BOLD),
            )],
            false,
            false,
        );
        let inner = block.inner(area);
        block.render(area, buf);
        let Some((pi, cur, rec)) = v.current() else {
            return;
        };
        let topo = s.topo();
        let (hops, at) = s.path_of(pi);
        let here = at[cur];
        let cur_dev = step_device(&rec.event);
        // Spans of each hop, then a window of hops that fits and shows the current one.
        let mut parts: Vec<Vec<Span>> = Vec::new();
        for (k, h) in hops.iter().enumerate() {
            let mut sp = Vec::new();
            if k > 0 {
                sp.push(Span::styled(" → ", Style::new().fg(Color::DarkGray)));
            }
            let seg = !s.is_namespace(h.place);
            let place_style = if k == here {
                Style::new()
                    .add_modifier(Modifier::REVERSED)
                    .add_modifier(Modifier::BOLD)
            } else if seg {
                Style::new().fg(Color::Blue)
            } else {
                Style::new().fg(Color::Magenta)
            };
            if k == here {
                sp.push(Span::styled(MARK, Style::new().fg(Color::Yellow)));
            }
            sp.push(Span::styled(topo.path(h.place).to_string(), place_style));
            if !h.devs.is_empty() {
                sp.push(Span::raw(" ("));
                for (j, d) in h.devs.iter().enumerate() {
                    if j > 0 {
                        sp.push(Span::raw(" "));
                    }
                    if k == here && Some(*d) == cur_dev {
                        sp.push(Span::styled(
                            format!("[{}]", topo.name(*d)),
                            Style::new()
                                .fg(Color::Yellow)
                                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                        ));
                    } else {
                        sp.push(Span::raw(topo.name(*d).to_string()));
                    }
                }
                sp.push(Span::raw(")"));
            }
            parts.push(sp);
        }
        let width = inner.width as usize;
        let w = |p: &Vec<Span>| p.iter().map(|s| s.width()).sum::<usize>();
        let (mut lo, mut hi) = (here, here + 1);
        let mut total = parts.get(here).map_or(0, w);
        loop {
            let mut grew = false;
            if hi < parts.len() && total + w(&parts[hi]) + 2 <= width {
                total += w(&parts[hi]);
                hi += 1;
                grew = true;
            }
            if lo > 0 && total + w(&parts[lo - 1]) + 2 <= width {
                lo -= 1;
                total += w(&parts[lo]);
                grew = true;
            }
            if !grew {
                break;
            }
        }
        let mut path_spans: Vec<Span> = Vec::new();
        if lo > 0 {
            path_spans.push(Span::styled("…", Style::new().fg(Color::DarkGray)));
        }
        for p in parts.drain(lo..hi) {
            path_spans.extend(p);
        }
        if hi < hops.len() {
            path_spans.push(Span::styled(" …", Style::new().fg(Color::DarkGray)));
        }
        let hd = s.headers_at(pi, cur);
        let label = Style::new().fg(Color::DarkGray);
        let mut lines = vec![Line::from(path_spans)];
        if hd.outer.is_empty() {
            lines.push(Line::from(vec![
                Span::styled("headers ", label),
                Span::raw(hd.inner),
            ]));
        } else {
            lines.push(Line::from(vec![
                Span::styled("outer   ", label),
                Span::styled(hd.outer.join(" | "), Style::new().fg(Color::Yellow)),
            ]));
            lines.push(Line::from(vec![
                Span::styled("inner   ", label),
                Span::raw(hd.inner),
            ]));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}

/// The device a step happened on, if one.
fn step_device(ev: &TraceEvent) -> Option<sim_core::topo::NodeId> {
    match ev {
        TraceEvent::Receive { dev, .. }
        | TraceEvent::Transmit { dev, .. }
        | TraceEvent::Encapsulate { dev, .. }
        | TraceEvent::Decapsulate { dev, .. }
        | TraceEvent::NeighLookup { dev, .. }
        | TraceEvent::FdbLookup { dev, .. }
        | TraceEvent::ProxyArp { dev, .. }
        | TraceEvent::Learn { dev, .. }
        | TraceEvent::Miss { dev, .. } => Some(*dev),
        TraceEvent::Wire { from, .. } => Some(*from),
        TraceEvent::BridgeForward { bridge, .. }
        | TraceEvent::BridgeFlood { bridge, .. }
        | TraceEvent::BridgeLocal { bridge } => Some(*bridge),
        TraceEvent::RouteLookup { hit: Some(h), .. } => h.dev,
        _ => None,
    }
}

// ----------------------------------------------------------------- tables --

/// The current step's namespace's tables, as they were at that step.
pub struct TablesPane<'a>(pub View<'a>);

impl Widget for TablesPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let s = v.session;
        let kind = v.table_kind();
        let snap = v.snapshot();
        let mut title = vec![Span::styled(
            "Tables",
            Style::new().add_modifier(Modifier::BOLD),
        )];
        if let Some(id) = snap {
            title.push(Span::raw(format!(" {}", s.ns_label(id))));
        }
        title.push(Span::raw(" "));
        for k in TableKind::ALL {
            let st = if k == kind {
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            title.push(Span::styled(format!(" {} ", k.name()), st));
        }
        if v.app.table == TableChoice::Auto {
            title.push(Span::styled(" auto", Style::new().fg(Color::DarkGray)));
        }
        let block = pane_block(title, v.app.focus == Pane::Tables, area.x > 0);
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(id) = snap else {
            let msg = if v.current().is_some() {
                "this step is on a segment: no namespace tables"
            } else {
                ""
            };
            Paragraph::new(Span::styled(msg, Style::new().fg(Color::DarkGray))).render(inner, buf);
            return;
        };
        let (pi, cur, rec) = v.current().expect("a snapshot implies a step");
        let mut head: Vec<Line> = Vec::new();
        if let TraceEvent::Drop { reason } = &rec.event {
            head.push(Line::from(Span::styled(
                format!(
                    "DROP at {}: {}",
                    s.topo().path(rec.place),
                    drop_text(reason)
                ),
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )));
        }
        let table: Vec<&str> = s.snaps.lines(id, kind).collect();
        let used = entry_step(s, pi, cur, kind);
        let hit = used.and_then(|u| find_entry(s, pi, u, kind, &table));
        if let (Some(u), Some(_)) = (used, hit)
            && let Some(why) = hit_note(s, pi, u, kind)
        {
            head.push(Line::from(Span::styled(
                why,
                Style::new().fg(Color::Yellow),
            )));
        }
        let mut cmd = vec![Span::styled(
            format!("$ {}", kind.command()),
            Style::new().fg(Color::DarkGray),
        )];
        if let (Some(u), Some(_)) = (used, hit)
            && u != cur
        {
            cmd.push(Span::styled(
                format!("   ▶ used at step {}", u + 1),
                Style::new().fg(Color::Yellow),
            ));
        }
        head.push(Line::from(cmd));
        let h = (inner.height as usize).saturating_sub(head.len());
        let head_len = head.len();
        let mut hit_row = None;
        let mut lines = head;
        if table.is_empty() {
            lines.push(Line::from(Span::styled(
                "(empty)",
                Style::new().fg(Color::DarkGray),
            )));
        } else {
            let base = window(table.len(), h, hit.unwrap_or(0)) as i64;
            let max_first = table.len().saturating_sub(h) as i64;
            let first = (base + v.app.table_scroll as i64).clamp(0, max_first) as usize;
            for (k, l) in table.iter().enumerate().skip(first).take(h) {
                let on = Some(k) == hit;
                if on {
                    hit_row = Some(head_len + k - first);
                }
                lines.push(Line::from(vec![
                    Span::raw(if on { MARK } else { NO_MARK }),
                    Span::raw(l.trim_end().to_string()),
                ]));
            }
        }
        Paragraph::new(lines).render(inner, buf);
        if let Some(r) = hit_row {
            highlight_row(buf, inner, r, entry_style());
        }
    }
}

/// The table a step consults, if any.
pub fn auto_table(ev: &TraceEvent) -> Option<TableKind> {
    Some(match ev {
        TraceEvent::RouteLookup { .. }
        | TraceEvent::SourceSelect { .. }
        | TraceEvent::ProxyArp { .. } => TableKind::Routes,
        TraceEvent::Rule { .. } => TableKind::Rules,
        TraceEvent::NeighLookup { .. } => TableKind::Neigh,
        TraceEvent::FdbLookup { .. }
        | TraceEvent::Learn { .. }
        | TraceEvent::BridgeForward { .. }
        | TraceEvent::BridgeFlood { .. } => TableKind::Fdb,
        TraceEvent::Netfilter { .. } => TableKind::Iptables,
        TraceEvent::Drop { reason } => match reason {
            DropReason::NoRoute | DropReason::RouteType(_) | DropReason::RpFilter => {
                TableKind::Routes
            }
            DropReason::NeighFailed | DropReason::NeighTableOverflow => TableKind::Neigh,
            DropReason::FdbMiss => TableKind::Fdb,
            DropReason::Netfilter { .. } => TableKind::Iptables,
            DropReason::FragNeeded { .. } | DropReason::NoIpv4 | DropReason::LinkDown => {
                TableKind::Addrs
            }
            _ => return None,
        },
        _ => return None,
    })
}

/// The step whose table entry to mark in a `kind` table at step `cur`: the
/// latest step up to `cur`, in the same place, that consulted that table.
fn entry_step(s: &Session, pi: usize, cur: usize, kind: TableKind) -> Option<usize> {
    let steps = &s.packets[pi].steps;
    let place = s.records[steps[cur] as usize].place;
    (0..=cur)
        .rev()
        .map(|i| (i, &s.records[steps[i] as usize]))
        .take_while(|(_, r)| r.place == place)
        .find(|(_, r)| auto_table(&r.event) == Some(kind))
        .map(|(i, _)| i)
}

/// Why the highlighted entry is highlighted, when it is not the step's own
/// lookup (the reverse route of an rp_filter drop, the route behind proxy ARP).
fn hit_note(s: &Session, pi: usize, cur: usize, kind: TableKind) -> Option<String> {
    let rec = &s.records[s.packets[pi].steps[cur] as usize];
    match (&rec.event, kind) {
        (
            TraceEvent::Drop {
                reason: DropReason::RpFilter,
            },
            TableKind::Routes,
        ) => Some(format!(
            "the route back to the source {} does not leave by the receiving device:",
            s.packets[pi].src.map_or("?".into(), |a| a.to_string())
        )),
        (TraceEvent::ProxyArp { target, .. }, TableKind::Routes) => Some(format!(
            "proxy ARP answers because of the route to {target}:"
        )),
        _ => None,
    }
}

/// The line of `table` the step at `cur` of packet `pi` used, if any.
pub fn find_entry(
    s: &Session,
    pi: usize,
    cur: usize,
    kind: TableKind,
    table: &[&str],
) -> Option<usize> {
    let topo = s.topo();
    let rec = &s.records[s.packets[pi].steps[cur] as usize];
    let pos = |f: &dyn Fn(&str) -> bool| table.iter().position(|l| f(l));
    let mac_line = |mac: String, dev: &str| {
        pos(&|l: &str| {
            l.starts_with(&mac)
                && (l.contains(&format!(" dev {dev} ")) || l.contains(&format!(" master {dev}")))
        })
    };
    match (&rec.event, kind) {
        (TraceEvent::RouteLookup { hit: Some(h), .. }, TableKind::Routes) => {
            let suffix = format!(" table {}", table_name(h.table));
            pos(&|l: &str| {
                let l = l.trim_end();
                l == &*h.text || l.replacen(&suffix, "", 1) == *h.text
            })
        }
        (TraceEvent::Rule { priority, .. }, TableKind::Rules) => {
            pos(&|l: &str| l.starts_with(&format!("{priority}:")))
        }
        (TraceEvent::NeighLookup { dev, addr, .. }, TableKind::Neigh) => {
            let p = format!("{addr} dev {} ", topo.name(*dev));
            pos(&|l: &str| l.starts_with(&p))
        }
        (TraceEvent::FdbLookup { dev, mac, .. }, TableKind::Fdb)
        | (TraceEvent::Learn { dev, mac, .. }, TableKind::Fdb) => {
            mac_line(mac.to_string(), topo.name(*dev))
        }
        (TraceEvent::Netfilter { chain, rule, .. }, TableKind::Iptables)
        | (
            TraceEvent::Drop {
                reason: DropReason::Netfilter { chain, rule, .. },
            },
            TableKind::Iptables,
        ) => match rule {
            Some(n) => {
                let p = format!("-A {chain} ");
                table
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.starts_with(&p))
                    .nth((*n as usize).saturating_sub(1))
                    .map(|(i, _)| i)
            }
            None => {
                let p = format!("-P {chain} ");
                pos(&|l: &str| l.starts_with(&p))
            }
        },
        (
            TraceEvent::Drop {
                reason: DropReason::RpFilter,
            },
            TableKind::Routes,
        ) => s.packets[pi].src.and_then(|a| main_route_for(table, a)),
        (TraceEvent::ProxyArp { target, .. }, TableKind::Routes) => main_route_for(table, *target),
        _ => None,
    }
}

/// The main-table route (from `ip route show table all` lines) that
/// matches `addr` by longest prefix.
fn main_route_for(table: &[&str], addr: Ipv4Addr) -> Option<usize> {
    let mut best: Option<(u8, usize)> = None;
    for (i, l) in table.iter().enumerate() {
        if l.contains(" table ") {
            continue;
        }
        let mut words = l.split_whitespace();
        let Some(mut w) = words.next() else {
            continue;
        };
        if matches!(
            w,
            "unicast" | "local" | "broadcast" | "blackhole" | "unreachable" | "prohibit"
        ) {
            w = words.next().unwrap_or("");
        }
        let (net, len) = match w {
            "default" => (Ipv4Addr::UNSPECIFIED, 0u8),
            w => match w.split_once('/') {
                Some((a, n)) => match (a.parse::<Ipv4Addr>(), n.parse::<u8>()) {
                    (Ok(a), Ok(n)) if n <= 32 => (a, n),
                    _ => continue,
                },
                None => match w.parse::<Ipv4Addr>() {
                    Ok(a) => (a, 32),
                    Err(_) => continue,
                },
            },
        };
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - len as u32)
        };
        if u32::from(addr) & mask == u32::from(net) & mask && best.is_none_or(|(b, _)| len > b) {
            best = Some((len, i));
        }
    }
    best.map(|(_, i)| i)
}

// --------------------------------------------------------------- commands --

/// The command log (`c`): every command the run ran, in order, with its
/// time and place; below, the selected one's output, or for a batch kept
/// whole (a scenario above [`crate::session::EXPAND_BATCHES_UP_TO`] command
/// lines), how many lines it stands for and a page of them.
pub struct CommandLog<'a>(pub View<'a>);

impl Widget for CommandLog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let s = v.session;
        let log = s.commands();
        let dim = Style::new().fg(Color::DarkGray);
        let cur = v.app.command.min(log.len().saturating_sub(1));
        let mut title = vec![Span::styled(
            "Commands",
            Style::new().add_modifier(Modifier::BOLD),
        )];
        if !log.is_empty() {
            title.push(Span::styled(
                format!(" {}/{}", cur + 1, log.len()),
                Style::new().fg(Color::Yellow),
            ));
        }
        if s.batches_expanded() {
            title.push(Span::styled(" batches expanded: a line per command", dim));
        }
        let block = pane_block(title, true, false);
        let inner = block.inner(area);
        block.render(area, buf);
        if log.is_empty() {
            let msg = if s.can_advance() {
                "no command has run yet: press space to play the simulation"
            } else {
                "no command in this run"
            };
            Paragraph::new(Span::styled(msg, dim)).render(inner, buf);
            return;
        }
        // The list above, the selected command's details below.
        let detail_h = if s.batch(cur).is_some() {
            inner.height / 2
        } else {
            inner.height / 3
        }
        .max(4)
        .min(inner.height.saturating_sub(2));
        let list = Rect::new(inner.x, inner.y, inner.width, inner.height - detail_h);
        let detail = Rect::new(inner.x, list.y + list.height, inner.width, detail_h);
        let h = list.height as usize;
        let first = window(log.len(), h, cur);
        let with_time = is_wide(list);
        let place_w = log[first..(first + h).min(log.len())]
            .iter()
            .map(|c| c.place.chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = (first..(first + h).min(log.len()))
            .map(|i| {
                let c = &log[i];
                let mut spans = vec![Span::raw(if i == cur { MARK } else { NO_MARK })];
                if with_time {
                    spans.push(Span::styled(format!("{} ", c.time.fixed()), dim));
                }
                spans.push(Span::styled(
                    format!("{:<place_w$} ", c.place),
                    Style::new().fg(Color::Magenta),
                ));
                let style = if c.output.failed {
                    Style::new().fg(Color::Red)
                } else if s.batch(i).is_some() {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                spans.push(Span::styled(c.line.to_string(), style));
                Line::from(spans)
            })
            .collect();
        Paragraph::new(lines).render(list, buf);
        highlight_row(buf, list, cur - first, selected_style());

        let c = &log[cur];
        let mut d: Vec<Line> = vec![
            Line::from(Span::styled(
                format!(
                    "── {}/{} at {} on {}",
                    cur + 1,
                    log.len(),
                    c.time.fixed(),
                    c.place
                ),
                dim,
            )),
            Line::from(vec![
                Span::styled("$ ", dim),
                Span::styled(
                    c.line.to_string(),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
            ]),
        ];
        let room = detail.height as usize;
        if let Some(b) = s.batch(cur) {
            let n = b.0.len();
            let host = c.place.split(':').next().unwrap_or(&c.place);
            let (lines, bound) = s.command_lines();
            d.push(Line::from(Span::styled(
                format!(
                    "a batch of {} command lines, kept whole: the scenario runs {} lines, more than the {} the UI expands",
                    group(n),
                    group(lines),
                    group(bound)
                ),
                Style::new().fg(Color::Yellow),
            )));
            d.push(Line::from(vec![
                Span::styled("all of them: ", dim),
                Span::raw(format!("podpath expand {} --node {host}", s.path)),
            ]));
            // The wrapped head, then a page of lines, one row each (cut
            // at the edge): only the lines shown are made.
            let w = detail.width.max(1) as usize;
            let head: usize = d
                .iter()
                .map(|l| l.width().div_ceil(w).max(1))
                .sum::<usize>()
                + 1;
            let from = v.app.batch_line.min(n.saturating_sub(1));
            let show = room.saturating_sub(head);
            let to = (from + show).min(n);
            d.push(Line::from(Span::styled(
                format!(
                    "lines {}-{} of {} (←→ page):",
                    group(from + 1),
                    group(to),
                    group(n)
                ),
                dim,
            )));
            let head_h = (head as u16).min(detail.height);
            Paragraph::new(d)
                .wrap(Wrap { trim: false })
                .render(Rect::new(detail.x, detail.y, detail.width, head_h), buf);
            let page: Vec<Line> = (from..to)
                .map(|k| Line::raw(format!("  {}", b.0.line(k))))
                .collect();
            Paragraph::new(page).render(
                Rect::new(
                    detail.x,
                    detail.y + head_h,
                    detail.width,
                    detail.height - head_h,
                ),
                buf,
            );
            return;
        } else {
            let out = &c.output;
            let text: Vec<&str> = out
                .stdout
                .lines()
                .chain(out.stderr.lines())
                .take(room)
                .collect();
            if text.is_empty() {
                d.push(Line::from(Span::styled(
                    if out.failed {
                        "(failed, no message)"
                    } else {
                        "(no output)"
                    },
                    dim,
                )));
            }
            let style = if out.failed {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            d.extend(
                text.into_iter()
                    .map(|l| Line::from(Span::styled(l.trim_end().to_string(), style))),
            );
        }
        Paragraph::new(d)
            .wrap(Wrap { trim: false })
            .render(detail, buf);
    }
}

/// `100000` as `100,000`.
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ----------------------------------------------------------------- status --

/// Simulated time, scenario, seed, and the keys.
pub struct StatusLine<'a>(pub View<'a>);

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.0;
        let s = v.session;
        let dim = Style::new().fg(Color::DarkGray);
        let mut spans = vec![];
        match v.current() {
            Some((_, _, rec)) => spans.push(Span::styled(
                format!(" {} ", rec.time.fixed()),
                Style::new().fg(Color::Black).bg(Color::Cyan),
            )),
            None => spans.push(Span::styled(
                format!(" {} ", s.now().fixed()),
                Style::new().fg(Color::Black).bg(Color::Cyan),
            )),
        }
        spans.push(Span::raw(format!(" {} seed {} ", s.name, s.seed)));
        if s.can_advance() {
            spans.push(Span::styled(
                if v.app.playing {
                    format!("▶ playing, at {} ", s.now().fixed())
                } else {
                    format!("paused at {} ", s.now().fixed())
                },
                Style::new().fg(Color::Yellow),
            ));
        }
        if let crate::session::RunState::Stopped(_) = s.state() {
            spans.push(Span::styled("run stopped ", Style::new().fg(Color::Red)));
        }
        if let Some(e) = &v.app.editing {
            spans.push(Span::styled(
                format!("/{e}█"),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                "  Enter apply  Esc cancel  (host: ns: proto: addr: outcome:)",
                dim,
            ));
        } else if let Some(m) = &v.app.message {
            spans.push(Span::styled(m.clone(), Style::new().fg(Color::Yellow)));
        } else if v.app.commands {
            let used: usize = spans.iter().map(|s| s.width()).sum();
            let room = (area.width as usize).saturating_sub(used);
            let keys = [
                "│ ↑↓ command  PgUp PgDn  Home End  ←→ page a batch  c close  ? help  q quit",
                "│ ↑↓ command  c close  ? help  q quit",
                "│ c close",
            ];
            if let Some(k) = keys.iter().find(|k| Span::raw(**k).width() <= room) {
                spans.push(Span::styled(*k, dim));
            }
        } else {
            let used: usize = spans.iter().map(|s| s.width()).sum();
            let room = (area.width as usize).saturating_sub(used);
            let keys = [
                "│ ↑↓ packet  ←→ step  d drop  / filter  Tab pane  t table  c commands  space play  ? help  q quit",
                "│ ↑↓ packet ←→ step d drop / filter t table ? help q quit",
                "│ ←→ step ? help q quit",
                "│ ? help",
            ];
            if let Some(k) = keys.iter().find(|k| Span::raw(**k).width() <= room) {
                spans.push(Span::styled(*k, dim));
            }
        }
        Paragraph::new(Line::from(spans)).render(area, buf);
    }
}

// ------------------------------------------------------------------- help --

pub const HELP: &[(&str, &str)] = &[
    (
        "↑ ↓  k j",
        "select a packet (in the steps pane: step; tables: scroll)",
    ),
    (
        "← →  p n",
        "step back and forward through the packet's path",
    ),
    ("Home End", "first and last step"),
    (
        "d",
        "next drop (later in this packet, else the next dropped packet)",
    ),
    (
        "/",
        "filter packets: host:H ns:N proto:P addr:A outcome:O, or words",
    ),
    ("Esc", "clear the filter"),
    ("Tab", "cycle panes (packets, steps, tables)"),
    (
        "t",
        "cycle tables: routes rules neigh fdb iptables addrs, auto",
    ),
    ("PgUp PgDn", "page the packet list, or scroll the tables"),
    (
        "space",
        "play the simulation forward in simulated time (pause)",
    ),
    (
        "c",
        "the command log: every command run, in order, with its output",
    ),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
];

/// The key help.
pub struct HelpPopup;

impl Widget for HelpPopup {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let w = area.width.min(78);
        // The keys, a blank line, two lines of notes, the borders.
        let h = area.height.min(HELP.len() as u16 + 5);
        let r = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + (area.height - h) / 2,
            w,
            h,
        );
        Clear.render(r, buf);
        let block = Block::bordered()
            .title(Line::from(Span::styled(
                " podpath tui: keys ",
                Style::new().add_modifier(Modifier::BOLD),
            )))
            .border_style(Style::new().fg(Color::Cyan));
        let mut lines: Vec<Line> = HELP
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!(" {k:<11}"), Style::new().fg(Color::Yellow)),
                    Span::raw(*what),
                ])
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            " Tables are shown as they stood when the step happened; the entry",
            Style::new().fg(Color::DarkGray),
        )));
        lines.push(Line::from(Span::styled(
            " the step used is marked ▶. Any key closes this help.",
            Style::new().fg(Color::DarkGray),
        )));
        Paragraph::new(lines).block(block).render(r, buf);
    }
}

/// What a too-small window shows.
pub struct TooSmall {
    pub width: u16,
    pub height: u16,
}

impl Widget for TooSmall {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let text = format!(
            "The window is too small ({}x{}): podpath tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it, or press q to quit.",
            self.width, self.height
        );
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(Color::Yellow))
            .render(area, buf);
    }
}
