//! The speaker's tests, mostly whole fabrics of speakers run over the
//! in-memory pipe of [`super::fabric`] (its rules are documented there),
//! with snapshots of the converged tables.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};

use sim_core::net::Ipv4Net;
use sim_core::rng::RootSeed;
use sim_core::time::{SimDuration, SimTime};

use super::fabric::{Fabric, FabricOptions, Installed};
use super::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn secs(s: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs(s)
}

/// A fabric that keeps its log and records every install, with the
/// tests' helpers.
struct Net(Fabric);

impl Deref for Net {
    type Target = Fabric;
    fn deref(&self) -> &Fabric {
        &self.0
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut Fabric {
        &mut self.0
    }
}

fn options() -> FabricOptions {
    FabricOptions {
        log: true,
        record_fib: true,
        ..Default::default()
    }
}

impl Net {
    fn new(seed: u64, nodes: Vec<(String, SpeakerConfig, Vec<Ipv4Net>)>) -> Net {
        Net(Fabric::new(nodes, seed, options()))
    }

    fn calico(seed: u64, cluster: &CalicoCluster) -> Net {
        Net(Fabric::new(cluster, seed, options()))
    }

    fn index(&self, name: &str) -> usize {
        self.0.index(name).unwrap()
    }

    fn run_until(&mut self, until: SimTime) {
        self.0.run_until(until).unwrap();
        // The recorded installs are what the Loc-RIBs say.
        for (i, n) in self.nodes().iter().enumerate() {
            if n.alive() {
                assert_eq!(
                    n.speaker().loc_rib().len()
                        - n.speaker()
                            .loc_rib()
                            .values()
                            .filter(|b| b.source == Source::Local)
                            .count(),
                    self.0.installed(i).len()
                );
                assert_eq!(
                    super::fabric::installed_from(n.speaker().loc_rib()),
                    self.0.installed(i),
                    "{}",
                    n.name
                );
            }
        }
    }

    fn cut(&mut self, a: &str, b: &str) {
        self.0.cut(a, b).unwrap()
    }

    fn mend(&mut self, a: &str, b: &str) {
        self.0.mend(a, b).unwrap()
    }

    fn kill(&mut self, name: &str, reset: bool) {
        self.0.kill(name, reset).unwrap()
    }

    fn revive(&mut self, name: &str, recovering: bool) {
        self.0.revive(name, recovering).unwrap()
    }

    /// What the node installed: prefix -> (next hop, peer).
    fn fib(&self, name: &str) -> BTreeMap<Ipv4Net, (Ipv4Addr, Ipv4Addr)> {
        self.0
            .fib(name)
            .iter()
            .map(|(p, Installed { next_hop, peer })| (*p, (*next_hop, *peer)))
            .collect()
    }

    /// Every live node reaches every block originated by another live node,
    /// and following the next hops from node to node reaches the
    /// originator without a loop.
    fn assert_reachable(&self) {
        let origins: Vec<(usize, Ipv4Net)> = self
            .nodes()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive())
            .flat_map(|(i, n)| n.speaker().originated().iter().map(move |p| (i, *p)))
            .collect();
        for (i, n) in self.nodes().iter().enumerate() {
            if !n.alive() {
                continue;
            }
            for &(o, p) in &origins {
                if o == i {
                    continue;
                }
                let mut at = i;
                let mut seen = BTreeSet::from([i]);
                while at != o {
                    let Installed { next_hop: nh, .. } = self
                        .0
                        .fib(&self.nodes()[at].name)
                        .get(&p)
                        .unwrap_or_else(|| {
                            panic!(
                                "{} has no route to {p} (from {}'s view, originated by {})",
                                self.nodes()[at].name,
                                n.name,
                                self.nodes()[o].name
                            )
                        });
                    at = self.owner_of(*nh).unwrap();
                    assert!(
                        seen.insert(at),
                        "next-hop loop for {p} from {}: back at {}",
                        n.name,
                        self.nodes()[at].name
                    );
                }
            }
        }
    }

    /// The prefix is nowhere: no FIB, Loc-RIB or Adj-RIB-In has it.
    fn assert_gone(&self, p: Ipv4Net) {
        for n in self.nodes() {
            assert!(
                !self.0.fib(&n.name).contains_key(&p),
                "{} still installs {p}",
                n.name
            );
            assert!(
                !n.speaker().loc_rib().contains_key(&p),
                "{} still has {p} in its Loc-RIB",
                n.name
            );
            for nb in &n.config.neighbors {
                assert!(
                    !n.speaker().adj_rib_in(nb.address).unwrap().contains_key(&p),
                    "{} still has {p} from {}",
                    n.name,
                    nb.address
                );
            }
        }
    }

    /// Each node's sessions and Loc-RIB, for snapshots.
    fn tables(&self) -> String {
        let mut s = String::new();
        for n in self.nodes() {
            let c = n.speaker().config();
            writeln!(
                s,
                "{} (router id {}, AS {})",
                n.name, c.router_id, c.local_as
            )
            .unwrap();
            for nb in &c.neighbors {
                let st = n.speaker().state(nb.address).unwrap();
                let role = if nb.rr_client { " rr-client" } else { "" };
                let passive = if nb.passive { " passive" } else { "" };
                writeln!(
                    s,
                    "  session {} {} AS {}{role}{passive}: {st:?}",
                    nb.name, nb.address, nb.remote_as
                )
                .unwrap();
            }
            for (p, b) in n.speaker().loc_rib() {
                match b.source {
                    Source::Local => writeln!(s, "  {p} local").unwrap(),
                    Source::Peer(from) => {
                        let a = &b.attrs;
                        write!(
                            s,
                            "  {p} via {} from {from} as-path {:?}",
                            a.next_hop,
                            a.path_asns()
                        )
                        .unwrap();
                        if let Some(o) = a.originator_id {
                            write!(s, " originator {o}").unwrap();
                        }
                        if !a.cluster_list.is_empty() {
                            write!(s, " cluster-list {:?}", a.cluster_list).unwrap();
                        }
                        writeln!(s).unwrap();
                    }
                }
            }
        }
        s
    }
}

fn block(i: u8) -> Ipv4Net {
    Ipv4Net::new(ip(10, 244, i, 0), 26).unwrap()
}

fn pool() -> Ipv4Net {
    net("10.244.0.0/16")
}

fn calico_nodes(n: u8) -> Vec<CalicoNode> {
    (1..=n)
        .map(|i| CalicoNode::new(&format!("node{i}"), ip(10, 0, 0, i), vec![block(i)]))
        .collect()
}

fn mesh(n: u8) -> CalicoCluster {
    CalicoCluster {
        ip_pools: vec![pool()],
        nodes: calico_nodes(n),
        ..Default::default()
    }
}

/// Calico's route reflector setup: mesh off, one BGPPeer peering every node
/// with the nodes labelled `route-reflector: true`.
fn with_reflectors(clients: u8, rrs: &[u8]) -> CalicoCluster {
    let mut nodes = calico_nodes(clients);
    for &r in rrs {
        let mut n = CalicoNode::new(&format!("rr{r}"), ip(10, 0, 0, r), vec![]);
        n.route_reflector_cluster_id = Some(ip(244, 0, 0, 1));
        n.labels.insert("route-reflector".into(), "true".into());
        nodes.push(n);
    }
    CalicoCluster {
        bgp_configuration: BgpConfiguration {
            node_to_node_mesh_enabled: false,
            ..Default::default()
        },
        ip_pools: vec![pool()],
        nodes,
        peers: vec![BgpPeer {
            name: "peer-with-route-reflectors".into(),
            node_selector: Some(Selector::parse("all()").unwrap()),
            peer_selector: Some(Selector::parse("route-reflector == 'true'").unwrap()),
            ..Default::default()
        }],
    }
}

#[test]
fn full_mesh_of_four_converges() {
    let mut n = Net::calico(1, &mesh(4));
    n.start_all();
    n.run_until(secs(30));
    assert!(n.all_established());
    n.assert_reachable();
    for i in 1..=4u8 {
        let fib = n.fib(&format!("node{i}"));
        assert_eq!(fib.len(), 3);
        for j in (1..=4u8).filter(|j| *j != i) {
            // Next hop: the node that owns the block, learned from it.
            assert_eq!(fib[&block(j)], (ip(10, 0, 0, j), ip(10, 0, 0, j)));
        }
    }
    insta::assert_snapshot!("mesh4", n.tables());
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut n = Net::calico(seed, &mesh(3));
        n.start_all();
        n.run_until(secs(200));
        (n.log().join("\n"), n.tables())
    };
    let (a, ta) = run(7);
    let (b, tb) = run(7);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    // Another seed moves the jittered timers but converges the same.
    let (c, tc) = run(8);
    assert_ne!(a, c);
    assert_eq!(ta, tc);
}

#[test]
fn six_clients_and_one_route_reflector() {
    let mut n = Net::calico(2, &with_reflectors(6, &[100]));
    n.start_all();
    n.run_until(secs(30));
    assert!(n.all_established());
    n.assert_reachable();
    let rr = ip(10, 0, 0, 100);
    for i in 1..=6u8 {
        let name = format!("node{i}");
        let s = n.speaker(&name);
        assert_eq!(
            s.config().neighbors.len(),
            1,
            "a client peers with the RR only"
        );
        for j in (1..=6u8).filter(|j| *j != i) {
            // Learned from the reflector, next hop kept: the originating node.
            assert_eq!(n.fib(&name)[&block(j)], (ip(10, 0, 0, j), rr));
            let r = s.adj_rib_in(rr).unwrap().get(&block(j)).unwrap();
            assert_eq!(r.attrs.originator_id, Some(ip(10, 0, 0, j)));
            assert_eq!(r.attrs.cluster_list, vec![ip(244, 0, 0, 1)]);
            assert_eq!(r.attrs.local_pref, Some(100));
        }
        // The reflector does not send a client's own route back to it.
        assert!(!s.adj_rib_in(rr).unwrap().contains_key(&block(i)));
    }
    // The reflector has every block directly from its client.
    let rrfib = n.fib("rr100");
    for j in 1..=6u8 {
        assert_eq!(rrfib[&block(j)], (ip(10, 0, 0, j), ip(10, 0, 0, j)));
    }
    insta::assert_snapshot!("rr1-clients6", n.tables());
}

#[test]
fn two_reflectors_one_cluster_survive_losing_one() {
    let mut n = Net::calico(3, &with_reflectors(4, &[100, 101]));
    n.start_all();
    n.run_until(secs(30));
    assert!(n.all_established());
    n.assert_reachable();
    let (rr1, rr2) = (ip(10, 0, 0, 100), ip(10, 0, 0, 101));
    // Each reflector keeps what the other reflects to it (as real BIRD
    // does: the CLUSTER_LIST is checked on receipt only on client
    // sessions), as a second path behind its client's own...
    for (me, other) in [("rr100", rr2), ("rr101", rr1)] {
        let s = n.speaker(me);
        for j in 1..=4u8 {
            let r = s.adj_rib_in(other).unwrap().get(&block(j)).unwrap();
            assert_eq!(r.attrs.cluster_list, vec![ip(244, 0, 0, 1)]);
            assert_eq!(
                s.loc_rib().get(&block(j)).unwrap().source,
                Source::Peer(ip(10, 0, 0, j))
            );
        }
        // ... and never passes it on: not to its clients (their cluster id
        // is in the CLUSTER_LIST), not back to a non-client.
        for c in 1..=4u8 {
            let out = s.adj_rib_out(ip(10, 0, 0, c)).unwrap();
            for (p, a) in out {
                assert!(a.cluster_list.len() == 1, "{me} -> node{c}: {p} {a:?}");
            }
        }
    }
    assert!(
        !n.log()
            .iter()
            .any(|l| l.contains("CLUSTER_LIST loop (contains 244.0.0.1)"))
    );
    // Clients have both reflections; the tie goes to the lower neighbour
    // address (same ORIGINATOR_ID, same CLUSTER_LIST length).
    for i in 1..=4u8 {
        let s = n.speaker(&format!("node{i}"));
        for j in (1..=4u8).filter(|j| *j != i) {
            assert!(s.adj_rib_in(rr1).unwrap().contains_key(&block(j)));
            assert!(s.adj_rib_in(rr2).unwrap().contains_key(&block(j)));
            assert_eq!(n.fib(&format!("node{i}"))[&block(j)].1, rr1);
        }
    }
    insta::assert_snapshot!("rr2-clients4", n.tables());

    // rr100 loses power: nobody hears of it; the clients' hold timers
    // expire within 240 s, and the routes stay, through rr101.
    n.kill("rr100", false);
    for t in [31, 60, 120, 200, 300] {
        n.run_until(secs(t));
        n.assert_reachable();
    }
    assert!(n.log().iter().any(|l| l.contains("hold timer expired")));
    for i in 1..=4u8 {
        let name = format!("node{i}");
        assert_ne!(n.speaker(&name).state(rr1), Some(State::Established));
        for j in (1..=4u8).filter(|j| *j != i) {
            assert_eq!(n.fib(&name)[&block(j)], (ip(10, 0, 0, j), rr2));
        }
        // No flap: the route moved from one reflector to the other.
        assert!(n.node(&name).uninstalls().is_empty());
    }
}

/// Two spines (AS 65000), four ToRs, one AS per rack, /31 links.
fn leaf_spine() -> Vec<(String, SpeakerConfig, Vec<Ipv4Net>)> {
    let link = |s: u8, t: u8| (ip(172, 16, s, 2 * t), ip(172, 16, s, 2 * t + 1)); // (spine end, tor end)
    let rack = |t: u8| Ipv4Net::new(ip(10, 100, t, 0), 24).unwrap();
    let mut out = Vec::new();
    for s in 1..=2u8 {
        let mut c = SpeakerConfig::new(ip(10, 255, 0, s), 65000);
        c.address = ip(10, 255, 0, s);
        for t in 1..=4u8 {
            let (mine, tor) = link(s, t);
            c.neighbors.push(Neighbor {
                local_address: Some(mine),
                name: format!("tor{t}"),
                ..Neighbor::new(tor, 65100 + t as u32)
            });
        }
        out.push((format!("spine{s}"), c, vec![]));
    }
    for t in 1..=4u8 {
        let mut c = SpeakerConfig::new(ip(10, 255, 1, t), 65100 + t as u32);
        c.address = ip(10, 255, 1, t);
        for s in 1..=2u8 {
            let (spine, mine) = link(s, t);
            c.neighbors.push(Neighbor {
                local_address: Some(mine),
                // A ToR takes only rack prefixes from the spines.
                import: PrefixList::allow_within(&[net("10.100.0.0/16")]),
                name: format!("spine{s}"),
                ..Neighbor::new(spine, 65000)
            });
        }
        out.push((format!("tor{t}"), c, vec![rack(t)]));
    }
    out
}

#[test]
fn ebgp_leaf_spine() {
    let mut n = Net::new(4, leaf_spine());
    n.start_all();
    n.run_until(secs(60));
    assert!(n.all_established());
    n.assert_reachable();
    let rack = |t: u8| Ipv4Net::new(ip(10, 100, t, 0), 24).unwrap();
    for t in 1..=4u8 {
        let name = format!("tor{t}");
        for o in (1..=4u8).filter(|o| *o != t) {
            let best = n.speaker(&name).loc_rib().get(&rack(o)).unwrap();
            // Next hop rewritten to the spine's end of the link; the spines
            // tie, and spine1 has the lower router id.
            assert_eq!(best.attrs.next_hop, ip(172, 16, 1, 2 * t));
            assert_eq!(best.attrs.path_asns(), vec![65000, 65100 + o as u32]);
        }
    }
    for s in 1..=2u8 {
        let sp = n.speaker(&format!("spine{s}"));
        for t in 1..=4u8 {
            let best = sp.loc_rib().get(&rack(t)).unwrap();
            assert_eq!(best.attrs.next_hop, ip(172, 16, s, 2 * t + 1));
            assert_eq!(best.attrs.path_asns(), vec![65100 + t as u32]);
            // AS_PATH loop prevention: what a ToR learned through spine1
            // and passes on carries 65000, and spine2 drops it.
            let from_tor = sp.adj_rib_in(ip(172, 16, s, 2 * t + 1)).unwrap();
            assert_eq!(from_tor.keys().collect::<Vec<_>>(), vec![rack(t)]);
        }
    }
    assert!(
        n.log()
            .iter()
            .any(|l| l.contains("spine2: ") && l.contains("AS_PATH loop (contains 65000)"))
    );
    insta::assert_snapshot!("leaf-spine", n.tables());

    // A withdrawal propagates everywhere.
    let i = n.index("tor3");
    n.input(i, Input::WithdrawOrigin(rack(3)));
    n.run_until(secs(61));
    n.assert_gone(rack(3));
    n.assert_reachable();
}

#[test]
fn withdrawal_in_a_mesh_and_through_a_reflector() {
    for cluster in [mesh(4), with_reflectors(4, &[100])] {
        let mut n = Net::calico(5, &cluster);
        n.start_all();
        n.run_until(secs(30));
        n.assert_reachable();
        let i = n.index("node3");
        n.input(i, Input::WithdrawOrigin(block(3)));
        n.run_until(secs(31));
        n.assert_gone(block(3));
        n.assert_reachable();
        // And it comes back.
        n.input(i, Input::Originate(block(3)));
        n.run_until(secs(32));
        n.assert_reachable();
        assert!(n.fib("node1").contains_key(&block(3)));
    }
}

#[test]
fn hold_timer_expires_when_the_pipe_stops_delivering() {
    let mut n = Net::calico(6, &mesh(2));
    n.start_all();
    n.run_until(secs(10));
    assert!(n.all_established());
    n.cut("node1", "node2");
    // Keepalives (80 s, jittered) stop arriving; the last one came at most
    // 80 s ago, and a jittered hold time is at least 180 s.
    n.run_until(secs(10 + 99));
    n.assert_reachable();
    n.run_until(secs(10 + 241));
    assert!(!n.fib("node1").contains_key(&block(2)));
    assert!(!n.fib("node2").contains_key(&block(1)));
    let expired: Vec<&String> = n
        .log()
        .iter()
        .filter(|l| l.contains("hold timer expired"))
        .collect();
    assert_eq!(expired.len(), 2, "{expired:#?}");
    // A hold timer expiry is no graceful restart: nothing kept as stale.
    assert!(
        !n.log()
            .iter()
            .any(|l| l.contains("graceful restart: keeping"))
    );
    // The pipe comes back: the sessions come back (error wait 5..30 s,
    // connect retry 5 s) and so do the routes.
    n.mend("node1", "node2");
    n.run_until(secs(10 + 241 + 120));
    assert!(n.all_established());
    n.assert_reachable();
}

#[test]
fn graceful_restart_keeps_stale_routes_until_the_restart_timer() {
    let mut n = Net::calico(7, &mesh(2));
    n.start_all();
    n.run_until(secs(10));
    assert!(n.all_established());
    let gr = n
        .speaker("node1")
        .session(ip(10, 0, 0, 2))
        .unwrap()
        .peer_gr
        .clone()
        .unwrap();
    assert_eq!(gr.restart_time, 120);

    // node2 dies: its connection is reset, and it does not come back.
    n.kill("node2", true);
    n.run_until(secs(10 + 119));
    assert_eq!(
        n.fib("node1")[&block(2)],
        (ip(10, 0, 0, 2), ip(10, 0, 0, 2))
    );
    let r = n
        .speaker("node1")
        .adj_rib_in(ip(10, 0, 0, 2))
        .unwrap()
        .get(&block(2))
        .unwrap();
    assert!(r.stale);
    n.run_until(secs(10 + 121));
    assert!(!n.fib("node1").contains_key(&block(2)));
    assert!(n.log().iter().any(|l| l.contains("restart timer expired")));
}

#[test]
fn graceful_restart_across_a_restart_keeps_forwarding() {
    let mut n = Net::calico(8, &mesh(3));
    n.start_all();
    n.run_until(secs(10));
    assert!(n.all_established());
    // node2's BIRD restarts (as calico/node runs it, `bird -R`): its peers
    // keep its routes, stale, until its End-of-RIB on the new session.
    n.kill("node2", true);
    n.run_until(secs(20));
    for other in ["node1", "node3"] {
        let r = n
            .speaker(other)
            .adj_rib_in(ip(10, 0, 0, 2))
            .unwrap()
            .get(&block(2))
            .unwrap();
        assert!(r.stale);
    }
    n.revive("node2", true);
    n.run_until(secs(60));
    assert!(n.all_established());
    n.assert_reachable();
    for other in ["node1", "node3"] {
        let r = n
            .speaker(other)
            .adj_rib_in(ip(10, 0, 0, 2))
            .unwrap()
            .get(&block(2))
            .unwrap();
        assert!(!r.stale, "refreshed by the new session");
        // The route never left the kernel.
        assert!(n.node(other).uninstalls().is_empty());
    }

    // Without `-R` (F bit clear) the peers drop the stale routes as soon as
    // the new session is up, and learn them again right after.
    n.kill("node2", true);
    n.run_until(secs(70));
    n.revive("node2", false);
    n.run_until(secs(120));
    n.assert_reachable();
    let drops = n.node("node1").uninstalls();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].1, block(2));
}

#[test]
fn open_errors_are_notified() {
    // A neighbour configured with the wrong AS: Bad Peer AS, then the error
    // wait grows (5, 10, 20 s...) between attempts.
    let mut c = mesh(2);
    c.nodes[1].as_number = Some(64999);
    let mut nodes: Vec<_> = c
        .expand()
        .into_iter()
        .map(|n| (n.node, n.config, n.originate))
        .collect();
    // node1 still thinks node2 is in 64512.
    nodes[0].1.neighbors[0].remote_as = 64512;
    let mut n = Net::new(9, nodes);
    n.start_all();
    n.run_until(secs(60));
    assert!(!n.all_established());
    assert!(
        n.log().iter().any(|l| l
            .contains("node1: 10.0.0.2: sent NOTIFICATION 2/2 (OPEN Message Error, Bad Peer AS)")),
        "{:#?}",
        &n.log()[..40.min(n.log().len())]
    );
    assert!(
        n.log()
            .iter()
            .any(|l| l.contains("node2: 10.0.0.1: received NOTIFICATION 2/2"))
    );
    // Each error is followed by an error wait, then a new attempt.
    let restarts = n
        .log()
        .iter()
        .filter(|l| l.contains("node1: 10.0.0.2: Idle -> Active"))
        .count();
    assert!(restarts >= 2, "{restarts}");
}

/// Two speakers of AS 64512 for driving by hand: 10.0.0.1 (active) and
/// 10.0.0.2 (passive), each the other's only neighbour.
fn speaker_pair() -> (Speaker, Speaker) {
    let cfg = |me: u8, other: u8, passive: bool| {
        let mut c = SpeakerConfig::new(ip(10, 0, 0, me), 64512);
        c.neighbors.push(Neighbor {
            passive,
            ..Neighbor::new(ip(10, 0, 0, other), 64512)
        });
        c
    };
    let seed = RootSeed(1);
    (
        Speaker::new(cfg(1, 2, false), seed.stream("a")),
        Speaker::new(cfg(2, 1, true), seed.stream("b")),
    )
}

#[test]
fn partial_messages_are_buffered() {
    // Two speakers, driven by hand: bytes handed over one at a time.
    let (mut a, mut b) = speaker_pair();
    let t = SimTime::ZERO;
    a.handle(t, Input::Start);
    b.handle(t, Input::Start);
    a.handle(t, Input::Originate(block(1)));
    let mut to_b: Vec<u8> = Vec::new();
    let mut to_a: Vec<u8> = Vec::new();
    let take = |outs: Vec<Output>, buf: &mut Vec<u8>| {
        for o in outs {
            if let Output::Send(_, bytes) = o {
                buf.extend_from_slice(&bytes);
            }
        }
    };
    take(
        a.handle(t, Input::TransportConnected(ip(10, 0, 0, 2))),
        &mut to_b,
    );
    take(
        b.handle(t, Input::TransportConnected(ip(10, 0, 0, 1))),
        &mut to_a,
    );
    for _ in 0..10 {
        for byte in std::mem::take(&mut to_b) {
            take(
                b.handle(t, Input::TransportBytes(ip(10, 0, 0, 1), vec![byte])),
                &mut to_a,
            );
        }
        for byte in std::mem::take(&mut to_a) {
            take(
                a.handle(t, Input::TransportBytes(ip(10, 0, 0, 2), vec![byte])),
                &mut to_b,
            );
        }
    }
    assert_eq!(a.state(ip(10, 0, 0, 2)), Some(State::Established));
    assert_eq!(b.state(ip(10, 0, 0, 1)), Some(State::Established));
    assert_eq!(
        b.loc_rib().get(&block(1)).unwrap().attrs.next_hop,
        ip(10, 0, 0, 1)
    );

    // Garbage: Connection Not Synchronized, and the session goes.
    let outs = b.handle(t, Input::TransportBytes(ip(10, 0, 0, 1), vec![0; 19]));
    let sent: Vec<Vec<u8>> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send(_, b) => Some(b.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0][18..21], &[3, 1, 1], "NOTIFICATION 1/1");
    assert!(outs.contains(&Output::Close(ip(10, 0, 0, 1))));
    assert!(outs.contains(&Output::Uninstall { prefix: block(1) }));
    assert_eq!(b.state(ip(10, 0, 0, 1)), Some(State::Idle));
}

mod robustness {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use sim_core::wire::bgp::{BgpContext, BgpMessage, OpenRepr, UpdateRepr};

    fn peer() -> impl Strategy<Value = PeerAddr> {
        prop_oneof![
            Just(ip(10, 0, 0, 2)),
            Just(ip(10, 0, 0, 3)),
            Just(ip(10, 0, 0, 9))
        ]
    }

    /// Byte strings a peer might send: whole valid messages, pieces of
    /// them, and garbage.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let open = (any::<bool>(), any::<u16>()).prop_map(|(good_as, hold)| {
            let asn = if good_as { 64512 } else { 65001 };
            BgpMessage::Open(OpenRepr::new(asn, hold, ip(10, 0, 0, 2), vec![]))
                .to_bytes(BgpContext::FOUR_OCTET)
        });
        let update = (0u8..4).prop_map(|i| {
            let mut a = PathAttrs::local(ip(10, 0, 0, 2));
            if i == 1 {
                a.originator_id = Some(ip(10, 0, 0, 1));
            }
            let u = UpdateRepr {
                withdrawn: if i == 2 { vec![block(7)] } else { vec![] },
                attributes: a.to_attributes(),
                nlri: vec![block(i + 5)],
            };
            BgpMessage::Update(u).to_bytes(BgpContext::FOUR_OCTET)
        });
        prop_oneof![
            open,
            update,
            Just(BgpMessage::Keepalive.to_bytes(BgpContext::FOUR_OCTET)),
            vec(any::<u8>(), 0..40),
            (vec(any::<u8>(), 0..30), 0usize..30).prop_map(|(mut v, cut)| {
                v.truncate(cut);
                v
            }),
        ]
    }

    fn input() -> impl Strategy<Value = Input> {
        let kind = prop_oneof![
            Just(TimerKind::ConnectRetry),
            Just(TimerKind::Hold),
            Just(TimerKind::Keepalive),
            Just(TimerKind::IdleHold),
            Just(TimerKind::GracefulRestart),
        ];
        prop_oneof![
            Just(Input::Start),
            peer().prop_map(Input::TransportConnected),
            (peer(), bytes()).prop_map(|(p, b)| Input::TransportBytes(p, b)),
            peer().prop_map(Input::TransportClosed),
            (peer(), kind).prop_map(|(p, k)| Input::Timer(p, k)),
            (1u8..8).prop_map(|i| Input::Originate(block(i))),
            (1u8..8).prop_map(|i| Input::WithdrawOrigin(block(i))),
            peer().prop_map(Input::AdminReset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Any sequence of inputs: no panic, and the Loc-RIB always holds
        /// exactly what the decision process would pick.
        #[test]
        fn any_input_sequence_is_handled(
            steps in vec((0u64..300_000_000_000, input()), 0..60)
        ) {
            let mut c = SpeakerConfig::new(ip(10, 0, 0, 1), 64512);
            c.neighbors.push(Neighbor::new(ip(10, 0, 0, 2), 64512));
            c.neighbors.push(Neighbor {
                rr_client: true,
                ..Neighbor::new(ip(10, 0, 0, 3), 64512)
            });
            let mut s = Speaker::new(c, RootSeed(3).stream("fuzz"));
            let mut now = SimTime::ZERO;
            for (dt, i) in steps {
                now += SimDuration::from_nanos(dt);
                let outs = s.handle(now, i);
                for o in outs {
                    if let Output::SetTimer(_, _, at) = o {
                        prop_assert!(at >= now);
                    }
                }
                for (p, b) in s.loc_rib() {
                    if b.source == Source::Local {
                        prop_assert!(s.originated().contains(&p));
                    }
                }
            }
        }
    }
}

mod converge_api {
    use super::*;
    use crate::bgp::fabric::{FabricError, KernelRoute, converge};

    fn same_as_step_by_step(cluster: &CalicoCluster, seed: u64) {
        let c = converge(cluster, seed, FabricOptions::default()).unwrap();
        // The same run, logged and recorded, step by step.
        let mut n = Net::calico(seed, cluster);
        n.start_all();
        n.run_until(c.at);
        assert_eq!(n.tables(), {
            let mut m = Net(c.fabric);
            m.0.run_until(c.at).unwrap();
            m.tables()
        });
    }

    #[test]
    fn converges_to_quiescence_with_the_same_tables_as_step_by_step() {
        same_as_step_by_step(&mesh(4), 1);
        same_as_step_by_step(&with_reflectors(6, &[100]), 2);
        same_as_step_by_step(&with_reflectors(8, &[100, 101]), 3);
    }

    #[test]
    fn converged_tables_and_figures() {
        let c = converge(&with_reflectors(6, &[100]), 2, FabricOptions::default()).unwrap();
        let rr = ip(10, 0, 0, 100);
        for i in 0..6 {
            let k = c.kernel_routes(i);
            assert_eq!(k.len(), 6);
            for j in 0..6u8 {
                let want = if j as usize == i {
                    KernelRoute::Blackhole
                } else {
                    KernelRoute::Via {
                        next_hop: ip(10, 0, 0, j + 1),
                        peer: rr,
                    }
                };
                assert_eq!(k[&block(j + 1)], want);
            }
            assert!(
                c.sessions(i)
                    .iter()
                    .all(|(_, _, st)| *st == State::Established)
            );
        }
        let s = c.stats;
        // Each client announces its block to the RR, which reflects each to
        // the five other clients.
        assert_eq!(s.announced, 6 + 6 * 5);
        assert_eq!(s.withdrawn, 0);
        assert_eq!(s.installs, 6 + 6 * 5);
        assert_eq!(s.opens, 12);
        let last = s.last_route_change.unwrap();
        assert!(last <= c.at && last > SimTime::ZERO);
        // Connect delay 2 s jittered down by at most a quarter: the last
        // route change comes after 1.5 s, within a few latencies of the
        // last session up.
        assert!(last >= secs(1) + SimDuration::from_millis(500), "{last}");
        assert!(last < secs(3), "{last}");
    }

    #[test]
    fn pair_latency_delays_convergence() {
        let fast = converge(&mesh(3), 4, FabricOptions::default()).unwrap();
        let slow = converge(
            &mesh(3),
            4,
            FabricOptions {
                pair_latency: vec![("node1".into(), "node3".into(), SimDuration::from_millis(50))],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fast.kernel_routes(0), slow.kernel_routes(0));
        let (f, s) = (
            fast.stats.last_route_change.unwrap(),
            slow.stats.last_route_change.unwrap(),
        );
        assert!(s > f, "{f} {s}");
    }

    #[test]
    fn bounds_are_errors_naming_them() {
        // A wrong AS: the sessions never come up.
        let mut c = mesh(2);
        c.nodes[1].as_number = Some(64999);
        let mut nodes: Vec<_> = c
            .expand()
            .into_iter()
            .map(|n| (n.node, n.config, n.originate))
            .collect();
        nodes[0].1.neighbors[0].remote_as = 64512;
        let e = converge(
            nodes,
            9,
            FabricOptions {
                until: secs(100),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, FabricError::TimeLimit { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("FabricOptions::until"), "{msg}");
        assert!(msg.contains("0 of 2 session ends established"), "{msg}");
        let e = converge(
            &mesh(4),
            1,
            FabricOptions {
                max_events: 50,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("FabricOptions::max_events"), "{e}");
    }

    #[test]
    fn peers_outside_the_fabric_do_not_hold_up_quiescence() {
        // Every node also peers with a ToR that is not simulated: its
        // connect retries go on, but the fabric is quiescent.
        let mut c = mesh(3);
        c.peers.push(BgpPeer {
            name: "tor".into(),
            peer_ip: Some(ip(10, 0, 0, 254)),
            as_number: Some(65000),
            ..Default::default()
        });
        let conv = converge(&c, 5, FabricOptions::default()).unwrap();
        assert_eq!(conv.installed(0).len(), 2);
        assert!(conv.at < secs(10));
    }
}

/// The fabric's message counts (a message sent to many peers in a row is
/// counted once and multiplied): every client's block reaches both
/// reflectors, each reflector reflects it to every other client and to the
/// other reflector; each UPDATE of a cold start announces one block, plus
/// an End-of-RIB per session direction; every message is one of the four
/// types.
#[test]
fn fabric_counts_every_message_sent() {
    let (c, r) = (20u64, 2u64);
    let conv = super::fabric::converge(
        &CalicoCluster::synthetic_reflectors(c as u32, r as u32),
        3,
        FabricOptions::default(),
    )
    .expect("converges");
    let s = conv.stats;
    assert_eq!(s.announced, c * r + r * c * (c - 1) + r * (r - 1) * c);
    assert_eq!(s.withdrawn, 0);
    assert_eq!(
        s.messages,
        s.opens + s.updates + s.keepalives + s.notifications
    );
    // Sessions: each client with each reflector, and the reflectors with
    // each other; an OPEN each way.
    let sessions = c * r + r * (r - 1) / 2;
    assert_eq!(s.opens, 2 * sessions);
    assert_eq!(s.updates, s.announced + 2 * sessions, "{s:?}");
}

#[test]
fn a_lazy_hold_timer_is_asked_for_again_when_it_comes() {
    // Two speakers brought to Established by hand; `b` keeps its hold
    // timer moves to itself.
    let (mut a, mut b) = speaker_pair();
    b.set_lazy_hold(true);
    let (pa, pb) = (ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    let hold_sets = |outs: &[Output]| -> Vec<SimTime> {
        outs.iter()
            .filter_map(|o| match o {
                Output::SetTimer(_, TimerKind::Hold, at) => Some(*at),
                _ => None,
            })
            .collect()
    };
    let sends = |outs: Vec<Output>| -> Vec<u8> {
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Send(_, w) => Some(w.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let mut t = SimTime::ZERO;
    a.handle(t, Input::Start);
    b.handle(t, Input::Start);
    let mut to_b = sends(a.handle(t, Input::TransportConnected(pb)));
    let outs = b.handle(t, Input::TransportConnected(pa));
    let mut due = hold_sets(&outs).last().copied();
    let mut to_a = sends(outs);
    for _ in 0..4 {
        let outs = b.handle(t, Input::TransportBytes(pa, std::mem::take(&mut to_b)));
        due = hold_sets(&outs).last().copied().or(due);
        to_a.extend(sends(outs));
        to_b.extend(sends(
            a.handle(t, Input::TransportBytes(pb, std::mem::take(&mut to_a))),
        ));
    }
    assert_eq!(b.state(pa), Some(State::Established));
    let due = due.expect("b asked for a hold timer");
    // A KEEPALIVE a second later moves the deadline later: nothing asked.
    t += SimDuration::from_secs(1);
    use sim_core::wire::bgp::{BgpContext, BgpMessage};
    let keepalive = BgpMessage::Keepalive.to_bytes(BgpContext::FOUR_OCTET);
    let outs = b.handle(t, Input::TransportBytes(pa, keepalive.clone()));
    assert!(hold_sets(&outs).is_empty(), "{outs:?}");
    // The pending input comes at the old deadline: no expiry, the timer
    // asked for again at the new one, at least a second later.
    let outs = b.handle(due, Input::Timer(pa, TimerKind::Hold));
    let again = hold_sets(&outs);
    assert_eq!(again.len(), 1, "{outs:?}");
    assert!(again[0] > due, "{again:?} after {due}");
    assert_eq!(b.state(pa), Some(State::Established));
    // An input at another time is stale; at the new deadline it expires.
    let outs = b.handle(due, Input::Timer(pa, TimerKind::Hold));
    assert!(outs.is_empty(), "{outs:?}");
    b.handle(again[0], Input::Timer(pa, TimerKind::Hold));
    assert_ne!(b.state(pa), Some(State::Established));
}
