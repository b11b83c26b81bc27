//! What this workspace's agent (`node-agent`) does with each `KubeletConfiguration` field: the
//! fields it accepts (they load, validate and show in `/configz`) but does not act on, each
//! with what happens instead. The agent warns once at startup about those that are set
//! ([`not_acted_on_set`]); `nodectl config --explain` lists them all ([`NOT_ACTED_ON`]).
//!
//! ```
//! use node_config::{Loader, support};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("kubelet.yaml");
//! std::fs::write(&path, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nimageGCHighThresholdPercent: 90\nport: 10251\n")?;
//! let loaded = Loader::new().config_file(&path).load()?;
//! let set = support::not_acted_on_set(&loaded.config)?;
//! assert_eq!(set.iter().map(|f| f.name).collect::<Vec<_>>(), ["imageGCHighThresholdPercent"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(test)]
use crate::Loader;
use crate::{ConfigError, FeatureGates, KubeletConfiguration, set_defaults};

/// A field the agent accepts without acting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotActedOn {
    /// The field's name in the configuration file (`imageGCHighThresholdPercent`).
    pub name: &'static str,
    /// What the agent does instead.
    pub note: &'static str,
}

const fn f(name: &'static str, note: &'static str) -> NotActedOn {
    NotActedOn { name, note }
}

const NO_CGROUPS: &str = "the agent creates no pod or QoS cgroups; the runtime places containers";
const NO_EVICTION: &str =
    "no eviction manager: evictionHard feeds the pressure conditions and allocatable only";
const NO_IMAGE_GC: &str = "no image garbage collection";
const NO_DEBUG_ROUTES: &str = "the HTTPS API has no profiling or debug-flag routes";
const NO_NETWORK: &str =
    "pod networking is the runtime's CNI plugins' (no kubelet iptables rules or hairpin setup)";

/// Every top-level field the agent accepts but does not act on, in the kubelet's field order.
pub const NOT_ACTED_ON: &[NotActedOn] = &[
    f("enableContentionProfiling", NO_DEBUG_ROUTES),
    f("enableProfilingHandler", NO_DEBUG_ROUTES),
    f("enableDebugFlagsHandler", NO_DEBUG_ROUTES),
    f("staticPodURL", "static pods come from staticPodPath only"),
    f(
        "staticPodURLHeader",
        "static pods come from staticPodPath only",
    ),
    f(
        "httpCheckFrequency",
        "static pods come from staticPodPath only",
    ),
    f(
        "rotateCertificates",
        "no client certificate rotation: the kubeconfig's credentials are used as they are",
    ),
    f(
        "serverTLSBootstrap",
        "no serving certificate from the certificates API: tlsCertFile/tlsPrivateKeyFile or a self-signed certificate",
    ),
    f(
        "tlsCurvePreferences",
        "rustls' default key exchange groups are used",
    ),
    f("registryPullQPS", "image pulls are not rate-limited"),
    f("registryBurst", "image pulls are not rate-limited"),
    f(
        "imagePullCredentialsVerificationPolicy",
        "no image pull credential verification",
    ),
    f(
        "preloadedImagesVerificationAllowlist",
        "no image pull credential verification",
    ),
    f("eventRecordQPS", "no events are sent"),
    f("eventBurst", "no events are sent"),
    f(
        "enableControllerAttachDetach",
        "the Node always carries volumes.kubernetes.io/controller-managed-attach-detach=true; no attach/detach",
    ),
    f("nodeStatusMaxImages", "the Node status lists no images"),
    f("imageMinimumGCAge", NO_IMAGE_GC),
    f("imageMaximumGCAge", NO_IMAGE_GC),
    f("imageGCHighThresholdPercent", NO_IMAGE_GC),
    f("imageGCLowThresholdPercent", NO_IMAGE_GC),
    f("volumeStatsAggPeriod", "no volume statistics"),
    f("volumePluginDir", "no FlexVolume plugins"),
    f("kubeletCgroups", NO_CGROUPS),
    f("systemCgroups", NO_CGROUPS),
    f("cgroupRoot", NO_CGROUPS),
    f("cgroupsPerQOS", NO_CGROUPS),
    f("cgroupDriver", NO_CGROUPS),
    f(
        "cpuManagerPolicy",
        "only cpu_manager_state is checked against it at startup; containers are not pinned to CPUs",
    ),
    f(
        "cpuManagerPolicyOptions",
        "containers are not pinned to CPUs",
    ),
    f(
        "cpuManagerReconcilePeriod",
        "containers are not pinned to CPUs",
    ),
    f(
        "memoryManagerPolicy",
        "only memory_manager_state is checked against it at startup; containers are not pinned to NUMA nodes",
    ),
    f(
        "topologyManagerPolicy",
        "no topology manager: device, CPU and memory placement is not aligned",
    ),
    f("topologyManagerScope", "no topology manager"),
    f("topologyManagerPolicyOptions", "no topology manager"),
    f("qosReserved", "no QoS cgroups (MemoryQoS)"),
    f("hairpinMode", NO_NETWORK),
    f("podPidsLimit", "no per-pod PID limit"),
    f("runOnce", "the agent always runs as a daemon"),
    f("cpuCFSQuota", "CPU limits always set a CFS quota"),
    f(
        "cpuCFSQuotaPeriod",
        "CPU limits always use a 100ms CFS period",
    ),
    f(
        "maxOpenFiles",
        "the agent's open file limit is left as started",
    ),
    f("contentType", "the API server client speaks JSON"),
    f("kubeAPIQPS", "API server requests are not rate-limited"),
    f("kubeAPIBurst", "API server requests are not rate-limited"),
    f(
        "serializeImagePulls",
        "images are pulled one at a time, as pods are synced one after another",
    ),
    f(
        "maxParallelImagePulls",
        "images are pulled one at a time, as pods are synced one after another",
    ),
    f("evictionSoft", NO_EVICTION),
    f("evictionSoftGracePeriod", NO_EVICTION),
    f("evictionMaxPodGracePeriod", NO_EVICTION),
    f("evictionMinimumReclaim", NO_EVICTION),
    f("mergeDefaultEvictionSettings", NO_EVICTION),
    f(
        "oomScoreAdj",
        "the agent's own OOM score is left as started",
    ),
    f("makeIPTablesUtilChains", NO_NETWORK),
    f("iptablesMasqueradeBit", NO_NETWORK),
    f("iptablesDropBit", NO_NETWORK),
    f(
        "protectKernelDefaults",
        "kernel tunables are neither checked nor changed",
    ),
    f("kernelMemcgNotification", NO_EVICTION),
    f("systemReservedCgroup", NO_CGROUPS),
    f("kubeReservedCgroup", NO_CGROUPS),
    f(
        "enforceNodeAllocatable",
        "allocatable is reported but not enforced with cgroups",
    ),
    f("reservedSystemCPUs", "containers are not pinned to CPUs"),
    f("showHiddenMetricsForVersion", "no hidden metrics"),
    f(
        "reservedMemory",
        "no memory manager: containers are not pinned to NUMA nodes",
    ),
    f(
        "enableSystemLogQuery",
        "no node log query (journal): /logs/ serves the files of /var/log only",
    ),
    f("memoryThrottlingFactor", "no MemoryQoS"),
    f(
        "logging",
        "log format and verbosity come from RUST_LOG and -v",
    ),
    f("tracing", "no OpenTelemetry tracing"),
    f("providerID", "the Node's spec.providerID is not set"),
    f(
        "singleProcessOOMKill",
        "the runtime's OOM group-kill default applies",
    ),
    f(
        "userNamespaces",
        "pods with hostUsers: false get no user namespace mapping from the agent",
    ),
];

/// The top-level fields of `config` (by their file names, in the kubelet's order) whose value
/// differs from a configuration loaded from nothing (the kubelet's defaults).
pub fn set_fields(config: &KubeletConfiguration) -> Result<Vec<String>, ConfigError> {
    // The v1beta1 defaults under the same feature gates (what a `--config` file starts from),
    // not the command-line defaults a kubelet without `--config` gets.
    let mut defaults = KubeletConfiguration::default();
    set_defaults(
        &mut defaults,
        &FeatureGates::new_lossy(&config.feature_gates),
    );
    crate::defaults::default_eviction_hard_if_unset(&mut defaults);
    defaults.api_version.clone_from(&config.api_version);
    defaults.kind.clone_from(&config.kind);
    let to_map = |c: &KubeletConfiguration| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (set, defaults) = (to_map(config), to_map(&defaults));
    Ok(set
        .into_iter()
        .filter(|(k, v)| defaults.get(k) != Some(v))
        .map(|(k, _)| k)
        .collect())
}

/// The fields of [`NOT_ACTED_ON`] that `config` sets to something other than the default: what
/// the agent's startup warning names.
pub fn not_acted_on_set(config: &KubeletConfiguration) -> Result<Vec<NotActedOn>, ConfigError> {
    let set = set_fields(config)?;
    Ok(NOT_ACTED_ON
        .iter()
        .filter(|f| set.iter().any(|s| s == f.name))
        .copied()
        .collect())
}

/// The startup warning naming every field of `config` that is accepted without being acted on
/// (`None` when there is none), pointing at `nodectl config --explain` for why.
///
/// # Errors
/// As [`not_acted_on_set`].
pub fn not_acted_on_warning(config: &KubeletConfiguration) -> Result<Option<String>, ConfigError> {
    let fields = not_acted_on_set(config)?;
    if fields.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    Ok(Some(format!(
        "accepted but not acted on: {} (`nodectl config --explain` says why)",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strictness;

    /// Every name is a real field (the strict decoder knows it) and appears once.
    #[test]
    fn every_entry_names_a_field_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let mut seen = std::collections::BTreeSet::new();
        for entry in NOT_ACTED_ON {
            assert!(seen.insert(entry.name), "{} listed twice", entry.name);
            assert!(!entry.note.is_empty());
            std::fs::write(
                &path,
                format!(
                    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{}: null\n",
                    entry.name
                ),
            )
            .unwrap();
            let result = Loader::new()
                .config_file(&path)
                .strictness(Strictness::Strict)
                .load();
            if let Err(e) = result {
                let text = e.to_string();
                assert!(!text.contains("unknown field"), "{}: {text}", entry.name);
            }
        }
    }

    /// Container log rotation runs (node-runtime's `log_rotation`): its fields are acted on.
    #[test]
    fn log_rotation_fields_are_acted_on() {
        for name in [
            "containerLogMaxSize",
            "containerLogMaxFiles",
            "containerLogMaxWorkers",
            "containerLogMonitorInterval",
        ] {
            assert!(NOT_ACTED_ON.iter().all(|f| f.name != name), "{name}");
        }
    }

    #[test]
    fn defaults_set_nothing_and_changes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        )
        .unwrap();
        let defaults = Loader::new().config_file(&path).load().unwrap().config;
        assert_eq!(set_fields(&defaults).unwrap(), Vec::<String>::new());
        assert!(not_acted_on_set(&defaults).unwrap().is_empty());
        assert_eq!(not_acted_on_warning(&defaults).unwrap(), None);
        let mut c = defaults;
        c.image_gc_high_threshold_percent = Some(90);
        c.port = 10251;
        c.cluster_dns = vec!["10.96.0.10".into()];
        c.node_status_max_images = Some(10);
        assert_eq!(
            set_fields(&c).unwrap(),
            [
                "port",
                "clusterDNS",
                "imageGCHighThresholdPercent",
                "nodeStatusMaxImages"
            ]
        );
        let names: Vec<&str> = not_acted_on_set(&c)
            .unwrap()
            .iter()
            .map(|f| f.name)
            .collect();
        // In the table's (the kubelet's) order; `port` and `clusterDNS` are acted on.
        assert_eq!(
            names,
            ["nodeStatusMaxImages", "imageGCHighThresholdPercent"]
        );
        assert_eq!(
            not_acted_on_warning(&c).unwrap().as_deref(),
            Some(
                "accepted but not acted on: nodeStatusMaxImages, imageGCHighThresholdPercent \
                 (`nodectl config --explain` says why)"
            )
        );
    }
}
