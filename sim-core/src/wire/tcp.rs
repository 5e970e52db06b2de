//! TCP headers (RFC 9293) over IPv4, with options.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::{BitOr, BitOrAssign};

use super::{WireError, checksum, get_u16, get_u32, put_u16, put_u32};

/// The 12 bits after the data offset: the nine flags and three reserved
/// bits (kept as they are).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// ECN nonce (RFC 3540, historic; AE in AccECN).
    pub const NS: TcpFlags = TcpFlags(0x100);
    pub const NONE: TcpFlags = TcpFlags(0);
    /// All 12 bits the header has for flags.
    pub const MASK: u16 = 0x0fff;
    /// The three reserved bits.
    pub const RESERVED: u16 = 0x0e00;

    pub const fn bits(self) -> u16 {
        self.0
    }
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl TcpFlags {
    /// Appends the flags as tcpdump prints them (see the `Display` impl).
    pub fn push_to(self, out: &mut String) {
        const NAMES: [(TcpFlags, char); 9] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, '.'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::NS, 'e'),
        ];
        out.push('[');
        if self.0 == 0 {
            out.push_str("none");
        }
        for (flag, c) in NAMES {
            if self.contains(flag) {
                out.push(c);
            }
        }
        if self.0 & Self::RESERVED != 0 {
            out.push('r');
        }
        out.push(']');
    }
}

impl fmt::Display for TcpFlags {
    /// As tcpdump prints them: `[S]`, `[S.]`, `[P.]`, `[F.]`, `[R]`,
    /// `[none]`; `.` is ACK. Reserved bits show as `r`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(8);
        self.push_to(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self} {:#05x})", self.0)
    }
}

/// A TCP option.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TcpOption {
    /// Kind 0: ends the list; what follows it is padding and is not decoded.
    EndOfList,
    /// Kind 1.
    Nop,
    /// Kind 2.
    Mss(u16),
    /// Kind 3: the shift count.
    WindowScale(u8),
    /// Kind 4.
    SackPermitted,
    /// Kind 5: left and right edges of each block.
    Sack(Vec<(u32, u32)>),
    /// Kind 8.
    Timestamps { tsval: u32, tsecr: u32 },
    /// Any other kind, or a known kind whose length is not the one it
    /// should have: kind and the bytes after the length byte.
    Unknown { kind: u8, data: Vec<u8> },
}

impl TcpOption {
    /// Bytes on the wire.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::Nop => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(blocks) => 2 + 8 * blocks.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Never: every option has at least its kind byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            TcpOption::EndOfList => 0,
            TcpOption::Nop => 1,
            TcpOption::Mss(_) => 2,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 4,
            TcpOption::Sack(_) => 5,
            TcpOption::Timestamps { .. } => 8,
            TcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.kind();
        if matches!(self, TcpOption::EndOfList | TcpOption::Nop) {
            return;
        }
        buf[1] = self.len() as u8;
        match self {
            TcpOption::Mss(m) => put_u16(buf, 2, *m),
            TcpOption::WindowScale(s) => buf[2] = *s,
            TcpOption::Sack(blocks) => {
                for (i, (l, r)) in blocks.iter().enumerate() {
                    put_u32(buf, 2 + 8 * i, *l);
                    put_u32(buf, 6 + 8 * i, *r);
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                put_u32(buf, 2, *tsval);
                put_u32(buf, 6, *tsecr);
            }
            TcpOption::Unknown { data, .. } => buf[2..2 + data.len()].copy_from_slice(data),
            TcpOption::EndOfList | TcpOption::Nop | TcpOption::SackPermitted => {}
        }
    }

    /// Decodes the options area of a header: up to and including an
    /// end-of-list option (the padding after it is not kept).
    pub fn parse_all(mut buf: &[u8]) -> Result<Vec<TcpOption>, WireError> {
        let mut out = Vec::new();
        while let Some(&kind) = buf.first() {
            match kind {
                0 => {
                    out.push(TcpOption::EndOfList);
                    break;
                }
                1 => {
                    out.push(TcpOption::Nop);
                    buf = &buf[1..];
                    continue;
                }
                _ => {}
            }
            let Some(&len) = buf.get(1) else {
                return Err(WireError::BadTcpOption {
                    kind,
                    reason: "no room for its length byte",
                });
            };
            let len = usize::from(len);
            if len < 2 {
                return Err(WireError::BadTcpOption {
                    kind,
                    reason: "length below 2",
                });
            }
            if len > buf.len() {
                return Err(WireError::BadTcpOption {
                    kind,
                    reason: "length runs past the end of the header",
                });
            }
            let body = &buf[2..len];
            out.push(match (kind, len) {
                (2, 4) => TcpOption::Mss(get_u16(body, 0)),
                (3, 3) => TcpOption::WindowScale(body[0]),
                (4, 2) => TcpOption::SackPermitted,
                (5, _) if (len - 2) % 8 == 0 => TcpOption::Sack(
                    body.chunks_exact(8)
                        .map(|c| (get_u32(c, 0), get_u32(c, 4)))
                        .collect(),
                ),
                (8, 10) => TcpOption::Timestamps {
                    tsval: get_u32(body, 0),
                    tsecr: get_u32(body, 4),
                },
                _ => TcpOption::Unknown {
                    kind,
                    data: body.to_vec(),
                },
            });
            buf = &buf[len..];
        }
        Ok(out)
    }
}

impl fmt::Display for TcpOption {
    /// As tcpdump: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`,
    /// `wscale 7`, `sack 1 {1:2}`, `eol`, `unknown-99 0x0102`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::EndOfList => f.write_str("eol"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Mss(m) => write!(f, "mss {m}"),
            TcpOption::WindowScale(s) => write!(f, "wscale {s}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                write!(f, "sack {}", blocks.len())?;
                for (l, r) in blocks {
                    write!(f, " {{{l}:{r}}}")?;
                }
                Ok(())
            }
            TcpOption::Timestamps { tsval, tsecr } => write!(f, "TS val {tsval} ecr {tsecr}"),
            TcpOption::Unknown { kind, data } => {
                write!(f, "unknown-{kind}")?;
                if !data.is_empty() {
                    f.write_str(" 0x")?;
                    for b in data {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A TCP header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    /// Emitted in order, then padded with zeros (end of list) to a multiple
    /// of 4 bytes; at most 40 bytes in all.
    pub options: Vec<TcpOption>,
}

impl TcpRepr {
    /// The length of a header without options.
    pub const MIN_LEN: usize = 20;
    /// The most option bytes a header can carry.
    pub const MAX_OPTIONS_LEN: usize = 40;
    const PROTOCOL: u8 = 6;

    /// Option bytes, before padding.
    #[inline]
    pub fn options_len(&self) -> usize {
        match self.options.as_slice() {
            [] => 0,
            // What every segment of a connection with timestamps carries.
            [TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamps { .. }] => 12,
            o => o.iter().map(TcpOption::len).sum(),
        }
    }

    /// The header length: 20 plus the options padded to 4 bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.options.is_empty() {
            Self::MIN_LEN
        } else {
            Self::MIN_LEN + ((self.options_len() + 3) & !3)
        }
    }

    /// Same as [`header_len`](Self::header_len).
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// The sequence space a segment with `payload_len` data bytes takes:
    /// the data plus one for SYN and one for FIN.
    pub fn segment_len(&self, payload_len: usize) -> usize {
        payload_len + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// The MSS option's value, if any.
    pub fn mss(&self) -> Option<u16> {
        self.options.iter().find_map(|o| match o {
            TcpOption::Mss(m) => Some(*m),
            _ => None,
        })
    }

    /// Decodes the header at the start of `buf` (the segment). The checksum
    /// is checked separately by [`verify_checksum`](Self::verify_checksum).
    pub fn parse(buf: &[u8]) -> Result<(TcpRepr, usize), WireError> {
        WireError::check_len("TCP header", buf, Self::MIN_LEN)?;
        let offset = buf[12] >> 4;
        if offset < 5 {
            return Err(WireError::BadTcpDataOffset { offset });
        }
        let hl = usize::from(offset) * 4;
        WireError::check_len("TCP header", buf, hl)?;
        let repr = TcpRepr {
            src_port: get_u16(buf, 0),
            dst_port: get_u16(buf, 2),
            seq: get_u32(buf, 4),
            ack: get_u32(buf, 8),
            flags: TcpFlags(get_u16(buf, 12) & TcpFlags::MASK),
            window: get_u16(buf, 14),
            urgent: get_u16(buf, 18),
            options: TcpOption::parse_all(&buf[Self::MIN_LEN..hl])?,
        };
        Ok((repr, hl))
    }

    /// Checks the checksum of `segment` (header and data, exactly the IPv4
    /// payload) sent from `src` to `dst`.
    pub fn verify_checksum(segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), WireError> {
        WireError::check_len("TCP header", segment, Self::MIN_LEN)?;
        let total = checksum::combine(&[
            checksum::pseudo_header(src, dst, Self::PROTOCOL, segment.len() as u32),
            checksum::sum(segment),
        ]);
        if total == 0xffff {
            return Ok(());
        }
        let got = get_u16(segment, 16);
        Err(WireError::BadChecksum {
            what: "TCP",
            got,
            expected: !checksum::combine(&[total, !got]),
        })
    }

    /// Writes the header at the start of `buf` — the whole segment, its data
    /// already written after the header — with the checksum for a segment
    /// from `src` to `dst`.
    ///
    /// # Panics
    /// If the options exceed 40 bytes.
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let opts = self.options_len();
        assert!(
            opts <= Self::MAX_OPTIONS_LEN,
            "TCP options of {opts} bytes exceed 40"
        );
        let hl = self.header_len();
        put_u16(buf, 0, self.src_port);
        put_u16(buf, 2, self.dst_port);
        put_u32(buf, 4, self.seq);
        put_u32(buf, 8, self.ack);
        put_u16(
            buf,
            12,
            ((hl as u16 / 4) << 12) | (self.flags.0 & TcpFlags::MASK),
        );
        put_u16(buf, 14, self.window);
        put_u16(buf, 16, 0);
        put_u16(buf, 18, self.urgent);
        let mut at = Self::MIN_LEN;
        for o in &self.options {
            o.emit(&mut buf[at..]);
            at += o.len();
        }
        buf[at..hl].fill(0);
        let c = !checksum::combine(&[
            checksum::pseudo_header(src, dst, Self::PROTOCOL, buf.len() as u32),
            checksum::sum(buf),
        ]);
        put_u16(buf, 16, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn flags_display_like_tcpdump() {
        assert_eq!(TcpFlags::SYN.to_string(), "[S]");
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "[S.]");
        assert_eq!((TcpFlags::PSH | TcpFlags::ACK).to_string(), "[P.]");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "[F.]");
        assert_eq!(TcpFlags::ACK.to_string(), "[.]");
        assert_eq!(TcpFlags::RST.to_string(), "[R]");
        assert_eq!(TcpFlags::NONE.to_string(), "[none]");
        assert_eq!(
            (TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR).to_string(),
            "[SEW]"
        );
    }

    #[test]
    fn real_syn_options() {
        // The options of the SYN in tests/fixtures/tcp.pcap.
        let raw = [
            0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x44, 0x4c, 0x3e, 0x6a, 0x00, 0x00,
            0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
        ];
        let opts = TcpOption::parse_all(&raw).unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 1145847402,
                    tsecr: 0
                },
                TcpOption::Nop,
                TcpOption::WindowScale(10),
            ]
        );
        let s: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
        assert_eq!(
            s.join(","),
            "mss 1460,sackOK,TS val 1145847402 ecr 0,nop,wscale 10"
        );
    }

    #[test]
    fn option_errors() {
        assert_eq!(
            TcpOption::parse_all(&[2]).unwrap_err().to_string(),
            "bad TCP option kind 2: no room for its length byte"
        );
        assert_eq!(
            TcpOption::parse_all(&[2, 1, 0, 0]).unwrap_err().to_string(),
            "bad TCP option kind 2: length below 2"
        );
        assert_eq!(
            TcpOption::parse_all(&[8, 10, 0, 0])
                .unwrap_err()
                .to_string(),
            "bad TCP option kind 8: length runs past the end of the header"
        );
        // A known kind with a wrong length is kept, not lost.
        assert_eq!(
            TcpOption::parse_all(&[2, 3, 9, 0]).unwrap(),
            vec![
                TcpOption::Unknown {
                    kind: 2,
                    data: vec![9]
                },
                TcpOption::EndOfList
            ]
        );
        let mut seg = [0u8; 20];
        seg[12] = 0x40;
        assert_eq!(
            TcpRepr::parse(&seg).unwrap_err().to_string(),
            "bad TCP data offset 4 (16 bytes), the minimum is 5 (20 bytes)"
        );
    }

    proptest! {
        #[test]
        fn round_trip(
            repr in tcp(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let hl = repr.header_len();
            prop_assert_eq!(hl % 4, 0);
            let mut buf = vec![0; hl + payload.len()];
            buf[hl..].copy_from_slice(&payload);
            repr.emit(&mut buf, src, dst);
            TcpRepr::verify_checksum(&buf, src, dst).unwrap();
            prop_assert_eq!(TcpRepr::parse(&buf).unwrap(), (repr.clone(), hl));

            let (h, rest) = etherparse::TcpHeader::from_slice(&buf).unwrap();
            prop_assert_eq!((h.source_port, h.destination_port), (repr.src_port, repr.dst_port));
            prop_assert_eq!((h.sequence_number, h.acknowledgment_number), (repr.seq, repr.ack));
            prop_assert_eq!(h.window_size, repr.window);
            prop_assert_eq!(h.urgent_pointer, repr.urgent);
            prop_assert_eq!(h.header_len(), hl);
            let f = repr.flags;
            prop_assert_eq!(
                [h.fin, h.syn, h.rst, h.psh, h.ack, h.urg, h.ece, h.cwr, h.ns],
                [f.fin(), f.syn(), f.rst(), f.contains(TcpFlags::PSH), f.ack(),
                 f.contains(TcpFlags::URG), f.contains(TcpFlags::ECE), f.contains(TcpFlags::CWR),
                 f.contains(TcpFlags::NS)]
            );
            if f.0 & TcpFlags::RESERVED == 0 {
                // (etherparse drops the reserved bits, so its sum differs)
                prop_assert_eq!(h.checksum, h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), rest).unwrap());
            }
            // etherparse's option decoding agrees where it knows the kind
            use etherparse::TcpOptionElement as E;
            let theirs: Vec<_> = h.options_iterator().collect();
            for (mine, theirs) in repr.options.iter().zip(theirs) {
                match (mine, theirs) {
                    (TcpOption::Nop, Ok(E::Noop)) => {}
                    (TcpOption::Mss(a), Ok(E::MaximumSegmentSize(b))) => prop_assert_eq!(*a, b),
                    (TcpOption::WindowScale(a), Ok(E::WindowScale(b))) => prop_assert_eq!(*a, b),
                    (TcpOption::SackPermitted, Ok(E::SelectiveAcknowledgementPermitted)) => {}
                    (TcpOption::Timestamps { tsval, tsecr }, Ok(E::Timestamp(a, b))) => {
                        prop_assert_eq!((*tsval, *tsecr), (a, b));
                    }
                    (TcpOption::Sack(blocks), Ok(E::SelectiveAcknowledgement(first, more))) => {
                        prop_assert_eq!(blocks[0], first);
                        for (i, b) in blocks.iter().enumerate().skip(1) {
                            prop_assert_eq!(Some(*b), more[i - 1]);
                        }
                    }
                    // Kinds etherparse does not decode, or decodes differently.
                    _ => break,
                }
            }
        }
    }
}
