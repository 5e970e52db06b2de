//! Running the same scenario in podpath, in process, with a capture on every
//! device (the model's own capture hook records each frame's exact wire bytes
//! where `tcpdump` would see it).

use std::collections::BTreeMap;

use scenarios::{RunOptions, Scenario};
use sim_core::time::SimTime;
use sim_core::trace::VecSink;
use sim_models::cmd::{CommandKind, LinkCmd, LinkKind};
use sim_models::linux::apps::App;
use sim_models::linux::capture::LinkType;
use sim_models::linux::{DevKind, World};
use sim_models::sim::RunError;

use super::frames::Frame;
use super::{CmdResult, DevInfo, Observed, PingObs};

/// The MAC podpath gives each NIC (the scenario's, else its seeded draw), so
/// the kernel's NIC can carry the same one.
pub fn nic_macs(sc: &Scenario) -> BTreeMap<(String, String), String> {
    let sim = sc.build(&RunOptions::default());
    let w = &sim.world;
    let mut out = BTreeMap::new();
    for h in &w.hosts {
        for (name, &d) in &w.namespaces[h.root.ix()].devs {
            if matches!(w.devices[d.ix()].kind, DevKind::Nic { .. }) {
                out.insert(
                    (h.name.clone(), name.clone()),
                    w.devices[d.ix()].mac.to_string(),
                );
            }
        }
    }
    out
}

/// `node1`, `node1:test3`: every live namespace.
pub fn places(w: &World) -> Vec<String> {
    let mut v = Vec::new();
    for h in &w.hosts {
        v.push(h.name.clone());
        for (ns, &id) in &h.namespaces {
            if w.namespaces[id.ix()].alive {
                v.push(format!("{}:{ns}", h.name));
            }
        }
    }
    v
}

/// Runs the scenario. `kernel_failed[i]`: whether the kernel failed command
/// `i` (podpath is told to expect the same, so it runs on as long as it agrees;
/// at the first command where it does not, it stops and that is reported).
pub fn run(sc: &Scenario, until: SimTime, kernel_failed: &[Option<bool>]) -> Observed {
    let opts = RunOptions {
        until: Some(until),
        ..Default::default()
    };
    let mut sim = sc.build(&opts);
    sim.world.captures.all = true;
    for step in &mut sim.steps {
        if let Some(Some(failed)) = kernel_failed.get(step.origin) {
            step.expect_error = if *failed { Some(None) } else { None };
        }
    }
    let mut sink = VecSink::default();
    let res = sim.run_until(until, &mut sink);
    let stopped = match res {
        Ok(_) => None,
        Err(RunError::Limit(e)) => Some(format!("podpath reached a run bound: {e}")),
        Err(RunError::Command { origin, log, .. }) => Some(format!(
            "podpath stopped at command {} on {} (`{}`): it {} where the kernel {}",
            origin + 1,
            log.place,
            log.line,
            if log.output.failed {
                "failed"
            } else {
                "succeeded"
            },
            if log.output.failed {
                "succeeded"
            } else {
                "failed"
            },
        )),
    };
    let w = &sim.world;
    let mut obs = Observed {
        commands: vec![None; sc.commands.len()],
        stopped,
        ..Default::default()
    };
    for l in &sim.log {
        if let Some(slot) = obs.commands.get_mut(l.origin) {
            *slot = Some(CmdResult {
                failed: l.output.failed,
                code: None,
                stdout: l.output.stdout.clone(),
                stderr: l.output.stderr.clone(),
            });
        }
    }
    // iproute2's notes (VXLAN's default port) go to the stderr of the `ip link
    // add` that printed them: the next one at that time and place, in order.
    let mut next = 0;
    for wn in &w.warnings {
        let hit = sim.log.iter().enumerate().skip(next).find(|(_, l)| {
            l.time == wn.time
                && l.place == wn.place
                && sc.commands.get(l.origin).is_some_and(|c| {
                    matches!(
                        &c.cmd.kind,
                        CommandKind::Link(LinkCmd::Add { kind: LinkKind::Vxlan(v), .. })
                            if v.dstport.is_none()
                    )
                })
        });
        if let Some((k, l)) = hit {
            next = k + 1;
            if let Some(Some(r)) = obs.commands.get_mut(l.origin) {
                r.stderr.push_str(&wn.text);
                r.stderr.push('\n');
            }
        }
    }
    // Pings, in start order, matched to their commands.
    let mut ping_cmds: Vec<usize> = sim
        .log
        .iter()
        .filter(|l| {
            sc.commands
                .get(l.origin)
                .is_some_and(|c| matches!(c.cmd.kind, CommandKind::Ping(_)))
                && !l.output.failed
        })
        .map(|l| l.origin)
        .collect();
    ping_cmds.reverse();
    for a in &w.apps {
        if let App::Ping(p) = a
            && let Some(cmd) = ping_cmds.pop()
        {
            obs.pings.push(PingObs {
                cmd,
                transmitted: p.sent,
                received: p.received(),
                transcript: p.transcript.clone(),
            });
        }
    }
    for f in &w.captures.frames {
        let d = &w.devices[f.dev.ix()];
        obs.frames.push(Frame {
            place: w.topo.path(d.node).to_string(),
            time_ns: f.time.as_nanos() as i128,
            linktype: match w.link_type(f.dev) {
                LinkType::Ethernet => 1,
                LinkType::RawIp => 101,
            },
            bytes: f.bytes.clone(),
        });
    }
    for p in places(w) {
        let mut t = BTreeMap::new();
        for table in [
            "links", "addrs", "routes", "rules", "neigh", "fdb", "iptables",
        ] {
            let text = scenarios::run::show_table(&sim, &p, table).unwrap_or_default();
            t.insert(table, text);
        }
        obs.tables.insert(p, t);
    }
    for d in w.devices.iter().filter(|d| d.alive) {
        obs.devices.push(DevInfo {
            label: w.topo.path(d.node).to_string(),
            mac: d.mac.0,
            enslaved: d.master.is_some(),
            bridge: matches!(d.kind, DevKind::Bridge(_)),
            harness: false,
        });
    }
    obs
}
