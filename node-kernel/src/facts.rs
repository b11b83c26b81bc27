//! Everything the probes found about a node, gathered in one pass.

use serde::Serialize;

use crate::cgroup::{CgroupFacts, probe_cgroups};
use crate::cmdline::KernelCmdline;
use crate::kconfig::{ConfigLookup, ConfigValue, find_kernel_config};
use crate::live::{self, LiveAnswer};
use crate::nft::{NftFacts, probe_nft};
use crate::psi::{PsiFacts, assess_psi, probe_pressure};
use crate::root::HostRoot;
use crate::swap::{SwapFacts, probe_swap};
use crate::version::{KernelVersion, constants};
use node_util::error_chain;

/// What to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// Run `nft --version` (live root only). It forks a process, so it dominates probe time.
    pub run_nft: bool,
    /// Run the live-kernel probes (syscall, test mount, temporary cgroup) on the live root.
    pub live_probes: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            run_nft: true,
            live_probes: true,
        }
    }
}

impl ProbeOptions {
    /// Sets [`run_nft`](Self::run_nft).
    #[must_use]
    pub fn with_run_nft(mut self, run_nft: bool) -> Self {
        self.run_nft = run_nft;
        self
    }

    /// Sets [`live_probes`](Self::live_probes).
    #[must_use]
    pub fn with_live_probes(mut self, live_probes: bool) -> Self {
        self.live_probes = live_probes;
        self
    }
}

/// The kernel release and its parsed version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelFacts {
    /// The release string (`/proc/sys/kernel/osrelease`, or `uname -r` on the live root).
    pub release: Option<String>,
    /// The parsed version, `None` if the release is missing or unparsable.
    pub version: Option<KernelVersion>,
    /// Why `release` or `version` is missing.
    pub error: Option<String>,
}

/// User-namespace limits.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNamespaceFacts {
    /// `/proc/sys/user/max_user_namespaces` (0 disables user namespaces).
    pub max_user_namespaces: Option<u64>,
    /// Debian/Ubuntu `kernel.unprivileged_userns_clone`, when present.
    pub unprivileged_userns_clone: Option<bool>,
    /// Ubuntu `kernel.apparmor_restrict_unprivileged_userns`, when present.
    pub apparmor_restrict_unprivileged_userns: Option<bool>,
    /// `CONFIG_USER_NS`, when the kernel config is readable.
    pub config_user_ns: Option<ConfigValue>,
}

/// Results of the live-kernel probes; `None` fields were not run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveFacts {
    /// Whether live probes ran at all, and if not, why.
    pub note: String,
    /// `mount_setattr(2)` exists.
    pub mount_setattr: Option<bool>,
    /// What the `mount_setattr` test call returned.
    pub mount_setattr_detail: Option<String>,
    /// This process runs inside a user namespace.
    pub in_user_namespace: Option<bool>,
    /// The tmpfs `noswap` test mount result (only made on kernels older than 6.4).
    pub tmpfs_noswap: Option<bool>,
    /// What the tmpfs test mount did.
    pub tmpfs_noswap_detail: Option<String>,
}

/// All node facts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    /// The probed root.
    pub root: String,
    /// Whether it is the live system.
    pub live: bool,
    /// `/proc/sys/kernel/ostype` (`Linux`), or `uname -s` on the live root.
    pub os: Option<String>,
    /// Kernel release and version.
    pub kernel: KernelFacts,
    /// The kernel command line, when readable.
    #[serde(skip)]
    pub cmdline: Option<KernelCmdline>,
    /// The kernel config lookup.
    pub kernel_config: ConfigLookup,
    /// cgroups.
    pub cgroup: CgroupFacts,
    /// PSI.
    pub psi: PsiFacts,
    /// Swap, or why it could not be read.
    pub swap: Result<SwapFacts, String>,
    /// User namespaces.
    pub user_namespaces: UserNamespaceFacts,
    /// nftables.
    pub nft: NftFacts,
    /// Live-kernel probes.
    pub live_probes: LiveFacts,
}

fn read_trimmed(root: &HostRoot, rel: &str) -> Result<Option<String>, String> {
    root.read_optional(rel)
        .map(|o| o.map(|s| s.trim().to_string()))
        .map_err(|e| error_chain(&e))
}

fn read_number(root: &HostRoot, rel: &str) -> Option<u64> {
    read_trimmed(root, rel)
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
}

fn probe_kernel(root: &HostRoot) -> (KernelFacts, Option<String>) {
    let uname = || nix::sys::utsname::uname().ok();
    let release = match read_trimmed(root, "/proc/sys/kernel/osrelease") {
        Ok(Some(r)) => Ok(r),
        other if root.is_live() => match uname() {
            Some(u) => Ok(u.release().to_string_lossy().into_owned()),
            None => Err(format!("{other:?}")),
        },
        Ok(None) => Err(format!(
            "{} does not exist",
            root.join("/proc/sys/kernel/osrelease").display()
        )),
        Err(e) => Err(e),
    };
    let os = match read_trimmed(root, "/proc/sys/kernel/ostype") {
        Ok(Some(o)) => Some(o),
        _ if root.is_live() => uname().map(|u| u.sysname().to_string_lossy().into_owned()),
        _ => None,
    };
    let kernel = match release {
        Ok(r) => match KernelVersion::parse(&r) {
            Ok(v) => KernelFacts {
                release: Some(r),
                version: Some(v),
                error: None,
            },
            Err(e) => KernelFacts {
                release: Some(r),
                version: None,
                error: Some(e.to_string()),
            },
        },
        Err(e) => KernelFacts {
            release: None,
            version: None,
            error: Some(e),
        },
    };
    (kernel, os)
}

fn probe_userns(root: &HostRoot, lookup: &ConfigLookup) -> UserNamespaceFacts {
    let flag = |rel: &str| read_number(root, rel).map(|n| n != 0);
    UserNamespaceFacts {
        max_user_namespaces: read_number(root, "/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone: flag("/proc/sys/kernel/unprivileged_userns_clone"),
        apparmor_restrict_unprivileged_userns: flag(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        ),
        config_user_ns: lookup.config.as_ref().map(|c| c.get("USER_NS")),
    }
}

fn probe_live(root: &HostRoot, opts: ProbeOptions, version: Option<&KernelVersion>) -> LiveFacts {
    if !root.is_live() {
        return LiveFacts {
            note: format!(
                "not run: {} is a fixture tree; syscall and test-mount probes need the live kernel",
                root.path().display()
            ),
            ..LiveFacts::default()
        };
    }
    if !opts.live_probes {
        return LiveFacts {
            note: "not run: disabled".to_string(),
            ..LiveFacts::default()
        };
    }
    let mut f = LiveFacts {
        note: "ran against the live kernel".to_string(),
        ..LiveFacts::default()
    };
    let (answer, detail) = live::probe_mount_setattr();
    f.mount_setattr = match answer {
        LiveAnswer::Supported => Some(true),
        LiveAnswer::Unsupported => Some(false),
        LiveAnswer::Inconclusive => None,
    };
    f.mount_setattr_detail = Some(detail);
    let in_userns = live::in_user_namespace();
    f.in_user_namespace = Some(in_userns);
    // Like the kubelet: no test mount inside a user namespace or on 6.4+.
    let new_enough =
        version.is_some_and(|v| v.at_least(&KernelVersion::from_parts(constants::TMPFS_NOSWAP)));
    if !in_userns && !new_enough {
        match live::probe_tmpfs_noswap() {
            Ok(ok) => {
                f.tmpfs_noswap = Some(ok);
                f.tmpfs_noswap_detail = Some(if ok {
                    "mount -t tmpfs -o noswap succeeded".to_string()
                } else {
                    "mount -t tmpfs -o noswap failed with EINVAL".to_string()
                });
            }
            Err(e) => f.tmpfs_noswap_detail = Some(error_chain(&e)),
        }
    }
    f
}

/// Probes the node under `root`. Never fails as a whole: each part records what it could not
/// read, and the evaluation turns missing evidence into "unknown".
#[must_use]
pub fn probe(root: &HostRoot, opts: ProbeOptions) -> NodeFacts {
    let (kernel, os) = probe_kernel(root);
    let cmdline = root
        .read_optional("/proc/cmdline")
        .ok()
        .flatten()
        .map(|t| KernelCmdline::parse(&t));
    let kernel_config = match &kernel.release {
        Some(r) => find_kernel_config(root, r),
        None => ConfigLookup {
            config: None,
            searched: Vec::new(),
            errors: vec!["kernel release unknown: cannot look for its config".to_string()],
        },
    };
    let cgroup = probe_cgroups(root);
    let psi = assess_psi(
        &probe_pressure(root),
        kernel_config.config.as_ref(),
        cmdline.as_ref(),
        kernel.version.as_ref(),
    );
    let swap = probe_swap(root).map_err(|e| error_chain(&e));
    let user_namespaces = probe_userns(root, &kernel_config);
    let nft = probe_nft(
        root,
        kernel_config.config.as_ref(),
        opts.run_nft && root.is_live(),
    );
    let live_probes = probe_live(root, opts, kernel.version.as_ref());
    NodeFacts {
        root: root.path().display().to_string(),
        live: root.is_live(),
        os,
        kernel,
        cmdline,
        kernel_config,
        cgroup,
        psi,
        swap,
        user_namespaces,
        nft,
        live_probes,
    }
}
