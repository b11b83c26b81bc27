//! Go `time.Time` as it appears in JSON: RFC 3339 with an offset, written with
//! `RFC3339Nano` (trailing zeros of the fraction trimmed) or, for `metav1.Time`, whole seconds
//! in UTC.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// Unix seconds of Go's zero time, `0001-01-01T00:00:00Z`.
const ZERO_UNIX: i64 = -62_135_596_800;

/// An instant with the UTC offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoTime {
    unix_secs: i64,
    nanos: u32,
    offset_secs: i32,
}

impl Default for GoTime {
    /// Go's zero time.
    fn default() -> Self {
        GoTime::ZERO
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the algorithm gives a day in 1..=31 and a month in 1..=12 for every z"
)]
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s[..n]
            .iter()
            .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')),
    )
}

impl GoTime {
    /// Go's zero time.
    pub const ZERO: GoTime = GoTime {
        unix_secs: ZERO_UNIX,
        nanos: 0,
        offset_secs: 0,
    };

    /// An instant in UTC.
    pub fn from_unix(unix_secs: i64, nanos: u32) -> Self {
        GoTime {
            unix_secs,
            nanos: nanos.min(999_999_999),
            offset_secs: 0,
        }
    }

    /// The current time in UTC.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self::from_unix(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(_) => Self::from_unix(0, 0),
        }
    }

    /// True for Go's zero time.
    pub fn is_zero(&self) -> bool {
        self.unix_secs == ZERO_UNIX && self.nanos == 0
    }

    /// Unix seconds, 0 for the zero time (the shutdown manager's `timestamp()`).
    pub fn timestamp(&self) -> i64 {
        if self.is_zero() { 0 } else { self.unix_secs }
    }

    /// Unix seconds.
    pub fn unix_secs(&self) -> i64 {
        self.unix_secs
    }

    /// Parses RFC 3339 (`2024-10-21T12:26:40Z`, `...40.5+02:00`) as Go's `time.RFC3339` layout does.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let year = i64::from(digits(b, 4)?);
        let month = digits(&b[5..], 2)?;
        let day = digits(&b[8..], 2)?;
        let hour = digits(&b[11..], 2)?;
        let min = digits(&b[14..], 2)?;
        let sec = digits(&b[17..], 2)?;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return None;
        }
        let mut rest = &b[19..];
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            nanos = digits(frac, n)? * 10u32.pow(9 - u32::try_from(n).ok()?);
            rest = &frac[n..];
        }
        let offset_secs = match rest {
            b"Z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = digits(&[*h1, *h2], 2)?;
                let m = digits(&[*m1, *m2], 2)?;
                if h > 23 || m > 59 {
                    return None;
                }
                let off = i32::try_from(h * 3600 + m * 60).ok()?;
                if *sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(min) * 60
            + i64::from(sec);
        Some(GoTime {
            unix_secs: local - i64::from(offset_secs),
            nanos,
            offset_secs,
        })
    }

    fn write_date_time(&self, out: &mut String, offset_secs: i32) {
        let local = self.unix_secs.saturating_add(i64::from(offset_secs));
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
    }

    fn write_zone(out: &mut String, offset_secs: i32) {
        if offset_secs == 0 {
            out.push('Z');
        } else {
            let sign = if offset_secs < 0 { '-' } else { '+' };
            let a = offset_secs.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
        }
    }

    /// Go's `time.RFC3339Nano` in the instant's own offset (what `time.Time` marshals to).
    pub fn to_rfc3339_nano(&self) -> String {
        let mut out = String::with_capacity(35);
        self.write_date_time(&mut out, self.offset_secs);
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        Self::write_zone(&mut out, self.offset_secs);
        out
    }

    /// `metav1.Time`'s form: whole seconds, UTC.
    pub fn to_rfc3339_utc_seconds(&self) -> String {
        let mut out = String::with_capacity(20);
        self.write_date_time(&mut out, 0);
        out.push('Z');
        out
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339_nano())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time() {
        let z = GoTime::parse_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert!(z.is_zero());
        assert_eq!(z.timestamp(), 0);
        assert_eq!(GoTime::ZERO.to_rfc3339_nano(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn round_trips_with_offsets_and_fractions() {
        for s in [
            "2024-10-21T12:26:40Z",
            "2023-02-28T23:59:59.5+02:00",
            "1999-12-31T00:00:00.000000001-07:30",
            "2024-02-29T01:02:03.12Z",
        ] {
            assert_eq!(GoTime::parse_rfc3339(s).unwrap().to_rfc3339_nano(), s);
        }
        let t = GoTime::parse_rfc3339("2024-10-21T14:26:40+02:00").unwrap();
        assert_eq!(t.unix_secs(), 1_729_513_600);
        assert_eq!(t.to_rfc3339_utc_seconds(), "2024-10-21T12:26:40Z");
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
        ] {
            assert!(GoTime::parse_rfc3339(s).is_none(), "{s}");
        }
    }
}
