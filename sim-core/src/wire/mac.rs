//! Ethernet (EUI-48) MAC addresses.

use std::fmt;
use std::str::FromStr;

use super::WireError;

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (the target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub const fn new(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }
    /// Group bit set (broadcast included).
    pub fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// Group bit clear.
    pub fn is_unicast(self) -> bool {
        !self.is_multicast()
    }
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }
    /// Locally administered bit set (as on veths and bridges Linux makes up).
    pub fn is_local(self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = WireError;

    /// Six colon-separated bytes of two hex digits each, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| WireError::InvalidMac {
            input: s.to_owned(),
            reason,
        };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 {
                return Err(err("more than 6 colon-separated bytes"));
            }
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err(
                    "each byte must be two hex digits, as in 02:42:ac:11:00:02",
                ));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| err("bad hex digit"))?;
            n += 1;
        }
        if n != 6 {
            return Err(err("fewer than 6 colon-separated bytes"));
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_and_parse() {
        let m: MacAddr = "02:42:AC:11:00:0a".parse().unwrap();
        assert_eq!(m, MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x0a]));
        assert_eq!(m.to_string(), "02:42:ac:11:00:0a");
        assert!(m.is_unicast() && m.is_local() && !m.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::ZERO.is_zero());
        assert!(
            "01:00:5e:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0a:0b",
            "02:42:ac:11:00:0g",
            "2:42:ac:11:00:0a",
            "02-42-ac-11-00-0a",
            "02:42:ac:11:00:0a:",
            "+2:42:ac:11:00:0a",
        ] {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(matches!(e, WireError::InvalidMac { .. }), "{bad}");
            assert!(e.to_string().starts_with("invalid MAC address"), "{e}");
        }
        assert_eq!(
            "02:42:ac:11:00".parse::<MacAddr>().unwrap_err().to_string(),
            "invalid MAC address \"02:42:ac:11:00\": fewer than 6 colon-separated bytes"
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(b in any::<[u8; 6]>(), upper in any::<bool>()) {
            let m = MacAddr(b);
            let s = if upper { m.to_string().to_uppercase() } else { m.to_string() };
            prop_assert_eq!(s.parse::<MacAddr>().unwrap(), m);
        }
    }
}
