//! Wall-clock cost of tracing one ping, setup included: the bridge-mode
//! cluster of `scenarios/files/bridge-kubenet.ron` is built (segment, three
//! hosts, their NICs, as `scenarios/src/build.rs` builds them), every setup
//! command is parsed and run, then `ping -c 1 10.244.2.2` runs in node1's
//! pod-a at 1 s (pod-a on node1 to pod-c on node2, across the underlay) until
//! its reply has arrived. A `VecSink` keeps every trace record.
//!
//! sim-models cannot depend on the `scenarios` crate (it depends on
//! sim-models), so the file's segment, NICs and setup commands are copied
//! below. Keep them in sync with the file: the bench checks, before timing,
//! that every copied command line still appears in it.
//!
//! `tracing/ping_bridge_kubenet` is the whole thing (dropping the world and
//! the records afterwards is not timed). Its parts, to see what dominates:
//! `setup_only` (build and run the setup, no ping), `parse_only` (only
//! `parse_line` on the 57 command lines) and `ping_only` (the ping on a
//! cluster set up outside the timed part).
//!
//! Run: `cargo bench -p sim-models --bench tracing`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{TraceEvent, VecSink};
use sim_models::cmd::{Command, parse_line};
use sim_models::linux::apps::App;
use sim_models::linux::{HostId, LinkParams};
use sim_models::sim::{Simulation, Step};

/// The scenario file, only to check that the copy below is in sync.
const SCENARIO: &str = include_str!("../../scenarios/files/bridge-kubenet.ron");

/// `Segment(name: "vpc", latency: "50us", bandwidth: "10Gbit")` (MTU 1500 by default).
const SEGMENT: (&str, u64, u64) = ("vpc", 50_000, 10_000_000_000);

/// Per host: name, NIC (name, MAC, address) and the setup script, copied
/// from `scenarios/files/bridge-kubenet.ron`.
const HOSTS: [(&str, (&str, &str, &str), &str); 3] = [
    (
        "node1",
        ("eth0", "02:00:00:00:00:11", "10.0.0.11/24"),
        "
sysctl -w net.ipv4.ip_forward=1
ip link add cni0 type bridge
ip link set cni0 up
ip addr add 10.244.1.1/24 dev cni0
ip route add 10.244.2.0/24 via 10.0.0.12 dev eth0
ip route add 10.244.3.0/24 via 10.0.0.13 dev eth0

ip netns add pod-a
ip link add name veth-a type veth peer name eth0 netns pod-a
ip link set veth-a master cni0
ip link set veth-a up
ip netns exec pod-a ip link set lo up
ip netns exec pod-a ip link set eth0 up
ip netns exec pod-a ip addr add 10.244.1.2/24 dev eth0
ip netns exec pod-a ip route add default via 10.244.1.1

ip netns add pod-b
ip link add name veth-b type veth peer name eth0 netns pod-b
ip link set veth-b master cni0
ip link set veth-b up
ip netns exec pod-b ip link set lo up
ip netns exec pod-b ip link set eth0 up
ip netns exec pod-b ip addr add 10.244.1.3/24 dev eth0
ip netns exec pod-b ip route add default via 10.244.1.1
",
    ),
    (
        "node2",
        ("eth0", "02:00:00:00:00:12", "10.0.0.12/24"),
        "
sysctl -w net.ipv4.ip_forward=1
ip link add cni0 type bridge
ip link set cni0 up
ip addr add 10.244.2.1/24 dev cni0
ip route add 10.244.1.0/24 via 10.0.0.11 dev eth0
ip route add 10.244.3.0/24 via 10.0.0.13 dev eth0

ip netns add pod-c
ip link add name veth-c type veth peer name eth0 netns pod-c
ip link set veth-c master cni0
ip link set veth-c up
ip netns exec pod-c ip link set lo up
ip netns exec pod-c ip link set eth0 up
ip netns exec pod-c ip addr add 10.244.2.2/24 dev eth0
ip netns exec pod-c ip route add default via 10.244.2.1
",
    ),
    (
        "node3",
        ("eth0", "02:00:00:00:00:13", "10.0.0.13/24"),
        "
sysctl -w net.ipv4.ip_forward=1
ip link add cni0 type bridge
ip link set cni0 up
ip addr add 10.244.3.1/24 dev cni0
ip route add 10.244.1.0/24 via 10.0.0.11 dev eth0
ip route add 10.244.2.0/24 via 10.0.0.12 dev eth0

ip netns add pod-d
ip link add name veth-d type veth peer name eth0 netns pod-d
ip link set veth-d master cni0
ip link set veth-d up
ip netns exec pod-d ip link set lo up
ip netns exec pod-d ip link set eth0 up
ip netns exec pod-d ip addr add 10.244.3.2/24 dev eth0
ip netns exec pod-d ip route add default via 10.244.3.1
",
    ),
];

/// `Timed(at: "1s", on: "node1:pod-a", run: "ping -c 1 10.244.2.2")`.
const PING: (&str, &str, &str, u64) = ("node1", "pod-a", "ping -c 1 10.244.2.2", 1);

fn step(sim: &mut Simulation, at: SimTime, host: HostId, cmd: Command, line: &str) {
    sim.add_step(Step {
        at,
        host,
        cmd: cmd.into(),
        line: line.into(),
        origin: 0,
        expect_error: None,
    });
}

fn parse(line: &str) -> Command {
    parse_line(line).unwrap_or_else(|e| panic!("`{line}`: {}", e.message))
}

/// The cluster as `Scenario::build` makes it: segment, hosts, NICs, then
/// each NIC's address and `up` and every setup command as steps at time 0.
fn build() -> Simulation {
    let mut sim = Simulation::new(RootSeed(1), Limits::default());
    let (seg_name, latency_ns, bandwidth_bps) = SEGMENT;
    let seg = sim.world.add_segment(
        seg_name,
        LinkParams {
            latency: SimDuration::from_nanos(latency_ns),
            bandwidth_bps,
            loss: Default::default(),
        },
        1500,
    );
    let mut boot = Vec::new();
    for (name, (nic, mac, addr), _) in HOSTS {
        let host = sim.world.add_host(name);
        sim.world
            .add_nic(host, nic, seg, Some(mac.parse().expect("MAC")));
        for line in [
            format!("ip addr add {addr} dev {nic}"),
            format!("ip link set {nic} up"),
        ] {
            boot.push((host, parse(&line), line));
        }
    }
    for (host, cmd, line) in boot {
        step(&mut sim, SimTime::ZERO, host, cmd, &line);
    }
    for (i, (_, _, script)) in HOSTS.iter().enumerate() {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            step(&mut sim, SimTime::ZERO, HostId(i as u32), parse(line), line);
        }
    }
    sim
}

/// Adds the ping step at 1 s.
fn add_ping(sim: &mut Simulation) {
    let (host, netns, line, at_s) = PING;
    let mut cmd = parse(line);
    cmd.netns = Some(netns.to_string());
    let host = sim.world.host_by_name[host];
    step(
        sim,
        SimTime::ZERO + SimDuration::from_secs(at_s),
        host,
        cmd,
        line,
    );
}

/// Runs until `secs`. At 2 s the ping (sent at 1 s) has had its reply for
/// long; only the neighbour entries' reachable-time timers (15 s and later)
/// and the ping's own timeout are left pending.
fn run(sim: &mut Simulation, sink: &mut VecSink, secs: u64) {
    sim.run_until(SimTime::ZERO + SimDuration::from_secs(secs), sink)
        .expect("run");
}

/// Setup, ping, every record kept: the whole measured operation.
fn ping_bridge_kubenet() -> (Simulation, VecSink) {
    let mut sim = build();
    add_ping(&mut sim);
    let mut sink = VecSink::default();
    run(&mut sim, &mut sink, 2);
    (sim, sink)
}

/// The copy is in sync with the file, the ping got its reply, and the
/// trace holds the echo request's delivery in pod-c.
fn check() {
    for (name, (nic, mac, addr), script) in HOSTS {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                SCENARIO.contains(line),
                "bench out of sync with bridge-kubenet.ron: {line}"
            );
        }
        let nic = format!(
            "Nic(name: \"{nic}\", segment: \"{}\", mac: \"{mac}\", address: \"{addr}\")",
            SEGMENT.0
        );
        assert!(SCENARIO.contains(&nic), "{name}: {nic} not in the file");
    }
    assert!(SCENARIO.contains(r#"Segment(name: "vpc", latency: "50us", bandwidth: "10Gbit")"#));
    assert!(
        SCENARIO.contains(r#"Timed(at: "1s", on: "node1:pod-a", run: "ping -c 1 10.244.2.2")"#)
    );

    let (sim, sink) = ping_bridge_kubenet();
    assert!(sim.log.iter().all(|l| !l.output.failed), "a command failed");
    let App::Ping(p) = &sim.world.apps[0] else {
        panic!("no ping")
    };
    assert!(p.done && p.received() == 1, "{}", p.transcript);
    let pod_c = sim.world.find_ns("node2:pod-c").unwrap();
    let pod_c = sim.world.ns(pod_c).node;
    assert!(sink.records.iter().any(|r| r.place == pod_c
        && matches!(&r.event, TraceEvent::Deliver { to } if to.contains("ICMP echo"))));
    eprintln!(
        "tracing: {} trace records, {} events, {} commands",
        sink.records.len(),
        sim.sched.events_processed(),
        sim.log.len()
    );
}

fn tracing(c: &mut Criterion) {
    check();
    let mut g = c.benchmark_group("tracing");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("ping_bridge_kubenet", |b| {
        b.iter_with_large_drop(ping_bridge_kubenet)
    });
    g.bench_function("setup_only", |b| {
        b.iter_with_large_drop(|| {
            let mut sim = build();
            let mut sink = VecSink::default();
            run(&mut sim, &mut sink, 0);
            (sim, sink)
        })
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, (nic, _, addr), script) in HOSTS {
                n += black_box(parse(&format!("ip addr add {addr} dev {nic}")))
                    .netns
                    .is_some() as u32;
                n += black_box(parse(&format!("ip link set {nic} up")))
                    .netns
                    .is_some() as u32;
                for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    n += black_box(parse(line)).netns.is_some() as u32;
                }
            }
            n + black_box(parse(PING.2)).netns.is_some() as u32
        })
    });
    g.bench_function("ping_only", |b| {
        b.iter_batched(
            || {
                let mut sim = build();
                run(&mut sim, &mut VecSink::default(), 0);
                add_ping(&mut sim);
                sim
            },
            |mut sim| {
                let mut sink = VecSink::default();
                run(&mut sim, &mut sink, 2);
                black_box(&sink);
                (sim, sink)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, tracing);
criterion_main!(benches);
