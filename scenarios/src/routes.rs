//! `podpath routes`: every BGP host's kernel routing table (`ip route`),
//! BIRD's view (`birdc show protocols`, `birdc show route`), and the
//! convergence report: for the cold start and after each timeline event,
//! when the last routing-table change happened, how many UPDATEs and
//! withdrawals it took, and which nodes lacked a route to a live block
//! (the black-hole window).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::time::SimTime;
use sim_core::trace::NullSink;
use sim_models::linux::HostId;
use sim_models::linux::bird::BgpCounters;
use sim_models::sim::{RunError, Simulation};

use crate::build::RunOptions;
use crate::load::Scenario;

/// One phase of the convergence report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// What started it: "cold start" or the timeline commands at that time.
    pub label: String,
    pub start: SimTime,
    /// The last kernel route change BIRD made in the phase.
    pub last_change: Option<SimTime>,
    pub route_changes: usize,
    pub counters: BgpCounters,
    /// The interval in which some running node lacked a route to another
    /// running node's block (first moment, moment it was whole again).
    pub black_hole: Option<(SimTime, Option<SimTime>)>,
    /// At the phase's end: node -> blocks it has no route to.
    pub lacking: BTreeMap<String, Vec<Ipv4Net>>,
}

/// What `podpath routes` reports.
pub struct RoutesReport {
    pub sim: Simulation,
    pub phases: Vec<Phase>,
    pub end: SimTime,
}

fn sub(a: BgpCounters, b: BgpCounters) -> BgpCounters {
    BgpCounters {
        opens: a.opens - b.opens,
        updates: a.updates - b.updates,
        withdrawals: a.withdrawals - b.withdrawals,
        keepalives: a.keepalives - b.keepalives,
        notifications: a.notifications - b.notifications,
    }
}

/// Which blocks each running BGP host lacks: the blocks the other running
/// speakers originate that it has no route for (`installed` per host). A
/// dedicated route reflector (a cluster id and no block of its own) is not
/// in any packet's path (reflection keeps the next hop) and is left out.
fn lacking(
    sim: &Simulation,
    installed: &BTreeMap<HostId, BTreeSet<Ipv4Net>>,
) -> BTreeMap<HostId, Vec<Ipv4Net>> {
    let w = &sim.world;
    // With the fabric engine every configured speaker runs (no failures).
    let running: Vec<HostId> = if w.bgp_fabric.is_some() {
        w.bird_setups.keys().copied().collect()
    } else {
        w.bird_apps
            .keys()
            .copied()
            .filter(|&h| w.bird_of(h).is_some())
            .collect()
    };
    let mut out = BTreeMap::new();
    for &h in &running {
        let setup = &w.bird_setups[&h];
        if setup.originate.is_empty() && setup.config.cluster_id.is_some() {
            continue;
        }
        let own: BTreeSet<Ipv4Net> = w.bird_setups[&h]
            .originate
            .iter()
            .map(|p| p.network())
            .collect();
        let have = installed.get(&h);
        let mut miss = Vec::new();
        for &o in &running {
            if o == h {
                continue;
            }
            for p in &w.bird_setups[&o].originate {
                let p = p.network();
                if !own.contains(&p) && !have.is_some_and(|s| s.contains(&p)) && !miss.contains(&p)
                {
                    miss.push(p);
                }
            }
        }
        if !miss.is_empty() {
            miss.sort();
            out.insert(h, miss);
        }
    }
    out
}

/// What each counted running BGP host should have a route to: the blocks
/// the other running speakers originate, less its own (see [`lacking`]).
fn expected_blocks(sim: &Simulation) -> BTreeMap<HostId, BTreeSet<Ipv4Net>> {
    lacking(sim, &BTreeMap::new())
        .into_iter()
        .map(|(h, miss)| (h, miss.into_iter().collect()))
        .collect()
}

/// Runs the scenario to `at` (default: its end), phase by phase.
pub fn routes(
    sc: &Scenario,
    opts: &RunOptions,
    at: Option<SimTime>,
) -> Result<RoutesReport, String> {
    let mut sim = sc.build(opts);
    let end = at.unwrap_or_else(|| sc.until(opts));
    // Phase boundaries: the BIRDs' start, then each distinct time of a
    // timeline command after it.
    let mut starts: BTreeMap<SimTime, Vec<String>> = BTreeMap::new();
    starts.insert(sc.bird_start, vec!["cold start".into()]);
    for c in &sc.commands {
        if matches!(c.source, crate::load::CmdSource::Timeline { .. })
            && c.at > sc.bird_start
            && c.at <= end
            && changes_state(&c.cmd)
        {
            let host = &sc.file.hosts[c.host].name;
            starts
                .entry(c.at)
                .or_default()
                .push(format!("{host}: {}", c.text));
        }
    }
    let bounds: Vec<(SimTime, String)> =
        starts.into_iter().map(|(t, v)| (t, v.join("; "))).collect();
    let mut phases = Vec::new();
    let mut installed: BTreeMap<HostId, BTreeSet<Ipv4Net>> = BTreeMap::new();
    let mut seen = 0usize;
    let mut sink = NullSink;
    let progress = &opts.progress;
    progress.begin(
        "simulating (phase by phase)",
        Some(end.as_nanos()),
        crate::progress::Unit::SimNanos,
    );
    // Run to just before the first boundary.
    for (i, (start, label)) in bounds.iter().enumerate() {
        let stop = bounds
            .get(i + 1)
            .map_or(end, |b| {
                SimTime::from_nanos(b.0.as_nanos().saturating_sub(1))
            })
            .min(end);
        if *start > end {
            break;
        }
        if i == 0 && start.as_nanos() > 0 {
            run(
                &mut sim,
                SimTime::from_nanos(start.as_nanos() - 1),
                &mut sink,
            )?;
            seen = sim.world.bgp_changes.mark();
        }
        let before = sim.world.bgp_counters;
        run(&mut sim, stop, &mut sink)?;
        progress.set(stop.as_nanos());
        let mut changes = sim.world.bgp_changes_since(seen).peekable();
        let mut black_hole: Option<(SimTime, Option<SimTime>)> = None;
        // Replay the phase's changes, counting after each instant the
        // (node, block) pairs missing a route. What each node should have
        // is taken from the speakers running at the phase's end.
        let expected = expected_blocks(&sim);
        let mut missing: usize = expected
            .iter()
            .map(|(h, want)| {
                let have = installed.get(h);
                want.iter()
                    .filter(|p| !have.is_some_and(|s| s.contains(p)))
                    .count()
            })
            .sum();
        if missing > 0 {
            black_hole = Some((*start, None));
        }
        let mut last_change = None;
        let mut route_changes = 0usize;
        while let Some(t) = changes.peek().map(|c| c.time) {
            while let Some(c) = changes.next_if(|c| c.time == t) {
                let set = installed.entry(c.host).or_default();
                let counted = expected.get(&c.host).is_some_and(|w| w.contains(&c.prefix));
                let changed = match c.via {
                    Some(_) => set.insert(c.prefix),
                    None => set.remove(&c.prefix),
                };
                if counted && changed {
                    match c.via {
                        Some(_) => missing -= 1,
                        None => missing += 1,
                    }
                }
                route_changes += 1;
            }
            last_change = Some(t);
            let bad = missing > 0;
            match (&mut black_hole, bad) {
                (None, true) => black_hole = Some((t, None)),
                (Some((_, e)), false) if e.is_none() => *e = Some(t),
                (Some((_, e)), true) => *e = None,
                _ => {}
            }
        }
        drop(changes);
        seen = sim.world.bgp_changes.mark();
        let lack = lacking(&sim, &installed)
            .into_iter()
            .map(|(h, v)| (sim.world.hosts[h.ix()].name.clone(), v))
            .collect();
        phases.push(Phase {
            label: label.clone(),
            start: *start,
            last_change,
            route_changes,
            counters: sub(sim.world.bgp_counters, before),
            black_hole,
            lacking: lack,
        });
    }
    progress.end();
    Ok(RoutesReport { sim, phases, end })
}

/// Runs until BGP has settled after `start`: every configured session of
/// every running BIRD is Established and no kernel route changed in the
/// last second, checked each second for at most 10 minutes of simulated
/// time. Returns the time reached.
pub fn settle(
    sim: &mut Simulation,
    start: SimTime,
    progress: &crate::progress::Progress,
) -> Result<SimTime, String> {
    progress.begin(
        "BGP converging (simulated time, at most 600 s)",
        Some(600_000_000_000),
        crate::progress::Unit::SimNanos,
    );
    let res = settle_seconds(sim, start, progress);
    progress.end();
    res
}

fn settle_seconds(
    sim: &mut Simulation,
    start: SimTime,
    progress: &crate::progress::Progress,
) -> Result<SimTime, String> {
    use sim_models::bgp::State;
    // The fabric engine installs everything at one known time.
    if let Some(at) = sim.world.bgp_fabric.as_ref().map(|f| f.converged_at) {
        let t = at.max(start).max(sim.now());
        run(sim, t, &mut NullSink)?;
        return Ok(t);
    }
    let second = sim_core::time::SimDuration::from_secs(1);
    let from = start.max(sim.now());
    let mut t = from;
    let mut changes = usize::MAX;
    let mut sink = NullSink;
    for _ in 0..600 {
        t += second;
        run(sim, t, &mut sink)?;
        progress.set(t.as_nanos() - from.as_nanos());
        let w = &sim.world;
        let up = w.birds().iter().filter(|b| b.running).all(|b| {
            b.setup
                .config
                .neighbors
                .iter()
                .all(|n| b.speaker.state(n.address) == Some(State::Established))
        });
        if up && w.bgp_changes.count() == changes {
            return Ok(t);
        }
        changes = w.bgp_changes.count();
    }
    Err(format!(
        "BGP did not settle within 600 s of simulated time after {start} (sessions not all Established, or routes still changing)"
    ))
}

/// Whether a timeline command can change routing (a phase of the report):
/// not traffic, captures, or commands that only print.
pub(crate) fn changes_state(c: &sim_models::cmd::Command) -> bool {
    use sim_models::cmd::{
        AddrCmd, BirdCmd, BirdcCmd, CommandKind as K, FdbCmd, LinkCmd, NeighCmd, RouteCmd, RuleCmd,
        TunnelCmd,
    };
    let read_only = match &c.kind {
        K::Noop
        | K::Ping(_)
        | K::Traceroute { .. }
        | K::Tcpdump { .. }
        | K::Nc(_)
        | K::Iperf3(_)
        | K::Sysctl { value: None, .. }
        | K::Link(LinkCmd::Show { .. })
        | K::Addr(AddrCmd::Show { .. })
        | K::Route(RouteCmd::Show { .. } | RouteCmd::Get { .. })
        | K::Rule(RuleCmd::Show)
        | K::Neigh(NeighCmd::Show { .. } | NeighCmd::ArpShow)
        | K::Fdb(FdbCmd::Show { .. })
        | K::Tunnel(TunnelCmd::Show { .. })
        | K::Bird(BirdCmd::Ctl(BirdcCmd::ShowProtocols { .. } | BirdcCmd::ShowRoute { .. })) => {
            true
        }
        K::Iptables { args, .. } => args
            .iter()
            .any(|a| matches!(a.as_str(), "-S" | "-L" | "--list" | "--list-rules")),
        _ => false,
    };
    !read_only
}

fn run(sim: &mut Simulation, until: SimTime, sink: &mut NullSink) -> Result<(), String> {
    match sim.run_until(until, sink) {
        Ok(_) => Ok(()),
        Err(RunError::Limit(e)) => Err(e.to_string()),
        Err(RunError::Command { log, .. }) => Err(format!(
            "command failed at {} on {}: {}: {}",
            log.time,
            log.place,
            log.line,
            log.output.stderr.trim()
        )),
    }
}

/// Renders the report: per node (all BGP hosts, or `node`), its tables; then
/// the convergence report.
pub fn render(r: &RoutesReport, node: Option<&str>) -> Result<String, String> {
    let w = &r.sim.world;
    let mut s = String::new();
    let hosts: Vec<HostId> = w.bird_setups.keys().copied().collect();
    if let Some(n) = node
        && !hosts.iter().any(|h| w.hosts[h.ix()].name == n)
    {
        let known: Vec<&str> = hosts
            .iter()
            .map(|h| w.hosts[h.ix()].name.as_str())
            .collect();
        return Err(format!("no BGP node \"{n}\": expected one of {known:?}"));
    }
    let _ = writeln!(s, "=== routing tables at {} ===", r.end);
    for &h in &hosts {
        let name = &w.hosts[h.ix()].name;
        if node.is_some_and(|n| n != name) {
            continue;
        }
        let ns = w.hosts[h.ix()].root;
        let _ = writeln!(s, "\n--- {name} ---\n$ ip route");
        s.push_str(&w.show_routes(ns, None, None));
        match w.running_bird_app(h) {
            Some(app) => {
                s.push_str("$ birdc show protocols\n");
                s.push_str(&w.birdc_show_protocols(app, false, None, r.end));
                s.push_str("$ birdc show route\n");
                s.push_str(&w.birdc_show_route(app, false, None, None));
            }
            None if w.bgp_fabric.is_some() => s.push_str(
                "(BGP engine fabric: no BIRD runs; the bird routes above are those its BIRD would install)\n",
            ),
            None => s.push_str("(BIRD is not running)\n"),
        }
    }
    s.push('\n');
    s.push_str(&render_convergence(r));
    Ok(s)
}

/// The convergence report alone.
pub fn render_convergence(r: &RoutesReport) -> String {
    let mut s = String::from("=== convergence ===\n");
    for p in &r.phases {
        let _ = writeln!(s, "at {} ({}):", p.start, p.label);
        match p.last_change {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "  last routing-table change at {} (+{}), {} route changes",
                    t,
                    t - p.start,
                    p.route_changes
                );
            }
            None => {
                let _ = writeln!(s, "  no routing-table change");
            }
        }
        let c = p.counters;
        let _ = writeln!(
            s,
            "  messages: {} UPDATE ({} with withdrawals), {} OPEN, {} KEEPALIVE, {} NOTIFICATION",
            c.updates, c.withdrawals, c.opens, c.keepalives, c.notifications
        );
        match p.black_hole {
            None => {
                let _ = writeln!(
                    s,
                    "  black-hole window: none (every node had a route to every live block)"
                );
            }
            Some((a, Some(b))) => {
                let _ = writeln!(s, "  black-hole window: {a} to {b} ({})", b - a);
            }
            Some((a, None)) => {
                let _ = writeln!(
                    s,
                    "  black-hole window: from {a}, still open at the phase's end"
                );
            }
        }
        for (n, v) in &p.lacking {
            let l: Vec<String> = v.iter().map(Ipv4Net::to_string).collect();
            let _ = writeln!(s, "  {n} lacks a route to {}", l.join(", "));
        }
    }
    s
}

/// Every BGP host's installed routes: host -> prefix -> next hop (the
/// properties tests assert).
pub fn installed_routes(sim: &Simulation) -> BTreeMap<String, BTreeMap<Ipv4Net, Ipv4Addr>> {
    let w = &sim.world;
    w.birds()
        .into_iter()
        .map(|b| {
            (
                w.hosts[b.host.ix()].name.clone(),
                b.installed.iter().map(|(p, i)| (*p, i.next_hop)).collect(),
            )
        })
        .collect()
}
