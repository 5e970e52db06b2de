//! Traffic applications: `ping` and `traceroute`, printing what the real
//! tools print, in simulated time.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::packet::{Header, Packet, Payload};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{DropReason, TraceEvent};
use sim_core::wire::{IcmpRepr, IpProtocol};

use crate::cmd::{PingCmd, PingSource, PmtuMode};
use crate::linux::stack::{LocalError, icmp_kind_text};
use crate::linux::{Cx, DevId, Event, NsId, World};

/// One running or finished application.
#[derive(Debug, Clone)]
pub enum App {
    Ping(Ping),
    Traceroute(Traceroute),
    Nc(Box<crate::linux::traffic::Nc>),
    Iperf3(Box<crate::linux::traffic::Iperf3>),
    Bird(Box<crate::linux::bird::Bird>),
}

/// `traceroute [-n] DEST`: UDP probes to ports 33434 and up, three per hop,
/// TTL 1 to 30, one probe at a time; a probe unanswered in 5 s prints `*`.
#[derive(Debug, Clone)]
pub struct Traceroute {
    pub ns: NsId,
    pub dst: Ipv4Addr,
    pub src: Ipv4Addr,
    pub numeric: bool,
    pub sport: u16,
    pub ttl: u8,
    pub probe: u8,
    /// Sequence number of the outstanding probe (its destination port is 33434 + seq).
    pub seq: u16,
    pub sent_at: SimTime,
    pub line: String,
    pub hop_from: Option<Ipv4Addr>,
    pub reached: bool,
    pub done: bool,
    pub transcript: String,
    /// The timer of the outstanding probe.
    pub timer: Option<sim_core::sched::EventId>,
}

const TR_MAX_HOPS: u8 = 30;
const TR_BASE_PORT: u16 = 33434;

#[derive(Debug, Clone)]
pub struct Ping {
    pub ns: NsId,
    pub cmd: PingCmd,
    pub ident: u16,
    pub src: Ipv4Addr,
    pub oif: Option<DevId>,
    pub started: SimTime,
    pub sent: u32,
    /// Send time of each sequence number (1-based index - 1).
    pub sent_at: Vec<SimTime>,
    pub replies: Vec<(u16, SimDuration)>,
    pub errors: u32,
    pub done: bool,
    pub transcript: String,
}

impl Ping {
    pub fn received(&self) -> u32 {
        self.replies.len() as u32
    }
}

/// The ICMP echo identifier of `podpath trace`'s and `podpath reach`'s
/// probes; their replies are delivered to the probe (a raw socket).
pub const PROBE_IDENT: u16 = 0x7070;

const TAG_SEND: u32 = 0;
const TAG_FINISH: u32 = 1;

fn fmt_ms(d: SimDuration) -> String {
    // iputils' ping: 3 decimals below 1 ms, then fewer, rounded (ping_common.c).
    let us = d.as_nanos() / 1000;
    if us >= 100_000 - 50 {
        format!("{}", (us + 500) / 1000)
    } else if us >= 10_000 - 5 {
        format!("{}.{}", (us + 50) / 1000, ((us + 50) % 1000) / 100)
    } else if us >= 1_000 {
        format!("{}.{:02}", (us + 5) / 1000, ((us + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", us / 1000, us % 1000)
    }
}

fn fmt_ms3(ns: u128) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns % 1_000_000) / 1000)
}

impl World {
    /// Starts `ping` in `ns`. Returns the app id, or the error ping prints
    /// before sending anything.
    pub fn start_ping(&mut self, cx: &mut Cx, ns: NsId, cmd: PingCmd) -> Result<usize, String> {
        let (src, oif) = match &cmd.source {
            Some(PingSource::Addr(a)) => {
                if !self.is_local_addr(ns, *a) {
                    return Err("ping: bind: Cannot assign requested address".to_string());
                }
                (Some(*a), None)
            }
            Some(PingSource::Dev(d)) => match self.dev_by_name(ns, d) {
                Some(dev) => (None, Some(dev)),
                None => return Err(format!("ping: SO_BINDTODEVICE {d}: No such device")),
            },
            None => (None, None),
        };
        let src = match src.or_else(|| self.select_source(ns, cmd.dst, oif)) {
            Some(s) => s,
            None => {
                return Err(
                    if self
                        .fib_lookup(
                            ns,
                            &crate::linux::fib::Flow {
                                dst: cmd.dst,
                                oif,
                                ..Default::default()
                            },
                        )
                        .is_err()
                    {
                        "ping: connect: Network is unreachable".into()
                    } else {
                        "ping: connect: Cannot assign requested address".into()
                    },
                );
            }
        };
        let app = self.apps.len();
        let ident = 0x1000u16.wrapping_add(app as u16);
        let mut transcript = String::new();
        match &cmd.source {
            Some(PingSource::Dev(d)) => {
                let _ = writeln!(
                    transcript,
                    "PING {} ({}) from {src} {d}: {}({}) bytes of data.",
                    cmd.dst,
                    cmd.dst,
                    cmd.size,
                    cmd.size + 28
                );
            }
            Some(PingSource::Addr(_)) => {
                let _ = writeln!(
                    transcript,
                    "PING {} ({}) from {src} : {}({}) bytes of data.",
                    cmd.dst,
                    cmd.dst,
                    cmd.size,
                    cmd.size + 28
                );
            }
            None => {
                let _ = writeln!(
                    transcript,
                    "PING {} ({}) {}({}) bytes of data.",
                    cmd.dst,
                    cmd.dst,
                    cmd.size,
                    cmd.size + 28
                );
            }
        }
        self.apps.push(App::Ping(Ping {
            ns,
            cmd,
            ident,
            src,
            oif,
            started: cx.now,
            sent: 0,
            sent_at: Vec::new(),
            replies: Vec::new(),
            errors: 0,
            done: false,
            transcript,
        }));
        cx.sched
            .schedule_at(cx.now, Event::App { app, tag: TAG_SEND });
        Ok(app)
    }

    pub fn app_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        if matches!(self.apps[app], App::Traceroute(_)) {
            return self.traceroute_timer(cx, app, tag);
        }
        if matches!(self.apps[app], App::Nc(_) | App::Iperf3(_)) {
            return self.traffic_timer(cx, app, tag);
        }
        if matches!(self.apps[app], App::Bird(_)) {
            return self.bird_timer(cx, app, tag);
        }
        match tag {
            TAG_SEND => self.ping_send(cx, app),
            TAG_FINISH => self.ping_finish(cx, app),
            _ => {}
        }
    }

    fn ping_send(&mut self, cx: &mut Cx, app: usize) {
        let App::Ping(p) = &mut self.apps[app] else {
            return;
        };
        if p.done {
            return;
        }
        p.sent += 1;
        let seq = p.sent as u16;
        p.sent_at.push(cx.now);
        let (ns, src, dst, ident, size, oif) = (p.ns, p.src, p.cmd.dst, p.ident, p.cmd.size, p.oif);
        let df = !matches!(p.cmd.pmtu, PmtuMode::Dont);
        let ttl = p.cmd.ttl;
        let more = p.sent < p.cmd.count;
        let interval = SimDuration::from_millis(p.cmd.interval_ms);
        let timeout = SimDuration::from_millis(p.cmd.timeout_ms);
        let id = self.next_packet_id();
        let iph = self.new_ip(ns, src, dst, IpProtocol::Icmp, df, ttl);
        let pkt = Packet {
            id,
            headers: vec![
                Header::Ipv4(iph),
                Header::Icmp(IcmpRepr::EchoRequest { ident, seq }),
            ],
            payload: Payload::Filler(size as usize),
        };
        let place = self.namespaces[ns.ix()].node;
        let summary = if cx.detail(id) {
            pkt.summary()
        } else {
            String::new()
        };
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "ping".into(),
            summary: summary.into(),
            dst: Some(dst),
        });
        if let Err(e) = self.ip_send(cx, ns, pkt, oif) {
            let App::Ping(p) = &mut self.apps[app] else {
                return;
            };
            p.errors += 1;
            let line = match e {
                LocalError::MessageTooLong { mtu } => {
                    format!("ping: local error: message too long, mtu={mtu}")
                }
                LocalError::NetUnreachable => "ping: sendmsg: Network is unreachable".into(),
                LocalError::HostUnreachable => "ping: sendmsg: No route to host".into(),
                LocalError::NotPermitted => "ping: sendmsg: Operation not permitted".into(),
                LocalError::Invalid => "ping: sendmsg: Invalid argument".into(),
            };
            p.transcript.push_str(&line);
            p.transcript.push('\n');
        }
        if more {
            cx.sched
                .schedule_at(cx.now + interval, Event::App { app, tag: TAG_SEND });
        } else {
            cx.sched.schedule_at(
                cx.now + timeout,
                Event::App {
                    app,
                    tag: TAG_FINISH,
                },
            );
        }
    }

    /// An echo reply reached namespace `ns`.
    pub fn deliver_echo_reply(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        pkt: &Packet,
        ident: u16,
        seq: u16,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let h = match pkt.headers.first() {
            Some(Header::Ipv4(h)) => h.clone(),
            _ => return,
        };
        let now = cx.now;
        let found = self.apps.iter_mut().enumerate().find_map(|(i, a)| match a {
            App::Ping(p) if p.ns == ns && p.ident == ident && !p.done => Some((i, p)),
            _ => None,
        });
        let Some((app, p)) = found else {
            if ident == PROBE_IDENT {
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: "podpath probe".into(),
                });
                return;
            }
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::NoSocket,
            });
            return;
        };
        let Some(&sent) = p.sent_at.get(seq as usize - 1) else {
            return;
        };
        let rtt = now.saturating_since(sent);
        p.replies.push((seq, rtt));
        let bytes = pkt.len_from(1);
        let _ = writeln!(
            p.transcript,
            "{bytes} bytes from {}: icmp_seq={seq} ttl={} time={} ms",
            h.src,
            h.ttl,
            fmt_ms(rtt)
        );
        let all = p.replies.len() as u32 + p.errors >= p.cmd.count && p.sent >= p.cmd.count;
        self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
            to: format!("ping (icmp_seq={seq})").into(),
        });
        if all {
            self.ping_finish(cx, app);
        }
    }

    /// An ICMP error reached namespace `ns`: report it to the ping it quotes.
    pub fn deliver_icmp_error(&mut self, cx: &mut Cx, ns: NsId, pkt: &Packet) {
        let place = self.namespaces[ns.ix()].node;
        let (Some(Header::Ipv4(h)), Some(Header::Icmp(m))) =
            (pkt.headers.first(), pkt.headers.get(1))
        else {
            return;
        };
        let (ty, code, info) = match *m {
            IcmpRepr::DestUnreachable { code, next_hop_mtu } => (3, code, next_hop_mtu),
            IcmpRepr::TimeExceeded { code } => (11, code, 0),
            _ => return,
        };
        let from = h.src;
        // The quoted datagram: IPv4 header then the ICMP echo header.
        let Payload::Data(q) = &pkt.payload else {
            return;
        };
        if q.len() >= 28 && q[9] == 17 {
            return self.traceroute_icmp(cx, ns, from, ty, code, q);
        }
        if q.len() < 28 || q[9] != 1 {
            self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                to: "ICMP error (no matching socket)".into(),
            });
            return;
        }
        let ihl = ((q[0] & 0x0f) as usize) * 4;
        if q.len() < ihl + 8 || q[ihl] != 8 {
            return;
        }
        let ident = u16::from_be_bytes([q[ihl + 4], q[ihl + 5]]);
        let seq = u16::from_be_bytes([q[ihl + 6], q[ihl + 7]]);
        let found = self.apps.iter_mut().enumerate().find_map(|(i, a)| match a {
            App::Ping(p) if p.ns == ns && p.ident == ident && !p.done => Some((i, p)),
            _ => None,
        });
        let Some((app, p)) = found else { return };
        p.errors += 1;
        let _ = writeln!(
            p.transcript,
            "From {from} icmp_seq={seq} {}",
            icmp_kind_text(ty, code, info)
        );
        let all = p.replies.len() as u32 + p.errors >= p.cmd.count && p.sent >= p.cmd.count;
        self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
            to: format!("ping (error for icmp_seq={seq})").into(),
        });
        if all {
            self.ping_finish(cx, app);
        }
    }

    fn ping_finish(&mut self, cx: &mut Cx, app: usize) {
        let App::Ping(p) = &mut self.apps[app] else {
            return;
        };
        if p.done {
            return;
        }
        p.done = true;
        let sent = p.sent;
        let recv = p.received();
        let loss = ((sent - recv) * 100).checked_div(sent).unwrap_or(0);
        let elapsed_ms = p
            .sent_at
            .last()
            .map(|t| t.saturating_since(p.started).as_nanos() / 1_000_000)
            .unwrap_or(0);
        let _ = writeln!(p.transcript, "\n--- {} ping statistics ---", p.cmd.dst);
        let errs = if p.errors > 0 {
            format!(", +{} errors", p.errors)
        } else {
            String::new()
        };
        let _ = writeln!(
            p.transcript,
            "{sent} packets transmitted, {recv} received{errs}, {loss}% packet loss, time {elapsed_ms}ms"
        );
        if recv > 0 {
            let rtts: Vec<u128> = p
                .replies
                .iter()
                .map(|(_, d)| d.as_nanos() as u128)
                .collect();
            let min = *rtts.iter().min().unwrap();
            let max = *rtts.iter().max().unwrap();
            let avg = rtts.iter().sum::<u128>() / rtts.len() as u128;
            let var = rtts
                .iter()
                .map(|r| (*r as i128 - avg as i128).pow(2) as u128)
                .sum::<u128>()
                / rtts.len() as u128;
            let mdev = isqrt(var);
            let _ = writeln!(
                p.transcript,
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                fmt_ms3(min),
                fmt_ms3(avg),
                fmt_ms3(max),
                fmt_ms3(mdev)
            );
        }
        let ns = p.ns;
        let text = p.transcript.trim_end().to_string();
        self.out(cx.now, ns, text);
    }
}

fn isqrt(v: u128) -> u128 {
    if v < 2 {
        return v;
    }
    let mut x = v;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + v / x) / 2;
    }
    x
}

/// A single packet injected by `podpath trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// ICMP echo request.
    Icmp,
    /// A UDP datagram to this port.
    Udp(u16),
    /// A TCP SYN to this port.
    Tcp(u16),
}

impl World {
    /// Sends one probe packet from `ns` to `dst` now, as a local application
    /// would (source address chosen by routing, DF set as Linux sets it for
    /// ping and TCP; not for UDP). Returns its packet id.
    pub fn inject_probe(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        dst: Ipv4Addr,
        probe: Probe,
        size: u32,
    ) -> Result<sim_core::packet::PacketId, String> {
        use sim_core::wire::{TcpFlags, TcpOption, TcpRepr, UdpRepr};
        let src = self
            .select_source(ns, dst, None)
            .ok_or_else(|| format!("no route from {} to {dst}", self.ns_label(ns)))?;
        let id = self.next_packet_id();
        let (proto, l4, df, payload) = match probe {
            Probe::Icmp => (
                IpProtocol::Icmp,
                Header::Icmp(IcmpRepr::EchoRequest {
                    ident: PROBE_IDENT,
                    seq: 1,
                }),
                true,
                Payload::Filler(size as usize),
            ),
            Probe::Udp(p) => (
                IpProtocol::Udp,
                Header::Udp(UdpRepr {
                    src_port: 40000,
                    dst_port: p,
                    checksum: true,
                }),
                false,
                Payload::Filler(size as usize),
            ),
            Probe::Tcp(p) => (
                IpProtocol::Tcp,
                Header::Tcp(TcpRepr {
                    src_port: 40000,
                    dst_port: p,
                    seq: 1,
                    ack: 0,
                    flags: TcpFlags::SYN,
                    window: 64240,
                    urgent: 0,
                    options: vec![TcpOption::Mss(1460)],
                }),
                true,
                Payload::Filler(0),
            ),
        };
        let iph = self.new_ip(ns, src, dst, proto, df, None);
        let pkt = Packet {
            id,
            headers: vec![Header::Ipv4(iph), l4],
            payload,
        };
        let place = self.namespaces[ns.ix()].node;
        let summary = if cx.detail(id) {
            pkt.summary()
        } else {
            String::new()
        };
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "podpath trace".into(),
            summary: summary.into(),
            dst: Some(dst),
        });
        if let Err(e) = self.ip_send(cx, ns, pkt, None) {
            return Err(format!("the kernel refused to send: {e:?}"));
        }
        Ok(id)
    }

    /// Delivers a UDP datagram to a local application; false if none listens.
    pub fn udp_deliver_app(&mut self, cx: &mut Cx, ns: NsId, pkt: &Packet) -> bool {
        self.udp_sock_rcv(cx, ns, pkt)
    }
}

impl World {
    /// Starts `traceroute` in `ns`.
    pub fn start_traceroute(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        dst: Ipv4Addr,
        numeric: bool,
    ) -> Result<usize, String> {
        let src = self
            .select_source(ns, dst, None)
            .ok_or_else(|| "connect: Network is unreachable".to_string())?;
        let app = self.apps.len();
        let transcript = format!("traceroute to {dst} ({dst}), 30 hops max, 60 byte packets\n");
        // The source port: deterministic per app (traceroute picks an ephemeral port).
        let sport = 40000 + (app as u16 % 20000);
        self.apps.push(App::Traceroute(Traceroute {
            ns,
            dst,
            src,
            numeric,
            sport,
            ttl: 1,
            probe: 0,
            seq: 0,
            sent_at: cx.now,
            line: String::new(),
            hop_from: None,
            reached: false,
            done: false,
            transcript,
            timer: None,
        }));
        self.traceroute_probe(cx, app);
        Ok(app)
    }

    fn traceroute_probe(&mut self, cx: &mut Cx, app: usize) {
        use sim_core::wire::UdpRepr;
        let App::Traceroute(t) = &mut self.apps[app] else {
            return;
        };
        if t.probe == 0 {
            t.line = format!("{:>2} ", t.ttl);
            t.hop_from = None;
        }
        t.seq += 1;
        t.sent_at = cx.now;
        let (ns, src, dst, ttl, sport, seq) = (t.ns, t.src, t.dst, t.ttl, t.sport, t.seq);
        let id = self.next_packet_id();
        let iph = self.new_ip(ns, src, dst, IpProtocol::Udp, false, Some(ttl));
        let pkt = Packet {
            id,
            headers: vec![
                Header::Ipv4(iph),
                Header::Udp(UdpRepr {
                    src_port: sport,
                    dst_port: TR_BASE_PORT + seq - 1,
                    checksum: true,
                }),
            ],
            payload: Payload::Filler(32),
        };
        let place = self.namespaces[ns.ix()].node;
        let summary = if cx.detail(id) {
            pkt.summary()
        } else {
            String::new()
        };
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "traceroute".into(),
            summary: summary.into(),
            dst: Some(dst),
        });
        let _ = self.ip_send(cx, ns, pkt, None);
        let timer = cx.sched.schedule_at(
            cx.now + SimDuration::from_secs(5),
            Event::App {
                app,
                tag: seq as u32,
            },
        );
        if let App::Traceroute(t) = &mut self.apps[app] {
            t.timer = Some(timer);
        }
    }

    fn traceroute_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        let App::Traceroute(t) = &mut self.apps[app] else {
            return;
        };
        if t.done || tag != t.seq as u32 {
            return;
        }
        t.line.push_str(" *");
        self.traceroute_next(cx, app);
    }

    /// An ICMP error quoting one of our UDP probes.
    fn traceroute_icmp(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        from: Ipv4Addr,
        ty: u8,
        code: u8,
        q: &[u8],
    ) {
        let ihl = ((q[0] & 0x0f) as usize) * 4;
        if q.len() < ihl + 4 {
            return;
        }
        let sport = u16::from_be_bytes([q[ihl], q[ihl + 1]]);
        let dport = u16::from_be_bytes([q[ihl + 2], q[ihl + 3]]);
        let now = cx.now;
        let found = self.apps.iter().position(|a| matches!(a, App::Traceroute(t) if t.ns == ns && t.sport == sport && !t.done && TR_BASE_PORT + t.seq - 1 == dport));
        let Some(app) = found else { return };
        let App::Traceroute(t) = &mut self.apps[app] else {
            return;
        };
        if let Some(timer) = t.timer.take() {
            cx.sched.cancel(timer);
        }
        let rtt = now.saturating_since(t.sent_at);
        if t.hop_from != Some(from) {
            if t.numeric {
                t.line.push_str(&format!(" {from}"));
            } else {
                t.line.push_str(&format!(" {from} ({from})"));
            }
            t.hop_from = Some(from);
        }
        let us = rtt.as_nanos() / 1000;
        t.line
            .push_str(&format!("  {}.{:03} ms", us / 1000, us % 1000));
        // Port unreachable from the destination ends the trace; other
        // unreachables are annotated as traceroute does (!H, !N, !P, !X).
        match (ty, code) {
            (3, 3) => t.reached = true,
            (3, 1) => {
                t.line.push_str(" !H");
                t.reached = true
            }
            (3, 0) => {
                t.line.push_str(" !N");
                t.reached = true
            }
            (3, 2) => {
                t.line.push_str(" !P");
                t.reached = true
            }
            (3, 13) => {
                t.line.push_str(" !X");
                t.reached = true
            }
            _ => {}
        }
        self.traceroute_next(cx, app);
    }

    fn traceroute_next(&mut self, cx: &mut Cx, app: usize) {
        let App::Traceroute(t) = &mut self.apps[app] else {
            return;
        };
        t.probe += 1;
        if t.probe == 3 {
            let line = std::mem::take(&mut t.line);
            t.transcript.push_str(line.trim_end());
            t.transcript.push('\n');
            t.probe = 0;
            if t.reached || t.ttl >= TR_MAX_HOPS {
                t.done = true;
                let (ns, text) = (t.ns, t.transcript.trim_end().to_string());
                self.out(cx.now, ns, text);
                return;
            }
            t.ttl += 1;
        }
        self.traceroute_probe(cx, app);
    }
}
