//! BGP-built clusters: one insta snapshot per converged state (every node's
//! kernel table, BIRD's sessions and BGP table, the convergence report),
//! and the properties that must hold whatever the snapshot says: every pod
//! block reachable from every node, no forwarding loop, a withdrawn block
//! gone everywhere, graceful restart losing nothing, and the same seed
//! giving the same bytes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use scenarios::routes::{RoutesReport, installed_routes, render, routes};
use sim_core::net::Ipv4Net;

fn report(stem: &str) -> RoutesReport {
    let sc = scenarios::load_file(&format!("../scenarios/files/{stem}.ron")).unwrap();
    routes(&sc, &Default::default(), None).unwrap()
}

/// Which host owns each address (any namespace's root addresses).
fn owners(r: &RoutesReport) -> BTreeMap<Ipv4Addr, String> {
    let w = &r.sim.world;
    let mut m = BTreeMap::new();
    for h in &w.hosts {
        for a in &w.namespaces[h.root.ix()].addrs {
            m.insert(a.local, h.name.clone());
        }
    }
    m
}

/// Follows BGP next hops from every node to every block: each walk must end
/// at the block's origin, within as many hops as there are hosts.
fn assert_no_loops_and_full_reach(stem: &str, r: &RoutesReport) {
    let w = &r.sim.world;
    let inst = installed_routes(&r.sim);
    let own = owners(r);
    let mut origin: BTreeMap<Ipv4Net, String> = BTreeMap::new();
    for (h, s) in &w.bird_setups {
        for p in &s.originate {
            origin.insert(p.network(), w.hosts[h.ix()].name.clone());
        }
    }
    for node in inst.keys() {
        let h = w.host_by_name[node.as_str()];
        let setup = &w.bird_setups[&h];
        if setup.originate.is_empty() && setup.config.cluster_id.is_some() {
            continue; // a dedicated reflector: in no packet's path
        }
        for (block, home) in &origin {
            let mut at = node.clone();
            let mut hops = 0;
            while at != *home {
                let nh = inst.get(&at).and_then(|m| m.get(block)).unwrap_or_else(|| {
                    panic!("{stem}: {at} has no route to {block} (walk from {node})")
                });
                at = own
                    .get(nh)
                    .unwrap_or_else(|| {
                        panic!("{stem}: next hop {nh} of {block} on {at} is no host's")
                    })
                    .clone();
                hops += 1;
                assert!(hops <= w.hosts.len(), "{stem}: {block} loops from {node}");
            }
        }
    }
}

fn snapshot(stem: &str) -> RoutesReport {
    let r = report(stem);
    let text = render(&r, None).unwrap();
    insta::assert_snapshot!(format!("routes-{stem}"), text);
    assert!(
        r.phases.last().unwrap().lacking.is_empty(),
        "{stem}: nodes still lack routes at the end: {:?}",
        r.phases.last().unwrap().lacking
    );
    assert_no_loops_and_full_reach(stem, &r);
    r
}

#[test]
fn mesh_of_four_converges_everywhere() {
    let r = snapshot("bgp-mesh4");
    let p = &r.phases[0];
    // 4 nodes, 6 sessions, each side announcing its block: 12 UPDATEs with
    // a route, plus each side's End-of-RIB.
    assert_eq!(p.counters.opens, 12);
    assert_eq!(p.route_changes, 12);
    assert!(p.last_change.unwrap() < sim_core::time::SimTime::from_nanos(2_000_000_000));
    // `birdc restart` of one session: a Cease, both sides drop and relearn
    // each other's block (2 removals, 2 installs), and the hole closes.
    let reset = r
        .phases
        .iter()
        .find(|p| p.label.contains("birdc restart"))
        .unwrap();
    assert_eq!(reset.counters.notifications, 1);
    assert_eq!(reset.route_changes, 4);
    assert!(
        matches!(reset.black_hole, Some((_, Some(_)))),
        "{:?}",
        reset.black_hole
    );
}

#[test]
fn one_route_reflector_reflects_with_originator_and_cluster_list() {
    let r = snapshot("bgp-rr1-clients6");
    let w = &r.sim.world;
    let node1 = w.host_by_name["node1"];
    let b = w.bird_of(node1).unwrap();
    // The client hears every other block from the reflector only, with the
    // originator's address as next hop.
    let rr: Ipv4Addr = "192.168.56.201".parse().unwrap();
    for (p, i) in &b.installed {
        assert_eq!(i.peer, rr, "{p}");
        assert_eq!(
            i.next_hop,
            Ipv4Addr::new(192, 168, 56, 10 + p.addr.octets()[2])
        );
    }
    assert_eq!(b.installed.len(), 5);
}

#[test]
fn losing_one_of_two_reflectors_loses_no_route() {
    let r = snapshot("bgp-rr2-clients8");
    let loss = r.phases.iter().find(|p| p.label.contains("rr1")).unwrap();
    assert_eq!(loss.black_hole, None, "rr2 still reflects every route");
    // The clients drop rr1's session only at hold-timer expiry (240 s).
    let t = loss
        .last_change
        .expect("clients re-select their routes through rr2");
    assert!(
        t - loss.start > sim_core::time::SimDuration::from_secs(150),
        "{t}"
    );
}

#[test]
fn a_failed_node_is_withdrawn_everywhere_and_relearned() {
    let r = snapshot("bgp-node-failure");
    let down = r
        .phases
        .iter()
        .find(|p| p.label.contains("eth0 down"))
        .unwrap();
    let block: Ipv4Net = "10.244.3.0/26".parse().unwrap();
    for n in ["node1", "node2", "node4"] {
        assert_eq!(
            down.lacking.get(n),
            Some(&vec![block]),
            "{n} must have dropped node3's block"
        );
    }
    assert!(
        matches!(down.black_hole, Some((_, None))),
        "{:?}",
        down.black_hole
    );
    let up = r
        .phases
        .iter()
        .find(|p| p.label.contains("eth0 up"))
        .unwrap();
    assert!(up.lacking.is_empty());
}

#[test]
fn graceful_restart_keeps_routes_while_bird_is_down() {
    let r = snapshot("bgp-graceful-restart");
    for p in &r.phases[1..] {
        assert_eq!(
            p.black_hole, None,
            "{}: graceful restart loses no route",
            p.label
        );
        assert!(p.lacking.is_empty(), "{}", p.label);
    }
    let kill = r.phases.iter().find(|p| p.label.contains("pkill")).unwrap();
    assert_eq!(
        kill.counters.withdrawals, 0,
        "stale routes are kept, not withdrawn"
    );
}

#[test]
fn leaf_spine_ebgp_paths() {
    let r = snapshot("bgp-leaf-spine");
    let w = &r.sim.world;
    let tor1 = w.bird_of(w.host_by_name["tor1"]).unwrap();
    let p: Ipv4Net = "10.244.8.0/26".parse().unwrap();
    let best = tor1.speaker.loc_rib().get(&p).unwrap();
    let path: Vec<u32> = best
        .attrs
        .as_path
        .iter()
        .flat_map(|s| s.asns.clone())
        .collect();
    assert_eq!(path, vec![65000, 65004], "through a spine to rack 4's AS");
}

#[test]
fn same_seed_same_routes_report() {
    let a = render(&report("bgp-rr1-clients6"), None).unwrap();
    let b = render(&report("bgp-rr1-clients6"), None).unwrap();
    assert_eq!(a, b);
}

#[test]
fn trace_shows_the_bgp_route_and_its_peer() {
    let out = crate::podpath(&[
        "trace",
        &crate::path("scenarios/files/bgp-mesh4.ron"),
        "--from",
        "node1:pod",
        "--to",
        "10.244.4.1",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "10.244.4.0/26 via 192.168.56.14 dev tunl0 proto bird onlink (learned from BGP peer 192.168.56.14 (Mesh_192_168_56_14), AS path (empty), next hop 192.168.56.14)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn routes_at_a_time_and_for_one_node() {
    let f = crate::path("scenarios/files/bgp-node-failure.ron");
    // At 300 s node1 has dropped node3's block (hold timer expired).
    let out = crate::podpath(&["routes", &f, "--at", "300s", "--node", "node1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("--- node1 ---"));
    assert!(!out.stdout.contains("--- node2 ---"));
    assert!(!out.stdout.contains("10.244.3.0/26 via"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("10.244.2.0/26 via 192.168.56.12 dev tunl0 proto bird onlink")
    );
    let bad = crate::podpath(&["routes", &f, "--node", "node9"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("no BGP node \"node9\""),
        "{}",
        bad.stderr
    );
    let none = crate::podpath(&["routes", &crate::path("scenarios/files/seed-ipip.ron")]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("has no bgp section"),
        "{}",
        none.stderr
    );
}
