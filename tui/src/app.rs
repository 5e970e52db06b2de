//! The UI's state and the only way it changes: [`App::update`] with an
//! [`Action`]. Keys map to actions in [`action_for_key`]; widgets render
//! from a borrowed view of the state (see [`crate::ui`]).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use sim_core::trace::TraceEvent;

use crate::session::{PacketOutcome, Session};
use crate::snap::TableKind;

/// Panes that take the focus (`Tab`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Packets,
    Steps,
    Tables,
}

impl Pane {
    fn next(self) -> Pane {
        match self {
            Pane::Packets => Pane::Steps,
            Pane::Steps => Pane::Tables,
            Pane::Tables => Pane::Packets,
        }
    }
    fn prev(self) -> Pane {
        self.next().next()
    }
}

/// Which table the tables pane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableChoice {
    /// The table the current step consulted (routes for a route lookup,
    /// neighbours for a neighbour lookup, ...).
    Auto,
    Pinned(TableKind),
}

/// Everything the user can do: the only way the UI state changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Select packet `packet` (its id in the trace) at its step `step` (0-based).
    Select {
        packet: u64,
        step: usize,
    },
    PrevPacket,
    NextPacket,
    PacketPage(i32),
    PrevStep,
    NextStep,
    FirstStep,
    LastStep,
    NextDrop,
    FocusNext,
    FocusPrev,
    CycleTable,
    ScrollTables(i32),
    OpenFilter,
    FilterChar(char),
    FilterBackspace,
    ApplyFilter,
    CancelFilter,
    ClearFilter,
    TogglePlay,
    /// A tick of the clock while playing: run the next simulated instant.
    Tick,
    ToggleHelp,
    /// Show or hide the command log (every command the run ran, in order).
    ToggleCommands,
    /// Move the cursor in the command log by this many commands.
    MoveCommand(i32),
    FirstCommand,
    LastCommand,
    /// Page through the lines of the selected command when it is a batch
    /// kept whole (by this many lines).
    ScrollBatch(i32),
    Quit,
}

/// The UI state. It changes only through [`App::update`]; widgets read it
/// through the accessors.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) focus: Pane,
    /// Packets shown (indices into `Session::packets`), after the filter.
    pub(crate) filtered: Vec<usize>,
    /// Index into `filtered`.
    pub(crate) selected: usize,
    /// The current step of the selected packet.
    pub(crate) step: usize,
    pub(crate) table: TableChoice,
    /// Lines the user scrolled the tables pane by.
    pub(crate) table_scroll: i32,
    /// The filter in force, and the one being typed.
    pub(crate) filter: String,
    pub(crate) editing: Option<String>,
    pub(crate) help: bool,
    /// The command log is shown, with its cursor (an index into
    /// `Session::commands`) and the first batch line shown.
    pub(crate) commands: bool,
    pub(crate) command: usize,
    pub(crate) batch_line: usize,
    pub(crate) playing: bool,
    /// A one-off message for the status line.
    pub(crate) message: Option<String>,
    pub(crate) quit: bool,
    seen: (usize, usize),
}

impl App {
    pub fn new(session: &Session) -> App {
        let mut a = App {
            focus: Pane::Packets,
            filtered: Vec::new(),
            selected: 0,
            step: 0,
            table: TableChoice::Auto,
            table_scroll: 0,
            filter: String::new(),
            editing: None,
            help: false,
            commands: false,
            command: 0,
            batch_line: 0,
            playing: false,
            message: None,
            quit: false,
            seen: (usize::MAX, usize::MAX),
        };
        a.refresh(session);
        a
    }

    /// The selected packet (index into `Session::packets`).
    pub fn packet(&self) -> Option<usize> {
        self.filtered.get(self.selected).copied()
    }

    /// The current step of the selected packet (0-based).
    pub fn step(&self) -> usize {
        self.step
    }

    pub fn focus(&self) -> Pane {
        self.focus
    }

    /// The packets shown, after the filter (indices into `Session::packets`).
    pub fn filtered(&self) -> &[usize] {
        &self.filtered
    }

    pub fn table(&self) -> TableChoice {
        self.table
    }

    /// The filter in force.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The filter being typed, if the user is typing one.
    pub fn editing(&self) -> Option<&str> {
        self.editing.as_deref()
    }

    pub fn help_shown(&self) -> bool {
        self.help
    }

    pub fn commands_shown(&self) -> bool {
        self.commands
    }

    /// The selected entry of the command log (an index into
    /// `Session::commands`).
    pub fn command(&self) -> usize {
        self.command
    }

    /// The first line of the selected batch shown (0-based).
    pub fn batch_line(&self) -> usize {
        self.batch_line
    }

    pub fn playing(&self) -> bool {
        self.playing
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    fn select(&mut self, session: &Session, id: u64, step: usize) -> bool {
        let Some(pi) = session.packet_by_id(sim_core::packet::PacketId(id)) else {
            return false;
        };
        let Some(i) = self.filtered.iter().position(|&p| p == pi) else {
            return false;
        };
        self.selected = i;
        self.step = step.min(session.packets[pi].steps.len().saturating_sub(1));
        self.table_scroll = 0;
        true
    }

    /// Applies one action.
    pub fn update(&mut self, session: &mut Session, action: Action) {
        if action != Action::Tick {
            self.message = None;
        }
        match action {
            Action::Select { packet, step } => {
                if !self.select(session, packet, step) {
                    self.message = Some(format!("no packet #{packet} (in the list)"));
                }
            }
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::ToggleCommands => {
                self.commands = !self.commands;
                self.clamp_command(session);
            }
            Action::MoveCommand(d) => {
                self.command = (self.command as i64 + d as i64).max(0) as usize;
                self.batch_line = 0;
                self.clamp_command(session);
            }
            Action::FirstCommand => {
                self.command = 0;
                self.batch_line = 0;
            }
            Action::LastCommand => {
                self.command = usize::MAX;
                self.batch_line = 0;
                self.clamp_command(session);
            }
            Action::ScrollBatch(d) => match session.batch(self.command) {
                Some(b) => {
                    let last = b.0.len().saturating_sub(1) as i64;
                    self.batch_line = (self.batch_line as i64 + d as i64).clamp(0, last) as usize;
                }
                None => {
                    self.message = Some("the selected command is not a batch".into());
                }
            },
            Action::PrevPacket => self.move_packet(session, -1),
            Action::NextPacket => self.move_packet(session, 1),
            Action::PacketPage(n) => self.move_packet(session, n),
            Action::PrevStep => self.move_step(session, -1),
            Action::NextStep => self.move_step(session, 1),
            Action::FirstStep => self.set_step(0),
            Action::LastStep => {
                let n = self.steps_len(session);
                self.set_step(n.saturating_sub(1));
            }
            Action::NextDrop => self.next_drop(session),
            Action::FocusNext => self.focus = self.focus.next(),
            Action::FocusPrev => self.focus = self.focus.prev(),
            Action::CycleTable => {
                self.table = match self.table {
                    TableChoice::Auto => TableChoice::Pinned(TableKind::ALL[0]),
                    TableChoice::Pinned(k) if k.index() + 1 == TableKind::ALL.len() => {
                        TableChoice::Auto
                    }
                    TableChoice::Pinned(k) => TableChoice::Pinned(k.next()),
                };
                self.table_scroll = 0;
            }
            Action::ScrollTables(n) => self.table_scroll = self.table_scroll.saturating_add(n),
            Action::OpenFilter => self.editing = Some(self.filter.clone()),
            Action::FilterChar(c) => {
                if let Some(e) = &mut self.editing {
                    e.push(c);
                }
            }
            Action::FilterBackspace => {
                if let Some(e) = &mut self.editing {
                    e.pop();
                }
            }
            Action::ApplyFilter => {
                if let Some(e) = self.editing.take() {
                    self.filter = e.trim().to_string();
                    self.refilter(session);
                    if self.filtered.is_empty() && !session.packets.is_empty() {
                        self.message = Some(format!("no packet matches `{}`", self.filter));
                    }
                }
            }
            Action::CancelFilter => self.editing = None,
            Action::ClearFilter => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter(session);
                }
            }
            Action::TogglePlay => {
                if session.can_advance() {
                    self.playing = !self.playing;
                } else {
                    self.playing = false;
                    self.message = Some("the run is complete: nothing left to play".into());
                }
            }
            Action::Tick => {
                if self.playing {
                    session.run_instant();
                    if !session.can_advance() {
                        self.playing = false;
                    }
                    self.refresh(session);
                }
            }
        }
    }

    fn clamp_command(&mut self, session: &Session) {
        self.command = self.command.min(session.commands().len().saturating_sub(1));
    }

    fn steps_len(&self, session: &Session) -> usize {
        self.packet().map_or(0, |p| session.packets[p].steps.len())
    }

    fn set_step(&mut self, s: usize) {
        self.step = s;
        self.table_scroll = 0;
    }

    fn move_step(&mut self, session: &Session, d: i32) {
        let n = self.steps_len(session);
        if n == 0 {
            return;
        }
        let s = (self.step as i64 + d as i64).clamp(0, n as i64 - 1) as usize;
        self.set_step(s);
    }

    fn move_packet(&mut self, _session: &Session, d: i32) {
        if self.filtered.is_empty() {
            return;
        }
        let n = self.filtered.len() as i64;
        let s = (self.selected as i64 + d as i64).clamp(0, n - 1) as usize;
        if s != self.selected {
            self.selected = s;
            self.set_step(0);
        }
    }

    /// The next drop: later in this packet, else the next dropped packet
    /// (wrapping around).
    fn next_drop(&mut self, session: &Session) {
        let is_drop = |r: u32| matches!(session.records[r as usize].event, TraceEvent::Drop { .. });
        if let Some(p) = self.packet()
            && let Some(k) = session.packets[p]
                .steps
                .get(self.step + 1..)
                .and_then(|rest| rest.iter().position(|&r| is_drop(r)))
        {
            self.set_step(self.step + 1 + k);
            return;
        }
        let n = self.filtered.len();
        for off in 1..=n {
            let i = (self.selected + off) % n;
            let p = &session.packets[self.filtered[i]];
            if let Some(k) = p.steps.iter().position(|&r| is_drop(r)) {
                self.selected = i;
                self.set_step(k);
                return;
            }
        }
        self.message = Some("no dropped packet".into());
    }

    /// Brings the packet list up to date with the session (after it ran
    /// further), keeping the selected packet.
    pub fn refresh(&mut self, session: &Session) {
        let now = (session.packets.len(), session.records.len());
        if now != self.seen {
            self.refilter(session);
        }
    }

    fn refilter(&mut self, session: &Session) {
        self.seen = (session.packets.len(), session.records.len());
        let keep = self.packet().map(|p| session.packets[p].id);
        let f = Filter::parse(&self.filter);
        self.filtered = (0..session.packets.len())
            .filter(|&i| f.matches(session, i))
            .collect();
        match keep.and_then(|id| {
            self.filtered
                .iter()
                .position(|&p| session.packets[p].id == id)
        }) {
            Some(i) => self.selected = i,
            None => {
                self.selected = 0;
                self.set_step(0);
            }
        }
        let n = self.steps_len(session);
        if self.step >= n {
            self.step = n.saturating_sub(1);
        }
    }
}

/// The action for a key press, given the state (focus, typing a filter,
/// help shown).
pub fn action_for_key(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Some(Action::Quit);
    }
    if app.editing.is_some() {
        return match key.code {
            KeyCode::Esc => Some(Action::CancelFilter),
            KeyCode::Enter => Some(Action::ApplyFilter),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::FilterChar(c)),
            _ => None,
        };
    }
    if app.help {
        return match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            _ => Some(Action::ToggleHelp),
        };
    }
    if app.commands {
        return match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('c') | KeyCode::Esc => Some(Action::ToggleCommands),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::MoveCommand(-1)),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::MoveCommand(1)),
            KeyCode::PageUp => Some(Action::MoveCommand(-10)),
            KeyCode::PageDown => Some(Action::MoveCommand(10)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::FirstCommand),
            KeyCode::End | KeyCode::Char('G') => Some(Action::LastCommand),
            KeyCode::Left | KeyCode::Char('p') | KeyCode::Char('h') => {
                Some(Action::ScrollBatch(-10))
            }
            KeyCode::Right | KeyCode::Char('n') | KeyCode::Char('l') => {
                Some(Action::ScrollBatch(10))
            }
            KeyCode::Char(' ') => Some(Action::TogglePlay),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            _ => None,
        };
    }
    let up_down = |d: i32| match app.focus {
        Pane::Packets => Some(if d < 0 {
            Action::PrevPacket
        } else {
            Action::NextPacket
        }),
        Pane::Steps => Some(if d < 0 {
            Action::PrevStep
        } else {
            Action::NextStep
        }),
        Pane::Tables => Some(Action::ScrollTables(d)),
    };
    match key.code {
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Up | KeyCode::Char('k') => up_down(-1),
        KeyCode::Down | KeyCode::Char('j') => up_down(1),
        KeyCode::PageUp => match app.focus {
            Pane::Tables => Some(Action::ScrollTables(-10)),
            _ => Some(Action::PacketPage(-10)),
        },
        KeyCode::PageDown => match app.focus {
            Pane::Tables => Some(Action::ScrollTables(10)),
            _ => Some(Action::PacketPage(10)),
        },
        KeyCode::Left | KeyCode::Char('p') | KeyCode::Char('h') => Some(Action::PrevStep),
        KeyCode::Right | KeyCode::Char('n') | KeyCode::Char('l') => Some(Action::NextStep),
        KeyCode::Home | KeyCode::Char('g') => Some(Action::FirstStep),
        KeyCode::End | KeyCode::Char('G') => Some(Action::LastStep),
        KeyCode::Char('d') => Some(Action::NextDrop),
        KeyCode::Char('/') => Some(Action::OpenFilter),
        KeyCode::Esc => Some(Action::ClearFilter),
        KeyCode::Tab => Some(Action::FocusNext),
        KeyCode::BackTab => Some(Action::FocusPrev),
        KeyCode::Char('t') => Some(Action::CycleTable),
        KeyCode::Char(' ') => Some(Action::TogglePlay),
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Char('c') => Some(Action::ToggleCommands),
        _ => None,
    }
}

/// A packet filter: space-separated terms, all of which must match.
/// `host:NAME`, `ns:NAME` (a namespace path `node1:test3` or name `test3`),
/// `proto:icmp`, `addr:A` (source or destination, or a prefix of one),
/// `outcome:delivered|answered|dropped|in-flight|REASON`, or a bare word matched
/// against the summary, the places and the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<(Option<String>, String)>,
}

impl Filter {
    pub fn parse(s: &str) -> Filter {
        let terms = s
            .split_whitespace()
            .map(|t| {
                let t = t.to_ascii_lowercase();
                match t.split_once(':') {
                    Some((k, v))
                        if matches!(k, "host" | "ns" | "proto" | "addr" | "outcome")
                            && !v.is_empty() =>
                    {
                        (Some(k.to_string()), v.to_string())
                    }
                    _ => (None, t),
                }
            })
            .collect();
        Filter { terms }
    }

    pub fn matches(&self, session: &Session, packet: usize) -> bool {
        if self.terms.is_empty() {
            return true;
        }
        let p = &session.packets[packet];
        let topo = session.topo();
        let places = || {
            let mut v: Vec<sim_core::topo::NodeId> = p
                .steps
                .iter()
                .map(|&r| session.records[r as usize].place)
                .collect();
            v.dedup();
            v
        };
        let outcome = outcome_words(session, packet);
        self.terms.iter().all(|(k, v)| match k.as_deref() {
            Some("host") => places().iter().any(|&pl| {
                topo.host_of(pl)
                    .is_some_and(|h| topo.name(h).eq_ignore_ascii_case(v))
            }),
            Some("ns") => places().iter().any(|&pl| {
                topo.get(pl).is_some_and(|n| {
                    n.kind == sim_core::topo::NodeKind::Namespace
                        && (n.path.eq_ignore_ascii_case(v) || n.name.eq_ignore_ascii_case(v))
                })
            }),
            Some("proto") => p.proto.eq_ignore_ascii_case(v),
            Some("addr") => [p.src, p.dst]
                .iter()
                .flatten()
                .any(|a| a.to_string().starts_with(v.as_str())),
            Some("outcome") => outcome.iter().any(|w| w.starts_with(v.as_str())),
            _ => {
                p.summary.to_ascii_lowercase().contains(v.as_str())
                    || p.by.to_ascii_lowercase().contains(v.as_str())
                    || outcome.iter().any(|w| w.contains(v.as_str()))
                    || places()
                        .iter()
                        .any(|&pl| topo.path(pl).to_ascii_lowercase().contains(v.as_str()))
            }
        })
    }
}

fn outcome_words(session: &Session, packet: usize) -> Vec<String> {
    match &session.packets[packet].outcome {
        PacketOutcome::InFlight => vec!["in-flight".into()],
        PacketOutcome::Delivered { .. } => vec!["delivered".into()],
        PacketOutcome::Answered { .. } => vec!["answered".into()],
        PacketOutcome::Dropped { reason, .. } => {
            vec!["dropped".into(), reason.code().to_string()]
        }
    }
}
