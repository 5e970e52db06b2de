//! Simulated time in integer nanoseconds.
//!
//! No floats and no wall clock: `SimTime` is an instant since the start of the
//! run, `SimDuration` a span. Both parse and print in a human form
//! ("50us", "1.5ms", "2s", "0ns"): printing picks the largest unit that
//! represents the value exactly, so `parse(print(x)) == x` always holds.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

/// A span of simulated time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(u64);

/// An instant of simulated time: nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

const UNITS: [(&str, u64); 7] = [
    ("h", 3_600_000_000_000),
    ("min", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * 1_000_000_000)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn checked_add(self, other: SimDuration) -> Option<SimDuration> {
        self.0.checked_add(other.0).map(SimDuration)
    }
    pub fn saturating_mul(self, n: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(n))
    }
    /// Time to serialize `bytes` at `bits_per_sec`, rounded up to a whole
    /// nanosecond (integer arithmetic only). A rate of 0 means "infinite".
    pub fn serialization(bytes: u64, bits_per_sec: u64) -> SimDuration {
        if bits_per_sec == 0 {
            return SimDuration::ZERO;
        }
        let num = (bytes as u128) * 8 * 1_000_000_000;
        let d = num.div_ceil(bits_per_sec as u128);
        SimDuration(d.min(u64::MAX as u128) as u64)
    }
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The span since the start of the run.
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }
    pub fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        self.0.checked_add(d.0).map(SimTime)
    }
    pub fn saturating_add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.checked_add(d.0).expect("simulated time overflow"))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}
impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, other: SimTime) -> SimDuration {
        SimDuration(self.0.checked_sub(other.0).expect("negative time span"))
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.checked_add(d.0).expect("duration overflow"))
    }
}
impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

/// Why a time string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeParseError {
    #[error("empty time: expected a number and a unit such as \"50us\", \"1.5ms\" or \"2s\"")]
    Empty,
    #[error("\"{0}\" has no unit: expected one of ns, us, ms, s, min, h (e.g. \"{0}ms\")")]
    NoUnit(String),
    #[error("unknown time unit \"{0}\": expected one of ns, us, ms, s, min, h")]
    BadUnit(String),
    #[error("bad number \"{0}\": expected digits with at most one decimal point")]
    BadNumber(String),
    #[error("\"{0}\" is not a whole number of nanoseconds")]
    Fractional(String),
    #[error("\"{0}\" is too large (the limit is about 584 years)")]
    Overflow(String),
}

fn parse_nanos(s: &str) -> Result<u64, TimeParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(TimeParseError::Empty);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(TimeParseError::BadNumber(s.to_string()));
    }
    if unit.is_empty() {
        return Err(TimeParseError::NoUnit(s.to_string()));
    }
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, k)| *k)
        .ok_or_else(|| TimeParseError::BadUnit(unit.to_string()))?;
    let num: String = num.chars().filter(|c| *c != '_').collect();
    let mut parts = num.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(TimeParseError::BadNumber(s.to_string()));
    }
    let overflow = || TimeParseError::Overflow(s.to_string());
    let int_v: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| overflow())?
    };
    let mut total = int_v.checked_mul(scale as u128).ok_or_else(overflow)?;
    if !frac.is_empty() {
        // frac digits / 10^len * scale must be an integer number of ns.
        if frac.len() > 30 {
            return Err(TimeParseError::BadNumber(s.to_string()));
        }
        let f: u128 = frac
            .parse()
            .map_err(|_| TimeParseError::BadNumber(s.to_string()))?;
        let denom = 10u128.pow(frac.len() as u32);
        let scaled = f * scale as u128;
        if !scaled.is_multiple_of(denom) {
            return Err(TimeParseError::Fractional(s.to_string()));
        }
        total = total.checked_add(scaled / denom).ok_or_else(overflow)?;
    }
    u64::try_from(total).map_err(|_| overflow())
}

fn fmt_nanos(ns: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if ns == 0 {
        return f.write_str("0s");
    }
    // The largest unit in which the value is at least 1, with the exact
    // remainder as decimals (trailing zeros trimmed): "95.756859ms".
    for (unit, scale, digits) in [
        ("s", 1_000_000_000u64, 9),
        ("ms", 1_000_000, 6),
        ("us", 1_000, 3),
    ] {
        if ns >= scale {
            let (whole, rem) = (ns / scale, ns % scale);
            if rem == 0 {
                return write!(f, "{whole}{unit}");
            }
            let mut frac = format!("{rem:0digits$}");
            while frac.ends_with('0') {
                frac.pop();
            }
            return write!(f, "{whole}.{frac}{unit}");
        }
    }
    write!(f, "{ns}ns")
}

impl FromStr for SimDuration {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_nanos(s).map(SimDuration)
    }
}
impl FromStr for SimTime {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_nanos(s).map(SimTime)
    }
}
impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_nanos(self.0, f)
    }
}
impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_nanos(self.0, f)
    }
}

impl SimTime {
    /// Fixed-width seconds with nanosecond precision, as in trace lines:
    /// `12.000345678`.
    pub fn fixed(self) -> FixedTime {
        FixedTime(self.0)
    }
}

/// Display adapter: seconds.nanoseconds, always 9 decimals.
pub struct FixedTime(u64);
impl fmt::Display for FixedTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_human_forms() {
        assert_eq!("50us".parse::<SimDuration>().unwrap().as_nanos(), 50_000);
        assert_eq!(
            "1.5ms".parse::<SimDuration>().unwrap().as_nanos(),
            1_500_000
        );
        assert_eq!(
            "2s".parse::<SimDuration>().unwrap().as_nanos(),
            2_000_000_000
        );
        assert_eq!("0ns".parse::<SimDuration>().unwrap().as_nanos(), 0);
        assert_eq!(
            "1min".parse::<SimDuration>().unwrap().as_nanos(),
            60_000_000_000
        );
        assert_eq!(
            ".25s".parse::<SimDuration>().unwrap().as_nanos(),
            250_000_000
        );
        assert_eq!("10µs".parse::<SimDuration>().unwrap().as_nanos(), 10_000);
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!("".parse::<SimDuration>(), Err(TimeParseError::Empty));
        assert!(matches!(
            "5".parse::<SimDuration>(),
            Err(TimeParseError::NoUnit(_))
        ));
        assert!(matches!(
            "5 parsecs".parse::<SimDuration>(),
            Err(TimeParseError::BadUnit(_))
        ));
        assert!(matches!(
            "1.5ns".parse::<SimDuration>(),
            Err(TimeParseError::Fractional(_))
        ));
        assert!(matches!(
            "1.2.3s".parse::<SimDuration>(),
            Err(TimeParseError::BadNumber(_))
        ));
        assert!(matches!(
            "ms".parse::<SimDuration>(),
            Err(TimeParseError::BadNumber(_))
        ));
        assert!(matches!(
            "99999999999h".parse::<SimDuration>(),
            Err(TimeParseError::Overflow(_))
        ));
    }

    #[test]
    fn prints_exact_largest_unit() {
        assert_eq!(SimDuration::from_nanos(50_000).to_string(), "50us");
        assert_eq!(SimDuration::from_nanos(1_500_000).to_string(), "1.5ms");
        assert_eq!(SimDuration::from_secs(2).to_string(), "2s");
        assert_eq!(SimDuration::from_nanos(1_234_567).to_string(), "1.234567ms");
        assert_eq!(
            SimDuration::from_nanos(95_756_859).to_string(),
            "95.756859ms"
        );
        assert_eq!(
            SimDuration::from_nanos(1_000_000_001).to_string(),
            "1.000000001s"
        );
        assert_eq!(SimDuration::ZERO.to_string(), "0s");
        assert_eq!(
            SimTime::from_nanos(12_000_345_678).fixed().to_string(),
            "12.000345678"
        );
    }

    #[test]
    fn serialization_delay_is_exact_and_rounds_up() {
        // A 1538-byte wire frame at 1 Gbit/s takes 12.304 us.
        assert_eq!(
            SimDuration::serialization(1538, 1_000_000_000).as_nanos(),
            12_304
        );
        assert_eq!(SimDuration::serialization(1, 3).as_nanos(), 2_666_666_667);
        assert_eq!(SimDuration::serialization(1000, 0), SimDuration::ZERO);
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(ns in any::<u64>()) {
            let d = SimDuration::from_nanos(ns);
            prop_assert_eq!(d.to_string().parse::<SimDuration>().unwrap(), d);
            let t = SimTime::from_nanos(ns);
            prop_assert_eq!(t.to_string().parse::<SimTime>().unwrap(), t);
        }
    }
}
