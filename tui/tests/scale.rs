//! The cost of the table snapshots on a large synthetic cluster: N hosts on
//! one L2 segment, host-gw routing (a route to every other node's pod
//! subnet, so N routes per host), one pod per host behind a proxy-ARP veth,
//! and every pod pinging the next host's pod.
//!
//! `cargo test -p podpath-tui --release --test scale -- --ignored --nocapture`
//! runs the 1,000-host cluster and prints the figures (docs/tui.md records
//! them); the default run checks the same properties on 100 hosts.

use std::fmt::Write as _;

use scenarios::RunOptions;
use sim_core::trace::TraceEvent;
use tui::Session;
use tui::snap::TableKind;

fn node_ip(i: usize) -> String {
    format!("172.20.{}.{}", i / 250, i % 250 + 1)
}

fn pod_net(i: usize) -> (String, String) {
    let (a, b) = (64 + i / 256, i % 256);
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{b}.2"))
}

/// The scenario file of an `n`-host host-gw cluster.
pub fn cluster(n: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Scenario(name: \"hostgw-{n}\", seed: 7,\n segments: [Segment(name: \"lan\", latency: \"100us\")],\n hosts: ["
    );
    for i in 0..n {
        let (_, pod) = pod_net(i);
        let _ = writeln!(
            s,
            "  Host(name: \"node{i}\", nics: [Nic(name: \"eth0\", segment: \"lan\", address: \"{}/16\")], setup: r#\"",
            node_ip(i)
        );
        s.push_str(
            // a default route: proxy ARP answers for the pods' gateway only with a route to it
            "ip route add default via 172.20.255.254 dev eth0\n\
             sysctl -w net.ipv4.ip_forward=1\nip netns add pod\nip link add name veth0 type veth peer name cali0\nip link set cali0 up\n\
             sysctl -w net.ipv4.conf.cali0.proxy_arp=1\nsysctl -w net.ipv4.neigh.cali0.proxy_delay=0\nip link set veth0 netns pod\n",
        );
        let _ = writeln!(s, "ip route add {pod}/32 dev cali0");
        let _ = writeln!(
            s,
            "ip netns exec pod ip link set veth0 up\nip netns exec pod ip addr add {pod}/32 dev veth0\n\
             ip netns exec pod ip route add 169.254.1.1 dev veth0\nip netns exec pod ip route add default via 169.254.1.1 dev veth0"
        );
        for j in (0..n).filter(|&j| j != i) {
            let _ = writeln!(
                s,
                "ip route add {} via {} dev eth0",
                pod_net(j).0,
                node_ip(j)
            );
        }
        s.push_str("\"#),\n");
    }
    s.push_str(" ],\n timeline: [\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "  Timed(at: \"1s\", on: \"node{i}:pod\", run: \"ping -c 1 {}\"),",
            pod_net((i + 1) % n).1
        );
    }
    s.push_str(" ],\n limits: Limits(until: \"3s\"),\n)\n");
    s
}

struct Figures {
    hosts: usize,
    records: usize,
    load_s: f64,
    stats: tui::snap::SnapStats,
    run_s: f64,
    plain_s: f64,
    lookup_ns: f64,
}

#[allow(clippy::disallowed_methods)] // wall-clock timing of the measurement, not a simulation path
fn measure(n: usize) -> Figures {
    use std::time::Instant;
    let src = cluster(n);
    let tl = Instant::now();
    let sc = scenarios::load_str("hostgw.ron", &src).expect("the synthetic scenario loads");
    let load_s = tl.elapsed().as_secs_f64();
    let opts = RunOptions::default();
    let t0 = Instant::now();
    let mut session = Session::new(&sc, &opts);
    session.run_to_end();
    let run_s = t0.elapsed().as_secs_f64();
    assert_eq!(
        session.state(),
        &tui::session::RunState::Finished,
        "the cluster runs to its end"
    );
    // Every ping is answered.
    let replies = session
        .records
        .iter()
        .filter(|r| matches!(&r.event, TraceEvent::Deliver { to } if to.starts_with("ping")))
        .count();
    assert_eq!(replies, n, "every pod's ping is answered");
    // The same run without the UI's recording (trace kept, no snapshots, no packet index).
    let t1 = Instant::now();
    let plain = scenarios::run(&sc, &opts);
    let plain_s = t1.elapsed().as_secs_f64();
    assert_eq!(plain.trace.len(), session.records.len(), "the same run");
    drop(plain);
    let stats = session.snaps.stats();
    // Stepping back and forth: every step of every packet's tables, at once.
    let t2 = Instant::now();
    let mut lines = 0usize;
    for (pi, p) in session.packets.iter().enumerate() {
        for k in 0..p.steps.len() {
            if let Some(id) = session.snapshot_for(pi, k) {
                lines += session.snaps.lines(id, TableKind::Routes).len();
            }
        }
    }
    let steps: usize = session.packets.iter().map(|p| p.steps.len()).sum();
    let lookup_ns = t2.elapsed().as_secs_f64() * 1e9 / steps.max(1) as f64;
    assert!(lines > 0);
    Figures {
        hosts: n,
        records: session.records.len(),
        load_s,
        stats,
        run_s,
        plain_s,
        lookup_ns,
    }
}

fn report(f: &Figures) {
    let s = &f.stats;
    println!(
        "{} hosts: scenario loaded in {:.2} s; {} trace records; run with snapshots {:.2} s, without {:.2} s\n\
         snapshots {} (tables printed {}, stored {}, shared otherwise), line refs {}, \
         distinct lines {} ({} KiB), printed {} MiB, store heap about {:.1} MiB; \
         a step's tables come back in {:.0} ns",
        f.hosts,
        f.load_s,
        f.records,
        f.run_s,
        f.plain_s,
        s.snapshots,
        s.tables_printed,
        s.tables_stored,
        s.line_refs,
        s.lines,
        s.line_bytes / 1024,
        s.printed_bytes / (1 << 20),
        s.heap_bytes as f64 / (1 << 20) as f64,
        f.lookup_ns
    );
}

#[test]
fn snapshots_scale_100_hosts() {
    let f = measure(100);
    report(&f);
    let s = &f.stats;
    // Routes printed identically on many nodes are stored once: far fewer
    // distinct lines than line references.
    assert!(s.lines * 5 < s.line_refs as usize, "{s:?}");
    // Snapshots are taken per change, not per event: a few per namespace.
    assert!(s.snapshots <= 100 * 2 * 10, "{s:?}");
}

#[test]
#[ignore = "1,000 hosts: run in release with --ignored --nocapture to print the figures"]
fn snapshots_scale_1000_hosts() {
    let f = measure(1000);
    report(&f);
}
