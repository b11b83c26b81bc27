//! Go `time.Duration` as used by `metav1.Duration`: parsed from strings like `1m30s` and written
//! back the way Go's `Duration.String()` writes them (`1m30s`, `5m0s`, `100ms`, `0s`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MIN: i64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MIN;

/// A signed duration with nanosecond precision, serialized as a Go duration string.
///
/// The zero value means "unset" for the kubelet's defaulting, exactly as in Go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i64,
}

/// Why a Go duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    /// The zero duration (`0s`).
    pub const ZERO: Duration = Duration { nanos: 0 };

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Self {
            nanos: secs.saturating_mul(NANOS_PER_SEC),
        }
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Self {
            nanos: millis.saturating_mul(NANOS_PER_MILLI),
        }
    }

    /// A duration of whole minutes.
    pub const fn from_mins(mins: i64) -> Self {
        Self {
            nanos: mins.saturating_mul(NANOS_PER_MIN),
        }
    }

    /// A duration of whole hours.
    pub const fn from_hours(hours: i64) -> Self {
        Self {
            nanos: hours.saturating_mul(NANOS_PER_HOUR),
        }
    }

    /// The length in nanoseconds (may be negative).
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Whether this is the zero duration, which the kubelet treats as unset.
    pub const fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Converts to a `std::time::Duration`; negative durations become zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.nanos).unwrap_or(0))
    }

    /// Parses a Go duration string: an optional sign, then one or more decimal numbers each with
    /// a unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), e.g. `1h2m0.5s`; `0` alone is allowed.
    pub fn parse(input: &str) -> Result<Self, ParseDurationError> {
        let err = |reason| ParseDurationError {
            input: input.to_owned(),
            reason,
        };
        let mut s = input;
        let mut negative = false;
        if let Some(rest) = s.strip_prefix('-') {
            negative = true;
            s = rest;
        } else if let Some(rest) = s.strip_prefix('+') {
            s = rest;
        }
        if s == "0" {
            return Ok(Self::ZERO);
        }
        if s.is_empty() {
            return Err(err(
                "expected a number followed by a unit such as 10s or 1m30s",
            ));
        }
        // Accumulate in i128 so overflow is detected rather than wrapped.
        let mut total: i128 = 0;
        while !s.is_empty() {
            let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let (int_part, rest) = s.split_at(int_len);
            s = rest;
            let mut frac_part = "";
            if let Some(rest) = s.strip_prefix('.') {
                let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &rest[..frac_len];
                s = &rest[frac_len..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err("expected a number"));
            }
            let unit_len = s
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map_or(s.len(), |(i, _)| i);
            let (unit, rest) = s.split_at(unit_len);
            s = rest;
            let scale: i64 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => NANOS_PER_MICRO,
                "ms" => NANOS_PER_MILLI,
                "s" => NANOS_PER_SEC,
                "m" => NANOS_PER_MIN,
                "h" => NANOS_PER_HOUR,
                "" => return Err(err("missing unit (one of ns, us, ms, s, m, h)")),
                _ => return Err(err("unknown unit (expected one of ns, us, ms, s, m, h)")),
            };
            // Nothing above 2^63 nanoseconds can be a valid duration, whatever the unit, so a
            // larger whole part is refused before it is scaled: every product and sum below
            // then stays far inside i128 (a whole part of 26 digits in hours used to overflow
            // i128 once its fraction was added).
            let limit = i128::from(i64::MAX) + 1;
            let whole: i128 = if int_part.is_empty() {
                0
            } else {
                int_part
                    .parse::<i128>()
                    .ok()
                    .filter(|w| *w <= limit)
                    .ok_or_else(|| err("duration out of range"))?
            };
            let mut value = whole
                .checked_mul(i128::from(scale))
                .ok_or_else(|| err("duration out of range"))?;
            // Fractions are truncated to whole nanoseconds, as Go does.
            let mut frac_scale = i128::from(scale);
            for digit in frac_part.bytes().take(30) {
                frac_scale /= 10;
                value = value
                    .checked_add(i128::from(digit - b'0') * frac_scale)
                    .ok_or_else(|| err("duration out of range"))?;
            }
            total = total
                .checked_add(value)
                .ok_or_else(|| err("duration out of range"))?;
            if total > limit {
                return Err(err("duration out of range"));
            }
        }
        let signed = if negative { -total } else { total };
        let nanos = i64::try_from(signed).map_err(|_| err("duration out of range"))?;
        Ok(Self { nanos })
    }
}

impl fmt::Display for Duration {
    /// Formats like Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.nanos < 0;
        let u = self.nanos.unsigned_abs();
        let sign = if negative { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < NANOS_PER_SEC as u64 {
            // Sub-second values use the largest unit that keeps a leading non-zero digit.
            let (unit_nanos, unit) = if u < NANOS_PER_MICRO as u64 {
                (1, "ns")
            } else if u < NANOS_PER_MILLI as u64 {
                (NANOS_PER_MICRO as u64, "µs")
            } else {
                (NANOS_PER_MILLI as u64, "ms")
            };
            return write!(f, "{sign}{}{unit}", frac_string(u, unit_nanos));
        }
        let hours = u / NANOS_PER_HOUR as u64;
        let rem = u % NANOS_PER_HOUR as u64;
        let mins = rem / NANOS_PER_MIN as u64;
        let secs_nanos = rem % NANOS_PER_MIN as u64;
        let secs = frac_string(secs_nanos, NANOS_PER_SEC as u64);
        if hours > 0 {
            write!(f, "{sign}{hours}h{mins}m{secs}s")
        } else if mins > 0 {
            write!(f, "{sign}{mins}m{secs}s")
        } else {
            write!(f, "{sign}{secs}s")
        }
    }
}

/// `value / unit` as a decimal with trailing zeros (and a bare point) removed.
fn frac_string(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl std::str::FromStr for Duration {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor {
            allow_integer: false,
        })
    }
}

/// Accepts a duration string; with `allow_integer`, also a bare integer of nanoseconds (the
/// form `logging.flushFrequency` accepts).
struct DurationVisitor {
    allow_integer: bool,
}

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allow_integer {
            f.write_str("a duration string such as \"5s\" or an integer number of nanoseconds")
        } else {
            f.write_str("a duration string such as \"10s\" or \"1m30s\"")
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
        Duration::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
        if self.allow_integer {
            Ok(Duration::from_nanos(v))
        } else {
            Err(E::invalid_type(serde::de::Unexpected::Signed(v), &self))
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
        if self.allow_integer {
            i64::try_from(v)
                .map(Duration::from_nanos)
                .map_err(|_| E::custom("duration out of range"))
        } else {
            Err(E::invalid_type(serde::de::Unexpected::Unsigned(v), &self))
        }
    }
}

/// A duration given either as a Go duration string or as integer nanoseconds
/// (component-base's `TimeOrMetaDuration`); always written as a string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TimeOrMetaDuration(pub Duration);

impl Serialize for TimeOrMetaDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TimeOrMetaDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor {
                allow_integer: true,
            })
            .map(TimeOrMetaDuration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("10s", 10 * NANOS_PER_SEC),
            ("1m30s", 90 * NANOS_PER_SEC),
            ("1.5h", 90 * NANOS_PER_MIN),
            ("100ms", 100 * NANOS_PER_MILLI),
            ("2h45m", 165 * NANOS_PER_MIN),
            ("-1.5s", -1500 * NANOS_PER_MILLI),
            ("1µs", 1000),
            ("1us", 1000),
            ("300ns", 300),
            (".5s", 500 * NANOS_PER_MILLI),
        ];
        for (input, nanos) in cases {
            assert_eq!(Duration::parse(input).unwrap().as_nanos(), nanos, "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "s",
            "10",
            "1x",
            "1m30",
            "--1s",
            "1.s.",
            "9999999999999h",
            "abc",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    /// Regression (fuzzing audit): a whole part just below i128::MAX / 1h plus a fraction
    /// overflowed the i128 accumulator (a panic in debug builds, a wrap in release).
    #[test]
    fn huge_whole_part_with_fraction_is_out_of_range() {
        for input in [
            "47261439850130342147690917.9h",
            "170141183460469231731687303715884105727ns",
            "170141183460469231731687303715884105727.9ns",
            "9223372036854775809ns",
            "-9223372036854775809ns",
        ] {
            let e = Duration::parse(input).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid duration {input:?}: duration out of range")
            );
        }
        // The extremes themselves still parse.
        assert_eq!(
            Duration::parse("-9223372036854775808ns")
                .unwrap()
                .as_nanos(),
            i64::MIN
        );
        assert_eq!(
            Duration::parse("9223372036854775807ns").unwrap().as_nanos(),
            i64::MAX
        );
        assert_eq!(
            Duration::parse("2562047h47m16.854775807s")
                .unwrap()
                .as_nanos(),
            i64::MAX
        );
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (5 * NANOS_PER_MIN, "5m0s"),
            (90 * NANOS_PER_SEC, "1m30s"),
            (2 * NANOS_PER_HOUR, "2h0m0s"),
            (100 * NANOS_PER_MILLI, "100ms"),
            (1500 * NANOS_PER_MILLI, "1.5s"),
            (1_000, "1µs"),
            (1, "1ns"),
            (-30 * NANOS_PER_SEC, "-30s"),
            (4 * NANOS_PER_HOUR, "4h0m0s"),
            (1_100_000, "1.1ms"),
        ];
        for (nanos, text) in cases {
            assert_eq!(Duration::from_nanos(nanos).to_string(), text);
            assert_eq!(
                Duration::parse(text).unwrap().as_nanos(),
                nanos,
                "round trip {text}"
            );
        }
    }

    #[test]
    fn time_or_meta_duration_accepts_integers() {
        let d: TimeOrMetaDuration = serde_json::from_str("5000000000").unwrap();
        assert_eq!(d.0, Duration::from_secs(5));
        let d: TimeOrMetaDuration = serde_json::from_str("\"5s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"5s\"");
        assert!(serde_json::from_str::<Duration>("5").is_err());
    }
}
