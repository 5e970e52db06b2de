//! Netfilter traversal cost: a kube-proxy-sized nat ruleset and new
//! connections to random service addresses through PREROUTING.
//!
//! The ruleset is what kube-proxy's iptables mode writes (restored with
//! `iptables-restore`, as kube-proxy does): `PREROUTING -j KUBE-SERVICES`,
//! one `KUBE-SERVICES` rule per service (`-d CLUSTER-IP/32 -p tcp -m tcp
//! --dport 80 -j KUBE-SVC-N`), and per service a `KUBE-SVC-N` chain
//! (masquerade mark for traffic from outside the pod network, then 1 to 3
//! endpoints chosen by `-m statistic --mode random`) and one `KUBE-SEP-N-K`
//! chain per endpoint (mark hairpin traffic, DNAT to the endpoint).
//!
//! Each packet is a TCP SYN from a new source port to a service drawn at
//! random (a seeded stream, the same draws in every run), so each is a new
//! connection: conntrack creates an entry and the nat table is traversed
//! (KUBE-SERVICES is scanned rule by rule to the service's rule, half the
//! chain on average, then KUBE-SVC and KUBE-SEP, and the DNAT mapping is
//! chosen). One criterion iteration is `BATCH` packets through
//! `World::nf_hook(PREROUTING)` with tracing off (`NullSink`: no trace
//! event is built). Building the ruleset is outside the timed part.
//!
//! Run: `cargo bench -p sim-models --bench netfilter`

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use sim_core::packet::{Header, Packet, Payload};
use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::trace::{Hook, NullSink, VecSink};
use sim_core::wire::{IpProtocol, Ipv4Repr, TcpFlags, TcpOption, TcpRepr};
use sim_models::cmd::parse_line;
use sim_models::linux::{Cx, DevId, NsId};
use sim_models::sim::Simulation;

/// Packets per criterion iteration.
const BATCH: u64 = 1000;

fn cluster_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, (i >> 8) as u8, (i & 0xff) as u8)
}

/// kube-proxy's nat table for `services` services (iptables-save format).
fn ruleset(services: usize) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    rules.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    rules.push_str("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    let mut svc_rules = String::new();
    for i in 0..services {
        let ip = cluster_ip(i);
        let n = i % 3 + 1;
        chains.push_str(&format!(":KUBE-SVC-{i} - [0:0]\n"));
        rules.push_str(&format!(
            "-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment \"default/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-{i}\n"
        ));
        svc_rules.push_str(&format!(
            "-A KUBE-SVC-{i} ! -s 10.244.0.0/16 -d {ip}/32 -p tcp -m comment --comment \"default/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n"
        ));
        for k in 0..n {
            let ep = Ipv4Addr::new(10, 244, (i % 250) as u8, (k + 2) as u8);
            chains.push_str(&format!(":KUBE-SEP-{i}-{k} - [0:0]\n"));
            let prob = match (n, k) {
                (3, 0) => Some("0.33333333349"),
                (3, 1) | (2, 0) => Some("0.50000000000"),
                _ => None,
            };
            let stat = prob
                .map(|p| format!(" -m statistic --mode random --probability {p}"))
                .unwrap_or_default();
            svc_rules.push_str(&format!(
                "-A KUBE-SVC-{i} -m comment --comment \"default/svc-{i}:http -> {ep}:8080\"{stat} -j KUBE-SEP-{i}-{k}\n"
            ));
            svc_rules.push_str(&format!(
                "-A KUBE-SEP-{i}-{k} -s {ep}/32 -m comment --comment \"default/svc-{i}:http\" -j KUBE-MARK-MASQ\n\
                 -A KUBE-SEP-{i}-{k} -p tcp -m comment --comment \"default/svc-{i}:http\" -m tcp -j DNAT --to-destination {ep}:8080\n"
            ));
        }
    }
    format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-SERVICES - [0:0]\n{chains}{rules}{svc_rules}COMMIT\n"
    )
}

/// A node namespace with eth0, and the ruleset restored into it.
fn build(services: usize) -> (Simulation, NsId, DevId) {
    let mut sim = Simulation::new(RootSeed(1), Limits::default());
    let host = sim.world.add_host("host");
    let mut sink = VecSink::default();
    for line in [
        "ip netns add node",
        "ip netns add pod",
        "ip netns exec pod ip link add eth0 type veth peer name eth0 netns node",
        "ip netns exec node ip addr add 10.0.0.1/24 dev eth0",
        "ip netns exec node ip link set eth0 up",
        "ip netns exec node sysctl -w net.ipv4.ip_forward=1",
    ] {
        let cmd = parse_line(line).unwrap();
        let out = sim.exec_now(host, &cmd, &mut sink);
        assert!(!out.failed, "`{line}`: {}", out.stderr);
    }
    let ns = sim.world.find_ns("host:node").unwrap();
    let dev = sim.world.dev_by_name(ns, "eth0").unwrap();
    sim.world
        .iptables_restore(ns, &ruleset(services), false)
        .expect("ruleset restores");
    (sim, ns, dev)
}

fn syn(dst: Ipv4Addr, sport: u16) -> Packet {
    let mut ip = Ipv4Repr::new(Ipv4Addr::new(10, 244, 9, 9), dst, IpProtocol::Tcp);
    ip.ttl = 63;
    Packet::new(
        sim_core::packet::PacketId(0),
        vec![
            Header::Ipv4(ip),
            Header::Tcp(TcpRepr {
                src_port: sport,
                dst_port: 80,
                seq: 1,
                ack: 0,
                flags: TcpFlags::SYN,
                window: 64240,
                urgent: 0,
                options: vec![TcpOption::Mss(1460)],
            }),
        ],
        Payload::Filler(0),
    )
}

/// Sends `count` SYNs to random services through PREROUTING; how many were
/// mapped to an endpoint (all of them).
fn send(
    sim: &mut Simulation,
    ns: NsId,
    dev: DevId,
    services: usize,
    count: u64,
    first: u64,
) -> u64 {
    let mut draws = RootSeed(7).stream("bench:services");
    let mut sink = NullSink;
    let mut mapped = 0;
    for k in 0..count {
        let i = draws.below(services as u64) as usize;
        let mut p = syn(cluster_ip(i), (1024 + (first + k) % 60000) as u16);
        p.id = sim.world.next_packet_id();
        let mut cx = Cx::new(sim.sched.now(), &mut sim.sched, &mut sink);
        assert!(
            sim.world
                .nf_hook(&mut cx, ns, Hook::Prerouting, &mut p, Some(dev), None)
        );
        if let Header::Ipv4(h) = &p.headers[0]
            && h.dst.octets()[1] == 244
        {
            mapped += 1;
        }
    }
    mapped
}

fn netfilter(c: &mut Criterion) {
    let mut g = c.benchmark_group("netfilter_prerouting_nat");
    g.throughput(Throughput::Elements(BATCH))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for services in [1000usize, 5000, 10_000] {
        let (mut sim, ns, dev) = build(services);
        let rules: usize = sim
            .world
            .ns(ns)
            .nf
            .tables
            .iter()
            .flatten()
            .map(|t| {
                t.chains
                    .iter()
                    .flatten()
                    .map(|c| c.rules.len())
                    .sum::<usize>()
            })
            .sum();
        eprintln!("netfilter: {services} services, {rules} nat rules");
        // Every packet is DNATed to an endpoint.
        assert_eq!(send(&mut sim, ns, dev, services, BATCH, 0), BATCH);
        let mut first = BATCH;
        g.bench_with_input(
            BenchmarkId::new("services", services),
            &services,
            |b, &n| {
                b.iter(|| {
                    first += BATCH;
                    black_box(send(&mut sim, ns, dev, n, BATCH, first))
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, netfilter);
criterion_main!(benches);
