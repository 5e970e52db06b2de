//! ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types
//! are a parse error: the model has no use for them.

use std::net::Ipv4Addr;

use super::{MacAddr, WireError, get_u16, put_u16};

/// The ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArpOp {
    /// 1
    Request,
    /// 2
    Reply,
    /// Any other value, kept as it was.
    Unknown(u16),
}

impl From<u16> for ArpOp {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => ArpOp::Unknown(other),
        }
    }
}

impl From<ArpOp> for u16 {
    fn from(op: ArpOp) -> u16 {
        match op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::Unknown(v) => v,
        }
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// The packet length: 28.
    pub const LEN: usize = 28;
    const HTYPE_ETHERNET: u16 = 1;
    const PTYPE_IPV4: u16 = 0x0800;

    /// A request as Linux sends it: "who has `target_ip`? tell `sender_ip`",
    /// with a zero target MAC.
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        ArpRepr {
            op: ArpOp::Request,
            sender_mac,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        }
    }

    /// The reply to `self` (a request) from the owner of the target address.
    pub fn reply_from(&self, owner_mac: MacAddr) -> Self {
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: owner_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    /// Decodes the packet at the start of `buf` (trailing padding ignored).
    pub fn parse(buf: &[u8]) -> Result<(ArpRepr, usize), WireError> {
        WireError::check_len("ARP packet", buf, 8)?;
        let (htype, ptype, hlen, plen) = (get_u16(buf, 0), get_u16(buf, 2), buf[4], buf[5]);
        if htype != Self::HTYPE_ETHERNET || ptype != Self::PTYPE_IPV4 || hlen != 6 || plen != 4 {
            return Err(WireError::UnsupportedArp {
                htype,
                ptype,
                hlen,
                plen,
            });
        }
        WireError::check_len("ARP packet", buf, Self::LEN)?;
        let mac = |at: usize| {
            let mut m = [0; 6];
            m.copy_from_slice(&buf[at..at + 6]);
            MacAddr(m)
        };
        let ip = |at: usize| Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]);
        Ok((
            ArpRepr {
                op: ArpOp::from(get_u16(buf, 6)),
                sender_mac: mac(8),
                sender_ip: ip(14),
                target_mac: mac(18),
                target_ip: ip(24),
            },
            Self::LEN,
        ))
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the 28-byte packet at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        put_u16(buf, 0, Self::HTYPE_ETHERNET);
        put_u16(buf, 2, Self::PTYPE_IPV4);
        buf[4] = 6;
        buf[5] = 4;
        put_u16(buf, 6, self.op.into());
        buf[8..14].copy_from_slice(&self.sender_mac.0);
        buf[14..18].copy_from_slice(&self.sender_ip.octets());
        buf[18..24].copy_from_slice(&self.target_mac.0);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn other_hardware_is_an_error() {
        let mut buf = [0u8; 28];
        ArpRepr::request(
            MacAddr([2, 0, 0, 0, 0, 1]),
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
        )
        .emit(&mut buf);
        buf[1] = 6; // IEEE 802
        assert_eq!(
            ArpRepr::parse(&buf).unwrap_err().to_string(),
            "unsupported ARP: hardware type 6, protocol 0x0800, address lengths 6/4 (only Ethernet/IPv4 ARP is modelled)"
        );
        assert_eq!(
            ArpRepr::parse(&[0, 1, 8, 0, 6, 4, 0, 1, 0, 0])
                .unwrap_err()
                .to_string(),
            "truncated ARP packet: 10 bytes, need 28"
        );
    }

    proptest! {
        #[test]
        fn round_trip(repr in arp(), pad in 0usize..20) {
            let mut buf = vec![0; repr.buffer_len() + pad];
            repr.emit(&mut buf);
            prop_assert_eq!(ArpRepr::parse(&buf).unwrap(), (repr, 28));
            let ep = etherparse::ArpPacketSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(ep.operation().0, u16::from(repr.op));
            prop_assert_eq!(ep.sender_hw_addr(), &repr.sender_mac.0[..]);
            prop_assert_eq!(ep.sender_protocol_addr(), &repr.sender_ip.octets()[..]);
            prop_assert_eq!(ep.target_hw_addr(), &repr.target_mac.0[..]);
            prop_assert_eq!(ep.target_protocol_addr(), &repr.target_ip.octets()[..]);
        }
    }
}
