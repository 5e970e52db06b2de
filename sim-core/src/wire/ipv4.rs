//! IPv4 headers (RFC 791).
//!
//! The total length and the header checksum are not part of the repr: they
//! are computed on emit and verified on parse. Options are kept as raw
//! bytes. The reserved ("evil") flag bit is ignored on parse and emitted as
//! zero.

use std::fmt;
use std::net::Ipv4Addr;

use super::{WireError, checksum, get_u16, put_u16};

/// The protocol of an IPv4 payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpProtocol {
    /// 1
    Icmp,
    /// 4: IPv4 in IPv4 (IPIP tunnels)
    Ipip,
    /// 6
    Tcp,
    /// 17
    Udp,
    /// Any other value, kept as it was. Build values with `From<u8>`, which
    /// never makes `Unknown` of a known value.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            4 => IpProtocol::Ipip,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Ipip => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for IpProtocol {
    /// As tcpdump names them: `ICMP`, `IPIP`, `TCP`, `UDP`, else the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Ipip => f.write_str("IPIP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Unknown(v) => write!(f, "{v}"),
        }
    }
}

/// An IPv4 header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// The former TOS byte: DSCP in the top six bits, ECN in the bottom two.
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub frag_offset: u16,
    pub ttl: u8,
    pub protocol: IpProtocol,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Raw option bytes, at most 40. Emitted padded with zeros (end of
    /// option list) to a multiple of 4; parsed as all the bytes the IHL
    /// covers beyond 20.
    pub options: Vec<u8>,
}

/// The fields of a header parsed without requiring the datagram to be all
/// there (see [`Ipv4Repr::parse_quoted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Parsed<'a> {
    pub repr: Ipv4Repr,
    pub header_len: usize,
    /// The total length the header declares.
    pub total_len: usize,
    /// The payload: up to `total_len - header_len` bytes, fewer when the
    /// buffer ends first.
    pub payload: &'a [u8],
}

impl Ipv4Repr {
    /// The length of a header without options.
    pub const MIN_LEN: usize = 20;
    /// The most option bytes a header can carry.
    pub const MAX_OPTIONS_LEN: usize = 40;

    /// A header as Linux sends one by default: TTL 64, DF set, TOS 0, no
    /// options, ident 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol) -> Self {
        Ipv4Repr {
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            ttl: 64,
            protocol,
            src,
            dst,
            options: Vec::new(),
        }
    }

    /// The header length: 20 plus the options rounded up to 4 bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        Self::MIN_LEN + ((self.options.len() + 3) & !3)
    }

    /// Same as [`header_len`](Self::header_len).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Whether this is a fragment (MF set, or a nonzero offset) rather than a
    /// whole datagram.
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset_bytes(&self) -> usize {
        usize::from(self.frag_offset) * 8
    }

    /// DSCP (top six bits of the TOS byte).
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn >> 2
    }

    /// ECN (bottom two bits of the TOS byte).
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn & 3
    }

    /// Decodes the header at the start of `buf`, which must hold the whole
    /// datagram (its total length; anything after it, such as Ethernet
    /// padding, is ignored). Verifies the header checksum. Returns the header
    /// length.
    pub fn parse(buf: &[u8]) -> Result<(Ipv4Repr, usize), WireError> {
        let (repr, header_len, _) = Self::parse_datagram(buf)?;
        Ok((repr, header_len))
    }

    /// As [`parse`](Self::parse), also returning the payload: the bytes
    /// after the header up to the total length.
    pub fn parse_datagram(buf: &[u8]) -> Result<(Ipv4Repr, usize, &[u8]), WireError> {
        let p = Self::parse_quoted(buf)?;
        if p.total_len > buf.len() {
            return Err(WireError::Truncated {
                what: "IPv4 datagram",
                got: buf.len(),
                need: p.total_len,
            });
        }
        Ok((p.repr, p.header_len, p.payload))
    }

    /// Decodes a header whose datagram may be cut short, as in the quote of
    /// an ICMP error: the header must be whole and its checksum valid, but
    /// the payload may end before the total length says.
    pub fn parse_quoted(buf: &[u8]) -> Result<Ipv4Parsed<'_>, WireError> {
        WireError::check_len("IPv4 header", buf, Self::MIN_LEN)?;
        let version = buf[0] >> 4;
        if version != 4 {
            return Err(WireError::NotIpv4(version));
        }
        let ihl = buf[0] & 0x0f;
        if ihl < 5 {
            return Err(WireError::BadIpv4HeaderLen { ihl });
        }
        let header_len = usize::from(ihl) * 4;
        WireError::check_len("IPv4 header", buf, header_len)?;
        let header = &buf[..header_len];
        if !checksum::is_valid(header) {
            let got = get_u16(header, 10);
            let expected = !checksum::combine(&[checksum::sum(header), !got]);
            return Err(WireError::BadChecksum {
                what: "IPv4 header",
                got,
                expected,
            });
        }
        let total = get_u16(buf, 2);
        if usize::from(total) < header_len {
            return Err(WireError::BadIpv4TotalLen { total, header_len });
        }
        let total_len = usize::from(total);
        let flags_frag = get_u16(buf, 6);
        let repr = Ipv4Repr {
            dscp_ecn: buf[1],
            ident: get_u16(buf, 4),
            dont_frag: flags_frag & 0x4000 != 0,
            more_frags: flags_frag & 0x2000 != 0,
            frag_offset: flags_frag & 0x1fff,
            ttl: buf[8],
            protocol: IpProtocol::from(buf[9]),
            src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
            dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
            options: buf[Self::MIN_LEN..header_len].to_vec(),
        };
        let payload = &buf[header_len..total_len.min(buf.len())];
        Ok(Ipv4Parsed {
            repr,
            header_len,
            total_len,
            payload,
        })
    }

    /// Writes the header at the start of `buf`, which holds the whole
    /// datagram (header space, then the payload already written): the total
    /// length is `buf.len()`.
    ///
    /// # Panics
    /// If `buf` is longer than 65535 bytes or shorter than the header, or
    /// the options are longer than 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let total = u16::try_from(buf.len())
            .unwrap_or_else(|_| panic!("IPv4 datagram of {} bytes exceeds 65535", buf.len()));
        self.emit_header(buf, total);
    }

    /// Writes just the header, with total length `total_len`, at the start
    /// of `buf`.
    pub fn emit_header(&self, buf: &mut [u8], total_len: u16) {
        assert!(
            self.options.len() <= Self::MAX_OPTIONS_LEN,
            "IPv4 options of {} bytes exceed 40",
            self.options.len()
        );
        debug_assert!(self.frag_offset <= 0x1fff, "fragment offset is 13 bits");
        let hl = self.header_len();
        buf[0] = 0x40 | (hl / 4) as u8;
        buf[1] = self.dscp_ecn;
        put_u16(buf, 2, total_len);
        put_u16(buf, 4, self.ident);
        let flags = (u16::from(self.dont_frag) << 14) | (u16::from(self.more_frags) << 13);
        put_u16(buf, 6, flags | (self.frag_offset & 0x1fff));
        buf[8] = self.ttl;
        buf[9] = self.protocol.into();
        put_u16(buf, 10, 0);
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        let opt_end = Self::MIN_LEN + self.options.len();
        buf[Self::MIN_LEN..opt_end].copy_from_slice(&self.options);
        buf[opt_end..hl].fill(0);
        let c = checksum::checksum(&buf[..hl]);
        put_u16(buf, 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        // The echo request of tests/fixtures/arp-icmp.pcap, IPv4 header on.
        let mut v = vec![
            0x45, 0x00, 0x00, 0x54, 0xd8, 0xd4, 0x40, 0x00, 0x40, 0x01, 0x70, 0x80, 0xc0, 0xa8,
            0x38, 0x01, 0xc0, 0xa8, 0x38, 0x02,
        ];
        v.resize(0x54, 0xaa);
        v
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let good = sample();
        let err = |b: &[u8]| Ipv4Repr::parse(b).unwrap_err().to_string();
        assert_eq!(err(&good[..14]), "truncated IPv4 header: 14 bytes, need 20");
        assert_eq!(
            err(&good[..60]),
            "truncated IPv4 datagram: 60 bytes, need 84"
        );
        let mut b = good.clone();
        b[10] = 0x12;
        b[11] = 0x34;
        assert_eq!(err(&b), "bad IPv4 header checksum 0x1234, expected 0x7080");
        let mut b = good.clone();
        b[0] = 0x65;
        assert_eq!(err(&b), "not an IPv4 header: version 6");
        let mut b = good.clone();
        b[0] = 0x44;
        assert_eq!(
            err(&b),
            "bad IPv4 header length: IHL 4 (16 bytes), the minimum is 5 (20 bytes)"
        );
        let mut b = good.clone();
        b[0] = 0x46;
        assert_eq!(err(&b[..22]), "truncated IPv4 header: 22 bytes, need 24");
        let mut b = good;
        b[2] = 0;
        b[3] = 19;
        b[10] = 0;
        b[11] = 0;
        let c = checksum::checksum(&b[..20]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            err(&b),
            "bad IPv4 total length 19: shorter than its 20-byte header"
        );
    }

    #[test]
    fn parses_a_real_header() {
        let (r, hl) = Ipv4Repr::parse(&sample()).unwrap();
        assert_eq!(hl, 20);
        assert_eq!(r.ident, 0xd8d4);
        assert!(r.dont_frag && !r.is_fragment());
        assert_eq!((r.ttl, r.protocol), (64, IpProtocol::Icmp));
        assert_eq!(r.src, Ipv4Addr::new(192, 168, 56, 1));
        let mut out = sample();
        out[..20].fill(0);
        r.emit(&mut out);
        assert_eq!(out, sample());
    }

    #[test]
    fn quoted_header_may_be_cut_short() {
        let s = sample();
        let p = Ipv4Repr::parse_quoted(&s[..28]).unwrap();
        assert_eq!((p.header_len, p.total_len, p.payload.len()), (20, 84, 8));
    }

    proptest! {
        #[test]
        fn protocol_round_trip(v in any::<u8>()) {
            prop_assert_eq!(u8::from(IpProtocol::from(v)), v);
        }

        #[test]
        fn round_trip(repr in ipv4(), payload in proptest::collection::vec(any::<u8>(), 0..64), pad in 0usize..8) {
            let hl = repr.header_len();
            let mut buf = vec![0; hl + payload.len()];
            buf[hl..].copy_from_slice(&payload);
            repr.emit(&mut buf);
            prop_assert!(checksum::is_valid(&buf[..hl]));
            let total = buf.len();
            buf.resize(total + pad, 0xee); // trailing Ethernet padding
            let (parsed, phl, pl) = Ipv4Repr::parse_datagram(&buf).unwrap();
            prop_assert_eq!(&parsed, &repr);
            prop_assert_eq!(phl, hl);
            prop_assert_eq!(pl, &payload[..]);

            let (h, rest) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
            prop_assert_eq!(h.source, repr.src.octets());
            prop_assert_eq!(h.destination, repr.dst.octets());
            prop_assert_eq!(usize::from(h.total_len), total);
            prop_assert_eq!(h.identification, repr.ident);
            prop_assert_eq!(h.time_to_live, repr.ttl);
            prop_assert_eq!(h.protocol.0, u8::from(repr.protocol));
            prop_assert_eq!(h.dont_fragment, repr.dont_frag);
            prop_assert_eq!(h.more_fragments, repr.more_frags);
            prop_assert_eq!(h.fragment_offset.value(), repr.frag_offset);
            prop_assert_eq!((h.dscp.value() << 2) | h.ecn.value(), repr.dscp_ecn);
            prop_assert_eq!(h.options.as_slice(), &repr.options[..]);
            prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
            prop_assert_eq!(rest.len(), buf.len() - hl);
        }
    }
}
