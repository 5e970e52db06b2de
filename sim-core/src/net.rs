//! IPv4 prefixes.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix: an address and a prefix length. The address may have host
/// bits set (as in `ip addr add 172.16.1.1/24`); [`Ipv4Net::network`] clears them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub len: u8,
}

/// By address, then length: what deriving the order gives, without
/// comparing the address's octets one by one (prefixes are the keys of
/// large ordered maps).
impl Ord for Ipv4Net {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.addr.to_bits(), self.len).cmp(&(other.addr.to_bits(), other.len))
    }
}

impl PartialOrd for Ipv4Net {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ipv4Net {
    pub const DEFAULT: Ipv4Net = Ipv4Net {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Ipv4Net> {
        (len <= 32).then_some(Ipv4Net { addr, len })
    }
    pub fn host(addr: Ipv4Addr) -> Ipv4Net {
        Ipv4Net { addr, len: 32 }
    }
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }
    /// The prefix with host bits cleared.
    pub fn network(self) -> Ipv4Net {
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            len: self.len,
        }
    }
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
    pub fn contains(self, a: Ipv4Addr) -> bool {
        (u32::from(a) ^ u32::from(self.addr)) & self.mask() == 0
    }
    pub fn is_network(self) -> bool {
        self.network() == self
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parses `a.b.c.d/len` or a bare address (a /32).
impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IPv4 address or prefix"))?;
        let len = match l {
            None => 32,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => return Err(format!("\"{s}\": prefix length must be 0..32")),
            },
        };
        Ok(Ipv4Net { addr, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_by_octets_then_length() {
        let nets: Vec<Ipv4Net> = [
            "0.0.0.0/0",
            "0.0.0.0/8",
            "1.0.0.0/8",
            "9.255.255.255/32",
            "10.0.0.0/8",
            "10.0.0.0/9",
            "10.0.0.1/32",
            "10.128.0.0/9",
            "128.0.0.0/1",
            "200.1.2.3/24",
            "255.255.255.255/32",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for a in &nets {
            for b in &nets {
                let octets = (a.addr.octets(), a.len).cmp(&(b.addr.octets(), b.len));
                assert_eq!(a.cmp(b), octets, "{a} {b}");
                assert_eq!(a.partial_cmp(b), Some(octets));
            }
        }
    }

    #[test]
    fn basics() {
        let n: Ipv4Net = "172.16.1.1/24".parse().unwrap();
        assert_eq!(n.network().to_string(), "172.16.1.0/24");
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 16, 1, 255));
        assert!(n.contains(Ipv4Addr::new(172, 16, 1, 200)));
        assert!(!n.contains(Ipv4Addr::new(172, 16, 2, 1)));
        assert!(Ipv4Net::DEFAULT.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!("10.0.0.1".parse::<Ipv4Net>().unwrap().len, 32);
        assert!("10.0.0.1/33".parse::<Ipv4Net>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Net>().is_err());
    }
}
