//! Node facts read from a root directory (`/` on a real node, a fixture tree in tests):
//! CPUs, memory, hugepages, machine/system/boot IDs, kernel release, OS image, filesystem sizes.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Facts about the machine, the inputs of the `MachineInfo` and `VersionInfo` setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineFacts {
    /// Logical CPUs (`processor` entries in `/proc/cpuinfo`).
    pub num_cores: u32,
    /// `MemTotal` in bytes.
    pub memory_bytes: u64,
    /// Hugepages: (page size in bytes, pages reserved).
    pub hugepages: Vec<(u64, u64)>,
    /// `/etc/machine-id` (fallback `/var/lib/dbus/machine-id`).
    pub machine_id: String,
    /// `/sys/class/dmi/id/product_uuid` (empty when absent or unreadable).
    pub system_uuid: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel_version: String,
    /// os-release `PRETTY_NAME` (`Linux` when there is none, as cAdvisor).
    pub os_image: String,
}

/// The most read of one node fact file (`/proc/cpuinfo`, `/proc/meminfo`, os-release, ...):
/// 16 MiB. `/proc/cpuinfo` of a 1,024-CPU machine is about 1.5 MiB.
pub const MAX_FACT_FILE_BYTES: u64 = 16 << 20;

/// Reads `<root>/<rel>` through node-kernel's bounded reader ([`node_kernel::HostRoot`]), at
/// most [`MAX_FACT_FILE_BYTES`].
pub(crate) fn read(root: &Path, rel: &str) -> Result<String> {
    node_kernel::HostRoot::new(root)
        .read_at_most(rel, MAX_FACT_FILE_BYTES)
        .map_err(|e| from_host(root, rel, e))
}

/// node-kernel's read errors as this crate's ([`Error::Read`], [`Error::TooLarge`],
/// [`Error::Parse`]), so callers match one enum.
fn from_host(root: &Path, rel: &str, e: node_kernel::Error) -> Error {
    match e {
        node_kernel::Error::Read { path, source } => Error::Read { path, source },
        node_kernel::Error::TooLarge { path, limit, .. } => Error::TooLarge { path, limit },
        node_kernel::Error::Parse {
            path,
            field,
            value,
            expected,
        } => Error::Parse {
            path,
            field,
            reason: format!("expected {expected}, got {value:?}"),
        },
        other => Error::Read {
            path: root.join(rel),
            source: std::io::Error::other(node_util::error_chain(&other)),
        },
    }
}

fn read_optional(root: &Path, rel: &str) -> Result<Option<String>> {
    match read(root, rel) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Read { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn parse_err(root: &Path, rel: &str, field: &str, reason: impl Into<String>) -> Error {
    Error::Parse {
        path: root.join(rel),
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Counts `processor` lines in `/proc/cpuinfo`.
pub fn parse_cpuinfo(root: &Path) -> Result<u32> {
    let text = read(root, "proc/cpuinfo")?;
    let n = text
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    if n == 0 {
        return Err(parse_err(
            root,
            "proc/cpuinfo",
            "processor",
            "no processor entries",
        ));
    }
    u32::try_from(n).map_err(|_| parse_err(root, "proc/cpuinfo", "processor", "too many"))
}

/// Reads one `/proc/meminfo` field (`MemTotal`, `MemAvailable`...) in bytes, with
/// node-kernel's parser ([`node_kernel::meminfo_bytes`]).
///
/// # Errors
/// [`Error::Read`]/[`Error::TooLarge`] for the file; [`Error::Parse`] when the field is missing
/// or is not `N kB`.
pub fn meminfo_field(root: &Path, field: &str) -> Result<u64> {
    let host = node_kernel::HostRoot::new(root);
    let text = host
        .read_at_most("proc/meminfo", MAX_FACT_FILE_BYTES)
        .map_err(|e| from_host(root, "proc/meminfo", e))?;
    node_kernel::meminfo_bytes(&host, &text, field)
        .map_err(|e| from_host(root, "proc/meminfo", e))?
        .ok_or_else(|| parse_err(root, "proc/meminfo", field, "field missing"))
}

/// Lists `/sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages` as (page bytes, pages).
pub fn read_hugepages(root: &Path) -> Result<Vec<(u64, u64)>> {
    let dir = root.join("sys/kernel/mm/hugepages");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        // The kernel's sizes are powers of two from 64 KiB to 16 GiB; a name whose size in
        // bytes does not fit in 64 bits is refused rather than wrapped.
        let Some(page_bytes) = kb.checked_mul(1024) else {
            return Err(parse_err(
                root,
                &format!("sys/kernel/mm/hugepages/{name}"),
                "page size",
                format!("{kb} kB does not fit in 64 bits of bytes"),
            ));
        };
        let rel = format!("sys/kernel/mm/hugepages/{name}/nr_hugepages");
        let text = read(root, &rel)?;
        let pages = text.trim().parse::<u64>().map_err(|_| {
            parse_err(
                root,
                &rel,
                "nr_hugepages",
                format!("expected an integer, got {:?}", text.trim()),
            )
        })?;
        out.push((page_bytes, pages));
    }
    out.sort_unstable();
    Ok(out)
}

/// `PRETTY_NAME` from `/etc/os-release` (or `/usr/lib/os-release`), unquoted; `Linux` if absent.
pub fn os_image(root: &Path) -> Result<String> {
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(text) = read_optional(root, rel)? {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("PRETTY_NAME=") {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                        .unwrap_or(v);
                    return Ok(v.to_owned());
                }
            }
        }
    }
    Ok("Linux".to_owned())
}

impl MachineFacts {
    /// Reads every fact from `root`. Missing optional files (product_uuid, machine-id on some
    /// containers) give empty strings; missing required ones (cpuinfo, meminfo) are errors.
    pub fn read(root: &Path) -> Result<Self> {
        let machine_id = match read_optional(root, "etc/machine-id")? {
            Some(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => read_optional(root, "var/lib/dbus/machine-id")?
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        };
        Ok(MachineFacts {
            num_cores: parse_cpuinfo(root)?,
            memory_bytes: meminfo_field(root, "MemTotal")?,
            hugepages: read_hugepages(root)?,
            machine_id,
            system_uuid: read_optional(root, "sys/class/dmi/id/product_uuid")?
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            boot_id: read(root, "proc/sys/kernel/random/boot_id")?
                .trim()
                .to_owned(),
            kernel_version: read(root, "proc/sys/kernel/osrelease")?.trim().to_owned(),
            os_image: os_image(root)?,
        })
    }
}

/// Size and free space of a filesystem (`statvfs(2)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Total bytes.
    pub capacity_bytes: u64,
    /// Bytes available to unprivileged users.
    pub available_bytes: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub inodes_free: u64,
}

impl FsStats {
    /// `statvfs(2)` on `path`.
    pub fn of(path: &Path) -> Result<Self> {
        let st = nix::sys::statvfs::statvfs(path).map_err(|source| Error::Statfs {
            path: PathBuf::from(path),
            source,
        })?;
        let frsize = st.fragment_size();
        Ok(FsStats {
            capacity_bytes: st.blocks().saturating_mul(frsize),
            available_bytes: st.blocks_available().saturating_mul(frsize),
            inodes: st.files(),
            inodes_free: st.files_free(),
        })
    }
}

/// PID usage: `/proc/sys/kernel/pid_max` and the process count from `/proc/loadavg`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidStats {
    /// `pid_max`.
    pub max: u64,
    /// Processes (threads) currently existing.
    pub running: u64,
}

impl PidStats {
    /// Reads PID usage from `root`.
    pub fn read(root: &Path) -> Result<Self> {
        let max_text = read(root, "proc/sys/kernel/pid_max")?;
        let max = max_text.trim().parse().map_err(|_| {
            parse_err(
                root,
                "proc/sys/kernel/pid_max",
                "pid_max",
                format!("expected an integer, got {:?}", max_text.trim()),
            )
        })?;
        let load = read(root, "proc/loadavg")?;
        let running = load
            .split_whitespace()
            .nth(3)
            .and_then(|f| f.split_once('/'))
            .and_then(|(_, total)| total.parse().ok())
            .ok_or_else(|| {
                parse_err(
                    root,
                    "proc/loadavg",
                    "running/total",
                    format!("expected a 4th field like 1/234, got {:?}", load.trim()),
                )
            })?;
        Ok(PidStats { max, running })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a small fixture root: 4 CPUs, 8 GiB, one 2 MiB hugepage pool of 512 pages.
    pub(crate) fn fixture_root(dir: &Path) {
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let mut cpuinfo = String::new();
        for i in 0..4 {
            cpuinfo.push_str(&format!("processor\t: {i}\nmodel name\t: Test CPU\n\n"));
        }
        w("proc/cpuinfo", &cpuinfo);
        w(
            "proc/meminfo",
            "MemTotal:        8388608 kB\nMemFree:   100 kB\nMemAvailable:    4194304 kB\nHugePages_Total: 512\n",
        );
        w(
            "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "512\n",
        );
        w(
            "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            "0\n",
        );
        w("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        w(
            "sys/class/dmi/id/product_uuid",
            "4C4C4544-0042-3510-8052-B4C04F564433\n",
        );
        w(
            "proc/sys/kernel/random/boot_id",
            "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11\n",
        );
        w("proc/sys/kernel/osrelease", "6.18.0-test\n");
        w(
            "etc/os-release",
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        );
        w("proc/sys/kernel/pid_max", "4194304\n");
        w("proc/loadavg", "0.10 0.20 0.30 2/345 9999\n");
    }

    #[test]
    fn reads_fixture() {
        let dir = tempfile::tempdir().unwrap();
        fixture_root(dir.path());
        let f = MachineFacts::read(dir.path()).unwrap();
        assert_eq!(f.num_cores, 4);
        assert_eq!(f.memory_bytes, 8 << 30);
        assert_eq!(f.hugepages, vec![(2 << 20, 512), (1 << 30, 0)]);
        assert_eq!(f.machine_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(f.system_uuid, "4C4C4544-0042-3510-8052-B4C04F564433");
        assert_eq!(f.boot_id, "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11");
        assert_eq!(f.kernel_version, "6.18.0-test");
        assert_eq!(f.os_image, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(meminfo_field(dir.path(), "MemAvailable").unwrap(), 4 << 30);
        assert_eq!(meminfo_field(dir.path(), "HugePages_Total").unwrap(), 512);
        assert_eq!(
            PidStats::read(dir.path()).unwrap(),
            PidStats {
                max: 4194304,
                running: 345
            }
        );
    }

    #[test]
    fn errors_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        fixture_root(dir.path());
        std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: lots kB\n").unwrap();
        let err = MachineFacts::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("proc/meminfo") && err.contains("MemTotal"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("proc/cpuinfo")).unwrap();
        let err = MachineFacts::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("proc/cpuinfo"), "{err}");
        // Missing os-release and machine-id fall back like cAdvisor.
        std::fs::remove_file(dir.path().join("etc/os-release")).unwrap();
        assert_eq!(os_image(dir.path()).unwrap(), "Linux");
    }

    /// Regression (fuzzing audit): a hugepage directory name with a huge size overflowed
    /// `kB * 1024` (a panic in debug builds, a wrong page size in release).
    #[test]
    fn huge_hugepage_size_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fixture_root(dir.path());
        let name = "hugepages-18014398509481984kB";
        let p = dir.path().join("sys/kernel/mm/hugepages").join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("nr_hugepages"), "1\n").unwrap();
        let err = read_hugepages(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "parsing {}: field page size: 18014398509481984 kB does not fit in 64 bits of bytes",
                p.display()
            )
        );
        // The largest size that fits is still read.
        std::fs::rename(
            &p,
            dir.path()
                .join("sys/kernel/mm/hugepages/hugepages-18014398509481983kB"),
        )
        .unwrap();
        let pages = read_hugepages(dir.path()).unwrap();
        assert_eq!(pages.last(), Some(&(18014398509481983 * 1024, 1)));
    }

    /// Regression (fuzzing audit): fact files were read without a limit.
    #[test]
    fn fact_files_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        fixture_root(dir.path());
        std::fs::remove_file(dir.path().join("proc/cpuinfo")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("proc/cpuinfo")).unwrap();
        let err = MachineFacts::read(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::TooLarge { path, limit }
                if path.ends_with("proc/cpuinfo") && *limit == MAX_FACT_FILE_BYTES),
            "{err}"
        );
        let small = dir.path().join("small");
        std::fs::write(&small, "1234").unwrap();
        let host = node_kernel::HostRoot::new(dir.path());
        assert_eq!(host.read_at_most("small", 4).unwrap(), "1234");
        assert_eq!(
            from_host(
                dir.path(),
                "small",
                host.read_at_most("small", 3).unwrap_err()
            )
            .to_string(),
            format!(
                "reading {}: larger than the 3 bytes read at most",
                small.display()
            )
        );
    }

    #[test]
    fn real_machine() {
        let f = MachineFacts::read(Path::new("/")).unwrap();
        assert!(f.num_cores >= 1);
        assert!(f.num_cores as usize >= std::thread::available_parallelism().unwrap().get());
        assert!(f.memory_bytes > 64 << 20);
        assert_eq!(f.boot_id.len(), 36);
        assert!(!f.kernel_version.is_empty());
        let fs = FsStats::of(Path::new("/")).unwrap();
        assert!(fs.capacity_bytes >= fs.available_bytes && fs.capacity_bytes > 0);
        let pids = PidStats::read(Path::new("/")).unwrap();
        assert!(pids.max > pids.running && pids.running > 0);
    }
}
