//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried folded to 16 bits and not yet complemented, so they
//! combine: the checksum of a UDP datagram is
//! `!combine(&[pseudo_header(..), sum(datagram)])`.

use std::net::Ipv4Addr;

/// Folds a 32-bit accumulator into a 16-bit ones'-complement sum.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The ones'-complement sum of `data` taken as big-endian 16-bit words (an
/// odd last byte is padded with zero), folded but not complemented.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four words at once: each is below 2^16, so no overflow for any
        // slice that fits in memory.
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Combines folded sums (each of an even-length piece, or the last piece).
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The checksum to put in a header: the complement of the sum of `data`
/// (taken with the checksum field zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Whether `data`, checksum field included, sums to all ones.
pub fn is_valid(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// The folded sum of the IPv4 pseudo-header used by UDP and TCP: source,
/// destination, zero, protocol, and the length of the transport segment.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u32) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(protocol)
        + u64::from(len >> 16)
        + u64::from(len & 0xffff);
    fold(acc)
}

/// Updates checksum `csum` for one 16-bit word of the covered data changing
/// from `old` to `new` (RFC 1624, equation 3: `HC' = ~(~HC + ~m + m')`).
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!csum) + u64::from(!old) + u64::from(new))
}

/// Updates checksum `csum` for an aligned 32-bit field changing from `old`
/// to `new` (two words).
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// Updates checksum `csum` for an IPv4 address (in the header, or in the
/// pseudo-header of UDP/TCP) changing from `old` to `new`, as NAT does.
pub fn update_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(csum, old.to_bits(), new.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn known_ipv4_header() {
        // The echo request's IPv4 header in tests/fixtures/arp-icmp.pcap.
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0xd8, 0xd4, 0x40, 0x00, 0x40, 0x01, 0x70, 0x80, 0xc0, 0xa8,
            0x38, 0x01, 0xc0, 0xa8, 0x38, 0x02,
        ];
        assert!(is_valid(&h));
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0x7080);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    proptest! {
        #[test]
        fn sum_is_split_invariant(data in proptest::collection::vec(any::<u8>(), 0..200), at in 0usize..100) {
            let at = (at.min(data.len())) & !1; // split at an even offset
            prop_assert_eq!(combine(&[sum(&data[..at]), sum(&data[at..])]), sum(&data));
        }

        #[test]
        fn checksum_makes_data_valid(mut data in proptest::collection::vec(any::<u8>(), 2..100)) {
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(is_valid(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 8..64),
            word in 1usize..4,
            new in any::<u16>(),
        ) {
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            let old = u16::from_be_bytes([data[2 * word], data[2 * word + 1]]);
            data[2 * word..2 * word + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update16(c, old, new);
            data[..2].copy_from_slice(&updated.to_be_bytes());
            // Valid; and equal to a recomputation except for the two
            // representations of zero (0x0000/0xffff) of all-zero data.
            prop_assert!(is_valid(&data));
            data[..2].copy_from_slice(&[0, 0]);
            let fresh = checksum(&data);
            prop_assert!(updated == fresh || (updated == 0xffff && fresh == 0) || (updated == 0 && fresh == 0xffff));
        }

        #[test]
        fn address_update_matches_recompute(a in any::<u32>(), b in any::<u32>(), other in any::<u32>()) {
            let (a, b) = (Ipv4Addr::from_bits(a), Ipv4Addr::from_bits(b));
            let before = !combine(&[pseudo_header(a, Ipv4Addr::from_bits(other), 17, 8)]);
            let after = !combine(&[pseudo_header(b, Ipv4Addr::from_bits(other), 17, 8)]);
            let updated = update_addr(before, a, b);
            prop_assert!(updated == after || (updated ^ after) == 0xffff && (updated == 0 || after == 0));
        }
    }
}
