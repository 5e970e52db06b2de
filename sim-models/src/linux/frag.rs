//! IPv4 reassembly (ip_defrag): fragments of a datagram addressed to this
//! namespace are held until the whole datagram is there, then delivered as
//! one packet. Queues expire after `ipfrag_time` (30 s), with ICMP time
//! exceeded (fragment reassembly) if the first fragment had arrived.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use sim_core::packet::{DecodeOptions, Header, Layer, Packet, Payload};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{DropReason, TraceEvent};
use sim_core::wire::Ipv4Repr;

use crate::linux::{Cx, DevKind, NsId, World};

/// `net.ipv4.ipfrag_time`.
pub const IPFRAG_TIME: SimDuration = SimDuration::from_secs(30);

/// Fragments of one datagram.
#[derive(Debug, Clone)]
pub struct FragQueue {
    pub started: SimTime,
    /// The header of the fragment at offset 0, once it arrived.
    pub first: Option<Ipv4Repr>,
    /// (offset in bytes, data, more fragments).
    pub parts: Vec<(usize, Vec<u8>, bool)>,
}

/// Reassembly queues of a namespace, keyed by (src, dst, protocol, id).
pub type FragTable = BTreeMap<(Ipv4Addr, Ipv4Addr, u8, u16), FragQueue>;

impl World {
    /// Takes a fragment; returns the reassembled datagram when complete.
    pub fn ip_defrag(&mut self, cx: &mut Cx, ns: NsId, pkt: Packet) -> Option<Packet> {
        let place = self.namespaces[ns.ix()].node;
        let Some(Header::Ipv4(h)) = pkt.headers.first() else {
            return None;
        };
        let h = h.clone();
        let key = (h.src, h.dst, u8::from(h.protocol), h.ident);
        let data = pkt.emit_from(1);
        let now = cx.now;
        // Expire old queues first.
        self.namespaces[ns.ix()]
            .frags
            .retain(|_, q| now.saturating_since(q.started) < IPFRAG_TIME);
        let q = self.namespaces[ns.ix()]
            .frags
            .entry(key)
            .or_insert_with(|| FragQueue {
                started: now,
                first: None,
                parts: Vec::new(),
            });
        let off = h.frag_offset as usize * 8;
        if off == 0 {
            q.first = Some(h.clone());
        }
        if !q.parts.iter().any(|(o, _, _)| *o == off) {
            q.parts.push((off, data, h.more_frags));
        }
        q.parts.sort_by_key(|(o, _, _)| *o);
        // Complete when the pieces cover 0.. contiguously up to the last one.
        let mut end = 0usize;
        let mut last = false;
        for (o, d, more) in &q.parts {
            if *o > end {
                break;
            }
            end = end.max(o + d.len());
            if !more {
                last = true;
            }
        }
        let n = q.parts.len() as u32;
        if !(last && q.first.is_some()) {
            self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                to: format!("IPv4 reassembly (fragment at offset {off}, {n} held)").into(),
            });
            return None;
        }
        let q = self.namespaces[ns.ix()].frags.remove(&key).unwrap();
        let mut payload = vec![0u8; end];
        for (o, d, _) in &q.parts {
            payload[*o..o + d.len()].copy_from_slice(d);
        }
        let mut first = q.first.unwrap();
        first.more_frags = false;
        first.frag_offset = 0;
        let whole = Packet {
            id: pkt.id,
            headers: vec![Header::Ipv4(first)],
            payload: Payload::Data(payload),
        };
        let bytes = whole.emit();
        let vxlan_ports: Vec<u16> = self.namespaces[ns.ix()]
            .devs
            .values()
            .filter_map(|d| match &self.devices[d.ix()].kind {
                DevKind::Vxlan(v) => Some(v.dstport),
                _ => None,
            })
            .collect();
        let opts = DecodeOptions {
            vxlan_ports,
            verify_checksums: false,
        };
        match Packet::parse(&bytes, Layer::Ipv4, &opts) {
            Ok(mut p) => {
                p.id = pkt.id;
                let len = bytes.len();
                self.trace(cx, place, pkt.id, || TraceEvent::Deliver {
                    to: format!("IPv4 reassembly: {n} fragments, {len} bytes").into(),
                });
                Some(p)
            }
            Err(e) => {
                self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                    reason: DropReason::Malformed(e.to_string().into()),
                });
                None
            }
        }
    }
}
