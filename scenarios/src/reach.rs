//! All-pairs reachability: after setup, one ICMP echo probe per pair of
//! endpoints (pods), each run until its reply is back at the source or a
//! step drops it, summarised per node pair with the first failing step.
//!
//! Probes run one after another in one simulation, in a fixed order (every
//! source, then every destination, in endpoint order), each from the state
//! the previous one left (neighbour entries learnt, conntrack entries), as
//! a sequence of pings would; the result is deterministic.

use std::net::Ipv4Addr;

use sim_core::packet::PacketId;
use sim_core::time::{SimDuration, SimTime};
use sim_core::topo::NodeId;
use sim_core::trace::{DropReason, TraceEvent, TraceRecord, TraceSink};
use sim_models::linux::NsId;
use sim_models::linux::apps::Probe;
use sim_models::sim::Simulation;

use crate::build::RunOptions;
use crate::load::Scenario;
use crate::progress::{Progress, Unit};
use crate::run::{Outcome, run as run_scenario};

/// Something probes start from or go to: a pod (or, without a cluster, any
/// network namespace with an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The node (host) it lives on.
    pub node: String,
    /// The pod's name (the namespace's name).
    pub name: String,
    /// The pod's Kubernetes namespace, when the scenario has a cluster.
    pub namespace: Option<String>,
    /// `HOST:NETNS` (for a Service, `svc/NAMESPACE/NAME`).
    pub place: String,
    pub ip: Ipv4Addr,
    /// A Service port (TCP): probes to it are TCP SYNs to the ClusterIP.
    pub port: Option<u16>,
}

/// Which way a probe was going when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    Request,
    Reply,
}

/// The first failing step of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub leg: Leg,
    /// The drop code (`no-route`, ...), or `no-answer` when nothing came
    /// back within 10 s of simulated time.
    pub reason: String,
    /// What the kernel's drop means, in words.
    pub text: String,
    /// Where it was dropped (a host or namespace path).
    pub place: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairResult {
    pub from: usize,
    pub to: usize,
    pub ok: bool,
    pub failure: Option<Failure>,
    /// The devices the request and then the reply crossed.
    pub path: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub endpoints: Vec<Endpoint>,
    pub pairs: Vec<PairResult>,
    /// The cluster's warnings (a route-table limit reached).
    pub warnings: Vec<String>,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        self.pairs.iter().all(|p| p.ok)
    }
}

/// The endpoints after setup, in order: the cluster's pods, or every named
/// network namespace with an IPv4 address (its first, not loopback).
pub fn endpoints(sc: &Scenario, sim: &Simulation) -> Vec<Endpoint> {
    let w = &sim.world;
    if let Some(c) = &sc.cluster {
        let mut out: Vec<Endpoint> = c
            .pods
            .iter()
            .map(|p| Endpoint {
                node: c.nodes[p.node].name.clone(),
                name: p.name.clone(),
                namespace: Some(p.namespace.clone()),
                place: format!("{}:{}", c.nodes[p.node].name, p.netns()),
                ip: p.ip,
                port: None,
            })
            .collect();
        // Service ports (TCP), probed only when a `--to` selector names them.
        for s in &c.services {
            for p in s.ports.iter().filter(|p| p.protocol == "tcp") {
                out.push(Endpoint {
                    node: format!("svc/{}", s.name),
                    name: if p.name.is_empty() {
                        s.name.clone()
                    } else {
                        format!("{}:{}", s.name, p.name)
                    },
                    namespace: Some(s.namespace.clone()),
                    place: format!("svc/{}/{}:{}", s.namespace, s.name, p.port),
                    ip: s.cluster_ip,
                    port: Some(p.port),
                });
            }
        }
        return out;
    }
    let mut out = Vec::new();
    for h in &w.hosts {
        for (name, ns) in &h.namespaces {
            let n = &w.namespaces[ns.ix()];
            if !n.alive {
                continue;
            }
            if let Some(a) = n.addrs.iter().find(|a| !a.local.is_loopback()) {
                out.push(Endpoint {
                    node: h.name.clone(),
                    name: name.clone(),
                    namespace: None,
                    place: format!("{}:{name}", h.name),
                    ip: a.local,
                    port: None,
                });
            }
        }
    }
    out
}

fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((pre, rest)) => {
            s.starts_with(pre)
                && (0..=s.len() - pre.len())
                    .any(|i| s.is_char_boundary(pre.len() + i) && glob(rest, &s[pre.len() + i..]))
        }
    }
}

/// The endpoints a selector names: comma-separated node names, pod names,
/// `namespace/pod`, `HOST:NETNS` places or addresses, each may hold `*`;
/// Services (`svc/NAMESPACE/NAME:PORT`, `svc/NAME`) only when named. Without
/// a selector, every pod.
pub fn select(eps: &[Endpoint], sel: Option<&str>) -> Result<Vec<usize>, String> {
    let Some(sel) = sel else {
        return Ok((0..eps.len()).filter(|i| eps[*i].port.is_none()).collect());
    };
    let mut out = Vec::new();
    for part in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let hit: Vec<usize> = eps
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                glob(part, &e.node)
                    || glob(part, &e.name)
                    || glob(part, &e.place)
                    || glob(part, &e.ip.to_string())
                    || e.namespace
                        .as_ref()
                        .is_some_and(|ns| glob(part, &format!("{ns}/{}", e.name)))
            })
            .map(|(i, _)| i)
            .collect();
        if hit.is_empty() {
            return Err(format!(
                "\"{part}\" names no pod: expected a node, a pod (or namespace/pod), HOST:NETNS, an address or svc/NAME"
            ));
        }
        for i in hit {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Watches one probe: its request, then its reply.
struct ProbeSink {
    req: PacketId,
    /// A TCP probe: an endpoint without a listener drops the SYN (no
    /// socket) and answers with a RST, which is followed; a listener's
    /// delivery counts as reached.
    tcp: bool,
    reply: Option<PacketId>,
    src: NodeId,
    hops: Vec<NodeId>,
    keep_path: bool,
    end: Option<Result<(), (Leg, DropReason, NodeId)>>,
}

impl TraceSink for ProbeSink {
    fn wants(&self, packet: PacketId) -> bool {
        packet == self.req || Some(packet) == self.reply
    }
    fn brief(&self) -> bool {
        true
    }
    fn record(&mut self, rec: TraceRecord) {
        let leg = if rec.packet == self.req {
            Leg::Request
        } else if Some(rec.packet) == self.reply {
            Leg::Reply
        } else {
            return;
        };
        match rec.event {
            TraceEvent::Receive { dev, .. } | TraceEvent::Transmit { dev, .. }
                if self.keep_path && self.hops.last() != Some(&dev) =>
            {
                self.hops.push(dev);
            }
            TraceEvent::Reply { reply, .. } if leg == Leg::Request => self.reply = Some(reply),
            TraceEvent::Deliver { .. } if leg == Leg::Reply && rec.place == self.src => {
                self.end.get_or_insert(Ok(()));
            }
            TraceEvent::Deliver { ref to }
                if self.tcp && leg == Leg::Request && to.contains("socket") =>
            {
                self.end.get_or_insert(Ok(()));
            }
            _ if self.tcp && leg == Leg::Reply && rec.place == self.src => {
                self.end.get_or_insert(Ok(()));
            }
            TraceEvent::Drop {
                reason: DropReason::NoSocket,
            } if self.tcp && leg == Leg::Request => {}
            TraceEvent::Drop { reason } => {
                self.end.get_or_insert(Err((leg, reason, rec.place)));
            }
            _ => {}
        }
    }
}

/// How long a probe may take before it counts as unanswered.
const PROBE_WINDOW: SimDuration = SimDuration::from_secs(10);

/// Sends one probe from `ns` to `dst` and runs until it is answered or lost.
pub fn probe(
    sim: &mut Simulation,
    ns: NsId,
    dst: Ipv4Addr,
    keep_path: bool,
) -> Result<(bool, Option<Failure>, Vec<String>), String> {
    probe_to(sim, ns, dst, None, keep_path)
}

/// [`probe`], or with a port a TCP SYN to it (a Service).
pub fn probe_to(
    sim: &mut Simulation,
    ns: NsId,
    dst: Ipv4Addr,
    port: Option<u16>,
    keep_path: bool,
) -> Result<(bool, Option<Failure>, Vec<String>), String> {
    let src = sim.world.namespaces[ns.ix()].node;
    let mut sink = ProbeSink {
        tcp: port.is_some(),
        req: sim.world.peek_packet_id(),
        reply: None,
        src,
        hops: Vec::new(),
        keep_path,
        end: None,
    };
    let now = sim.now();
    {
        let mut cx = sim_models::linux::Cx::new(now, &mut sim.sched, &mut sink);
        let kind = port.map_or(Probe::Icmp, Probe::Tcp);
        let size = if port.is_some() { 0 } else { 56 };
        if let Err(e) = sim.world.inject_probe(&mut cx, ns, dst, kind, size) {
            let failure = Failure {
                leg: Leg::Request,
                reason: "no-route".into(),
                text: e,
                place: sim.world.ns_label(ns),
            };
            return Ok((false, Some(failure), Vec::new()));
        }
    }
    let deadline = now + PROBE_WINDOW;
    while sink.end.is_none() {
        match sim.step_until(deadline, &mut sink) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    let w = &sim.world;
    let path = sink
        .hops
        .iter()
        .map(|d| w.topo.path(*d).to_string())
        .collect();
    Ok(match sink.end {
        Some(Ok(())) => (true, None, path),
        Some(Err((leg, reason, place))) => (
            false,
            Some(Failure {
                leg,
                reason: reason.code().to_string(),
                text: sim_core::trace::drop_text(&reason),
                place: w.topo.path(place).to_string(),
            }),
            path,
        ),
        None => (
            false,
            Some(Failure {
                leg: if sink.reply.is_some() {
                    Leg::Reply
                } else {
                    Leg::Request
                },
                reason: "no-answer".into(),
                text: format!("nothing came back within {PROBE_WINDOW}"),
                place: w.ns_label(ns),
            }),
            path,
        ),
    })
}

/// How many independent chunks the sources are probed in: one for small
/// runs; for many sources two (this machine's cores), each on its own copy
/// of the cluster, when the cluster is small enough to set up twice (a function of the
/// scenario and the selection only, never of the machine).
fn chunk_count(sc: &Scenario, sources: usize) -> usize {
    if sources >= 64 && sc.command_lines() <= 500_000 {
        2
    } else {
        1
    }
}

/// Probes from each source to each destination, in order, in one simulation.
fn probe_sources(
    sim: &mut Simulation,
    eps: &[Endpoint],
    froms: &[usize],
    tos: &[usize],
    keep_path: bool,
    progress: &Progress,
) -> Result<Vec<PairResult>, String> {
    let mut pairs = Vec::with_capacity(froms.len() * tos.len());
    for &f in froms.iter().filter(|f| eps[**f].port.is_none()) {
        progress.inc(1);
        let Some(ns) = sim.world.find_ns(&eps[f].place) else {
            return Err(format!("no namespace {} after setup", eps[f].place));
        };
        for &t in tos {
            if f == t {
                continue;
            }
            let (ok, failure, path) = probe_to(sim, ns, eps[t].ip, eps[t].port, keep_path)?;
            pairs.push(PairResult {
                from: f,
                to: t,
                ok,
                failure,
                path,
            });
        }
    }
    Ok(pairs)
}

/// Sets the scenario up (everything at time 0) and probes every selected pair.
pub fn reach(
    sc: &Scenario,
    opts: &RunOptions,
    from: Option<&str>,
    to: Option<&str>,
    keep_path: bool,
) -> Result<Report, String> {
    let mut setup = opts.clone();
    setup.until = Some(SimTime::ZERO);
    setup.quiet_batches = true;
    let progress = std::mem::take(&mut setup.progress);
    progress.begin("setting up", None, Unit::Items);
    let mut r = run_scenario(sc, &setup);
    progress.end();
    match &r.outcome {
        Outcome::InputError(d) => return Err(d.to_string()),
        Outcome::Limit(m) => return Err(m.clone()),
        _ => {}
    }
    // In a BGP-built cluster the routes come from BIRD: probe once it has
    // converged.
    if !sc.bird.is_empty() {
        crate::routes::settle(&mut r.sim, sc.bird_start, &progress)?;
    }
    let eps = endpoints(sc, &r.sim);
    let froms = select(&eps, from).map_err(|e| format!("--from: {e}"))?;
    let tos = select(&eps, to).map_err(|e| format!("--to: {e}"))?;
    let chunks = chunk_count(sc, froms.len());
    let sources = froms.iter().filter(|f| eps[**f].port.is_none()).count() as u64;
    progress.begin(
        &format!("probing {} sources x {} destinations", sources, tos.len()),
        Some(sources),
        Unit::Items,
    );
    let pairs = if chunks == 1 {
        probe_sources(&mut r.sim, &eps, &froms, &tos, keep_path, &progress)?
    } else {
        drop(r);
        // Fixed chunks of sources, each probed from its own copy of the
        // set-up cluster: the chunks do not depend on the number of
        // threads, so neither does the result.
        use rayon::prelude::*;
        let per = froms.len().div_ceil(chunks);
        let parts: Vec<Result<Vec<PairResult>, String>> = froms
            .par_chunks(per)
            .map(|part| {
                let mut r = run_scenario(sc, &setup);
                // Each copy converges as the first did (the same run, so
                // to the same time and tables).
                if !sc.bird.is_empty() {
                    crate::routes::settle(&mut r.sim, sc.bird_start, &Progress::default())?;
                }
                probe_sources(&mut r.sim, &eps, part, &tos, keep_path, &progress)
            })
            .collect();
        let mut pairs = Vec::with_capacity(froms.len() * tos.len());
        for p in parts {
            pairs.extend(p?);
        }
        pairs
    };
    progress.end();
    Ok(Report {
        endpoints: eps,
        pairs,
        warnings: sc
            .cluster
            .as_ref()
            .map(|c| c.warnings.clone())
            .unwrap_or_default(),
    })
}
