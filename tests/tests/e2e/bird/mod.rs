//! Agreement with real BIRD (issue 8): the routes real BIRD 2 installs in
//! the kernel, configured as Calico configures it, against the routes
//! podpath's speakers converge to.
//!
//! For each cluster (a 4-node full mesh; 6 nodes and one route reflector; 8
//! nodes and two reflectors of one cluster id), `lab.rs` builds one network
//! namespace per node (`ppb<pid>s<tag>-n<i>`, its `eth0` a veth whose other
//! end is a port of a bridge in a namespace of its own, `ppb<pid>s<tag>-br`),
//! writes each node's `bird.cfg` as calico/node's confd would render it
//! ([`sim_models::bgp::CalicoCluster::bird_config`]: native routing, the
//! node's IPAM block as a static blackhole route), starts `bird -f -c cfg -s
//! sock -P pid` in each, waits until `birdc show protocols` says every BGP
//! session is Established and every namespace's `ip -j route show proto
//! bird` has stopped changing, and reads those tables and `birdc show
//! route` (for each prefix, which protocols have a route and whose is best). podpath runs the same
//! cluster with [`sim_models::bgp::converge`]. The two are compared per node
//! and prefix: next hop, device, or blackhole; and the BGP table: the
//! protocols (neighbours, or the static protocol of the node's block) that
//! have a route for it, and whose is best; any difference is printed with
//! both sides and fails the test.
//!
//! One kind of route is set aside, by name: the node's own subnet
//! (`10.0.0.0/24 dev eth0 proto bird`), which BIRD 2's kernel protocol
//! exports from `protocol direct`. Calico ships a fork of BIRD 1.6, whose
//! kernel protocol does not export device routes (its `device routes` option
//! is off by default; from memory of BIRD 1.6's `krt.c`), and podpath
//! models Calico's node, so it has no such route. The metric (BIRD 2's
//! default `metric 32`) is not compared.
//!
//! Nothing is configured in the machine's own namespace; a guard stops the
//! daemons (by pid) and deletes the namespaces even when the test fails.
//! Without root, `ip`, `bird`, `birdc` or namespaces the tests print
//! "skipped BIRD comparison: <why>" and pass, unless
//! `PODPATH_REQUIRE_KERNEL=1` (CI), which makes that a failure. The
//! configurations and BIRD's logs of the last run are kept under
//! `$CARGO_TARGET_TMPDIR/bird/`.

mod lab;

use crate::host::say;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_models::bgp::{
    BgpConfiguration, BgpPeer, CalicoCluster, CalicoNode, FabricOptions, KernelRoute, Selector,
    Source, converge,
};

/// A kernel route as both sides are compared.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// `via GW dev DEV`, or several of them (ECMP, sorted).
    Via(Vec<(Ipv4Addr, String)>),
    Blackhole,
    /// A device route (`dev DEV`, no gateway).
    Device(String),
    /// Anything else, as `ip -j` printed it.
    Other(String),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Via(hops) => {
                let v: Vec<String> = hops
                    .iter()
                    .map(|(g, d)| format!("via {g} dev {d}"))
                    .collect();
                f.write_str(&v.join(" + "))
            }
            Route::Blackhole => f.write_str("blackhole"),
            Route::Device(d) => write!(f, "dev {d}"),
            Route::Other(s) => f.write_str(s),
        }
    }
}

/// Ok(()) when the BIRD comparison can run here; otherwise prints why
/// and returns Err (or panics when PODPATH_REQUIRE_KERNEL=1).
fn bird_or_skip(test: &str) -> Result<(), ()> {
    static CHECK: crate::host::Availability =
        crate::host::Availability::new("BIRD", lab::unavailable);
    CHECK.or_skip(test)
}

fn ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, d)
}

fn block(i: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 244, i, 0), 26).unwrap()
}

fn nodes(n: u8) -> Vec<CalicoNode> {
    (1..=n)
        .map(|i| CalicoNode::new(&format!("node{i}"), ip(i), vec![block(i)]))
        .collect()
}

pub fn mesh(n: u8) -> CalicoCluster {
    CalicoCluster {
        ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
        nodes: nodes(n),
        ..Default::default()
    }
}

/// Mesh off; reflectors labelled `route-reflector: true` with one cluster
/// id; one BGPPeer peering every node with them (Calico's documented setup).
pub fn with_reflectors(clients: u8, rrs: &[u8]) -> CalicoCluster {
    let mut nodes = nodes(clients);
    for &r in rrs {
        let mut n = CalicoNode::new(&format!("rr{r}"), ip(r), vec![]);
        n.route_reflector_cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
        n.labels.insert("route-reflector".into(), "true".into());
        nodes.push(n);
    }
    CalicoCluster {
        bgp_configuration: BgpConfiguration {
            node_to_node_mesh_enabled: false,
            ..Default::default()
        },
        ip_pools: vec!["10.244.0.0/16".parse().unwrap()],
        nodes,
        peers: vec![BgpPeer {
            name: "peer-with-route-reflectors".into(),
            node_selector: Some(Selector::parse("all()").unwrap()),
            peer_selector: Some(Selector::parse("route-reflector == 'true'").unwrap()),
            ..Default::default()
        }],
    }
}

/// The node subnet every lab node's `eth0` is on.
const SUBNET: &str = "10.0.0.0/24";

type Tables<T> = BTreeMap<String, BTreeMap<Ipv4Net, T>>;

/// podpath's converged kernel routes, and its BGP table in BIRD's terms:
/// per prefix, the protocol of the best route and of every route (its
/// Adj-RIBs-In, and `static1` for the node's own block), per node name.
fn podpath_routes(cluster: &CalicoCluster) -> (Tables<Route>, Tables<lab::TableEntry>) {
    let c = converge(cluster, 1, FabricOptions::default())
        .unwrap_or_else(|e| panic!("podpath did not converge: {e}"));
    let mut table = BTreeMap::new();
    for (i, n) in c.nodes().iter().enumerate() {
        let sp = n.speaker();
        let mut t: BTreeMap<Ipv4Net, lab::TableEntry> = BTreeMap::new();
        for p in sp.originated() {
            t.entry(*p).or_default().1.insert("static1".into());
        }
        for nb in &n.config.neighbors {
            for p in sp.adj_rib_in(nb.address).into_iter().flat_map(|r| r.keys()) {
                t.entry(p).or_default().1.insert(nb.name.clone());
            }
        }
        for (p, b) in c.loc_rib(i) {
            let proto = match b.source {
                Source::Local => "static1".to_string(),
                Source::Peer(a) => n
                    .config
                    .neighbor(a)
                    .map_or(a.to_string(), |nb| nb.name.clone()),
            };
            t.entry(p).or_default().0 = Some(proto);
        }
        table.insert(n.name.clone(), t);
    }
    let mut out = BTreeMap::new();
    for (i, n) in c.nodes().iter().enumerate() {
        let routes = c
            .kernel_routes(i)
            .into_iter()
            .map(|(p, r)| {
                let r = match r {
                    // Every lab node has one interface, eth0, on the node subnet.
                    KernelRoute::Via { next_hop, .. } => {
                        Route::Via(vec![(next_hop, "eth0".into())])
                    }
                    KernelRoute::Blackhole => Route::Blackhole,
                };
                (p, r)
            })
            .collect();
        out.insert(n.name.clone(), routes);
    }
    (out, table)
}

/// Runs the cluster on real BIRD and in podpath and compares; panics with
/// the differences.
fn agree(test: &str, tag: &str, cluster: &CalicoCluster) {
    if bird_or_skip(test).is_err() {
        return;
    }
    lab::sweep_stale();
    let real = match lab::run(tag, test, cluster) {
        Ok(r) => r,
        Err(e) => panic!("{test}: the BIRD side failed: {e}"),
    };
    let (ours, our_table) = podpath_routes(cluster);
    let subnet: Ipv4Net = SUBNET.parse().unwrap();
    let mut report = String::new();
    let mut diffs = 0;
    let mut set_aside = 0;
    for n in &cluster.nodes {
        let theirs = real.routes.get(&n.name).cloned().unwrap_or_default();
        let mine = ours.get(&n.name).cloned().unwrap_or_default();
        let mut keys: Vec<Ipv4Net> = theirs.keys().chain(mine.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (b, p) = (theirs.get(&k), mine.get(&k));
            if p.is_none() && k == subnet && b == Some(&Route::Device("eth0".into())) {
                set_aside += 1; // BIRD 2 exports protocol direct's route: see the module docs
                continue;
            }
            if b != p {
                diffs += 1;
                let show = |r: Option<&Route>| r.map_or("(none)".to_string(), |r| r.to_string());
                let _ = writeln!(
                    report,
                    "  {}: {k}: BIRD {} | podpath {}",
                    n.name,
                    show(b),
                    show(p)
                );
            }
        }
    }
    // The BGP tables: for each prefix, the protocol of the best route and
    // of every route.
    for n in &cluster.nodes {
        let theirs = real.table.get(&n.name).cloned().unwrap_or_default();
        let mine = our_table.get(&n.name).cloned().unwrap_or_default();
        let mut keys: Vec<Ipv4Net> = theirs.keys().chain(mine.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            // BIRD's table also has protocol direct's subnet route.
            if k == subnet && !mine.contains_key(&k) {
                continue;
            }
            let (b, p) = (theirs.get(&k), mine.get(&k));
            if b != p {
                diffs += 1;
                let show = |e: Option<&lab::TableEntry>| match e {
                    None => "(none)".to_string(),
                    Some((best, all)) => format!(
                        "best from {}, routes from {}",
                        best.as_deref().unwrap_or("-"),
                        all.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                };
                let _ = writeln!(
                    report,
                    "  {}: BGP table {k}: BIRD {} | podpath {}",
                    n.name,
                    show(b),
                    show(p)
                );
            }
        }
    }
    let routes: usize = real.routes.values().map(|r| r.len()).sum();
    say(&format!(
        "{test}: {} nodes, {} BGP sessions Established in real BIRD after {:.1} s (wall), \
         {routes} proto-bird routes read ({set_aside} device routes of the node subnet set aside), \
         {diffs} differences\n{report}",
        cluster.nodes.len(),
        real.sessions,
        real.wall.as_secs_f64(),
    ));
    assert_eq!(
        diffs, 0,
        "{test}: podpath and real BIRD disagree (BIRD's side, then podpath's):\n{report}"
    );
}

#[test]
fn bird_mesh_of_four_agrees() {
    agree("bird_mesh_of_four_agrees", "m4", &mesh(4));
}

#[test]
fn bird_six_clients_one_reflector_agree() {
    agree(
        "bird_six_clients_one_reflector_agree",
        "r1",
        &with_reflectors(6, &[100]),
    );
}

#[test]
fn bird_eight_clients_two_reflectors_agree() {
    agree(
        "bird_eight_clients_two_reflectors_agree",
        "r2",
        &with_reflectors(8, &[100, 101]),
    );
}
