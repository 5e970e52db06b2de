//! Tests of the transport layer (TCP, UDP) and the traffic tools, driven by
//! the real commands (`nc`, `iperf3`, `ip`, `sysctl`).

use std::net::Ipv4Addr;

use sim_core::packet::{DecodeOptions, Header, Layer, Packet};
use sim_core::rng::{Probability, RootSeed};
use sim_core::sched::Limits;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{NullSink, TraceEvent, TraceSink, VecSink, render_text};
use sim_core::wire::{TcpOption, TcpRepr};

use crate::cmd::parse_line;
use crate::linux::tcp::{TcpSock, TcpState};
use crate::linux::{HostId, LinkParams};
use crate::sim::{Simulation, Step};

/// Hosts on segments; commands at times; a run.
struct Net {
    sim: Simulation,
    steps: usize,
}

impl Net {
    fn new(seed: u64) -> Net {
        Net {
            sim: Simulation::new(RootSeed(seed), Limits::default()),
            steps: 0,
        }
    }

    /// `a` (10.0.0.1) and `b` (10.0.0.2) on one segment.
    fn pair(seed: u64, bw: u64, latency_us: u64, loss: &str) -> Net {
        let mut n = Net::new(seed);
        n.segment("lan", bw, latency_us, loss, 1500);
        n.host("a", &[("eth0", "lan", "10.0.0.1/24")]);
        n.host("b", &[("eth0", "lan", "10.0.0.2/24")]);
        n
    }

    fn segment(&mut self, name: &str, bw: u64, latency_us: u64, loss: &str, mtu: u32) {
        self.sim.world.add_segment(
            name,
            LinkParams {
                latency: SimDuration::from_micros(latency_us),
                bandwidth_bps: bw,
                loss: Probability::parse_decimal(loss).unwrap(),
            },
            mtu,
        );
    }

    fn host(&mut self, name: &str, nics: &[(&str, &str, &str)]) -> HostId {
        let h = self.sim.world.add_host(name);
        for (i, (nic, seg, addr)) in nics.iter().enumerate() {
            let seg = self.sim.world.seg_by_name[*seg];
            let mac = format!("02:00:00:00:{:02x}:{:02x}", h.0 + 1, i + 1)
                .parse()
                .unwrap();
            self.sim.world.add_nic(h, nic, seg, Some(mac));
            self.at(0, name, &format!("ip addr add {addr} dev {nic}"));
            self.at(0, name, &format!("ip link set {nic} up"));
        }
        self.at(0, name, "ip link set lo up");
        h
    }

    /// Runs `line` on `host` (`host` or `host:netns`) at `ms` milliseconds.
    fn at(&mut self, ms: u64, host: &str, line: &str) {
        let (h, ns) = match host.split_once(':') {
            Some((h, n)) => (h, Some(n)),
            None => (host, None),
        };
        let mut cmd = parse_line(line).unwrap_or_else(|e| panic!("`{line}`: {}", e.message));
        if let Some(n) = ns {
            cmd.netns = Some(n.to_string());
        }
        let host = self.sim.world.host_by_name[h];
        self.sim.add_step(Step {
            at: SimTime::ZERO + SimDuration::from_millis(ms),
            host,
            cmd: cmd.into(),
            line: line.into(),
            origin: self.steps,
            expect_error: None,
        });
        self.steps += 1;
    }

    fn run(&mut self, ms: u64, sink: &mut dyn TraceSink) {
        let until = SimTime::ZERO + SimDuration::from_millis(ms);
        if let Err(e) = self.sim.run_until(until, sink) {
            panic!("run failed: {e:?}");
        }
    }

    fn output(&self, place: &str) -> String {
        self.sim
            .world
            .output
            .iter()
            .filter(|o| o.place == place)
            .map(|o| format!("{}\n", o.text))
            .collect()
    }

    fn client(&self) -> &TcpSock {
        self.sim
            .world
            .sockets
            .tcp
            .iter()
            .find(|s| s.active)
            .expect("a client socket")
    }

    fn server(&self) -> &TcpSock {
        self.sim
            .world
            .sockets
            .tcp
            .iter()
            .find(|s| !s.active && s.state != TcpState::Listen && s.parent.is_some())
            .expect("an accepted socket")
    }
}

/// The TCP segments of the trace, as originated (summary text), with time.
fn originated(sink: &VecSink, by: &str) -> Vec<(SimTime, String)> {
    sink.records
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Originate { by: b, summary, .. }
                if &**b == by && summary.starts_with("IP ") =>
            {
                Some((r.time, summary.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// Decodes captured frames (checksums verified) into TCP segments sent by
/// `src`: (header, payload length).
fn captured_tcp(n: &Net, src: Ipv4Addr) -> Vec<(TcpRepr, usize)> {
    let mut out = Vec::new();
    for f in &n.sim.world.captures.frames {
        if !f.outgoing {
            continue;
        }
        let first = match n.sim.world.link_type(f.dev) {
            crate::linux::capture::LinkType::Ethernet => Layer::Ethernet,
            crate::linux::capture::LinkType::RawIp => Layer::Ipv4,
        };
        let p = Packet::parse(&f.bytes, first, &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("captured frame does not decode: {e}"));
        let Some(ip) = p.innermost_ipv4().cloned() else {
            continue;
        };
        if ip.src != src {
            continue;
        }
        if let Some(k) = p.headers.iter().rposition(|h| matches!(h, Header::Tcp(_))) {
            let Header::Tcp(t) = &p.headers[k] else {
                unreachable!()
            };
            out.push((t.clone(), p.len_from(k + 1)));
        }
    }
    out
}

#[test]
fn handshake_carries_linux_syn_options_and_the_message_arrives() {
    let mut n = Net::pair(1, 1_000_000_000, 100, "0");
    n.sim.world.captures.all = true;
    n.at(100, "b", "nc -kl 10.0.0.2 8888");
    n.at(200, "a", "nc -s 10.0.0.1 10.0.0.2 8888 --send hello");
    let mut sink = VecSink::default();
    n.run(1000, &mut sink);
    assert_eq!(n.output("b"), "hello\n");
    let segs = originated(&sink, "nc");
    let syn = &segs[0].1;
    assert!(syn.contains("Flags [S], seq "), "{syn}");
    assert!(
        syn.contains(", win 64240, options [mss 1460,sackOK,TS val ")
            && syn.ends_with(" ecr 0,nop,wscale 7], length 0"),
        "{syn}"
    );
    let synack = &segs[1].1;
    assert!(
        synack.contains("Flags [S.]") && synack.contains("win 65160"),
        "{synack}"
    );
    assert!(
        synack.contains("options [mss 1460,sackOK,TS val "),
        "{synack}"
    );
    assert!(segs[2].1.contains("Flags [.], ack ") && segs[2].1.contains("win 502"));
    assert!(segs[3].1.contains("Flags [P.]") && segs[3].1.ends_with("length 6"));
    // The wire bytes decode with valid checksums and the same options.
    let from_a = captured_tcp(&n, "10.0.0.1".parse().unwrap());
    let (syn, _) = &from_a[0];
    assert_eq!(syn.header_len(), 40);
    assert_eq!(syn.mss(), Some(1460));
    assert!(matches!(syn.options[1], TcpOption::SackPermitted));
    assert!(matches!(
        syn.options[2],
        TcpOption::Timestamps { tsecr: 0, .. }
    ));
    assert_eq!(syn.options[4], TcpOption::WindowScale(7));
    let data = from_a.iter().find(|(_, l)| *l > 0).unwrap();
    assert_eq!(data.1, 6);
    assert_eq!(data.0.header_len(), 32, "data segments carry timestamps");
    let c = n.client();
    assert_eq!(c.state, TcpState::Established);
    assert_eq!((c.mss, c.peer_mss, c.acked_bytes), (1448, 1460, 6));
}

#[test]
fn listener_replies_and_both_sides_close() {
    let mut n = Net::pair(2, 1_000_000_000, 50, "0");
    n.at(100, "b", "nc -l 80 --reply 'HTTP/1.0 200 OK'");
    n.at(200, "a", "nc -N 10.0.0.2 80 --send 'GET / HTTP/1.0'");
    let mut sink = VecSink::default();
    n.run(2000, &mut sink);
    assert_eq!(n.output("b"), "GET / HTTP/1.0\n");
    assert_eq!(n.output("a"), "HTTP/1.0 200 OK\n");
    assert_eq!(n.client().state, TcpState::TimeWait);
    assert_eq!(n.server().state, TcpState::Closed);
    let flags: Vec<String> = originated(&sink, "nc")
        .iter()
        .map(|(_, s)| s[s.find("Flags").unwrap()..s.find(']').unwrap() + 1].to_string())
        .collect();
    assert!(flags.contains(&"Flags [F.]".to_string()), "{flags:?}");
    // Without -k the listener is gone: a second client is reset.
    n.at(3000, "a", "nc -v 10.0.0.2 80");
    n.run(4000, &mut sink);
    assert!(
        n.output("a")
            .contains("nc: connect to 10.0.0.2 port 80 (tcp) failed: Connection refused"),
        "{}",
        n.output("a")
    );
}

#[test]
fn closed_tcp_port_answers_with_a_reset_from_the_destination() {
    let mut n = Net::pair(3, 1_000_000_000, 50, "0");
    n.at(100, "a", "nc -v 10.0.0.2 9999");
    let mut sink = VecSink::default();
    n.run(1000, &mut sink);
    let syn = &originated(&sink, "nc")[0].1;
    let seq: u32 = syn[syn.find("seq ").unwrap() + 4..syn.find(", win").unwrap()]
        .parse()
        .unwrap();
    let rst = originated(&sink, "kernel");
    assert_eq!(rst.len(), 1);
    assert_eq!(
        rst[0].1,
        format!(
            "IP 10.0.0.2.9999 > 10.0.0.1.{}: Flags [R.], seq 0, ack {}, win 0, length 0",
            n.client().local.port,
            seq.wrapping_add(1)
        )
    );
    assert!(sink.records.iter().any(|r| matches!(
        &r.event,
        TraceEvent::Drop { reason } if reason.code() == "no-socket"
    )));
    let f = &n.sim.world.flows()[0];
    assert_eq!(f.error, Some(crate::linux::socket::Errno::ConnRefused));
    assert_eq!(
        n.output("a"),
        "nc: connect to 10.0.0.2 port 9999 (tcp) failed: Connection refused\n"
    );
}

#[test]
fn closed_udp_port_gets_port_unreachable_and_the_next_send_is_refused() {
    let mut n = Net::pair(4, 1_000_000_000, 50, "0");
    n.at(
        100,
        "a",
        "nc -u -i 1 10.0.0.2 9999 --send one --send two --send three",
    );
    let mut sink = VecSink::default();
    n.run(5000, &mut sink);
    // nc -u prints nothing.
    assert_eq!(n.output("a"), "");
    let icmp: Vec<String> = originated(&sink, "kernel")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(icmp.len(), 1, "{icmp:?}");
    assert!(icmp[0].contains("udp port 9999 unreachable"), "{icmp:?}");
    let text: Vec<String> = sink
        .records
        .iter()
        .map(|r| render_text(&n.sim.world.topo, r))
        .collect();
    assert!(
        text.iter()
            .any(|l| l.contains("delivered to UDP socket")
                && l.contains("Destination Port Unreachable")),
        "{}",
        text.join("\n")
    );
    let f = &n.sim.world.flows()[0];
    assert_eq!((f.proto, f.datagrams_out, f.refused_sends), ("udp", 1, 1));
    assert_eq!(f.error, Some(crate::linux::socket::Errno::ConnRefused));
}

#[test]
fn udp_exchange_with_a_listener() {
    let mut n = Net::pair(5, 1_000_000_000, 50, "0");
    n.at(100, "b", "nc -u -l 5353 --reply pong");
    n.at(200, "a", "nc -u 10.0.0.2 5353 --send ping");
    n.run(1000, &mut NullSink);
    assert_eq!(n.output("b"), "ping\n");
    assert_eq!(n.output("a"), "pong\n");
}

/// Goodput of a full-size TCP segment stream on Ethernet: payload over
/// everything the wire carries per segment.
fn line_rate_goodput(bps: u64, mss: u64) -> f64 {
    let tcp = 20 + 12; // header with the timestamps option
    let ip = 20;
    let eth = 14 + 4; // header and FCS
    let phy = 8 + 12; // preamble+SFD and inter-frame gap
    let wire = mss + tcp + ip + eth + phy;
    bps as f64 * mss as f64 / wire as f64
}

#[test]
fn bulk_flow_reaches_line_rate_less_header_overhead() {
    let mut n = Net::pair(6, 1_000_000_000, 50, "0");
    n.at(100, "b", "iperf3 -s");
    n.at(200, "a", "iperf3 -c 10.0.0.2 -t 3");
    n.run(1200, &mut NullSink);
    let b0 = n.server().received_bytes;
    n.run(2200, &mut NullSink);
    let b1 = n.server().received_bytes;
    let got = (b1 - b0) as f64 * 8.0;
    let mss = u64::from(n.client().mss);
    assert_eq!(mss, 1448);
    let want = line_rate_goodput(1_000_000_000, mss);
    assert!(
        (got - want).abs() / want < 0.02,
        "got {got} bit/s, expected {want} bit/s"
    );
    n.run(5000, &mut NullSink);
    let out = n.output("a");
    assert!(out.contains("[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"));
    assert!(out.contains("Mbits/sec    0             sender"), "{out}");
    assert!(out.ends_with("receiver\n\niperf Done.\n"), "{out}");
    let f = &n.sim.world.flows()[0];
    assert_eq!(f.retransmissions, 0);
    assert!(f.srtt.is_some());
}

/// Bytes delivered, retransmissions and the trace count of a 3 s bulk flow.
fn lossy_run(seed: u64, loss: &str) -> (u64, u64, u64) {
    let mut n = Net::pair(seed, 1_000_000_000, 50, loss);
    n.at(100, "b", "iperf3 -s");
    n.at(200, "a", "iperf3 -c 10.0.0.2 -t 3");
    let mut sink = sim_core::trace::CountingSink::default();
    n.run(4000, &mut sink);
    let c = n.client();
    (c.acked_bytes, c.retrans, sink.count)
}

#[test]
fn random_loss_lowers_throughput_shows_retransmissions_and_replays_exactly() {
    let (clean, clean_retr, _) = lossy_run(7, "0");
    let (lossy, retr, count) = lossy_run(7, "0.01");
    assert_eq!(clean_retr, 0);
    assert!(retr > 10, "{retr} retransmissions");
    assert!(
        (lossy as f64) < 0.8 * clean as f64,
        "1% loss: {lossy} bytes vs {clean}"
    );
    // The same seed gives the same losses, retransmissions and steps.
    assert_eq!(lossy_run(7, "0.01"), (lossy, retr, count));
    // Another seed, other losses.
    assert_ne!(lossy_run(8, "0.01").1, retr);
}

#[test]
fn a_peer_advertising_mss_1440_limits_every_segment() {
    let mut n = Net::pair(9, 1_000_000_000, 50, "0");
    n.sim.world.captures.all = true;
    // b's path MTU is 1480 (as behind an IPIP tunnel): it advertises 1440.
    n.at(1, "b", "ip link set eth0 mtu 1480");
    n.at(100, "b", "nc -l 8080");
    n.at(200, "a", "nc -N 10.0.0.2 8080 --bytes 100000");
    let mut sink = VecSink::default();
    n.run(2000, &mut sink);
    let from_b = captured_tcp(&n, "10.0.0.2".parse().unwrap());
    assert_eq!(from_b[0].0.mss(), Some(1440), "SYN-ACK MSS");
    let from_a = captured_tcp(&n, "10.0.0.1".parse().unwrap());
    assert_eq!(from_a[0].0.mss(), Some(1460), "a's own SYN");
    let sizes: Vec<usize> = from_a.iter().map(|(_, l)| *l).filter(|l| *l > 0).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 100_000);
    assert_eq!(*sizes.iter().max().unwrap(), 1440 - 12);
    assert_eq!(n.client().mss, 1428);
    assert_eq!(n.server().received_bytes, 100_000);
}

#[test]
fn iperf3_mss_option_clamps_the_syn() {
    let mut n = Net::pair(10, 1_000_000_000, 50, "0");
    n.at(100, "b", "iperf3 -s");
    n.at(200, "a", "iperf3 -c 10.0.0.2 -n 100K -M 1200");
    let mut sink = VecSink::default();
    n.run(2000, &mut sink);
    let syn = &originated(&sink, "iperf3")[0].1;
    assert!(syn.contains("options [mss 1200,"), "{syn}");
    assert_eq!(n.client().mss, 1188);
    assert!(n.output("a").contains("iperf Done."));
}

/// a — lan — r — wan — b, all MTU 1500, but r's route to b's network
/// says `mtu 1400` (a smaller hop beyond it, as a tunnel would make).
fn routed(seed: u64) -> Net {
    let mut n = Net::new(seed);
    n.segment("lan", 1_000_000_000, 50, "0", 1500);
    n.segment("wan", 1_000_000_000, 50, "0", 1500);
    n.host("a", &[("eth0", "lan", "10.0.1.1/24")]);
    n.host(
        "r",
        &[
            ("eth0", "lan", "10.0.1.254/24"),
            ("eth1", "wan", "10.0.2.254/24"),
        ],
    );
    n.host("b", &[("eth0", "wan", "10.0.2.1/24")]);
    n.at(1, "a", "ip route add default via 10.0.1.254");
    n.at(1, "b", "ip route add default via 10.0.2.254");
    n.at(1, "r", "sysctl -w net.ipv4.ip_forward=1");
    n.at(2, "r", "ip route replace 10.0.2.0/24 dev eth1 mtu 1400");
    n
}

#[test]
fn path_mtu_discovery_shrinks_the_segments_and_resends() {
    let mut n = routed(11);
    n.at(100, "b", "nc -l 8080");
    n.at(200, "a", "nc -N 10.0.2.1 8080 --bytes 200000");
    let mut sink = VecSink::default();
    n.run(3000, &mut sink);
    let text: Vec<String> = sink
        .records
        .iter()
        .map(|r| render_text(&n.sim.world.topo, r))
        .collect();
    let all = text.join("\n");
    assert!(
        all.contains("unreachable - need to frag (mtu 1400)"),
        "router's ICMP: {}",
        &all[..all.len().min(20000)]
    );
    assert!(
        all.contains(": ICMP path MTU 1400"),
        "delivered to the socket"
    );
    let c = n.client();
    assert_eq!((c.pmtu, c.mss), (1400, 1400 - 40 - 12));
    assert!(c.retrans > 0);
    assert_eq!(n.server().received_bytes, 200_000);
    assert!(all.contains("frag-needed") || all.contains("fragmentation needed"));
}

#[test]
fn syn_retransmissions_back_off_then_time_out() {
    let mut n = Net::pair(12, 1_000_000_000, 50, "0");
    // b can answer nothing: its route back to a is a blackhole.
    n.at(1, "b", "ip route add blackhole 10.0.0.1/32");
    n.at(100, "a", "nc -v 10.0.0.2 80");
    let mut sink = VecSink::default();
    n.run(200_000, &mut sink);
    let syns: Vec<u64> = originated(&sink, "nc")
        .iter()
        .map(|(t, _)| t.as_nanos() / 1_000_000)
        .collect();
    assert_eq!(syns, vec![100, 1100, 3100, 7100, 15100, 31100, 63100]);
    assert_eq!(
        n.output("a"),
        "nc: connect to 10.0.0.2 port 80 (tcp) failed: Connection timed out\n"
    );
    assert_eq!(n.client().retrans, 6);
}

#[test]
fn rto_follows_rfc6298_with_linux_minimum() {
    let mut n = Net::pair(13, 1_000_000_000, 50, "0");
    n.at(100, "b", "nc -l 80");
    n.at(200, "a", "nc 10.0.0.2 80 --send x");
    n.run(1000, &mut NullSink);
    let c = n.client();
    let srtt = c.srtt().unwrap();
    assert!(srtt < SimDuration::from_millis(1));
    // srtt + max(4 * rttvar, 200 ms)
    assert!(c.rto >= SimDuration::from_millis(200) && c.rto < SimDuration::from_millis(202));
}

#[test]
fn same_seed_same_trace_with_loss() {
    let render = |seed: u64| {
        let mut n = Net::pair(seed, 100_000_000, 100, "0.05");
        n.at(100, "b", "nc -l 80");
        n.at(200, "a", "nc -N 10.0.0.2 80 --bytes 50000");
        let mut sink = VecSink::default();
        n.run(10_000, &mut sink);
        assert_eq!(n.server().received_bytes, 50_000);
        sink.records
            .iter()
            .map(|r| render_text(&n.sim.world.topo, r))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = render(21);
    assert!(a.contains("random loss"), "the run should lose something");
    assert_eq!(a, render(21));
    assert_ne!(a, render(22));
}

#[test]
fn iperf3_udp_reports_datagrams_loss_and_jitter() {
    let mut n = Net::pair(14, 1_000_000_000, 50, "0");
    n.at(100, "b", "iperf3 -s");
    n.at(200, "a", "iperf3 -c 10.0.0.2 -u -b 10M -t 2");
    n.run(4000, &mut NullSink);
    let out = n.output("a");
    assert!(
        out.contains("[ ID] Interval           Transfer     Bitrate         Total Datagrams"),
        "{out}"
    );
    // 10 Mbit/s of 1460-byte datagrams for 2 s: 1713 datagrams.
    assert!(out.contains("0/1713 (0%)  sender"), "{out}");
    assert!(out.contains("0/1713 (0%)  receiver"), "{out}");
    assert!(n.output("b").contains("Jitter    Lost/Total Datagrams"));
}

#[test]
fn a_full_queue_drops_at_the_bottleneck() {
    // a's NIC at 1 Gbit/s into a 100 Mbit/s hop through r: the router's
    // queue fills with a large receive window and drops (queue-full).
    let mut n = Net::new(15);
    n.segment("lan", 1_000_000_000, 20, "0", 1500);
    n.segment("wan", 100_000_000, 20, "0", 1500);
    n.host("a", &[("eth0", "lan", "10.0.1.1/24")]);
    n.host(
        "r",
        &[
            ("eth0", "lan", "10.0.1.254/24"),
            ("eth1", "wan", "10.0.2.254/24"),
        ],
    );
    n.host("b", &[("eth0", "wan", "10.0.2.1/24")]);
    n.at(1, "a", "ip route add default via 10.0.1.254");
    n.at(1, "b", "ip route add default via 10.0.2.254");
    n.at(1, "r", "sysctl -w net.ipv4.ip_forward=1");
    let r = n.sim.world.host_by_name["r"];
    let root = n.sim.world.hosts[r.ix()].root;
    let eth1 = n.sim.world.dev_by_name(root, "eth1").unwrap();
    n.sim.world.dev_mut(eth1).txq_bytes = 64 * 1538;
    n.at(100, "b", "iperf3 -s");
    n.at(200, "a", "iperf3 -c 10.0.2.1 -t 2 -w 4M");
    let mut sink = VecSink::default();
    n.run(3000, &mut sink);
    let drops = sink
        .records
        .iter()
        .filter(
            |r| matches!(&r.event, TraceEvent::Drop { reason } if reason.code() == "queue-full"),
        )
        .count();
    assert!(drops > 0);
    assert!(n.client().retrans > 0);
    assert!(n.output("a").contains("iperf Done."));
}

/// Two nodes joined by IPIP (tunl0, MTU 1480), each with a pod (MTU 1500)
/// behind a veth: node1's pod 172.16.2.2, node2's pod 172.16.3.2.
fn ipip_pods(seed: u64, clamp: bool) -> Net {
    let mut n = Net::new(seed);
    n.segment("lan", 1_000_000_000, 100, "0", 1500);
    n.host("node1", &[("enp0s3", "lan", "192.168.56.2/24")]);
    n.host("node2", &[("enp0s3", "lan", "192.168.56.6/24")]);
    for (node, mine, other, peer) in [
        ("node1", "172.16.2", "172.16.3", "192.168.56.6"),
        ("node2", "172.16.3", "172.16.2", "192.168.56.2"),
    ] {
        for line in [
            "modprobe ipip".to_string(),
            "ip link set tunl0 up".into(),
            "sysctl -w net.ipv4.ip_forward=1".into(),
            "ip netns add pod".into(),
            "ip link add veth0 type veth peer name eth0 netns pod".into(),
            format!("ip addr add {mine}.1/24 dev veth0"),
            "ip link set veth0 up".into(),
            format!("ip -n pod addr add {mine}.2/24 dev eth0"),
            "ip -n pod link set eth0 up".into(),
            "ip -n pod link set lo up".into(),
            format!("ip -n pod route add default via {mine}.1"),
            format!("ip route add {other}.0/24 via {peer} dev tunl0 onlink"),
        ] {
            n.at(1, node, &line);
        }
        if clamp {
            n.at(
                1,
                node,
                "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -o tunl0 -j TCPMSS --set-mss 1440",
            );
        }
    }
    n
}

#[test]
fn tcpmss_clamp_on_the_tunnel_limits_the_syn_and_every_segment() {
    let mut n = ipip_pods(16, true);
    n.sim.world.captures.all = true;
    n.at(100, "node1:pod", "nc -l 8080");
    n.at(
        200,
        "node2:pod",
        "nc -N 172.16.2.2 8080 --bytes 100000 --send done",
    );
    let mut sink = VecSink::default();
    n.run(3000, &mut sink);
    assert_eq!(n.output("node1:pod"), "done\n");
    // The client pod advertised 1460; node2 rewrote it on its way out of tunl0.
    let syns: Vec<String> = originated(&sink, "nc")
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.contains("Flags [S"))
        .collect();
    assert!(syns[0].contains("mss 1460"), "{syns:?}");
    let c = n.client();
    let srv = n.server();
    assert_eq!((c.peer_mss, srv.peer_mss), (1440, 1440));
    assert_eq!((c.mss, srv.mss), (1428, 1428));
    assert_eq!(c.retrans, 0, "no segment needed resending");
    // Every data segment on the wire respects the clamp; no frag-needed.
    let from_pod = captured_tcp(&n, "172.16.3.2".parse().unwrap());
    let max = from_pod.iter().map(|(_, l)| *l).max().unwrap();
    assert_eq!(max, 1428);
    assert!(!sink.records.iter().any(
        |r| matches!(&r.event, TraceEvent::Drop { reason } if reason.code() == "frag-needed")
    ));
}

#[test]
fn without_the_clamp_ipip_pods_discover_the_path_mtu() {
    let mut n = ipip_pods(17, false);
    n.at(100, "node1:pod", "nc -l 8080");
    n.at(
        200,
        "node2:pod",
        "nc -N 172.16.2.2 8080 --bytes 100000 --send done",
    );
    let mut sink = VecSink::default();
    n.run(3000, &mut sink);
    assert_eq!(n.output("node1:pod"), "done\n");
    let c = n.client();
    // tunl0's MTU is 1480: ICMP fragmentation needed, then 1480 - 40 - 12.
    assert_eq!((c.peer_mss, c.pmtu, c.mss), (1460, 1480, 1428));
    assert!(c.retrans > 0);
    assert!(sink.records.iter().any(
        |r| matches!(&r.event, TraceEvent::Drop { reason } if reason.code() == "frag-needed")
    ));
}
