//! Sockets: the TCP and UDP socket tables of every kernel in the world, the
//! lookups the receive path does, ephemeral ports, the errors applications
//! see, and the per-flow summary printed after a run.
//!
//! Sockets live in one table for the whole world (`World::sockets`), keyed
//! by namespace, so a lookup is one ordered-map search. Sockets are never
//! removed from their `Vec` (ids stay valid); a closed socket leaves the
//! lookup maps and stays for the flow summary.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};

use crate::linux::fib::{Flow, l3_hash};
use crate::linux::tcp::{TcpSock, TcpState};
use crate::linux::udp::UdpSock;
use crate::linux::{NsId, World};
use sim_core::trace::RouteType;

/// An IPv4 address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl Endpoint {
    pub const fn new(addr: Ipv4Addr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// The errors a socket reports, with the C library's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    ConnRefused,
    ConnReset,
    TimedOut,
    HostUnreach,
    NetUnreach,
    AddrInUse,
    AddrNotAvail,
    MsgSize,
    Perm,
    Inval,
}

impl Errno {
    /// strerror().
    pub fn text(self) -> &'static str {
        match self {
            Errno::ConnRefused => "Connection refused",
            Errno::ConnReset => "Connection reset by peer",
            Errno::TimedOut => "Connection timed out",
            Errno::HostUnreach => "No route to host",
            Errno::NetUnreach => "Network is unreachable",
            Errno::AddrInUse => "Address already in use",
            Errno::AddrNotAvail => "Cannot assign requested address",
            Errno::MsgSize => "Message too long",
            Errno::Perm => "Operation not permitted",
            Errno::Inval => "Invalid argument",
        }
    }
    /// The symbolic name (ECONNREFUSED, ...).
    pub fn name(self) -> &'static str {
        match self {
            Errno::ConnRefused => "ECONNREFUSED",
            Errno::ConnReset => "ECONNRESET",
            Errno::TimedOut => "ETIMEDOUT",
            Errno::HostUnreach => "EHOSTUNREACH",
            Errno::NetUnreach => "ENETUNREACH",
            Errno::AddrInUse => "EADDRINUSE",
            Errno::AddrNotAvail => "EADDRNOTAVAIL",
            Errno::MsgSize => "EMSGSIZE",
            Errno::Perm => "EPERM",
            Errno::Inval => "EINVAL",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A TCP connection's key in the lookup map: namespace, local, remote.
pub(crate) type ConnKey = (NsId, Endpoint, Endpoint);

/// Every socket of every kernel.
#[derive(Debug, Default)]
pub struct Sockets {
    pub tcp: Vec<TcpSock>,
    pub udp: Vec<UdpSock>,
    /// Connected TCP sockets (SYN-SENT onwards) by (ns, local, remote).
    pub(crate) tcp_conns: BTreeMap<ConnKey, u32>,
    /// Listening TCP sockets by (ns, port), then by address (0.0.0.0 = any).
    pub(crate) tcp_listen: BTreeMap<(NsId, u16), Vec<u32>>,
    /// UDP sockets by (ns, local port).
    pub(crate) udp_ports: BTreeMap<(NsId, u16), Vec<u32>>,
    /// Local TCP ports in use, with how many sockets use each.
    pub(crate) tcp_ports: BTreeMap<(NsId, u16), u32>,
    /// Random streams per namespace (initial sequence numbers, timestamp
    /// offsets, ephemeral ports): `tcp:NS:isn`.
    rngs: BTreeMap<NsId, SimRng>,
}

/// Where a locally generated packet to a destination goes: the source
/// address routing picks and the path MTU the route gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub src: Ipv4Addr,
    pub mtu: u32,
}

/// One flow after a run (from the side that opened it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSummary {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Where the opening side runs (`node1:test3`).
    pub place: String,
    /// The application that opened it (`nc`, `iperf3`).
    pub app: String,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Payload bytes from src to dst that were acknowledged (TCP) or sent (UDP).
    pub bytes_out: u64,
    /// Payload bytes from dst to src received.
    pub bytes_in: u64,
    pub start: SimTime,
    /// When the connection was established (TCP; UDP: the start).
    pub connected: Option<SimTime>,
    /// The last time payload moved (acknowledged or received), or the close.
    pub end: SimTime,
    /// Segments retransmitted by the opening side (TCP).
    pub retransmissions: u64,
    /// Smoothed RTT (TCP).
    pub srtt: Option<SimDuration>,
    /// The final state (`ESTABLISHED`, `CLOSED`, ...), or `open` for UDP.
    pub state: String,
    /// The error the socket reported, if any.
    pub error: Option<Errno>,
    /// UDP: datagrams sent and received; sends refused (ECONNREFUSED).
    pub datagrams_out: u64,
    pub datagrams_in: u64,
    pub refused_sends: u64,
}

impl FlowSummary {
    pub fn duration(&self) -> SimDuration {
        self.end.saturating_since(self.start)
    }

    /// Bits per second of `bytes_out` from the connection's establishment
    /// to the end.
    pub fn throughput_bps(&self) -> u64 {
        let from = self.connected.unwrap_or(self.start);
        let ns = self.end.saturating_since(from).as_nanos();
        if ns == 0 {
            return 0;
        }
        ((self.bytes_out as u128 * 8 * 1_000_000_000) / ns as u128) as u64
    }

    /// One line for `podpath run`'s `--- flows ---` section.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {} {} -> {} ({}) {}: {} bytes out, {} bytes in",
            self.proto,
            self.place,
            self.src,
            self.dst,
            self.app,
            self.state,
            self.bytes_out,
            self.bytes_in,
        );
        if self.proto == "tcp" {
            match self.connected {
                Some(c) => s.push_str(&format!(
                    ", {} over {} (connected after {})",
                    fmt_rate(self.throughput_bps()),
                    self.end.saturating_since(c),
                    c.saturating_since(self.start)
                )),
                None => s.push_str(&format!(", never connected ({})", self.duration())),
            }
            s.push_str(&format!(", {} retransmissions", self.retransmissions));
            if let Some(r) = self.srtt {
                s.push_str(&format!(", srtt {r}"));
            }
        } else {
            if self.duration() > SimDuration::ZERO {
                s.push_str(&format!(
                    ", {} over {}",
                    fmt_rate(self.throughput_bps()),
                    self.duration()
                ));
            }
            s.push_str(&format!(
                ", {} datagrams out, {} in",
                self.datagrams_out, self.datagrams_in
            ));
            if self.refused_sends > 0 {
                s.push_str(&format!(", {} sends refused", self.refused_sends));
            }
        }
        if let Some(e) = self.error {
            s.push_str(&format!(", error {} ({})", e.name(), e.text()));
        }
        s
    }
}

/// `941.5 Mbit/s`-style rate.
pub fn fmt_rate(bps: u64) -> String {
    let b = bps as f64;
    if b >= 1e9 {
        format!("{:.3} Gbit/s", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.3} Mbit/s", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.3} kbit/s", b / 1e3)
    } else {
        format!("{bps} bit/s")
    }
}

/// Sequence-space comparisons (RFC 1982 arithmetic on 32 bits).
#[inline]
pub(crate) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline]
pub(crate) fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}
#[inline]
pub(crate) fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

impl World {
    /// The namespace's transport random stream (created on first use).
    pub(crate) fn sock_rng(&mut self, ns: NsId) -> &mut SimRng {
        if !self.sockets.rngs.contains_key(&ns) {
            let label = self.ns_label(ns);
            let r = self.seed.stream(&format!("tcp:{label}:isn"));
            self.sockets.rngs.insert(ns, r);
        }
        self.sockets.rngs.get_mut(&ns).expect("just inserted")
    }

    /// The route a locally generated packet to `dst` takes: the source
    /// address (given, or chosen by routing) and the path MTU.
    pub fn route_info(
        &self,
        ns: NsId,
        dst: Ipv4Addr,
        src: Option<Ipv4Addr>,
    ) -> Result<RouteInfo, Errno> {
        if let Some(s) = src
            && !self.is_local_addr(ns, s)
        {
            return Err(Errno::AddrNotAvail);
        }
        let flow = Flow {
            dst,
            src,
            hash: l3_hash(src.unwrap_or(Ipv4Addr::UNSPECIFIED), dst),
            ..Default::default()
        };
        let res = self.fib_lookup(ns, &flow).map_err(|e| match e {
            crate::linux::fib::FibError::Unreachable => Errno::NetUnreach,
            crate::linux::fib::FibError::RuleType(RouteType::Prohibit, _) => Errno::Perm,
            crate::linux::fib::FibError::RuleType(_, _) => Errno::NetUnreach,
        })?;
        let mtu = match res.route.rtype {
            RouteType::Local | RouteType::Broadcast => {
                res.route.mtu.unwrap_or(self.devices[self.lo(ns).ix()].mtu)
            }
            RouteType::Unicast => {
                let nh = res.nexthop().ok_or(Errno::NetUnreach)?;
                res.route.mtu.unwrap_or(self.devices[nh.dev.ix()].mtu)
            }
            RouteType::Unreachable => return Err(Errno::HostUnreach),
            RouteType::Prohibit => return Err(Errno::Perm),
            RouteType::Blackhole => return Err(Errno::Inval),
        };
        let src = match src {
            Some(s) => s,
            None => self
                .select_source(ns, dst, None)
                .ok_or(Errno::AddrNotAvail)?,
        };
        Ok(RouteInfo { src, mtu })
    }

    /// A free local port for a TCP connect() or an unbound UDP socket: a
    /// random even port of `ip_local_port_range` (Linux gives connect()
    /// even ports and bind(0) odd ones), the next free one after it.
    pub(crate) fn ephemeral_port(&mut self, ns: NsId, udp: bool) -> Option<u16> {
        let (lo, hi) = self.namespaces[ns.ix()].sysctl.ip_local_port_range;
        let (lo, hi) = (u32::from(lo), u32::from(hi.max(lo)));
        let span = hi - lo + 1;
        let start = self.sock_rng(ns).below(u64::from(span)) as u32;
        for k in 0..span {
            let off = (start + k * 2 + (start & 1)) % span;
            let p = (lo + off) as u16;
            let used = if udp {
                self.sockets.udp_ports.contains_key(&(ns, p))
            } else {
                self.sockets.tcp_ports.contains_key(&(ns, p))
            };
            if !used {
                return Some(p);
            }
        }
        None
    }

    /// Every flow opened during the run, in the order they were opened.
    pub fn flows(&self) -> Vec<FlowSummary> {
        let mut out: Vec<(SimTime, usize, FlowSummary)> = Vec::new();
        for (i, s) in self.sockets.tcp.iter().enumerate() {
            if !s.active {
                continue;
            }
            let end = s.last_progress.max(s.opened_at);
            out.push((
                s.opened_at,
                i,
                FlowSummary {
                    proto: "tcp",
                    place: self.ns_label(s.ns),
                    app: s.by.to_string(),
                    src: s.local,
                    dst: s.remote,
                    bytes_out: s.acked_bytes,
                    bytes_in: s.received_bytes,
                    start: s.opened_at,
                    connected: s.established_at,
                    end,
                    retransmissions: s.retrans,
                    srtt: s.srtt(),
                    state: s.state.as_str().to_string(),
                    error: s.error,
                    datagrams_out: 0,
                    datagrams_in: 0,
                    refused_sends: 0,
                },
            ));
        }
        for (i, u) in self.sockets.udp.iter().enumerate() {
            let Some(remote) = u.remote else { continue };
            if !u.active {
                continue;
            }
            out.push((
                u.opened_at,
                usize::MAX / 2 + i,
                FlowSummary {
                    proto: "udp",
                    place: self.ns_label(u.ns),
                    app: u.by.to_string(),
                    src: u.local,
                    dst: remote,
                    bytes_out: u.sent_bytes,
                    bytes_in: u.rcvd_bytes,
                    start: u.opened_at,
                    connected: None,
                    end: u.last_at.max(u.opened_at),
                    retransmissions: 0,
                    srtt: None,
                    state: if u.closed { "closed" } else { "open" }.to_string(),
                    error: u.last_error,
                    datagrams_out: u.sent_dgrams,
                    datagrams_in: u.rcvd_dgrams,
                    refused_sends: u.refused_sends,
                },
            ));
        }
        out.sort_by_key(|(t, i, _)| (*t, *i));
        out.into_iter().map(|(_, _, f)| f).collect()
    }

    /// The TCP sockets of a namespace, as `ss -tan` lists them (state,
    /// local, peer).
    pub fn tcp_sockets(&self, ns: NsId) -> Vec<(TcpState, Endpoint, Option<Endpoint>)> {
        self.sockets
            .tcp
            .iter()
            .filter(|s| s.ns == ns && s.state != TcpState::Closed)
            .map(|s| {
                (
                    s.state,
                    s.local,
                    (s.state != TcpState::Listen).then_some(s.remote),
                )
            })
            .collect()
    }
}

impl World {
    /// An ICMP error reached `ns` (icmp_rcv → the protocol's err_handler):
    /// if it quotes a TCP segment or UDP datagram of one of our sockets, the
    /// socket takes it. Returns whether one did.
    pub(crate) fn sock_icmp_rcv(
        &mut self,
        cx: &mut crate::linux::Cx,
        ns: NsId,
        pkt: &sim_core::packet::Packet,
    ) -> bool {
        use sim_core::packet::{Header, Payload};
        use sim_core::trace::TraceEvent;
        use sim_core::wire::{IcmpRepr, IpProtocol, Ipv4Repr};
        let Some(Header::Icmp(m)) = pkt.headers.get(1) else {
            return false;
        };
        let (ty, code, info) = match *m {
            IcmpRepr::DestUnreachable { code, next_hop_mtu } => (3u8, code, next_hop_mtu),
            IcmpRepr::TimeExceeded { code } => (11, code, 0),
            _ => return false,
        };
        let Payload::Data(quote) = &pkt.payload else {
            return false;
        };
        let Ok(q) = Ipv4Repr::parse_quoted(quote) else {
            return false;
        };
        if q.payload.len() < 4 || q.repr.frag_offset != 0 {
            return false;
        }
        let sport = u16::from_be_bytes([q.payload[0], q.payload[1]]);
        let dport = u16::from_be_bytes([q.payload[2], q.payload[3]]);
        let local = Endpoint::new(q.repr.src, sport);
        let remote = Endpoint::new(q.repr.dst, dport);
        let place = self.namespaces[ns.ix()].node;
        match q.repr.protocol {
            IpProtocol::Tcp => {
                let Some(&i) = self.sockets.tcp_conns.get(&(ns, local, remote)) else {
                    return false;
                };
                let what = match (ty, code) {
                    (3, 4) => format!("path MTU {info}"),
                    _ => crate::linux::stack::icmp_kind_text(ty, code, info),
                };
                let label = self.sockets.tcp[i as usize].label();
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: format!("{label}: ICMP {what}").into(),
                });
                self.tcp_icmp_error(cx, i as usize, ty, code, info);
            }
            IpProtocol::Udp => {
                let Some(i) = self.udp_find(ns, local, remote) else {
                    return false;
                };
                let label = self.sockets.udp[i as usize].label();
                let what = crate::linux::stack::icmp_kind_text(ty, code, info);
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: format!("{label}: ICMP {what}").into(),
                });
                self.udp_icmp_error(cx, i, ty, code);
            }
            _ => return false,
        }
        true
    }
}
