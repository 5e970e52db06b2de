//! Ethernet II frames (no FCS, no VLAN tags).
//!
//! Frames are emitted as the kernel hands them to a veth: header plus
//! payload, without padding to the 60-byte minimum (a Linux ARP request on a
//! veth is 42 bytes). Padding on received frames is tolerated by the layers
//! above, which trust their own length fields.

use std::fmt;

use super::{MacAddr, WireError, get_u16, put_u16};

/// The protocol of an Ethernet payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86dd
    Ipv6,
    /// 0x8100 (802.1Q; tags are not decoded)
    Vlan,
    /// Any other value, kept as it was. Build values with `From<u16>`, which
    /// never makes `Unknown` of a known value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::Unknown(v) => write!(f, "{v:#06x}"),
        }
    }
}

/// An Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// The header length: 14.
    pub const LEN: usize = 14;

    /// Decodes the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<(EthernetRepr, usize), WireError> {
        WireError::check_len("Ethernet header", buf, Self::LEN)?;
        let mut dst = [0; 6];
        let mut src = [0; 6];
        dst.copy_from_slice(&buf[0..6]);
        src.copy_from_slice(&buf[6..12]);
        Ok((
            EthernetRepr {
                dst: MacAddr(dst),
                src: MacAddr(src),
                ethertype: EtherType::from(get_u16(buf, 12)),
            },
            Self::LEN,
        ))
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the 14-byte header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..6].copy_from_slice(&self.dst.0);
        buf[6..12].copy_from_slice(&self.src.0);
        put_u16(buf, 12, self.ethertype.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetRepr::parse(&[0; 13]).unwrap_err().to_string(),
            "truncated Ethernet header: 13 bytes, need 14"
        );
    }

    proptest! {
        #[test]
        fn ethertype_round_trip(v in any::<u16>()) {
            prop_assert_eq!(u16::from(EtherType::from(v)), v);
        }

        #[test]
        fn round_trip(repr in ethernet(), extra in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(&mut buf);
            buf.extend_from_slice(&extra);
            prop_assert_eq!(EthernetRepr::parse(&buf).unwrap(), (repr, 14));
            let eth = etherparse::Ethernet2Header::from_slice(&buf).unwrap().0;
            prop_assert_eq!(eth.destination, repr.dst.0);
            prop_assert_eq!(eth.source, repr.src.0);
            prop_assert_eq!(eth.ether_type.0, u16::from(repr.ethertype));
        }
    }
}
