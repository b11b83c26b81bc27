//! Swap on the node: `/proc/swaps`, `/proc/meminfo`, and the kubelet's `failSwapOn` check.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::root::HostRoot;

/// One active swap area from `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapDevice {
    /// Device or file.
    pub filename: String,
    /// `partition` or `file`.
    pub kind: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Used bytes.
    pub used_bytes: u64,
    /// Priority.
    pub priority: i64,
}

/// Memory and swap totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapFacts {
    /// Swap is on: `/proc/swaps` has a line beyond its header (the kubelet's test).
    pub enabled: bool,
    /// `SwapTotal` from `/proc/meminfo`, in bytes (falls back to the sum of `/proc/swaps`).
    pub total_bytes: u64,
    /// `SwapFree`, in bytes, when known.
    pub free_bytes: Option<u64>,
    /// `MemTotal`, in bytes, when known (LimitedSwap divides by it).
    pub mem_total_bytes: Option<u64>,
    /// The active swap areas.
    pub devices: Vec<SwapDevice>,
}

/// Parses `/proc/swaps`. The first line is the header; the kubelet only asks whether there is
/// anything after it.
///
/// # Errors
/// [`Error::Parse`] for a line whose size, used or priority column is not a number.
pub fn parse_proc_swaps(root: &HostRoot, text: &str) -> Result<Vec<SwapDevice>> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = |field: &str, value: &str| Error::Parse {
            path: root.join("/proc/swaps"),
            field: field.to_string(),
            value: value.to_string(),
            expected: "Filename Type Size Used Priority, sizes in KiB",
        };
        if f.len() < 5 {
            return Err(bad("line", line));
        }
        let kib = |i: usize, name: &str| {
            f[i].parse::<u64>()
                .map(|v| v.saturating_mul(1024))
                .map_err(|_| bad(name, f[i]))
        };
        out.push(SwapDevice {
            filename: f[0].to_string(),
            kind: f[1].to_string(),
            size_bytes: kib(2, "Size")?,
            used_bytes: kib(3, "Used")?,
            priority: f[4].parse().map_err(|_| bad("Priority", f[4]))?,
        });
    }
    Ok(out)
}

/// Reads a `Key:   N kB` line of `/proc/meminfo`, in bytes.
///
/// # Errors
/// [`Error::Parse`] when the key is there but its value is not `N kB`.
pub fn meminfo_bytes(root: &HostRoot, text: &str, key: &str) -> Result<Option<u64>> {
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let mut f = rest.split_whitespace();
        let n = f.next().and_then(|n| n.parse::<u64>().ok());
        let unit = f.next();
        return match (n, unit) {
            (Some(n), Some("kB")) => Ok(Some(n.saturating_mul(1024))),
            (Some(n), None) => Ok(Some(n)),
            _ => Err(Error::Parse {
                path: root.join("/proc/meminfo"),
                field: key.to_string(),
                value: rest.trim().to_string(),
                expected: "a number of kB",
            }),
        };
    }
    Ok(None)
}

/// Reads `/proc/swaps` and `/proc/meminfo` under `root`.
///
/// # Errors
/// [`Error::Read`] when `/proc/swaps` is unreadable; [`Error::Parse`] for malformed content.
/// A missing `/proc/meminfo` only leaves the totals unknown.
pub fn probe_swap(root: &HostRoot) -> Result<SwapFacts> {
    let swaps = root.read("/proc/swaps")?;
    let devices = parse_proc_swaps(root, &swaps)?;
    let meminfo = root.read_optional("/proc/meminfo")?.unwrap_or_default();
    let swap_total = meminfo_bytes(root, &meminfo, "SwapTotal")?;
    let total_bytes = swap_total.unwrap_or_else(|| devices.iter().map(|d| d.size_bytes).sum());
    Ok(SwapFacts {
        enabled: !devices.is_empty(),
        total_bytes,
        free_bytes: meminfo_bytes(root, &meminfo, "SwapFree")?,
        mem_total_bytes: meminfo_bytes(root, &meminfo, "MemTotal")?,
        devices,
    })
}

/// The kubelet's startup check: with `failSwapOn` (the default) and any active swap area, the
/// kubelet refuses to start.
///
/// # Errors
/// [`Error::SwapOn`], whose message is the kubelet's.
pub fn check_fail_swap_on(facts: &SwapFacts, fail_swap_on: bool) -> Result<()> {
    if fail_swap_on && facts.enabled {
        return Err(Error::SwapOn {
            devices: facts.devices.iter().map(|d| d.filename.clone()).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWAPS_ON: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t8388604\t\t0\t\t-2\n/dev/dm-1                               partition\t1000\t\t10\t\t5\n";

    #[test]
    fn swaps_and_meminfo() {
        let root = HostRoot::new("/nonexistent");
        let d = parse_proc_swaps(&root, SWAPS_ON).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].size_bytes, 8_388_604 * 1024);
        assert_eq!(d[0].priority, -2);
        assert_eq!(d[1].kind, "partition");
        assert!(
            parse_proc_swaps(&root, "Filename Type Size Used Priority\n")
                .unwrap()
                .is_empty()
        );
        let err = parse_proc_swaps(&root, "hdr\n/swap file big 0 -2\n").unwrap_err();
        assert!(err.to_string().contains("field Size"), "{err}");
        let mi = "MemTotal:       16384 kB\nSwapTotal:  8192 kB\nSwapFree: x\n";
        assert_eq!(
            meminfo_bytes(&root, mi, "MemTotal").unwrap(),
            Some(16384 * 1024)
        );
        assert_eq!(meminfo_bytes(&root, mi, "Nope").unwrap(), None);
        assert!(meminfo_bytes(&root, mi, "SwapFree").is_err());
    }

    #[test]
    fn fail_swap_on_message_is_the_kubelets() {
        let root = HostRoot::new("/nonexistent");
        let facts = SwapFacts {
            enabled: true,
            total_bytes: 1,
            free_bytes: None,
            mem_total_bytes: None,
            devices: parse_proc_swaps(&root, SWAPS_ON).unwrap(),
        };
        let err = check_fail_swap_on(&facts, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"
        );
        assert!(check_fail_swap_on(&facts, false).is_ok());
        let off = SwapFacts {
            enabled: false,
            devices: vec![],
            ..facts
        };
        assert!(check_fail_swap_on(&off, true).is_ok());
    }
}
