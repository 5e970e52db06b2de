//! Running a scenario and checking its expectations.

use std::net::Ipv4Addr;

use sim_core::packet::PacketId;
use sim_core::sched::RunEnd;
use sim_core::time::SimTime;
use sim_core::topo::NodeKind;
use sim_core::trace::{TraceEvent, TraceRecord, TraceSink, VecSink};
use sim_models::linux::apps::App;
use sim_models::sim::{RunError, Simulation};

use crate::build::RunOptions;
use crate::format::ExpectSpec;
use crate::load::{Diagnostic, Scenario};
use crate::spans::PathSeg;

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectResult {
    pub index: usize,
    pub what: String,
    pub passed: bool,
    /// What was seen instead, when it failed.
    pub detail: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end (or to the time bound) with every expectation met.
    Passed,
    /// Ran, but an expectation failed.
    ExpectationFailed,
    /// A command failed (positioned), or a runtime reference was bad.
    InputError(Diagnostic),
    /// A run bound was reached (the message names it).
    Limit(String),
}

pub struct RunResult {
    pub sim: Simulation,
    pub trace: Vec<TraceRecord>,
    pub outcome: Outcome,
    pub expectations: Vec<ExpectResult>,
    pub seed: u64,
    pub end: Option<RunEnd>,
}

impl RunResult {
    /// Process exit code: 0 success, 1 expectation failed, 2 invalid input or bound reached.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Passed => 0,
            Outcome::ExpectationFailed => 1,
            Outcome::InputError(_) | Outcome::Limit(_) => 2,
        }
    }
}

/// Runs a scenario to its end, keeping the whole trace.
pub fn run(sc: &Scenario, opts: &RunOptions) -> RunResult {
    let mut sink = VecSink::default();
    let mut r = run_with_sink(sc, opts, &mut sink);
    r.trace = sink.records;
    r
}

/// Runs a scenario with a caller's sink (the returned trace is empty).
pub fn run_with_sink(sc: &Scenario, opts: &RunOptions, sink: &mut dyn TraceSink) -> RunResult {
    let mut sim = sc.build(opts);
    let until = sc.until(opts);
    let seed = sc.seed(opts);
    let res = run_sliced(&mut sim, until, sink, &opts.progress);
    let (outcome, end) = match res {
        Ok(end) => (Outcome::Passed, Some(end)),
        Err(RunError::Limit(e)) => (Outcome::Limit(e.to_string()), None),
        Err(RunError::Command {
            origin,
            log,
            expected,
        }) => {
            let pos = match sc.commands.get(origin) {
                Some(c) => c.pos,
                None if origin == crate::build::BGP_ORIGIN => sc.bgp_pos,
                None => crate::spans::Pos { line: 1, col: 1 },
            };
            let msg = match expected {
                None => format!(
                    "command failed on {}: `{}`: {}",
                    log.place,
                    log.line,
                    log.output.stderr.trim()
                ),
                Some(Some(want)) if log.output.failed => format!(
                    "command on {} failed with a different error: `{}`\n  expected: {}\n  got:      {}",
                    log.place,
                    log.line,
                    want.trim(),
                    log.output.stderr.trim()
                ),
                Some(_) => format!(
                    "command on {} was expected to fail but succeeded: `{}`",
                    log.place, log.line
                ),
            };
            (Outcome::InputError(sc.diag(pos, msg)), None)
        }
    };
    let mut r = RunResult {
        sim,
        trace: Vec::new(),
        outcome,
        expectations: Vec::new(),
        seed,
        end,
    };
    r.sim.world.output.sort_by_key(|a| a.time);
    let _ = &mut r;
    r
}

/// Runs to `until`; with an observer, in at most 200 slices of simulated
/// time, reporting the time reached after each. The slices change nothing:
/// `run_until` stops after the last event due by a slice's end and the next
/// slice goes on from there, and a run that has nothing left ends `Idle`
/// in whichever slice that happens, as it would unsliced.
pub fn run_sliced(
    sim: &mut sim_models::sim::Simulation,
    until: SimTime,
    sink: &mut dyn TraceSink,
    progress: &crate::progress::Progress,
) -> Result<RunEnd, RunError> {
    if !progress.is_on() || until == SimTime::MAX {
        return sim.run_until(until, sink);
    }
    let total = until.as_nanos();
    progress.begin("simulating", Some(total), crate::progress::Unit::SimNanos);
    let step = (total / 200).max(1_000_000);
    let mut t = 0u64;
    let res = loop {
        t = t.saturating_add(step).min(total);
        match sim.run_until(SimTime::from_nanos(t), sink) {
            Ok(RunEnd::ReachedTime) if t < total => progress.set(t),
            other => break other,
        }
    };
    progress.end();
    res
}

/// Evaluates the scenario's expectations against a finished run (needs the trace).
pub fn check(sc: &Scenario, r: &mut RunResult) {
    let mut results = Vec::new();
    for (i, e) in sc.file.expect.iter().enumerate() {
        let (what, res) = match e {
            ExpectSpec::FullReach { from, to } => full_reach(sc, r, from.as_deref(), to.as_deref()),
            _ => eval(r, e),
        };
        let (passed, detail) = match res {
            Ok(()) => (true, String::new()),
            Err(d) => (false, d),
        };
        results.push(ExpectResult {
            index: i,
            what,
            passed,
            detail,
        });
    }
    if r.outcome == Outcome::Passed && results.iter().any(|x| !x.passed) {
        r.outcome = Outcome::ExpectationFailed;
    }
    r.expectations = results;
}

/// The expectation's position in the file.
pub fn expect_pos(sc: &Scenario, i: usize) -> crate::spans::Pos {
    sc.pos_of(&[PathSeg::Field("expect"), PathSeg::Index(i)])
}

/// `FullReach`: all-pairs probes on a fresh setup of the scenario.
fn full_reach(
    sc: &Scenario,
    r: &RunResult,
    from: Option<&str>,
    to: Option<&str>,
) -> (String, Result<(), String>) {
    let what = format!(
        "FullReach from {} to {}",
        from.unwrap_or("every pod"),
        to.unwrap_or("every pod")
    );
    let opts = RunOptions {
        seed: Some(r.seed),
        ..Default::default()
    };
    match crate::reach::reach(sc, &opts, from, to, false) {
        Err(e) => (what, Err(e)),
        Ok(rep) => {
            let bad: Vec<_> = rep.pairs.iter().filter(|p| !p.ok).collect();
            match bad.first() {
                None => (what, Ok(())),
                Some(p) => {
                    let f = p.failure.as_ref();
                    (
                        what,
                        Err(format!(
                            "{} of {} pairs unreachable; the first, {} -> {}: {} at {} ({})",
                            bad.len(),
                            rep.pairs.len(),
                            rep.endpoints[p.from].place,
                            rep.endpoints[p.to].place,
                            f.map(|f| f.text.as_str()).unwrap_or(""),
                            f.map(|f| f.place.as_str()).unwrap_or(""),
                            f.map(|f| f.reason.as_str()).unwrap_or("")
                        )),
                    )
                }
            }
        }
    }
}

fn eval(r: &RunResult, e: &ExpectSpec) -> (String, Result<(), String>) {
    let w = &r.sim.world;
    match e {
        ExpectSpec::FullReach { .. } => ("FullReach".into(), Err("evaluated by `check`".into())),
        ExpectSpec::Reach { from, to, ok } => {
            let what = format!(
                "Reach {from} -> {to}{}",
                if *ok { "" } else { " (unreachable)" }
            );
            let Some(ns) = w.find_ns(from) else {
                return (
                    what,
                    Err(format!("no namespace \"{from}\" at the end of the run")),
                );
            };
            let dst: Ipv4Addr = to.parse().unwrap();
            let pings: Vec<_> = w
                .apps
                .iter()
                .filter_map(|a| match a {
                    App::Ping(p) if p.ns == ns && p.cmd.dst == dst => Some(p),
                    _ => None,
                })
                .collect();
            if pings.is_empty() {
                return (what, Err(format!("no ping from {from} to {to} was run")));
            }
            let recv: u32 = pings.iter().map(|p| p.received()).sum();
            let sent: u32 = pings.iter().map(|p| p.sent).sum();
            let got = recv > 0;
            if got == *ok {
                (what, Ok(()))
            } else {
                let transcript = pings
                    .iter()
                    .map(|p| p.transcript.trim_end().to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    what,
                    Err(format!(
                        "{recv} of {sent} echo requests answered:\n{transcript}"
                    )),
                )
            }
        }
        ExpectSpec::Path { from, to, through } => {
            let what = format!("Path {from} -> {to} through {}", through.join(", "));
            let Some(ns) = w.find_ns(from) else {
                return (what, Err(format!("no namespace \"{from}\"")));
            };
            let dst: Ipv4Addr = to.parse().unwrap();
            let ns_node = w.namespaces[ns.ix()].node;
            let Some(pkt) = r.trace.iter().find_map(|t| match &t.event {
                TraceEvent::Originate { dst: Some(d), .. } if *d == dst && t.place == ns_node => {
                    Some(t.packet)
                }
                _ => None,
            }) else {
                return (
                    what,
                    Err(format!("no packet from {from} to {to} in the trace")),
                );
            };
            let devs = devices_crossed(r, pkt);
            let mut it = devs.iter();
            let ok = through.iter().all(|want| it.any(|d| d == want));
            if ok {
                (what, Ok(()))
            } else {
                (
                    what,
                    Err(format!("packet #{} crossed: {}", pkt.0, devs.join(" -> "))),
                )
            }
        }
        ExpectSpec::Drop { reason, at } => {
            let what = format!(
                "Drop {reason}{}",
                at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
            );
            let hit = r.trace.iter().any(|t| match &t.event {
                TraceEvent::Drop { reason: rr } => {
                    rr.code() == reason
                        && at
                            .as_ref()
                            .is_none_or(|a| place_matches(w.topo.path(t.place), a))
                }
                _ => false,
            });
            if hit {
                (what, Ok(()))
            } else {
                let seen: Vec<String> = r
                    .trace
                    .iter()
                    .filter_map(|t| match &t.event {
                        TraceEvent::Drop { reason } => Some(format!(
                            "{} at {} (packet #{})",
                            reason.code(),
                            w.topo.path(t.place),
                            t.packet.0
                        )),
                        _ => None,
                    })
                    .collect();
                (
                    what,
                    Err(if seen.is_empty() {
                        "no packet was dropped".into()
                    } else {
                        format!("drops seen: {}", seen.join("; "))
                    }),
                )
            }
        }
        ExpectSpec::Table {
            on,
            table,
            contains,
        } => {
            let what = format!("Table {table} on {on} contains `{}`", contains.trim());
            let text = match show_table(&r.sim, on, table) {
                Ok(t) => t,
                Err(e) => return (what, Err(e)),
            };
            if text.lines().any(|l| l.trim() == contains.trim()) {
                (what, Ok(()))
            } else {
                (what, Err(format!("the table is:\n{}", text.trim_end())))
            }
        }
        ExpectSpec::Output { on, contains } => {
            let what = format!("Output on {on} contains `{contains}`");
            let mut all = String::new();
            for o in w.output.iter().filter(|o| o.place == *on) {
                all.push_str(&o.text);
                all.push('\n');
            }
            for l in r.sim.log.iter().filter(|l| l.place == *on) {
                all.push_str(&l.output.stdout);
                all.push_str(&l.output.stderr);
            }
            if all.contains(contains.as_str()) {
                (what, Ok(()))
            } else {
                (
                    what,
                    Err(format!("output on {on} was:\n{}", all.trim_end())),
                )
            }
        }
        ExpectSpec::CommandError { on, command, error } => {
            let what = format!("CommandError on {on}: `{}`", command.trim());
            let host = on.split(':').next().unwrap_or("");
            let hit = r.sim.log.iter().find(|l| {
                l.place.split(':').next() == Some(host)
                    && (l.line.trim() == command.trim()
                        || l.line
                            .lines()
                            .next()
                            .is_some_and(|f| f.trim() == command.trim()))
            });
            match hit {
                Some(l)
                    if l.output.failed
                        && sim_models::sim::error_matches(&l.output.stderr, error) =>
                {
                    (what, Ok(()))
                }
                Some(l) => (
                    what,
                    Err(format!(
                        "it printed: {}",
                        if l.output.failed {
                            l.output.stderr.trim()
                        } else {
                            "(succeeded)"
                        }
                    )),
                ),
                None => (what, Err("the command did not run".into())),
            }
        }
    }
}

fn place_matches(path: &str, want: &str) -> bool {
    path == want || path.starts_with(&format!("{want}:"))
}

/// The device paths a packet was received or transmitted on, in order, consecutive duplicates removed.
pub fn devices_crossed(r: &RunResult, pkt: PacketId) -> Vec<String> {
    let w = &r.sim.world;
    let mut out: Vec<String> = Vec::new();
    for t in r.trace.iter().filter(|t| t.packet == pkt) {
        let d = match &t.event {
            TraceEvent::Receive { dev, .. } | TraceEvent::Transmit { dev, .. } => *dev,
            _ => continue,
        };
        if let Some(n) = w.topo.get(d)
            && matches!(n.kind, NodeKind::Device(_))
            && out.last() != Some(&n.path)
        {
            out.push(n.path.clone());
        }
    }
    out
}

/// A table of `HOST[:NETNS]` as the real tool prints it.
pub fn show_table(sim: &Simulation, on: &str, table: &str) -> Result<String, String> {
    let w = &sim.world;
    let ns = w
        .find_ns(on)
        .ok_or_else(|| format!("no namespace \"{on}\""))?;
    Ok(match table {
        "routes" => w.show_routes(ns, Some(0), None),
        "rules" => w.show_rules(ns),
        "neigh" => w.show_neigh(ns, None),
        "fdb" => w.show_fdb(ns, None, None),
        "links" => w.show_links(ns, None),
        "addrs" => w.show_addrs(ns, None),
        "iptables" => sim_models::linux::netfilter::exec_iptables(
            &mut w.namespaces[ns.ix()].nf.clone(),
            &["-S".to_string()],
        )
        .unwrap_or_default(),
        other => return Err(format!("unknown table \"{other}\"")),
    })
}
