//! Seeded randomness: one root seed per run, split into named sub-streams.
//!
//! Every random decision in a run draws from a [`SimRng`] obtained from the
//! run's [`RootSeed`] by name (`"link:node1:eth0:loss"`, `"neigh:node2:proxy_delay"`).
//! A stream is ChaCha12 keyed by the root seed, with the ChaCha stream number
//! set to a stable 64-bit hash (FNV-1a) of its name. So:
//!
//! * the same seed and name always give the same sequence, on every machine
//!   and with every version of `rand` (ChaCha12 and `seed_from_u64` are
//!   documented as portable; the derived helpers below use only `next_u64`);
//! * adding a component (a new name) never changes another component's stream.
//!
//! Probabilities are integers ([`Probability`], parts of 2^32), never floats.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::time::SimDuration;

/// The run's root seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RootSeed(pub u64);

impl RootSeed {
    /// The named sub-stream of this seed.
    pub fn stream(self, name: &str) -> SimRng {
        let mut inner = ChaCha12Rng::seed_from_u64(self.0);
        inner.set_stream(stable_hash(name.as_bytes()));
        SimRng { inner }
    }
}

/// FNV-1a, 64 bit: a fixed, documented hash (never `std`'s randomly keyed one).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A deterministic random stream.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha12Rng,
}

impl SimRng {
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.inner.next_u64() >> 32) as u32
    }
    /// Uniform in `0..n` (`n > 0`), without modulo bias (rejection sampling).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        if lo == 0 && hi == u64::MAX {
            return self.next_u64();
        }
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: Probability) -> bool {
        if p.0 == 0 {
            return false;
        }
        if p.0 >= Probability::ONE.0 {
            return true;
        }
        (self.next_u64() >> 32) < p.0
    }
    /// Uniform duration in `0..=max`.
    pub fn duration_up_to(&mut self, max: SimDuration) -> SimDuration {
        SimDuration::from_nanos(self.between(0, max.as_nanos()))
    }
}

/// A probability as parts of 2^32 (`Probability::ONE` is certainty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Probability(pub u64);

impl Probability {
    pub const ZERO: Probability = Probability(0);
    pub const ONE: Probability = Probability(1 << 32);

    /// From a decimal string such as "0.01", "1", "0.333", exactly rounded
    /// down to parts of 2^32. Used where input has a float-looking literal.
    pub fn parse_decimal(s: &str) -> Option<Probability> {
        let s = s.trim();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 18
        {
            return None;
        }
        let i: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let f: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let denom = 10u128.pow(frac.len() as u32);
        let num = i * denom + f; // value = num / denom
        if num > denom {
            return None;
        }
        Some(Probability(((num << 32) / denom) as u64))
    }
    /// From parts per million.
    pub const fn from_ppm(ppm: u64) -> Probability {
        Probability((ppm << 32) / 1_000_000)
    }
    /// The value printed with up to 8 decimals, for messages.
    pub fn to_decimal_string(self) -> String {
        let scaled = ((self.0 as u128) * 100_000_000 + (1 << 31)) >> 32;
        let int = scaled / 100_000_000;
        let mut frac = format!("{:08}", scaled % 100_000_000);
        while frac.ends_with('0') {
            frac.pop();
        }
        if frac.is_empty() {
            format!("{int}")
        } else {
            format!("{int}.{frac}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_name_same_stream() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = RootSeed(7).stream("x");
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = RootSeed(7).stream("x");
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn names_and_seeds_give_different_streams() {
        let x = RootSeed(7).stream("x").next_u64();
        let y = RootSeed(7).stream("y").next_u64();
        let x8 = RootSeed(8).stream("x").next_u64();
        assert_ne!(x, y);
        assert_ne!(x, x8);
    }

    #[test]
    fn stream_values_are_pinned() {
        // Pinned so that a dependency upgrade that changed the stream would fail here:
        // recorded once from this implementation; any change is a breaking change of
        // every scenario's output for a given seed.
        let mut r = RootSeed(1).stream("pinned");
        let got = [r.next_u64(), r.next_u64()];
        assert_eq!(
            got, PINNED,
            "ChaCha12 stream changed: scenario outputs would change"
        );
    }
    const PINNED: [u64; 2] = [13365632494514641012, 8116202920086945495];

    #[test]
    fn fnv_reference_values() {
        // Reference values of 64-bit FNV-1a from the FNV specification's test suite.
        assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = RootSeed(3).stream("u");
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn probability_parsing() {
        assert_eq!(Probability::parse_decimal("1"), Some(Probability::ONE));
        assert_eq!(Probability::parse_decimal("0"), Some(Probability::ZERO));
        assert_eq!(
            Probability::parse_decimal("0.5"),
            Some(Probability(1 << 31))
        );
        assert_eq!(Probability::parse_decimal("1.5"), None);
        assert_eq!(Probability::parse_decimal("-0.1"), None);
        assert_eq!(
            Probability::parse_decimal("0.01")
                .unwrap()
                .to_decimal_string(),
            "0.01"
        );
        let mut r = RootSeed(5).stream("p");
        let p = Probability::parse_decimal("0.25").unwrap();
        let hits = (0..40_000).filter(|_| r.chance(p)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
    }
}
