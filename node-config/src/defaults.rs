//! v1beta1 defaulting, as `SetDefaults_KubeletConfiguration` does it, and the kubelet's legacy
//! flag defaults (the starting point when no `--config` file is given).

use std::collections::BTreeMap;

use crate::duration::{Duration, TimeOrMetaDuration};
use crate::gates::FeatureGates;
use crate::quantity::Quantity;
use crate::types::KubeletConfiguration;

/// Default `containerRuntimeEndpoint`.
pub const DEFAULT_CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
/// Default `volumePluginDir`.
pub const DEFAULT_VOLUME_PLUGIN_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/";
/// Default `podLogsDir`.
pub const DEFAULT_POD_LOGS_DIR: &str = "/var/log/pods";
/// Default `resolvConf`.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// The kubelet's secured port.
pub const DEFAULT_PORT: i32 = 10250;
/// The read-only port the kubelet's command line (not the config file) defaults to.
pub const LEGACY_READ_ONLY_PORT: i32 = 10255;
/// The kubelet process's own oom_score_adj.
pub const KUBELET_OOM_SCORE_ADJ: i32 = -999;

/// The Linux `evictionHard` defaults, applied when the field is nil after loading.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("imagefs.available", "15%"),
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn set_if_zero(d: &mut Duration, value: Duration) {
    if d.is_zero() {
        *d = value;
    }
}

fn set_if_empty(s: &mut String, value: &str) {
    if s.is_empty() {
        value.clone_into(s);
    }
}

fn set_if_zero_i32(v: &mut i32, value: i32) {
    if *v == 0 {
        *v = value;
    }
}

/// Fills every unset field with its v1beta1 default. `gates` are the feature gates in force
/// (flags merged with the config's own `featureGates`); two defaults depend on them.
///
/// Like the kubelet, an explicit zero in a Go value field (e.g. `port: 0`) counts as unset.
pub fn set_defaults(kc: &mut KubeletConfiguration, gates: &FeatureGates) {
    kc.enable_server.get_or_insert(true);
    set_if_zero(&mut kc.sync_frequency, Duration::from_mins(1));
    set_if_zero(&mut kc.file_check_frequency, Duration::from_secs(20));
    set_if_zero(&mut kc.http_check_frequency, Duration::from_secs(20));
    set_if_empty(&mut kc.address, "0.0.0.0");
    set_if_zero_i32(&mut kc.port, DEFAULT_PORT);
    kc.authentication.anonymous.enabled.get_or_insert(false);
    kc.authentication.webhook.enabled.get_or_insert(true);
    set_if_zero(
        &mut kc.authentication.webhook.cache_ttl,
        Duration::from_mins(2),
    );
    set_if_empty(&mut kc.authorization.mode, "Webhook");
    set_if_zero(
        &mut kc.authorization.webhook.cache_authorized_ttl,
        Duration::from_mins(5),
    );
    set_if_zero(
        &mut kc.authorization.webhook.cache_unauthorized_ttl,
        Duration::from_secs(30),
    );
    kc.registry_pull_qps.get_or_insert(5);
    set_if_zero_i32(&mut kc.registry_burst, 10);
    kc.event_record_qps.get_or_insert(50);
    set_if_zero_i32(&mut kc.event_burst, 100);
    kc.enable_debugging_handlers.get_or_insert(true);
    kc.healthz_port.get_or_insert(10248);
    set_if_empty(&mut kc.healthz_bind_address, "127.0.0.1");
    kc.oom_score_adj.get_or_insert(KUBELET_OOM_SCORE_ADJ);
    set_if_zero(
        &mut kc.streaming_connection_idle_timeout,
        Duration::from_hours(4),
    );
    if kc.node_status_report_frequency.is_zero() {
        // Backward compatibility: an explicit update frequency is also the report frequency.
        kc.node_status_report_frequency = if kc.node_status_update_frequency.is_zero() {
            Duration::from_mins(5)
        } else {
            kc.node_status_update_frequency
        };
    }
    set_if_zero(
        &mut kc.node_status_update_frequency,
        Duration::from_secs(10),
    );
    set_if_zero_i32(&mut kc.node_lease_duration_seconds, 40);
    set_if_zero(&mut kc.image_minimum_gc_age, Duration::from_mins(2));
    kc.image_gc_high_threshold_percent.get_or_insert(85);
    kc.image_gc_low_threshold_percent.get_or_insert(80);
    set_if_zero(&mut kc.volume_stats_agg_period, Duration::from_mins(1));
    kc.cgroups_per_qos.get_or_insert(true);
    set_if_empty(&mut kc.cgroup_driver, "cgroupfs");
    set_if_empty(&mut kc.cpu_manager_policy, "none");
    set_if_zero(
        &mut kc.cpu_manager_reconcile_period,
        Duration::from_secs(10),
    );
    set_if_empty(&mut kc.memory_manager_policy, "None");
    set_if_empty(&mut kc.topology_manager_policy, "none");
    set_if_empty(&mut kc.topology_manager_scope, "container");
    set_if_zero(&mut kc.runtime_request_timeout, Duration::from_mins(2));
    set_if_empty(&mut kc.hairpin_mode, "promiscuous-bridge");
    set_if_zero_i32(&mut kc.max_pods, 110);
    // nil or negative means "node allocatable", spelled -1.
    if kc.pod_pids_limit.is_none_or(|v| v < 0) {
        kc.pod_pids_limit = Some(-1);
    }
    kc.resolv_conf
        .get_or_insert_with(|| DEFAULT_RESOLV_CONF.to_owned());
    kc.cpu_cfs_quota.get_or_insert(true);
    kc.cpu_cfs_quota_period
        .get_or_insert(Duration::from_millis(100));
    kc.node_status_max_images.get_or_insert(50);
    if kc.max_open_files == 0 {
        kc.max_open_files = 1_000_000;
    }
    set_if_empty(&mut kc.content_type, "application/vnd.kubernetes.protobuf");
    kc.kube_api_qps.get_or_insert(50);
    set_if_zero_i32(&mut kc.kube_api_burst, 100);
    if kc.serialize_image_pulls.is_none() {
        // Setting maxParallelImagePulls >= 2 implies parallel pulls without a second setting.
        let parallel = kc.max_parallel_image_pulls.is_some_and(|n| n >= 2);
        kc.serialize_image_pulls = Some(!parallel);
    }
    set_if_zero(
        &mut kc.eviction_pressure_transition_period,
        Duration::from_mins(5),
    );
    kc.merge_default_eviction_settings.get_or_insert(false);
    kc.enable_controller_attach_detach.get_or_insert(true);
    kc.make_iptables_util_chains.get_or_insert(true);
    kc.iptables_masquerade_bit.get_or_insert(14);
    kc.iptables_drop_bit.get_or_insert(15);
    kc.fail_swap_on.get_or_insert(true);
    set_if_empty(&mut kc.container_log_max_size, "10Mi");
    kc.container_log_max_files.get_or_insert(5);
    kc.container_log_max_workers.get_or_insert(1);
    kc.container_log_monitor_interval
        .get_or_insert(Duration::from_secs(10));
    set_if_empty(
        &mut kc.config_map_and_secret_change_detection_strategy,
        "Watch",
    );
    kc.enforce_node_allocatable
        .get_or_insert_with(|| vec!["pods".to_owned()]);
    set_if_empty(&mut kc.volume_plugin_dir, DEFAULT_VOLUME_PLUGIN_DIR);
    set_recommended_logging(kc);
    kc.enable_system_log_handler.get_or_insert(true);
    kc.enable_profiling_handler.get_or_insert(true);
    kc.enable_debug_flags_handler.get_or_insert(true);
    kc.seccomp_default.get_or_insert(false);
    kc.fail_cgroup_v1.get_or_insert(true);
    kc.memory_throttling_factor.get_or_insert(0.9);
    kc.register_node.get_or_insert(true);
    kc.local_storage_capacity_isolation.get_or_insert(true);
    set_if_empty(
        &mut kc.container_runtime_endpoint,
        DEFAULT_CONTAINER_RUNTIME_ENDPOINT,
    );
    set_if_empty(&mut kc.pod_logs_dir, DEFAULT_POD_LOGS_DIR);
    if gates.enabled("KubeletCrashLoopBackOffMax") {
        kc.crash_loop_back_off
            .max_container_restart_period
            .get_or_insert(Duration::from_secs(300));
    }
    if gates.enabled("KubeletEnsureSecretPulledImages") {
        set_if_empty(
            &mut kc.image_pull_credentials_verification_policy,
            "NeverVerifyPreloadedImages",
        );
    }
}

/// component-base's `SetRecommendedLoggingConfiguration`.
fn set_recommended_logging(kc: &mut KubeletConfiguration) {
    let logging = &mut kc.logging;
    set_if_empty(&mut logging.format, "text");
    if logging.flush_frequency.0.is_zero() {
        logging.flush_frequency = TimeOrMetaDuration(Duration::from_secs(5));
    }
    for routing in [&mut logging.options.text, &mut logging.options.json] {
        routing
            .info_buffer_size
            .get_or_insert_with(Quantity::default);
    }
}

/// Applies the kubelet's "legacy" command-line defaults on top of v1beta1 defaults. The kubelet
/// starts from these when no `--config` file is given, so a kubelet configured only by flags
/// and drop-ins allows anonymous requests, authorizes everything and opens the read-only port
/// 10255, unlike one started with a config file.
pub fn apply_legacy_flag_defaults(kc: &mut KubeletConfiguration) {
    kc.authentication.anonymous.enabled = Some(true);
    kc.authentication.webhook.enabled = Some(false);
    "AlwaysAllow".clone_into(&mut kc.authorization.mode);
    kc.read_only_port = LEGACY_READ_ONLY_PORT;
}

/// Fills `evictionHard` with the Linux defaults when it is nil; with
/// `mergeDefaultEvictionSettings`, adds the default signals the config does not name.
pub fn default_eviction_hard_if_unset(kc: &mut KubeletConfiguration) {
    match &mut kc.eviction_hard {
        None => kc.eviction_hard = Some(default_eviction_hard()),
        Some(map) if kc.merge_default_eviction_settings == Some(true) => {
            for (k, v) in default_eviction_hard() {
                map.entry(k).or_insert(v);
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(kc: KubeletConfiguration) -> KubeletConfiguration {
        let mut kc = kc;
        set_defaults(&mut kc, &FeatureGates::default());
        kc
    }

    #[test]
    fn documented_defaults() {
        let kc = defaulted(KubeletConfiguration::default());
        assert_eq!(kc.port, 10250);
        assert_eq!(kc.read_only_port, 0);
        assert_eq!(kc.healthz_port, Some(10248));
        assert_eq!(kc.healthz_bind_address, "127.0.0.1");
        assert_eq!(kc.node_status_update_frequency, Duration::from_secs(10));
        assert_eq!(kc.node_status_report_frequency, Duration::from_mins(5));
        assert_eq!(kc.node_lease_duration_seconds, 40);
        assert_eq!(kc.max_pods, 110);
        assert_eq!(kc.fail_swap_on, Some(true));
        assert_eq!(kc.authentication.anonymous.enabled, Some(false));
        assert_eq!(kc.authentication.webhook.enabled, Some(true));
        assert_eq!(kc.authentication.webhook.cache_ttl, Duration::from_mins(2));
        assert_eq!(kc.authorization.mode, "Webhook");
        assert_eq!(
            kc.authorization.webhook.cache_authorized_ttl,
            Duration::from_mins(5)
        );
        assert_eq!(
            kc.authorization.webhook.cache_unauthorized_ttl,
            Duration::from_secs(30)
        );
        assert_eq!(
            kc.container_runtime_endpoint,
            DEFAULT_CONTAINER_RUNTIME_ENDPOINT
        );
        assert_eq!(kc.cpu_cfs_quota_period, Some(Duration::from_millis(100)));
        assert_eq!(kc.enforce_node_allocatable, Some(vec!["pods".to_owned()]));
        assert_eq!(kc.logging.format, "text");
        assert_eq!(kc.logging.flush_frequency.0, Duration::from_secs(5));
        assert_eq!(kc.pod_pids_limit, Some(-1));
        assert_eq!(kc.serialize_image_pulls, Some(true));
    }

    #[test]
    fn report_frequency_follows_explicit_update_frequency() {
        let kc = defaulted(KubeletConfiguration {
            node_status_update_frequency: Duration::from_secs(20),
            ..Default::default()
        });
        assert_eq!(kc.node_status_report_frequency, Duration::from_secs(20));
    }

    #[test]
    fn parallel_pulls_turn_off_serialization() {
        let kc = defaulted(KubeletConfiguration {
            max_parallel_image_pulls: Some(3),
            ..Default::default()
        });
        assert_eq!(kc.serialize_image_pulls, Some(false));
    }

    #[test]
    fn eviction_hard_default_only_when_nil() {
        let mut kc = KubeletConfiguration::default();
        default_eviction_hard_if_unset(&mut kc);
        assert_eq!(kc.eviction_hard.as_ref().unwrap().len(), 4);

        let mut kc = KubeletConfiguration {
            eviction_hard: Some([("memory.available".to_owned(), "1Gi".to_owned())].into()),
            ..Default::default()
        };
        default_eviction_hard_if_unset(&mut kc);
        assert_eq!(kc.eviction_hard.as_ref().unwrap().len(), 1);

        kc.merge_default_eviction_settings = Some(true);
        default_eviction_hard_if_unset(&mut kc);
        let map = kc.eviction_hard.unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map["memory.available"], "1Gi");
    }
}
