//! The packet path: receive, route, forward, output, neighbours, bridges,
//! segments, tunnels. Function names follow the kernel's where a step has a
//! well-known name (netif_receive, ip_rcv, ip_forward, ip_output,
//! neigh_output, dev_xmit), so a reader can hold the trace beside the source.

use std::net::Ipv4Addr;

use sim_core::packet::{Header, Packet, PacketId, Payload};
use sim_core::time::SimDuration;
use sim_core::topo::NodeId;
use sim_core::trace::{
    DropReason, Encap, FdbResult, Hook, NeighResult, RouteDecision, RouteHit, RouteType, TraceEvent,
};
use sim_core::wire::{
    ArpOp, ArpRepr, EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Repr, MacAddr, UdpRepr,
    VxlanRepr,
};

use crate::cmd::{NudState, Scope};
use crate::linux::fib::{FibError, FibResult, Flow, l3_hash};
use crate::linux::neigh::NeighEntry;
use crate::linux::{Cx, DevId, DevKind, Event, NsId, World};

/// ICMP types and codes used by the stack.
pub mod icmp {
    pub const DEST_UNREACH: u8 = 3;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const NET_UNREACH: u8 = 0;
    pub const HOST_UNREACH: u8 = 1;
    pub const PROT_UNREACH: u8 = 2;
    pub const PORT_UNREACH: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    pub const PKT_FILTERED: u8 = 13;
}

/// The outcome of an input route decision.
pub enum InputRoute {
    Local(FibResult),
    Broadcast,
    Forward(FibResult),
    /// Dropped; with the ICMP unreachable code to send, if any.
    Error {
        reason: DropReason,
        icmp: Option<u8>,
    },
}

/// Who generated a locally originated packet (for errors reported back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    App(usize),
    Kernel,
}

fn ip(pkt: &Packet) -> &Ipv4Repr {
    match pkt.headers.first() {
        Some(Header::Ipv4(h)) => h,
        _ => panic!("packet {} has no IPv4 header at L3", pkt.id.0),
    }
}

fn ip_mut(pkt: &mut Packet) -> &mut Ipv4Repr {
    match pkt.headers.first_mut() {
        Some(Header::Ipv4(h)) => h,
        _ => panic!("packet {} has no IPv4 header at L3", pkt.id.0),
    }
}

impl World {
    // ================================================================ L2 ==

    /// A frame arrives at `dev` (netif_receive_skb).
    pub fn netif_receive(&mut self, cx: &mut Cx, dev: DevId, pkt: Packet) {
        let d = &self.devices[dev.ix()];
        let place = self.namespaces[d.ns.ix()].node;
        if !d.alive || !d.admin_up {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::LinkDown,
            });
            return;
        }
        let len = pkt.buffer_len() as u32;
        let dnode = d.node;
        self.trace(cx, place, pkt.id, || TraceEvent::Receive {
            dev: dnode,
            len,
        });
        self.capture(cx.now, dev, &pkt, false);
        let d = &mut self.devices[dev.ix()];
        d.stats.rx_packets += 1;
        d.stats.rx_bytes += len as u64;
        if let Some(br) = d.master {
            return self.bridge_input(cx, br, dev, pkt);
        }
        match d.kind {
            DevKind::Ipip(_) | DevKind::Loopback => {
                let ns = d.ns;
                self.ip_rcv(cx, ns, dev, pkt)
            }
            _ => self.l2_input(cx, dev, pkt, false),
        }
    }

    /// Ethernet input on a device that is not a bridge port: accept frames
    /// for our MAC, broadcast and multicast; strip the header; dispatch.
    pub fn l2_input(&mut self, cx: &mut Cx, dev: DevId, mut pkt: Packet, from_bridge: bool) {
        let d = &self.devices[dev.ix()];
        let ns = d.ns;
        let place = self.namespaces[ns.ix()].node;
        let Some(Header::Ethernet(eth)) = pkt.headers.first() else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("no Ethernet header".into()),
            });
            return;
        };
        let eth = *eth;
        if !from_bridge && eth.dst != d.mac && !eth.dst.is_broadcast() && !eth.dst.is_multicast() {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::OtherHost,
            });
            return;
        }
        pkt.headers.remove(0);
        match eth.ethertype {
            EtherType::Arp => self.arp_rcv(cx, ns, dev, eth, pkt),
            EtherType::Ipv4 => self.ip_rcv(cx, ns, dev, pkt),
            other => {
                let t = u16::from(other);
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Other(format!("no handler for ethertype 0x{t:04x}").into()),
                })
            }
        }
    }

    /// Transmit a frame (or, for IPIP/loopback, a datagram) on a device.
    pub fn dev_xmit(&mut self, cx: &mut Cx, dev: DevId, pkt: Packet) {
        let d = &self.devices[dev.ix()];
        let ns = d.ns;
        let place = self.namespaces[ns.ix()].node;
        if !d.alive || !d.admin_up {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::LinkDown,
            });
            return;
        }
        if !self.carrier(dev) {
            self.devices[dev.ix()].stats.tx_dropped += 1;
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::NoCarrier,
            });
            return;
        }
        let d = &self.devices[dev.ix()];
        let len = pkt.buffer_len() as u32;
        let dnode = d.node;
        if matches!(d.kind, DevKind::Veth { .. } | DevKind::Nic { .. })
            && !self.txq_admit(cx, dev, len)
        {
            // The qdisc's drop-tail queue is full.
            self.devices[dev.ix()].stats.tx_dropped += 1;
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::QueueFull,
            });
            return;
        }
        let d = &self.devices[dev.ix()];
        if !matches!(d.kind, DevKind::Vxlan(_) | DevKind::Ipip(_)) {
            self.trace(cx, place, pkt.id, || TraceEvent::Transmit {
                dev: dnode,
                len,
            });
            self.capture(cx.now, dev, &pkt, true);
        }
        let d = &mut self.devices[dev.ix()];
        d.stats.tx_packets += 1;
        d.stats.tx_bytes += len as u64;
        match &d.kind {
            DevKind::Veth { peer } => {
                let Some(peer) = *peer else { return };
                let arrive = self.link_delay(cx, dev, len);
                let pnode = self.devices[peer.ix()].node;
                self.trace(cx, place, pkt.id, || TraceEvent::Wire {
                    from: dnode,
                    to: pnode,
                    arrive,
                });
                cx.sched.schedule_at(arrive, Event::Rx { dev: peer, pkt });
            }
            DevKind::Nic { segment } => {
                let Some(seg) = *segment else { return };
                // The frame occupies the link whether or not it arrives.
                let arrive = self.link_delay(cx, dev, len);
                let loss = self.segments[seg.ix()].link.loss;
                if self.segments[seg.ix()].rng.chance(loss) {
                    self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                        reason: DropReason::RandomLoss,
                    });
                    return;
                }
                cx.sched.schedule_at(
                    arrive,
                    Event::SegRx {
                        seg,
                        from: dev,
                        pkt,
                    },
                );
            }
            DevKind::Bridge(_) => self.bridge_xmit(cx, dev, pkt),
            DevKind::Vxlan(_) => self.vxlan_xmit(cx, dev, pkt),
            DevKind::Ipip(_) => {
                // Reached only without a route nexthop (neigh_output calls ipip_xmit).
                self.ipip_xmit(cx, dev, pkt, None)
            }
            DevKind::Dummy => {
                // dummy_xmit: counted and freed.
            }
            DevKind::Loopback => {
                cx.sched.schedule_at(cx.now, Event::Rx { dev, pkt });
            }
        }
    }

    /// Whether the transmit queue of `dev` has room for a frame of `len`
    /// bytes: the bytes still waiting to be serialized (the backlog of the
    /// link, from the time it is busy) plus this frame must fit the queue.
    fn txq_admit(&self, cx: &Cx, dev: DevId, len: u32) -> bool {
        let d = &self.devices[dev.ix()];
        let bw = d.link.bandwidth_bps;
        if bw == 0 || d.tx_free_at <= cx.now {
            return true;
        }
        let backlog_ns = d.tx_free_at.saturating_since(cx.now).as_nanos() as u128;
        let queued = backlog_ns * u128::from(bw) / 8_000_000_000;
        queued + u128::from(len.max(60) + 24) <= u128::from(d.txq_bytes)
    }

    /// When a frame of `len` bytes sent now on `dev` arrives at the other end.
    fn link_delay(&mut self, cx: &mut Cx, dev: DevId, len: u32) -> sim_core::time::SimTime {
        let d = &mut self.devices[dev.ix()];
        let start = if d.tx_free_at > cx.now {
            d.tx_free_at
        } else {
            cx.now
        };
        // On the wire a frame carries preamble, SFD, FCS and the inter-frame gap
        // (8 + 4 + 12 bytes) and is padded to 60 bytes before the FCS.
        let wire_bytes = if d.link.bandwidth_bps > 0 {
            (len.max(60) + 24) as u64
        } else {
            0
        };
        let ser = SimDuration::serialization(wire_bytes, d.link.bandwidth_bps);
        d.tx_free_at = start + ser;
        start + ser + d.link.latency
    }

    /// The segment's learning switch forwards a frame.
    pub fn segment_forward(
        &mut self,
        cx: &mut Cx,
        seg: sim_core_seg::SegIdAlias,
        from: DevId,
        pkt: Packet,
    ) {
        let s = &mut self.segments[seg.ix()];
        let place = s.node;
        let Some(Header::Ethernet(eth)) = pkt.headers.first() else {
            return;
        };
        let eth = *eth;
        if eth.src.is_unicast() && s.fdb.get(&eth.src) != Some(&from) {
            s.fdb.insert(eth.src, from);
        }
        let known = match s.fdb.get(&eth.dst) {
            Some(&p) if !eth.dst.is_multicast() => Some(p),
            _ => None,
        };
        match known {
            // A learned port: the frame itself goes there (or nowhere).
            Some(p) => {
                if p != from {
                    self.segment_deliver(cx, place, from, p, pkt);
                }
            }
            None => {
                let targets: Vec<DevId> = s.ports.iter().copied().filter(|p| *p != from).collect();
                let n = targets.len();
                let mut pkt = Some(pkt);
                for (k, p) in targets.into_iter().enumerate() {
                    // The last port takes the frame; the others a copy.
                    let copy = if k + 1 == n {
                        pkt.take().expect("one frame per port")
                    } else {
                        self.clone_packet(pkt.as_ref().expect("one frame per port"))
                    };
                    self.segment_deliver(cx, place, from, p, copy);
                }
            }
        }
    }

    /// A frame crosses the segment to port `p`.
    fn segment_deliver(&mut self, cx: &mut Cx, place: NodeId, from: DevId, p: DevId, pkt: Packet) {
        if self.devices[p.ix()].alive {
            let (fnode, tnode, arrive) = (
                self.devices[from.ix()].node,
                self.devices[p.ix()].node,
                cx.now,
            );
            self.trace(cx, place, pkt.id, || TraceEvent::Wire {
                from: fnode,
                to: tnode,
                arrive,
            });
            cx.sched.schedule_at(cx.now, Event::Rx { dev: p, pkt });
        }
    }

    /// A copy of a packet for flooding keeps the id (it is the same packet,
    /// replicated); traces show each copy's path under that id.
    pub fn clone_packet(&mut self, pkt: &Packet) -> Packet {
        pkt.clone()
    }

    // ============================================================ bridge ==

    /// A frame arrives on a bridge port (br_handle_frame).
    fn bridge_input(&mut self, cx: &mut Cx, br: DevId, port: DevId, mut pkt: Packet) {
        let place = self.namespaces[self.devices[br.ix()].ns.ix()].node;
        let Some(Header::Ethernet(eth)) = pkt.headers.first() else {
            return;
        };
        let eth = *eth;
        let now = cx.now;
        let brnode = self.devices[br.ix()].node;
        let pnode = self.devices[port.ix()].node;
        if !self.devices[br.ix()].admin_up {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::LinkDown,
            });
            return;
        }
        // Learning.
        if eth.src.is_unicast() {
            let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind else {
                return;
            };
            let learned = match b.fdb.get_mut(&eth.src) {
                Some(e) if e.is_local || e.is_static => false,
                Some(e) => {
                    let moved = e.port != port;
                    e.port = port;
                    e.updated = now;
                    moved
                }
                None => {
                    b.fdb.insert(
                        eth.src,
                        crate::linux::BridgeFdb {
                            port,
                            is_local: false,
                            is_static: false,
                            updated: now,
                        },
                    );
                    true
                }
            };
            if learned {
                let ns = self.devices[br.ix()].ns;
                self.namespaces[ns.ix()].generation.fdb += 1;
                self.trace(cx, place, pkt.id, || TraceEvent::Learn {
                    dev: brnode,
                    mac: eth.src,
                    port: Some(pnode),
                    remote: None,
                });
            }
        }
        let br_mac = self.devices[br.ix()].mac;
        if eth.dst == br_mac {
            self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                dev: brnode,
                mac: eth.dst,
                result: FdbResult::Local,
            });
            return self.br_pass_frame_up(cx, br, pkt);
        }
        if eth.dst.is_broadcast() || eth.dst.is_multicast() {
            self.bridge_flood(cx, br, Some(port), pkt.clone());
            return self.br_pass_frame_up(cx, br, pkt);
        }
        let fdb = self.bridge_fdb_port(br, eth.dst, now);
        // br_netfilter: a frame the bridge forwards traverses PREROUTING,
        // FORWARD and POSTROUTING (with the bridge as in and out device).
        let to_self = matches!(fdb, Some((_, true)));
        if !to_self && !self.br_nf_bridged(cx, br, &mut pkt) {
            return;
        }
        match fdb {
            Some((p, true)) => {
                let _ = p;
                self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                    dev: brnode,
                    mac: eth.dst,
                    result: FdbResult::Local,
                });
                self.br_pass_frame_up(cx, br, pkt)
            }
            Some((p, false)) => {
                let tnode = self.devices[p.ix()].node;
                self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                    dev: brnode,
                    mac: eth.dst,
                    result: FdbResult::Port(tnode),
                });
                if p == port {
                    // Hairpin is off by default: never back out of the ingress port.
                    self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                        reason: DropReason::Other(
                            "bridge: destination is on the ingress port".into(),
                        ),
                    });
                    return;
                }
                self.trace(cx, place, pkt.id, || TraceEvent::BridgeForward {
                    bridge: brnode,
                    from: pnode,
                    to: tnode,
                });
                self.dev_xmit(cx, p, pkt)
            }
            None => self.bridge_flood(cx, br, Some(port), pkt),
        }
    }

    /// br_pass_frame_up: the bridge hands a frame to its own stack, which
    /// receives it on the bridge device (netif_receive_skb with the bridge as
    /// the device): counted there and seen by a capture on the bridge, as
    /// `tcpdump -i br0` sees it, besides the capture on the port.
    fn br_pass_frame_up(&mut self, cx: &mut Cx, br: DevId, pkt: Packet) {
        let d = &self.devices[br.ix()];
        let place = self.namespaces[d.ns.ix()].node;
        let brnode = d.node;
        self.trace(cx, place, pkt.id, || TraceEvent::BridgeLocal {
            bridge: brnode,
        });
        let len = pkt.buffer_len() as u32;
        self.trace(cx, place, pkt.id, || TraceEvent::Receive {
            dev: brnode,
            len,
        });
        self.capture(cx.now, br, &pkt, false);
        let d = &mut self.devices[br.ix()];
        d.stats.rx_packets += 1;
        d.stats.rx_bytes += len as u64;
        self.l2_input(cx, br, pkt, true)
    }

    /// FDB lookup with ageing: (port, is_local).
    fn bridge_fdb_port(
        &mut self,
        br: DevId,
        mac: MacAddr,
        now: sim_core::time::SimTime,
    ) -> Option<(DevId, bool)> {
        let ns = self.devices[br.ix()].ns;
        let DevKind::Bridge(b) = &mut self.devices[br.ix()].kind else {
            return None;
        };
        let ageing = b.ageing_time;
        let e = b.fdb.get(&mac)?;
        if !e.is_local && !e.is_static && now.saturating_since(e.updated) > ageing {
            b.fdb.remove(&mac);
            self.namespaces[ns.ix()].generation.fdb += 1;
            return None;
        }
        Some((e.port, e.is_local))
    }

    fn bridge_flood(&mut self, cx: &mut Cx, br: DevId, from: Option<DevId>, pkt: Packet) {
        let place = self.namespaces[self.devices[br.ix()].ns.ix()].node;
        let DevKind::Bridge(b) = &self.devices[br.ix()].kind else {
            return;
        };
        let ports: Vec<DevId> = b
            .ports
            .iter()
            .copied()
            .filter(|p| Some(*p) != from && self.oper_up(*p))
            .collect();
        let brnode = self.devices[br.ix()].node;
        let fnode = from.map(|f| self.devices[f.ix()].node).unwrap_or(brnode);
        if let Some(Header::Ethernet(eth)) = pkt.headers.first() {
            let mac = eth.dst;
            if !mac.is_broadcast() && !mac.is_multicast() {
                let n = ports.len() as u32;
                self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                    dev: brnode,
                    mac,
                    result: FdbResult::Flood(n),
                });
            }
        }
        let n = ports.len() as u32;
        self.trace(cx, place, pkt.id, || TraceEvent::BridgeFlood {
            bridge: brnode,
            from: fnode,
            ports: n,
        });
        for p in ports {
            self.dev_xmit(cx, p, pkt.clone());
        }
    }

    /// The bridge device transmits (br_dev_xmit): FDB lookup, forward or flood.
    fn bridge_xmit(&mut self, cx: &mut Cx, br: DevId, pkt: Packet) {
        let place = self.namespaces[self.devices[br.ix()].ns.ix()].node;
        let Some(Header::Ethernet(eth)) = pkt.headers.first() else {
            return;
        };
        let dst = eth.dst;
        let brnode = self.devices[br.ix()].node;
        if dst.is_broadcast() || dst.is_multicast() {
            return self.bridge_flood(cx, br, None, pkt);
        }
        match self.bridge_fdb_port(br, dst, cx.now) {
            Some((p, false)) => {
                let tnode = self.devices[p.ix()].node;
                self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                    dev: brnode,
                    mac: dst,
                    result: FdbResult::Port(tnode),
                });
                self.dev_xmit(cx, p, pkt)
            }
            Some((_, true)) => {
                self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                    dev: brnode,
                    mac: dst,
                    result: FdbResult::Local,
                });
            }
            None => self.bridge_flood(cx, br, None, pkt),
        }
    }

    // =============================================================== ARP ==

    fn arp_rcv(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, eth: EthernetRepr, pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let Some(Header::Arp(arp)) = pkt.headers.first() else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("bad ARP".into()),
            });
            return;
        };
        let arp = *arp;
        if self.devices[dev.ix()].kind.noarp() {
            return;
        }
        let dev_mac = self.devices[dev.ix()].mac;
        let to_us = eth.dst == dev_mac;
        // Update an existing entry for the sender (or create one when the request is for us).
        let local_target = self.is_local_addr(ns, arp.target_ip);
        match arp.op {
            ArpOp::Request => {
                if arp.target_ip.is_loopback() || arp.target_ip.is_multicast() {
                    return;
                }
                if local_target {
                    self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                        to: "ARP (request for a local address)".into(),
                    });
                    self.neigh_update(
                        cx,
                        ns,
                        dev,
                        arp.sender_ip,
                        arp.sender_mac,
                        NudState::Stale,
                        true,
                    );
                    self.arp_send_reply(
                        cx,
                        ns,
                        dev,
                        &arp,
                        arp.target_ip,
                        pkt.id,
                        SimDuration::ZERO,
                    );
                    return;
                }
                // Proxy ARP: forwarding on, proxy_arp on, and a unicast route to
                // the target that leaves by another device.
                let d = &self.devices[dev.ix()];
                let conf_all = self.namespaces[ns.ix()].sysctl.conf_all;
                let proxy = d.conf.proxy_arp || conf_all.proxy_arp;
                if d.conf.forwarding && proxy {
                    let flow = Flow {
                        dst: arp.target_ip,
                        src: Some(arp.sender_ip),
                        iif: Some(d.name.as_str()),
                        ..Default::default()
                    };
                    if let Ok(res) = self.fib_lookup(ns, &flow)
                        && res.route.rtype == RouteType::Unicast
                        && res.nexthop().is_some_and(|n| n.dev != dev)
                    {
                        self.neigh_update(
                            cx,
                            ns,
                            dev,
                            arp.sender_ip,
                            arp.sender_mac,
                            NudState::Stale,
                            true, // neigh_event_ns: the requester gets a STALE entry
                        );
                        let pd = self.devices[dev.ix()].neigh.proxy_delay;
                        let delay = if eth.dst.is_broadcast() && pd > SimDuration::ZERO {
                            SimDuration::from_nanos(self.neigh_rng(ns).below(pd.as_nanos()))
                        } else {
                            SimDuration::ZERO
                        };
                        let dnode = self.devices[dev.ix()].node;
                        let t = arp.target_ip;
                        self.trace(cx, place, pkt.id, || TraceEvent::ProxyArp {
                            dev: dnode,
                            target: t,
                            delay_ns: delay.as_nanos(),
                        });
                        self.arp_send_reply(cx, ns, dev, &arp, arp.target_ip, pkt.id, delay);
                        return;
                    }
                }
                self.neigh_update(
                    cx,
                    ns,
                    dev,
                    arp.sender_ip,
                    arp.sender_mac,
                    NudState::Stale,
                    false,
                );
                let t = arp.target_ip;
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: format!("ARP (request for {t}, not ours: ignored)").into(),
                });
            }
            ArpOp::Reply => {
                let state = if to_us {
                    NudState::Reachable
                } else {
                    NudState::Stale
                };
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: "ARP (reply)".into(),
                });
                self.neigh_update(cx, ns, dev, arp.sender_ip, arp.sender_mac, state, false);
            }
            ArpOp::Unknown(_) => {}
        }
    }

    fn arp_send_reply(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        dev: DevId,
        req: &ArpRepr,
        ip: Ipv4Addr,
        cause: PacketId,
        delay: SimDuration,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let mac = self.devices[dev.ix()].mac;
        let id = self.next_packet_id();
        let reply = Packet {
            id,
            headers: vec![
                Header::Ethernet(EthernetRepr {
                    dst: req.sender_mac,
                    src: mac,
                    ethertype: EtherType::Arp,
                }),
                Header::Arp(ArpRepr {
                    op: ArpOp::Reply,
                    sender_mac: mac,
                    sender_ip: ip,
                    target_mac: req.sender_mac,
                    target_ip: req.sender_ip,
                }),
            ],
            payload: Payload::Data(Vec::new()),
        };
        let what: std::sync::Arc<str> = format!("ARP reply {ip} is-at {mac}").into();
        self.trace(cx, place, cause, || TraceEvent::Reply {
            reply: id,
            what: what.clone(),
        });
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "kernel".into(),
            summary: what,
            dst: None,
        });
        if delay > SimDuration::ZERO {
            cx.sched
                .schedule_at(cx.now + delay, Event::ProxyArpReply { dev, pkt: reply });
        } else {
            self.dev_xmit(cx, dev, reply);
        }
    }

    /// Sends an ARP request for `target` on `dev` (arp_solicit). `saddr_hint`
    /// is the source of the packet that triggered it.
    fn arp_solicit(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        dev: DevId,
        target: Ipv4Addr,
        saddr_hint: Option<Ipv4Addr>,
        unicast: Option<MacAddr>,
    ) {
        let sip = match saddr_hint.filter(|s| self.is_local_addr(ns, *s)) {
            Some(s) => s,
            None => self
                .inet_select_addr(ns, Some(dev), target, Scope::Link)
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        let mac = self.devices[dev.ix()].mac;
        let id = self.next_packet_id();
        let pkt = Packet {
            id,
            headers: vec![
                Header::Ethernet(EthernetRepr {
                    dst: unicast.unwrap_or(MacAddr::BROADCAST),
                    src: mac,
                    ethertype: EtherType::Arp,
                }),
                Header::Arp(ArpRepr {
                    op: ArpOp::Request,
                    sender_mac: mac,
                    sender_ip: sip,
                    target_mac: MacAddr::ZERO,
                    target_ip: target,
                }),
            ],
            payload: Payload::Data(Vec::new()),
        };
        let place = self.namespaces[ns.ix()].node;
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "kernel (neighbour resolution)".into(),
            summary: format!("ARP request who-has {target} tell {sip}").into(),
            dst: None,
        });
        self.dev_xmit(cx, dev, pkt);
    }

    // ======================================================== neighbours ==

    /// neigh_update: set an entry's state and MAC; flush its queue when it
    /// becomes valid. `create` makes an entry that does not exist.
    fn neigh_update(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        dev: DevId,
        addr: Ipv4Addr,
        mac: MacAddr,
        state: NudState,
        create: bool,
    ) {
        let now = cx.now;
        let host = self.namespaces[ns.ix()].host;
        let parms = self.devices[dev.ix()].neigh;
        let exists = self.namespaces[ns.ix()].neigh.get(dev, addr).is_some();
        if !exists {
            if !create {
                return;
            }
            if !self.neigh_room(host, now) {
                return;
            }
            self.hosts[host.ix()].neigh_entries += 1;
            self.namespaces[ns.ix()].neigh.entries.insert(
                (dev, addr),
                NeighEntry::new(NudState::Stale, Some(mac), now),
            );
        }
        let e = self.namespaces[ns.ix()].neigh.get_mut(dev, addr).unwrap();
        if matches!(e.state, NudState::Permanent | NudState::Noarp) {
            return;
        }
        let changed_mac = e.mac != Some(mac);
        // A STALE update with the same MAC does not downgrade a REACHABLE entry.
        if state == NudState::Stale
            && !changed_mac
            && matches!(
                e.state,
                NudState::Reachable | NudState::Delay | NudState::Probe
            )
        {
            return;
        }
        e.mac = Some(mac);
        e.state = state;
        e.updated = now;
        if let Some(t) = e.take_timer() {
            cx.sched.cancel(t);
        }
        let queue = e.take_queue();
        if e.probes() != 0 {
            e.res().probes = 0;
        }
        self.namespaces[ns.ix()].generation.neigh += 1;
        if state == NudState::Reachable {
            // reachable_time: random in [base/2, 3*base/2)
            let base = parms.base_reachable_time.as_nanos();
            let r = base / 2 + self.neigh_rng(ns).below(base.max(1));
            let t = cx.sched.schedule_at(
                now + SimDuration::from_nanos(r),
                Event::NeighTimer { ns, dev, addr },
            );
            self.namespaces[ns.ix()]
                .neigh
                .get_mut(dev, addr)
                .unwrap()
                .res()
                .timer = Some(t);
        }
        for p in queue {
            self.neigh_resolved_xmit(cx, dev, mac, p);
        }
    }

    fn neigh_resolved_xmit(&mut self, cx: &mut Cx, dev: DevId, mac: MacAddr, mut pkt: Packet) {
        let src = self.devices[dev.ix()].mac;
        pkt.headers.insert(
            0,
            Header::Ethernet(EthernetRepr {
                dst: mac,
                src,
                ethertype: EtherType::Ipv4,
            }),
        );
        self.dev_xmit(cx, dev, pkt);
    }

    /// A neighbour timer: retransmit a request, fail, or age REACHABLE to STALE.
    pub fn neigh_timer(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, addr: Ipv4Addr) {
        let parms = self.devices[dev.ix()].neigh;
        self.namespaces[ns.ix()].generation.neigh += 1;
        let Some(e) = self.namespaces[ns.ix()].neigh.get_mut(dev, addr) else {
            return;
        };
        e.take_timer();
        match e.state {
            NudState::Reachable => {
                e.state = NudState::Stale;
                e.updated = cx.now;
            }
            NudState::Delay => {
                e.state = NudState::Probe;
                e.res().probes = 1;
                let mac = e.mac;
                let t = cx.sched.schedule_at(
                    cx.now + parms.retrans_time,
                    Event::NeighTimer { ns, dev, addr },
                );
                self.namespaces[ns.ix()]
                    .neigh
                    .get_mut(dev, addr)
                    .unwrap()
                    .res()
                    .timer = Some(t);
                self.arp_solicit(cx, ns, dev, addr, None, mac);
            }
            NudState::Incomplete | NudState::Probe => {
                let max = if e.state == NudState::Incomplete {
                    parms.mcast_solicit
                } else {
                    parms.ucast_solicit
                };
                if e.probes() >= max {
                    e.state = NudState::Failed;
                    e.updated = cx.now;
                    let queue = e.take_queue();
                    let place = self.namespaces[ns.ix()].node;
                    let dnode = self.devices[dev.ix()].node;
                    for p in queue {
                        self.trace(cx, place, p.id, || TraceEvent::NeighLookup {
                            dev: dnode,
                            addr,
                            result: NeighResult::Failed,
                        });
                        self.trace(cx, place, p.id, || TraceEvent::Drop {
                            reason: DropReason::NeighFailed,
                        });
                        self.icmp_send(
                            cx,
                            ns,
                            &p,
                            icmp::DEST_UNREACH,
                            icmp::HOST_UNREACH,
                            0,
                            Some(dev),
                        );
                    }
                } else {
                    e.res().probes += 1;
                    let unicast = if e.state == NudState::Probe {
                        e.mac
                    } else {
                        None
                    };
                    let hint = e.queue().last().map(|p| ip(p).src);
                    let t = cx.sched.schedule_at(
                        cx.now + parms.retrans_time,
                        Event::NeighTimer { ns, dev, addr },
                    );
                    self.namespaces[ns.ix()]
                        .neigh
                        .get_mut(dev, addr)
                        .unwrap()
                        .res()
                        .timer = Some(t);
                    self.arp_solicit(cx, ns, dev, addr, hint, unicast);
                }
            }
            _ => {}
        }
    }

    /// neigh_output: resolve the next hop's MAC and transmit.
    pub fn neigh_output(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, nh: Ipv4Addr, pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let dnode = self.devices[dev.ix()].node;
        if self.devices[dev.ix()].kind.noarp() {
            self.trace(cx, place, pkt.id, || TraceEvent::NeighLookup {
                dev: dnode,
                addr: nh,
                result: NeighResult::NotNeeded,
            });
            if matches!(self.devices[dev.ix()].kind, DevKind::Ipip(_)) {
                return self.ipip_xmit(cx, dev, pkt, Some(nh));
            }
            return self.dev_xmit(cx, dev, pkt);
        }
        if nh.is_broadcast() || self.is_subnet_broadcast(ns, dev, nh) {
            let src = self.devices[dev.ix()].mac;
            let mut pkt = pkt;
            pkt.headers.insert(
                0,
                Header::Ethernet(EthernetRepr {
                    dst: MacAddr::BROADCAST,
                    src,
                    ethertype: EtherType::Ipv4,
                }),
            );
            return self.dev_xmit(cx, dev, pkt);
        }
        let now = cx.now;
        let parms = self.devices[dev.ix()].neigh;
        let host = self.namespaces[ns.ix()].host;
        match self.namespaces[ns.ix()].neigh.get_mut(dev, nh) {
            Some(e) if e.valid() => {
                let mac = e.mac.unwrap();
                let state = e.state;
                if state == NudState::Stale {
                    e.state = NudState::Delay;
                    e.updated = now;
                    let t = cx.sched.schedule_at(
                        now + parms.delay_first_probe_time,
                        Event::NeighTimer { ns, dev, addr: nh },
                    );
                    self.namespaces[ns.ix()]
                        .neigh
                        .get_mut(dev, nh)
                        .unwrap()
                        .res()
                        .timer = Some(t);
                    self.namespaces[ns.ix()].generation.neigh += 1;
                }
                self.trace(cx, place, pkt.id, || TraceEvent::NeighLookup {
                    dev: dnode,
                    addr: nh,
                    result: NeighResult::Hit {
                        mac,
                        state: state.as_str(),
                    },
                });
                self.neigh_resolved_xmit(cx, dev, mac, pkt)
            }
            Some(e) if e.state == NudState::Incomplete => {
                let len = pkt.buffer_len() as u32;
                let id = pkt.id;
                let r = e.res();
                if r.queue_bytes + len <= parms.unres_qlen_bytes {
                    r.queue_bytes += len;
                    r.queue.push(pkt);
                    self.trace(cx, place, id, || TraceEvent::NeighLookup {
                        dev: dnode,
                        addr: nh,
                        result: NeighResult::Miss { queued: false },
                    });
                } else {
                    self.trace(cx, place, id, || TraceEvent::Drop {
                        reason: DropReason::QueueFull,
                    });
                }
            }
            existing => {
                // No entry, or FAILED: (re)start resolution.
                if existing.is_none() {
                    if !self.neigh_room(host, now) {
                        let label = self.ns_label(ns);
                        self.warn(
                            now,
                            ns,
                            format!("{label}: neighbour: arp_cache: neighbor table overflow!"),
                        );
                        self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                            reason: DropReason::NeighTableOverflow,
                        });
                        return;
                    }
                    self.hosts[host.ix()].neigh_entries += 1;
                }
                let src = ip(&pkt).src;
                let len = pkt.buffer_len() as u32;
                let id = pkt.id;
                let mut e = NeighEntry::new(NudState::Incomplete, None, now);
                let r = e.res();
                r.probes = 1;
                r.queue_bytes = len;
                r.queue.push(pkt);
                let t = cx.sched.schedule_at(
                    now + parms.retrans_time,
                    Event::NeighTimer { ns, dev, addr: nh },
                );
                r.timer = Some(t);
                self.namespaces[ns.ix()].neigh.entries.insert((dev, nh), e);
                self.namespaces[ns.ix()].generation.neigh += 1;
                self.trace(cx, place, id, || TraceEvent::NeighLookup {
                    dev: dnode,
                    addr: nh,
                    result: NeighResult::Miss { queued: true },
                });
                self.arp_solicit(cx, ns, dev, nh, Some(src), None);
            }
        }
    }

    // ============================================================ routing ==

    pub fn fib_lookup(&self, ns: NsId, flow: &Flow) -> Result<FibResult, FibError> {
        let devs = &self.devices;
        self.namespaces[ns.ix()].fib.lookup_cached(flow, |d| {
            let dv = &devs[d.ix()];
            dv.alive && dv.admin_up
        })
    }

    /// Whether `a` is one of the namespace's local addresses.
    pub fn is_local_addr(&self, ns: NsId, a: Ipv4Addr) -> bool {
        self.namespaces[ns.ix()].addrs.iter().any(|x| x.local == a)
    }

    fn is_subnet_broadcast(&self, ns: NsId, dev: DevId, a: Ipv4Addr) -> bool {
        self.namespaces[ns.ix()]
            .addrs
            .iter()
            .any(|x| x.dev == dev && x.plen < 31 && x.net().broadcast() == a)
    }

    /// inet_select_addr: a source address on `dev` for `dst` within `scope`,
    /// else the first suitable address of any device in ifindex order.
    pub fn inet_select_addr(
        &self,
        ns: NsId,
        dev: Option<DevId>,
        dst: Ipv4Addr,
        scope: Scope,
    ) -> Option<Ipv4Addr> {
        let n = &self.namespaces[ns.ix()];
        if let Some(dev) = dev {
            let mut first = None;
            for a in n.addrs.iter().filter(|a| a.dev == dev && !a.secondary) {
                if a.scope.value() > scope.value() {
                    continue;
                }
                if a.net().contains(dst) {
                    return Some(a.local);
                }
                first.get_or_insert(a.local);
            }
            if first.is_some() {
                return first;
            }
        }
        for (_, &d) in n.devs.iter() {
            for a in n.addrs.iter().filter(|a| a.dev == d && !a.secondary) {
                if a.scope != Scope::Link && a.scope.value() <= scope.value() {
                    return Some(a.local);
                }
            }
        }
        None
    }

    /// A route's text for a trace step: the lookup's shared text (rendered
    /// once per cached lookup), unless a nexthop device has no carrier (then
    /// `linkdown` shows, rendered afresh) or the lookup was not cached.
    fn route_hit_text(&self, res: &FibResult) -> std::sync::Arc<str> {
        let r = &res.route;
        match &res.text {
            Some(memo) if r.nexthops.iter().all(|nh| self.carrier(nh.dev)) => {
                memo.get_or_init(|| self.route_text_up(r).into()).clone()
            }
            _ => self.route_text(r).into(),
        }
    }

    /// The matched route, for the trace; its `ip route` text only when the
    /// sink wants the details (`detail`).
    fn route_hit(&self, res: &FibResult, detail: bool) -> RouteHit {
        let r = &res.route;
        RouteHit {
            table: r.table,
            prefix: r.prefix,
            rtype: r.rtype,
            gateway: res.nexthop().and_then(|n| n.gw),
            dev: res.nexthop().map(|n| self.devices[n.dev.ix()].node),
            text: if detail {
                self.route_hit_text(res)
            } else {
                std::sync::Arc::from("")
            },
            origin: r.origin.as_deref().cloned(),
        }
    }

    /// ip_route_input: the route decision for a received packet.
    fn route_input(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, pkt: &Packet) -> InputRoute {
        let h = ip(pkt);
        let (src, dst) = (h.src, h.dst);
        let place = self.namespaces[ns.ix()].node;
        let d = &self.devices[dev.ix()];
        let is_lo = matches!(d.kind, DevKind::Loopback);
        if src.is_multicast() || src.is_broadcast() || (src.is_loopback() && !is_lo) {
            return InputRoute::Error {
                reason: DropReason::Martian,
                icmp: None,
            };
        }
        if dst.is_broadcast() || (src.is_unspecified() && dst.is_broadcast()) {
            return InputRoute::Broadcast;
        }
        if dst.is_unspecified() || (dst.is_loopback() && !is_lo) {
            return InputRoute::Error {
                reason: DropReason::Martian,
                icmp: None,
            };
        }
        let flow = Flow {
            dst,
            src: Some(src),
            iif: Some(d.name.as_str()),
            mark: self.nf_mark(ns, pkt.id),
            hash: l3_hash(src, dst),
            ..Default::default()
        };
        let forwarding = d.conf.forwarding;
        let res = match self.fib_lookup(ns, &flow) {
            Ok(r) => r,
            Err(e) => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst,
                    hit: None,
                    decision: None,
                });
                return match e {
                    FibError::Unreachable => InputRoute::Error {
                        reason: if forwarding {
                            DropReason::NoRoute
                        } else {
                            DropReason::ForwardingDisabled
                        },
                        icmp: forwarding.then_some(icmp::NET_UNREACH),
                    },
                    FibError::RuleType(t, _) => Self::route_type_error(t, forwarding),
                };
            }
        };
        let hit = self.route_hit(&res, cx.detail(pkt.id));
        let rtype = res.route.rtype;
        let decision = match rtype {
            RouteType::Local | RouteType::Broadcast => Some(RouteDecision::Local),
            RouteType::Unicast if forwarding => Some(RouteDecision::Forward),
            _ => None,
        };
        self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
            dst,
            hit: Some(hit),
            decision,
        });
        let rp_drop = InputRoute::Error {
            reason: DropReason::RpFilter,
            icmp: None,
        };
        match rtype {
            RouteType::Broadcast => InputRoute::Broadcast,
            RouteType::Unicast if !forwarding => InputRoute::Error {
                reason: DropReason::ForwardingDisabled,
                icmp: None,
            },
            RouteType::Local | RouteType::Unicast => {
                if !self.validate_source(ns, dev, src, dst) {
                    rp_drop
                } else if rtype == RouteType::Local {
                    InputRoute::Local(res)
                } else {
                    InputRoute::Forward(res)
                }
            }
            t => Self::route_type_error(t, forwarding),
        }
    }

    /// ip_error: what a blackhole/unreachable/prohibit route does to a received packet.
    fn route_type_error(t: RouteType, forwarding: bool) -> InputRoute {
        let code = match t {
            RouteType::Unreachable => Some(icmp::HOST_UNREACH),
            RouteType::Prohibit => Some(icmp::PKT_FILTERED),
            _ => None,
        };
        InputRoute::Error {
            reason: DropReason::RouteType(t),
            icmp: if forwarding { code } else { None },
        }
    }

    /// fib_validate_source: reverse-path filtering and local-source checks.
    fn validate_source(&self, ns: NsId, dev: DevId, src: Ipv4Addr, _dst: Ipv4Addr) -> bool {
        let n = &self.namespaces[ns.ix()];
        let d = &self.devices[dev.ix()];
        let rpf = d.conf.rp_filter.max(n.sysctl.conf_all.rp_filter);
        let accept_local = d.conf.accept_local || n.sysctl.conf_all.accept_local;
        if matches!(d.kind, DevKind::Loopback) {
            return true;
        }
        if rpf == 0 {
            // Fast path: only a local source address is refused.
            return accept_local || !self.is_local_addr(ns, src);
        }
        let no_addr = !n.addrs.iter().any(|a| a.dev == dev);
        let flow = Flow {
            dst: src,
            src: None,
            iif: Some("lo"),
            ..Default::default()
        };
        match self.fib_lookup(ns, &flow) {
            Err(_) => false,
            Ok(res) => {
                if res.route.rtype != RouteType::Unicast
                    && !(res.route.rtype == RouteType::Local && accept_local)
                {
                    return false;
                }
                if res.route.uses_dev(dev) {
                    return true;
                }
                if no_addr {
                    return false;
                }
                rpf == 2
            }
        }
    }

    // =========================================================== IP input ==

    /// ip_rcv: an IPv4 datagram received on `dev`.
    pub fn ip_rcv(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, mut pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        if !matches!(pkt.headers.first(), Some(Header::Ipv4(_))) {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("not IPv4".into()),
            });
            return;
        }
        if self.devices[dev.ix()].kind.noarp()
            || !self.namespaces[ns.ix()].addrs.iter().any(|a| a.dev == dev)
        {
            // in_dev exists once any IPv4 configuration exists; the kernel accepts
            // packets on devices without addresses (veth host ends routinely).
        }
        if !self.nf_hook(cx, ns, Hook::Prerouting, &mut pkt, Some(dev), None) {
            return;
        }
        match self.route_input(cx, ns, dev, &pkt) {
            InputRoute::Local(_) | InputRoute::Broadcast => {
                if !self.nf_hook(cx, ns, Hook::Input, &mut pkt, Some(dev), None) {
                    return;
                }
                self.ip_local_deliver(cx, ns, dev, pkt)
            }
            InputRoute::Forward(res) => self.ip_forward(cx, ns, dev, pkt, res),
            InputRoute::Error { reason, icmp: code } => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop { reason });
                if let Some(code) = code {
                    self.icmp_send(cx, ns, &pkt, icmp::DEST_UNREACH, code, 0, Some(dev));
                }
            }
        }
    }

    /// ip_forward.
    fn ip_forward(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        in_dev: DevId,
        mut pkt: Packet,
        res: FibResult,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let h = ip(&pkt);
        if h.ttl <= 1 {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::TtlExceeded,
            });
            self.icmp_send(cx, ns, &pkt, icmp::TIME_EXCEEDED, 0, 0, Some(in_dev));
            return;
        }
        let nh = res.nexthop().cloned().expect("unicast route has a nexthop");
        let mtu = res.route.mtu.unwrap_or(self.devices[nh.dev.ix()].mtu);
        let len = pkt.buffer_len() as u32;
        if len > mtu && h.dont_frag {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::FragNeeded { mtu },
            });
            self.icmp_send(
                cx,
                ns,
                &pkt,
                icmp::DEST_UNREACH,
                icmp::FRAG_NEEDED,
                mtu as u16,
                Some(in_dev),
            );
            return;
        }
        let h = ip_mut(&mut pkt);
        h.ttl -= 1;
        let ttl = h.ttl;
        self.trace(cx, place, pkt.id, || TraceEvent::TtlDecrement { ttl });
        if !self.nf_hook(cx, ns, Hook::Forward, &mut pkt, Some(in_dev), Some(nh.dev)) {
            return;
        }
        self.ip_output(cx, ns, pkt, &res, Some(in_dev))
    }

    /// ip_output / ip_finish_output: POSTROUTING, fragmentation, neighbour.
    pub fn ip_output(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        mut pkt: Packet,
        res: &FibResult,
        in_dev: Option<DevId>,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let nh = res.nexthop().cloned().expect("unicast route has a nexthop");
        if !self.nf_hook(cx, ns, Hook::Postrouting, &mut pkt, in_dev, Some(nh.dev)) {
            return;
        }
        let gw = nh.gw.unwrap_or(ip(&pkt).dst);
        let mtu = res.route.mtu.unwrap_or(self.devices[nh.dev.ix()].mtu);
        let len = pkt.buffer_len() as u32;
        if len > mtu {
            if ip(&pkt).dont_frag {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::FragNeeded { mtu },
                });
                return;
            }
            let frags = self.fragment(pkt, mtu);
            let count = frags.len() as u32;
            if let Some(f) = frags.first() {
                self.trace(cx, place, f.id, || TraceEvent::Fragment { mtu, count });
            }
            for f in frags {
                self.neigh_output(cx, ns, nh.dev, gw, f);
            }
            return;
        }
        self.neigh_output(cx, ns, nh.dev, gw, pkt)
    }

    /// ip_fragment: split a datagram into fragments fitting `mtu`.
    fn fragment(&mut self, pkt: Packet, mtu: u32) -> Vec<Packet> {
        let h = ip(&pkt).clone();
        let hl = h.header_len();
        let data = pkt.emit_from(1);
        let max = ((mtu as usize - hl) / 8) * 8;
        let mut out = Vec::new();
        let mut off = 0usize;
        while off < data.len() {
            let end = (off + max).min(data.len());
            let mut fh = h.clone();
            fh.frag_offset = h.frag_offset + (off / 8) as u16;
            fh.more_frags = end < data.len() || h.more_frags;
            out.push(Packet {
                id: pkt.id,
                headers: vec![Header::Ipv4(fh)],
                payload: Payload::Data(data[off..end].to_vec()),
            });
            off = end;
        }
        out
    }

    /// ip_local_deliver: hand a datagram for this host to its protocol.
    fn ip_local_deliver(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, mut pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let mut h = ip(&pkt).clone();
        if h.more_frags || h.frag_offset != 0 {
            match self.ip_defrag(cx, ns, pkt) {
                Some(whole) => {
                    pkt = whole;
                    h = ip(&pkt).clone();
                }
                None => return,
            }
        }
        match h.protocol {
            IpProtocol::Icmp => self.icmp_rcv(cx, ns, dev, pkt),
            IpProtocol::Udp => self.udp_rcv(cx, ns, dev, pkt),
            IpProtocol::Tcp => self.tcp_rcv(cx, ns, pkt),
            IpProtocol::Ipip => self.ipip_rcv(cx, ns, dev, pkt),
            _ => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::NoSocket,
                });
                self.icmp_send(
                    cx,
                    ns,
                    &pkt,
                    icmp::DEST_UNREACH,
                    icmp::PROT_UNREACH,
                    0,
                    Some(dev),
                );
            }
        }
    }

    // ========================================================= IP output ==

    /// Sends a locally generated datagram (ip_local_out): route, OUTPUT, output.
    /// Returns the error a socket would see, if any.
    pub fn ip_send(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        pkt: Packet,
        oif: Option<DevId>,
    ) -> Result<(), LocalError> {
        self.ip_send_routed(cx, ns, pkt, oif, false)
    }

    /// ip_send's route and output; `rerouted`: OUTPUT already ran and
    /// changed the destination or the mark, so the packet is routed again
    /// with its mark (ip_route_me_harder) and goes on without OUTPUT.
    fn ip_send_routed(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        mut pkt: Packet,
        oif: Option<DevId>,
        rerouted: bool,
    ) -> Result<(), LocalError> {
        let place = self.namespaces[ns.ix()].node;
        let h = ip(&pkt);
        let (src, dst) = (h.src, h.dst);
        let flow = Flow {
            dst,
            src: Some(src),
            oif,
            oif_name: oif.map(|d| self.devices[d.ix()].name.as_str()),
            mark: if rerouted {
                self.nf_mark(ns, pkt.id)
            } else {
                0
            },
            hash: l3_hash(src, dst),
            ..Default::default()
        };
        let res = match self.fib_lookup(ns, &flow) {
            Ok(r) => r,
            Err(e) => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst,
                    hit: None,
                    decision: None,
                });
                let reason = match e {
                    FibError::Unreachable => DropReason::NoRoute,
                    FibError::RuleType(t, _) => DropReason::RouteType(t),
                };
                self.trace(cx, place, pkt.id, || TraceEvent::Drop { reason });
                return Err(LocalError::NetUnreachable);
            }
        };
        let hit = self.route_hit(&res, cx.detail(pkt.id));
        match res.route.rtype {
            RouteType::Local | RouteType::Broadcast => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst,
                    hit: Some(hit),
                    decision: Some(RouteDecision::Local),
                });
                if !rerouted {
                    if !self.nf_hook(cx, ns, Hook::Output, &mut pkt, None, None) {
                        return Err(LocalError::NotPermitted);
                    }
                    if self.nf_output_rerouted(ns, &pkt, dst) {
                        return self.ip_send_routed(cx, ns, pkt, oif, true);
                    }
                }
                let lo = self.lo(ns);
                if !self.nf_hook(cx, ns, Hook::Postrouting, &mut pkt, None, Some(lo)) {
                    return Err(LocalError::NotPermitted);
                }
                if !self.devices[lo.ix()].admin_up {
                    self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                        reason: DropReason::LinkDown,
                    });
                    return Ok(());
                }
                let lonode = self.devices[lo.ix()].node;
                let len = pkt.buffer_len() as u32;
                self.trace(cx, place, pkt.id, || TraceEvent::Transmit {
                    dev: lonode,
                    len,
                });
                self.capture(cx.now, lo, &pkt, true);
                cx.sched.schedule_at(cx.now, Event::Rx { dev: lo, pkt });
                Ok(())
            }
            RouteType::Unicast => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst,
                    hit: Some(hit),
                    decision: Some(RouteDecision::Output),
                });
                let nh = res.nexthop().unwrap().clone();
                let mtu = res.route.mtu.unwrap_or(self.devices[nh.dev.ix()].mtu);
                if pkt.buffer_len() as u32 > mtu && ip(&pkt).dont_frag {
                    self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                        reason: DropReason::FragNeeded { mtu },
                    });
                    return Err(LocalError::MessageTooLong { mtu });
                }
                if !rerouted {
                    if !self.nf_hook(cx, ns, Hook::Output, &mut pkt, None, Some(nh.dev)) {
                        return Err(LocalError::NotPermitted);
                    }
                    if self.nf_output_rerouted(ns, &pkt, dst) {
                        return self.ip_send_routed(cx, ns, pkt, oif, true);
                    }
                }
                self.ip_output(cx, ns, pkt, &res, None);
                Ok(())
            }
            t => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst,
                    hit: Some(hit),
                    decision: None,
                });
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::RouteType(t),
                });
                Err(match t {
                    RouteType::Unreachable => LocalError::HostUnreachable,
                    RouteType::Prohibit => LocalError::NotPermitted,
                    _ => LocalError::Invalid,
                })
            }
        }
    }

    /// The source address a locally generated packet to `dst` gets.
    pub fn select_source(&self, ns: NsId, dst: Ipv4Addr, oif: Option<DevId>) -> Option<Ipv4Addr> {
        let flow = Flow {
            dst,
            oif,
            ..Default::default()
        };
        let res = self.fib_lookup(ns, &flow).ok()?;
        if let Some(s) = res.route.src {
            return Some(s);
        }
        match res.route.rtype {
            RouteType::Local => Some(dst),
            _ => {
                let nh = res.nexthop()?;
                let target = nh.gw.unwrap_or(dst);
                self.inet_select_addr(ns, Some(nh.dev), target, res.route.scope)
                    .or_else(|| self.inet_select_addr(ns, None, target, Scope::Global))
            }
        }
    }

    /// A fresh IPv4 header for a locally generated packet.
    pub fn new_ip(
        &mut self,
        ns: NsId,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        df: bool,
        ttl: Option<u8>,
    ) -> Ipv4Repr {
        let n = &mut self.namespaces[ns.ix()];
        n.ip_ident = n.ip_ident.wrapping_add(1);
        Ipv4Repr {
            dscp_ecn: 0,
            ident: if df { 0 } else { n.ip_ident },
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            ttl: ttl.unwrap_or(n.sysctl.default_ttl),
            protocol,
            src,
            dst,
            options: Vec::new(),
        }
    }

    // ============================================================== ICMP ==

    fn icmp_rcv(&mut self, cx: &mut Cx, ns: NsId, _dev: DevId, pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let h = ip(&pkt).clone();
        let Some(Header::Icmp(m)) = pkt.headers.get(1) else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("ICMP header".into()),
            });
            return;
        };
        match *m {
            IcmpRepr::EchoRequest { ident, seq } => {
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: "ICMP echo (kernel)".into(),
                });
                let id = self.next_packet_id();
                let iph = self.new_ip(ns, h.dst, h.src, IpProtocol::Icmp, false, None);
                let reply = Packet {
                    id,
                    headers: vec![
                        Header::Ipv4(iph),
                        Header::Icmp(IcmpRepr::EchoReply { ident, seq }),
                    ],
                    payload: pkt.payload.clone(),
                };
                self.trace(cx, place, pkt.id, || TraceEvent::Reply {
                    reply: id,
                    what: "ICMP echo reply".into(),
                });
                let summary = if cx.detail(id) {
                    reply.summary()
                } else {
                    String::new()
                };
                self.trace(cx, place, id, || TraceEvent::Originate {
                    by: "kernel".into(),
                    summary: summary.into(),
                    dst: Some(h.src),
                });
                let _ = self.ip_send(cx, ns, reply, None);
            }
            IcmpRepr::EchoReply { ident, seq } => self.deliver_echo_reply(cx, ns, &pkt, ident, seq),
            IcmpRepr::DestUnreachable { .. } | IcmpRepr::TimeExceeded { .. } => {
                // The protocol's error handler: a TCP or UDP socket first
                // (tcp_v4_err, __udp4_lib_err), then ping and traceroute.
                if !self.sock_icmp_rcv(cx, ns, &pkt) {
                    self.deliver_icmp_error(cx, ns, &pkt)
                }
            }
            _ => {
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: "ICMP (ignored type)".into(),
                });
            }
        }
    }

    /// icmp_send: report a problem with `orig` (an IPv4 datagram) to its source.
    pub fn icmp_send(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        orig: &Packet,
        ty: u8,
        code: u8,
        info: u16,
        in_dev: Option<DevId>,
    ) {
        let place = self.namespaces[ns.ix()].node;
        let Some(Header::Ipv4(oh)) = orig.headers.first() else {
            return;
        };
        // Never about ICMP errors, non-first fragments, or broadcast/multicast.
        if oh.frag_offset != 0
            || oh.dst.is_broadcast()
            || oh.dst.is_multicast()
            || oh.src.is_unspecified()
        {
            return;
        }
        if let (IpProtocol::Icmp, Some(Header::Icmp(m))) = (oh.protocol, orig.headers.get(1))
            && !matches!(m, IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. })
        {
            return;
        }
        let osrc = oh.src;
        let src = if self.is_local_addr(ns, oh.dst) {
            oh.dst
        } else {
            match self.select_source(ns, osrc, None) {
                Some(s) => s,
                None => match in_dev
                    .and_then(|d| self.inet_select_addr(ns, Some(d), osrc, Scope::Global))
                {
                    Some(s) => s,
                    None => return,
                },
            }
        };
        let mut quote = orig.emit_from(0);
        quote.truncate(576 - 20 - 8);
        let msg = match ty {
            icmp::TIME_EXCEEDED => IcmpRepr::TimeExceeded { code },
            _ => IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu: info,
            },
        };
        let kind = icmp_kind_text(ty, code, info);
        let id = self.next_packet_id();
        let mut iph = self.new_ip(ns, src, osrc, IpProtocol::Icmp, false, None);
        iph.dscp_ecn = 0xc0; // icmp errors go out with TOS 0xc0 (IPTOS_PREC_INTERNETCONTROL)
        let p = Packet {
            id,
            headers: vec![Header::Ipv4(iph), Header::Icmp(msg)],
            payload: Payload::Data(quote),
        };
        self.trace(cx, place, orig.id, || TraceEvent::IcmpError {
            kind: kind.clone().into(),
            reply: id,
        });
        let summary = if cx.detail(id) {
            p.summary()
        } else {
            String::new()
        };
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "kernel".into(),
            summary: summary.into(),
            dst: Some(osrc),
        });
        let _ = self.ip_send(cx, ns, p, None);
    }

    // =============================================================== UDP ==

    fn udp_rcv(&mut self, cx: &mut Cx, ns: NsId, dev: DevId, pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let h = ip(&pkt).clone();
        let Some(Header::Udp(u)) = pkt.headers.get(1) else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("UDP header".into()),
            });
            return;
        };
        let dport = u.dst_port;
        // VXLAN sockets (one per port, opened when a VXLAN device goes up).
        let vx = self.namespaces[ns.ix()].devs.values().copied().find(|&d| {
            let dv = &self.devices[d.ix()];
            dv.admin_up
                && matches!(&dv.kind, DevKind::Vxlan(v) if v.dstport == dport && v.local.is_none_or(|l| l == h.dst))
        });
        if vx.is_some() {
            return self.vxlan_rcv(cx, ns, pkt);
        }
        if self.udp_deliver_app(cx, ns, &pkt) {
            return;
        }
        self.trace(cx, place, pkt.id, || TraceEvent::Drop {
            reason: DropReason::NoSocket,
        });
        self.icmp_send(
            cx,
            ns,
            &pkt,
            icmp::DEST_UNREACH,
            icmp::PORT_UNREACH,
            0,
            Some(dev),
        );
    }

    // ============================================================= VXLAN ==

    /// UDP source port for an encapsulated flow (udp_flow_src_port): a hash of
    /// the inner flow scaled into the range.
    fn vxlan_src_port(&self, inner: &Packet, range: (u16, u16), ns: NsId) -> u16 {
        let (min, max) = if range.0 < range.1 {
            range
        } else {
            self.namespaces[ns.ix()].sysctl.ip_local_port_range
        };
        let mut key = Vec::with_capacity(24);
        for h in &inner.headers {
            match h {
                Header::Ethernet(e) => {
                    key.extend_from_slice(&e.src.0);
                    key.extend_from_slice(&e.dst.0);
                }
                Header::Ipv4(i) => {
                    key.extend_from_slice(&i.src.octets());
                    key.extend_from_slice(&i.dst.octets());
                    key.push(u8::from(i.protocol));
                    break;
                }
                _ => {}
            }
        }
        if let Some((s, d)) = inner.l4_ports() {
            key.extend_from_slice(&s.to_be_bytes());
            key.extend_from_slice(&d.to_be_bytes());
        }
        key.extend_from_slice(&self.seed.0.to_be_bytes());
        let h = sim_core::rng::stable_hash(&key);
        let mut hash = (h ^ (h >> 32)) as u32;
        hash ^= hash << 16;
        ((((hash as u64) * ((max - min) as u64)) >> 32) as u16) + min
    }

    fn vxlan_xmit(&mut self, cx: &mut Cx, dev: DevId, pkt: Packet) {
        let d = &self.devices[dev.ix()];
        let ns = d.ns;
        let place = self.namespaces[ns.ix()].node;
        let dnode = d.node;
        let DevKind::Vxlan(vx) = &d.kind else { return };
        // The device's settings, without its FDB (cloning that per packet
        // cost more than the encapsulation).
        let vx = VxlanTx {
            vni: vx.vni,
            dstport: vx.dstport,
            local: vx.local,
            lower: vx.lower,
            ttl: vx.ttl,
            srcport: vx.srcport,
            proxy: vx.proxy,
            l2miss: vx.l2miss,
            l3miss: vx.l3miss,
        };
        let Some(Header::Ethernet(eth)) = pkt.headers.first() else {
            return;
        };
        let eth = *eth;
        // proxy: answer ARP requests from the neighbour table (arp_reduce).
        if vx.proxy
            && let Some(Header::Arp(a)) = pkt.headers.get(1)
            && a.op == ArpOp::Request
        {
            let a = *a;
            if let Some(e) = self.namespaces[ns.ix()]
                .neigh
                .get(dev, a.target_ip)
                .filter(|e| e.valid())
            {
                let mac = e.mac.unwrap();
                let id = self.next_packet_id();
                let reply = Packet {
                    id,
                    headers: vec![
                        Header::Ethernet(EthernetRepr {
                            dst: a.sender_mac,
                            src: mac,
                            ethertype: EtherType::Arp,
                        }),
                        Header::Arp(ArpRepr {
                            op: ArpOp::Reply,
                            sender_mac: mac,
                            sender_ip: a.target_ip,
                            target_mac: a.sender_mac,
                            target_ip: a.sender_ip,
                        }),
                    ],
                    payload: Payload::Data(Vec::new()),
                };
                let what: std::sync::Arc<str> =
                    format!("ARP reply {} is-at {mac} (VXLAN proxy)", a.target_ip).into();
                self.trace(cx, place, pkt.id, || TraceEvent::Reply { reply: id, what });
                cx.sched.schedule_at(cx.now, Event::Rx { dev, pkt: reply });
            } else if vx.l3miss {
                let t = a.target_ip;
                self.trace(cx, place, pkt.id, || TraceEvent::Miss {
                    dev: dnode,
                    what: format!("l3miss {t}").into(),
                });
            }
            return;
        }
        let DevKind::Vxlan(dvx) = &self.devices[dev.ix()].kind else {
            return;
        };
        let exact = dvx.fdb.get(eth.dst);
        let (entry, result_default) = match exact {
            Some(f) => (Some(f.rdsts.clone()), false),
            None => (dvx.fdb.get(MacAddr::ZERO).map(|f| f.rdsts.clone()), true),
        };
        let Some(rdsts) = entry else {
            let mac = eth.dst;
            self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
                dev: dnode,
                mac,
                result: FdbResult::Miss,
            });
            if vx.l2miss && !mac.is_multicast() {
                self.trace(cx, place, pkt.id, || TraceEvent::Miss {
                    dev: dnode,
                    what: format!("l2miss {mac}").into(),
                });
            }
            self.devices[dev.ix()].stats.tx_dropped += 1;
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::FdbMiss,
            });
            return;
        };
        let mac = eth.dst;
        let n = rdsts.len() as u32;
        let first = rdsts.first().map(|r| r.dst);
        self.trace(cx, place, pkt.id, || TraceEvent::FdbLookup {
            dev: dnode,
            mac,
            result: if result_default && n != 1 {
                FdbResult::Flood(n)
            } else {
                FdbResult::Remote(first.unwrap_or(Ipv4Addr::UNSPECIFIED))
            },
        });
        let len = pkt.buffer_len() as u32;
        self.trace(cx, place, pkt.id, || TraceEvent::Transmit {
            dev: dnode,
            len,
        });
        self.capture(cx.now, dev, &pkt, true);
        let sport = self.vxlan_src_port(&pkt, vx.srcport, ns);
        let last = rdsts.len().saturating_sub(1);
        let mut pkt = Some(pkt);
        for (k, rd) in rdsts.iter().enumerate() {
            let Some(inner) = pkt.as_ref() else { break };
            let pid = inner.id;
            let dport = rd.port.unwrap_or(vx.dstport);
            let vni = rd.vni.unwrap_or(vx.vni);
            let flow = Flow {
                dst: rd.dst,
                src: vx.local,
                oif: vx.lower,
                oif_name: vx.lower.map(|l| self.devices[l.ix()].name.as_str()),
                hash: l3_hash(vx.local.unwrap_or(Ipv4Addr::UNSPECIFIED), rd.dst),
                ..Default::default()
            };
            let res = match self.fib_lookup(ns, &flow) {
                Ok(r)
                    if r.route.rtype == RouteType::Unicast || r.route.rtype == RouteType::Local =>
                {
                    r
                }
                _ => {
                    let d = rd.dst;
                    self.trace(cx, place, pid, || TraceEvent::RouteLookup {
                        dst: d,
                        hit: None,
                        decision: None,
                    });
                    self.trace(cx, place, pid, || TraceEvent::Drop {
                        reason: DropReason::NoRoute,
                    });
                    continue;
                }
            };
            if res.nexthop().is_some_and(|n| n.dev == dev) {
                self.trace(cx, place, pid, || TraceEvent::Drop {
                    reason: DropReason::Other(
                        "vxlan: routing loop (underlay route via the VXLAN device itself)".into(),
                    ),
                });
                continue;
            }
            let src = vx.local.or(res.route.src).or_else(|| {
                let nh = res.nexthop()?;
                self.inet_select_addr(ns, Some(nh.dev), nh.gw.unwrap_or(rd.dst), Scope::Global)
            });
            let Some(src) = src else { continue };
            let ttl = if vx.ttl != 0 {
                vx.ttl
            } else if rd.dst.is_multicast() {
                1
            } else {
                self.namespaces[ns.ix()].sysctl.default_ttl
            };
            let outer_ip = self.new_ip(ns, src, rd.dst, IpProtocol::Udp, false, Some(ttl));
            // The last destination takes the packet itself; the others a copy.
            let mut outer = if k == last {
                pkt.take().expect("checked above")
            } else {
                inner.clone()
            };
            outer.headers.splice(
                0..0,
                [
                    Header::Ipv4(outer_ip),
                    Header::Udp(UdpRepr {
                        src_port: sport,
                        dst_port: dport,
                        checksum: true,
                    }),
                    Header::Vxlan(VxlanRepr::new(vni)),
                ],
            );
            let dst = rd.dst;
            self.trace(cx, place, pid, || TraceEvent::Encapsulate {
                dev: dnode,
                encap: Encap::Vxlan {
                    vni,
                    src_port: sport,
                    dst_port: dport,
                },
                outer_src: src,
                outer_dst: dst,
            });
            self.tunnel_out(cx, ns, outer, res);
        }
    }

    /// Sends an encapsulated packet whose underlay route is known: OUTPUT,
    /// then the normal output path (POSTROUTING, fragmentation, neighbour).
    fn tunnel_out(&mut self, cx: &mut Cx, ns: NsId, mut outer: Packet, res: FibResult) {
        let place = self.namespaces[ns.ix()].node;
        let hit = self.route_hit(&res, cx.detail(outer.id));
        let dst = ip(&outer).dst;
        if res.route.rtype == RouteType::Local {
            self.trace(cx, place, outer.id, || TraceEvent::RouteLookup {
                dst,
                hit: Some(hit),
                decision: Some(RouteDecision::Local),
            });
            let lo = self.lo(ns);
            cx.sched.schedule_at(
                cx.now,
                Event::Rx {
                    dev: lo,
                    pkt: outer,
                },
            );
            return;
        }
        self.trace(cx, place, outer.id, || TraceEvent::RouteLookup {
            dst,
            hit: Some(hit),
            decision: Some(RouteDecision::Output),
        });
        let nh = res.nexthop().unwrap().dev;
        if !self.nf_hook(cx, ns, Hook::Output, &mut outer, None, Some(nh)) {
            return;
        }
        self.ip_output(cx, ns, outer, &res, None)
    }

    fn vxlan_rcv(&mut self, cx: &mut Cx, ns: NsId, mut pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let oh = ip(&pkt).clone();
        let (Some(Header::Udp(u)), Some(Header::Vxlan(v))) =
            (pkt.headers.get(1), pkt.headers.get(2))
        else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("VXLAN header".into()),
            });
            return;
        };
        let (u, vni) = (*u, v.vni);
        let dev = self.namespaces[ns.ix()].devs.values().copied().find(|&d| {
            let dv = &self.devices[d.ix()];
            dv.admin_up && matches!(&dv.kind, DevKind::Vxlan(x) if x.dstport == u.dst_port && x.vni == vni && x.local.is_none_or(|l| l == oh.dst))
        });
        let Some(dev) = dev else {
            self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                to: format!("UDP tunnel socket port {}", u.dst_port).into(),
            });
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::NoTunnel,
            });
            return;
        };
        let dnode = self.devices[dev.ix()].node;
        self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
            to: format!("UDP tunnel socket port {} (vxlan_rcv)", u.dst_port).into(),
        });
        pkt.headers.drain(0..3);
        self.trace(cx, place, pkt.id, || TraceEvent::Decapsulate {
            dev: dnode,
            encap: Encap::Vxlan {
                vni,
                src_port: u.src_port,
                dst_port: u.dst_port,
            },
            outer_src: oh.src,
            outer_dst: oh.dst,
        });
        // Learning (vxlan_snoop).
        if let Some(Header::Ethernet(eth)) = pkt.headers.first() {
            let smac = eth.src;
            let now = cx.now;
            if let DevKind::Vxlan(vx) = &mut self.devices[dev.ix()].kind
                && vx.learning
                && smac.is_unicast()
            {
                let learned = match vx.fdb.get_mut(smac) {
                    Some(f) if f.permanent => false,
                    Some(f) => {
                        let changed = f.rdsts.first().map(|r| r.dst) != Some(oh.src);
                        f.rdsts = smallvec::smallvec![crate::linux::VxlanRdst {
                            dst: oh.src,
                            port: None,
                            vni: None,
                        }];
                        f.updated = now;
                        changed
                    }
                    None => {
                        vx.fdb.push(crate::linux::VxlanFdb {
                            mac: smac,
                            rdsts: smallvec::smallvec![crate::linux::VxlanRdst {
                                dst: oh.src,
                                port: None,
                                vni: None,
                            }],
                            permanent: false,
                            updated: now,
                        });
                        true
                    }
                };
                if learned {
                    let ns = self.devices[dev.ix()].ns;
                    self.namespaces[ns.ix()].generation.fdb += 1;
                    self.trace(cx, place, pkt.id, || TraceEvent::Learn {
                        dev: dnode,
                        mac: smac,
                        port: None,
                        remote: Some(oh.src),
                    });
                }
            }
        }
        cx.sched.schedule_at(cx.now, Event::Rx { dev, pkt });
    }

    // ============================================================== IPIP ==

    fn ipip_xmit(&mut self, cx: &mut Cx, dev: DevId, pkt: Packet, nh: Option<Ipv4Addr>) {
        let d = &self.devices[dev.ix()];
        let ns = d.ns;
        let place = self.namespaces[ns.ix()].node;
        let dnode = d.node;
        let DevKind::Ipip(t) = &d.kind else { return };
        let t = (**t).clone();
        let inner = ip(&pkt).clone();
        let remote = t
            .remote
            .or(nh.filter(|n| *n != inner.dst || t.remote.is_some()));
        let remote = match remote.or(nh) {
            Some(r) if !r.is_unspecified() => r,
            _ => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Other(
                        "ipip: no tunnel destination (NBMA tunnel, no gateway)".into(),
                    ),
                });
                self.icmp_send(
                    cx,
                    ns,
                    &pkt,
                    icmp::DEST_UNREACH,
                    icmp::HOST_UNREACH,
                    0,
                    None,
                );
                return;
            }
        };
        let flow = Flow {
            dst: remote,
            src: t.local,
            oif: t.lower,
            oif_name: t.lower.map(|l| self.devices[l.ix()].name.as_str()),
            hash: l3_hash(t.local.unwrap_or(Ipv4Addr::UNSPECIFIED), remote),
            ..Default::default()
        };
        let res = match self.fib_lookup(ns, &flow) {
            Ok(r) if r.route.rtype == RouteType::Unicast => r,
            _ => {
                self.trace(cx, place, pkt.id, || TraceEvent::RouteLookup {
                    dst: remote,
                    hit: None,
                    decision: None,
                });
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::NoRoute,
                });
                self.icmp_send(
                    cx,
                    ns,
                    &pkt,
                    icmp::DEST_UNREACH,
                    icmp::HOST_UNREACH,
                    0,
                    None,
                );
                return;
            }
        };
        if res.nexthop().is_some_and(|n| n.dev == dev) {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Other("ipip: local routing loop".into()),
            });
            return;
        }
        let under = res.nexthop().unwrap().dev;
        let mtu = res
            .route
            .mtu
            .unwrap_or(self.devices[under.ix()].mtu)
            .saturating_sub(20);
        if inner.dont_frag && pkt.buffer_len() as u32 > mtu {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::FragNeeded { mtu },
            });
            self.icmp_send(
                cx,
                ns,
                &pkt,
                icmp::DEST_UNREACH,
                icmp::FRAG_NEEDED,
                mtu as u16,
                None,
            );
            return;
        }
        let src = t.local.or(res.route.src).or_else(|| {
            let n = res.nexthop()?;
            self.inet_select_addr(ns, Some(n.dev), n.gw.unwrap_or(remote), Scope::Global)
        });
        let Some(src) = src else { return };
        let len = pkt.buffer_len() as u32;
        self.trace(cx, place, pkt.id, || TraceEvent::Transmit {
            dev: dnode,
            len,
        });
        self.capture(cx.now, dev, &pkt, true);
        let ttl = if t.ttl == 0 { inner.ttl } else { t.ttl };
        let df = t.pmtudisc || inner.dont_frag;
        let mut outer_ip = self.new_ip(ns, src, remote, IpProtocol::Ipip, df, Some(ttl));
        outer_ip.dscp_ecn = inner.dscp_ecn;
        let mut outer = pkt;
        outer.headers.insert(0, Header::Ipv4(outer_ip));
        self.trace(cx, place, outer.id, || TraceEvent::Encapsulate {
            dev: dnode,
            encap: Encap::Ipip,
            outer_src: src,
            outer_dst: remote,
        });
        self.tunnel_out(cx, ns, outer, res);
    }

    fn ipip_rcv(&mut self, cx: &mut Cx, ns: NsId, in_dev: DevId, mut pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let host = self.namespaces[ns.ix()].host;
        if !self.hosts[host.ix()].modules.iter().any(|m| m == "ipip") {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Other(
                    "no handler for IP protocol 4 (ipip module not loaded)".into(),
                ),
            });
            self.icmp_send(
                cx,
                ns,
                &pkt,
                icmp::DEST_UNREACH,
                icmp::PROT_UNREACH,
                0,
                Some(in_dev),
            );
            return;
        }
        let oh = ip(&pkt).clone();
        let tunnels: Vec<(DevId, crate::linux::Ipip)> = self.namespaces[ns.ix()]
            .devs
            .values()
            .filter_map(|&d| match &self.devices[d.ix()].kind {
                DevKind::Ipip(t) if self.devices[d.ix()].admin_up => Some((d, (**t).clone())),
                _ => None,
            })
            .collect();
        let pick = tunnels
            .iter()
            .find(|(_, t)| !t.fallback && t.local == Some(oh.dst) && t.remote == Some(oh.src))
            .or_else(|| {
                tunnels
                    .iter()
                    .find(|(_, t)| !t.fallback && t.remote == Some(oh.src) && t.local.is_none())
            })
            .or_else(|| {
                tunnels
                    .iter()
                    .find(|(_, t)| !t.fallback && t.local == Some(oh.dst) && t.remote.is_none())
            })
            .or_else(|| tunnels.iter().find(|(_, t)| t.fallback));
        let Some(&(dev, _)) = pick else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::NoTunnel,
            });
            self.icmp_send(
                cx,
                ns,
                &pkt,
                icmp::DEST_UNREACH,
                icmp::PORT_UNREACH,
                0,
                Some(in_dev),
            );
            return;
        };
        let dnode = self.devices[dev.ix()].node;
        self.trace(cx, place, pkt.id, || TraceEvent::Decapsulate {
            dev: dnode,
            encap: Encap::Ipip,
            outer_src: oh.src,
            outer_dst: oh.dst,
        });
        pkt.headers.remove(0);
        cx.sched.schedule_at(cx.now, Event::Rx { dev, pkt });
    }
}

/// Errors a socket sees for a locally generated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalError {
    NetUnreachable,
    HostUnreachable,
    NotPermitted,
    MessageTooLong { mtu: u32 },
    Invalid,
}

/// What `vxlan_xmit` needs of a VXLAN device's settings.
#[derive(Clone, Copy)]
struct VxlanTx {
    vni: u32,
    dstport: u16,
    local: Option<Ipv4Addr>,
    lower: Option<DevId>,
    ttl: u8,
    srcport: (u16, u16),
    proxy: bool,
    l2miss: bool,
    l3miss: bool,
}

/// ICMP type/code in words, as ping prints them.
pub fn icmp_kind_text(ty: u8, code: u8, info: u16) -> String {
    match (ty, code) {
        (3, 0) => "Destination Net Unreachable".into(),
        (3, 1) => "Destination Host Unreachable".into(),
        (3, 2) => "Destination Protocol Unreachable".into(),
        (3, 3) => "Destination Port Unreachable".into(),
        (3, 4) => format!("Frag needed and DF set (mtu = {info})"),
        (3, 13) => "Packet filtered".into(),
        (11, 0) => "Time to live exceeded".into(),
        (11, 1) => "Frag reassembly time exceeded".into(),
        (t, c) => format!("type {t} code {c}"),
    }
}

/// Re-export so the signature above reads naturally.
pub mod sim_core_seg {
    pub type SegIdAlias = crate::linux::SegId;
}

#[allow(dead_code)]
fn _unused(_: NodeId) {}
