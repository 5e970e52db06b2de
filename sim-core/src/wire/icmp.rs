//! ICMP for IPv4 (RFC 792), the 8-byte header.
//!
//! What follows the header — an echo's data, or the quoted start of the
//! datagram an error is about — is payload, not part of the repr. The
//! checksum covers header and payload: `emit` takes the whole message.

use super::{WireError, checksum, get_u16, put_u16};

/// Destination-unreachable codes.
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set: carries the next-hop MTU.
    pub const FRAG_NEEDED: u8 = 4;
    pub const HOST_PROHIBITED: u8 = 10;
    /// Communication administratively prohibited (iptables `REJECT
    /// --reject-with icmp-admin-prohibited`).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time-exceeded codes.
pub mod time_exceeded {
    /// TTL reached zero in transit.
    pub const TTL: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

/// ICMP message types.
pub mod ty {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

/// An ICMP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpRepr {
    /// Type 8, code 0.
    EchoRequest { ident: u16, seq: u16 },
    /// Type 0, code 0.
    EchoReply { ident: u16, seq: u16 },
    /// Type 3. `next_hop_mtu` is meaningful for code 4 (RFC 1191) and 0
    /// otherwise; the two bytes before it are zero.
    DestUnreachable { code: u8, next_hop_mtu: u16 },
    /// Type 11, with the four bytes after the checksum zero.
    TimeExceeded { code: u8 },
    /// Anything else, including the types above with a nonzero code (echo)
    /// or nonzero unused bytes: bytes 4..8 kept as they were.
    Other { ty: u8, code: u8, rest: [u8; 4] },
}

impl IcmpRepr {
    /// The header length: 8.
    pub const LEN: usize = 8;

    /// Destination unreachable, fragmentation needed, with the next-hop MTU.
    pub fn frag_needed(mtu: u16) -> Self {
        IcmpRepr::DestUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: mtu,
        }
    }

    /// Destination unreachable with `code` (see [`mod@unreachable`]).
    pub fn unreachable(code: u8) -> Self {
        IcmpRepr::DestUnreachable {
            code,
            next_hop_mtu: 0,
        }
    }

    /// The type byte.
    pub fn ty(&self) -> u8 {
        match *self {
            IcmpRepr::EchoRequest { .. } => ty::ECHO_REQUEST,
            IcmpRepr::EchoReply { .. } => ty::ECHO_REPLY,
            IcmpRepr::DestUnreachable { .. } => ty::DEST_UNREACHABLE,
            IcmpRepr::TimeExceeded { .. } => ty::TIME_EXCEEDED,
            IcmpRepr::Other { ty, .. } => ty,
        }
    }

    /// The code byte.
    pub fn code(&self) -> u8 {
        match *self {
            IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } => 0,
            IcmpRepr::DestUnreachable { code, .. }
            | IcmpRepr::TimeExceeded { code }
            | IcmpRepr::Other { code, .. } => code,
        }
    }

    /// Whether this is an error message, whose payload quotes the datagram
    /// it is about (destination unreachable, source quench, redirect, time
    /// exceeded, parameter problem).
    pub fn is_error(&self) -> bool {
        matches!(self.ty(), 3 | 4 | 5 | 11 | 12)
    }

    /// Decodes the header at the start of `buf` (the message; the checksum
    /// is checked separately by [`verify_checksum`](Self::verify_checksum)).
    pub fn parse(buf: &[u8]) -> Result<(IcmpRepr, usize), WireError> {
        WireError::check_len("ICMP header", buf, Self::LEN)?;
        let (t, code) = (buf[0], buf[1]);
        let rest = [buf[4], buf[5], buf[6], buf[7]];
        let (a, b) = (get_u16(buf, 4), get_u16(buf, 6));
        let repr = match (t, code) {
            (ty::ECHO_REQUEST, 0) => IcmpRepr::EchoRequest { ident: a, seq: b },
            (ty::ECHO_REPLY, 0) => IcmpRepr::EchoReply { ident: a, seq: b },
            (ty::DEST_UNREACHABLE, code) if a == 0 => IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu: b,
            },
            (ty::TIME_EXCEEDED, code) if rest == [0; 4] => IcmpRepr::TimeExceeded { code },
            (ty, code) => IcmpRepr::Other { ty, code, rest },
        };
        Ok((repr, Self::LEN))
    }

    /// Checks the checksum of `msg`, the whole ICMP message.
    pub fn verify_checksum(msg: &[u8]) -> Result<(), WireError> {
        WireError::check_len("ICMP header", msg, Self::LEN)?;
        if checksum::is_valid(msg) {
            return Ok(());
        }
        let got = get_u16(msg, 2);
        Err(WireError::BadChecksum {
            what: "ICMP",
            got,
            expected: !checksum::combine(&[checksum::sum(msg), !got]),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the header at the start of `buf` — the whole message, its
    /// payload already written after the header — and fills in the
    /// checksum over all of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        self.emit_header(buf);
        let c = checksum::checksum(buf);
        put_u16(buf, 2, c);
    }

    /// Writes the header with a zero checksum.
    pub fn emit_header(&self, buf: &mut [u8]) {
        buf[0] = self.ty();
        buf[1] = self.code();
        put_u16(buf, 2, 0);
        match *self {
            IcmpRepr::EchoRequest { ident, seq } | IcmpRepr::EchoReply { ident, seq } => {
                put_u16(buf, 4, ident);
                put_u16(buf, 6, seq);
            }
            IcmpRepr::DestUnreachable { next_hop_mtu, .. } => {
                put_u16(buf, 4, 0);
                put_u16(buf, 6, next_hop_mtu);
            }
            IcmpRepr::TimeExceeded { .. } => buf[4..8].fill(0),
            IcmpRepr::Other { rest, .. } => buf[4..8].copy_from_slice(&rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn bad_checksum_is_reported() {
        let mut m = [0u8; 12];
        IcmpRepr::EchoRequest { ident: 1, seq: 2 }.emit(&mut m);
        IcmpRepr::verify_checksum(&m).unwrap();
        let good = get_u16(&m, 2);
        m[2] ^= 0x10;
        assert_eq!(
            IcmpRepr::verify_checksum(&m).unwrap_err(),
            WireError::BadChecksum {
                what: "ICMP",
                got: good ^ 0x1000,
                expected: good
            }
        );
    }

    proptest! {
        #[test]
        fn round_trip(repr in icmp(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = vec![0; 8 + payload.len()];
            buf[8..].copy_from_slice(&payload);
            repr.emit(&mut buf);
            prop_assert!(checksum::is_valid(&buf));
            IcmpRepr::verify_checksum(&buf).unwrap();
            prop_assert_eq!(IcmpRepr::parse(&buf).unwrap(), (repr, 8));

            let (h, rest) = etherparse::Icmpv4Header::from_slice(&buf).unwrap();
            let hb = h.to_bytes();
            if hb[..] == buf[..8] {
                // etherparse keeps all the header bytes (it zeroes those
                // it thinks unused, such as an MTU with a code other than 4)
                prop_assert_eq!(h.checksum, h.icmp_type.calc_checksum(rest));
            }
            prop_assert_eq!((hb[0], hb[1]), (repr.ty(), repr.code()));
            use etherparse::Icmpv4Type as T;
            match (repr, h.icmp_type) {
                (IcmpRepr::EchoRequest { ident, seq }, T::EchoRequest(e))
                | (IcmpRepr::EchoReply { ident, seq }, T::EchoReply(e)) => {
                    prop_assert_eq!((e.id, e.seq), (ident, seq));
                }
                (
                    IcmpRepr::DestUnreachable { code: unreachable::FRAG_NEEDED, next_hop_mtu },
                    T::DestinationUnreachable(d),
                ) => {
                    prop_assert_eq!(
                        d,
                        etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu }
                    );
                }
                (IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. }, t) => {
                    prop_assert!(false, "etherparse decoded {:?} as {:?}", repr, t);
                }
                _ => {}
            }
        }
    }
}
