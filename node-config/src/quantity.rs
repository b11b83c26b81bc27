//! Kubernetes resource quantities (`100Mi`, `1.5`, `500m`, `1e3`, `2Gi`).
//!
//! The kubelet's config stores most quantities as strings (`systemReserved`, `evictionHard`),
//! and a few as `resource.Quantity` (`reservedMemory[].limits`, logging buffer sizes). This type
//! validates the syntax, keeps the text the user wrote (so a config round-trips unchanged) and
//! gives the numeric value for validation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed resource quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    text: String,
    value: f64,
}

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {reason}")]
pub struct ParseQuantityError {
    input: String,
    reason: &'static str,
}

const NOT_FINITE: &str = "not a finite number";
const OUT_OF_RANGE: &str =
    "out of range: the magnitude must not exceed 9223372036854775807 (int64)";

impl ParseQuantityError {
    /// Whether the text is well formed but its value is not a finite number or exceeds
    /// [`Quantity::MAX_ABS_VALUE`] (`1e38`, `16Ei`, `1e400`), as opposed to malformed text.
    pub fn is_out_of_range(&self) -> bool {
        self.reason == NOT_FINITE || self.reason == OUT_OF_RANGE
    }
}

impl Quantity {
    /// The largest magnitude a quantity may have, in base units: `i64::MAX` (the kubelet keeps
    /// amounts as int64), as the nearest `f64` (2^63).
    pub const MAX_ABS_VALUE: f64 = i64::MAX as f64;

    /// Parses `<sign><digits>[.<digits>]<suffix>` where the suffix is a binary SI suffix
    /// (`Ki`..`Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or a
    /// decimal exponent (`e3`, `E-2`). A value that is not finite (`1e400`) or whose magnitude
    /// exceeds [`Quantity::MAX_ABS_VALUE`] (`1e38`, `16Ei`) is an error.
    pub fn parse(input: &str) -> Result<Self, ParseQuantityError> {
        let err = |reason| ParseQuantityError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty quantity"));
        }
        let (sign, body) = match s.as_bytes()[0] {
            b'-' => (-1.0, &s[1..]),
            b'+' => (1.0, &s[1..]),
            _ => (1.0, s),
        };
        let num_len = body
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (number, suffix) = body.split_at(num_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(err("expected a number such as 100, 1.5 or 0.5"));
        }
        let base: f64 = number
            .parse()
            .map_err(|_| err("expected a number such as 100, 1.5 or 0.5"))?;
        let multiplier = match suffix {
            "" => 1.0,
            "Ki" => 1024f64,
            "Mi" => 1024f64.powi(2),
            "Gi" => 1024f64.powi(3),
            "Ti" => 1024f64.powi(4),
            "Pi" => 1024f64.powi(5),
            "Ei" => 1024f64.powi(6),
            "n" => 1e-9,
            "u" => 1e-6,
            "m" => 1e-3,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "P" => 1e15,
            "E" => 1e18,
            other => {
                let exp = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))
                    .ok_or_else(|| err("unknown suffix (expected Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent)"))?;
                let exp: i32 = exp.parse().map_err(|_| err("invalid exponent"))?;
                10f64.powi(exp)
            }
        };
        let value = sign * base * multiplier;
        // Every consumer turns the value into an int64 amount (Go's `Quantity.Value()`), and
        // arithmetic on it (reservations summed, CPU cores times 1000) must not overflow. A
        // value beyond int64, or one that is not a number at all (`1e400` is infinite, `0e400`
        // is NaN), is refused here instead of wrapping or saturating later.
        if !value.is_finite() {
            return Err(err(NOT_FINITE));
        }
        if value.abs() > Self::MAX_ABS_VALUE {
            return Err(err(OUT_OF_RANGE));
        }
        Ok(Self {
            text: s.to_owned(),
            value,
        })
    }

    /// The numeric value (bytes for memory, cores for CPU).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.value == 0.0
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self {
            text: "0".to_owned(),
            value: 0.0,
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Quantity {
    type Err = ParseQuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource quantity such as \"100Mi\", \"500m\" or 2")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                // Large and tiny floats keep their exponent (`1e38`, as the user likely wrote
                // it) instead of 39 digits, so an error shows a recognisable value.
                let text = if v != 0.0 && !(1e-4..1e16).contains(&v.abs()) {
                    format!("{v:e}")
                } else {
                    v.to_string()
                };
                Quantity::parse(&text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(
            Quantity::parse("100Mi").unwrap().value(),
            100.0 * 1024.0 * 1024.0
        );
        assert_eq!(Quantity::parse("1Gi").unwrap().value(), 1024f64.powi(3));
        assert_eq!(Quantity::parse("500m").unwrap().value(), 0.5);
        assert_eq!(Quantity::parse("2").unwrap().value(), 2.0);
        assert_eq!(Quantity::parse("1.5k").unwrap().value(), 1500.0);
        assert_eq!(Quantity::parse("1e3").unwrap().value(), 1000.0);
        assert_eq!(Quantity::parse("-1").unwrap().value(), -1.0);
        assert_eq!(Quantity::parse("150G").unwrap().to_string(), "150G");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "Mi", "1MB", "1..2", "abc", "1e", "10%"] {
            let e = Quantity::parse(bad).unwrap_err();
            assert!(!e.is_out_of_range(), "{bad:?}");
        }
    }

    /// Regression (fuzzing audit): `1e38` as reserved memory parsed to a value that overflowed
    /// i128 once two reservations were summed; infinite and NaN values got through as well.
    #[test]
    fn out_of_range_and_non_finite_values_are_errors() {
        for (bad, reason) in [
            ("1e38", "out of range"),
            ("-1e38", "out of range"),
            ("9300000000000000000000m", "out of range"),
            ("16Ei", "out of range"),
            ("1e400", "not a finite number"),
            ("0e400", "not a finite number"),
            ("99999999999999999999999999999999E", "out of range"),
        ] {
            let e = Quantity::parse(bad).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("invalid quantity {bad:?}: ")),
                "{text}"
            );
            assert!(text.contains(reason), "{bad}: {text}");
            assert!(e.is_out_of_range(), "{bad}");
        }
        // The int64 extremes and ordinary large values still parse.
        assert_eq!(
            Quantity::parse("7Ei").unwrap().value(),
            7.0 * 1024f64.powi(6)
        );
        assert_eq!(
            Quantity::parse("9223372036854775807").unwrap().value(),
            Quantity::MAX_ABS_VALUE
        );
        assert_eq!(Quantity::parse("1e-400").unwrap().value(), 0.0);
        // A YAML/JSON float keeps its exponent in the error.
        let e = serde_json::from_str::<Quantity>("1e38")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid quantity \"1e38\": out of range"),
            "{e}"
        );
        assert_eq!(
            serde_json::from_str::<Quantity>("2.5").unwrap().as_str(),
            "2.5"
        );
        assert_eq!(
            serde_json::from_str::<Quantity>("1e-5").unwrap().as_str(),
            "1e-5"
        );
    }
}
