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

impl Quantity {
    /// Parses `<sign><digits>[.<digits>]<suffix>` where the suffix is a binary SI suffix
    /// (`Ki`..`Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or a
    /// decimal exponent (`e3`, `E-2`).
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
        Ok(Self {
            text: s.to_owned(),
            value: sign * base * multiplier,
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
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
    }
}
