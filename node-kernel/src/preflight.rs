//! The preflight report: facts, validators and the feature table, as text or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::facts::{LiveFacts, NodeFacts, ProbeOptions, probe};
use crate::requirements::{EvalOptions, evaluate_all};
use crate::root::HostRoot;
use crate::swap::SwapDevice;
use crate::validators::{CheckLine, Status, ValidationOptions, kernel_release_supported, validate};
use crate::verdict::DecidedBy;

/// Preflight settings (kubelet options that change the verdict, and what to probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreflightOptions {
    /// The kubelet's `failSwapOn` (default true): swap on is an error.
    pub fail_swap_on: bool,
    /// The kubelet's `failCgroupV1` (default true in 1.35): a cgroup v1 host is an error.
    pub fail_cgroup_v1: bool,
    /// Feature-table switches (the nftables skip variable).
    pub eval: EvalOptions,
    /// What to probe.
    pub probe: ProbeOptions,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        Self {
            fail_swap_on: true,
            fail_cgroup_v1: true,
            eval: EvalOptions::default(),
            probe: ProbeOptions::default(),
        }
    }
}

impl PreflightOptions {
    /// Sets [`fail_swap_on`](Self::fail_swap_on).
    #[must_use]
    pub fn with_fail_swap_on(mut self, fail_swap_on: bool) -> Self {
        self.fail_swap_on = fail_swap_on;
        self
    }

    /// Sets [`fail_cgroup_v1`](Self::fail_cgroup_v1).
    #[must_use]
    pub fn with_fail_cgroup_v1(mut self, fail_cgroup_v1: bool) -> Self {
        self.fail_cgroup_v1 = fail_cgroup_v1;
        self
    }

    /// Sets [`eval`](Self::eval).
    #[must_use]
    pub fn with_eval(mut self, eval: EvalOptions) -> Self {
        self.eval = eval;
        self
    }

    /// Sets [`probe`](Self::probe).
    #[must_use]
    pub fn with_probe(mut self, probe: ProbeOptions) -> Self {
        self.probe = probe;
        self
    }
}

/// `kernel` in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelSection {
    /// The release string.
    pub release: Option<String>,
    /// `X.Y.Z` (more parts when the release has them), `null` if unparsable.
    pub version: Option<String>,
    /// Matches system-validators' supported-release list.
    pub supported: bool,
    /// Why the release or version is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `cgroup` in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupSection {
    /// 1 or 2 (`null` if not found).
    pub version: Option<u8>,
    /// Available controllers.
    pub controllers: Vec<String>,
    /// Mount point of the hierarchy.
    pub mountpoint: Option<String>,
    /// The cgroup2 mount of a hybrid v1 host.
    pub hybrid_unified_mount: Option<String>,
    /// Root `cpu.stat` on the cgroup2 hierarchy.
    pub root_cpu_stat: Option<bool>,
    /// Freezer for this hierarchy.
    pub freezer: Option<bool>,
    /// How the version was decided.
    pub detected_by: String,
}

/// `psi` in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PsiSection {
    /// True only when PSI is known to be available.
    pub available: bool,
    /// `available`, `unavailable` or `unknown`.
    pub state: &'static str,
    /// What decided.
    pub decided_by: DecidedBy,
    /// Why.
    pub reason: String,
}

/// `swap` in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapSection {
    /// Swap is on.
    pub enabled: bool,
    /// Total swap in bytes.
    pub total_bytes: u64,
    /// Total memory in bytes.
    pub mem_total_bytes: Option<u64>,
    /// Active swap areas.
    pub devices: Vec<SwapDevice>,
    /// Why swap could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `kernelConfig` in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelConfigSection {
    /// The file read, if any.
    pub source: Option<String>,
    /// Why none could be read.
    pub reason: Option<String>,
}

/// One feature row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureRow {
    /// Feature name.
    pub name: &'static str,
    /// true / false / null (unknown).
    pub available: Option<bool>,
    /// `probe`, `config` or `version`.
    pub decided_by: DecidedBy,
    /// Why.
    pub reason: String,
    /// The kernel the table asks for.
    pub min_kernel: Option<String>,
    /// Where it is documented.
    pub documented: &'static str,
}

/// The preflight report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The probed root.
    pub root: String,
    /// Whether it was the live system.
    pub live: bool,
    /// Kernel.
    pub kernel: KernelSection,
    /// Operating system name.
    pub os: Option<String>,
    /// cgroups.
    pub cgroup: CgroupSection,
    /// PSI.
    pub psi: PsiSection,
    /// Swap.
    pub swap: SwapSection,
    /// Kernel config.
    pub kernel_config: KernelConfigSection,
    /// The requirement table, evaluated.
    pub features: Vec<FeatureRow>,
    /// The validators' lines.
    pub checks: Vec<CheckLine>,
    /// Live probes.
    pub live_probes: LiveFacts,
    /// Failures (non-empty means preflight fails).
    pub errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// No errors.
    pub passed: bool,
}

impl Report {
    /// Builds the report from facts.
    #[must_use]
    pub fn from_facts(facts: &NodeFacts, opts: PreflightOptions) -> Self {
        let validation = validate(
            facts,
            ValidationOptions {
                fail_cgroup_v1: opts.fail_cgroup_v1,
            },
            opts.fail_swap_on,
        );
        let features = evaluate_all(facts, opts.eval)
            .into_iter()
            .map(|f| FeatureRow {
                name: f.name,
                available: f.verdict.available,
                decided_by: f.verdict.decided_by,
                reason: f.verdict.reason,
                min_kernel: f
                    .requirement
                    .min_kernel
                    .map(|p| crate::KernelVersion::from_parts(p).to_string()),
                documented: f.requirement.documented,
            })
            .collect();
        let (swap, swap_error) = match &facts.swap {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.clone())),
        };
        let psi = &facts.psi.verdict;
        Self {
            root: facts.root.clone(),
            live: facts.live,
            kernel: KernelSection {
                release: facts.kernel.release.clone(),
                version: facts.kernel.version.as_ref().map(ToString::to_string),
                supported: facts
                    .kernel
                    .release
                    .as_deref()
                    .is_some_and(kernel_release_supported),
                error: facts.kernel.error.clone(),
            },
            os: facts.os.clone(),
            cgroup: CgroupSection {
                version: facts.cgroup.version.map(|v| v.number()),
                controllers: facts.cgroup.controllers.clone(),
                mountpoint: facts.cgroup.mountpoint.clone(),
                hybrid_unified_mount: facts.cgroup.hybrid_unified_mount.clone(),
                root_cpu_stat: facts.cgroup.root_cpu_stat,
                freezer: facts.cgroup.freezer,
                detected_by: facts.cgroup.detected_by.clone(),
            },
            psi: PsiSection {
                available: psi.available == Some(true),
                state: psi.state(),
                decided_by: psi.decided_by,
                reason: psi.reason.clone(),
            },
            swap: SwapSection {
                enabled: swap.is_some_and(|s| s.enabled),
                total_bytes: swap.map_or(0, |s| s.total_bytes),
                mem_total_bytes: swap.and_then(|s| s.mem_total_bytes),
                devices: swap.map(|s| s.devices.clone()).unwrap_or_default(),
                error: swap_error,
            },
            kernel_config: KernelConfigSection {
                source: facts
                    .kernel_config
                    .config
                    .as_ref()
                    .map(|c| c.source.clone()),
                reason: facts.kernel_config.unavailable_reason(),
            },
            features,
            checks: validation.lines,
            live_probes: facts.live_probes.clone(),
            passed: validation.errors.is_empty(),
            errors: validation.errors,
            warnings: validation.warnings,
        }
    }

    /// The human report: the validators' `KEY: value` lines, then the feature table, then
    /// errors and warnings.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Validating node (root {}{})...",
            self.root,
            if self.live {
                ", live system"
            } else {
                ", fixture tree"
            }
        );
        for l in &self.checks {
            let _ = writeln!(s, "{}: {}", l.key, l.value);
        }
        let _ = writeln!(
            s,
            "\nFeatures (a probe beats the kernel config, which beats the version number):"
        );
        let width = self
            .features
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0);
        for f in &self.features {
            let state = match f.available {
                Some(true) => "available",
                Some(false) => "unavailable",
                None => "unknown",
            };
            let by = match f.decided_by {
                DecidedBy::Probe => "probe",
                DecidedBy::Config => "config",
                DecidedBy::Version => "version",
            };
            let _ = writeln!(s, "  {:width$}  {state:11}  {by:7}  {}", f.name, f.reason);
        }
        let _ = writeln!(s, "\nLive probes: {}", self.live_probes.note);
        for e in &self.errors {
            let _ = writeln!(s, "ERROR: {e}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "WARNING: {w}");
        }
        let _ = writeln!(
            s,
            "{}: {} error(s), {} warning(s)",
            if self.passed {
                "Preflight passed"
            } else {
                "Preflight failed"
            },
            self.errors.len(),
            self.warnings.len()
        );
        s
    }

    /// The lines judged bad.
    #[must_use]
    pub fn bad_checks(&self) -> Vec<&CheckLine> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Bad)
            .collect()
    }

    /// A feature row by name.
    #[must_use]
    pub fn feature(&self, name: &str) -> Option<&FeatureRow> {
        self.features.iter().find(|f| f.name == name)
    }

    /// A check line by key.
    #[must_use]
    pub fn check(&self, key: &str) -> Option<&CheckLine> {
        self.checks.iter().find(|c| c.key == key)
    }
}

/// Probes `root` and builds the report.
#[must_use]
pub fn preflight(root: &HostRoot, opts: PreflightOptions) -> Report {
    let facts = probe(root, opts.probe);
    Report::from_facts(&facts, opts)
}
