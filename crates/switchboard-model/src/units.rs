//! Configuration value types shared by adapters: durations (`"5s"`), byte
//! sizes (`"1MiB"`) and secrets that never print.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `"250ms"`, `"5s"`, `"2m"`, `"1h"` (or a bare integer
/// of seconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"1h"`, `"1d"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (e.g. \"500ms\", \"5s\", \"2m\")"))?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            other => return Err(format!("unknown duration unit `{other}` (ms, s, m, h, d)")),
        };
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(format!("duration `{s}` out of range"));
        }
        Ok(HumanDuration(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(HumanDuration(Duration::from_secs(n))),
            Raw::Str(s) => HumanDuration::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A byte size written as `"1MiB"`, `"64KiB"`, `"512B"`, `"2GB"` (or a bare
/// integer of bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"512"`, `"512B"`, `"64KiB"`, `"1MiB"`, `"1GiB"`, `"1kB"`, `"1MB"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size (e.g. \"64KiB\", \"1MiB\")"))?;
        let mul: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "kB" | "KB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` (B, KiB, MiB, GiB, kB, MB, GB)"
                ));
            }
        };
        n.checked_mul(mul)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{s}` out of range"))
    }

    /// As `usize` (saturating).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Str(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// The default `max_payload` of every adapter: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: ByteSize = ByteSize(1 << 20);

/// A password or token: `Debug` and `Display` print `***`; compare with
/// [`Secret::ct_eq`] (constant time in the length of the input).
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `other` without an early exit on the first difference.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        let a = self.0.as_bytes();
        let mut diff = (a.len() ^ other.len()) as u64;
        for (i, b) in other.iter().enumerate() {
            let x = a.get(i % a.len().max(1)).copied().unwrap_or(0);
            diff |= u64::from(x ^ b);
        }
        diff == 0 && !a.is_empty() || (a.is_empty() && other.is_empty())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            HumanDuration::parse("5s").unwrap().0,
            Duration::from_secs(5)
        );
        assert_eq!(
            HumanDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            HumanDuration::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert!(HumanDuration::parse("5 parsecs").is_err());
        assert!(HumanDuration::parse("x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, 1 << 20);
        assert_eq!(ByteSize::parse("64KiB").unwrap().0, 65536);
        assert_eq!(ByteSize::parse("10").unwrap().0, 10);
        assert!(ByteSize::parse("1TiB").is_err());
        assert!(ByteSize::parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn secrets() {
        let s = Secret::new("pw");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(s.ct_eq(b"pw"));
        assert!(!s.ct_eq(b"px"));
        assert!(!s.ct_eq(b"pw2"));
        assert!(!s.ct_eq(b""));
        assert!(Secret::new("").ct_eq(b""));
    }
}

/// One problem found while validating an adapter's configuration, beyond what
/// deserialization catches (a bad URL, a pattern that does not parse, two
/// options that exclude each other).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key path inside the adapter's table, e.g. `url` or `user[0].read[1]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigIssue {
    /// A new issue.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            key: key.into(),
            message: message.into(),
        }
    }
}
