//! Wire formats: checked, typed representations of the headers podpath puts
//! on its simulated wires, in the style of smoltcp's `wire` module.
//!
//! One module per protocol. Each header has a `XxxRepr` with public fields
//! that holds everything needed to reproduce its bytes except what is
//! derived from the rest of the packet (lengths and checksums, which are
//! computed when emitting and verified when parsing), and
//!
//! - `parse(&[u8]) -> Result<(XxxRepr, header_len), WireError>`: checks the
//!   buffer and decodes the header at its start;
//! - `buffer_len(&self)`: the header's length on the wire;
//! - `emit(&self, buf: &mut [u8], ...)`: writes the header at the start of
//!   `buf`. Headers whose length or checksum covers what follows them (IPv4,
//!   ICMP, UDP, TCP) take `buf` as the whole unit they cover — header then
//!   payload, already written — and fill in their length and checksum.
//!
//! Values the model does not know are kept, not lost (`EtherType::Unknown`,
//! `IpProtocol::Unknown`, `ArpOp::Unknown`, `IcmpRepr::Other`,
//! `TcpOption::Unknown`, IPv4 options as raw bytes), so what is parsed
//! re-emits to the same bytes. The whole stack of a packet is in
//! [`crate::packet`].

pub mod arp;
pub mod bgp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod mac;
pub mod tcp;
pub mod udp;
pub mod vxlan;

#[cfg(test)]
pub(crate) mod testutil;

pub use arp::{ArpOp, ArpRepr};
pub use bgp::{BgpContext, BgpError, BgpMessage};
pub use ethernet::{EtherType, EthernetRepr};
pub use icmp::IcmpRepr;
pub use ipv4::{IpProtocol, Ipv4Repr};
pub use mac::MacAddr;
pub use tcp::{TcpFlags, TcpOption, TcpRepr};
pub use udp::UdpRepr;
pub use vxlan::VxlanRepr;

/// What is wrong with bytes that do not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the header (or the length it declares) needs.
    #[error("truncated {what}: {got} bytes, need {need}")]
    Truncated {
        what: &'static str,
        got: usize,
        need: usize,
    },
    /// A checksum that does not match the bytes it covers.
    #[error("bad {what} checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum {
        what: &'static str,
        got: u16,
        expected: u16,
    },
    /// An IP version other than 4 where an IPv4 header was expected.
    #[error("not an IPv4 header: version {0}")]
    NotIpv4(u8),
    /// An IPv4 header length (IHL) below the minimum of 5 words.
    #[error("bad IPv4 header length: IHL {ihl} ({} bytes), the minimum is 5 (20 bytes)", *ihl as usize * 4)]
    BadIpv4HeaderLen { ihl: u8 },
    /// An IPv4 total length shorter than the IPv4 header itself.
    #[error("bad IPv4 total length {total}: shorter than its {header_len}-byte header")]
    BadIpv4TotalLen { total: u16, header_len: usize },
    /// A UDP length field below 8 (the header alone).
    #[error("bad UDP length {0}: shorter than the 8-byte header")]
    BadUdpLen(u16),
    /// A TCP data offset below the minimum of 5 words.
    #[error("bad TCP data offset {offset} ({} bytes), the minimum is 5 (20 bytes)", *offset as usize * 4)]
    BadTcpDataOffset { offset: u8 },
    /// A TCP option whose length byte does not fit.
    #[error("bad TCP option kind {kind}: {reason}")]
    BadTcpOption { kind: u8, reason: &'static str },
    /// ARP for something other than Ethernet hardware and IPv4 addresses.
    #[error(
        "unsupported ARP: hardware type {htype}, protocol {ptype:#06x}, address lengths {hlen}/{plen} (only Ethernet/IPv4 ARP is modelled)"
    )]
    UnsupportedArp {
        htype: u16,
        ptype: u16,
        hlen: u8,
        plen: u8,
    },
    /// A string that is not a MAC address.
    #[error("invalid MAC address {input:?}: {reason}")]
    InvalidMac { input: String, reason: &'static str },
}

impl WireError {
    /// Checks that `buf` holds at least `need` bytes of `what`.
    pub(crate) fn check_len(what: &'static str, buf: &[u8], need: usize) -> Result<(), WireError> {
        if buf.len() < need {
            Err(WireError::Truncated {
                what,
                got: buf.len(),
                need,
            })
        } else {
            Ok(())
        }
    }
}

#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[inline]
pub(crate) fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
