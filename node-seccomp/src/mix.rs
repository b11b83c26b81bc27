//! Syscall mixes: how often a workload makes each syscall, read from an `strace -c` summary
//! table or a JSON `{"name": count}` map, to weight the compiler's search tree
//! ([`crate::CompileOptions::with_weights`]) and to measure a filter under a real workload
//! ([`weighted_mean`]).
//!
//! Both formats are hostile input: at most [`MAX_MIX_BYTES`], every name must be a syscall of
//! the mix's architecture (an unknown name is an error naming it), counts are non-negative
//! integers whose sum fits in a `u64`, and nothing here panics.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::action::Action;
use crate::analysis::seccomp_data;
use crate::arch::Arch;
use crate::bpf::Program;
use crate::error::{Error, Result};
use crate::file;
use crate::interp::run;
use crate::syscalls;

/// The largest mix file or text read, in bytes (1 MiB; a full `strace -c` table is a few KiB).
pub const MAX_MIX_BYTES: usize = 1 << 20;

/// How often a workload makes each syscall, on one architecture (ABI).
///
/// ```
/// use node_seccomp::{Arch, SyscallMix};
///
/// let table = "\
/// % time     seconds  usecs/call     calls    errors syscall
/// ------ ----------- ----------- --------- --------- ----------------
///  60.00    0.000600           1       600           read
///  40.00    0.000400           1       400        12 openat
/// ------ ----------- ----------- --------- --------- ----------------
/// 100.00    0.001000           1      1000        12 total
/// ";
/// let mix = SyscallMix::parse(table, Arch::X86_64, "strace.txt")?;
/// assert_eq!(mix.count("read"), 600);
/// assert_eq!(mix.total(), 1000);
///
/// let same = SyscallMix::parse(r#"{"read": 600, "openat": 400}"#, Arch::X86_64, "mix.json")?;
/// assert_eq!(mix, same);
///
/// let err = SyscallMix::parse(r#"{"frobnicate": 1}"#, Arch::X86_64, "mix.json").unwrap_err();
/// assert!(err.to_string().contains("\"frobnicate\""));
/// # Ok::<(), node_seccomp::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallMix {
    arch: Arch,
    counts: BTreeMap<String, u64>,
    total: u64,
}

impl SyscallMix {
    /// A mix from `(name, count)` pairs (a name given twice adds up). Every name must be a
    /// syscall of `arch` and the counts must sum to more than zero without overflowing.
    pub fn from_counts<'a>(
        arch: Arch,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        origin: &str,
    ) -> Result<SyscallMix> {
        let mut map: BTreeMap<String, u64> = BTreeMap::new();
        let mut total: u64 = 0;
        for (name, count) in counts {
            if syscalls::resolve(arch, name).is_none() {
                return Err(mix_err(
                    origin,
                    format!("{name:?} is not a syscall on {arch}"),
                ));
            }
            total = total
                .checked_add(count)
                .ok_or_else(|| mix_err(origin, "the counts add up to more than 2^64".into()))?;
            let slot = map.entry(name.to_string()).or_insert(0);
            *slot = slot.saturating_add(count);
        }
        if total == 0 {
            return Err(mix_err(origin, "the mix counts no syscall".into()));
        }
        map.retain(|_, c| *c > 0);
        Ok(SyscallMix {
            arch,
            counts: map,
            total,
        })
    }

    /// Parses `text`: a JSON object when it starts with `{`, else an `strace -c` table.
    /// `origin` names the input in errors (a path or `<memory>`).
    pub fn parse(text: &str, arch: Arch, origin: &str) -> Result<SyscallMix> {
        if text.len() > MAX_MIX_BYTES {
            return Err(mix_err(
                origin,
                format!(
                    "{} bytes; at most {MAX_MIX_BYTES} bytes are read",
                    text.len()
                ),
            ));
        }
        if text.trim_start().starts_with('{') {
            let pairs = parse_json(text, origin)?;
            SyscallMix::from_counts(arch, pairs.iter().map(|(n, c)| (n.as_str(), *c)), origin)
        } else {
            let rows = parse_strace(text, origin)?;
            SyscallMix::from_counts(arch, rows.iter().map(|(n, c)| (n.as_str(), *c)), origin)
        }
    }

    /// Reads and parses a mix file (a regular file of at most [`MAX_MIX_BYTES`]; a FIFO does
    /// not block).
    pub fn from_file(path: &Path, arch: Arch) -> Result<SyscallMix> {
        let origin = path.display().to_string();
        let io_err = |source: std::io::Error| Error::MixFile {
            path: path.to_path_buf(),
            source,
        };
        let f = file::open(path, false).map_err(io_err)?;
        let meta = f.metadata().map_err(io_err)?;
        if !meta.file_type().is_file() {
            return Err(mix_err(
                &origin,
                format!(
                    "is {}; a mix must be a regular file",
                    file::kind(&meta.file_type())
                ),
            ));
        }
        let mut bytes = Vec::new();
        f.take(MAX_MIX_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() > MAX_MIX_BYTES {
            return Err(mix_err(
                &origin,
                format!("larger than {MAX_MIX_BYTES} bytes"),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            mix_err(
                &origin,
                format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        SyscallMix::parse(&text, arch, &origin)
    }

    /// The architecture whose syscall names (and numbers) the mix uses.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The count of every syscall the mix saw, by name.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// How many calls of `name` the mix saw (0 for names it did not see).
    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The count of each syscall number of [`arch`](Self::arch).
    pub fn by_number(&self) -> BTreeMap<u32, u64> {
        let mut out = BTreeMap::new();
        for (name, c) in &self.counts {
            if let Some(nr) = syscalls::resolve(self.arch, name) {
                *out.entry(nr).or_insert(0u64) += *c;
            }
        }
        out
    }

    /// The Shannon entropy of the mix in bits: a lower bound on the mean number of two-way
    /// comparisons any search over syscall numbers needs for this mix.
    pub fn entropy_bits(&self) -> f64 {
        let t = self.total as f64;
        self.counts
            .values()
            .map(|c| {
                let p = *c as f64 / t;
                -p * p.log2()
            })
            .sum()
    }
}

fn mix_err(origin: &str, message: String) -> Error {
    Error::Mix {
        origin: origin.to_string(),
        message,
    }
}

/// A JSON object of non-negative integer counts, in file order.
fn parse_json(text: &str, origin: &str) -> Result<Vec<(String, u64)>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|source| Error::Json {
        origin: origin.to_string(),
        source,
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(mix_err(
            origin,
            "expected a JSON object {\"syscall\": count, ...}".into(),
        ));
    };
    map.into_iter()
        .map(|(name, v)| match v.as_u64() {
            Some(c) => Ok((name, c)),
            None => Err(mix_err(
                origin,
                format!("{name:?}: expected a non-negative integer count, got {v}"),
            )),
        })
        .collect()
}

/// The rows of an `strace -c` summary (`% time seconds usecs/call calls errors syscall`,
/// dashed rules, a `total` row whose count must equal the sum of the rows). Lines before the
/// header (`strace: Process N attached`) are skipped. Only one personality: a table with a
/// `System call usage summary for ...` section is refused, since its names belong to another
/// ABI.
fn parse_strace(text: &str, origin: &str) -> Result<Vec<(String, u64)>> {
    let mut calls_col: Option<usize> = None;
    let mut rows: Vec<(String, u64)> = Vec::new();
    let mut total: Option<u64> = None;
    let at = |n: usize, message: String| mix_err(origin, format!("line {n}: {message}"));
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.starts_with("System call usage summary for") {
            return Err(at(
                n,
                format!(
                    "{t:?}: the table has a section for another personality (ABI); \
                     record one ABI per mix"
                ),
            ));
        }
        let Some(col) = calls_col else {
            // The header: "% time seconds usecs/call calls errors syscall", possibly with
            // other columns (strace -U); "% time" is one column.
            if t.starts_with('%') {
                let cols: Vec<&str> = t.trim_start_matches('%').split_whitespace().collect();
                let calls = cols.iter().position(|c| *c == "calls");
                if calls.is_none() || cols.last() != Some(&"syscall") {
                    return Err(at(
                        n,
                        "header without the `calls` and `syscall` columns of `strace -c`".into(),
                    ));
                }
                calls_col = calls;
            }
            continue;
        };
        if t.is_empty() || t.chars().all(|c| c == '-' || c == ' ') {
            continue;
        }
        if total.is_some() {
            return Err(at(n, "text after the `total` row".into()));
        }
        let fields: Vec<&str> = t.split_whitespace().collect();
        let (Some(name), true) = (fields.last(), fields.len() > col + 1) else {
            return Err(at(n, format!("expected a row of `strace -c`, got {t:?}")));
        };
        let count: u64 = fields[col].parse().map_err(|_| {
            at(
                n,
                format!(
                    "calls column {:?} is not a non-negative integer",
                    fields[col]
                ),
            )
        })?;
        if *name == "total" {
            total = Some(count);
        } else {
            rows.push(((*name).to_string(), count));
        }
    }
    if calls_col.is_none() {
        return Err(mix_err(
            origin,
            "neither a JSON object nor an `strace -c` table (no `% time ... calls ... syscall` \
             header)"
                .into(),
        ));
    }
    let Some(total) = total else {
        return Err(mix_err(
            origin,
            "the `strace -c` table has no `total` row".into(),
        ));
    };
    let sum = rows
        .iter()
        .try_fold(0u64, |acc, (_, c)| acc.checked_add(*c))
        .ok_or_else(|| mix_err(origin, "the counts add up to more than 2^64".into()))?;
    if sum != total {
        return Err(mix_err(
            origin,
            format!("the rows count {sum} calls but the `total` row says {total}"),
        ));
    }
    Ok(rows)
}

/// The mean executed instructions per call of `program` under `mix`: each syscall of the mix
/// run once (arguments zero, on the mix's architecture), weighted by its count.
pub fn weighted_mean(program: &Program, mix: &SyscallMix) -> Result<WeightedCost> {
    let mut sum = 0.0;
    let mut allowed = 0u64;
    for (nr, c) in mix.by_number() {
        let o = run(program, &seccomp_data(mix.arch, nr, [0; 6])?)?;
        sum += o.executed as f64 * c as f64;
        if matches!(o.action, Action::Allow | Action::Log) {
            allowed += c;
        }
    }
    Ok(WeightedCost {
        arch: mix.arch.oci_name().to_string(),
        calls: mix.total,
        mean: sum / mix.total as f64,
        allowed,
    })
}

/// A filter's cost under a [`SyscallMix`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightedCost {
    /// Architecture of the mix (OCI name).
    pub arch: String,
    /// Calls in the mix.
    pub calls: u64,
    /// Mean executed instructions per call.
    pub mean: f64,
    /// Calls the filter allows (or logs).
    pub allowed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
strace: Process 12 attached
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 68.65    0.306354         178      1716        46 futex
 12.36    0.055152          36      1525           nanosleep
  0.00    0.000006           0        10           fstat
------ ----------- ----------- --------- --------- ----------------
100.00    0.446276          62      3251        46 total
";

    #[test]
    fn strace_table() {
        let m = SyscallMix::parse(TABLE, Arch::X86_64, "t").unwrap();
        assert_eq!(m.count("futex"), 1716);
        assert_eq!(m.count("nanosleep"), 1525);
        assert_eq!(m.count("fstat"), 10);
        assert_eq!(m.count("read"), 0);
        assert_eq!(m.total(), 3251);
        assert_eq!(m.by_number().get(&202), Some(&1716));
        // x86 numbers for the same names.
        let x86 = SyscallMix::parse(TABLE, Arch::X86, "t").unwrap();
        assert_eq!(x86.by_number().get(&240), Some(&1716));
    }

    #[test]
    fn strace_errors_name_the_line() {
        let bad_total = TABLE.replace("3251", "3252");
        let e = SyscallMix::parse(&bad_total, Arch::X86_64, "t").unwrap_err();
        assert!(
            e.to_string().contains("3251") && e.to_string().contains("3252"),
            "{e}"
        );
        let unknown = TABLE.replace("nanosleep", "syscall_0x1c3");
        let e = SyscallMix::parse(&unknown, Arch::X86_64, "t").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t: \"syscall_0x1c3\" is not a syscall on SCMP_ARCH_X86_64"
        );
        let neg = TABLE.replace("1525", "-1525");
        let e = SyscallMix::parse(&neg, Arch::X86_64, "t").unwrap_err();
        assert!(e.to_string().starts_with("t: line 5: calls column"), "{e}");
        let short = TABLE.replace(
            " 12.36    0.055152          36      1525           nanosleep",
            "oops",
        );
        let e = SyscallMix::parse(&short, Arch::X86_64, "t").unwrap_err();
        assert!(e.to_string().contains("line 5"), "{e}");
        let e = SyscallMix::parse(
            TABLE.trim_end().rsplit_once('\n').unwrap().0,
            Arch::X86_64,
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no `total` row"), "{e}");
        let e = SyscallMix::parse("hello\n", Arch::X86_64, "t").unwrap_err();
        assert!(e.to_string().contains("no `% time"), "{e}");
        let two = format!("{TABLE}System call usage summary for 32 bit mode:\n{TABLE}");
        let e = SyscallMix::parse(&two, Arch::X86_64, "t").unwrap_err();
        assert!(e.to_string().contains("another personality"), "{e}");
        let after = format!("{TABLE} 1.0 0.1 1 1 read\n");
        assert!(SyscallMix::parse(&after, Arch::X86_64, "t").is_err());
        // aarch64 has no `open`.
        let open = TABLE.replace("fstat", "open");
        assert!(SyscallMix::parse(&open, Arch::Aarch64, "t").is_err());
    }

    #[test]
    fn json_map() {
        let m = SyscallMix::parse(r#" {"read": 3, "write": 1, "close": 0}"#, Arch::X86_64, "j")
            .unwrap();
        assert_eq!(m.total(), 4);
        assert_eq!(m.counts().len(), 2);
        for (bad, want) in [
            (r#"{"read": -1}"#, "non-negative integer"),
            (r#"{"read": 1.5}"#, "non-negative integer"),
            (r#"{"read": "3"}"#, "non-negative integer"),
            (r#"{"total": 3}"#, "\"total\" is not a syscall"),
            (r#"{"read": 0}"#, "counts no syscall"),
            (r#"{}"#, "counts no syscall"),
            (
                r#"{"read": 18446744073709551615, "write": 1}"#,
                "more than 2^64",
            ),
        ] {
            let e = SyscallMix::parse(bad, Arch::X86_64, "j").unwrap_err();
            assert!(e.to_string().contains(want), "{bad}: {e}");
        }
        assert!(matches!(
            SyscallMix::parse("{", Arch::X86_64, "j"),
            Err(Error::Json { .. })
        ));
        let big = format!("{{\"read\": 1{}}}", " ".repeat(MAX_MIX_BYTES));
        let e = SyscallMix::parse(&big, Arch::X86_64, "j").unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }

    #[test]
    fn entropy() {
        let m = SyscallMix::from_counts(Arch::X86_64, [("read", 1), ("write", 1)], "m").unwrap();
        assert!((m.entropy_bits() - 1.0).abs() < 1e-12);
        let one = SyscallMix::from_counts(Arch::X86_64, [("read", 5)], "m").unwrap();
        assert_eq!(one.entropy_bits(), 0.0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = SyscallMix::parse(&text, Arch::X86_64, "p");
            let table = format!("% time seconds usecs/call calls errors syscall\n{text}");
            let _ = SyscallMix::parse(&table, Arch::X86_64, "p");
        }
    }
}
