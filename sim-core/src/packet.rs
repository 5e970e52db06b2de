//! The packet model: a typed stack of headers and a payload.
//!
//! A [`Packet`] is what travels through the simulation. Its headers are the
//! reprs of [`crate::wire`], outermost first; lengths and checksums are not
//! stored but derived from the stack when the packet is emitted, so the
//! model can rewrite a header (TTL, NAT addresses) or push and pop tunnel
//! headers without fixing anything up. IP-in-IP is an `Ipv4` header with
//! protocol `Ipip` followed by another `Ipv4`; VXLAN is `Ethernet, Ipv4,
//! Udp, Vxlan, Ethernet, ...`.
//!
//! [`Packet::len_from`] and [`Packet::buffer_len`] compute lengths without
//! allocating (the simulator checks the MTU on every hop);
//! [`Packet::emit`] produces the exact wire bytes (for captures), and
//! [`Packet::parse`] decodes captured bytes back into a stack.

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use crate::wire::icmp::{time_exceeded, unreachable};
use crate::wire::{
    ArpOp, ArpRepr, EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Repr, TcpFlags, TcpOption,
    TcpRepr, UdpRepr, VxlanRepr, WireError,
};

/// A packet's identity in a run (in traces and captures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub u64);

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One header of a packet's stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    Ethernet(EthernetRepr),
    Arp(ArpRepr),
    Ipv4(Ipv4Repr),
    Icmp(IcmpRepr),
    Udp(UdpRepr),
    Tcp(TcpRepr),
    Vxlan(VxlanRepr),
}

impl Header {
    /// The header's length on the wire.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            Header::Ethernet(_) => EthernetRepr::LEN,
            Header::Arp(_) => ArpRepr::LEN,
            Header::Ipv4(h) => h.header_len(),
            Header::Icmp(_) => IcmpRepr::LEN,
            Header::Udp(_) => UdpRepr::LEN,
            Header::Tcp(h) => h.header_len(),
            Header::Vxlan(_) => VxlanRepr::LEN,
        }
    }

    /// The protocol's name: `Ethernet`, `ARP`, `IPv4`, `ICMP`, `UDP`,
    /// `TCP`, `VXLAN`.
    pub fn name(&self) -> &'static str {
        match self {
            Header::Ethernet(_) => "Ethernet",
            Header::Arp(_) => "ARP",
            Header::Ipv4(_) => "IPv4",
            Header::Icmp(_) => "ICMP",
            Header::Udp(_) => "UDP",
            Header::Tcp(_) => "TCP",
            Header::Vxlan(_) => "VXLAN",
        }
    }
}

/// A repr that can be a [`Header`]: lets [`Packet::find`] and friends pick
/// headers by type.
pub trait HeaderRepr: Sized {
    fn from_header(h: &Header) -> Option<&Self>;
    fn from_header_mut(h: &mut Header) -> Option<&mut Self>;
}

macro_rules! header_repr {
    ($($variant:ident($ty:ty)),* $(,)?) => {$(
        impl HeaderRepr for $ty {
            #[inline]
            fn from_header(h: &Header) -> Option<&Self> {
                match h {
                    Header::$variant(r) => Some(r),
                    _ => None,
                }
            }
            #[inline]
            fn from_header_mut(h: &mut Header) -> Option<&mut Self> {
                match h {
                    Header::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
        impl From<$ty> for Header {
            fn from(r: $ty) -> Header {
                Header::$variant(r)
            }
        }
    )*};
}

header_repr!(
    Ethernet(EthernetRepr),
    Arp(ArpRepr),
    Ipv4(Ipv4Repr),
    Icmp(IcmpRepr),
    Udp(UdpRepr),
    Tcp(TcpRepr),
    Vxlan(VxlanRepr),
);

/// What follows the headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// These bytes.
    Data(Vec<u8>),
    /// That many zero bytes, never allocated until emitted (bulk traffic of
    /// a given size). Parsing gives `Data`: compare payloads with
    /// [`Payload::bytes_eq`].
    Filler(usize),
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Filler(0)
    }
}

impl Payload {
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Payload::Data(d) => d.len(),
            Payload::Filler(n) => *n,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes if this is `Data`.
    pub fn data(&self) -> Option<&[u8]> {
        match self {
            Payload::Data(d) => Some(d),
            Payload::Filler(_) => None,
        }
    }

    /// Writes the payload into `buf`, which is exactly `self.len()` long.
    pub fn write_to(&self, buf: &mut [u8]) {
        match self {
            Payload::Data(d) => buf.copy_from_slice(d),
            Payload::Filler(_) => buf.fill(0),
        }
    }

    /// The payload's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Payload::Data(d) => d.clone(),
            Payload::Filler(n) => vec![0; *n],
        }
    }

    /// Whether the two payloads are the same bytes (`Filler(n)` equals `n`
    /// zero bytes of `Data`).
    pub fn bytes_eq(&self, other: &Payload) -> bool {
        match (self, other) {
            (Payload::Data(a), Payload::Data(b)) => a == b,
            (Payload::Filler(n), Payload::Filler(m)) => n == m,
            (Payload::Filler(n), Payload::Data(d)) | (Payload::Data(d), Payload::Filler(n)) => {
                d.len() == *n && d.iter().all(|&b| b == 0)
            }
        }
    }
}

/// Which header the bytes given to [`Packet::parse`] start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Ipv4,
}

/// How [`Packet::parse`] decodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// UDP destination ports whose payload is decoded as VXLAN.
    pub vxlan_ports: Vec<u16>,
    /// Verify ICMP, UDP and TCP checksums (the IPv4 header checksum is
    /// always verified). Turn off for captures of locally generated traffic
    /// with checksum offload, which carry only a partial checksum.
    pub verify_checksums: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            vxlan_ports: vec![VxlanRepr::IANA_PORT, VxlanRepr::LINUX_PORT],
            verify_checksums: true,
        }
    }
}

/// A parsed packet and what parsing dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub packet: Packet,
    /// Bytes after the last length-delimited unit (Ethernet padding after
    /// an IPv4 datagram or ARP packet, bytes beyond a UDP length), not part
    /// of the packet: `bytes.len() == packet.buffer_len() + trailing`.
    pub trailing: usize,
}

/// A packet: headers, outermost first, then the payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    pub id: PacketId,
    pub headers: Vec<Header>,
    pub payload: Payload,
}

impl Packet {
    pub fn new(id: PacketId, headers: Vec<Header>, payload: Payload) -> Self {
        Packet {
            id,
            headers,
            payload,
        }
    }

    // ---- lengths ------------------------------------------------------

    /// The length of the bytes from header `idx` on (the payload alone when
    /// `idx == headers.len()`). Does not allocate.
    #[inline]
    pub fn len_from(&self, idx: usize) -> usize {
        self.headers[idx..]
            .iter()
            .map(Header::buffer_len)
            .sum::<usize>()
            + self.payload.len()
    }

    /// The length of the whole packet on the wire.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.len_from(0)
    }

    /// The offset of header `idx` in the emitted bytes.
    pub fn offset_of(&self, idx: usize) -> usize {
        self.headers[..idx].iter().map(Header::buffer_len).sum()
    }

    // ---- emitting -----------------------------------------------------

    /// The packet's exact wire bytes, every length and checksum computed.
    pub fn emit(&self) -> Vec<u8> {
        self.emit_from(0)
    }

    /// The bytes from header `idx` on, exactly as they are within
    /// [`emit`](Self::emit) (UDP and TCP checksums use the addresses of the
    /// IPv4 header before `idx` that encloses them). Used to quote a
    /// datagram in an ICMP error and to split one into fragments.
    pub fn emit_from(&self, idx: usize) -> Vec<u8> {
        let mut buf = vec![0u8; self.len_from(idx)];
        self.emit_from_into(idx, &mut buf);
        buf
    }

    /// Emits the bytes from header `idx` on into `buf`, which must be
    /// exactly [`len_from(idx)`](Self::len_from) long.
    pub fn emit_from_into(&self, idx: usize, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.len_from(idx), "buffer length");
        let pl = self.payload.len();
        let end = buf.len();
        self.payload.write_to(&mut buf[end - pl..]);
        // Innermost first: an outer checksum covers the inner ones.
        let mut off = end - pl;
        for i in (idx..self.headers.len()).rev() {
            let h = &self.headers[i];
            off -= h.buffer_len();
            let b = &mut buf[off..];
            match h {
                Header::Ethernet(r) => r.emit(b),
                Header::Arp(r) => r.emit(b),
                Header::Ipv4(r) => r.emit(b),
                Header::Icmp(r) => r.emit(b),
                Header::Udp(r) => {
                    let (src, dst) = self.enclosing_addrs(i);
                    r.emit(b, src, dst);
                }
                Header::Tcp(r) => {
                    let (src, dst) = self.enclosing_addrs(i);
                    r.emit(b, src, dst);
                }
                Header::Vxlan(r) => r.emit(b),
            }
        }
    }

    /// The addresses of the IPv4 header nearest before header `i`.
    fn enclosing_addrs(&self, i: usize) -> (Ipv4Addr, Ipv4Addr) {
        self.headers[..i]
            .iter()
            .rev()
            .find_map(|h| match h {
                Header::Ipv4(ip) => Some((ip.src, ip.dst)),
                _ => None,
            })
            .unwrap_or((Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED))
    }

    // ---- parsing ------------------------------------------------------

    /// Decodes `bytes` (a frame starting with `first`) into a packet with
    /// id 0. See [`decode`](Self::decode).
    pub fn parse(bytes: &[u8], first: Layer, opts: &DecodeOptions) -> Result<Packet, WireError> {
        Self::decode(bytes, first, opts).map(|d| d.packet)
    }

    /// Decodes the whole stack: Ethernet → ARP or IPv4; IPv4 → ICMP, UDP,
    /// TCP or IPv4 (IPIP), unless it is a fragment; UDP → VXLAN on
    /// `opts.vxlan_ports`, then the inner Ethernet. ICMP keeps what follows
    /// its header (echo data, or the quote of an error) as payload; so is
    /// anything else not understood. Bytes beyond an IPv4 total length, an
    /// ARP packet or a UDP length are dropped and counted in `trailing` (the
    /// last case, a UDP length shorter than its IPv4 payload, re-emits as a
    /// shorter datagram; Linux trims such datagrams the same way).
    ///
    /// Errors: any header that does not decode (see [`WireError`]), and,
    /// with `opts.verify_checksums`, any bad ICMP, UDP or TCP checksum.
    pub fn decode(bytes: &[u8], first: Layer, opts: &DecodeOptions) -> Result<Decoded, WireError> {
        #[derive(Clone, Copy)]
        enum Next {
            Ethernet,
            Arp,
            Ipv4,
            Icmp,
            Udp,
            Tcp,
            Vxlan,
            Data,
        }
        let mut headers = Vec::with_capacity(4);
        let mut rest = bytes;
        let mut addrs = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        let mut next = match first {
            Layer::Ethernet => Next::Ethernet,
            Layer::Ipv4 => Next::Ipv4,
        };
        loop {
            next = match next {
                Next::Ethernet => {
                    let (r, n) = EthernetRepr::parse(rest)?;
                    rest = &rest[n..];
                    headers.push(Header::Ethernet(r));
                    match r.ethertype {
                        EtherType::Ipv4 => Next::Ipv4,
                        EtherType::Arp => Next::Arp,
                        _ => Next::Data,
                    }
                }
                Next::Arp => {
                    let (r, n) = ArpRepr::parse(rest)?;
                    rest = &rest[n..n];
                    headers.push(Header::Arp(r));
                    Next::Data
                }
                Next::Ipv4 => {
                    let (r, _, payload) = Ipv4Repr::parse_datagram(rest)?;
                    rest = payload;
                    addrs = (r.src, r.dst);
                    let next = if r.is_fragment() {
                        Next::Data
                    } else {
                        match r.protocol {
                            IpProtocol::Icmp => Next::Icmp,
                            IpProtocol::Udp => Next::Udp,
                            IpProtocol::Tcp => Next::Tcp,
                            IpProtocol::Ipip => Next::Ipv4,
                            IpProtocol::Unknown(_) => Next::Data,
                        }
                    };
                    headers.push(Header::Ipv4(r));
                    next
                }
                Next::Icmp => {
                    let (r, n) = IcmpRepr::parse(rest)?;
                    if opts.verify_checksums {
                        IcmpRepr::verify_checksum(rest)?;
                    }
                    rest = &rest[n..];
                    headers.push(Header::Icmp(r));
                    Next::Data
                }
                Next::Udp => {
                    let (r, payload) = UdpRepr::parse_datagram(rest)?;
                    if opts.verify_checksums {
                        UdpRepr::verify_checksum(rest, addrs.0, addrs.1)?;
                    }
                    rest = payload;
                    headers.push(Header::Udp(r));
                    if opts.vxlan_ports.contains(&r.dst_port)
                        && rest.len() >= VxlanRepr::LEN + EthernetRepr::LEN
                    {
                        Next::Vxlan
                    } else {
                        Next::Data
                    }
                }
                Next::Tcp => {
                    let (r, n) = TcpRepr::parse(rest)?;
                    if opts.verify_checksums {
                        TcpRepr::verify_checksum(rest, addrs.0, addrs.1)?;
                    }
                    rest = &rest[n..];
                    headers.push(Header::Tcp(r));
                    Next::Data
                }
                Next::Vxlan => {
                    let (r, n) = VxlanRepr::parse(rest)?;
                    rest = &rest[n..];
                    headers.push(Header::Vxlan(r));
                    Next::Ethernet
                }
                Next::Data => break,
            };
        }
        let packet = Packet {
            id: PacketId(0),
            headers,
            payload: Payload::Data(rest.to_vec()),
        };
        let trailing = bytes.len() - packet.buffer_len();
        Ok(Decoded { packet, trailing })
    }

    // ---- building -----------------------------------------------------

    /// Puts `outer` in front of the headers (encapsulation).
    pub fn encapsulate(&mut self, outer: impl IntoIterator<Item = Header>) {
        let old = std::mem::take(&mut self.headers);
        self.headers.extend(outer);
        self.headers.extend(old);
    }

    /// Removes the `n` outermost headers (decapsulation) and returns them.
    pub fn decapsulate(&mut self, n: usize) -> Vec<Header> {
        self.headers.drain(..n).collect()
    }

    // ---- finding headers ----------------------------------------------

    /// The first header of type `T`.
    pub fn find<T: HeaderRepr>(&self) -> Option<&T> {
        self.headers.iter().find_map(T::from_header)
    }

    /// The first header of type `T`, mutably.
    pub fn find_mut<T: HeaderRepr>(&mut self) -> Option<&mut T> {
        self.headers.iter_mut().find_map(T::from_header_mut)
    }

    /// The index of the first header of type `T` at or after `start`.
    pub fn position_from<T: HeaderRepr>(&self, start: usize) -> Option<usize> {
        self.headers
            .get(start..)?
            .iter()
            .position(|h| T::from_header(h).is_some())
            .map(|i| i + start)
    }

    /// The index of the first header of type `T`.
    pub fn position<T: HeaderRepr>(&self) -> Option<usize> {
        self.position_from::<T>(0)
    }

    /// Header `idx` if it is of type `T`.
    pub fn get<T: HeaderRepr>(&self, idx: usize) -> Option<&T> {
        self.headers.get(idx).and_then(T::from_header)
    }

    /// Header `idx` if it is of type `T`, mutably.
    pub fn get_mut<T: HeaderRepr>(&mut self, idx: usize) -> Option<&mut T> {
        self.headers.get_mut(idx).and_then(T::from_header_mut)
    }

    /// The outermost Ethernet header.
    pub fn ethernet(&self) -> Option<&EthernetRepr> {
        self.find()
    }

    /// The outermost Ethernet header, mutably.
    pub fn ethernet_mut(&mut self) -> Option<&mut EthernetRepr> {
        self.find_mut()
    }

    /// The outermost ARP packet.
    pub fn arp(&self) -> Option<&ArpRepr> {
        self.find()
    }

    /// The outermost IPv4 header.
    pub fn ipv4(&self) -> Option<&Ipv4Repr> {
        self.find()
    }

    /// The outermost IPv4 header, mutably.
    pub fn ipv4_mut(&mut self) -> Option<&mut Ipv4Repr> {
        self.find_mut()
    }

    /// The index of the outermost IPv4 header.
    pub fn index_of_first_ipv4(&self) -> Option<usize> {
        self.position::<Ipv4Repr>()
    }

    /// The index of the IPv4 header inside the outermost one's tunnel (IPIP,
    /// or VXLAN's inner frame): the second IPv4 header.
    pub fn index_of_inner_ipv4(&self) -> Option<usize> {
        let first = self.index_of_first_ipv4()?;
        self.position_from::<Ipv4Repr>(first + 1)
    }

    /// The second IPv4 header, if the packet is tunnelled.
    pub fn inner_ipv4(&self) -> Option<&Ipv4Repr> {
        self.get(self.index_of_inner_ipv4()?)
    }

    /// The second IPv4 header, mutably.
    pub fn inner_ipv4_mut(&mut self) -> Option<&mut Ipv4Repr> {
        let i = self.index_of_inner_ipv4()?;
        self.get_mut(i)
    }

    /// The last IPv4 header (the outermost one when not tunnelled).
    pub fn innermost_ipv4(&self) -> Option<&Ipv4Repr> {
        self.headers.iter().rev().find_map(Ipv4Repr::from_header)
    }

    /// The header right after the IPv4 header at `ip_idx` — its transport
    /// (ICMP, UDP, TCP) or, for IPIP, the inner IPv4.
    pub fn after(&self, ip_idx: usize) -> Option<&Header> {
        self.headers.get(ip_idx + 1)
    }

    /// Source and destination ports of the UDP or TCP header right after the
    /// IPv4 header at `ip_idx`.
    pub fn l4_ports_at(&self, ip_idx: usize) -> Option<(u16, u16)> {
        match self.after(ip_idx)? {
            Header::Udp(u) => Some((u.src_port, u.dst_port)),
            Header::Tcp(t) => Some((t.src_port, t.dst_port)),
            _ => None,
        }
    }

    /// Source and destination ports of the outermost IPv4 datagram's UDP or
    /// TCP header (for VXLAN, the outer UDP ports).
    pub fn l4_ports(&self) -> Option<(u16, u16)> {
        self.l4_ports_at(self.index_of_first_ipv4()?)
    }

    /// The outermost ICMP header.
    pub fn icmp(&self) -> Option<&IcmpRepr> {
        self.find()
    }

    /// The outermost UDP header.
    pub fn udp(&self) -> Option<&UdpRepr> {
        self.find()
    }

    /// The outermost TCP header.
    pub fn tcp(&self) -> Option<&TcpRepr> {
        self.find()
    }

    /// The outermost VXLAN header.
    pub fn vxlan(&self) -> Option<&VxlanRepr> {
        self.find()
    }

    // ---- describing ---------------------------------------------------

    /// A tcpdump-like one-line description: `IP 172.16.1.1 > 172.16.2.1:
    /// ICMP echo request, id 1, seq 1, length 64`. Tunnelled packets show the
    /// outer then the inner headers, as tcpdump does (`IP a.p > b.4789:
    /// VXLAN, flags [I] (0x08), vni 1 IP c > d: ...`). Link-layer headers
    /// are not shown, as with tcpdump without `-e`.
    /// [`summary`](Self::summary) as the trace's shared string, built in a
    /// reusable buffer (one allocation: the result's).
    pub fn summary_arc(&self) -> std::sync::Arc<str> {
        thread_local! {
            static BUF: std::cell::RefCell<String> =
                std::cell::RefCell::new(String::with_capacity(256));
        }
        BUF.with_borrow_mut(|s| {
            s.clear();
            self.describe(0, s);
            std::sync::Arc::from(s.as_str())
        })
    }

    pub fn summary(&self) -> String {
        // Room for a TCP segment's summary with its options, so that it is
        // built without growing.
        let mut s = String::with_capacity(160);
        self.describe(0, &mut s);
        s
    }

    fn describe(&self, i: usize, out: &mut String) {
        let Some(h) = self.headers.get(i) else {
            let _ = write!(out, "data, length {}", self.payload.len());
            return;
        };
        let _ = match h {
            Header::Ethernet(e) => match self.headers.get(i + 1) {
                Some(_) => return self.describe(i + 1, out),
                None => write!(
                    out,
                    "ethertype {} ({:#06x}), length {}",
                    e.ethertype,
                    u16::from(e.ethertype),
                    self.len_from(i)
                ),
            },
            Header::Arp(a) => {
                let len = self.len_from(i);
                match a.op {
                    ArpOp::Request => write!(
                        out,
                        "ARP, Request who-has {} tell {}, length {len}",
                        a.target_ip, a.sender_ip
                    ),
                    ArpOp::Reply => write!(
                        out,
                        "ARP, Reply {} is-at {}, length {len}",
                        a.sender_ip, a.sender_mac
                    ),
                    ArpOp::Unknown(op) => write!(
                        out,
                        "ARP, op {op} {} ({}) > {} ({}), length {len}",
                        a.sender_ip, a.sender_mac, a.target_ip, a.target_mac
                    ),
                }
            }
            Header::Ipv4(ip) => return self.describe_ipv4(i, ip, out),
            Header::Icmp(_) => return self.describe_icmp(i, out),
            Header::Udp(u) => {
                let _ = write!(out, "UDP {} > {}: ", u.src_port, u.dst_port);
                return self.describe_udp_payload(i, out);
            }
            Header::Tcp(t) => {
                let _ = write!(out, "TCP {} > {}: ", t.src_port, t.dst_port);
                return self.describe_tcp(i, t, out);
            }
            Header::Vxlan(v) => {
                let _ = write!(out, "{v}");
                if i + 1 < self.headers.len() {
                    out.push(' ');
                    return self.describe(i + 1, out);
                }
                Ok(())
            }
        };
    }

    fn describe_ipv4(&self, i: usize, ip: &Ipv4Repr, out: &mut String) {
        let (src, dst) = (ip.src, ip.dst);
        let payload_len = self.len_from(i) - ip.header_len();
        if ip.is_fragment() {
            let _ = write!(
                out,
                "IP {src} > {dst}: fragment id {}, offset {}, flags [{}], proto {}, length {payload_len}",
                ip.ident,
                ip.frag_offset_bytes(),
                if ip.more_frags { "+" } else { "none" },
                ip.protocol
            );
            return;
        }
        match self.headers.get(i + 1) {
            Some(Header::Udp(u)) => {
                push_endpoints(out, src, u.src_port, dst, u.dst_port);
                self.describe_udp_payload(i + 1, out);
            }
            Some(Header::Tcp(t)) => {
                push_endpoints(out, src, t.src_port, dst, t.dst_port);
                self.describe_tcp(i + 1, t, out);
            }
            Some(_) => {
                let _ = write!(out, "IP {src} > {dst}: ");
                self.describe(i + 1, out);
            }
            None => {
                let _ = write!(
                    out,
                    "IP {src} > {dst}: ip-proto-{} {payload_len}",
                    u8::from(ip.protocol)
                );
            }
        }
    }

    fn describe_udp_payload(&self, i: usize, out: &mut String) {
        if let Some(Header::Vxlan(_)) = self.headers.get(i + 1) {
            return self.describe(i + 1, out);
        }
        let _ = write!(out, "UDP, length {}", self.len_from(i) - UdpRepr::LEN);
    }

    fn describe_tcp(&self, i: usize, t: &TcpRepr, out: &mut String) {
        // Built with the push helpers below rather than `write!`: every
        // segment a traced TCP flow sends gets this summary.
        let len = self.len_from(i) - t.header_len();
        out.push_str("Flags ");
        t.flags.push_to(out);
        // tcpdump leaves out the sequence number of a bare ACK
        if len > 0
            || t.flags
                .intersects(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST)
        {
            out.push_str(", seq ");
            push_u64(out, t.seq.into());
            if len > 0 {
                out.push(':');
                push_u64(out, t.seq.wrapping_add(len as u32).into());
            }
        }
        if t.flags.ack() {
            out.push_str(", ack ");
            push_u64(out, t.ack.into());
        }
        out.push_str(", win ");
        push_u64(out, t.window.into());
        if !t.options.is_empty() {
            out.push_str(", options [");
            for (k, o) in t.options.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                match o {
                    TcpOption::Nop => out.push_str("nop"),
                    TcpOption::Timestamps { tsval, tsecr } => {
                        out.push_str("TS val ");
                        push_u64(out, (*tsval).into());
                        out.push_str(" ecr ");
                        push_u64(out, (*tsecr).into());
                    }
                    o => {
                        let _ = write!(out, "{o}");
                    }
                }
            }
            out.push(']');
        }
        out.push_str(", length ");
        push_u64(out, len as u64);
    }

    fn describe_icmp(&self, i: usize, out: &mut String) {
        let Some(Header::Icmp(icmp)) = self.headers.get(i) else {
            return;
        };
        let len = self.len_from(i);
        let quote = || -> Option<(Ipv4Repr, Option<(&'static str, u16)>)> {
            let bytes = if i + 1 == self.headers.len() {
                self.payload.to_vec()
            } else {
                self.emit_from(i + 1)
            };
            let q = Ipv4Repr::parse_quoted(&bytes).ok()?;
            let port = match q.repr.protocol {
                IpProtocol::Udp if q.payload.len() >= 4 => {
                    Some(("udp", crate::wire::get_u16(q.payload, 2)))
                }
                IpProtocol::Tcp if q.payload.len() >= 4 => {
                    Some(("tcp", crate::wire::get_u16(q.payload, 2)))
                }
                _ => None,
            };
            Some((q.repr, port))
        };
        let _ = match *icmp {
            IcmpRepr::EchoRequest { ident, seq } => write!(
                out,
                "ICMP echo request, id {ident}, seq {seq}, length {len}"
            ),
            IcmpRepr::EchoReply { ident, seq } => {
                write!(out, "ICMP echo reply, id {ident}, seq {seq}, length {len}")
            }
            IcmpRepr::DestUnreachable { code, next_hop_mtu } => {
                let q = quote();
                let dst = q
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |(r, _)| r.dst.to_string());
                let _ = match code {
                    unreachable::NET => write!(out, "ICMP net {dst} unreachable"),
                    unreachable::HOST => write!(out, "ICMP host {dst} unreachable"),
                    unreachable::PROTOCOL => {
                        let p = q.as_ref().map_or(0, |(r, _)| u8::from(r.protocol));
                        write!(out, "ICMP {dst} protocol {p} unreachable")
                    }
                    unreachable::PORT => match q.as_ref().and_then(|(_, p)| *p) {
                        Some((proto, port)) => {
                            write!(out, "ICMP {dst} {proto} port {port} unreachable")
                        }
                        None => write!(out, "ICMP {dst} port unreachable"),
                    },
                    unreachable::FRAG_NEEDED => write!(
                        out,
                        "ICMP {dst} unreachable - need to frag (mtu {next_hop_mtu})"
                    ),
                    unreachable::ADMIN_PROHIBITED => {
                        write!(out, "ICMP host {dst} unreachable - admin prohibited filter")
                    }
                    unreachable::HOST_PROHIBITED => {
                        write!(out, "ICMP host {dst} unreachable - host prohibited")
                    }
                    c => write!(out, "ICMP {dst} unreachable - code {c}"),
                };
                write!(out, ", length {len}")
            }
            IcmpRepr::TimeExceeded { code } => match code {
                time_exceeded::TTL => write!(out, "ICMP time exceeded in-transit, length {len}"),
                time_exceeded::REASSEMBLY => {
                    write!(out, "ICMP ip reassembly time exceeded, length {len}")
                }
                c => write!(out, "ICMP time exceeded, code {c}, length {len}"),
            },
            IcmpRepr::Other { ty, code, .. } => {
                write!(out, "ICMP type-#{ty}, code {code}, length {len}")
            }
        };
    }
}

impl fmt::Display for Packet {
    /// The [`summary`](Packet::summary).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Two-digit groups for [`push_u64`].
const DIGIT_PAIRS: &str = "\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `n` in decimal (what `write!(out, "{n}")` prints, without the
/// formatting machinery: summaries of traced TCP segments are full of
/// numbers), two digits at a time.
#[inline]
fn push_u64(out: &mut String, n: u64) {
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
        return;
    }
    // Base-100 digits, least significant first.
    let mut groups = [0u8; 10];
    let mut k = 0;
    let mut n = n;
    while n >= 100 {
        groups[k] = (n % 100) as u8;
        n /= 100;
        k += 1;
    }
    let lead = n as usize;
    if lead >= 10 {
        out.push_str(&DIGIT_PAIRS[2 * lead..2 * lead + 2]);
    } else {
        out.push(char::from(b'0' + lead as u8));
    }
    while k > 0 {
        k -= 1;
        let r = usize::from(groups[k]);
        out.push_str(&DIGIT_PAIRS[2 * r..2 * r + 2]);
    }
}

/// Appends `a` in dotted decimal.
fn push_ipv4(out: &mut String, a: Ipv4Addr) {
    for (k, b) in a.octets().into_iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        push_u64(out, b.into());
    }
}

/// `IP SRC.SPORT > DST.DPORT: `, as tcpdump begins a TCP or UDP line.
/// A flow's segments repeat the same few: the last texts are kept.
fn push_endpoints(out: &mut String, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) {
    type Key = (Ipv4Addr, u16, Ipv4Addr, u16);
    /// The last texts by key, and the slot to fill next.
    type Memo = ([(Option<Key>, String); 4], usize);
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Default::default());
    }
    let key = (src, sport, dst, dport);
    MEMO.with_borrow_mut(|(memo, next)| {
        if let Some((_, text)) = memo.iter().find(|(k, _)| *k == Some(key)) {
            out.push_str(text);
            return;
        }
        let slot = &mut memo[*next];
        *next = (*next + 1) % 4;
        slot.0 = Some(key);
        slot.1.clear();
        render_endpoints(&mut slot.1, src, sport, dst, dport);
        out.push_str(&slot.1);
    });
}

fn render_endpoints(out: &mut String, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) {
    out.push_str("IP ");
    push_ipv4(out, src);
    out.push('.');
    push_u64(out, sport.into());
    out.push_str(" > ");
    push_ipv4(out, dst);
    out.push('.');
    push_u64(out, dport.into());
    out.push_str(": ");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use crate::wire::testutil::*;
    use crate::wire::{MacAddr, TcpOption};
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn number_and_address_pushes_print_as_display(n in any::<u64>(), small in 0u64..1000, a in any::<u32>(), p in any::<u16>()) {
            for v in [n, small] {
                let mut s = String::new();
                push_u64(&mut s, v);
                prop_assert_eq!(s, v.to_string());
            }
            let a = Ipv4Addr::from(a);
            let mut s = String::new();
            push_endpoints(&mut s, a, p, a, p);
            prop_assert_eq!(s, format!("IP {a}.{p} > {a}.{p}: "));
        }
    }
    use proptest::test_runner::TestCaseError;

    fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            vec(any::<u8>(), 0..200).prop_map(Payload::Data),
            (0usize..200).prop_map(Payload::Filler),
        ]
    }

    fn eth(t: EtherType) -> impl Strategy<Value = EthernetRepr> {
        (mac(), mac()).prop_map(move |(dst, src)| EthernetRepr {
            dst,
            src,
            ethertype: t,
        })
    }

    fn udp_not_vxlan() -> impl Strategy<Value = UdpRepr> {
        udp().prop_filter("not a VXLAN port", |u| {
            !DecodeOptions::default().vxlan_ports.contains(&u.dst_port)
        })
    }

    fn udp_vxlan() -> impl Strategy<Value = UdpRepr> {
        (
            udp(),
            prop_oneof![Just(VxlanRepr::IANA_PORT), Just(VxlanRepr::LINUX_PORT)],
        )
            .prop_map(|(mut u, port)| {
                u.dst_port = port;
                u
            })
    }

    fn pkt(headers: Vec<Header>, payload: Payload) -> Packet {
        Packet::new(PacketId(7), headers, payload)
    }

    fn eth_arp() -> impl Strategy<Value = Packet> {
        (eth(EtherType::Arp), arp())
            .prop_map(|(e, a)| pkt(vec![e.into(), a.into()], Payload::Data(vec![])))
    }

    fn eth_icmp() -> impl Strategy<Value = Packet> {
        (
            eth(EtherType::Ipv4),
            ipv4_whole(IpProtocol::Icmp),
            icmp(),
            payload(),
        )
            .prop_map(|(e, ip, i, p)| pkt(vec![e.into(), ip.into(), i.into()], p))
    }

    fn eth_udp() -> impl Strategy<Value = Packet> {
        (
            eth(EtherType::Ipv4),
            ipv4_whole(IpProtocol::Udp),
            udp_not_vxlan(),
            payload(),
        )
            .prop_map(|(e, ip, u, p)| pkt(vec![e.into(), ip.into(), u.into()], p))
    }

    fn eth_tcp() -> impl Strategy<Value = Packet> {
        (
            eth(EtherType::Ipv4),
            ipv4_whole(IpProtocol::Tcp),
            tcp(),
            payload(),
        )
            .prop_map(|(e, ip, t, p)| pkt(vec![e.into(), ip.into(), t.into()], p))
    }

    fn eth_vxlan_icmp() -> impl Strategy<Value = Packet> {
        (
            eth(EtherType::Ipv4),
            ipv4_whole(IpProtocol::Udp),
            udp_vxlan(),
            vxlan(),
            eth(EtherType::Ipv4),
            ipv4_whole(IpProtocol::Icmp),
            icmp(),
            payload(),
        )
            .prop_map(|(oe, oip, u, v, ie, iip, i, p)| {
                pkt(
                    vec![
                        oe.into(),
                        oip.into(),
                        u.into(),
                        v.into(),
                        ie.into(),
                        iip.into(),
                        i.into(),
                    ],
                    p,
                )
            })
    }

    fn ipip_tcp() -> impl Strategy<Value = Packet> {
        (
            ipv4_whole(IpProtocol::Ipip),
            ipv4_whole(IpProtocol::Tcp),
            tcp(),
            payload(),
        )
            .prop_map(|(o, i, t, p)| pkt(vec![o.into(), i.into(), t.into()], p))
    }

    fn eth_fragment() -> impl Strategy<Value = Packet> {
        // (not IPsec AH, 51, which etherparse decodes even in a fragment)
        let ip = ipv4().prop_filter("AH", |ip| ip.protocol != IpProtocol::Unknown(51));
        (
            eth(EtherType::Ipv4),
            ip,
            1u16..=0x1fff,
            any::<bool>(),
            vec(any::<u8>(), 0..100),
        )
            .prop_map(|(e, mut ip, off, first, data)| {
                // the first fragment (offset 0, MF) or a later one
                if first {
                    ip.frag_offset = 0;
                    ip.more_frags = true;
                } else {
                    ip.frag_offset = off;
                }
                pkt(vec![e.into(), ip.into()], Payload::Data(data))
            })
    }

    /// emit/parse/len invariants of one packet.
    fn check_round_trip(p: &Packet, first: Layer) -> Result<(), TestCaseError> {
        let bytes = p.emit();
        prop_assert_eq!(bytes.len(), p.buffer_len());
        for i in 0..=p.headers.len() {
            let off = p.offset_of(i);
            prop_assert_eq!(p.len_from(i), bytes.len() - off);
            prop_assert_eq!(&p.emit_from(i)[..], &bytes[off..]);
            if let Some(Header::Ipv4(ip)) = p.headers.get(i) {
                prop_assert!(checksum::is_valid(&bytes[off..off + ip.header_len()]));
            }
        }
        // parse verifies every checksum
        let d = Packet::decode(&bytes, first, &DecodeOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e} in {bytes:02x?}")))?;
        prop_assert_eq!(d.trailing, 0);
        prop_assert_eq!(d.packet.id, PacketId(0));
        prop_assert_eq!(&d.packet.headers, &p.headers);
        prop_assert!(d.packet.payload.bytes_eq(&p.payload));
        prop_assert_eq!(d.packet.emit(), bytes.clone());
        // trailing padding is dropped and counted
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xa5; 5]);
        if let Ok(d) = Packet::decode(&padded, first, &DecodeOptions::default()) {
            prop_assert_eq!(d.trailing, 5);
            prop_assert_eq!(d.packet.emit(), bytes.clone());
        }
        xcheck(&bytes, first, &p.headers, &p.payload)?;
        let _ = p.summary();
        Ok(())
    }

    /// etherparse decodes `bytes` (starting with headers[0]) to the same fields.
    fn xcheck(
        bytes: &[u8],
        first: Layer,
        headers: &[Header],
        payload: &Payload,
    ) -> Result<(), TestCaseError> {
        use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
        let ep = match first {
            Layer::Ethernet => PacketHeaders::from_ethernet_slice(bytes),
            Layer::Ipv4 => PacketHeaders::from_ip_slice(bytes),
        }
        .map_err(|e| TestCaseError::fail(format!("etherparse: {e}")))?;
        let mut k = 0;
        if first == Layer::Ethernet {
            let Header::Ethernet(e) = &headers[0] else {
                unreachable!()
            };
            let l = ep.link.clone().and_then(|l| l.ethernet2()).unwrap();
            prop_assert_eq!((l.destination, l.source), (e.dst.0, e.src.0));
            prop_assert_eq!(l.ether_type.0, u16::from(e.ethertype));
            k = 1;
        }
        let ip = match (&ep.net, headers.get(k)) {
            (Some(NetHeaders::Arp(a)), Some(Header::Arp(r))) => {
                prop_assert_eq!(a.operation.0, u16::from(r.op));
                prop_assert_eq!(a.sender_hw_addr(), &r.sender_mac.0[..]);
                prop_assert_eq!(a.target_protocol_addr(), &r.target_ip.octets()[..]);
                return Ok(());
            }
            (Some(NetHeaders::Ipv4(h, _)), Some(Header::Ipv4(r))) => {
                prop_assert_eq!((h.source, h.destination), (r.src.octets(), r.dst.octets()));
                prop_assert_eq!(
                    usize::from(h.total_len),
                    bytes.len() - EthernetRepr::LEN * k
                );
                prop_assert_eq!(h.time_to_live, r.ttl);
                prop_assert_eq!(h.protocol.0, u8::from(r.protocol));
                prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
                h.clone()
            }
            (n, h) => return Err(TestCaseError::fail(format!("etherparse {n:?} vs {h:?}"))),
        };
        if ip.is_fragmenting_payload() {
            return Ok(());
        }
        let pl = ep.payload.slice();
        match (&ep.transport, headers.get(k + 1)) {
            (Some(TransportHeader::Udp(u)), Some(Header::Udp(r))) => {
                prop_assert_eq!(
                    (u.source_port, u.destination_port),
                    (r.src_port, r.dst_port)
                );
                prop_assert_eq!(usize::from(u.length), pl.len() + 8);
                if r.checksum {
                    prop_assert_eq!(u.checksum, u.calc_checksum_ipv4(&ip, pl).unwrap());
                } else {
                    prop_assert_eq!(u.checksum, 0);
                }
                if let Some(Header::Vxlan(v)) = headers.get(k + 2) {
                    prop_assert_eq!(&pl[..8], &{
                        let mut b = [0; 8];
                        v.emit(&mut b);
                        b
                    });
                    return xcheck(&pl[8..], Layer::Ethernet, &headers[k + 3..], payload);
                }
            }
            (Some(TransportHeader::Tcp(t)), Some(Header::Tcp(r))) => {
                prop_assert_eq!(
                    (t.source_port, t.destination_port),
                    (r.src_port, r.dst_port)
                );
                prop_assert_eq!((t.sequence_number, t.acknowledgment_number), (r.seq, r.ack));
                if r.flags.0 & TcpFlags::RESERVED == 0 {
                    // (etherparse drops the reserved bits, so its sum differs)
                    prop_assert_eq!(t.checksum, t.calc_checksum_ipv4(&ip, pl).unwrap());
                }
            }
            (Some(TransportHeader::Icmpv4(i)), Some(Header::Icmp(r))) => {
                let b = i.to_bytes();
                prop_assert_eq!((b[0], b[1]), (r.ty(), r.code()));
                prop_assert!(checksum::is_valid(&bytes[bytes.len() - pl.len() - 8..]));
            }
            (None, Some(Header::Ipv4(_))) => {
                return xcheck(pl, Layer::Ipv4, &headers[k + 1..], payload);
            }
            (None, None) => {}
            (t, h) => return Err(TestCaseError::fail(format!("etherparse {t:?} vs {h:?}"))),
        }
        prop_assert_eq!(pl.len(), payload.len());
        Ok(())
    }

    proptest! {
        #[test]
        fn eth_arp_round_trip(p in eth_arp()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn eth_ipv4_icmp_round_trip(p in eth_icmp()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn eth_ipv4_udp_round_trip(p in eth_udp()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn eth_ipv4_tcp_round_trip(p in eth_tcp()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn vxlan_round_trip(p in eth_vxlan_icmp()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn ipip_round_trip(p in ipip_tcp()) {
            check_round_trip(&p, Layer::Ipv4)?;
        }

        #[test]
        fn fragments_keep_their_data(p in eth_fragment()) {
            check_round_trip(&p, Layer::Ethernet)?;
        }

        #[test]
        fn corrupting_a_checksummed_byte_is_caught(p in eth_tcp(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            // Every byte from the IPv4 header on is covered by a checksum.
            let mut bytes = p.emit();
            let i = EthernetRepr::LEN + at.index(bytes.len() - EthernetRepr::LEN);
            bytes[i] ^= 1 << bit;
            prop_assert!(Packet::parse(&bytes, Layer::Ethernet, &DecodeOptions::default()).is_err());
        }
    }

    fn ip(a: [u8; 4]) -> Ipv4Addr {
        Ipv4Addr::from(a)
    }

    fn echo(src: [u8; 4], dst: [u8; 4]) -> Packet {
        pkt(
            vec![
                EthernetRepr {
                    dst: MacAddr([2, 0, 0, 0, 0, 2]),
                    src: MacAddr([2, 0, 0, 0, 0, 1]),
                    ethertype: EtherType::Ipv4,
                }
                .into(),
                Ipv4Repr::new(ip(src), ip(dst), IpProtocol::Icmp).into(),
                IcmpRepr::EchoRequest { ident: 1, seq: 1 }.into(),
            ],
            Payload::Filler(56),
        )
    }

    #[test]
    fn lengths_without_emitting() {
        let p = echo([172, 16, 1, 1], [172, 16, 2, 1]);
        assert_eq!(p.buffer_len(), 98);
        assert_eq!(p.len_from(1), 84);
        assert_eq!(p.len_from(2), 64);
        assert_eq!(p.len_from(3), 56);
        assert_eq!(p.offset_of(2), 34);
        assert_eq!(p.index_of_first_ipv4(), Some(1));
        assert_eq!(p.inner_ipv4(), None);
        assert_eq!(p.l4_ports(), None);
    }

    #[test]
    fn summaries() {
        let p = echo([172, 16, 1, 1], [172, 16, 2, 1]);
        assert_eq!(
            p.summary(),
            "IP 172.16.1.1 > 172.16.2.1: ICMP echo request, id 1, seq 1, length 64"
        );

        // VXLAN: outer then inner, as tcpdump
        let mut v = p.clone();
        let outer_ip = Ipv4Repr {
            dont_frag: false,
            ..Ipv4Repr::new(
                ip([192, 168, 56, 6]),
                ip([192, 168, 56, 2]),
                IpProtocol::Udp,
            )
        };
        v.encapsulate([
            Header::Ethernet(EthernetRepr {
                dst: MacAddr([2, 0, 0, 0, 0, 0x0b]),
                src: MacAddr([2, 0, 0, 0, 0, 0x0a]),
                ethertype: EtherType::Ipv4,
            }),
            outer_ip.into(),
            UdpRepr {
                src_port: 45678,
                dst_port: 8472,
                checksum: false,
            }
            .into(),
            VxlanRepr::new(1).into(),
        ]);
        assert_eq!(
            v.summary(),
            "IP 192.168.56.6.45678 > 192.168.56.2.8472: VXLAN, flags [I] (0x08), vni 1 \
             IP 172.16.1.1 > 172.16.2.1: ICMP echo request, id 1, seq 1, length 64"
        );
        assert_eq!(v.l4_ports(), Some((45678, 8472)));
        assert_eq!(v.inner_ipv4().unwrap().src, ip([172, 16, 1, 1]));
        assert_eq!(v.innermost_ipv4(), v.inner_ipv4());
        assert_eq!(v.buffer_len(), 98 + 50);
        let removed = v.decapsulate(4);
        assert_eq!(removed.len(), 4);
        assert_eq!(v, p);

        // IPIP
        let mut t = p.clone();
        t.headers.remove(0);
        t.encapsulate([
            Ipv4Repr::new(ip([10, 0, 0, 1]), ip([10, 0, 0, 2]), IpProtocol::Ipip).into(),
        ]);
        assert_eq!(
            t.summary(),
            "IP 10.0.0.1 > 10.0.0.2: IP 172.16.1.1 > 172.16.2.1: ICMP echo request, id 1, seq 1, length 64"
        );

        // TCP and UDP
        let tcp = pkt(
            vec![
                Ipv4Repr::new(ip([10, 0, 0, 1]), ip([10, 0, 0, 2]), IpProtocol::Tcp).into(),
                TcpRepr {
                    src_port: 44658,
                    dst_port: 8080,
                    seq: 100,
                    ack: 7,
                    flags: TcpFlags::PSH | TcpFlags::ACK,
                    window: 63,
                    urgent: 0,
                    options: vec![
                        TcpOption::Nop,
                        TcpOption::Nop,
                        TcpOption::Timestamps { tsval: 1, tsecr: 2 },
                    ],
                }
                .into(),
            ],
            Payload::Data(b"hello".to_vec()),
        );
        assert_eq!(
            tcp.summary(),
            "IP 10.0.0.1.44658 > 10.0.0.2.8080: Flags [P.], seq 100:105, ack 7, win 63, \
             options [nop,nop,TS val 1 ecr 2], length 5"
        );
        assert_eq!(tcp.l4_ports(), Some((44658, 8080)));
        let udp = pkt(
            vec![
                Ipv4Repr::new(ip([10, 0, 0, 1]), ip([10, 0, 0, 53]), IpProtocol::Udp).into(),
                UdpRepr {
                    src_port: 5353,
                    dst_port: 53,
                    checksum: true,
                }
                .into(),
            ],
            Payload::Filler(30),
        );
        assert_eq!(
            udp.summary(),
            "IP 10.0.0.1.5353 > 10.0.0.53.53: UDP, length 30"
        );

        // ICMP errors name the quoted destination
        let unreach = |code, mtu| {
            let mut e = pkt(
                vec![
                    Ipv4Repr::new(ip([10, 0, 0, 53]), ip([10, 0, 0, 1]), IpProtocol::Icmp).into(),
                    IcmpRepr::DestUnreachable {
                        code,
                        next_hop_mtu: mtu,
                    }
                    .into(),
                ],
                Payload::Data(udp.emit()[..28].to_vec()),
            );
            e.id = PacketId(1);
            e.summary()
        };
        assert_eq!(
            unreach(unreachable::PORT, 0),
            "IP 10.0.0.53 > 10.0.0.1: ICMP 10.0.0.53 udp port 53 unreachable, length 36"
        );
        assert_eq!(
            unreach(unreachable::FRAG_NEEDED, 1450),
            "IP 10.0.0.53 > 10.0.0.1: ICMP 10.0.0.53 unreachable - need to frag (mtu 1450), length 36"
        );
        assert_eq!(
            unreach(unreachable::ADMIN_PROHIBITED, 0),
            "IP 10.0.0.53 > 10.0.0.1: ICMP host 10.0.0.53 unreachable - admin prohibited filter, length 36"
        );
        assert_eq!(
            unreach(unreachable::HOST, 0),
            "IP 10.0.0.53 > 10.0.0.1: ICMP host 10.0.0.53 unreachable, length 36"
        );

        // ARP
        let arp = ArpRepr::request(
            MacAddr([2, 0, 0, 0, 0, 1]),
            ip([10, 0, 0, 1]),
            ip([10, 0, 0, 2]),
        );
        let a = pkt(
            vec![
                EthernetRepr {
                    dst: MacAddr::BROADCAST,
                    src: arp.sender_mac,
                    ethertype: EtherType::Arp,
                }
                .into(),
                arp.into(),
            ],
            Payload::default(),
        );
        assert_eq!(
            a.summary(),
            "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28"
        );
        let r = arp.reply_from(MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(
            pkt(vec![r.into()], Payload::default()).summary(),
            "ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28"
        );

        // fragments
        let mut f = udp.clone();
        f.headers.truncate(1);
        f.payload = Payload::Filler(1480);
        f.ipv4_mut().unwrap().more_frags = true;
        f.ipv4_mut().unwrap().ident = 9;
        assert_eq!(
            f.summary(),
            "IP 10.0.0.1 > 10.0.0.53: fragment id 9, offset 0, flags [+], proto UDP, length 1480"
        );
    }

    #[test]
    fn decode_options() {
        let p = echo([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut bytes = p.emit();
        // ICMP checksum is verified unless turned off
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = Packet::parse(&bytes, Layer::Ethernet, &DecodeOptions::default()).unwrap_err();
        assert!(
            matches!(err, WireError::BadChecksum { what: "ICMP", .. }),
            "{err}"
        );
        let lax = DecodeOptions {
            verify_checksums: false,
            ..Default::default()
        };
        assert!(Packet::parse(&bytes, Layer::Ethernet, &lax).is_ok());

        // VXLAN is decoded on the configured ports only
        let mut v = p.clone();
        v.encapsulate([
            Header::Ethernet(EthernetRepr {
                dst: MacAddr([2, 0, 0, 0, 0, 0x0b]),
                src: MacAddr([2, 0, 0, 0, 0, 0x0a]),
                ethertype: EtherType::Ipv4,
            }),
            Ipv4Repr::new(ip([192, 168, 0, 1]), ip([192, 168, 0, 2]), IpProtocol::Udp).into(),
            UdpRepr {
                src_port: 1,
                dst_port: 4789,
                checksum: true,
            }
            .into(),
            VxlanRepr::new(42).into(),
        ]);
        let bytes = v.emit();
        let d = Packet::parse(&bytes, Layer::Ethernet, &DecodeOptions::default()).unwrap();
        assert_eq!(d.headers.len(), 7);
        let only_8472 = DecodeOptions {
            vxlan_ports: vec![8472],
            ..Default::default()
        };
        let d = Packet::parse(&bytes, Layer::Ethernet, &only_8472).unwrap();
        assert_eq!(d.headers.len(), 3);
        assert_eq!(d.payload.len(), 8 + 98);
        assert_eq!(d.emit(), bytes);
    }

    #[test]
    fn errors_propagate_from_inside() {
        let p = echo([10, 0, 0, 1], [10, 0, 0, 2]);
        let bytes = p.emit();
        assert_eq!(
            Packet::parse(&bytes[..50], Layer::Ethernet, &DecodeOptions::default())
                .unwrap_err()
                .to_string(),
            "truncated IPv4 datagram: 36 bytes, need 84"
        );
        assert_eq!(
            Packet::parse(&bytes[..10], Layer::Ethernet, &DecodeOptions::default())
                .unwrap_err()
                .to_string(),
            "truncated Ethernet header: 10 bytes, need 14"
        );
    }

    #[test]
    fn payload_helpers() {
        assert!(Payload::Filler(3).bytes_eq(&Payload::Data(vec![0, 0, 0])));
        assert!(!Payload::Filler(3).bytes_eq(&Payload::Data(vec![0, 1, 0])));
        assert!(!Payload::Filler(3).bytes_eq(&Payload::Filler(2)));
        assert_eq!(Payload::Filler(2).to_vec(), vec![0, 0]);
        assert!(Payload::default().is_empty());
        assert_eq!(PacketId(3).to_string(), "#3");
    }
}
