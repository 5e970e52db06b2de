//! The typed trace: every step a packet takes is one [`TraceEvent`] value.
//!
//! A [`TraceRecord`] stamps an event with the simulated time, the place (a
//! topology node: the namespace where the step happened) and the packet id.
//! Events are plain data; rendering them as text or JSON lines happens in one
//! place ([`render_text`], [`render_json`]), shared by the CLI, the tests and
//! the TUI. The text format is documented in `docs/trace-format.md`.
//!
//! Sinks decide what to keep: [`VecSink`] keeps everything, [`CountingSink`]
//! only counts (benchmarks), [`NullSink`] drops everything. Models build an
//! event only when the sink wants one ([`TraceSink::enabled`]).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::net::Ipv4Net;
use crate::packet::PacketId;
use crate::time::SimTime;
use crate::topo::{NodeId, Topology};
use crate::wire::MacAddr;

/// One step of one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    pub time: SimTime,
    /// Where the step happened: a namespace (or a segment, for wire steps).
    pub place: NodeId,
    pub packet: PacketId,
    pub event: TraceEvent,
}

/// Kind of route (as `ip route` types it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
}

/// A route as the trace shows it: the entry a lookup matched, already
/// rendered the way `ip route` prints it (e.g.
/// `172.16.2.0/24 via 172.16.2.0 dev vxlan.1 onlink`), plus the typed parts
/// tools need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteHit {
    pub table: u32,
    pub prefix: Ipv4Net,
    pub rtype: RouteType,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<NodeId>,
    /// The `ip route` line of the entry.
    pub text: Arc<str>,
    /// Where the route came from, if a control plane installed it (`bird`, peer address, ...).
    pub origin: Option<Arc<str>>,
}

/// What the route decision concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteDecision {
    /// For this host: deliver locally (INPUT).
    Local,
    /// Forward (FORWARD) out of a device.
    Forward,
    /// Locally generated, out of a device (OUTPUT).
    Output,
}

/// Netfilter hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }
}

/// A netfilter rule's or policy's outcome for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NfVerdict {
    /// The rule did not match; traversal continues.
    NoMatch,
    /// Matched a non-terminating target (LOG, MARK, TCPMSS, ...); continues.
    Continue,
    Accept,
    Drop,
    Reject,
    Return,
    Jump(Arc<str>),
    Goto(Arc<str>),
    /// NAT mapping applied: before -> after.
    Nat {
        before: Arc<str>,
        after: Arc<str>,
    },
}

/// Result of a neighbour (ARP) table lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighResult {
    /// Entry found and usable: MAC and NUD state name (`PERMANENT`, `REACHABLE`, ...).
    Hit { mac: MacAddr, state: &'static str },
    /// No usable entry: the packet is queued and an ARP request sent.
    Miss { queued: bool },
    /// Resolution failed (no reply after the retries).
    Failed,
    /// No neighbour needed (point-to-point device, e.g. an IPIP tunnel).
    NotNeeded,
}

/// Result of an FDB lookup (bridge or VXLAN device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdbResult {
    /// A bridge port.
    Port(NodeId),
    /// A remote VTEP (VXLAN).
    Remote(Ipv4Addr),
    /// Addressed to the bridge/device itself: up the stack.
    Local,
    /// Unknown destination: flood / head-end replicate to these default destinations.
    Flood(u32),
    /// Unknown destination and nowhere to send it.
    Miss,
}

/// Encapsulation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    Vxlan {
        vni: u32,
        src_port: u16,
        dst_port: u16,
    },
    Ipip,
}

/// Why a packet was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    NoRoute,
    /// A `blackhole`/`unreachable`/`prohibit` route.
    RouteType(RouteType),
    ForwardingDisabled,
    RpFilter,
    TtlExceeded,
    NeighFailed,
    /// Larger than the MTU with DF set.
    FragNeeded {
        mtu: u32,
    },
    /// Netfilter DROP or REJECT: hook, table, chain and rule number (None = policy).
    Netfilter {
        hook: Hook,
        table: &'static str,
        chain: Arc<str>,
        rule: Option<u32>,
    },
    LinkDown,
    NoCarrier,
    QueueFull,
    RandomLoss,
    /// A frame not addressed to this device (wrong MAC, not promiscuous).
    OtherHost,
    /// Martian source or destination.
    Martian,
    /// No socket/listener for the packet (after which an ICMP error may be sent).
    NoSocket,
    /// No VXLAN/IPIP tunnel claims the packet.
    NoTunnel,
    /// A VXLAN device with no FDB entry and no default destination.
    FdbMiss,
    /// Neighbour table overflow (gc_thresh3 reached).
    NeighTableOverflow,
    /// Device has no IPv4 configuration (no address) where one is required.
    NoIpv4,
    /// A malformed packet.
    Malformed(Arc<str>),
    /// Anything else, with the kernel's own wording.
    Other(Arc<str>),
}

impl DropReason {
    /// A stable short name (used in scenario expectations and JSON).
    pub fn code(&self) -> &'static str {
        match self {
            DropReason::NoRoute => "no-route",
            DropReason::RouteType(RouteType::Blackhole) => "blackhole",
            DropReason::RouteType(RouteType::Unreachable) => "unreachable",
            DropReason::RouteType(RouteType::Prohibit) => "prohibit",
            DropReason::RouteType(_) => "route-type",
            DropReason::ForwardingDisabled => "forwarding-disabled",
            DropReason::RpFilter => "rp-filter",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::NeighFailed => "neigh-failed",
            DropReason::FragNeeded { .. } => "frag-needed",
            DropReason::Netfilter { .. } => "netfilter",
            DropReason::LinkDown => "link-down",
            DropReason::NoCarrier => "no-carrier",
            DropReason::QueueFull => "queue-full",
            DropReason::RandomLoss => "random-loss",
            DropReason::OtherHost => "other-host",
            DropReason::Martian => "martian",
            DropReason::NoSocket => "no-socket",
            DropReason::NoTunnel => "no-tunnel",
            DropReason::FdbMiss => "fdb-miss",
            DropReason::NeighTableOverflow => "neigh-table-overflow",
            DropReason::NoIpv4 => "no-ipv4",
            DropReason::Malformed(_) => "malformed",
            DropReason::Other(_) => "other",
        }
    }
}

/// One step of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A packet is created by an application or the kernel: who and what.
    Originate {
        by: Arc<str>,
        summary: Arc<str>,
        dst: Option<Ipv4Addr>,
    },
    /// A device receives a frame (from the wire, its veth peer, or a tunnel).
    Receive { dev: NodeId, len: u32 },
    /// A device transmits a frame.
    Transmit { dev: NodeId, len: u32 },
    /// A frame is on a segment or veth link, arriving at `to` at `arrive`.
    Wire {
        from: NodeId,
        to: NodeId,
        arrive: SimTime,
    },
    /// `ip rule` selected a table.
    Rule { priority: u32, table: u32 },
    /// A FIB lookup: destination and the entry matched (None: no route).
    RouteLookup {
        dst: Ipv4Addr,
        hit: Option<RouteHit>,
        decision: Option<RouteDecision>,
    },
    /// Source address selection for a locally generated packet.
    SourceSelect { src: Ipv4Addr },
    /// A netfilter rule or policy visited.
    Netfilter {
        hook: Hook,
        table: &'static str,
        chain: Arc<str>,
        /// Rule number in the chain, 1-based; None for the chain's policy.
        rule: Option<u32>,
        /// The rule as `iptables -S` prints it (or `policy ACCEPT`).
        text: Arc<str>,
        verdict: NfVerdict,
    },
    /// A neighbour (ARP) table lookup for the next hop.
    NeighLookup {
        dev: NodeId,
        addr: Ipv4Addr,
        result: NeighResult,
    },
    /// The kernel answers an ARP request on behalf of another host (proxy ARP).
    ProxyArp {
        dev: NodeId,
        target: Ipv4Addr,
        delay_ns: u64,
    },
    /// An FDB lookup on a bridge or VXLAN device.
    FdbLookup {
        dev: NodeId,
        mac: MacAddr,
        result: FdbResult,
    },
    /// A MAC address learned on a bridge port or VXLAN device.
    Learn {
        dev: NodeId,
        mac: MacAddr,
        port: Option<NodeId>,
        remote: Option<Ipv4Addr>,
    },
    /// A bridge forwards to one port.
    BridgeForward {
        bridge: NodeId,
        from: NodeId,
        to: NodeId,
    },
    /// A bridge floods to its other ports.
    BridgeFlood {
        bridge: NodeId,
        from: NodeId,
        ports: u32,
    },
    /// A bridge passes the frame up its own stack.
    BridgeLocal { bridge: NodeId },
    /// Encapsulation in a tunnel device.
    Encapsulate {
        dev: NodeId,
        encap: Encap,
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
    },
    /// Decapsulation, the inner frame handed to `dev`.
    Decapsulate {
        dev: NodeId,
        encap: Encap,
        outer_src: Ipv4Addr,
        outer_dst: Ipv4Addr,
    },
    /// TTL decremented while forwarding.
    TtlDecrement { ttl: u8 },
    /// An IPv4 datagram split into fragments.
    Fragment { mtu: u32, count: u32 },
    /// Delivered to a local socket or protocol handler.
    Deliver { to: Arc<str> },
    /// The kernel sends an ICMP message because of this packet (new packet id).
    IcmpError { kind: Arc<str>, reply: PacketId },
    /// A reply packet is generated (ARP reply, ICMP echo reply).
    Reply { reply: PacketId, what: Arc<str> },
    /// A control-plane notification (VXLAN l2miss/l3miss).
    Miss { dev: NodeId, what: Arc<str> },
    /// The packet is dropped.
    Drop { reason: DropReason },
}

/// Where trace records go.
pub trait TraceSink {
    /// Whether records are wanted at all (models skip building events when not).
    fn enabled(&self) -> bool {
        true
    }
    /// Whether records about this packet are wanted (a sink that follows
    /// one packet lets the model skip building the others' events).
    fn wants(&self, _packet: PacketId) -> bool {
        true
    }
    /// Whether the sink needs only the steps that decide a packet's fate
    /// (drops, deliveries, replies, devices): the model may then leave out
    /// texts that cost to build (route lines, rule steps, conntrack tuples).
    fn brief(&self) -> bool {
        false
    }
    fn record(&mut self, rec: TraceRecord);
}

/// Keeps every record.
#[derive(Default, Debug, Clone)]
pub struct VecSink {
    pub records: Vec<TraceRecord>,
}
impl TraceSink for VecSink {
    fn record(&mut self, rec: TraceRecord) {
        self.records.push(rec);
    }
}

/// Counts records (for benchmarks: every step is built, none is kept).
#[derive(Default, Debug, Clone, Copy)]
pub struct CountingSink {
    pub count: u64,
}
impl TraceSink for CountingSink {
    fn record(&mut self, rec: TraceRecord) {
        std::hint::black_box(&rec);
        self.count += 1;
    }
}

/// Drops everything without building it.
#[derive(Default, Debug, Clone, Copy)]
pub struct NullSink;
impl TraceSink for NullSink {
    fn enabled(&self) -> bool {
        false
    }
    fn record(&mut self, _rec: TraceRecord) {}
}

fn name(topo: &Topology, id: NodeId) -> &str {
    topo.name(id)
}

fn verdict_text(v: &NfVerdict) -> String {
    match v {
        NfVerdict::NoMatch => "no match".into(),
        NfVerdict::Continue => "match, continue".into(),
        NfVerdict::Accept => "ACCEPT".into(),
        NfVerdict::Drop => "DROP".into(),
        NfVerdict::Reject => "REJECT".into(),
        NfVerdict::Return => "RETURN".into(),
        NfVerdict::Jump(c) => format!("jump {c}"),
        NfVerdict::Goto(c) => format!("goto {c}"),
        NfVerdict::Nat { before, after } => format!("{before} -> {after}"),
    }
}

/// The sentence for one event, in the manner of the seed article's steps.
pub fn sentence(topo: &Topology, ev: &TraceEvent) -> String {
    match ev {
        TraceEvent::Originate { by, summary, .. } => format!("{by} sends {summary}"),
        TraceEvent::Receive { dev, len } => format!("{}: receive ({len} bytes)", name(topo, *dev)),
        TraceEvent::Transmit { dev, len } => {
            format!("{}: transmit ({len} bytes)", name(topo, *dev))
        }
        TraceEvent::Wire { from, to, arrive } => format!(
            "wire: {} -> {}, arrives at {}",
            topo.path(*from),
            topo.path(*to),
            arrive.fixed()
        ),
        TraceEvent::Rule { priority, table } => {
            format!("ip rule {priority}: lookup {}", table_name(*table))
        }
        TraceEvent::RouteLookup { dst, hit, decision } => match hit {
            Some(h) => {
                let mut s = format!("route lookup in table {}: {}", table_name(h.table), h.text);
                if let Some(o) = &h.origin {
                    let _ = write!(s, " (learned from {o})");
                }
                match decision {
                    Some(RouteDecision::Local) => s.push_str(" => local delivery (INPUT)"),
                    Some(RouteDecision::Forward) => s.push_str(" => forward (FORWARD)"),
                    Some(RouteDecision::Output) => s.push_str(" => output"),
                    None => {}
                }
                s
            }
            None => format!("route lookup for {dst}: no route"),
        },
        TraceEvent::SourceSelect { src } => format!("source address {src}"),
        TraceEvent::Netfilter {
            hook,
            table,
            chain,
            rule,
            text,
            verdict,
        } => match rule {
            Some(n) => format!(
                "{}: {table} {chain} rule {n} `{text}`: {}",
                hook.as_str(),
                verdict_text(verdict)
            ),
            None => format!("{}: {table} {chain} {text}", hook.as_str()),
        },
        TraceEvent::NeighLookup { dev, addr, result } => {
            let d = name(topo, *dev);
            match result {
                NeighResult::Hit { mac, state } => {
                    format!(
                        "neighbour {addr} on {d}: {} {mac}",
                        state.to_ascii_lowercase()
                    )
                }
                NeighResult::Miss { queued: true } => {
                    format!("neighbour {addr} on {d}: miss, packet queued, ARP request sent")
                }
                NeighResult::Miss { queued: false } => {
                    format!("neighbour {addr} on {d}: miss, resolution in progress, packet queued")
                }
                NeighResult::Failed => format!("neighbour {addr} on {d}: failed"),
                NeighResult::NotNeeded => format!("{d}: no neighbour needed (point-to-point)"),
            }
        }
        TraceEvent::ProxyArp {
            dev,
            target,
            delay_ns,
        } => format!(
            "{}: proxy ARP answers for {target} (delayed {})",
            name(topo, *dev),
            crate::time::SimDuration::from_nanos(*delay_ns)
        ),
        TraceEvent::FdbLookup { dev, mac, result } => {
            let d = name(topo, *dev);
            match result {
                FdbResult::Port(p) => format!("fdb {mac} on {d}: port {}", name(topo, *p)),
                FdbResult::Remote(ip) => format!("fdb {mac} on {d}: dst {ip}"),
                FdbResult::Local => format!("fdb {mac} on {d}: local"),
                FdbResult::Flood(n) => format!("fdb {mac} on {d}: unknown, flood to {n}"),
                FdbResult::Miss => format!("fdb {mac} on {d}: no entry"),
            }
        }
        TraceEvent::Learn {
            dev,
            mac,
            port,
            remote,
        } => {
            let d = name(topo, *dev);
            match (port, remote) {
                (Some(p), _) => format!("{d}: learned {mac} on port {}", name(topo, *p)),
                (None, Some(r)) => format!("{d}: learned {mac} at remote {r}"),
                _ => format!("{d}: learned {mac}"),
            }
        }
        TraceEvent::BridgeForward { bridge, from, to } => format!(
            "bridge {}: forward {} -> {}",
            name(topo, *bridge),
            name(topo, *from),
            name(topo, *to)
        ),
        TraceEvent::BridgeFlood {
            bridge,
            from,
            ports,
        } => format!(
            "bridge {}: flood from {} to {ports} port(s)",
            name(topo, *bridge),
            name(topo, *from)
        ),
        TraceEvent::BridgeLocal { bridge } => {
            format!(
                "bridge {}: for the bridge itself, up the stack",
                name(topo, *bridge)
            )
        }
        TraceEvent::Encapsulate {
            dev,
            encap,
            outer_src,
            outer_dst,
        } => match encap {
            Encap::Vxlan {
                vni,
                src_port,
                dst_port,
            } => format!(
                "{}: VXLAN encapsulate vni {vni}, UDP {outer_src}:{src_port} -> {outer_dst}:{dst_port}",
                name(topo, *dev)
            ),
            Encap::Ipip => format!(
                "{}: IPIP encapsulate {outer_src} -> {outer_dst} (proto 4)",
                name(topo, *dev)
            ),
        },
        TraceEvent::Decapsulate {
            dev,
            encap,
            outer_src,
            outer_dst,
        } => match encap {
            Encap::Vxlan {
                vni,
                src_port,
                dst_port,
            } => format!(
                "VXLAN decapsulate vni {vni} from {outer_src}:{src_port} -> {outer_dst}:{dst_port}, inner frame to {}",
                name(topo, *dev)
            ),
            Encap::Ipip => format!(
                "IPIP decapsulate {outer_src} -> {outer_dst}, inner packet to {}",
                name(topo, *dev)
            ),
        },
        TraceEvent::TtlDecrement { ttl } => format!("TTL decremented to {ttl}"),
        TraceEvent::Fragment { mtu, count } => format!("fragmented into {count} for MTU {mtu}"),
        TraceEvent::Deliver { to } => format!("delivered to {to}"),
        TraceEvent::IcmpError { kind, reply } => format!("sends ICMP {kind} (packet #{})", reply.0),
        TraceEvent::Reply { reply, what } => format!("replies with {what} (packet #{})", reply.0),
        TraceEvent::Miss { dev, what } => format!("{}: {what}", name(topo, *dev)),
        TraceEvent::Drop { reason } => format!("DROP: {}", drop_text(reason)),
    }
}

/// Table names as iproute2 prints them.
pub fn table_name(t: u32) -> String {
    match t {
        255 => "local".into(),
        254 => "main".into(),
        253 => "default".into(),
        n => n.to_string(),
    }
}

/// A drop reason in words.
pub fn drop_text(r: &DropReason) -> String {
    match r {
        DropReason::NoRoute => "no route to host (network unreachable)".into(),
        DropReason::RouteType(t) => format!("{} route", t.as_str()),
        DropReason::ForwardingDisabled => "forwarding is disabled (net.ipv4.ip_forward=0)".into(),
        DropReason::RpFilter => "reverse path filter (rp_filter)".into(),
        DropReason::TtlExceeded => "TTL exceeded".into(),
        DropReason::NeighFailed => "neighbour resolution failed (no ARP reply)".into(),
        DropReason::FragNeeded { mtu } => {
            format!("packet larger than MTU {mtu} with DF set (fragmentation needed)")
        }
        DropReason::Netfilter {
            hook,
            table,
            chain,
            rule,
        } => match rule {
            Some(n) => format!("netfilter {table} {chain} rule {n} ({})", hook.as_str()),
            None => format!("netfilter {table} {chain} policy ({})", hook.as_str()),
        },
        DropReason::LinkDown => "device is down".into(),
        DropReason::NoCarrier => "no carrier (peer down or unattached)".into(),
        DropReason::QueueFull => "queue full".into(),
        DropReason::RandomLoss => "random loss on the link".into(),
        DropReason::OtherHost => "frame for another host".into(),
        DropReason::Martian => "martian address".into(),
        DropReason::NoSocket => "no socket listening".into(),
        DropReason::NoTunnel => "no tunnel for this packet".into(),
        DropReason::FdbMiss => "no FDB entry and no default destination".into(),
        DropReason::NeighTableOverflow => "neighbour table overflow".into(),
        DropReason::NoIpv4 => "device has no IPv4 address".into(),
        DropReason::Malformed(s) => format!("malformed packet: {s}"),
        DropReason::Other(s) => s.to_string(),
    }
}

/// One record as a text line: `  12.000345678  node1:test3  #1  veth3: transmit (98 bytes)`.
pub fn render_text(topo: &Topology, rec: &TraceRecord) -> String {
    format!(
        "{} {:<20} #{:<4} {}",
        rec.time.fixed(),
        topo.path(rec.place),
        rec.packet.0,
        sentence(topo, &rec.event)
    )
}

/// One record as a JSON object (one line).
pub fn render_json(topo: &Topology, rec: &TraceRecord) -> String {
    let v = serde_json::json!({
        "time_ns": rec.time.as_nanos(),
        "place": topo.path(rec.place),
        "packet": rec.packet.0,
        "kind": kind_name(&rec.event),
        "text": sentence(topo, &rec.event),
        "drop": match &rec.event { TraceEvent::Drop { reason } => Some(reason.code()), _ => None },
    });
    v.to_string()
}

/// The event's variant name in kebab case (stable; used by JSON and filters).
pub fn kind_name(ev: &TraceEvent) -> &'static str {
    match ev {
        TraceEvent::Originate { .. } => "originate",
        TraceEvent::Receive { .. } => "receive",
        TraceEvent::Transmit { .. } => "transmit",
        TraceEvent::Wire { .. } => "wire",
        TraceEvent::Rule { .. } => "rule",
        TraceEvent::RouteLookup { .. } => "route-lookup",
        TraceEvent::SourceSelect { .. } => "source-select",
        TraceEvent::Netfilter { .. } => "netfilter",
        TraceEvent::NeighLookup { .. } => "neigh-lookup",
        TraceEvent::ProxyArp { .. } => "proxy-arp",
        TraceEvent::FdbLookup { .. } => "fdb-lookup",
        TraceEvent::Learn { .. } => "learn",
        TraceEvent::BridgeForward { .. } => "bridge-forward",
        TraceEvent::BridgeFlood { .. } => "bridge-flood",
        TraceEvent::BridgeLocal { .. } => "bridge-local",
        TraceEvent::Encapsulate { .. } => "encapsulate",
        TraceEvent::Decapsulate { .. } => "decapsulate",
        TraceEvent::TtlDecrement { .. } => "ttl-decrement",
        TraceEvent::Fragment { .. } => "fragment",
        TraceEvent::Deliver { .. } => "deliver",
        TraceEvent::IcmpError { .. } => "icmp-error",
        TraceEvent::Reply { .. } => "reply",
        TraceEvent::Miss { .. } => "miss",
        TraceEvent::Drop { .. } => "drop",
    }
}
