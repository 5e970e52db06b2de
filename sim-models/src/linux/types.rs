//! The state of the Linux model: hosts, namespaces, devices, segments.

use std::net::Ipv4Addr;

use indexmap::IndexMap;
use sim_core::net::Ipv4Net;
use sim_core::rng::{Probability, SimRng};
use sim_core::sched::EventId;
use sim_core::time::{SimDuration, SimTime};
use sim_core::topo::{DeviceKind, NodeId};
use sim_core::wire::MacAddr;

use crate::cmd::Scope;
use crate::linux::fib::Fib;
use crate::linux::neigh::NeighTable;
use crate::linux::netfilter::Netfilter;

macro_rules! typed_id {
    ($($name:ident),*) => {$(
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            pub fn ix(self) -> usize { self.0 as usize }
        }
    )*};
}
typed_id!(HostId, NsId, DevId, SegId);

/// A machine: one kernel, a root namespace and any number of named ones.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub node: NodeId,
    pub root: NsId,
    pub namespaces: IndexMap<String, NsId>,
    /// Kernel modules loaded (`modprobe`).
    pub modules: Vec<String>,
    /// `net.ipv4.neigh.default.gc_thresh1/2/3`: the ARP table is one per
    /// kernel, shared by every namespace of the host.
    pub gc_thresh: [u32; 3],
    /// Entries in the host's ARP table, all namespaces together.
    pub neigh_entries: u32,
    /// Random draws of the neighbour subsystem (proxy delay, reachable time).
    pub neigh_rng: SimRng,
}

/// Per-device IPv4 configuration (`net.ipv4.conf.X.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevConf {
    pub forwarding: bool,
    pub proxy_arp: bool,
    pub rp_filter: u8,
    pub accept_local: bool,
    pub send_redirects: bool,
}

impl Default for DevConf {
    /// The kernel's built-in defaults (a new namespace gets these, not the
    /// init namespace's distribution-tuned values).
    fn default() -> Self {
        DevConf {
            forwarding: false,
            proxy_arp: false,
            rp_filter: 0,
            accept_local: false,
            send_redirects: true,
        }
    }
}

/// Neighbour parameters (`net.ipv4.neigh.X.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighParms {
    pub proxy_delay: SimDuration,
    pub retrans_time: SimDuration,
    pub base_reachable_time: SimDuration,
    pub delay_first_probe_time: SimDuration,
    pub mcast_solicit: u32,
    pub ucast_solicit: u32,
    /// Bytes of packets queued while a neighbour resolves (`unres_qlen_bytes`).
    pub unres_qlen_bytes: u32,
}

impl Default for NeighParms {
    /// `arp_tbl` defaults from net/ipv4/arp.c.
    fn default() -> Self {
        NeighParms {
            proxy_delay: SimDuration::from_millis(800),
            retrans_time: SimDuration::from_secs(1),
            base_reachable_time: SimDuration::from_secs(30),
            delay_first_probe_time: SimDuration::from_secs(5),
            mcast_solicit: 3,
            ucast_solicit: 3,
            unres_qlen_bytes: 212_992,
        }
    }
}

/// Namespace-wide sysctls.
#[derive(Clone, Debug)]
pub struct NsSysctl {
    pub conf_all: DevConf,
    pub conf_default: DevConf,
    pub neigh_default: NeighParms,
    pub default_ttl: u8,
    pub bridge_nf_call_iptables: bool,
    pub ip_local_port_range: (u16, u16),
}

impl Default for NsSysctl {
    fn default() -> Self {
        NsSysctl {
            conf_all: DevConf::default(),
            conf_default: DevConf::default(),
            neigh_default: NeighParms::default(),
            default_ttl: 64,
            // A new namespace passes bridged traffic to iptables once br_netfilter is loaded.
            bridge_nf_call_iptables: true,
            ip_local_port_range: (32768, 60999),
        }
    }
}

/// An IPv4 address on a device (`ip addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub dev: DevId,
    pub local: Ipv4Addr,
    pub plen: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub scope: Scope,
    pub secondary: bool,
}

impl IfAddr {
    pub fn net(&self) -> Ipv4Net {
        Ipv4Net {
            addr: self.local,
            len: self.plen,
        }
    }
}

/// A network namespace.
#[derive(Debug)]
pub struct Netns {
    pub host: HostId,
    /// Empty for the host's root namespace.
    pub name: String,
    pub node: NodeId,
    pub alive: bool,
    /// Devices by name, in creation (ifindex) order.
    pub devs: IndexMap<String, DevId>,
    pub next_ifindex: u32,
    pub addrs: Vec<IfAddr>,
    pub fib: Fib,
    pub neigh: NeighTable,
    pub sysctl: NsSysctl,
    pub nf: Netfilter,
    /// IPv4 reassembly queues.
    pub frags: crate::linux::frag::FragTable,
    /// Next IPv4 identification per destination is approximated by one counter.
    pub ip_ident: u16,
    /// Change counters of the namespace's tables (tools snapshot tables lazily by them).
    pub generation: NsGeneration,
}

/// Change counters of a namespace's tables, bumped wherever they change: a
/// copy of the tables taken at a given count is current while it is unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NsGeneration {
    /// Routes, rules, addresses, links, iptables, sysctls (commands).
    pub config: u64,
    /// The neighbour (ARP) table.
    pub neigh: u64,
    /// The bridge and VXLAN forwarding databases of the namespace's devices.
    pub fdb: u64,
}

impl NsGeneration {
    /// One count that grows with every change.
    pub fn total(&self) -> u64 {
        self.config + self.neigh + self.fdb
    }
}

/// Per-kind device state.
#[derive(Debug, Clone)]
pub enum DevKind {
    Loopback,
    Nic { segment: Option<SegId> },
    Veth { peer: Option<DevId> },
    Bridge(Box<Bridge>),
    Vxlan(Box<Vxlan>),
    Ipip(Box<Ipip>),
    Dummy,
}

impl DevKind {
    pub fn topo_kind(&self) -> DeviceKind {
        match self {
            DevKind::Loopback => DeviceKind::Loopback,
            DevKind::Nic { .. } => DeviceKind::Nic,
            DevKind::Veth { .. } => DeviceKind::Veth,
            DevKind::Bridge(_) => DeviceKind::Bridge,
            DevKind::Vxlan(_) => DeviceKind::Vxlan,
            DevKind::Ipip(_) => DeviceKind::Ipip,
            DevKind::Dummy => DeviceKind::Dummy,
        }
    }
    /// ARP-less devices (point-to-point tunnels, loopback).
    pub fn noarp(&self) -> bool {
        matches!(self, DevKind::Ipip(_) | DevKind::Loopback)
    }
}

/// A learned or static bridge FDB entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeFdb {
    pub port: DevId,
    pub is_local: bool,
    pub is_static: bool,
    pub updated: SimTime,
}

#[derive(Debug, Clone)]
pub struct Bridge {
    pub ports: Vec<DevId>,
    pub fdb: std::collections::BTreeMap<MacAddr, BridgeFdb>,
    pub ageing_time: SimDuration,
    /// Whether the bridge's MAC was set by hand (else it follows the lowest port MAC).
    pub mac_fixed: bool,
}

/// One VXLAN FDB destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanRdst {
    pub dst: Ipv4Addr,
    pub port: Option<u16>,
    pub vni: Option<u32>,
}

/// An FDB entry's destinations: one inline (all but head-end replication
/// lists), more on the heap.
pub type VxlanRdsts = smallvec::SmallVec<[VxlanRdst; 1]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanFdb {
    pub mac: MacAddr,
    pub rdsts: VxlanRdsts,
    pub permanent: bool,
    pub updated: SimTime,
}

/// A VXLAN device's FDB: entries in insertion order (as `bridge fdb show`
/// lists them), indexed by MAC (a flannel node holds one per other node:
/// thousands).
#[derive(Debug, Clone, Default)]
pub struct VxlanFdbTable {
    entries: Vec<VxlanFdb>,
    index: std::collections::BTreeMap<MacAddr, u32>,
}

impl VxlanFdbTable {
    pub fn iter(&self) -> std::slice::Iter<'_, VxlanFdb> {
        self.entries.iter()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn get(&self, mac: MacAddr) -> Option<&VxlanFdb> {
        self.index.get(&mac).map(|&i| &self.entries[i as usize])
    }
    pub fn get_mut(&mut self, mac: MacAddr) -> Option<&mut VxlanFdb> {
        self.index.get(&mac).map(|&i| &mut self.entries[i as usize])
    }
    /// Appends an entry for a MAC the table does not hold.
    pub fn push(&mut self, f: VxlanFdb) {
        debug_assert!(!self.index.contains_key(&f.mac));
        self.index.insert(f.mac, self.entries.len() as u32);
        self.entries.push(f);
    }
    /// Removes the entry for `mac`, keeping the others' order.
    pub fn remove(&mut self, mac: MacAddr) -> Option<VxlanFdb> {
        let i = self.index.remove(&mac)?;
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        Some(self.entries.remove(i as usize))
    }
}

impl<'a> IntoIterator for &'a VxlanFdbTable {
    type Item = &'a VxlanFdb;
    type IntoIter = std::slice::Iter<'a, VxlanFdb>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[derive(Debug, Clone)]
pub struct Vxlan {
    pub vni: u32,
    pub dstport: u16,
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub group: Option<Ipv4Addr>,
    pub lower: Option<DevId>,
    pub ttl: u8,
    pub srcport: (u16, u16),
    pub learning: bool,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
    pub ageing: SimDuration,
    /// FDB in insertion order; the all-zeros MAC is the default destination.
    pub fdb: VxlanFdbTable,
}

#[derive(Debug, Clone)]
pub struct Ipip {
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    /// 0 = inherit the inner TTL.
    pub ttl: u8,
    pub lower: Option<DevId>,
    /// `tunl0`, the fallback device that `modprobe ipip` creates.
    pub fallback: bool,
    /// Outer DF set (iproute2's default `pmtudisc`; tunl0 is created without it).
    pub pmtudisc: bool,
}

/// Per-device counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// A network device.
#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub ns: NsId,
    pub node: NodeId,
    pub alive: bool,
    pub ifindex: u32,
    pub kind: DevKind,
    pub mac: MacAddr,
    pub mtu: u32,
    pub admin_up: bool,
    pub master: Option<DevId>,
    pub conf: DevConf,
    pub neigh: NeighParms,
    pub stats: DevStats,
    /// Transmit serialization: the time the device's link is free again.
    pub tx_free_at: SimTime,
    /// Link timing for the device's transmit side (veth).
    pub link: LinkParams,
    /// The transmit queue's limit in bytes on the wire (a drop-tail qdisc in
    /// front of a link with a bandwidth): `DEFAULT_TXQ_BYTES` unless set.
    pub txq_bytes: u64,
    /// `tcpdump -i DEV` captures taken on this device.
    pub captured: bool,
    /// The operational state the kernel stored when the device, up without
    /// carrier, last had a link event (default_operstate):
    /// LOWERLAYERDOWN (true) or DOWN (false).
    pub lower_layer_down: bool,
}

/// Timing of a point-to-point link or a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    pub latency: SimDuration,
    /// Bits per second; 0 = no serialization delay.
    pub bandwidth_bps: u64,
    pub loss: Probability,
}

/// The default transmit queue: txqueuelen 1000 of full-size frames, counted
/// as they occupy the wire (1514 bytes plus preamble, FCS and gap: 1538).
pub const DEFAULT_TXQ_BYTES: u64 = 1000 * 1538;

impl LinkParams {
    pub const VETH: LinkParams = LinkParams {
        latency: SimDuration::from_nanos(0),
        bandwidth_bps: 0,
        loss: Probability::ZERO,
    };
}

/// An L2 network: a learning switch joining NICs.
#[derive(Debug)]
pub struct Segment {
    pub name: String,
    pub node: NodeId,
    pub link: LinkParams,
    pub mtu: u32,
    pub ports: Vec<DevId>,
    pub fdb: std::collections::BTreeMap<MacAddr, DevId>,
    pub rng: SimRng,
}

/// What an executed command prints, and whether it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    pub stdout: String,
    pub stderr: String,
    pub failed: bool,
}

impl CmdOutput {
    pub fn ok(stdout: impl Into<String>) -> Self {
        CmdOutput {
            stdout: stdout.into(),
            stderr: String::new(),
            failed: false,
        }
    }
    pub fn err(stderr: impl Into<String>) -> Self {
        CmdOutput {
            stdout: String::new(),
            stderr: stderr.into(),
            failed: true,
        }
    }
}

/// A pending timer held by the model (so it can be cancelled).
pub type Timer = Option<EventId>;
