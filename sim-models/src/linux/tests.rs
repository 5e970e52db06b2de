//! Unit tests of the Linux model, driven by the real commands.

use std::net::Ipv4Addr;

use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{DropReason, TraceEvent, VecSink};

use crate::cmd::{NudState, parse_line};
use crate::linux::{HostId, LinkParams};
use crate::sim::{Simulation, Step};

struct T {
    sim: Simulation,
    sink: VecSink,
}

impl T {
    /// Hosts on one segment "lan", each with eth0 (MAC 02:00:00:00:00:0N) addressed 10.0.0.N/24.
    fn new(hosts: &[&str]) -> T {
        T::with_seed(hosts, 7)
    }

    fn with_seed(hosts: &[&str], seed: u64) -> T {
        let mut sim = Simulation::new(RootSeed(seed), Limits::default());
        let seg = sim.world.add_segment(
            "lan",
            LinkParams {
                latency: SimDuration::from_micros(10),
                bandwidth_bps: 0,
                loss: Default::default(),
            },
            1500,
        );
        for (i, h) in hosts.iter().enumerate() {
            let id = sim.world.add_host(h);
            let mac = format!("02:00:00:00:00:{:02x}", i + 1).parse().unwrap();
            sim.world.add_nic(id, "eth0", seg, Some(mac));
        }
        let mut t = T {
            sim,
            sink: VecSink::default(),
        };
        for (i, h) in hosts.iter().enumerate() {
            t.run(
                h,
                &format!(
                    "ip addr add 10.0.0.{}/24 dev eth0\nip link set eth0 up\nip link set lo up",
                    i + 1
                ),
            );
        }
        t
    }

    fn host(&self, name: &str) -> HostId {
        self.sim.world.host_by_name[name]
    }

    /// Runs commands now; panics on failure.
    fn run(&mut self, host: &str, script: &str) -> String {
        let mut out = String::new();
        for line in script.lines() {
            let o = self.try_run(host, line);
            assert!(!o.1, "{host}: `{line}` failed: {}", o.0);
            out.push_str(&o.0);
        }
        out
    }

    /// Runs one command now: (stdout or stderr, failed).
    fn try_run(&mut self, host: &str, line: &str) -> (String, bool) {
        let cmd = parse_line(line).unwrap_or_else(|e| panic!("`{line}`: {}", e.message));
        let h = self.host(host);
        let o = self.sim.exec_now(h, &cmd, &mut self.sink);
        if o.failed {
            (o.stderr, true)
        } else {
            (o.stdout, false)
        }
    }

    fn at(&mut self, at: &str, host: &str, line: &str) {
        let cmd = parse_line(line).unwrap();
        let h = self.host(host);
        self.sim.add_step(Step {
            at: at.parse().unwrap(),
            host: h,
            cmd: cmd.into(),
            line: line.into(),
            origin: 0,
            expect_error: None,
        });
    }

    fn until(&mut self, t: &str) {
        let t: SimTime = t.parse().unwrap();
        self.sim.run_until(t, &mut self.sink).unwrap();
    }

    fn drops(&self) -> Vec<DropReason> {
        self.sink
            .records
            .iter()
            .filter_map(|r| match &r.event {
                TraceEvent::Drop { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    fn neigh_state(&self, host: &str, ns: &str, dev: &str, addr: &str) -> Option<NudState> {
        let w = &self.sim.world;
        let n = w.find_ns(&if ns.is_empty() {
            host.to_string()
        } else {
            format!("{host}:{ns}")
        })?;
        let d = w.dev_by_name(n, dev)?;
        w.namespaces[n.ix()]
            .neigh
            .get(d, addr.parse().unwrap())
            .map(|e| e.state)
    }

    fn output(&self) -> String {
        self.sim
            .world
            .output
            .iter()
            .map(|o| o.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[test]
fn addr_add_installs_local_broadcast_and_prefix_routes() {
    let mut t = T::new(&["a"]);
    let out = t.run("a", "ip route show table all");
    assert!(
        out.contains("10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1 \n"),
        "{out}"
    );
    assert!(
        out.contains("local 10.0.0.1 dev eth0 table local proto kernel scope host src 10.0.0.1 \n"),
        "{out}"
    );
    assert!(
        out.contains(
            "broadcast 10.0.0.255 dev eth0 table local proto kernel scope link src 10.0.0.1 \n"
        ),
        "{out}"
    );
    // A /32 gets no prefix route; a down device only its local route.
    t.run("a", "ip link add name d0 type veth peer name d1\nip addr add 172.16.1.0/32 dev d0\nip addr add 192.168.9.1/24 dev d1");
    let out = t.run("a", "ip route show table all");
    assert!(out.contains("local 172.16.1.0 dev d0 table local"), "{out}");
    assert!(!out.contains("192.168.9.0/24"), "{out}");
    t.run("a", "ip link set d1 up");
    let out = t.run("a", "ip route");
    assert!(
        out.contains("192.168.9.0/24 dev d1 proto kernel scope link src 192.168.9.1 linkdown \n"),
        "{out}"
    );
}

#[test]
fn kernel_errors_for_bad_routes() {
    let mut t = T::new(&["a"]);
    assert_eq!(
        t.try_run("a", "ip route add 10.1.0.0/16 via 192.168.1.1"),
        ("Error: Nexthop has invalid gateway.".into(), true)
    );
    assert_eq!(
        t.try_run("a", "ip route add 10.1.0.0/16 via 10.0.0.9 src 10.0.0.99"),
        ("Error: Invalid prefsrc address.".into(), true)
    );
    assert_eq!(
        t.try_run("a", "ip route add 10.1.0.0/16 dev nope"),
        ("Cannot find device \"nope\"".into(), true)
    );
    assert_eq!(
        t.try_run("a", "ip route add 10.1.0.1/16 dev eth0"),
        (
            "Error: Invalid prefix for given prefix length.".into(),
            true
        )
    );
    assert!(!t.try_run("a", "ip route add 10.1.0.0/16 via 10.0.0.9").1);
    assert_eq!(
        t.try_run("a", "ip route add 10.1.0.0/16 via 10.0.0.8"),
        ("RTNETLINK answers: File exists".into(), true)
    );
    assert!(
        !t.try_run(
            "a",
            "ip route add 10.2.0.0/16 via 192.168.1.1 dev eth0 onlink"
        )
        .1
    );
    assert_eq!(
        t.try_run("a", "ip route del 10.3.0.0/16"),
        ("RTNETLINK answers: No such process".into(), true)
    );
}

#[test]
fn ping_across_a_segment_resolves_arp_and_gets_replies() {
    let mut t = T::new(&["a", "b"]);
    t.at("1s", "a", "ping -c 2 10.0.0.2");
    t.until("5s");
    let out = t.output();
    assert!(
        out.contains("64 bytes from 10.0.0.2: icmp_seq=1 ttl=64"),
        "{out}"
    );
    assert!(
        out.contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{out}"
    );
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.2"),
        Some(NudState::Reachable)
    );
    // b learned a from a's request (STALE), then used it to reply (DELAY).
    assert!(matches!(
        t.neigh_state("b", "", "eth0", "10.0.0.1"),
        Some(NudState::Delay | NudState::Reachable | NudState::Stale)
    ));
}

#[test]
fn unanswered_arp_retries_then_fails_with_host_unreachable() {
    let mut t = T::new(&["a"]);
    t.at("1s", "a", "ping -c 1 -W 5 10.0.0.77");
    t.until("1.5s");
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.77"),
        Some(NudState::Incomplete)
    );
    t.until("3.5s");
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.77"),
        Some(NudState::Incomplete)
    );
    t.until("4.5s");
    // mcast_solicit = 3 requests, retrans_time = 1s: FAILED at 4s.
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.77"),
        Some(NudState::Failed)
    );
    let requests = t.sink.records.iter().filter(|r| matches!(&r.event, TraceEvent::Originate { summary, .. } if summary.contains("who-has 10.0.0.77"))).count();
    assert_eq!(requests, 3);
    assert!(t.drops().contains(&DropReason::NeighFailed));
    t.until("7s");
    assert!(
        t.output()
            .contains("From 10.0.0.1 icmp_seq=1 Destination Host Unreachable"),
        "{}",
        t.output()
    );
}

#[test]
fn reachable_entries_go_stale_within_the_random_reachable_time() {
    let mut t = T::new(&["a", "b"]);
    t.at("1s", "a", "ping -c 1 10.0.0.2");
    t.until("2s");
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.2"),
        Some(NudState::Reachable)
    );
    // base_reachable_time 30s: REACHABLE lasts a random time in [15s, 45s).
    t.until("16s");
    let early = t.neigh_state("a", "", "eth0", "10.0.0.2");
    t.until("47s");
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.2"),
        Some(NudState::Stale),
        "still {early:?}"
    );
}

fn proxy_setup(t: &mut T, forwarding: bool, route: bool) {
    // a pod namespace on host a, its veth host end unaddressed, gateway 169.254.1.1 by proxy ARP.
    t.run("a", "ip netns add pod\nip link add name v0 type veth peer name h0\nip link set h0 up\nip link set v0 netns pod\nip route add 10.9.0.2/32 dev h0\nsysctl -w net.ipv4.conf.h0.proxy_arp=1");
    t.run("a", "ip netns exec pod ip link set v0 up\nip netns exec pod ip addr add 10.9.0.2/32 dev v0\nip netns exec pod ip route add 169.254.1.1 dev v0\nip netns exec pod ip route add default via 169.254.1.1 dev v0");
    if forwarding {
        t.run("a", "sysctl -w net.ipv4.ip_forward=1");
    }
    if route {
        t.run("a", "ip route add default via 10.0.0.2 dev eth0");
    }
}

#[test]
fn proxy_arp_answers_only_with_forwarding_and_a_route_out_another_device() {
    for (fwd, route, answered) in [
        (true, true, true),
        (false, true, false),
        (true, false, false),
    ] {
        let mut t = T::new(&["a", "b"]);
        proxy_setup(&mut t, fwd, route);
        t.at("1s", "a", "ip netns exec pod ping -c 1 10.0.0.2");
        t.until("6s");
        let proxied = t
            .sink
            .records
            .iter()
            .any(|r| matches!(r.event, TraceEvent::ProxyArp { .. }));
        assert_eq!(proxied, answered, "forwarding {fwd} route {route}");
        let st = t.neigh_state("a", "pod", "v0", "169.254.1.1");
        assert_eq!(
            st == Some(NudState::Failed),
            !answered,
            "forwarding {fwd} route {route}: {st:?}"
        );
    }
}

#[test]
fn proxy_arp_delay_is_random_up_to_proxy_delay_and_zero_when_disabled() {
    let mut delays = Vec::new();
    for seed in 1..=8 {
        let mut t = T::with_seed(&["a", "b"], seed);
        proxy_setup(&mut t, true, true);
        t.at("1s", "a", "ip netns exec pod ping -c 1 10.0.0.2");
        t.until("3s");
        let d = t
            .sink
            .records
            .iter()
            .find_map(|r| match r.event {
                TraceEvent::ProxyArp { delay_ns, .. } => Some(delay_ns),
                _ => None,
            })
            .unwrap();
        assert!(d < 800_000_000, "{d}");
        delays.push(d);
    }
    delays.dedup();
    assert!(
        delays.len() > 1,
        "delay never varies with the seed: {delays:?}"
    );
    let mut t = T::new(&["a", "b"]);
    proxy_setup(&mut t, true, true);
    t.run("a", "sysctl -w net.ipv4.neigh.h0.proxy_delay=0");
    t.at("1s", "a", "ip netns exec pod ping -c 1 10.0.0.2");
    t.until("3s");
    let d = t
        .sink
        .records
        .iter()
        .find_map(|r| match r.event {
            TraceEvent::ProxyArp { delay_ns, .. } => Some(delay_ns),
            _ => None,
        })
        .unwrap();
    assert_eq!(d, 0);
}

#[test]
fn rp_filter_strict_loose_and_off() {
    // b reaches a's 10.5.0.0/16 via eth1 (another segment), but a's packets arrive on eth0.
    for (rpf, dropped) in [(0, false), (1, true), (2, false)] {
        let mut t = T::new(&["a", "b"]);
        let seg2 = t.sim.world.add_segment("lan2", LinkParams::VETH, 1500);
        let hb = t.host("b");
        t.sim.world.add_nic(hb, "eth1", seg2, None);
        t.run("b", "ip addr add 10.7.0.2/24 dev eth1\nip link set eth1 up\nip route add 10.5.0.0/16 via 10.7.0.1 dev eth1");
        t.run(
            "b",
            &format!("sysctl -w net.ipv4.conf.eth0.rp_filter={rpf}"),
        );
        t.run("a", "ip addr add 10.5.0.1/32 dev lo");
        t.at("1s", "a", "ping -c 1 -I 10.5.0.1 10.0.0.2");
        t.until("3s");
        assert_eq!(
            t.drops().contains(&DropReason::RpFilter),
            dropped,
            "rp_filter={rpf}: {:?}",
            t.drops()
        );
    }
}

#[test]
fn bridge_learns_forwards_and_ages() {
    let mut t = T::new(&["a"]);
    t.run(
        "a",
        "ip link add br0 type bridge\nip link set br0 up\nip addr add 10.8.0.1/24 dev br0",
    );
    for p in ["p1", "p2"] {
        t.run("a", &format!("ip netns add {p}\nip link add name {p}h type veth peer name eth0 netns {p}\nip link set {p}h master br0\nip link set {p}h up"));
    }
    t.run(
        "a",
        "ip netns exec p1 ip link set eth0 up\nip netns exec p1 ip addr add 10.8.0.2/24 dev eth0",
    );
    t.run(
        "a",
        "ip netns exec p2 ip link set eth0 up\nip netns exec p2 ip addr add 10.8.0.3/24 dev eth0",
    );
    t.at("1s", "a", "ip netns exec p1 ping -c 1 10.8.0.3");
    t.until("2s");
    let fdb = t.run("a", "bridge fdb show");
    let learned = fdb
        .lines()
        .filter(|l| l.contains("master br0") && !l.contains("permanent"))
        .count();
    assert_eq!(learned, 2, "{fdb}");
    assert!(t.output().contains("1 received"), "{}", t.output());
    // The echo reply was forwarded to one port, not flooded.
    let floods_after_learning = t
        .sink
        .records
        .iter()
        .filter(|r| {
            r.time > SimTime::from_nanos(1_000_500_000)
                && matches!(r.event, TraceEvent::BridgeFlood { .. })
        })
        .count();
    assert_eq!(floods_after_learning, 0);
    // After 300s of silence, learned entries age out and unicast floods again.
    t.run("a", "ip netns exec p1 ip neigh replace 10.8.0.3 lladdr 02:00:00:00:99:99 dev eth0 nud permanent");
    t.at("400s", "a", "ip netns exec p1 ping -c 1 -W 1 10.8.0.3");
    t.until("402s");
    let flooded = t.sink.records.iter().any(|r| {
        r.time >= SimTime::from_nanos(400_000_000_000)
            && matches!(r.event, TraceEvent::BridgeFlood { .. })
    });
    assert!(flooded);
}

#[test]
fn ttl_exceeded_and_forwarding_to_unreachable_route() {
    let mut t = T::new(&["a", "b"]);
    t.run("b", "sysctl -w net.ipv4.ip_forward=1\nip route add unreachable 10.66.0.0/16\nip route add 10.77.0.0/16 via 10.0.0.1");
    t.run(
        "a",
        "ip route add 10.66.0.0/16 via 10.0.0.2\nip route add 10.77.0.0/16 via 10.0.0.2",
    );
    t.at("1s", "a", "ping -c 1 10.66.0.1");
    t.at("2s", "a", "ping -c 1 -t 1 10.77.0.1");
    t.until("15s");
    let out = t.output();
    assert!(
        out.contains("From 10.0.0.2 icmp_seq=1 Destination Host Unreachable"),
        "{out}"
    );
    assert!(
        out.contains("From 10.0.0.2 icmp_seq=1 Time to live exceeded"),
        "{out}"
    );
    assert!(t.drops().contains(&DropReason::TtlExceeded));
}

#[test]
fn route_get_prints_like_iproute2() {
    let mut t = T::new(&["a"]);
    assert_eq!(
        t.run("a", "ip route get 10.0.0.5"),
        "10.0.0.5 dev eth0 src 10.0.0.1 uid 0 \n    cache \n"
    );
    assert_eq!(
        t.run("a", "ip route get 10.0.0.1"),
        "local 10.0.0.1 dev lo src 10.0.0.1 uid 0 \n    cache <local> \n"
    );
    assert_eq!(
        t.try_run("a", "ip route get 8.8.8.8"),
        ("RTNETLINK answers: Network is unreachable".into(), true)
    );
    let _ = Ipv4Addr::LOCALHOST;
}

#[test]
fn traceroute_lists_each_router_then_the_destination() {
    // a -> b (router) -> c: b forwards between two segments.
    let mut t = T::new(&["a", "b"]);
    let seg2 = t.sim.world.add_segment("lan2", LinkParams::VETH, 1500);
    let hc = t.sim.world.add_host("c");
    t.sim.world.add_nic(hc, "eth0", seg2, None);
    let hb = t.host("b");
    t.sim.world.add_nic(hb, "eth1", seg2, None);
    t.run(
        "b",
        "sysctl -w net.ipv4.ip_forward=1\nip addr add 10.1.0.1/24 dev eth1\nip link set eth1 up",
    );
    t.run(
        "c",
        "ip addr add 10.1.0.2/24 dev eth0\nip link set eth0 up\nip route add default via 10.1.0.1",
    );
    t.run("a", "ip route add 10.1.0.0/24 via 10.0.0.2");
    t.at("1s", "a", "traceroute -n 10.1.0.2");
    t.until("5s");
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "traceroute to 10.1.0.2 (10.1.0.2), 30 hops max, 60 byte packets",
        "{out}"
    );
    assert!(lines[1].starts_with(" 1  10.0.0.2  "), "{out}");
    assert!(lines[2].starts_with(" 2  10.1.0.2  "), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[1].matches(" ms").count(), 3, "{out}");
}

#[test]
fn neighbour_table_is_per_kernel_and_overflows_at_gc_thresh3() {
    let mut t = T::new(&["a"]);
    // One ARP table per kernel: gc_thresh3 exists only in the root namespace.
    t.run("a", "ip netns add p");
    assert!(
        t.try_run(
            "a",
            "ip netns exec p sysctl -w net.ipv4.neigh.default.gc_thresh3=2"
        )
        .1
    );
    t.run("a", "sysctl -w net.ipv4.neigh.default.gc_thresh3=2");
    // Two unresolved neighbours fill the table; a third cannot be created.
    t.at("1s", "a", "ping -c 1 -W 1 10.0.0.51");
    t.at("1s", "a", "ping -c 1 -W 1 10.0.0.52");
    t.at("1s", "a", "ping -c 1 -W 1 10.0.0.53");
    t.until("1.5s");
    assert_eq!(
        t.drops()
            .iter()
            .filter(|d| **d == DropReason::NeighTableOverflow)
            .count(),
        1
    );
    assert!(
        t.sim
            .world
            .warnings
            .iter()
            .any(|w| w.text.contains("neighbor table overflow"))
    );
    // Once those entries have FAILED, forced GC makes room again.
    t.at("10s", "a", "ping -c 1 -W 1 10.0.0.54");
    t.until("10.5s");
    assert_eq!(
        t.neigh_state("a", "", "eth0", "10.0.0.54"),
        Some(NudState::Incomplete)
    );
}

/// The first word of each `ip link` line that starts a device: `N: name@peer:`.
fn link_heads(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let mut w = l.split(' ');
            let ix = w.next().unwrap_or_default();
            let name = w.next().unwrap_or_default();
            let flags = w.next().unwrap_or_default();
            format!("{ix} {name} {flags}")
        })
        .collect()
}

#[test]
fn veth_peer_is_registered_first_and_ifindexes_are_allocated_cyclically() {
    // Linux 6.18: veth_newlink registers the peer before the device, and
    // each namespace allocates indexes cyclically (xa_alloc_cyclic), so a
    // device moved in with its own index is skipped, and the list is in
    // ifindex order.
    let mut t = T::new(&["a"]);
    t.run(
        "a",
        "ip netns add x\nip netns add y\nip netns exec y ip link add X1 type veth peer name Y1\nip netns exec y ip link add X type veth peer name Y\nip netns exec y ip link set X netns x",
    );
    t.run(
        "a",
        "ip netns exec x ip link add P type veth peer name Q\nip netns exec x ip link add P2 type veth peer name Q2\nip netns exec x ip link add P3 type veth peer name Q3",
    );
    let out = t.run("a", "ip netns exec x ip link");
    assert_eq!(
        link_heads(&out),
        [
            "1: lo: <LOOPBACK>",
            "2: Q@P: <BROADCAST,MULTICAST,M-DOWN>",
            "3: P@Q: <BROADCAST,MULTICAST,M-DOWN>",
            "4: Q2@P2: <BROADCAST,MULTICAST,M-DOWN>",
            "5: X@if4: <BROADCAST,MULTICAST>",
            "6: P2@Q2: <BROADCAST,MULTICAST,M-DOWN>",
            "7: Q3@P3: <BROADCAST,MULTICAST,M-DOWN>",
            "8: P3@Q3: <BROADCAST,MULTICAST,M-DOWN>",
        ],
        "{out}"
    );
}

#[test]
fn m_down_marks_a_same_namespace_peer_that_is_down() {
    // iproute2 prints M-DOWN when the IFLA_LINK device (shown by name, so in
    // the same namespace) is not up, whatever the device's own state; never
    // for a peer in another namespace (shown as @ifN).
    let mut t = T::new(&["a"]);
    t.run("a", "ip link add A type veth peer name B\nip link set A up");
    let out = t.run("a", "ip link");
    assert_eq!(
        link_heads(&out)[2..],
        [
            "3: B@A: <BROADCAST,MULTICAST>",
            "4: A@B: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN>",
        ],
        "{out}"
    );
    assert!(out.contains("state LOWERLAYERDOWN"), "{out}");
    t.run("a", "ip link set B up\nip link set A down");
    let out = t.run("a", "ip link");
    assert_eq!(
        link_heads(&out)[2..],
        [
            "3: B@A: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN>",
            "4: A@B: <BROADCAST,MULTICAST>",
        ],
        "{out}"
    );
    t.run(
        "a",
        "ip netns add n\nip link add C type veth peer name D netns n",
    );
    let out = t.run("a", "ip link show C");
    assert!(out.starts_with("5: C@if2: <BROADCAST,MULTICAST> "), "{out}");
}

#[test]
fn a_veth_up_without_its_peer_in_another_namespace_is_down_or_lowerlayerdown() {
    // default_operstate looks the peer's ifindex up in the veth's own
    // namespace (Linux 6.18): its own index or nothing there gives DOWN, a
    // device without carrier there gives LOWERLAYERDOWN.
    let mut t = T::new(&["a"]);
    t.run(
        "a",
        "ip netns add x\nip netns add y\nip netns exec x ip link add A type veth peer name B netns y\nip netns exec y ip link set B up",
    );
    let out = t.run("a", "ip netns exec y ip link show B");
    assert!(
        out.starts_with(
            "2: B@if2: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN "
        ),
        "{out}"
    );
    t.run(
        "a",
        "ip netns add z\nip netns exec z ip link add X type veth peer name Y\nip netns exec x ip link add C type veth peer name D netns z\nip netns exec z ip link set D up",
    );
    // D (4 in z) has IFLA_LINK 3 (C in x): in z, 3 is X, without carrier.
    let out = t.run("a", "ip netns exec z ip link show D");
    assert!(
        out.starts_with("4: D@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN "),
        "{out}"
    );
}

#[test]
fn link_set_master_names_a_missing_master_before_the_device() {
    let mut t = T::new(&["a"]);
    t.run("a", "ip link add A type veth peer name B");
    for (line, want) in [
        (
            "ip link set A master nosuch",
            "Error: argument \"nosuch\" is wrong: Device does not exist",
        ),
        (
            "ip link set nosuch master nosuch2",
            "Error: argument \"nosuch2\" is wrong: Device does not exist",
        ),
        (
            "ip link set A master B",
            "RTNETLINK answers: Operation not supported",
        ),
    ] {
        let (msg, failed) = t.try_run("a", line);
        assert!(failed, "{line}");
        assert_eq!(msg.trim_end(), want, "{line}");
    }
}

#[test]
fn lo_is_captured_once_and_a_bridge_sees_what_it_passes_up() {
    let mut t = T::new(&["a"]);
    t.run(
        "a",
        "ip link add br0 type bridge\nip link set br0 up\nip addr add 10.8.0.1/24 dev br0\nip netns add p\nip link add name ph type veth peer name eth0 netns p\nip link set ph master br0\nip link set ph up\nip netns exec p ip link set eth0 up\nip netns exec p ip addr add 10.8.0.2/24 dev eth0",
    );
    t.sim.world.captures.all = true;
    t.at("1s", "a", "ping -c 1 127.0.0.1");
    t.at("2s", "a", "ip netns exec p ping -c 1 10.8.0.1");
    t.until("3s");
    let w = &t.sim.world;
    let count = |dev: &str, out: bool| {
        let d = w.dev_by_name(w.hosts[t.host("a").ix()].root, dev).unwrap();
        w.captures
            .frames
            .iter()
            .filter(|f| f.dev == d && f.outgoing == out)
            .count()
    };
    // tcpdump -i lo: the echo request and the reply, once each, as received.
    assert_eq!((count("lo", false), count("lo", true)), (2, 0));
    // tcpdump -i br0: the ARP request and the echo request come in (passed
    // up by the bridge), the ARP reply and the echo reply go out.
    assert_eq!((count("br0", false), count("br0", true)), (2, 2));
    assert_eq!((count("ph", false), count("ph", true)), (2, 2));
}
