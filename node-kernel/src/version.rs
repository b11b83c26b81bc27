//! Kernel release parsing and comparison, the way the kubelet does it.
//!
//! The kubelet reads `/proc/sys/kernel/osrelease` and parses it with apimachinery's
//! `ParseGeneric`: an optional `v`, at least two dot-separated numbers (the first without a
//! leading zero), then anything at all. The distro suffix (`-513.el8.x86_64`, `-1051-azure`,
//! `-microsoft-standard-WSL2`) is ignored, which is exactly why backports are invisible to a
//! version check. Semver is the wrong tool here: it would read `-91-generic` as a pre-release
//! and order `5.15.0-91-generic` below `5.15.0`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// A parsed kernel version: the leading numeric components of a release string.
///
/// Comparison is numeric, component by component; a missing component counts as 0, so
/// `5.4 == 5.4.0`. The original release string is kept for display in reports.
#[derive(Debug, Clone)]
pub struct KernelVersion {
    components: Vec<u64>,
    release: String,
}

impl KernelVersion {
    /// Parses a release string such as `4.18.0-513.el8.x86_64` or `5.4`.
    ///
    /// # Errors
    /// [`Error::KernelVersion`] when there is no leading `X.Y`, the first component has a
    /// leading zero, or a component does not fit in 64 bits.
    pub fn parse(release: &str) -> Result<Self> {
        let err = |reason| Error::KernelVersion {
            value: release.to_string(),
            reason,
        };
        let s = release.trim_start();
        let s = s.strip_prefix('v').unwrap_or(s);
        // Take the longest run of `digits(.digits)*`; a trailing dot is not part of it.
        let bytes = s.as_bytes();
        let mut end = 0;
        let mut components = Vec::new();
        loop {
            let start = end;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if start == end {
                // `start` points just past a dot (or at the start): the run ends before it.
                break;
            }
            let digits = &s[start..end];
            let value = digits
                .parse::<u64>()
                .map_err(|_| err("version component does not fit in 64 bits"))?;
            if components.is_empty() && digits.len() > 1 && digits.starts_with('0') {
                return Err(err("the first version component has a leading zero"));
            }
            components.push(value);
            if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
                end += 1;
            } else {
                break;
            }
        }
        if components.is_empty() {
            return Err(err("expected a leading version number like 5.15 or 4.18.0"));
        }
        if components.len() < 2 {
            return Err(err("expected at least two version components (X.Y)"));
        }
        Ok(Self {
            components,
            release: release.trim().to_string(),
        })
    }

    /// Builds a version from numbers (for constants and tests).
    #[must_use]
    pub fn from_parts(parts: &[u64]) -> Self {
        let components = parts.to_vec();
        let release = join(&components);
        Self {
            components,
            release,
        }
    }

    /// The numeric components as parsed (at least two).
    #[must_use]
    pub fn components(&self) -> &[u64] {
        &self.components
    }

    /// The release string this was parsed from (trimmed).
    #[must_use]
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Major version.
    #[must_use]
    pub fn major(&self) -> u64 {
        self.components.first().copied().unwrap_or(0)
    }

    /// Minor version.
    #[must_use]
    pub fn minor(&self) -> u64 {
        self.components.get(1).copied().unwrap_or(0)
    }

    /// Patch level (0 for a two-part release).
    #[must_use]
    pub fn patch(&self) -> u64 {
        self.components.get(2).copied().unwrap_or(0)
    }

    /// `self >= other`, the kubelet's `AtLeast`.
    #[must_use]
    pub fn at_least(&self, other: &KernelVersion) -> bool {
        self >= other
    }

    /// The numeric version padded to at least three components: `5.4` -> `5.4.0`,
    /// `5.15.153.1` stays `5.15.153.1`.
    #[must_use]
    pub fn numeric(&self) -> String {
        let mut parts = self.components.clone();
        while parts.len() < 3 {
            parts.push(0);
        }
        join(&parts)
    }
}

fn join(parts: &[u64]) -> String {
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

impl FromStr for KernelVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for KernelVersion {
    /// Displays the numeric part only (`4.18.0`), like the kubelet's `Version.String()` for a
    /// generic version, padded to three components.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.numeric())
    }
}

impl PartialEq for KernelVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for KernelVersion {}

impl PartialOrd for KernelVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KernelVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.components.len().max(other.components.len());
        for i in 0..n {
            let a = self.components.get(i).copied().unwrap_or(0);
            let b = other.components.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.numeric())
    }
}

/// Kernel versions the kubelet and kube-proxy compare against (`pkg/util/kernel/constants.go`),
/// plus the documented minimums from the node reference that have no constant upstream.
pub mod constants {
    /// `net.ipv4.ip_local_reserved_ports` became per network namespace.
    pub const IP_LOCAL_RESERVED_PORTS_NAMESPACED: &[u64] = &[3, 16];
    /// kube-proxy ipvs: `net.ipv4.vs.conn_reuse_mode` exists.
    pub const IPVS_CONN_REUSE_MODE_MIN_SUPPORTED: &[u64] = &[4, 1];
    /// `tcp_keepalive_time`, `tcp_keepalive_intvl`, `tcp_keepalive_probes` became per netns.
    pub const TCP_KEEPALIVE_NAMESPACED: &[u64] = &[4, 5];
    /// `tcp_fin_timeout` became per netns.
    pub const TCP_FIN_TIMEOUT_NAMESPACED: &[u64] = &[4, 6];
    /// `tcp_rmem` and `tcp_wmem` became per netns.
    pub const TCP_MEMORY_NAMESPACED: &[u64] = &[4, 15];
    /// `tcp_slow_start_after_idle` became per netns.
    pub const TCP_SLOW_START_AFTER_IDLE_NAMESPACED: &[u64] = &[4, 15];
    /// `tcp_notsent_lowat` became per netns.
    pub const TCP_NOTSENT_LOWAT_NAMESPACED: &[u64] = &[4, 6];
    /// kube-proxy ipvs connection-reuse fix.
    pub const IPVS_CONN_REUSE_MODE_FIXED: &[u64] = &[5, 9];
    /// kube-proxy nftables mode (stands in for "the distro's nft is >= 1.0.1").
    pub const NFTABLES_KUBE_PROXY: &[u64] = &[5, 13];
    /// The floor when `KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK` is set (docs: test/dev only).
    pub const NFTABLES_KUBE_PROXY_SKIP_FLOOR: &[u64] = &[5, 4];
    /// tmpfs `noswap` (the kubelet's constant; the seed says 6.3).
    pub const TMPFS_NOSWAP: &[u64] = &[6, 4];
    /// memory.high throttling without the reclaim livelock (MemoryQoS).
    pub const MEMORY_QOS_MIN: &[u64] = &[5, 9];
    /// PSI was merged.
    pub const PSI: &[u64] = &[4, 20];
    /// Root `cpu.stat` on cgroup v2.
    pub const CGROUP_V2_ROOT_CPU_STAT: &[u64] = &[5, 8];
    /// The cgroup v2 freezer (`cgroup.freeze`); runc advises against older kernels.
    pub const CGROUP_V2_FREEZER: &[u64] = &[5, 2];
    /// `mount_setattr(2)` with `AT_RECURSIVE` (recursive read-only mounts).
    pub const RECURSIVE_READ_ONLY_MOUNTS: &[u64] = &[5, 12];
    /// idmapped tmpfs mounts, the documented floor for pod user namespaces.
    pub const USER_NAMESPACES_IDMAP_TMPFS: &[u64] = &[6, 3];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        KernelVersion::parse(s).unwrap()
    }

    #[test]
    fn distro_suffixes_are_ignored() {
        let cases: &[(&str, &[u64])] = &[
            ("5.15.0-91-generic", &[5, 15, 0]),
            ("4.18.0-513.el8.x86_64", &[4, 18, 0]),
            ("6.8.0-1015-aws", &[6, 8, 0]),
            ("5.15.153.1-microsoft-standard-WSL2", &[5, 15, 153, 1]),
            ("5.15.0-1051-azure", &[5, 15, 0]),
            ("6.6.32-linuxkit", &[6, 6, 32]),
            ("5.4.0-1.el7.elrepo", &[5, 4, 0]),
            ("5.4.0-1.el7.elrepo.x86_64", &[5, 4, 0]),
            ("4.4.0-22621-Microsoft", &[4, 4, 0]),
            ("6.18.44-fc-v669", &[6, 18, 44]),
            ("6.6.74+rpt-rpi-2712", &[6, 6, 74]),
            ("5.4", &[5, 4]),
            ("  v5.10.1\n", &[5, 10, 1]),
            ("5.10.", &[5, 10]),
            ("3.10.0-1160.el7.x86_64", &[3, 10, 0]),
            ("6.1.0-rc7", &[6, 1, 0]),
            ("4.19.0+1", &[4, 19, 0]),
        ];
        for (release, want) in cases {
            assert_eq!(v(release).components(), *want, "{release}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "   ",
            "Linux",
            "5",
            "5-generic",
            "v",
            ".5.4",
            "05.4",
            "x5.4",
            "99999999999999999999999.1",
        ] {
            let err = KernelVersion::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::KernelVersion { ref value, .. } if value == bad),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn comparison_pads_missing_components_with_zero() {
        assert_eq!(v("5.4"), v("5.4.0"));
        assert_eq!(v("5.4"), v("5.4.0-91-generic"));
        assert_eq!(
            v("5.15.0-91-generic"),
            v("5.15"),
            "a suffix is not a pre-release"
        );
        assert!(v("5.15.0-91-generic").at_least(&v("5.15.0")));
        assert!(!v("4.18.0-513.el8.x86_64").at_least(&v("4.20")));
        assert!(v("5.10") < v("5.13"));
        assert!(v("5.9") < v("5.10"), "numeric, not lexicographic");
        assert!(v("5.15.153.1-microsoft-standard-WSL2") > v("5.15.153"));
        assert!(v("6.4").at_least(&KernelVersion::from_parts(constants::TMPFS_NOSWAP)));
    }

    #[test]
    fn numeric_form_is_at_least_three_parts() {
        assert_eq!(v("5.4").numeric(), "5.4.0");
        assert_eq!(v("4.18.0-513.el8.x86_64").to_string(), "4.18.0");
        assert_eq!(
            v("5.15.153.1-microsoft-standard-WSL2").numeric(),
            "5.15.153.1"
        );
        assert_eq!(v(" 6.6.32-linuxkit\n").release(), "6.6.32-linuxkit");
        assert_eq!(
            serde_json::to_string(&v("5.4.0-1.el7.elrepo")).unwrap(),
            "\"5.4.0\""
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = KernelVersion::parse(&s);
        }

        #[test]
        fn suffix_never_changes_the_order(a in 0u64..20, b in 0u64..300, c in 0u64..300,
                                           d in 0u64..20, e in 0u64..300, suffix in "[-+_a-zA-Z][-.+_a-zA-Z0-9]{0,20}") {
            let x = KernelVersion::parse(&format!("{a}.{b}.{c}{suffix}")).unwrap();
            let y = KernelVersion::parse(&format!("{d}.{e}")).unwrap();
            let want = (a, b, c).cmp(&(d, e, 0));
            proptest::prop_assert_eq!(x.cmp(&y), want);
        }
    }
}
