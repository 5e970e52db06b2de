//! UDP (RFC 768) over IPv4.

use std::net::Ipv4Addr;

use super::{WireError, checksum, get_u16, put_u16};

/// A UDP header. The length is computed on emit; the checksum, when
/// `checksum` is true, too (with the IPv4 pseudo-header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    /// Whether the datagram carries a checksum. `false` emits 0, "no
    /// checksum" — what Linux VXLAN devices created `noudpcsum` send.
    pub checksum: bool,
}

impl UdpRepr {
    /// The header length: 8.
    pub const LEN: usize = 8;
    const PROTOCOL: u8 = 17;

    /// Decodes the header at the start of `buf`, the IPv4 payload. Checks the
    /// length field against `buf` (bytes beyond it are ignored; see
    /// [`parse_datagram`](Self::parse_datagram)). The checksum is checked
    /// separately by [`verify_checksum`](Self::verify_checksum).
    pub fn parse(buf: &[u8]) -> Result<(UdpRepr, usize), WireError> {
        let (repr, _) = Self::parse_datagram(buf)?;
        Ok((repr, Self::LEN))
    }

    /// As [`parse`](Self::parse), also returning the payload as delimited by
    /// the length field.
    pub fn parse_datagram(buf: &[u8]) -> Result<(UdpRepr, &[u8]), WireError> {
        WireError::check_len("UDP header", buf, Self::LEN)?;
        let len = get_u16(buf, 4);
        if usize::from(len) < Self::LEN {
            return Err(WireError::BadUdpLen(len));
        }
        WireError::check_len("UDP datagram", buf, usize::from(len))?;
        let repr = UdpRepr {
            src_port: get_u16(buf, 0),
            dst_port: get_u16(buf, 2),
            checksum: get_u16(buf, 6) != 0,
        };
        Ok((repr, &buf[Self::LEN..usize::from(len)]))
    }

    /// Checks the checksum of the datagram at the start of `buf` (as long as
    /// its length field says), sent from `src` to `dst`. A zero checksum
    /// ("none") is accepted.
    pub fn verify_checksum(buf: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), WireError> {
        let (_, payload) = Self::parse_datagram(buf)?;
        let got = get_u16(buf, 6);
        if got == 0 {
            return Ok(());
        }
        let dgram = &buf[..Self::LEN + payload.len()];
        let total = checksum::combine(&[
            checksum::pseudo_header(src, dst, Self::PROTOCOL, dgram.len() as u32),
            checksum::sum(dgram),
        ]);
        if total == 0xffff {
            return Ok(());
        }
        let mut expected = !checksum::combine(&[total, !got]);
        if expected == 0 {
            expected = 0xffff;
        }
        Err(WireError::BadChecksum {
            what: "UDP",
            got,
            expected,
        })
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the header at the start of `buf` — the whole datagram, its
    /// payload already written after the header — with length `buf.len()`
    /// and, if `self.checksum`, the checksum for a datagram from `src` to
    /// `dst`.
    ///
    /// # Panics
    /// If `buf` is longer than 65535 bytes.
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let len = u16::try_from(buf.len())
            .unwrap_or_else(|_| panic!("UDP datagram of {} bytes exceeds 65535", buf.len()));
        put_u16(buf, 0, self.src_port);
        put_u16(buf, 2, self.dst_port);
        put_u16(buf, 4, len);
        put_u16(buf, 6, 0);
        if self.checksum {
            let c = !checksum::combine(&[
                checksum::pseudo_header(src, dst, Self::PROTOCOL, u32::from(len)),
                checksum::sum(buf),
            ]);
            // A computed zero is sent as all ones: zero means "none".
            put_u16(buf, 6, if c == 0 { 0xffff } else { c });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn errors() {
        let e = |b: &[u8]| UdpRepr::parse(b).unwrap_err().to_string();
        assert_eq!(e(&[0; 7]), "truncated UDP header: 7 bytes, need 8");
        assert_eq!(
            e(&[0, 1, 0, 2, 0, 7, 0, 0]),
            "bad UDP length 7: shorter than the 8-byte header"
        );
        assert_eq!(
            e(&[0, 1, 0, 2, 0, 9, 0, 0]),
            "truncated UDP datagram: 8 bytes, need 9"
        );
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut buf = [0u8; 12];
        UdpRepr {
            src_port: 53,
            dst_port: 5353,
            checksum: true,
        }
        .emit(&mut buf, a, b);
        UdpRepr::verify_checksum(&buf, a, b).unwrap();
        let good = get_u16(&buf, 6);
        assert!(matches!(
            UdpRepr::verify_checksum(&buf, a, Ipv4Addr::new(10, 0, 0, 3)),
            Err(WireError::BadChecksum { what: "UDP", got, expected }) if got == good && expected != good
        ));
    }

    proptest! {
        #[test]
        fn round_trip(
            repr in udp(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut buf = vec![0; 8 + payload.len()];
            buf[8..].copy_from_slice(&payload);
            repr.emit(&mut buf, src, dst);
            UdpRepr::verify_checksum(&buf, src, dst).unwrap();
            let (parsed, pl) = UdpRepr::parse_datagram(&buf).unwrap();
            prop_assert_eq!(parsed, repr);
            prop_assert_eq!(pl, &payload[..]);

            let (h, rest) = etherparse::UdpHeader::from_slice(&buf).unwrap();
            prop_assert_eq!((h.source_port, h.destination_port), (repr.src_port, repr.dst_port));
            prop_assert_eq!(usize::from(h.length), buf.len());
            if repr.checksum {
                prop_assert_eq!(h.checksum, h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), rest).unwrap());
            } else {
                prop_assert_eq!(h.checksum, 0);
            }
        }
    }
}
