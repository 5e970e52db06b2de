//! Traffic from outside the modelled applications: one UDP datagram sent as
//! a local socket would send it, and a constant-rate stream of them (load
//! tests and benchmarks).

use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::packet::{Header, Packet, PacketId, Payload};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{TraceEvent, TraceSink};
use sim_core::wire::{IpProtocol, UdpRepr};

use crate::linux::stack::LocalError;
use crate::linux::{Cx, NsId, World};
use crate::sim::{RunError, Simulation};

/// A UDP datagram: addresses, ports and the payload length (zero filler
/// bytes; the IP datagram is `payload + 28` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSpec {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: usize,
}

impl World {
    /// Sends one UDP datagram from `ns` now, as an unconnected UDP socket
    /// would (`sendto`): a fresh IPv4 header (DF clear, the namespace's
    /// default TTL), then `ip_send`. Returns its packet id, or the error the
    /// socket would see.
    pub fn send_udp(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        spec: &UdpSpec,
    ) -> Result<PacketId, LocalError> {
        self.send_udp_traced(cx, ns, spec, &mut None)
    }

    /// [`send_udp`](Self::send_udp) with the `Originate` event's texts kept
    /// in `texts` between calls: every datagram of one spec has the same
    /// summary (it shows addresses, ports and length; the IP ident only for
    /// fragments, which a fresh datagram never is).
    fn send_udp_traced(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        spec: &UdpSpec,
        texts: &mut Option<(Arc<str>, Arc<str>)>,
    ) -> Result<PacketId, LocalError> {
        let id = self.next_packet_id();
        let iph = self.new_ip(ns, spec.src, spec.dst, IpProtocol::Udp, false, None);
        let pkt = Packet {
            id,
            headers: vec![
                Header::Ipv4(iph),
                Header::Udp(UdpRepr {
                    src_port: spec.src_port,
                    dst_port: spec.dst_port,
                    checksum: true,
                }),
            ],
            payload: Payload::Filler(spec.payload),
        };
        let place = self.namespaces[ns.ix()].node;
        let dst = spec.dst;
        self.trace(cx, place, id, || {
            let (by, summary) =
                texts.get_or_insert_with(|| ("udp sender".into(), pkt.summary().into()));
            TraceEvent::Originate {
                by: by.clone(),
                summary: summary.clone(),
                dst: Some(dst),
            }
        });
        self.ip_send(cx, ns, pkt, None).map(|()| id)
    }
}

/// A constant-rate stream: `count` datagrams from `ns`, the first at
/// `start`, then one every `interval`.
#[derive(Clone, Copy, Debug)]
pub struct UdpStream {
    pub ns: NsId,
    pub spec: UdpSpec,
    pub count: u64,
    pub start: SimTime,
    pub interval: SimDuration,
}

/// What a stream did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams `ip_send` refused (no route, message too long, ...).
    pub refused: u64,
}

impl Simulation {
    /// Runs a UDP stream: before each send, every event up to its time runs,
    /// so sends interleave with the traffic already in flight as they would
    /// from a timer. Returns when the last datagram has been handed to the
    /// stack; the caller runs the simulation on to let it arrive.
    pub fn run_udp_stream(
        &mut self,
        stream: &UdpStream,
        sink: &mut dyn TraceSink,
    ) -> Result<StreamReport, RunError> {
        let mut report = StreamReport::default();
        let mut at = stream.start;
        let mut texts = None;
        for _ in 0..stream.count {
            self.run_until(at, sink)?;
            let mut cx = Cx::new(at, &mut self.sched, &mut *sink);
            match self
                .world
                .send_udp_traced(&mut cx, stream.ns, &stream.spec, &mut texts)
            {
                Ok(_) => report.sent += 1,
                Err(_) => report.refused += 1,
            }
            at += stream.interval;
        }
        Ok(report)
    }
}
