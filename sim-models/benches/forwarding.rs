//! Forwarding throughput of the Linux model: simulated packets per
//! wall-clock second through a chain of network namespaces.
//!
//! Topology (one host, built with the real commands through `parse_line` and
//! `Simulation::exec_now`):
//!
//! ```text
//!  n1 eth0 ─veth─ eth0 n2 eth1 ─veth─ eth0 n3 eth1 ─veth─ eth0 n4
//!  10.0.1.1    10.0.1.2   10.0.2.1    10.0.2.2   10.0.3.1    10.0.3.2
//! ```
//!
//! n2 and n3 forward (`net.ipv4.ip_forward=1`); every namespace has static
//! routes. The datagrams go to 10.9.0.1, which n4 routes to a `blackhole`
//! route: each one is received by n4, looked up and dropped silently there
//! (no UDP listener is modelled, and a local address would make n4 answer
//! every datagram with an ICMP port unreachable).
//!
//! The veth ends get the link timing of the ns-3 counterpart
//! (`benches/ns3/chain.cc`): 10 Gbit/s and 1 us, set on the devices directly
//! since no command sets a veth's speed. One criterion iteration is
//! `PACKETS` UDP datagrams of 1000 IP bytes (`Payload::Filler(972)`) sent
//! from n1 one every 1 us of simulated time by `Simulation::run_udp_stream`,
//! then the run continues until the last has arrived. Every step is traced
//! into a `CountingSink` (each record is built, none is formatted). Building
//! the world is outside the timed part; the first datagram's ARP exchanges
//! are inside it, as in ns-3.
//!
//! Run: `cargo bench -p sim-models --bench forwarding`
//! (or `benches/compare-forwarding.sh`, which runs ns-3 first).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{CountingSink, DropReason, RouteType, TraceEvent, TraceSink, VecSink};
use sim_models::cmd::parse_line;
use sim_models::linux::inject::{UdpSpec, UdpStream};
use sim_models::linux::{LinkParams, NsId};
use sim_models::sim::Simulation;

/// Datagrams per criterion iteration.
const PACKETS: u64 = 1_000_000;
/// Simulated time between datagrams (ns-3: UdpClient Interval).
const INTERVAL: SimDuration = SimDuration::from_micros(1);

const SETUP: &str = "\
ip netns add n1
ip netns add n2
ip netns add n3
ip netns add n4
ip netns exec n1 ip link add eth0 type veth peer name eth0 netns n2
ip netns exec n2 ip link add eth1 type veth peer name eth0 netns n3
ip netns exec n3 ip link add eth1 type veth peer name eth0 netns n4
ip netns exec n2 sysctl -w net.ipv4.ip_forward=1
ip netns exec n3 sysctl -w net.ipv4.ip_forward=1
ip netns exec n1 ip link set lo up
ip netns exec n1 ip addr add 10.0.1.1/24 dev eth0
ip netns exec n1 ip link set eth0 up
ip netns exec n1 ip route add default via 10.0.1.2
ip netns exec n2 ip link set lo up
ip netns exec n2 ip addr add 10.0.1.2/24 dev eth0
ip netns exec n2 ip addr add 10.0.2.1/24 dev eth1
ip netns exec n2 ip link set eth0 up
ip netns exec n2 ip link set eth1 up
ip netns exec n2 ip route add 10.0.3.0/24 via 10.0.2.2
ip netns exec n2 ip route add 10.9.0.0/24 via 10.0.2.2
ip netns exec n3 ip link set lo up
ip netns exec n3 ip addr add 10.0.2.2/24 dev eth0
ip netns exec n3 ip addr add 10.0.3.1/24 dev eth1
ip netns exec n3 ip link set eth0 up
ip netns exec n3 ip link set eth1 up
ip netns exec n3 ip route add 10.0.1.0/24 via 10.0.2.1
ip netns exec n3 ip route add 10.9.0.0/24 via 10.0.3.2
ip netns exec n4 ip link set lo up
ip netns exec n4 ip addr add 10.0.3.2/24 dev eth0
ip netns exec n4 ip link set eth0 up
ip netns exec n4 ip route add default via 10.0.3.1
ip netns exec n4 ip route add blackhole 10.9.0.0/24";

/// The chain, set up; returns the simulation and the sending namespace.
fn build() -> (Simulation, NsId) {
    let mut sim = Simulation::new(RootSeed(1), Limits::default());
    let host = sim.world.add_host("host");
    let mut sink = VecSink::default();
    for line in SETUP.lines() {
        let cmd = parse_line(line).unwrap_or_else(|e| panic!("`{line}`: {}", e.message));
        let out = sim.exec_now(host, &cmd, &mut sink);
        assert!(!out.failed, "`{line}` failed: {}", out.stderr);
    }
    let link = LinkParams {
        latency: SimDuration::from_micros(1),
        bandwidth_bps: 10_000_000_000,
        loss: Default::default(),
    };
    for (ns, devs) in [
        ("n1", &["eth0"][..]),
        ("n2", &["eth0", "eth1"]),
        ("n3", &["eth0", "eth1"]),
        ("n4", &["eth0"]),
    ] {
        let n = sim.world.find_ns(&format!("host:{ns}")).unwrap();
        for d in devs {
            let d = sim.world.dev_by_name(n, d).unwrap();
            sim.world.dev_mut(d).link = link;
        }
    }
    let n1 = sim.world.find_ns("host:n1").unwrap();
    (sim, n1)
}

fn stream(ns: NsId, count: u64) -> UdpStream {
    UdpStream {
        ns,
        spec: UdpSpec {
            src: Ipv4Addr::new(10, 0, 1, 1),
            dst: Ipv4Addr::new(10, 9, 0, 1),
            src_port: 49152,
            dst_port: 9,
            payload: 972,
        },
        count,
        start: SimTime::ZERO,
        interval: INTERVAL,
    }
}

/// Sends `count` datagrams and runs until the last has arrived (the run
/// stops 1 ms of simulated time later; the only events left then are the
/// neighbour entries' reachable-time timers).
fn run(sim: &mut Simulation, ns: NsId, count: u64, sink: &mut dyn TraceSink) {
    let s = stream(ns, count);
    let report = sim.run_udp_stream(&s, sink).expect("stream");
    assert_eq!(report.sent, count);
    let end = SimTime::ZERO + INTERVAL.saturating_mul(count) + SimDuration::from_millis(1);
    sim.run_until(end, sink).expect("drain");
}

/// n4's eth0 receive counter.
fn received(sim: &Simulation) -> u64 {
    let n4 = sim.world.find_ns("host:n4").unwrap();
    let d = sim.world.dev_by_name(n4, "eth0").unwrap();
    sim.world.dev(d).stats.rx_packets
}

/// Checks the path on a short stream with every record kept: each datagram
/// is dropped by n4's blackhole route and by nothing else.
fn check() {
    let (mut sim, n1) = build();
    let mut sink = VecSink::default();
    run(&mut sim, n1, 1000, &mut sink);
    let n4 = sim.world.find_ns("host:n4").unwrap();
    let n4_node = sim.world.ns(n4).node;
    let mut blackholed = 0;
    for r in &sink.records {
        if let TraceEvent::Drop { reason } = &r.event {
            assert_eq!(
                (reason, r.place),
                (&DropReason::RouteType(RouteType::Blackhole), n4_node),
                "unexpected drop: {r:?}"
            );
            blackholed += 1;
        }
    }
    assert_eq!(blackholed, 1000);
    // 1000 datagrams plus one ARP request and one reply on the last link.
    assert_eq!(received(&sim), 1000 + 1);
}

fn forwarding(c: &mut Criterion) {
    check();
    {
        let (mut sim, n1) = build();
        let mut sink = CountingSink::default();
        run(&mut sim, n1, PACKETS, &mut sink);
        assert_eq!(received(&sim), PACKETS + 1);
        eprintln!(
            "forwarding: {} trace records for {PACKETS} datagrams ({:.1} per datagram), {} events",
            sink.count,
            sink.count as f64 / PACKETS as f64,
            sim.sched.events_processed()
        );
    }
    let mut g = c.benchmark_group("forwarding");
    g.throughput(Throughput::Elements(PACKETS))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    g.bench_function("chain4_udp1000", |b| {
        b.iter_batched(
            build,
            |(mut sim, n1)| {
                let mut sink = CountingSink::default();
                run(&mut sim, n1, PACKETS, &mut sink);
                black_box(sink.count);
                sim
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
