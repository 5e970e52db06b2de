//! TCP throughput of the whole model: simulated packets per wall-clock
//! second for a 10 Gbit/s iperf3 flow across the seed article's VXLAN
//! routing-mode cluster (seed-vxlan-routed.ron), every step traced into a
//! `CountingSink`.
//!
//! Topology: node1 and node2 on one 10 Gbit/s segment (100 us latency, as
//! in the scenario); on each, a pod namespace `test3` behind a veth pair
//! (MTU 1450) and the `vxlan.1` device; the pods talk through proxy ARP,
//! the FORWARD rules, VXLAN encapsulation and decapsulation. The setup is
//! the scenario's (its working form of the veth line), run through
//! `parse_line` and `Simulation::exec_now`. node1:test3 runs
//! `iperf3 -c 172.16.2.1 -t 3600 -w 4M`, node2:test3 `iperf3 -s`.
//!
//! Each data segment is 1398 payload bytes; with an ACK every second
//! segment, a packet is a data segment or an ACK. The flow is warmed up for
//! one simulated second (untimed: slow start, ARP); then each criterion
//! iteration runs `SPAN` more simulated time of the same flow, timed, and
//! counts the TCP segments both ends sent in it (`segs_out`). The element
//! count criterion reports is the packets of one span measured before the
//! timed runs (the flow is at line rate: every span carries the same number
//! to within a packet or two).
//!
//! Run: `cargo bench -p sim-models --bench tcp`. With
//! `PODPATH_BENCH_MINUTE=1` it first runs one whole simulated minute once
//! and prints its wall time and packet rate.

// A benchmark measures wall-clock time (outside the simulation, which never
// sees it) and takes one switch from the environment.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{CountingSink, NullSink, TraceSink, VecSink};
use sim_models::cmd::parse_line;
use sim_models::linux::LinkParams;
use sim_models::sim::Simulation;

/// Simulated time per timed iteration.
const SPAN: SimDuration = SimDuration::from_millis(100);

const NODE1: &str = "\
ip addr add 192.168.56.6/24 dev eth0
ip link set eth0 up
ip link set lo up
ip route add default via 192.168.56.1 dev eth0
sysctl -w net.ipv4.ip_forward=1
sysctl -w net.ipv4.conf.all.proxy_arp=1
sysctl -w net.ipv4.conf.all.rp_filter=0
iptables -A FORWARD -d 172.16.0.0/16 -j ACCEPT
iptables -A FORWARD -s 172.16.0.0/16 -j ACCEPT
ip link add vxlan.1 type vxlan vni 1
ip link set vxlan.1 address 9e:e9:bd:69:a1:a9
ip link set vxlan.1 up
ip addr add 172.16.1.0/32 dev vxlan.1
ip route add 172.16.2.0/24 via 172.16.2.0 dev vxlan.1 onlink
ip netns add test3
ip link add name veth3 mtu 1450 type veth peer name br-veth3 mtu 1450
ip link set br-veth3 up
ip link set netns test3 dev veth3
ip route add 172.16.1.1/32 dev br-veth3
ip netns exec test3 ip link set lo up
ip netns exec test3 ip link set veth3 up
ip netns exec test3 ip addr add 172.16.1.1/24 dev veth3
ip netns exec test3 ip route add 169.254.1.1 dev veth3
ip netns exec test3 ip route add default via 169.254.1.1 dev veth3 src 172.16.1.1
arp -s 172.16.2.0 2a:c5:85:90:a7:65 -i vxlan.1
bridge fdb append 2a:c5:85:90:a7:65 dev vxlan.1 dst 192.168.56.2";

const NODE2: &str = "\
ip addr add 192.168.56.2/24 dev eth0
ip link set eth0 up
ip link set lo up
ip route add default via 192.168.56.1 dev eth0
sysctl -w net.ipv4.ip_forward=1
sysctl -w net.ipv4.conf.all.proxy_arp=1
sysctl -w net.ipv4.conf.all.rp_filter=0
iptables -A FORWARD -d 172.16.0.0/16 -j ACCEPT
iptables -A FORWARD -s 172.16.0.0/16 -j ACCEPT
ip link add vxlan.1 type vxlan vni 1
ip link set vxlan.1 address 2a:c5:85:90:a7:65
ip link set vxlan.1 up
ip addr add 172.16.2.0/32 dev vxlan.1
ip route add 172.16.1.0/24 via 172.16.1.0 dev vxlan.1 onlink
ip netns add test3
ip link add name veth3 mtu 1450 type veth peer name br-veth3 mtu 1450
ip link set br-veth3 up
ip link set netns test3 dev veth3
ip route add 172.16.2.1/32 dev br-veth3
ip netns exec test3 ip link set lo up
ip netns exec test3 ip link set veth3 up
ip netns exec test3 ip addr add 172.16.2.1/24 dev veth3
ip netns exec test3 ip route add 169.254.1.1 dev veth3
ip netns exec test3 ip route add default via 169.254.1.1 dev veth3 src 172.16.2.1
arp -s 172.16.1.0 9e:e9:bd:69:a1:a9 -i vxlan.1
bridge fdb append 9e:e9:bd:69:a1:a9 dev vxlan.1 dst 192.168.56.6";

/// The cluster with the flow started.
fn build() -> Simulation {
    let mut sim = Simulation::new(
        RootSeed(1),
        Limits {
            max_events: u64::MAX,
            max_time: SimTime::MAX,
        },
    );
    let seg = sim.world.add_segment(
        "lan",
        LinkParams {
            latency: SimDuration::from_micros(100),
            bandwidth_bps: 10_000_000_000,
            loss: Default::default(),
        },
        1500,
    );
    let mut sink = VecSink::default();
    for (name, mac, script) in [
        ("node1", "08:00:27:00:00:06", NODE1),
        ("node2", "08:00:27:00:00:02", NODE2),
    ] {
        let h = sim.world.add_host(name);
        sim.world
            .add_nic(h, "eth0", seg, Some(mac.parse().unwrap()));
        for line in script.lines() {
            let cmd = parse_line(line).unwrap_or_else(|e| panic!("`{line}`: {}", e.message));
            let out = sim.exec_now(h, &cmd, &mut sink);
            assert!(!out.failed, "{name}: `{line}` failed: {}", out.stderr);
        }
    }
    let node1 = sim.world.host_by_name["node1"];
    let node2 = sim.world.host_by_name["node2"];
    let server = parse_line("ip netns exec test3 iperf3 -s").unwrap();
    let client = parse_line("ip netns exec test3 iperf3 -c 172.16.2.1 -t 3600 -w 4M").unwrap();
    assert!(!sim.exec_now(node2, &server, &mut sink).failed);
    assert!(!sim.exec_now(node1, &client, &mut sink).failed);
    sim
}

/// TCP segments sent by both ends so far.
fn packets(sim: &Simulation) -> u64 {
    sim.world.sockets.tcp.iter().map(|s| s.segs_out).sum()
}

fn advance(sim: &mut Simulation, d: SimDuration, sink: &mut dyn TraceSink) {
    let until = sim.now() + d;
    sim.run_until(until, sink).expect("run");
}

/// The flow carries data at close to 10 Gbit/s with the VXLAN overhead.
fn check(sim: &mut Simulation) {
    let client = |s: &Simulation| {
        s.world
            .sockets
            .tcp
            .iter()
            .find(|t| t.active)
            .expect("client")
            .acked_bytes
    };
    let before = client(sim);
    advance(
        sim,
        SimDuration::from_millis(100),
        &mut CountingSink::default(),
    );
    let bits = (client(sim) - before) as f64 * 8.0 / 0.1;
    // 1398 payload bytes per 1398 + 32 + 20 + 14 + 8 + 8 + 20 + 14 + 4 + 20 on the wire.
    let want = 10e9 * 1398.0 / 1538.0;
    assert!(
        (bits - want).abs() / want < 0.02,
        "goodput {bits:.0} bit/s, line rate less headers {want:.0}"
    );
}

fn tcp(c: &mut Criterion) {
    let mut sim = build();
    advance(
        &mut sim,
        SimDuration::from_secs(1),
        &mut CountingSink::default(),
    );
    check(&mut sim);
    if std::env::var_os("PODPATH_BENCH_MINUTE").is_some() {
        let mut m = build();
        let mut sink = CountingSink::default();
        let t0 = Instant::now();
        advance(&mut m, SimDuration::from_secs(60), &mut sink);
        let wall = t0.elapsed();
        let p = packets(&m);
        eprintln!(
            "tcp: one simulated minute: {p} packets, {} trace records, {} events in {:.1} s: {:.0} packets/s",
            sink.count,
            m.sched.events_processed(),
            wall.as_secs_f64(),
            p as f64 / wall.as_secs_f64()
        );
    }
    let p0 = packets(&sim);
    let mut sink = CountingSink::default();
    let e0 = sim.sched.events_processed();
    advance(&mut sim, SPAN, &mut sink);
    let per_span = packets(&sim) - p0;
    eprintln!(
        "tcp: {per_span} packets per {SPAN} simulated, {} trace records ({:.1} per packet), {} events",
        sink.count,
        sink.count as f64 / per_span as f64,
        sim.sched.events_processed() - e0
    );
    {
        // The same span without tracing, for comparison.
        let p0 = packets(&sim);
        let t0 = Instant::now();
        advance(&mut sim, SPAN, &mut NullSink);
        let wall = t0.elapsed();
        eprintln!(
            "tcp: untraced (NullSink): {} packets in {:.1} ms: {:.0} packets/s",
            packets(&sim) - p0,
            wall.as_secs_f64() * 1e3,
            (packets(&sim) - p0) as f64 / wall.as_secs_f64()
        );
    }
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(per_span))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.bench_function("vxlan_10g_iperf3", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut sink = CountingSink::default();
                let t0 = Instant::now();
                advance(&mut sim, SPAN, &mut sink);
                total += t0.elapsed();
                black_box(sink.count);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, tcp);
criterion_main!(benches);
