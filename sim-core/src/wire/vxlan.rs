//! VXLAN headers (RFC 7348): 8 bytes between the outer UDP header and the
//! inner Ethernet frame.

use std::fmt;

use super::WireError;

/// A VXLAN header. The reserved fields are kept as they were, so a header
/// with nonzero reserved bits re-emits unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// 0x08 (`I`, the VNI is valid) in every frame Linux sends.
    pub flags: u8,
    /// Bytes 1..4, reserved (zero).
    pub reserved0: [u8; 3],
    /// The 24-bit VXLAN network identifier.
    pub vni: u32,
    /// Byte 7, reserved (zero).
    pub reserved1: u8,
}

impl VxlanRepr {
    /// The header length: 8.
    pub const LEN: usize = 8;
    /// The I flag: the VNI is valid.
    pub const FLAG_I: u8 = 0x08;
    /// The largest VNI (24 bits).
    pub const MAX_VNI: u32 = 0x00ff_ffff;
    /// The IANA port (Linux `dstport 4789`).
    pub const IANA_PORT: u16 = 4789;
    /// The port of Linux's default (`dstport 0`) and flannel: 8472.
    pub const LINUX_PORT: u16 = 8472;

    /// A header as Linux sends it: flags `I`, reserved zero.
    pub fn new(vni: u32) -> Self {
        VxlanRepr {
            flags: Self::FLAG_I,
            reserved0: [0; 3],
            vni,
            reserved1: 0,
        }
    }

    /// Decodes the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<(VxlanRepr, usize), WireError> {
        WireError::check_len("VXLAN header", buf, Self::LEN)?;
        Ok((
            VxlanRepr {
                flags: buf[0],
                reserved0: [buf[1], buf[2], buf[3]],
                vni: u32::from_be_bytes([0, buf[4], buf[5], buf[6]]),
                reserved1: buf[7],
            },
            Self::LEN,
        ))
    }

    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the 8-byte header at the start of `buf`.
    ///
    /// # Panics
    /// In debug builds, if the VNI does not fit in 24 bits.
    pub fn emit(&self, buf: &mut [u8]) {
        debug_assert!(
            self.vni <= Self::MAX_VNI,
            "VNI {} exceeds 24 bits",
            self.vni
        );
        buf[0] = self.flags;
        buf[1..4].copy_from_slice(&self.reserved0);
        buf[4..7].copy_from_slice(&self.vni.to_be_bytes()[1..]);
        buf[7] = self.reserved1;
    }
}

impl fmt::Display for VxlanRepr {
    /// As tcpdump: `VXLAN, flags [I] (0x08), vni 42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = if self.flags & Self::FLAG_I != 0 {
            "I"
        } else {
            "."
        };
        write!(
            f,
            "VXLAN, flags [{i}] ({:#04x}), vni {}",
            self.flags, self.vni
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn known_bytes() {
        let (r, n) = VxlanRepr::parse(&[0x08, 0, 0, 0, 0, 0, 0x2a, 0]).unwrap();
        assert_eq!((r, n), (VxlanRepr::new(42), 8));
        assert_eq!(r.to_string(), "VXLAN, flags [I] (0x08), vni 42");
        assert_eq!(
            VxlanRepr::parse(&[8, 0, 0]).unwrap_err().to_string(),
            "truncated VXLAN header: 3 bytes, need 8"
        );
    }

    proptest! {
        #[test]
        fn round_trip(repr in vxlan()) {
            let mut buf = [0u8; 8];
            repr.emit(&mut buf);
            prop_assert_eq!(VxlanRepr::parse(&buf).unwrap(), (repr, 8));
        }
    }
}
