//! CPU sets in the kernel's list format (`0-3,7`), parsed and printed like `k8s.io/utils/cpuset`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::spew::{GoField, GoValue};

/// Most CPUs one set may hold. The kubelet has no limit; without one a hostile `0-999999999`
/// would make us allocate gigabytes, so we reject such sets instead.
pub const MAX_CPUS: usize = 1 << 16;

/// A set of CPU ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(BTreeSet<i64>);

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set from ids.
    pub fn from_ids(ids: impl IntoIterator<Item = i64>) -> Self {
        CpuSet(ids.into_iter().collect())
    }

    /// Parses the list format with `cpuset.Parse` semantics: `""` is empty, elements are
    /// `N` or `A-B` (A <= B) separated by commas, numbers as `strconv.Atoi` reads them. The error
    /// text matches Go's (`strconv.Atoi: parsing "1.3": invalid syntax`).
    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::parse_go(s).map_err(|message| crate::Error::CpuSet {
            what: format!("cpuset {s:?}"),
            value: s.to_owned(),
            message,
        })
    }

    /// [`CpuSet::parse`] with Go's bare error text, for callers that word the error themselves.
    pub(crate) fn parse_go(s: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        if s.is_empty() {
            return Ok(CpuSet(set));
        }
        for r in s.split(',') {
            match r.split_once('-') {
                None => {
                    set.insert(atoi(r)?);
                }
                Some((a, b)) => {
                    let start = atoi(a)?;
                    let end = atoi(b)?;
                    if start > end {
                        return Err(format!("invalid range {r:?} ({start} > {end})"));
                    }
                    let span = end.abs_diff(start);
                    let too_many = usize::try_from(span).map_or(true, |span| {
                        span >= MAX_CPUS || set.len() + span >= MAX_CPUS
                    });
                    if too_many {
                        return Err(format!("range {r:?} has more than {MAX_CPUS} CPUs"));
                    }
                    set.extend(start..=end);
                }
            }
            if set.len() > MAX_CPUS {
                return Err(format!("more than {MAX_CPUS} CPUs"));
            }
        }
        Ok(CpuSet(set))
    }

    /// The ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().copied()
    }

    /// Number of CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The Go value (`cpuset.CPUSet{elems map[int]struct{}}`) the kubelet hashes.
    pub fn go_value(&self) -> GoValue {
        GoValue::Struct(vec![GoField::new(
            "elems",
            "map[int]struct {}",
            GoValue::int_set(&self.0),
        )])
    }
}

/// `strconv.Atoi` with Go's error wording.
fn atoi(s: &str) -> Result<i64, String> {
    crate::gojson::parse_go_int(s).ok_or_else(|| {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        let reason = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("strconv.Atoi: parsing {s:?}: {reason}")
    })
}

impl fmt::Display for CpuSet {
    /// Canonical list format: ascending, consecutive ids collapsed into ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while end
                .checked_add(1)
                .is_some_and(|next| iter.peek() == Some(&next))
            {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for CpuSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let s = CpuSet::parse("0,2-4,7,5").unwrap();
        assert_eq!(s.to_string(), "0,2-5,7");
        assert_eq!(CpuSet::parse("").unwrap().to_string(), "");
        assert_eq!(CpuSet::parse("1-1").unwrap().to_string(), "1");
    }

    #[test]
    fn go_error_wording() {
        assert_eq!(
            CpuSet::parse_go("1.3").unwrap_err(),
            "strconv.Atoi: parsing \"1.3\": invalid syntax"
        );
        assert_eq!(
            CpuSet::parse_go("asd").unwrap_err(),
            "strconv.Atoi: parsing \"asd\": invalid syntax"
        );
        assert_eq!(
            CpuSet::parse_go("5-3").unwrap_err(),
            "invalid range \"5-3\" (5 > 3)"
        );
        assert_eq!(
            CpuSet::parse_go("-1").unwrap_err(),
            "strconv.Atoi: parsing \"\": invalid syntax"
        );
        assert!(CpuSet::parse("0-99999999999").is_err());
        // The largest Go int is a valid CPU id; printing it must not overflow.
        let max = CpuSet::parse("9223372036854775806-9223372036854775807").unwrap();
        assert_eq!(max.to_string(), "9223372036854775806-9223372036854775807");
    }
}
