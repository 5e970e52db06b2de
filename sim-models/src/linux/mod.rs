//! The Linux networking model.
//!
//! A [`World`] holds hosts (one kernel each), their network namespaces, the
//! devices in them, and the L2 segments joining NICs. Packets move as events
//! on the scheduler; every step is traced. The model does no IO: commands
//! come in as parsed [`crate::cmd::Command`] values and their output goes
//! back as [`CmdOutput`] values.

pub mod apps;
pub mod bird;
pub mod capture;
pub mod exec;
pub mod fib;
pub mod frag;
pub mod inject;
pub mod neigh;
pub mod netfilter;
pub mod show;
pub mod socket;
pub mod stack;
pub mod tcp;
pub mod traffic;
pub mod types;
pub mod udp;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use indexmap::IndexMap;
use sim_core::packet::{Packet, PacketId};
use sim_core::rng::{RootSeed, SimRng};
use sim_core::sched::{EventId, Scheduler};
use sim_core::time::{SimDuration, SimTime};
use sim_core::topo::{DeviceKind, EdgeKind, NodeId, Topology};
use sim_core::trace::{TraceEvent, TraceRecord, TraceSink};
use sim_core::wire::MacAddr;

pub use types::*;

use crate::linux::apps::App;

/// Events the Linux model schedules.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame arrives at a device's receive side.
    Rx { dev: DevId, pkt: Packet },
    /// A frame arrives at a segment's switch from a port.
    SegRx {
        seg: SegId,
        from: DevId,
        pkt: Packet,
    },
    /// A neighbour entry's timer fires.
    NeighTimer {
        ns: NsId,
        dev: DevId,
        addr: std::net::Ipv4Addr,
    },
    /// A delayed proxy-ARP reply is sent.
    ProxyArpReply { dev: DevId, pkt: Packet },
    /// A timeline command runs (index into the owner's timeline).
    Command { index: usize },
    /// An application timer (ping interval, timeout).
    App { app: usize, tag: u32 },
    /// A TCP socket's timer (retransmission, delayed ACK).
    Tcp { sock: u32, timer: tcp::TcpTimer },
}

/// The context a model step runs in: the time, the scheduler and the trace.
pub struct Cx<'a> {
    pub now: SimTime,
    pub sched: &'a mut Scheduler<Event>,
    pub sink: &'a mut dyn TraceSink,
    /// `sink.enabled()` and `sink.brief()`, asked once when the context is
    /// made rather than at every step of every packet.
    tracing: bool,
    brief: bool,
}

impl<'a> Cx<'a> {
    pub fn new(
        now: SimTime,
        sched: &'a mut Scheduler<Event>,
        sink: &'a mut dyn TraceSink,
    ) -> Cx<'a> {
        let tracing = sink.enabled();
        let brief = sink.brief();
        Cx {
            now,
            sched,
            sink,
            tracing,
            brief,
        }
    }

    /// Whether the sink records steps (build trace events only then).
    #[inline]
    pub fn tracing(&self) -> bool {
        self.tracing
    }
}

impl Cx<'_> {
    /// Whether the sink wants this packet's steps in full (their texts).
    pub fn detail(&self, pkt: PacketId) -> bool {
        self.tracing && !self.brief && self.sink.wants(pkt)
    }

    pub fn at(&mut self, d: SimDuration, ev: Event) -> EventId {
        self.sched.schedule_at(self.now + d, ev)
    }
}

/// Output lines produced during a run (command output, ping output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub time: SimTime,
    /// `node1` or `node1:test3`.
    pub place: String,
    pub text: String,
}

/// The whole modelled network.
pub struct World {
    pub topo: Topology,
    pub hosts: Vec<Host>,
    pub namespaces: Vec<Netns>,
    pub devices: Vec<Device>,
    pub segments: Vec<Segment>,
    pub host_by_name: IndexMap<String, HostId>,
    pub seg_by_name: IndexMap<String, SegId>,
    pub seed: RootSeed,
    /// Random MAC addresses for devices (one stream per host, so adding a host
    /// does not change another's MACs).
    mac_rngs: Vec<SimRng>,
    next_packet: u64,
    pub apps: Vec<App>,
    /// TCP and UDP sockets.
    pub sockets: socket::Sockets,
    pub captures: capture::Captures,
    pub output: Vec<OutputLine>,
    /// Warnings (iproute2's notes, such as VXLAN's default port).
    pub warnings: Vec<OutputLine>,
    /// BIRD's configuration per host (the scenario's `bgp` section).
    pub bird_setups: std::collections::BTreeMap<HostId, std::sync::Arc<bird::BirdSetup>>,
    /// The BIRD application of each host that ever ran one.
    pub bird_apps: std::collections::BTreeMap<HostId, usize>,
    /// Every kernel route change BIRD made, in time order (read them with
    /// `bgp_changes_since`).
    pub bgp_changes: bird::BgpChanges,
    pub bgp_counters: bird::BgpCounters,
    /// BGP as converged by the fabric (the scenario's BGP engine `fabric`),
    /// installed by `BirdCmd::FabricInstall` steps.
    pub bgp_fabric: Option<std::sync::Arc<bird::FabricBgp>>,
    /// The texts of BIRD's routes' origins (peer, next hop, peer's name, AS
    /// path), shared by every node holding such a route.
    pub(crate) route_origins: std::collections::BTreeMap<
        (std::net::Ipv4Addr, std::net::Ipv4Addr, String, String),
        fib::Origin,
    >,
    /// Per route attributes of the BGP fabric (`FabricRoutes::attrs`): the
    /// peer's name and origin text last given (`World::fabric_origin`).
    pub(crate) fabric_origins: Vec<Option<(String, fib::Origin)>>,
}

impl World {
    pub fn new(seed: RootSeed) -> World {
        World {
            topo: Topology::new(),
            hosts: Vec::new(),
            namespaces: Vec::new(),
            devices: Vec::new(),
            segments: Vec::new(),
            host_by_name: IndexMap::new(),
            seg_by_name: IndexMap::new(),
            seed,
            mac_rngs: Vec::new(),
            next_packet: 1,
            apps: Vec::new(),
            sockets: Default::default(),
            captures: Default::default(),
            output: Vec::new(),
            warnings: Vec::new(),
            bird_setups: Default::default(),
            bird_apps: Default::default(),
            bgp_changes: Default::default(),
            bgp_counters: Default::default(),
            bgp_fabric: None,
            route_origins: Default::default(),
            fabric_origins: Vec::new(),
        }
    }

    /// The id the next packet will get.
    pub fn peek_packet_id(&self) -> PacketId {
        PacketId(self.next_packet)
    }

    pub fn next_packet_id(&mut self) -> PacketId {
        let id = PacketId(self.next_packet);
        self.next_packet += 1;
        id
    }

    /// The neighbour subsystem's random stream of the kernel `ns` belongs to
    /// (proxy-ARP delays, reachable times): one per host, so adding a host
    /// never changes another's draws.
    pub fn neigh_rng(&mut self, ns: NsId) -> &mut SimRng {
        let h = self.namespaces[ns.ix()].host;
        &mut self.hosts[h.ix()].neigh_rng
    }

    // ---- assembly -------------------------------------------------------

    pub fn add_segment(&mut self, name: &str, link: LinkParams, mtu: u32) -> SegId {
        let id = SegId(self.segments.len() as u32);
        let node = self.topo.add_segment(name);
        self.segments.push(Segment {
            name: name.to_string(),
            node,
            link,
            mtu,
            ports: Vec::new(),
            fdb: Default::default(),
            rng: self.seed.stream(&format!("segment:{name}:loss")),
        });
        self.seg_by_name.insert(name.to_string(), id);
        id
    }

    pub fn add_host(&mut self, name: &str) -> HostId {
        let id = HostId(self.hosts.len() as u32);
        let node = self.topo.add_host(name);
        self.mac_rngs
            .push(self.seed.stream(&format!("host:{name}:mac")));
        self.hosts.push(Host {
            name: name.to_string(),
            node,
            root: NsId(0),
            namespaces: IndexMap::new(),
            modules: Vec::new(),
            gc_thresh: [128, 512, 1024],
            neigh_rng: self.seed.stream(&format!("host:{name}:neigh")),
            neigh_entries: 0,
        });
        self.host_by_name.insert(name.to_string(), id);
        let root = self.new_namespace(id, "");
        self.hosts[id.ix()].root = root;
        id
    }

    /// Creates a namespace (with its loopback device, down, as the kernel does).
    pub fn new_namespace(&mut self, host: HostId, name: &str) -> NsId {
        let id = NsId(self.namespaces.len() as u32);
        let node = if name.is_empty() {
            self.topo.add_root_namespace(self.hosts[host.ix()].node)
        } else {
            self.topo.add_namespace(self.hosts[host.ix()].node, name)
        };
        self.namespaces.push(Netns {
            host,
            name: name.to_string(),
            node,
            alive: true,
            devs: IndexMap::new(),
            next_ifindex: 1,
            addrs: Vec::new(),
            fib: Default::default(),
            neigh: Default::default(),
            sysctl: Default::default(),
            nf: Default::default(),
            frags: Default::default(),
            ip_ident: 0,
            generation: Default::default(),
        });
        if !name.is_empty() {
            self.hosts[host.ix()]
                .namespaces
                .insert(name.to_string(), id);
        }
        let lo = self.new_device(id, "lo", DevKind::Loopback, MacAddr::ZERO, 65536);
        let _ = lo;
        id
    }

    /// A random locally administered unicast MAC, from the host's stream.
    pub fn random_mac(&mut self, host: HostId) -> MacAddr {
        let r = &mut self.mac_rngs[host.ix()];
        let v = r.next_u64().to_be_bytes();
        let mut m = [v[0], v[1], v[2], v[3], v[4], v[5]];
        m[0] = (m[0] & 0xfe) | 0x02;
        MacAddr(m)
    }

    /// Creates a device in `ns`.
    pub fn new_device(
        &mut self,
        ns: NsId,
        name: &str,
        kind: DevKind,
        mac: MacAddr,
        mtu: u32,
    ) -> DevId {
        let id = DevId(self.devices.len() as u32);
        let node = self
            .topo
            .add_device(self.namespaces[ns.ix()].node, kind.topo_kind(), name);
        let ifindex = self.alloc_ifindex(ns);
        self.insert_dev(ns, name, id, ifindex);
        let n = &self.namespaces[ns.ix()];
        let conf = n.sysctl.conf_default;
        let neigh = n.sysctl.neigh_default;
        self.devices.push(Device {
            name: name.to_string(),
            ns,
            node,
            alive: true,
            ifindex,
            kind,
            mac,
            mtu,
            admin_up: false,
            master: None,
            conf,
            neigh,
            stats: DevStats::default(),
            tx_free_at: SimTime::ZERO,
            link: LinkParams::VETH,
            txq_bytes: DEFAULT_TXQ_BYTES,
            captured: false,
            lower_layer_down: false,
        });
        id
    }

    /// A new ifindex in `ns` (dev_index_reserve): the kernel allocates
    /// cyclically per namespace (xa_alloc_cyclic), the first free index from
    /// the one after the last it allocated, skipping indexes in use (such as
    /// those of devices moved in with their own).
    pub(crate) fn alloc_ifindex(&mut self, ns: NsId) -> u32 {
        let n = &self.namespaces[ns.ix()];
        let mut i = n.next_ifindex;
        while n.devs.values().any(|&o| self.devices[o.ix()].ifindex == i) {
            i += 1;
        }
        self.namespaces[ns.ix()].next_ifindex = i + 1;
        i
    }

    /// Enters a device in its namespace's list, which is kept in ifindex
    /// order (the order of the kernel's dumps).
    pub(crate) fn insert_dev(&mut self, ns: NsId, name: &str, id: DevId, ifindex: u32) {
        let n = &self.namespaces[ns.ix()];
        let pos = n
            .devs
            .values()
            .position(|&o| o.ix() < self.devices.len() && self.devices[o.ix()].ifindex > ifindex)
            .unwrap_or(n.devs.len());
        self.namespaces[ns.ix()]
            .devs
            .shift_insert(pos, name.to_string(), id);
    }

    /// Adds a NIC to a host's root namespace, attached to a segment.
    pub fn add_nic(&mut self, host: HostId, name: &str, seg: SegId, mac: Option<MacAddr>) -> DevId {
        let mac = mac.unwrap_or_else(|| self.random_mac(host));
        let root = self.hosts[host.ix()].root;
        let mtu = self.segments[seg.ix()].mtu;
        let dev = self.new_device(root, name, DevKind::Nic { segment: Some(seg) }, mac, mtu);
        self.segments[seg.ix()].ports.push(dev);
        let seg_node = self.segments[seg.ix()].node;
        let dnode = self.devices[dev.ix()].node;
        self.topo.connect(dnode, seg_node, EdgeKind::AttachedTo);
        self.devices[dev.ix()].link = self.segments[seg.ix()].link;
        dev
    }

    // ---- lookups --------------------------------------------------------

    pub fn dev(&self, d: DevId) -> &Device {
        &self.devices[d.ix()]
    }
    pub fn dev_mut(&mut self, d: DevId) -> &mut Device {
        &mut self.devices[d.ix()]
    }
    pub fn ns(&self, n: NsId) -> &Netns {
        &self.namespaces[n.ix()]
    }
    pub fn ns_mut(&mut self, n: NsId) -> &mut Netns {
        &mut self.namespaces[n.ix()]
    }
    pub fn dev_by_name(&self, ns: NsId, name: &str) -> Option<DevId> {
        self.namespaces[ns.ix()].devs.get(name).copied()
    }
    pub fn lo(&self, ns: NsId) -> DevId {
        self.namespaces[ns.ix()].devs["lo"]
    }

    /// Resolves `host` or `host:netns`.
    pub fn find_ns(&self, spec: &str) -> Option<NsId> {
        let (h, n) = match spec.split_once(':') {
            Some((h, n)) => (h, Some(n)),
            None => (spec, None),
        };
        let host = &self.hosts[self.host_by_name.get(h)?.ix()];
        match n {
            None | Some("") => Some(host.root),
            Some(n) => host
                .namespaces
                .get(n)
                .copied()
                .filter(|id| self.namespaces[id.ix()].alive),
        }
    }

    /// `node1` or `node1:test3`.
    pub fn ns_label(&self, ns: NsId) -> String {
        let n = &self.namespaces[ns.ix()];
        let h = &self.hosts[n.host.ix()].name;
        if n.name.is_empty() {
            h.clone()
        } else {
            format!("{h}:{}", n.name)
        }
    }

    /// Whether a device is administratively up and has carrier.
    pub fn oper_up(&self, d: DevId) -> bool {
        let dev = &self.devices[d.ix()];
        dev.alive && dev.admin_up && self.carrier(d)
    }

    /// Carrier as the kernel reports it.
    /// netif_carrier_ok: a veth has carrier only while both ends are up
    /// ([`World::carrier`] answers for a device assumed up).
    pub fn carrier_ok(&self, d: DevId) -> bool {
        let dev = &self.devices[d.ix()];
        match dev.kind {
            DevKind::Veth { .. } => dev.admin_up && self.carrier(d),
            _ => self.carrier(d),
        }
    }

    pub fn carrier(&self, d: DevId) -> bool {
        let dev = &self.devices[d.ix()];
        match &dev.kind {
            DevKind::Veth { peer } => {
                peer.is_some_and(|p| self.devices[p.ix()].admin_up && self.devices[p.ix()].alive)
            }
            DevKind::Nic { segment } => segment.is_some(),
            // A bridge with ports has carrier when one of them is up; with none, it has carrier.
            DevKind::Bridge(b) => b.ports.is_empty() || b.ports.iter().any(|p| self.oper_up(*p)),
            _ => true,
        }
    }

    // ---- tracing --------------------------------------------------------

    /// Records a trace step if the sink wants it (the event is built lazily).
    #[inline]
    pub fn trace(
        &self,
        cx: &mut Cx,
        place: NodeId,
        pkt: PacketId,
        ev: impl FnOnce() -> TraceEvent,
    ) {
        if cx.tracing && cx.sink.wants(pkt) {
            cx.sink.record(TraceRecord {
                time: cx.now,
                place,
                packet: pkt,
                event: ev(),
            });
        }
    }

    pub fn out(&mut self, time: SimTime, ns: NsId, text: impl Into<String>) {
        let place = self.ns_label(ns);
        self.output.push(OutputLine {
            time,
            place,
            text: text.into(),
        });
    }

    pub fn warn(&mut self, time: SimTime, ns: NsId, text: impl Into<String>) {
        let place = self.ns_label(ns);
        self.warnings.push(OutputLine {
            time,
            place,
            text: text.into(),
        });
    }

    // ---- the event loop -------------------------------------------------

    /// Handles one event (timeline commands are the owner's business and are
    /// returned to it).
    pub fn handle(&mut self, cx: &mut Cx, ev: Event) -> Option<usize> {
        match ev {
            Event::Rx { dev, pkt } => self.netif_receive(cx, dev, pkt),
            Event::SegRx { seg, from, pkt } => self.segment_forward(cx, seg, from, pkt),
            Event::NeighTimer { ns, dev, addr } => self.neigh_timer(cx, ns, dev, addr),
            Event::ProxyArpReply { dev, pkt } => self.dev_xmit(cx, dev, pkt),
            Event::App { app, tag } => self.app_timer(cx, app, tag),
            Event::Tcp { sock, timer } => self.tcp_timer(cx, sock, timer),
            Event::Command { index } => return Some(index),
        }
        None
    }

    pub fn topo_kind(d: &Device) -> DeviceKind {
        d.kind.topo_kind()
    }

    /// Interned text for trace events.
    pub fn arc(s: impl Into<String>) -> Arc<str> {
        Arc::from(s.into())
    }
}
