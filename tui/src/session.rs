//! A recorded run: the simulation driven event by event, every trace record
//! kept, packets indexed, and the tables of each namespace snapshotted as
//! they change (see [`crate::snap`]), so the UI can step through any packet
//! forward and back without running anything again.
//!
//! The loop is the one of `sim_models::sim::Simulation::run_until`
//! (`Scheduler::step` + `World::handle`, commands run with `World::exec`),
//! with one addition: before an event runs, the namespace it happens in is
//! snapshotted if its tables changed since its last snapshot. A step
//! therefore shows the tables as they stood when its event began: what its
//! lookups consulted (a change the same event makes, such as a new
//! INCOMPLETE neighbour entry, shows from the packet's next event on).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use scenarios::{RunOptions, Scenario};
use sim_core::packet::PacketId;
use sim_core::time::SimTime;
use sim_core::topo::{NodeId, NodeKind, Topology};
use sim_core::trace::{DropReason, Encap, TraceEvent, TraceRecord, VecSink};
use sim_models::cmd::{BatchCmd, CommandKind};
use sim_models::linux::{CmdOutput, Cx, Event, NsId, World};
use sim_models::sim::{CmdLog, Simulation, error_matches};

use crate::snap::{SnapId, SnapStore};

/// How far the run has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Nothing has run yet (`--step`: before time 0).
    NotStarted,
    /// Events remain before the time bound.
    Running,
    /// Nothing left to do before the time bound.
    Finished,
    /// Stopped by a failing command or a run bound (the message says which).
    Stopped(String),
}

/// How a packet's trace ends (so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketOutcome {
    InFlight,
    Delivered {
        at: NodeId,
        to: Arc<str>,
    },
    Dropped {
        at: NodeId,
        reason: DropReason,
    },
    /// Consumed by a host that answered it (an ARP request, with its reply).
    Answered {
        at: NodeId,
        reply: PacketId,
    },
}

/// One packet of the run, with its steps.
#[derive(Debug, Clone)]
pub struct PacketInfo {
    pub id: PacketId,
    /// Time of its first step.
    pub first: SimTime,
    /// Who created it (`ping`, `kernel`, ...), and its tcpdump-style summary.
    pub by: Arc<str>,
    pub summary: Arc<str>,
    /// `ICMP`, `UDP`, `TCP`, `ARP`, `IP`.
    pub proto: &'static str,
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
    /// Indices into [`Session::records`].
    pub steps: Vec<u32>,
    pub outcome: PacketOutcome,
}

/// The headers a packet carries at one step, reconstructed from its steps:
/// the packet as created, TTL decrements, and tunnel headers pushed by
/// encapsulation steps and popped by decapsulation steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepHeaders {
    /// Tunnel headers, outermost first.
    pub outer: Vec<String>,
    /// The packet as created (tcpdump-style), with what changed since.
    pub inner: String,
}

/// The most command lines a scenario may run for the UI to expand its
/// batches (a generated cluster's per-peer `ip route`, `ip neigh` and
/// `bridge fdb` commands, see `Scenario::expand_batches`) so that each line
/// is its own entry in the command log, with its own text and output.
/// Expanding keeps every line as a parsed command, a step and a log entry
/// (a few hundred bytes each): 100,000 lines are some tens of MiB and cover
/// a flannel-vxlan cluster of about 175 nodes (3 lines per peer per node,
/// some 33 more per node with one pod).
/// Above it a batch stays one entry that says how many lines it stands for
/// and pages through them on demand.
pub const EXPAND_BATCHES_UP_TO: usize = 100_000;

/// A recorded run of a scenario.
pub struct Session {
    pub name: String,
    pub path: String,
    pub seed: u64,
    sim: Simulation,
    until: SimTime,
    positions: Vec<(u32, u32)>,
    pub records: Vec<TraceRecord>,
    /// For each record, the snapshot of its namespace's tables when its event began.
    rec_snap: Vec<Option<SnapId>>,
    pub packets: Vec<PacketInfo>,
    by_id: BTreeMap<PacketId, usize>,
    pub snaps: SnapStore,
    state: RunState,
    ns_by_node: BTreeMap<NodeId, NsId>,
    ns_known: usize,
    buf: VecSink,
    /// The batches run unexpanded, by their entry in the command log.
    batches: BTreeMap<usize, BatchCmd>,
    /// Whether the scenario's batches were expanded into lines.
    expanded: bool,
    /// The scenario's command lines (a batch counted as its lines), and
    /// the bound up to which batches are expanded.
    lines: usize,
    expand_limit: usize,
}

impl Session {
    /// Builds the scenario's simulation; nothing runs yet. Its batches are
    /// expanded when it runs at most [`EXPAND_BATCHES_UP_TO`] command lines.
    pub fn new(sc: &Scenario, opts: &RunOptions) -> Session {
        Session::with_expand_limit(sc, opts, EXPAND_BATCHES_UP_TO)
    }

    /// As [`Session::new`], with the number of command lines up to which
    /// batches are expanded (`0` keeps every batch whole).
    pub fn with_expand_limit(sc: &Scenario, opts: &RunOptions, limit: usize) -> Session {
        let has_batch = sc
            .commands
            .iter()
            .any(|c| matches!(c.cmd.kind, CommandKind::Batch(_)));
        let lines = sc.command_lines();
        let expanded = has_batch && lines <= limit;
        let copy;
        let sc = if expanded {
            let mut e = sc.clone();
            e.expand_batches();
            copy = e;
            &copy
        } else {
            sc
        };
        let mut sim = sc.build(opts);
        // Setup and timeline commands are events, scheduled as
        // `Simulation::run_until` schedules them.
        for i in 0..sim.steps.len() {
            let at = sim.steps[i].at;
            sim.sched.schedule_at(at, Event::Command { index: i });
        }
        Session {
            name: sc.file.name.clone(),
            path: sc.path.clone(),
            seed: sc.seed(opts),
            sim,
            until: sc.until(opts),
            positions: sc
                .commands
                .iter()
                .map(|c| (c.pos.line, c.pos.col))
                .collect(),
            records: Vec::new(),
            rec_snap: Vec::new(),
            packets: Vec::new(),
            by_id: BTreeMap::new(),
            snaps: SnapStore::new(),
            state: RunState::NotStarted,
            ns_by_node: BTreeMap::new(),
            ns_known: 0,
            buf: VecSink::default(),
            batches: BTreeMap::new(),
            expanded,
            lines,
            expand_limit: limit,
        }
    }

    /// Builds and runs the scenario to its end.
    pub fn run(sc: &Scenario, opts: &RunOptions) -> Session {
        let mut s = Session::new(sc, opts);
        s.run_to_end();
        s
    }

    pub fn world(&self) -> &World {
        &self.sim.world
    }

    pub fn topo(&self) -> &Topology {
        &self.sim.world.topo
    }

    pub fn simulation(&self) -> &Simulation {
        &self.sim
    }

    /// The commands run so far, in order: time, place, line and output.
    pub fn commands(&self) -> &[CmdLog] {
        &self.sim.log
    }

    /// The batch that command-log entry `i` ran whole, if it was one (a
    /// scenario above [`EXPAND_BATCHES_UP_TO`] lines).
    pub fn batch(&self, i: usize) -> Option<&BatchCmd> {
        self.batches.get(&i)
    }

    /// Whether the scenario's batches were expanded, one command per line.
    pub fn batches_expanded(&self) -> bool {
        self.expanded
    }

    /// The scenario's command lines (a batch counted as the lines it
    /// stands for) and the bound up to which its batches are expanded.
    pub fn command_lines(&self) -> (usize, usize) {
        (self.lines, self.expand_limit)
    }

    /// The simulated time the run has reached.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Whether events remain to be run.
    pub fn can_advance(&self) -> bool {
        matches!(self.state, RunState::NotStarted | RunState::Running)
    }

    pub fn events(&self) -> u64 {
        self.sim.sched.events_processed()
    }

    /// The time of the next event to run, if any before the time bound.
    pub fn next_time(&self) -> Option<SimTime> {
        if !self.can_advance() {
            return None;
        }
        self.sim.sched.peek_time().filter(|t| *t <= self.until)
    }

    /// Runs every event to the end of the run.
    pub fn run_to_end(&mut self) {
        while self.step_event() {}
    }

    /// Runs every event of the next simulated instant (what `space` does
    /// per tick). Returns whether anything ran.
    pub fn run_instant(&mut self) -> bool {
        let Some(t) = self.next_time() else {
            self.step_event();
            return false;
        };
        let mut ran = false;
        while self.next_time() == Some(t) {
            ran |= self.step_event();
        }
        ran
    }

    /// Runs one event. Returns false when there was nothing to run.
    pub fn step_event(&mut self) -> bool {
        if !self.can_advance() {
            return false;
        }
        match self.sim.sched.peek_time() {
            Some(t) if t <= self.until => {}
            _ => {
                self.state = RunState::Finished;
                return false;
            }
        }
        let (now, _id, ev) = match self.sim.sched.step() {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.state = RunState::Finished;
                return false;
            }
            Err(e) => {
                self.state = RunState::Stopped(e.to_string());
                return false;
            }
        };
        self.state = RunState::Running;
        // The tables of the namespace the event happens in, as they stand
        // before it runs.
        let primary = self.event_ns(&ev);
        let pre = primary.map(|ns| (ns, self.snaps.current(&self.sim.world, ns, now)));
        let mut sink = std::mem::take(&mut self.buf);
        let mut failure = None;
        {
            let sim = &mut self.sim;
            let mut cx = Cx::new(now, &mut sim.sched, &mut sink);
            if let Some(index) = sim.world.handle(&mut cx, ev) {
                let step = &sim.steps[index];
                let place = match &step.cmd.netns {
                    Some(n) => format!("{}:{n}", sim.world.hosts[step.host.ix()].name),
                    None => sim.world.hosts[step.host.ix()].name.clone(),
                };
                // A batch kept whole runs as `Simulation` runs it: each
                // command as if it were its own step and event, stopping at
                // the first that fails (a batch expects no error).
                let mut line = step.line.to_string();
                let out = if let CommandKind::Batch(b) = &step.cmd.kind {
                    self.batches.insert(sim.log.len(), b.clone());
                    let mut out = CmdOutput::ok("");
                    for k in 0..b.0.len() {
                        if k > 0
                            && let Err(e) = cx.sched.count_event()
                        {
                            failure = Some(e.to_string());
                            break;
                        }
                        let o = sim.world.exec(&mut cx, step.host, &b.0.command(k));
                        if o.failed {
                            line = b.0.line(k);
                            out = o;
                            break;
                        }
                    }
                    out
                } else {
                    sim.world.exec(&mut cx, step.host, &step.cmd)
                };
                let ok = match &step.expect_error {
                    None => !out.failed,
                    Some(None) => out.failed,
                    Some(Some(text)) => out.failed && error_matches(&out.stderr, text),
                };
                if !ok {
                    let pos = self
                        .positions
                        .get(step.origin)
                        .map(|(l, c)| format!("{}:{l}:{c}: ", self.path))
                        .unwrap_or_default();
                    failure = Some(if out.failed {
                        format!(
                            "{pos}command failed on {place}: `{line}`: {}",
                            out.stderr.trim()
                        )
                    } else {
                        format!(
                            "{pos}command on {place} was expected to fail but succeeded: `{}`",
                            step.line
                        )
                    });
                }
                sim.log.push(CmdLog {
                    time: now,
                    place,
                    line: step.line.clone(),
                    origin: step.origin,
                    output: out,
                });
            }
        }
        self.refresh_namespaces();
        for rec in sink.records.drain(..) {
            let snap = match self.ns_by_node.get(&rec.place).copied() {
                Some(ns) => match pre {
                    Some((p, id)) if p == ns => Some(id),
                    // A step in another namespace than the event's: its
                    // tables now (unchanged since the event began unless the
                    // event itself changed them).
                    _ => Some(self.snaps.current(&self.sim.world, ns, now)),
                },
                None => None,
            };
            self.add_record(rec, snap);
        }
        self.buf = sink;
        if let Some(f) = failure {
            self.state = RunState::Stopped(f);
        }
        true
    }

    /// The namespace an event happens in: None for a segment's switch, a
    /// command that sends nothing, or an event this UI does not know (the
    /// steps of those get their namespace's tables as the event left them).
    fn event_ns(&self, ev: &Event) -> Option<NsId> {
        use sim_models::linux::apps::App;
        let w = &self.sim.world;
        if let Event::Rx { dev, .. } | Event::ProxyArpReply { dev, .. } = ev {
            return Some(w.dev(*dev).ns);
        }
        if let Event::NeighTimer { ns, .. } = ev {
            return Some(*ns);
        }
        if let Event::App { app, .. } = ev {
            let a = w.apps.get(*app)?;
            if let App::Ping(p) = a {
                return Some(p.ns);
            }
            if let App::Traceroute(t) = a {
                return Some(t.ns);
            }
            return None;
        }
        if let Event::Command { index } = ev {
            let step = &self.sim.steps[*index];
            if !matches!(
                step.cmd.kind,
                CommandKind::Ping(_) | CommandKind::Traceroute { .. }
            ) {
                return None;
            }
            let host = &w.hosts[step.host.ix()];
            return match &step.cmd.netns {
                None => Some(host.root),
                Some(n) => host.namespaces.get(n).copied(),
            };
        }
        None
    }

    fn refresh_namespaces(&mut self) {
        let w = &self.sim.world;
        while self.ns_known < w.namespaces.len() {
            let ns = NsId(self.ns_known as u32);
            self.ns_by_node.insert(w.namespaces[ns.ix()].node, ns);
            self.ns_known += 1;
        }
    }

    fn add_record(&mut self, rec: TraceRecord, snap: Option<SnapId>) {
        let idx = self.records.len() as u32;
        let pi = match self.by_id.get(&rec.packet) {
            Some(&i) => i,
            None => {
                let (by, summary, dst) = match &rec.event {
                    TraceEvent::Originate { by, summary, dst } => {
                        (by.clone(), summary.clone(), *dst)
                    }
                    _ => (
                        Arc::from("?"),
                        Arc::from("(created before the trace)"),
                        None,
                    ),
                };
                let (proto, src, dst2) = parse_summary(&summary);
                self.packets.push(PacketInfo {
                    id: rec.packet,
                    first: rec.time,
                    by,
                    summary,
                    proto,
                    src,
                    dst: dst.or(dst2),
                    steps: Vec::new(),
                    outcome: PacketOutcome::InFlight,
                });
                self.by_id.insert(rec.packet, self.packets.len() - 1);
                self.packets.len() - 1
            }
        };
        let p = &mut self.packets[pi];
        p.steps.push(idx);
        // The last delivery or drop is the end (a VXLAN packet is first
        // delivered to the tunnel socket, then its inner packet goes on).
        match &rec.event {
            TraceEvent::Deliver { to } => {
                p.outcome = PacketOutcome::Delivered {
                    at: rec.place,
                    to: to.clone(),
                };
            }
            TraceEvent::Drop { reason } => {
                p.outcome = PacketOutcome::Dropped {
                    at: rec.place,
                    reason: reason.clone(),
                };
            }
            TraceEvent::Reply { reply, .. } if p.outcome == PacketOutcome::InFlight => {
                p.outcome = PacketOutcome::Answered {
                    at: rec.place,
                    reply: *reply,
                };
            }
            _ => {}
        }
        self.records.push(rec);
        self.rec_snap.push(snap);
    }

    /// The packet with this id.
    pub fn packet_by_id(&self, id: PacketId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The snapshot for a record: its own namespace's, or for a step on a
    /// segment, the one of the packet's last step in a namespace.
    pub fn snapshot_for(&self, packet: usize, step: usize) -> Option<SnapId> {
        let steps = &self.packets[packet].steps;
        steps[..=step.min(steps.len().saturating_sub(1))]
            .iter()
            .rev()
            .find_map(|&r| self.rec_snap[r as usize])
    }

    /// The namespace path (`node1:test3`) of a snapshot.
    pub fn ns_label(&self, id: SnapId) -> String {
        self.sim.world.ns_label(self.snaps.get(id).ns)
    }

    /// The headers of `packet` at its step `step`.
    pub fn headers_at(&self, packet: usize, step: usize) -> StepHeaders {
        let p = &self.packets[packet];
        let mut outer: Vec<String> = Vec::new();
        let mut ttl = None;
        let mut frag = None;
        for &r in p.steps.iter().take(step + 1) {
            match &self.records[r as usize].event {
                TraceEvent::Encapsulate {
                    encap,
                    outer_src,
                    outer_dst,
                    ..
                } => outer.insert(
                    0,
                    match encap {
                        Encap::Vxlan {
                            vni,
                            src_port,
                            dst_port,
                        } => format!(
                            "IP {outer_src}.{src_port} > {outer_dst}.{dst_port}: VXLAN, vni {vni}"
                        ),
                        Encap::Ipip => format!("IP {outer_src} > {outer_dst}: IPIP (proto 4)"),
                    },
                ),
                TraceEvent::Decapsulate { .. } if !outer.is_empty() => {
                    outer.remove(0);
                }
                TraceEvent::TtlDecrement { ttl: t } => ttl = Some(*t),
                TraceEvent::Fragment { mtu, count } => {
                    frag = Some(format!("in {count} fragments for MTU {mtu}"))
                }
                _ => {}
            }
        }
        let mut inner = p.summary.to_string();
        let notes: Vec<String> = ttl
            .map(|t| format!("ttl {t}"))
            .into_iter()
            .chain(frag)
            .collect();
        if !notes.is_empty() {
            inner = format!("{inner} ({})", notes.join(", "));
        }
        StepHeaders { outer, inner }
    }

    /// The places a packet crossed, in order, each with the devices it
    /// received or sent on there: `[(node1:test3, [veth3]), (node1, [br-veth3, vxlan.1, eth0]), (lan, []), ...]`,
    /// and for each of the packet's steps, the index of its hop.
    pub fn path_of(&self, packet: usize) -> (Vec<Hop>, Vec<usize>) {
        let mut hops: Vec<Hop> = Vec::new();
        let mut at = Vec::new();
        for &r in &self.packets[packet].steps {
            let rec = &self.records[r as usize];
            if hops.last().is_none_or(|h| h.place != rec.place) {
                hops.push(Hop {
                    place: rec.place,
                    devs: Vec::new(),
                });
            }
            let h = hops.last_mut().unwrap();
            if let TraceEvent::Receive { dev, .. } | TraceEvent::Transmit { dev, .. } = &rec.event
                && h.devs.last() != Some(dev)
            {
                h.devs.push(*dev);
            }
            at.push(hops.len() - 1);
        }
        (hops, at)
    }

    /// Whether a place is a namespace (not a segment).
    pub fn is_namespace(&self, place: NodeId) -> bool {
        self.topo()
            .get(place)
            .is_some_and(|n| n.kind == NodeKind::Namespace)
    }
}

/// One place a packet crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub place: NodeId,
    pub devs: Vec<NodeId>,
}

/// Protocol, source and destination from a tcpdump-style summary
/// (`IP 172.16.1.1 > 172.16.2.1: ICMP echo request, ...`,
/// `ARP request who-has A tell B`, `ARP reply A is-at M`).
pub fn parse_summary(s: &str) -> (&'static str, Option<Ipv4Addr>, Option<Ipv4Addr>) {
    fn addr(tok: &str) -> Option<Ipv4Addr> {
        // `1.2.3.4` or `1.2.3.4.port`
        let parts: Vec<&str> = tok.trim_end_matches(':').split('.').collect();
        if parts.len() < 4 {
            return None;
        }
        parts[..4].join(".").parse().ok()
    }
    if let Some(rest) = s.strip_prefix("ARP") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let after = |w: &str| {
            words
                .iter()
                .position(|x| *x == w)
                .and_then(|i| words.get(i + 1))
                .and_then(|t| addr(t.trim_end_matches(',')))
        };
        if let Some(target) = after("who-has") {
            return ("ARP", after("tell"), Some(target));
        }
        let src = words
            .iter()
            .position(|x| *x == "is-at")
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| addr(words[i]));
        return ("ARP", src, None);
    }
    if let Some(rest) = s.strip_prefix("IP ") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let src = words.first().and_then(|t| addr(t));
        let dst = words.get(2).and_then(|t| addr(t));
        let proto = match words.get(3).map(|w| w.trim_end_matches(',')) {
            Some("ICMP") => "ICMP",
            Some("UDP") | Some("VXLAN") => "UDP",
            Some("Flags") => "TCP",
            _ => "IP",
        };
        return (proto, src, dst);
    }
    ("?", None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_parse() {
        let a = |s: &str| s.parse::<Ipv4Addr>().ok();
        assert_eq!(
            parse_summary(
                "IP 172.16.1.1 > 172.16.2.1: ICMP echo request, id 4096, seq 1, length 64"
            ),
            ("ICMP", a("172.16.1.1"), a("172.16.2.1"))
        );
        assert_eq!(
            parse_summary("IP 10.0.0.1.40000 > 10.0.0.2.53: UDP, length 10"),
            ("UDP", a("10.0.0.1"), a("10.0.0.2"))
        );
        assert_eq!(
            parse_summary("IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1, win 1, length 0"),
            ("TCP", a("10.0.0.1"), a("10.0.0.2"))
        );
        assert_eq!(
            parse_summary("ARP request who-has 169.254.1.1 tell 172.16.1.1"),
            ("ARP", a("172.16.1.1"), a("169.254.1.1"))
        );
        assert_eq!(
            parse_summary("ARP reply 169.254.1.1 is-at de:74:24:33:10:a1"),
            ("ARP", a("169.254.1.1"), None)
        );
    }
}
