//! Validation of the final, merged configuration (the kubelet validates once, after merging,
//! so drop-ins may be partial). Every problem is reported, not just the first.

use crate::error::Violation;
use crate::gates::FeatureGates;
use crate::quantity::Quantity;
use crate::types::KubeletConfiguration;

struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, field: &str, message: String) {
        self.violations.push(Violation {
            field: field.to_owned(),
            message,
        });
    }

    fn check(&mut self, ok: bool, field: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(field, message());
        }
    }

    fn non_negative(&mut self, field: &str, flag: &str, value: i64) {
        self.check(value >= 0, field, || {
            format!("{field} (--{flag}) {value} must not be a negative number")
        });
    }

    fn one_of(&mut self, field: &str, value: &str, allowed: &[&str]) {
        self.check(allowed.contains(&value), field, || {
            format!("{value:?} is not one of {allowed:?}")
        });
    }
}

fn valid_port(p: i32) -> bool {
    (1..=65535).contains(&p)
}

/// Checks `kc` (defaults already applied) and the gates in force. Returns every violation.
pub fn validate(kc: &KubeletConfiguration, gates: &FeatureGates) -> Vec<Violation> {
    let mut c = Checker {
        violations: Vec::new(),
    };

    c.check(valid_port(kc.port), "port", || {
        format!(
            "port (--port) {} must be between 1 and 65535, inclusive",
            kc.port
        )
    });
    c.check(
        (0..=65535).contains(&kc.read_only_port),
        "readOnlyPort",
        || {
            format!(
                "readOnlyPort (--read-only-port) {} must be between 0 and 65535, inclusive",
                kc.read_only_port
            )
        },
    );
    if let Some(p) = kc.healthz_port {
        c.check(p == 0 || valid_port(p), "healthzPort", || {
            format!("healthzPort (--healthz-port) {p} must be between 1 and 65535, inclusive")
        });
    }
    if let Some(adj) = kc.oom_score_adj {
        c.check((-1000..=1000).contains(&adj), "oomScoreAdj", || {
            format!("oomScoreAdj (--oom-score-adj) {adj} must be between -1000 and 1000, inclusive")
        });
    }
    c.non_negative("registryBurst", "registry-burst", kc.registry_burst.into());
    c.non_negative(
        "registryPullQPS",
        "registry-qps",
        kc.registry_pull_qps.unwrap_or_default().into(),
    );
    c.non_negative("eventBurst", "event-burst", kc.event_burst.into());
    c.non_negative(
        "eventRecordQPS",
        "event-qps",
        kc.event_record_qps.unwrap_or_default().into(),
    );
    c.non_negative("kubeAPIBurst", "kube-api-burst", kc.kube_api_burst.into());
    c.non_negative(
        "kubeAPIQPS",
        "kube-api-qps",
        kc.kube_api_qps.unwrap_or_default().into(),
    );
    c.non_negative("maxOpenFiles", "max-open-files", kc.max_open_files);
    c.non_negative("maxPods", "max-pods", kc.max_pods.into());
    c.non_negative("podsPerCore", "pods-per-core", kc.pods_per_core.into());
    c.non_negative(
        "evictionMaxPodGracePeriod",
        "eviction-max-pod-grace-period",
        kc.eviction_max_pod_grace_period.into(),
    );
    c.check(
        kc.node_lease_duration_seconds > 0,
        "nodeLeaseDurationSeconds",
        || "nodeLeaseDurationSeconds must be greater than 0".to_owned(),
    );
    c.check(
        kc.node_status_update_frequency.as_nanos() > 0,
        "nodeStatusUpdateFrequency",
        || "nodeStatusUpdateFrequency (--node-status-update-frequency) must be positive".to_owned(),
    );
    c.check(
        kc.node_status_report_frequency.as_nanos() > 0,
        "nodeStatusReportFrequency",
        || "nodeStatusReportFrequency must be positive".to_owned(),
    );
    let high = kc.image_gc_high_threshold_percent.unwrap_or(85);
    let low = kc.image_gc_low_threshold_percent.unwrap_or(80);
    c.check((0..=100).contains(&high), "imageGCHighThresholdPercent", || {
        format!("imageGCHighThresholdPercent (--image-gc-high-threshold) {high} must be between 0 and 100, inclusive")
    });
    c.check((0..=100).contains(&low), "imageGCLowThresholdPercent", || {
        format!("imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be between 0 and 100, inclusive")
    });
    c.check(low < high || high == 100 && low == 100, "imageGCLowThresholdPercent", || {
        format!("imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {high}")
    });
    c.check(
        kc.image_maximum_gc_age.is_zero() || kc.image_maximum_gc_age > kc.image_minimum_gc_age,
        "imageMaximumGCAge",
        || {
            format!(
                "imageMaximumGCAge {} must be greater than imageMinimumGCAge {}",
                kc.image_maximum_gc_age, kc.image_minimum_gc_age
            )
        },
    );
    if let Some(n) = kc.node_status_max_images {
        c.check(n >= -1, "nodeStatusMaxImages", || {
            format!("nodeStatusMaxImages (--node-status-max-images) {n} must be -1 or greater")
        });
    }
    if let Some(period) = kc.cpu_cfs_quota_period {
        let ms = period.as_nanos();
        c.check((1_000_000..=1_000_000_000).contains(&ms), "cpuCFSQuotaPeriod", || {
            format!("cpuCFSQuotaPeriod (--cpu-cfs-quota-period) {period} must be between 1ms and 1sec, inclusive")
        });
    }
    if let Some(n) = kc.container_log_max_files {
        c.check(n >= 2, "containerLogMaxFiles", || {
            format!("containerLogMaxFiles (--container-log-max-files) {n} must be greater than 1")
        });
    }
    if let Some(n) = kc.container_log_max_workers {
        c.check(n >= 1, "containerLogMaxWorkers", || format!("containerLogMaxWorkers (--container-log-max-workers) {n} must be greater than or equal to 1"));
    }
    if let Some(i) = kc.container_log_monitor_interval {
        c.check(i.as_nanos() >= 3_000_000_000, "containerLogMonitorInterval", || {
            format!("containerLogMonitorInterval (--container-log-monitor-interval) {i} must be a positive time duration greater than or equal to 3s")
        });
    }
    if let Err(e) = Quantity::parse(&kc.container_log_max_size) {
        c.fail("containerLogMaxSize", e.to_string());
    }
    if let (Some(true), Some(n @ 2..)) = (kc.serialize_image_pulls, kc.max_parallel_image_pulls) {
        c.fail("maxParallelImagePulls", format!("maxParallelImagePulls (--max-parallel-image-pulls) {n} must be 1 or nil if serializeImagePulls (--serialize-image-pulls) is true"));
    }
    if let Some(n) = kc.max_parallel_image_pulls {
        c.check(n >= 1, "maxParallelImagePulls", || {
            format!("maxParallelImagePulls {n} must be a positive number")
        });
    }

    c.one_of("cgroupDriver", &kc.cgroup_driver, &["cgroupfs", "systemd"]);
    c.one_of(
        "hairpinMode",
        &kc.hairpin_mode,
        &["promiscuous-bridge", "hairpin-veth", "none"],
    );
    c.one_of(
        "authorization.mode",
        &kc.authorization.mode,
        &["AlwaysAllow", "Webhook"],
    );
    c.one_of(
        "cpuManagerPolicy",
        &kc.cpu_manager_policy,
        &["none", "static"],
    );
    c.one_of(
        "memoryManagerPolicy",
        &kc.memory_manager_policy,
        &["None", "Static"],
    );
    c.one_of(
        "topologyManagerPolicy",
        &kc.topology_manager_policy,
        &["none", "best-effort", "restricted", "single-numa-node"],
    );
    c.one_of(
        "topologyManagerScope",
        &kc.topology_manager_scope,
        &["container", "pod"],
    );
    c.one_of(
        "configMapAndSecretChangeDetectionStrategy",
        &kc.config_map_and_secret_change_detection_strategy,
        &["Get", "Cache", "Watch"],
    );
    c.one_of(
        "memorySwap.swapBehavior",
        &kc.memory_swap.swap_behavior,
        &["", "NoSwap", "LimitedSwap"],
    );
    c.one_of("logging.format", &kc.logging.format, &["text", "json"]);
    if !kc.image_pull_credentials_verification_policy.is_empty() {
        c.one_of(
            "imagePullCredentialsVerificationPolicy",
            &kc.image_pull_credentials_verification_policy,
            &[
                "NeverVerify",
                "NeverVerifyPreloadedImages",
                "NeverVerifyAllowlistedImages",
                "AlwaysVerify",
            ],
        );
    }
    if !kc.tls_min_version.is_empty() {
        c.one_of(
            "tlsMinVersion",
            &kc.tls_min_version,
            &[
                "VersionTLS10",
                "VersionTLS11",
                "VersionTLS12",
                "VersionTLS13",
            ],
        );
    }
    let enforce = kc.enforce_node_allocatable.as_deref().unwrap_or_default();
    for opt in enforce {
        c.one_of(
            "enforceNodeAllocatable",
            opt,
            &[
                "none",
                "pods",
                "system-reserved",
                "system-reserved-compressible",
                "kube-reserved",
                "kube-reserved-compressible",
            ],
        );
    }
    if enforce.iter().any(|o| o == "none") && enforce.len() > 1 {
        c.fail("enforceNodeAllocatable", "enforceNodeAllocatable (--enforce-node-allocatable) may not contain additional enforcements when \"none\" is specified".to_owned());
    }
    if enforce.iter().any(|o| o.starts_with("system-reserved"))
        && kc.system_reserved_cgroup.is_empty()
    {
        c.fail("systemReservedCgroup", "systemReservedCgroup (--system-reserved-cgroup) must be specified when \"system-reserved\" or \"system-reserved-compressible\" is in enforceNodeAllocatable".to_owned());
    }
    if enforce.iter().any(|o| o.starts_with("kube-reserved")) && kc.kube_reserved_cgroup.is_empty()
    {
        c.fail("kubeReservedCgroup", "kubeReservedCgroup (--kube-reserved-cgroup) must be specified when \"kube-reserved\" or \"kube-reserved-compressible\" is in enforceNodeAllocatable".to_owned());
    }
    if kc.cgroups_per_qos == Some(false) && enforce.iter().any(|o| o != "none") {
        c.fail("enforceNodeAllocatable", "enforceNodeAllocatable (--enforce-node-allocatable) is not supported unless cgroupsPerQOS (--cgroups-per-qos) is set to true".to_owned());
    }
    if !kc.system_cgroups.is_empty() && kc.cgroup_root.is_empty() {
        c.fail("systemCgroups", "systemCgroups (--system-cgroups) was specified and cgroupRoot (--cgroup-root) was not specified".to_owned());
    }

    for (field, map) in [
        ("systemReserved", &kc.system_reserved),
        ("kubeReserved", &kc.kube_reserved),
    ] {
        for (name, value) in map {
            match Quantity::parse(value) {
                Ok(q) if q.value() < 0.0 => c.fail(
                    &format!("{field}.{name}"),
                    format!("resource quantity for {name:?} cannot be negative: {value}"),
                ),
                Ok(_) => {}
                Err(e) => c.fail(&format!("{field}.{name}"), e.to_string()),
            }
        }
    }
    let hard = kc.eviction_hard.clone().unwrap_or_default();
    for (field, map) in [
        ("evictionHard", &hard),
        ("evictionSoft", &kc.eviction_soft),
        ("evictionMinimumReclaim", &kc.eviction_minimum_reclaim),
    ] {
        for (signal, value) in map {
            check_threshold(&mut c, &format!("{field}.{signal}"), value);
        }
    }
    for (signal, value) in &kc.eviction_soft_grace_period {
        if let Err(e) = crate::duration::Duration::parse(value) {
            c.fail(&format!("evictionSoftGracePeriod.{signal}"), e.to_string());
        }
    }
    for signal in kc.eviction_soft.keys() {
        c.check(
            kc.eviction_soft_grace_period.contains_key(signal),
            "evictionSoftGracePeriod",
            || {
                format!(
                    "evictionSoftGracePeriod must be specified for soft eviction threshold {signal}"
                )
            },
        );
    }
    for (name, value) in &kc.qos_reserved {
        let ok = value
            .strip_suffix('%')
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| p <= 100);
        c.check(ok, &format!("qosReserved.{name}"), || {
            format!("{value:?} must be a percentage between 0% and 100%")
        });
    }

    if kc.shutdown_grace_period.as_nanos() < 0 {
        c.fail(
            "shutdownGracePeriod",
            format!(
                "shutdownGracePeriod {} must be >= 0",
                kc.shutdown_grace_period
            ),
        );
    }
    if kc.shutdown_grace_period_critical_pods.as_nanos() < 0 {
        c.fail(
            "shutdownGracePeriodCriticalPods",
            format!(
                "shutdownGracePeriodCriticalPods {} must be >= 0",
                kc.shutdown_grace_period_critical_pods
            ),
        );
    }
    if kc.shutdown_grace_period_critical_pods > kc.shutdown_grace_period {
        c.fail(
            "shutdownGracePeriodCriticalPods",
            format!(
                "shutdownGracePeriodCriticalPods {} must be <= shutdownGracePeriod {}",
                kc.shutdown_grace_period_critical_pods, kc.shutdown_grace_period
            ),
        );
    }
    if !kc.shutdown_grace_period_by_pod_priority.is_empty()
        && (!kc.shutdown_grace_period.is_zero()
            || !kc.shutdown_grace_period_critical_pods.is_zero())
    {
        c.fail("shutdownGracePeriodByPodPriority", "Cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time".to_owned());
    }
    for (i, entry) in kc.shutdown_grace_period_by_pod_priority.iter().enumerate() {
        c.check(
            entry.shutdown_grace_period_seconds >= 0,
            &format!("shutdownGracePeriodByPodPriority[{i}].shutdownGracePeriodSeconds"),
            || "must be >= 0".to_owned(),
        );
    }
    if let Some(p) = kc.crash_loop_back_off.max_container_restart_period {
        c.check(
            (1_000_000_000..=300_000_000_000).contains(&p.as_nanos()),
            "crashLoopBackOff.maxContainerRestartPeriod",
            || format!("maxContainerRestartPeriod {p} must be between 1s and 300s, inclusive"),
        );
    }
    for (i, taint) in kc.register_with_taints.iter().enumerate() {
        c.one_of(
            &format!("registerWithTaints[{i}].effect"),
            &taint.effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        );
        c.check(
            !taint.key.is_empty(),
            &format!("registerWithTaints[{i}].key"),
            || "taint key must not be empty".to_owned(),
        );
    }
    for (i, r) in kc.reserved_memory.iter().enumerate() {
        for (ty, q) in &r.limits {
            c.check(
                ty == "memory" || ty.starts_with("hugepages-"),
                &format!("reservedMemory[{i}].limits.{ty}"),
                || {
                    format!(
                        "memory type {ty:?} is not supported, expected memory or hugepages-<size>"
                    )
                },
            );
            c.check(
                !q.is_zero(),
                &format!("reservedMemory[{i}].limits.{ty}"),
                || "reserved memory must not be zero".to_owned(),
            );
        }
    }
    if let Some(f) = kc.memory_throttling_factor {
        c.check(f > 0.0 && f <= 1.0, "memoryThrottlingFactor", || {
            format!(
                "memoryThrottlingFactor {f} must be greater than 0 and less than or equal to 1.0"
            )
        });
    }
    if let Some(ns) = &kc.user_namespaces
        && let Some(ids) = ns.ids_per_pod
    {
        c.check(
            ids > 0 && ids % 65536 == 0 && ids < (1 << 32),
            "userNamespaces.idsPerPod",
            || format!("idsPerPod {ids} must be a positive multiple of 65536 and less than 1<<32"),
        );
    }
    if let Some(t) = &kc.tracing
        && let Some(rate) = t.sampling_rate_per_million
    {
        c.check(
            (0..=1_000_000).contains(&rate),
            "tracing.samplingRatePerMillion",
            || format!("{rate} must be between 0 and 1000000, inclusive"),
        );
    }
    c.check(
        kc.container_runtime_endpoint.starts_with("unix://")
            || kc.container_runtime_endpoint.starts_with("tcp://")
            || kc.container_runtime_endpoint.starts_with("npipe://"),
        "containerRuntimeEndpoint",
        || {
            format!(
                "{:?} must be a unix:// (or tcp://, npipe://) endpoint",
                kc.container_runtime_endpoint
            )
        },
    );
    if kc.server_tls_bootstrap && !gates.enabled("RotateKubeletServerCertificate") {
        c.fail(
            "serverTLSBootstrap",
            "serverTLSBootstrap true requires feature gate RotateKubeletServerCertificate"
                .to_owned(),
        );
    }
    if !kc.memory_swap.swap_behavior.is_empty()
        && kc.memory_swap.swap_behavior != "NoSwap"
        && !gates.enabled("NodeSwap")
    {
        c.fail(
            "memorySwap.swapBehavior",
            "memorySwap.swapBehavior cannot be set when NodeSwap feature flag is disabled"
                .to_owned(),
        );
    }
    c.violations
}

/// An eviction threshold is a quantity or a percentage.
fn check_threshold(c: &mut Checker, field: &str, value: &str) {
    if let Some(pct) = value.strip_suffix('%') {
        let ok = pct.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p));
        c.check(ok, field, || {
            format!("invalid percentage {value:?}: expected a number between 0% and 100%")
        });
    } else {
        match Quantity::parse(value) {
            Ok(q) if q.value() < 0.0 => c.fail(
                field,
                format!("eviction threshold {value} cannot be negative"),
            ),
            Ok(_) => {}
            Err(e) => c.fail(field, e.to_string()),
        }
    }
}
