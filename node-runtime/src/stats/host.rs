//! What the node itself shows: the root cgroup (v1 or v2), `/proc` and filesystems.
//!
//! Parsers are pure (text in, numbers out) and forgiving: a missing key, a garbage value or a
//! number too large for `u64` gives `None`, never a panic. The readers are thin: a bounded read
//! below a [`HostRoot`] handed to a parser, or one `statvfs(2)`, or a bounded walk.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use node_kernel::{CgroupVersion, HostRoot};

use super::types::{FsStats, InterfaceStats, MemoryStats, PSIData, PSIStats, SwapStats, Time};

/// The largest cgroup or `/proc` file this module reads.
const MAX_READ: u64 = 1 << 20;

/// Reads `rel` below `root`, or `None` (missing, unreadable, too large).
pub(crate) fn read(root: &HostRoot, rel: &str) -> Option<String> {
    match root.read_at_most(rel, MAX_READ) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::debug!(error = %node_util::error_chain(&e), "stats: host file not read");
            None
        }
    }
}

/// The first number of a one-value file (`cpuacct.usage`, `memory.usage_in_bytes`,
/// `pid_max`).
#[must_use]
pub fn parse_single(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// A flat keyed file (`memory.stat`, `cpu.stat`): `key value` per line; lines that do not
/// parse are skipped.
#[must_use]
pub fn parse_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let key = f.next()?;
            let value = f.next()?.parse().ok()?;
            Some((key, value))
        })
        .collect()
}

/// `/proc/meminfo` in bytes (`MemTotal: 123 kB` is 123 × 1024).
#[must_use]
pub fn parse_meminfo(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut f = rest.split_whitespace();
            let value: u64 = f.next()?.parse().ok()?;
            let value = match f.next() {
                Some("kB") => value.checked_mul(1024)?,
                None => value,
                Some(_) => return None,
            };
            Some((key.trim(), value))
        })
        .collect()
}

/// A pressure file (`/proc/pressure/cpu`, a cgroup v2 `cpu.pressure`). The `full` line is
/// missing in `/proc/pressure/cpu` before 5.13: then it is zero, as the kubelet shows it.
#[must_use]
pub fn parse_psi(text: &str) -> Option<PSIStats> {
    let line = |kind: &str| -> Option<PSIData> {
        let l = text.lines().find(|l| l.starts_with(kind))?;
        let mut data = PSIData::default();
        let mut seen = 0;
        for kv in l.split_whitespace().skip(1) {
            let (k, v) = kv.split_once('=')?;
            match k {
                "avg10" => data.avg10 = finite(v.parse().ok()?)?,
                "avg60" => data.avg60 = finite(v.parse().ok()?)?,
                "avg300" => data.avg300 = finite(v.parse().ok()?)?,
                "total" => data.total = v.parse().ok()?,
                _ => continue,
            }
            seen += 1;
        }
        (seen == 4).then_some(data)
    };
    let some = line("some ")?;
    let full = line("full ").unwrap_or_default();
    Some(PSIStats { full, some })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Interfaces the kubelet (through cAdvisor) leaves out of the node's network figures.
const IGNORED_INTERFACE_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// The interface the Summary inlines as the default one.
pub const DEFAULT_INTERFACE: &str = "eth0";

/// `/proc/net/dev`: every interface but loopback and container-side ones, sorted by name.
#[must_use]
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    let mut out: Vec<InterfaceStats> = text
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let name = name.trim();
            if name.is_empty()
                || IGNORED_INTERFACE_PREFIXES
                    .iter()
                    .any(|p| name.starts_with(p))
            {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs ...
            if f.len() < 16 {
                return None;
            }
            Some(InterfaceStats {
                name: name.to_owned(),
                rx_bytes: Some(f[0]),
                rx_errors: Some(f[2]),
                tx_bytes: Some(f[8]),
                tx_errors: Some(f[10]),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The number of tasks (`running/total`, the total) in `/proc/loadavg`: what `sysinfo(2)`'s
/// `procs` counts, which the kubelet reports as `curproc`.
#[must_use]
pub fn parse_loadavg_tasks(text: &str) -> Option<i64> {
    let field = text.split_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
#[must_use]
pub fn parse_btime(proc_stat: &str) -> Option<i64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Cumulative CPU time of the whole machine from the `cpu` line of `/proc/stat` (user, nice,
/// system, irq, softirq and steal; USER_HZ is 100 on Linux), in nanoseconds: the fallback when
/// the root cgroup has no usage file.
#[must_use]
pub fn parse_proc_stat_cpu_ns(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let busy_ticks = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .try_fold(0u64, u64::checked_add)?;
    busy_ticks.checked_mul(10_000_000)
}

/// The root cgroup's figures as read, before any decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootCgroupReading {
    /// Cumulative CPU, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Memory usage, bytes (v1 `memory.usage_in_bytes`; v2 `MemTotal − MemFree`, as runc
    /// computes it for the root, which has no `memory.current`).
    pub memory_usage: Option<u64>,
    /// `memory.stat` of the root.
    pub memory_stat: HashMap<String, u64>,
    /// `MemTotal`.
    pub mem_total: Option<u64>,
}

/// Which `memory.stat` keys hold what, per cgroup version.
struct MemoryKeys {
    inactive_file: &'static str,
    rss: &'static str,
    pgfault: &'static str,
    pgmajfault: &'static str,
}

const V1_KEYS: MemoryKeys = MemoryKeys {
    inactive_file: "total_inactive_file",
    rss: "total_rss",
    pgfault: "total_pgfault",
    pgmajfault: "total_pgmajfault",
};
const V2_KEYS: MemoryKeys = MemoryKeys {
    inactive_file: "inactive_file",
    rss: "anon",
    pgfault: "pgfault",
    pgmajfault: "pgmajfault",
};

/// The working set: usage minus inactive file pages (never below zero), as cAdvisor and the
/// kubelet's eviction manager compute it.
#[must_use]
pub fn working_set(usage: u64, inactive_file: Option<u64>) -> u64 {
    usage.saturating_sub(inactive_file.unwrap_or(0))
}

/// The node's [`MemoryStats`] from the root cgroup: working set, RSS and page faults from
/// `memory.stat`, available = capacity − working set.
#[must_use]
pub fn node_memory(
    version: CgroupVersion,
    reading: &RootCgroupReading,
    time: Time,
) -> Option<MemoryStats> {
    let keys = match version {
        CgroupVersion::V1 => &V1_KEYS,
        CgroupVersion::V2 => &V2_KEYS,
    };
    let usage = reading.memory_usage?;
    let stat = |k: &str| reading.memory_stat.get(k).copied();
    let ws = working_set(usage, stat(keys.inactive_file));
    Some(MemoryStats {
        time,
        available_bytes: reading.mem_total.map(|total| total.saturating_sub(ws)),
        usage_bytes: Some(usage),
        working_set_bytes: Some(ws),
        rss_bytes: stat(keys.rss),
        page_faults: stat(keys.pgfault),
        major_page_faults: stat(keys.pgmajfault),
        psi: None,
    })
}

/// The node's swap from `/proc/meminfo`: used = `SwapTotal − SwapFree`, available =
/// `SwapFree`.
#[must_use]
pub fn node_swap(meminfo: &HashMap<&str, u64>, time: Time) -> Option<SwapStats> {
    let total = *meminfo.get("SwapTotal")?;
    let free = meminfo.get("SwapFree").copied().unwrap_or(0).min(total);
    Some(SwapStats {
        time,
        swap_available_bytes: Some(free),
        swap_usage_bytes: Some(total - free),
    })
}

/// Reads the root cgroup (`/sys/fs/cgroup` below `root`) of the given version.
pub(crate) fn read_root_cgroup(root: &HostRoot, version: CgroupVersion) -> RootCgroupReading {
    let meminfo_text = read(root, "/proc/meminfo").unwrap_or_default();
    let meminfo = parse_meminfo(&meminfo_text);
    let mem_total = meminfo.get("MemTotal").copied();
    let (cpu_usage_ns, memory_usage, stat_text) = match version {
        CgroupVersion::V1 => {
            let cpu = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]
                .iter()
                .find_map(|dir| read(root, &format!("/sys/fs/cgroup/{dir}/cpuacct.usage")))
                .and_then(|t| parse_single(&t));
            let mem = read(root, "/sys/fs/cgroup/memory/memory.usage_in_bytes")
                .and_then(|t| parse_single(&t));
            (
                cpu,
                mem,
                read(root, "/sys/fs/cgroup/memory/memory.stat").unwrap_or_default(),
            )
        }
        CgroupVersion::V2 => {
            let cpu = read(root, "/sys/fs/cgroup/cpu.stat")
                .and_then(|t| parse_keyed(&t).get("usage_usec").copied())
                .and_then(|us| us.checked_mul(1000));
            let mem = mem_total
                .zip(meminfo.get("MemFree").copied())
                .map(|(t, f)| t.saturating_sub(f));
            (
                cpu,
                mem,
                read(root, "/sys/fs/cgroup/memory.stat").unwrap_or_default(),
            )
        }
    };
    let cpu_usage_ns =
        cpu_usage_ns.or_else(|| read(root, "/proc/stat").and_then(|t| parse_proc_stat_cpu_ns(&t)));
    RootCgroupReading {
        cpu_usage_ns,
        memory_usage,
        memory_stat: parse_keyed(&stat_text)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        mem_total,
    }
}

/// `statvfs(2)` figures, widened to `u64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawStatvfs {
    /// Fragment size (the unit of the block counts).
    pub frsize: u64,
    /// Blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks free for unprivileged users.
    pub bavail: u64,
    /// Inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
}

/// A whole filesystem as [`FsStats`]: capacity, available (to unprivileged users), used
/// (capacity − free), inodes, free and used inodes. Saturating: garbage never panics.
#[must_use]
pub fn fs_from_statvfs(s: RawStatvfs, time: Time) -> FsStats {
    let bytes = |blocks: u64| blocks.saturating_mul(s.frsize);
    FsStats {
        time,
        available_bytes: Some(bytes(s.bavail)),
        capacity_bytes: Some(bytes(s.blocks)),
        used_bytes: Some(bytes(s.blocks.saturating_sub(s.bfree))),
        inodes_free: Some(s.ffree),
        inodes: Some(s.files),
        inodes_used: Some(s.files.saturating_sub(s.ffree)),
    }
}

fn wide<T: Into<u64>>(v: T) -> u64 {
    v.into()
}

/// `statvfs(2)` of `path`, or `None`.
pub(crate) fn statvfs(path: &Path) -> Option<RawStatvfs> {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) => Some(RawStatvfs {
            frsize: wide(s.fragment_size()),
            blocks: wide(s.blocks()),
            bfree: wide(s.blocks_free()),
            bavail: wide(s.blocks_available()),
            files: wide(s.files()),
            ffree: wide(s.files_free()),
        }),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "stats: statvfs failed");
            None
        }
    }
}

/// Bounds of a [`disk_usage`] walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// Entries looked at before giving up (what was counted so far is returned).
    pub max_entries: usize,
    /// Directory depth below the start.
    pub max_depth: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_depth: 64,
        }
    }
}

/// Bytes (allocated blocks × 512) and inodes used below `path`, like `du`: every step is an
/// `openat(O_NOFOLLOW)` / `fstatat(AT_SYMLINK_NOFOLLOW)` relative to the directory above, so a
/// symlink (even one a container swaps in while the walk runs) is counted but never followed;
/// other filesystems mounted below are not entered; a hard-linked file counts once; at most
/// `limits.max_entries` entries and `limits.max_depth` levels (what was counted so far is the
/// answer then). `None` when `path` cannot be looked at (missing).
#[must_use]
pub fn disk_usage(path: &Path, limits: WalkLimits) -> Option<(u64, u64)> {
    use std::os::fd::AsFd as _;
    use std::rc::Rc;

    let top = std::fs::symlink_metadata(path).ok()?;
    let dev = top.dev();
    let mut walk = Walk {
        dev,
        bytes: top.blocks().saturating_mul(512),
        inodes: 1,
        entries: 0,
        max_entries: limits.max_entries,
        seen_links: HashSet::new(),
    };
    if !top.is_dir() {
        return Some((walk.bytes, walk.inodes));
    }
    let Ok(fd) = nix::fcntl::open(path, walk_dir_flags(), nix::sys::stat::Mode::empty()) else {
        return Some((walk.bytes, walk.inodes));
    };
    // Directories still to read: (parent, name, depth). A parent stays open while a child of
    // it is pending; depth-first, that is at most one parent per level.
    let mut pending: Vec<(Rc<std::os::fd::OwnedFd>, std::ffi::OsString, usize)> = Vec::new();
    let mut next = Some((Rc::new(fd), 0usize));
    while let Some((dir, depth)) = next.take() {
        for name in walk.visit(dir.as_fd()) {
            if depth < limits.max_depth {
                pending.push((dir.clone(), name, depth + 1));
            }
        }
        if walk.entries > walk.max_entries {
            tracing::debug!(path = %path.display(), "stats: disk usage walk cut short");
            break;
        }
        while let Some((parent, name, depth)) = pending.pop() {
            let opened = nix::fcntl::openat(
                parent.as_fd(),
                name.as_os_str(),
                walk_dir_flags(),
                nix::sys::stat::Mode::empty(),
            );
            let Ok(child) = opened else { continue };
            // A filesystem mounted there since it was looked at: not entered.
            if nix::sys::stat::fstat(child.as_fd()).map(|st| wide(st.st_dev)) != Ok(dev) {
                continue;
            }
            next = Some((Rc::new(child), depth));
            break;
        }
    }
    Some((walk.bytes, walk.inodes))
}

fn walk_dir_flags() -> nix::fcntl::OFlag {
    use nix::fcntl::OFlag;
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The running totals of a [`disk_usage`] walk.
struct Walk {
    dev: u64,
    bytes: u64,
    inodes: u64,
    entries: usize,
    max_entries: usize,
    seen_links: HashSet<(u64, u64)>,
}

impl Walk {
    /// Counts the entries of `dir` and returns the names of its subdirectories on the same
    /// filesystem.
    fn visit(&mut self, dir: std::os::fd::BorrowedFd<'_>) -> Vec<std::ffi::OsString> {
        use nix::fcntl::{AtFlags, OFlag};
        use std::os::unix::ffi::OsStrExt as _;

        let mut subdirs = Vec::new();
        let Ok(mut listing) = nix::dir::Dir::openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return subdirs;
        };
        for entry in listing.iter() {
            let Ok(entry) = entry else { break };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            self.entries += 1;
            if self.entries > self.max_entries {
                break;
            }
            let name = std::ffi::OsStr::from_bytes(name);
            let Ok(st) = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let (dev, ino) = (wide(st.st_dev), wide(st.st_ino));
            if dev != self.dev {
                continue;
            }
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if !is_dir && wide(st.st_nlink) > 1 && !self.seen_links.insert((dev, ino)) {
                continue;
            }
            let blocks = u64::try_from(st.st_blocks).unwrap_or(0);
            self.bytes = self.bytes.saturating_add(blocks.saturating_mul(512));
            self.inodes = self.inodes.saturating_add(1);
            if is_dir {
                subdirs.push(name.to_os_string());
            }
        }
        subdirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_keyed_values_tolerate_garbage() {
        assert_eq!(parse_single("50126899234825\n"), Some(50_126_899_234_825));
        assert_eq!(parse_single("max\n"), None);
        assert_eq!(parse_single(""), None);
        assert_eq!(parse_single("99999999999999999999999"), None);
        let k = parse_keyed("total_rss 5\ngarbage\ntotal_pgfault x\ninactive_file 7\n");
        assert_eq!(k.get("total_rss"), Some(&5));
        assert_eq!(k.get("total_pgfault"), None);
        assert_eq!(k.get("inactive_file"), Some(&7));
    }

    #[test]
    fn meminfo_is_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       16384 kB\nMemFree: 1024 kB\nHugePages_Total: 0\nSwapTotal: 0 kB\nBad: 18446744073709551615 kB\n",
        );
        assert_eq!(m["MemTotal"], 16384 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
        assert!(!m.contains_key("Bad"), "overflow is dropped");
        let swap = node_swap(&m, Time(1)).unwrap();
        assert_eq!(swap.swap_usage_bytes, Some(0));
        assert_eq!(swap.swap_available_bytes, Some(0));
        let m = parse_meminfo("SwapTotal: 100 kB\nSwapFree: 400 kB\n");
        let swap = node_swap(&m, Time(1)).unwrap();
        assert_eq!(
            swap.swap_usage_bytes,
            Some(0),
            "free above total is clamped"
        );
    }

    #[test]
    fn psi_lines() {
        let p = parse_psi(
            "some avg10=70.66 avg60=53.87 avg300=26.79 total=7583519485\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        assert_eq!(p.some.total, 7_583_519_485);
        assert!((p.some.avg10 - 70.66).abs() < 1e-9);
        assert_eq!(p.full, PSIData::default());
        // Old kernels: no `full` line for cpu.
        let p = parse_psi("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n").unwrap();
        assert_eq!(p.some.total, 4);
        assert_eq!(parse_psi("some avg10=NaN avg60=0 avg300=0 total=1"), None);
        assert_eq!(parse_psi("garbage"), None);
    }

    #[test]
    fn net_dev_skips_loopback_and_veths() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 178096231  415695    0    0    0     0          0         0 178096231  415695    0    0    0     0       0          0
  eth0: 1015929049   37392    3    0    0     0          0         0  2229531   23708    4    0    0     0       0          0
vethab12: 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
  cni0: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0
  bad0: 1 2 3
";
        let ifs = parse_net_dev(text);
        let names: Vec<&str> = ifs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["cni0", "eth0"]);
        assert_eq!(ifs[1].rx_bytes, Some(1_015_929_049));
        assert_eq!(ifs[1].rx_errors, Some(3));
        assert_eq!(ifs[1].tx_bytes, Some(2_229_531));
        assert_eq!(ifs[1].tx_errors, Some(4));
    }

    #[test]
    fn proc_facts() {
        assert_eq!(
            parse_loadavg_tasks("3.39 2.11 1.67 5/117 27864\n"),
            Some(117)
        );
        assert_eq!(parse_loadavg_tasks("3.39"), None);
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1796290000\n"),
            Some(1_796_290_000)
        );
        assert_eq!(
            parse_proc_stat_cpu_ns("cpu  10 1 5 100 7 2 3 4 0 0\ncpu0 1\n"),
            Some((10 + 1 + 5 + 2 + 3 + 4) * 10_000_000)
        );
        assert_eq!(parse_proc_stat_cpu_ns("cpu x"), None);
    }

    #[test]
    fn node_memory_per_cgroup_version() {
        let reading = RootCgroupReading {
            cpu_usage_ns: Some(1),
            memory_usage: Some(1000),
            memory_stat: [
                ("total_inactive_file", 300),
                ("total_rss", 200),
                ("total_pgfault", 9),
                ("total_pgmajfault", 1),
                ("inactive_file", 999),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            mem_total: Some(4000),
        };
        let m = node_memory(CgroupVersion::V1, &reading, Time(5)).unwrap();
        assert_eq!(m.working_set_bytes, Some(700));
        assert_eq!(m.available_bytes, Some(3300));
        assert_eq!(m.rss_bytes, Some(200));
        assert_eq!(m.page_faults, Some(9));
        assert_eq!(m.major_page_faults, Some(1));
        let m = node_memory(CgroupVersion::V2, &reading, Time(5)).unwrap();
        assert_eq!(m.working_set_bytes, Some(1), "1000 - 999");
        assert_eq!(m.rss_bytes, None);
        // Inactive above usage (racy reads): zero, not a wrap.
        assert_eq!(working_set(10, Some(20)), 0);
        let none = RootCgroupReading::default();
        assert_eq!(node_memory(CgroupVersion::V1, &none, Time(5)), None);
    }

    #[test]
    fn root_cgroup_readings_from_fixture_trees() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 400 kB\n");
        w("sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "123456\n");
        w("sys/fs/cgroup/memory/memory.usage_in_bytes", "2048\n");
        w(
            "sys/fs/cgroup/memory/memory.stat",
            "total_inactive_file 48\n",
        );
        w("sys/fs/cgroup/cpu.stat", "usage_usec 7\nuser_usec 5\n");
        w("sys/fs/cgroup/memory.stat", "inactive_file 4096\nanon 8\n");
        let root = HostRoot::new(dir.path());
        let v1 = read_root_cgroup(&root, CgroupVersion::V1);
        assert_eq!(v1.cpu_usage_ns, Some(123_456));
        assert_eq!(v1.memory_usage, Some(2048));
        assert_eq!(v1.mem_total, Some(1_024_000));
        let v2 = read_root_cgroup(&root, CgroupVersion::V2);
        assert_eq!(v2.cpu_usage_ns, Some(7000));
        assert_eq!(v2.memory_usage, Some(600 * 1024));
        let m = node_memory(CgroupVersion::V2, &v2, Time(0)).unwrap();
        assert_eq!(m.working_set_bytes, Some(600 * 1024 - 4096));
        assert_eq!(m.rss_bytes, Some(8));
        // Nothing there at all: no panic, nothing reported.
        let empty = tempfile::tempdir().unwrap();
        let r = read_root_cgroup(&HostRoot::new(empty.path()), CgroupVersion::V2);
        assert_eq!(r, RootCgroupReading::default());
    }

    #[test]
    fn statvfs_figures_saturate() {
        let fs = fs_from_statvfs(
            RawStatvfs {
                frsize: 4096,
                blocks: 100,
                bfree: 40,
                bavail: 30,
                files: 50,
                ffree: 20,
            },
            Time(1),
        );
        assert_eq!(fs.capacity_bytes, Some(409_600));
        assert_eq!(fs.available_bytes, Some(122_880));
        assert_eq!(fs.used_bytes, Some(245_760));
        assert_eq!(fs.inodes_used, Some(30));
        let fs = fs_from_statvfs(
            RawStatvfs {
                frsize: u64::MAX,
                blocks: 3,
                bfree: 9,
                bavail: 1,
                files: 1,
                ffree: 2,
            },
            Time(1),
        );
        assert_eq!(fs.capacity_bytes, Some(u64::MAX));
        assert_eq!(fs.used_bytes, Some(0));
        assert_eq!(fs.inodes_used, Some(0));
        assert!(statvfs(Path::new("/")).is_some());
        assert!(statvfs(Path::new("/nonexistent/x")).is_none());
    }

    #[test]
    fn disk_usage_counts_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("vol");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a"), vec![7u8; 64 * 1024]).unwrap();
        std::fs::hard_link(d.join("sub/a"), d.join("b")).unwrap();
        // A symlink to a big tree outside: counted as one inode, never followed.
        std::os::unix::fs::symlink("/usr", d.join("escape")).unwrap();
        let (bytes, inodes) = disk_usage(&d, WalkLimits::default()).unwrap();
        // vol, sub, a (once), escape.
        assert_eq!(inodes, 4);
        assert!(bytes >= 64 * 1024, "{bytes}");
        assert!(bytes < 1024 * 1024, "{bytes}: the symlink was followed");
        // A symlinked top is not walked either.
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).unwrap();
        assert_eq!(
            disk_usage(&dir.path().join("link"), WalkLimits::default()).map(|u| u.1),
            Some(1)
        );
        // Depth-bounded.
        std::fs::create_dir_all(d.join("x/y/z")).unwrap();
        let (_, deep) = disk_usage(
            &d,
            WalkLimits {
                max_entries: 1000,
                max_depth: 64,
            },
        )
        .unwrap();
        let (_, shallow) = disk_usage(
            &d,
            WalkLimits {
                max_entries: 1000,
                max_depth: 0,
            },
        )
        .unwrap();
        assert_eq!(deep, 7);
        assert_eq!(
            shallow, 5,
            "vol and its own entries (sub, b, escape, x) only"
        );
        // Bounded: stops early, still an answer.
        let (_, inodes) = disk_usage(
            &d,
            WalkLimits {
                max_entries: 1,
                max_depth: 64,
            },
        )
        .unwrap();
        assert!(inodes <= 2);
        assert_eq!(
            disk_usage(&dir.path().join("missing"), WalkLimits::default()),
            None
        );
    }
}
