//! Clusters described in Kubernetes' terms: the configuration each CNI mode
//! generates (snapshots of `podpath expand`, reviewed line by line), all-pairs
//! reachability of every mode at 20 nodes, the VPC route-table limit, and the
//! refusals the real components make.

use crate::podpath;

/// A scenario file in a temporary directory of its own, removed with it
/// (a test's `&f` is the file's path).
struct Ron {
    dir: std::path::PathBuf,
    path: String,
}

impl Ron {
    /// Its directory, as the tool prints paths in it.
    fn dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

impl std::ops::Deref for Ron {
    type Target = str;
    fn deref(&self) -> &str {
        &self.path
    }
}

impl AsRef<std::path::Path> for Ron {
    fn as_ref(&self) -> &std::path::Path {
        self.path.as_ref()
    }
}

impl std::fmt::Display for Ron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

impl Drop for Ron {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A scenario file named `name.ron` (in a directory of its own: tests run
/// side by side, and some write the same name).
fn scenario(name: &str, text: &str) -> Ron {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("podpath-k8s-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    Ron {
        path: p.to_string_lossy().into_owned(),
        dir,
    }
}

fn cluster(name: &str, cni: &str, nodes: u32, pods: u32, underlay: &str, extra: &str) -> Ron {
    scenario(
        name,
        &format!(
            "Scenario(name: \"{name}\", cluster: Cluster(cni: \"{cni}\", nodes: Nodes(count: {nodes}), pods: Pods(per_node: {pods}), underlay: {underlay}{extra}), expect: [FullReach()])"
        ),
    )
}

const MODES: &[(&str, &str)] = &[
    ("flannel-vxlan", "L2(subnet: \"10.0.0.0/24\")"),
    ("flannel-host-gw", "L2(subnet: \"10.0.0.0/24\")"),
    ("calico-vxlan", "L2(subnet: \"10.0.0.0/24\")"),
    ("kubenet", "Vpc(cidr: \"10.0.0.0/24\")"),
    ("calico-ipip", "L2(subnet: \"10.0.0.0/24\")"),
    ("calico-bgp", "L2(subnet: \"10.0.0.0/24\")"),
];

#[test]
fn generated_configuration_of_three_nodes_in_each_mode() {
    for (cni, ul) in MODES {
        let f = cluster(&format!("expand-{cni}"), cni, 3, 2, ul, "");
        let out = podpath(&["expand", &f]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        insta::assert_snapshot!(format!("expand-{cni}"), out.stdout);
    }
}

#[test]
fn every_mode_reaches_all_pairs_at_20_nodes() {
    for (cni, ul) in MODES {
        let ul = ul.replace("/24", "/16");
        let f = cluster(&format!("reach20-{cni}"), cni, 20, 2, &ul, "");
        let out = podpath(&["reach", &f]);
        assert_eq!(out.code, 0, "{cni}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.starts_with(
                "1560 pairs of 40 pods on 20 nodes (ICMP echo request and reply): 1560 reachable, 0 not"
            ),
            "{cni}: {}",
            out.stdout
        );
    }
    // Across racks (routed underlay): the overlays work, host-gw is refused;
    // Calico's BGP modes work with a mesh across racks (IPIP CrossSubnet:
    // native in a rack, tunl0 between racks; native routing through the
    // top-of-rack routers) and with top-of-rack peering.
    for (cni, extra) in [
        ("flannel-vxlan", ""),
        ("calico-vxlan", ""),
        (
            "calico-ipip",
            ", calico: Calico(ipip_mode: \"CrossSubnet\")",
        ),
        ("calico-ipip", ", calico: Calico(route_reflectors: 2)"),
        ("calico-bgp", ", calico: Calico(tor_peering: true)"),
    ] {
        let f = cluster(
            &format!("racks-{cni}"),
            cni,
            20,
            1,
            "Racks(racks: 4, subnet: \"10.0.0.0/16\")",
            extra,
        );
        let out = podpath(&["reach", &f]);
        assert_eq!(out.code, 0, "{cni}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("380 reachable, 0 not"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn native_calico_bgp_across_racks_needs_the_fabric_to_peer() {
    // A node-to-node mesh across racks installs routes via the top-of-rack
    // router (BIRD resolves the remote node's address through the default
    // route), but the routers learn no pod routes: pods reach only their own
    // rack, exactly as on a real routed fabric that does not peer with Calico.
    let f = cluster(
        "racks-calico-bgp-mesh",
        "calico-bgp",
        20,
        1,
        "Racks(racks: 4, subnet: \"10.0.0.0/16\")",
        "",
    );
    let out = podpath(&["reach", &f]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("80 reachable, 300 not"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "node1 -> node6: 1 of 1; node1:node1-pod1 -> node6:node6-pod1 (10.244.5.1): request dropped at tor1: no route to host (network unreachable) [no-route]"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn vpc_route_table_limit_leaves_later_nodes_unreachable() {
    let f = cluster(
        "route-limit",
        "kubenet",
        6,
        1,
        "Vpc(cidr: \"10.0.0.0/16\", route_limit: 4)",
        "",
    );
    let out = podpath(&["reach", &f]);
    assert_eq!(out.code, 1, "a failed FullReach exits 1");
    assert!(out.stderr.contains("expectations failed"));
    insta::assert_snapshot!("reach-route-limit", out.stdout);
    // The default limit is AWS's 50: 51 nodes leave the last one out.
    let f = cluster(
        "route-limit-51",
        "kubenet",
        51,
        1,
        "Vpc(cidr: \"10.0.0.0/16\")",
        "",
    );
    let out = podpath(&["expand", &f, "--node", "vpc-router"]);
    assert!(
        out.stdout
            .contains("# warning: VPC route table limit of 50 routes reached")
    );
    assert!(out.stdout.contains("of 1 node (node51)"), "{}", out.stdout);
    assert!(out.stdout.contains(
        "# RouteLimitExceeded, not created: ip route add 10.244.50.0/24 via 10.0.0.61 dev eth0"
    ));
}

#[test]
fn refusals_are_positioned_errors() {
    let f = cluster(
        "hostgw-racks",
        "flannel-host-gw",
        4,
        1,
        "Racks(racks: 2, subnet: \"10.0.0.0/16\")",
        "",
    );
    let out = podpath(&["check", &f]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("flannel-host-gw needs every node on one L2 subnet: node3 (10.0.2.11) is not on node1's subnet 10.0.1.0/24"),
        "{}",
        out.stderr
    );
    let f = cluster(
        "kubenet-l2",
        "kubenet",
        2,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let out = podpath(&["check", &f]);
    assert!(
        out.stderr
            .contains("kubenet routes podCIDRs through the cloud's route table"),
        "{}",
        out.stderr
    );
    let f = cluster("bad-cni", "cilium", 2, 1, "L2(subnet: \"10.0.0.0/24\")", "");
    let out = podpath(&["check", &f]);
    assert!(
        out.stderr.contains("unknown CNI mode \"cilium\""),
        "{}",
        out.stderr
    );
    let f = scenario(
        "ipam-full",
        "Scenario(name: \"x\", cluster: Cluster(cni: \"flannel-vxlan\", cluster_cidr: \"10.244.0.0/23\", nodes: Nodes(count: 3)))",
    );
    let out = podpath(&["check", &f]);
    assert!(
        out.stderr.contains("no podCIDR left for node 3 of 3"),
        "{}",
        out.stderr
    );
}

#[test]
fn selectors_pick_nodes_pods_and_globs() {
    let f = cluster(
        "sel",
        "calico-vxlan",
        4,
        2,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let out = podpath(&[
        "reach",
        &f,
        "--from",
        "node1",
        "--to",
        "node3*,default/node4-pod2",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("6 pairs of 8 pods"),
        "{}",
        out.stdout
    );
    let out = podpath(&["reach", &f, "--from", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--from: \"nope\" names no pod"));
}

#[test]
fn pod_ips_follow_each_cnis_ipam() {
    // The bridge plugin's gateway takes .1; Calico's tunnel address takes .0.
    let f = cluster(
        "ipam-b",
        "flannel-host-gw",
        2,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let out = podpath(&["expand", &f, "--node", "node2"]);
    assert!(
        out.stdout
            .contains("ip -n node2-pod1 addr add 10.244.1.2/24 dev eth0")
    );
    let f = cluster(
        "ipam-c",
        "calico-vxlan",
        2,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let out = podpath(&["expand", &f, "--node", "node2"]);
    assert!(
        out.stdout
            .contains("ip -n node2-pod1 addr add 10.244.1.1/32 dev eth0")
    );
    // Calico names the host-side veth "cali" + sha1("namespace.pod")[:11].
    let want = format!(
        "ip link set {} address ee:ee:ee:ee:ee:ee",
        scenarios::cluster::hash::calico_veth_name("default", "node2-pod1")
    );
    assert!(out.stdout.contains(&want), "{}", out.stdout);
}

/// `podpath expand FILE --ron` without its comments: segments, hosts (and
/// a bgp section) to paste into a scenario.
fn expanded_ron(f: &str) -> String {
    let out = podpath(&["expand", f, "--ron"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn expand_ron_is_a_loadable_scenario() {
    let f = cluster(
        "ron",
        "flannel-vxlan",
        3,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let body = expanded_ron(&f);
    let g = scenario(
        "ron-pasted",
        &format!("Scenario(name: \"pasted\", {body} expect: [FullReach()])"),
    );
    let out2 = podpath(&["reach", &g]);
    assert_eq!(out2.code, 0, "{}{}", out2.stdout, out2.stderr);
    assert!(
        out2.stdout.starts_with("6 pairs of 3 pods on 3 nodes"),
        "{}",
        out2.stdout
    );
}

#[test]
fn service_trace_shows_dnat_the_endpoint_and_the_replys_un_dnat() {
    let out = podpath(&[
        "trace",
        "../scenarios/files/k8s-service.ron",
        "--from",
        "node1:client",
        "--to",
        "10.96.0.10",
        "--proto",
        "tcp",
        "--dport",
        "80",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // KUBE-SERVICES -> KUBE-SVC (statistic) -> KUBE-SEP -> DNAT to one endpoint.
    assert!(
        out.stdout
            .contains("-j KUBE-SVC-67NZLRHBNDSAWJRO`: jump KUBE-SVC-67NZLRHBNDSAWJRO")
    );
    assert!(
        out.stdout
            .contains("-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-")
    );
    assert!(out.stdout.contains(
        "-j DNAT --to-destination 10.244.2.2:8080`: 10.244.0.2:40000 > 10.96.0.10:80 -> 10.244.0.2:40000 > 10.244.2.2:8080"
    ));
    // The endpoint's SYN-ACK, mapped back to the Service address by conntrack.
    assert!(out.stdout.contains("\nreply: packet #"));
    assert!(out.stdout.contains(
        "conntrack un-DNAT 10.244.2.2:8080 > 10.244.0.2:40000 => 10.96.0.10:80 > 10.244.0.2:40000"
    ));
    insta::assert_snapshot!("trace-service", out.stdout);
}

#[test]
fn diff_names_the_pairs_whose_reachability_or_path_differs() {
    let a = cluster(
        "diff-a",
        "flannel-vxlan",
        3,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let b = cluster(
        "diff-b",
        "flannel-host-gw",
        3,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let out = podpath(&["diff", &a, &b, "--from", "node1", "--to", "node2"]);
    assert_eq!(out.code, 1, "pairs differ: exit 1, as diff(1)");
    assert!(
        out.stdout.contains("1 pairs in both; 1 differ"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("node1:node1-pod1 -> node2:node2-pod1: reachable in both, by another path")
    );
    assert!(out.stdout.contains("node1:flannel.1"), "{}", out.stdout);
    let out = podpath(&["diff", &a, &a]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("6 pairs in both; 0 differ"));
    // A smaller route table: the same pairs, some no longer reachable.
    let c = cluster("diff-c", "kubenet", 3, 1, "Vpc(cidr: \"10.0.0.0/24\")", "");
    let d = cluster(
        "diff-d",
        "kubenet",
        3,
        1,
        "Vpc(cidr: \"10.0.0.0/24\", route_limit: 2)",
        "",
    );
    let out = podpath(&["diff", &c, &d]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(
        "diff-route-limit",
        out.stdout.replace(&c.dir(), "TMP").replace(&d.dir(), "TMP")
    );
}

#[test]
fn reach_to_services_follows_dnat_and_the_endpoints_answer() {
    let f = scenario(
        "svc-reach",
        "Scenario(name: \"svc\", cluster: Cluster(cni: \"calico-vxlan\", nodes: Nodes(count: 3), services: [Service(name: \"api\", ports: [Port(port: 443, target_port: 6443)], endpoints: [\"node2-pod1\", \"node3-pod1\"]), Service(name: \"empty\", ports: [Port(port: 80)])]))",
    );
    let out = podpath(&["reach", &f, "--to", "svc/*"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Every pod reaches the Service with endpoints, node3's pod through its
    // own endpoint too (hairpin: masqueraded from the node's address, as the
    // kernel picks one when the cali veth has none); none reaches the
    // Service without endpoints (kube-proxy's REJECT).
    insta::assert_snapshot!("reach-services", out.stdout);
    // Without a selector naming them, Services are not probed.
    let out = podpath(&["reach", &f]);
    assert!(
        out.stdout.starts_with("6 pairs of 3 pods on 3 nodes (ICMP"),
        "{}",
        out.stdout
    );
}

#[test]
fn names_are_validated_as_the_api_server_does() {
    let f = scenario(
        "bad-names",
        "Scenario(name: \"x\", cluster: Cluster(cni: \"flannel-vxlan\", nodes: Nodes(names: [\"Node_1\"]), pods: Pods(list: [Pod(name: \"web 0\", node: \"Node_1\")]), services: [Service(name: \"a\\\"b\", ports: [Port(port: 80)])]))",
    );
    let out = podpath(&["check", &f]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("bad node name \"Node_1\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("bad pod name \"web 0\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("bad Service name \"a\"b\""),
        "{}",
        out.stderr
    );
}

/// With 64 sources or more, reach probes in two chunks, each on its own
/// copy of the set-up cluster; in a BGP-built cluster each copy must wait
/// for BGP to converge as the first does (it once probed at once and the
/// first probe of each chunk found no route yet).
#[test]
fn chunked_reach_waits_for_bgp_in_every_chunk() {
    let f = cluster(
        "chunked-ipip",
        "calico-ipip",
        33,
        2,
        "L2(subnet: \"10.0.0.0/16\")",
        ", calico: Calico(route_reflectors: 2)",
    );
    let out = podpath(&["reach", &f]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "4290 pairs of 66 pods on 33 nodes (ICMP echo request and reply): 4290 reachable, 0 not"
        ),
        "{}",
        out.stdout
    );
}

/// Progress is only watched: a run with an observer prints exactly what it
/// prints without one (the run is sliced in simulated time to report, and
/// the slices change nothing), and the observer hears each long phase.
#[test]
fn progress_changes_nothing_and_reports_each_phase() {
    use clap::Parser;
    use scenarios::progress::{Progress, Recorder};
    use std::sync::Arc;
    let run = |args: &[&str]| {
        let mut v = vec!["podpath"];
        v.extend_from_slice(args);
        let cli = podpath::cli::Cli::try_parse_from(v).unwrap();
        let rec = Arc::new(Recorder::default());
        let with = podpath::execute_with(&cli, &Progress::new(rec.clone()));
        let without = podpath::execute(&cli);
        assert_eq!(with, without, "{args:?}");
        rec.take()
    };
    let seed = crate::path("scenarios/files/seed-vxlan-routed.ron");
    let ev = run(&["run", &seed]);
    assert!(ev.iter().any(|e| e.starts_with("begin loading")), "{ev:?}");
    assert!(
        ev.iter().any(|e| e.starts_with("begin simulating")),
        "{ev:?}"
    );
    assert!(
        ev.iter().filter(|e| e.starts_with("set ")).count() > 1,
        "{ev:?}"
    );
    let f = cluster(
        "progress-ipip",
        "calico-ipip",
        4,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        "",
    );
    let ev = run(&["reach", &f]);
    for phase in [
        "begin setting up",
        "begin BGP converging",
        "begin probing 4 sources x 4 destinations",
    ] {
        assert!(ev.iter().any(|e| e.starts_with(phase)), "{phase}: {ev:?}");
    }
    assert_eq!(ev.iter().filter(|e| *e == "inc 1").count(), 4, "{ev:?}");
    let ev = run(&["routes", &f]);
    assert!(
        ev.iter()
            .any(|e| e.starts_with("begin simulating (phase by phase)")),
        "{ev:?}"
    );
}

/// The `ip route` tables of `podpath routes` output, per node.
fn ip_route_sections(routes: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in routes.split("\n--- ").skip(1) {
        let (name, rest) = part.split_once(" ---\n").unwrap();
        let table = rest
            .strip_prefix("$ ip route\n")
            .unwrap()
            .lines()
            .take_while(|l| !l.starts_with("$ birdc") && !l.starts_with('('))
            .collect::<Vec<_>>()
            .join("\n");
        out.push((name.to_string(), table));
    }
    out
}

/// The fabric engine computes what the BIRDs compute: for Calico clusters
/// with reflectors (IPIP CrossSubnet across racks: tunl0 between racks,
/// native in a rack) and with AS-per-rack top-of-rack peering (eBGP,
/// recursive next hops), every node's and router's kernel table is the same
/// line for line; reach agrees; and the convergence report shows the
/// black-hole window up to the install.
#[test]
fn fabric_engine_installs_what_bird_installs() {
    for (name, cni, extra) in [
        (
            "rr-crosssubnet",
            "calico-ipip",
            "route_reflectors: 2, ipip_mode: \"CrossSubnet\"",
        ),
        ("tor", "calico-bgp", "tor_peering: true"),
        ("mesh", "calico-ipip", "as_number: 64600"),
    ] {
        let mk = |engine: &str| {
            cluster(
                &format!("engine-{name}-{engine}"),
                cni,
                12,
                1,
                "Racks(racks: 3, subnet: \"10.0.0.0/16\")",
                &format!(", calico: Calico({extra}, bgp_engine: \"{engine}\")"),
            )
        };
        let (bird, fabric) = (mk("bird"), mk("fabric"));
        let rb = podpath(&["routes", &bird]);
        let rf = podpath(&["routes", &fabric]);
        assert_eq!(rb.code, 0, "{}", rb.stderr);
        assert_eq!(rf.code, 0, "{}", rf.stderr);
        let (tb, tf) = (ip_route_sections(&rb.stdout), ip_route_sections(&rf.stdout));
        assert_eq!(tb.len(), tf.len(), "{name}");
        assert!(tb.len() >= 12, "{name}: {}", rb.stdout);
        for (b, f) in tb.iter().zip(&tf) {
            assert_eq!(b, f, "{name}");
            assert!(b.1.contains("proto bird"), "{name}: {}", b.1);
        }
        assert!(
            rf.stdout.contains("BGP engine fabric: no BIRD runs"),
            "{}",
            rf.stdout
        );
        assert!(
            rf.stdout.contains("black-hole window: 0s to 1."),
            "{}",
            rf.stdout
        );
        let reach = podpath(&["reach", &fabric]);
        assert_eq!(reach.code, 0, "{name}: {}", reach.stdout);
        assert!(
            reach.stdout.contains("132 reachable, 0 not"),
            "{name}: {}",
            reach.stdout
        );
        // Every pair takes the same devices both ways under either engine.
        let diff = podpath(&["diff", &bird, &fabric]);
        assert_eq!(diff.code, 0, "{name}: {}", diff.stdout);
        assert!(
            diff.stdout.contains("132 pairs in both; 0 differ"),
            "{name}: {}",
            diff.stdout
        );
    }
}

/// The fabric converges once from the cold start: what it would not see is
/// refused, with its position, instead of being ignored.
#[test]
fn fabric_engine_refuses_what_it_would_not_see() {
    let f = scenario(
        "fabric-refusals",
        r#"Scenario(
    name: "x",
    cluster: Cluster(cni: "calico-ipip", nodes: Nodes(count: 3), underlay: L2(subnet: "10.0.0.0/24"),
        calico: Calico(bgp_engine: "fabric")),
    timeline: [
        Timed(at: "5s", on: "node1", run: "birdc show protocols"),
        Timed(at: "6s", on: "node2", run: "ip link set eth0 down"),
        Timed(at: "7s", on: "node1:node1-pod1", run: "ping -c 1 10.244.1.1"),
    ],
)"#,
    );
    let out = podpath(&["check", &f]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains(":6:") && out.stderr.contains("`birdc show protocols`: with the BGP engine \"fabric\", BGP converges once from the cold start and no BIRD runs, so there is no BIRD to run or ask"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(":7:") && out.stderr.contains("`ip link set eth0 down`: with the BGP engine \"fabric\", BGP converges once from the cold start and no BIRD runs, so BGP would not react to this change"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("ping"), "{}", out.stderr);
    let f = cluster(
        "bad-engine",
        "calico-ipip",
        2,
        1,
        "L2(subnet: \"10.0.0.0/24\")",
        ", calico: Calico(bgp_engine: \"gobgp\")",
    );
    let out = podpath(&["check", &f]);
    assert!(
        out.stderr
            .contains("unknown BGP engine \"gobgp\": expected \"bird\" or \"fabric\""),
        "{}",
        out.stderr
    );
}

/// The loader runs each node's entries for the other nodes as a batch of
/// commands made on demand, not as the lines `podpath expand` prints: the
/// same cluster pasted as lines (`expand --ron`) runs the same commands
/// with the same outputs, events and trace, and leaves the same routes,
/// neighbours and FDB entries on every node, in every mode.
#[test]
fn batches_run_what_the_expanded_lines_run() {
    for nodes in [3, 20] {
        for (cni, ul) in MODES {
            let name = format!("batch{nodes}-{cni}");
            let f = scenario(
                &name,
                &format!(
                    "Scenario(name: \"same\", cluster: Cluster(cni: \"{cni}\", nodes: Nodes(count: {nodes}), pods: Pods(per_node: 2), underlay: {ul}))"
                ),
            );
            let body = expanded_ron(&f);
            let g = scenario(
                &format!("{name}-lines"),
                &format!("Scenario(name: \"same\", {body})"),
            );
            let (a, b) = (
                podpath(&["run", &f, "--json"]),
                podpath(&["run", &g, "--json"]),
            );
            assert_eq!(a.code, 0, "{cni} {nodes}: {}", a.stderr);
            assert_eq!(a.stdout, b.stdout, "{cni} {nodes}: run --json differs");
            for n in 1..=nodes {
                for table in ["routes", "neigh", "fdb"] {
                    let node = format!("node{n}");
                    let (a, b) = (
                        podpath(&["show", &f, &node, table]),
                        podpath(&["show", &g, &node, table]),
                    );
                    assert_eq!(a.code, 0, "{}", a.stderr);
                    assert_eq!(a.stdout, b.stdout, "{cni} {nodes} {node} {table}");
                }
            }
        }
    }
}

/// The default event bound is 50 million beyond the scenario's own setup
/// commands, counted as the lines `podpath expand` prints (a generated
/// cluster's per-node batches included): a 5,000-node VXLAN cluster's 75
/// million commands do not use it up before anything else happens.
#[test]
fn default_event_bound_counts_the_setup_commands() {
    let f = cluster("bound", "flannel-vxlan", 20, 1, MODES[0].1, "");
    let sc = scenarios::load_str(&f, &std::fs::read_to_string(&f).unwrap()).expect("loads");
    let out = podpath(&["expand", &f]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = out
        .stdout
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("==")
        })
        .count();
    assert!(lines > 20 * 19 * 3, "{lines} lines");
    assert_eq!(sc.command_lines(), lines);
    assert_eq!(
        sc.default_max_events(),
        scenarios::build::DEFAULT_MAX_EVENTS + lines as u64
    );
}

/// The fabric engine's BGP running into the event bound is an error at the
/// cluster's `calico` section (where the engine is chosen), naming the
/// bound and how to raise it.
#[test]
fn fabric_non_convergence_is_positioned_at_the_calico_section() {
    let f = scenario(
        "fabric-bound",
        "Scenario(name: \"x\",\n  cluster: Cluster(cni: \"calico-ipip\", nodes: Nodes(count: 30), pods: Pods(per_node: 0), underlay: L2(subnet: \"10.0.0.0/24\"),\n    calico: Calico(route_reflectors: 2, bgp_engine: \"fabric\")))",
    );
    // Enough for the setup commands (270 events), not for the fabric.
    let out = podpath(&["run", &f, "--max-events", "400"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    let err = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .find(|l| l.contains("error:") && l.contains("BGP did not converge"))
        .unwrap_or_else(|| panic!("{}\n{}", out.stdout, out.stderr));
    assert!(err.contains(&format!("{f}:3:13: error:")), "{err}");
    assert!(err.contains("event limit reached: 400 events"), "{err}");
    assert!(err.contains("--max-events"), "{err}");
}
