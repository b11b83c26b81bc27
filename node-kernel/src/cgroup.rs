//! cgroup version, controllers, root `cpu.stat`, the freezer and the swap controller.

use serde::Serialize;

use crate::live;
use crate::root::HostRoot;

/// The cgroup mount point the kubelet and runc look at.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A line of `/proc/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Source device.
    pub source: String,
    /// Mount point (octal escapes such as `\040` decoded).
    pub mountpoint: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mount options.
    pub options: Vec<String>,
}

/// Parses `/proc/mounts` (or `/proc/self/mounts`); malformed lines are skipped.
#[must_use]
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let source = unescape_octal(f.next()?);
            let mountpoint = unescape_octal(f.next()?);
            let fstype = f.next()?.to_string();
            let options = f
                .next()
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            Some(MountEntry {
                source,
                mountpoint,
                fstype,
                options,
            })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (`\040` is a space). The kernel only writes escapes of
/// bytes, `\000` to `\377`; anything else (`\777`, whose value does not fit in a byte) is kept
/// as it is written.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// cgroup v1 (legacy or hybrid) or v2 (unified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CgroupVersion {
    /// Legacy or hybrid hierarchy.
    V1,
    /// Unified hierarchy.
    V2,
}

impl CgroupVersion {
    /// 1 or 2.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// What the cgroup probe found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupFacts {
    /// v1 or v2; `None` when neither `/proc/mounts` nor the live statfs could tell.
    #[serde(serialize_with = "ser_version")]
    pub version: Option<CgroupVersion>,
    /// Where the hierarchy the version refers to is mounted (v2: the unified mount).
    pub mountpoint: Option<String>,
    /// On a v1 host, a v2 hierarchy mounted beside it (`/sys/fs/cgroup/unified`): "hybrid".
    pub hybrid_unified_mount: Option<String>,
    /// Available controllers, sorted (the validators' way: v1 from `/proc/cgroups`, v2 from
    /// `cgroup.controllers` plus the implicit `devices` and a `freezer` found by probing).
    pub controllers: Vec<String>,
    /// The root of the cgroup2 hierarchy has `cpu.stat` (kernel 5.8+); on a hybrid host this
    /// looks at the unified mount. `None` without any cgroup2 mount.
    pub root_cpu_stat: Option<bool>,
    /// Whether the freezer works for this hierarchy.
    pub freezer: Option<bool>,
    /// How the freezer was decided.
    pub freezer_evidence: String,
    /// Whether the cgroup v2 freezer (`cgroup.freeze`, kernel 5.2+) is there, looking at the
    /// unified hierarchy or, on a hybrid host, at its cgroup2 mount.
    pub v2_freezer: Option<bool>,
    /// How `v2_freezer` was decided.
    pub v2_freezer_evidence: String,
    /// Whether a swap controller exists (v2 `memory.swap.max`, v1 `memory.memsw.limit_in_bytes`).
    pub swap_controller: Option<bool>,
    /// How the version was decided (`statfs /sys/fs/cgroup` on the live root, or `/proc/mounts`).
    pub detected_by: String,
    /// Problems met on the way (unreadable files); they lower certainty, not correctness.
    pub problems: Vec<String>,
}

fn ser_version<S: serde::Serializer>(v: &Option<CgroupVersion>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_u8(v.number()),
        None => s.serialize_none(),
    }
}

/// The mount the validators' `getUnifiedMountpoint` would pick, and its version.
#[must_use]
pub fn version_from_mounts(
    root: &HostRoot,
    mounts: &[MountEntry],
) -> Option<(CgroupVersion, String)> {
    if let Some(m) = mounts.iter().rev().find(|m| m.mountpoint == CGROUP_ROOT) {
        if m.fstype == "cgroup2" {
            return Some((CgroupVersion::V2, CGROUP_ROOT.to_string()));
        }
        if m.fstype == "tmpfs" && root.is_dir(&format!("{CGROUP_ROOT}/memory")) {
            return Some((CgroupVersion::V1, CGROUP_ROOT.to_string()));
        }
    }
    if let Some(m) = mounts.iter().find(|m| m.fstype == "cgroup2") {
        return Some((CgroupVersion::V2, m.mountpoint.clone()));
    }
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup")
        .map(|_| (CgroupVersion::V1, CGROUP_ROOT.to_string()))
}

/// Probes the cgroup setup under `root`.
#[must_use]
pub fn probe_cgroups(root: &HostRoot) -> CgroupFacts {
    let mut problems = Vec::new();
    let mounts = match root.read("/proc/mounts") {
        Ok(t) => parse_mounts(&t),
        Err(e) => {
            problems.push(node_util::error_chain(&e));
            Vec::new()
        }
    };
    let from_mounts = version_from_mounts(root, &mounts);

    // On the real root, statfs is what runc and the kubelet use; it cannot be faked by a tree.
    let (version, mountpoint, detected_by) =
        match root.is_live().then(|| live::cgroup_fs_magic(CGROUP_ROOT)) {
            Some(Ok(live::CgroupFsMagic::Cgroup2)) => (
                Some(CgroupVersion::V2),
                Some(CGROUP_ROOT.to_string()),
                "statfs /sys/fs/cgroup: cgroup2 magic (live)".to_string(),
            ),
            Some(Ok(live::CgroupFsMagic::Other)) => {
                // v1 (legacy or hybrid); the "mountpoint" for v2-style checks is a unified mount if any.
                (
                    Some(CgroupVersion::V1),
                    Some(CGROUP_ROOT.to_string()),
                    "statfs /sys/fs/cgroup: not cgroup2 (live)".to_string(),
                )
            }
            Some(Ok(live::CgroupFsMagic::Missing)) => (
                Some(CgroupVersion::V1),
                None,
                "statfs /sys/fs/cgroup: ENOENT, treated as v1 like runc (live)".to_string(),
            ),
            Some(Err(e)) => {
                problems.push(node_util::error_chain(&e));
                let (v, m) = from_mounts.unzip();
                (v, m, "/proc/mounts (statfs failed)".to_string())
            }
            None => {
                let (v, m) = from_mounts.unzip();
                (v, m, "/proc/mounts".to_string())
            }
        };

    let hybrid_unified_mount = match version {
        Some(CgroupVersion::V1) => mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .map(|m| m.mountpoint.clone()),
        _ => None,
    };

    let mut facts = CgroupFacts {
        version,
        mountpoint: mountpoint.clone(),
        hybrid_unified_mount,
        controllers: Vec::new(),
        root_cpu_stat: None,
        freezer: None,
        freezer_evidence: String::new(),
        v2_freezer: None,
        v2_freezer_evidence: String::new(),
        swap_controller: None,
        detected_by,
        problems,
    };
    match (version, mountpoint) {
        (Some(CgroupVersion::V2), Some(mp)) => fill_v2(root, &mp, &mut facts),
        (Some(CgroupVersion::V1), _) => fill_v1(root, &mounts, &mut facts),
        _ => facts.freezer_evidence = "cgroup hierarchy not found".to_string(),
    }
    facts.controllers.sort();
    facts.controllers.dedup();
    facts
}

/// What a cgroup2 mount shows (the unified root on v2, or the hybrid mount on v1).
struct V2Info {
    controllers: Vec<String>,
    root_cpu_stat: bool,
    freezer: Option<bool>,
    freezer_evidence: String,
    swap_controller: Option<bool>,
    problems: Vec<String>,
}

/// Reads a cgroup2 mount. `allow_temp_child` lets the live probe create a temporary child
/// cgroup when there is none to look at (only for the primary v2 hierarchy).
fn probe_v2_mount(root: &HostRoot, mp: &str, allow_temp_child: bool) -> V2Info {
    let mut info = V2Info {
        controllers: Vec::new(),
        root_cpu_stat: root.exists(&format!("{mp}/cpu.stat")),
        freezer: None,
        freezer_evidence: String::new(),
        swap_controller: None,
        problems: Vec::new(),
    };
    match root.read(&format!("{mp}/cgroup.controllers")) {
        Ok(t) => info
            .controllers
            .extend(t.split_whitespace().map(str::to_string)),
        Err(e) => info.problems.push(node_util::error_chain(&e)),
    }
    let children = child_dirs(root, mp);
    let freeze_child = children
        .iter()
        .find(|c| root.exists(&format!("{mp}/{c}/cgroup.freeze")));
    if let Some(c) = freeze_child {
        info.freezer = Some(true);
        info.freezer_evidence = format!("{mp}/{c}/cgroup.freeze exists");
    } else if !children.is_empty() {
        info.freezer = Some(false);
        info.freezer_evidence = format!("no cgroup.freeze in the child cgroups of {mp}");
    } else if allow_temp_child && root.is_live() {
        // Only a child cgroup has cgroup.freeze; make a temporary one, like the validators.
        match live::probe_v2_freezer(root.join(mp).as_path()) {
            Ok(found) => {
                info.freezer = Some(found);
                info.freezer_evidence = format!(
                    "temporary child cgroup under {mp} (live): cgroup.freeze {}",
                    if found { "present" } else { "absent" }
                );
            }
            Err(e) => {
                info.freezer_evidence =
                    format!("temporary child cgroup: {}", node_util::error_chain(&e));
            }
        }
    } else {
        info.freezer_evidence = format!("{mp} has no child cgroup to look at");
    }
    let swap_child = children
        .iter()
        .any(|c| root.exists(&format!("{mp}/{c}/memory.swap.max")));
    info.swap_controller = if swap_child {
        Some(true)
    } else if children.is_empty() {
        None
    } else {
        Some(false)
    };
    info
}

fn fill_v2(root: &HostRoot, mp: &str, facts: &mut CgroupFacts) {
    let info = probe_v2_mount(root, mp, true);
    facts.controllers.extend(info.controllers);
    // The device controller is implemented with eBPF on v2; it has no file to list.
    facts.controllers.push("devices".to_string());
    if info.freezer == Some(true) {
        facts.controllers.push("freezer".to_string());
    }
    facts.root_cpu_stat = Some(info.root_cpu_stat);
    facts.freezer = info.freezer;
    facts.v2_freezer = info.freezer;
    facts.freezer_evidence.clone_from(&info.freezer_evidence);
    facts.v2_freezer_evidence = info.freezer_evidence;
    facts.swap_controller = info.swap_controller;
    facts.problems.extend(info.problems);
}

fn fill_v1(root: &HostRoot, mounts: &[MountEntry], facts: &mut CgroupFacts) {
    match root.read("/proc/cgroups") {
        Ok(t) => {
            for line in t.lines().filter(|l| !l.starts_with('#')) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 4 && f[3] != "0" {
                    facts.controllers.push(f[0].to_string());
                }
            }
        }
        Err(e) => facts.problems.push(node_util::error_chain(&e)),
    }
    let has = |c: &str| facts.controllers.iter().any(|x| x == c);
    let freezer = has("freezer");
    facts.freezer = Some(freezer);
    facts.freezer_evidence = if freezer {
        "freezer controller enabled in /proc/cgroups".to_string()
    } else {
        "freezer controller not enabled in /proc/cgroups".to_string()
    };
    let memory_mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == "memory"))
        .map(|m| m.mountpoint.clone());
    facts.swap_controller =
        memory_mount.map(|mp| root.exists(&format!("{mp}/memory.memsw.limit_in_bytes")));
    // A hybrid host still shows what its kernel's cgroup v2 can do on the unified mount; look
    // without creating anything there.
    if let Some(mp) = facts.hybrid_unified_mount.clone() {
        let info = probe_v2_mount(root, &mp, false);
        facts.root_cpu_stat = Some(info.root_cpu_stat);
        facts.v2_freezer = info.freezer;
        facts.v2_freezer_evidence = info.freezer_evidence;
    } else {
        facts.v2_freezer_evidence = "no cgroup2 mount".to_string();
    }
}

fn child_dirs(root: &HostRoot, rel: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_parsed_with_escapes() {
        let m = parse_mounts("tmpfs /run/my\\040dir tmpfs rw,nosuid 0 0\nbroken\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mountpoint, "/run/my dir");
        assert_eq!(m[0].options, vec!["rw", "nosuid"]);
    }

    /// Regression (fuzzing audit): `\777` is not a byte; decoding it overflowed u8 (a panic in
    /// debug builds, a wrong byte in release). It stays literal now; `\377` is still decoded.
    #[test]
    fn octal_escapes_beyond_a_byte_stay_literal() {
        let m = parse_mounts("tmpfs /a\\777b tmpfs rw 0 0\nx /\\400\\3777 tmpfs rw 0 0\n");
        assert_eq!(m[0].mountpoint, "/a\\777b");
        assert_eq!(m[1].mountpoint, "/\\400\u{fffd}7");
        assert_eq!(unescape_octal("\\101\\040\\134"), "A \\");
        assert_eq!(unescape_octal("end\\04"), "end\\04");
    }

    #[test]
    fn validators_mountpoint_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path());
        let v2 = parse_mounts("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
        assert_eq!(
            version_from_mounts(&root, &v2),
            Some((CgroupVersion::V2, "/sys/fs/cgroup".to_string()))
        );
        let hybrid = parse_mounts(
            "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n",
        );
        // Without a memory directory the tmpfs rule does not apply and the unified mount wins.
        assert_eq!(
            version_from_mounts(&root, &hybrid),
            Some((CgroupVersion::V2, "/sys/fs/cgroup/unified".to_string()))
        );
        std::fs::create_dir_all(dir.path().join("sys/fs/cgroup/memory")).unwrap();
        assert_eq!(
            version_from_mounts(&root, &hybrid),
            Some((CgroupVersion::V1, "/sys/fs/cgroup".to_string()))
        );
        assert_eq!(version_from_mounts(&root, &[]), None);
    }
}
