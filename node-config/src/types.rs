//! The `kubelet.config.k8s.io/v1beta1` `KubeletConfiguration` type, field for field.
//!
//! The Rust shape mirrors the Go type so that the kubelet's zero-value semantics carry over:
//! a Go pointer (`*int32`, `*bool`) is an `Option` here and `None` means "unset"; a Go value field
//! is a plain value whose zero means "unset" to the defaulter. Fields are declared in the Go
//! declaration order so that output lists them in the same order as the kubelet's `/configz`.
//! Go's `omitempty` is `skip_serializing_if` (Go never omits struct-typed fields such as
//! durations, `authentication` or `logging`). A JSON `null` leaves a field at its zero value,
//! as Go's decoder does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::{Duration, TimeOrMetaDuration};
use crate::quantity::Quantity;

/// The only `apiVersion` a `KubeletConfiguration` has.
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
/// The `kind` of a kubelet configuration document.
pub const KIND: &str = "KubeletConfiguration";

/// `map[string]string`, kept sorted like Go's JSON encoder writes maps.
pub type StringMap = BTreeMap<String, String>;

/// Decodes `null` as the type's zero value, as Go's `encoding/json` leaves a field untouched
/// when it meets `null`.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Go's `omitempty` test for value fields.
fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Go's `omitempty` for a `nil`-able slice or map we keep as `Option` because the defaulter
/// tells `nil` from empty.
fn is_none_or_empty<T: IsEmpty>(value: &Option<T>) -> bool {
    value.as_ref().is_none_or(IsEmpty::is_empty)
}

trait IsEmpty {
    fn is_empty(&self) -> bool;
}
impl<T> IsEmpty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}
impl<K, V> IsEmpty for BTreeMap<K, V> {
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
}

/// Configuration of a kubelet: every field of `kubelet.config.k8s.io/v1beta1`
/// `KubeletConfiguration` as of Kubernetes 1.35. Field docs give the v1beta1 default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    /// `apiVersion`; always `kubelet.config.k8s.io/v1beta1` in a valid file.
    #[serde(
        rename = "apiVersion",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// `kind`; always `KubeletConfiguration` in a valid file.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,

    /// Enables the kubelet's secured server. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_server: Option<bool>,
    /// Directory (or single file) of static pod manifests. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub static_pod_path: String,
    /// Root directory for pod log files. Default: "/var/log/pods".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub pod_logs_dir: String,
    /// Max period between synchronizing running containers and config. Default: 1m.
    #[serde(default, deserialize_with = "nullable")]
    pub sync_frequency: Duration,
    /// Period between checking config files for new data. Default: 20s.
    #[serde(default, deserialize_with = "nullable")]
    pub file_check_frequency: Duration,
    /// Period between checking HTTP for new data. Default: 20s.
    #[serde(default, deserialize_with = "nullable")]
    pub http_check_frequency: Duration,
    /// URL for accessing static pods. Default: "".
    #[serde(
        rename = "staticPodURL",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub static_pod_url: String,
    /// HTTP headers to use when fetching `staticPodURL`. Default: nil.
    #[serde(
        rename = "staticPodURLHeader",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub static_pod_url_header: BTreeMap<String, Vec<String>>,
    /// IP address to serve on. Default: "0.0.0.0".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub address: String,
    /// Port of the secured server. Default: 10250.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub port: i32,
    /// Read-only port without authentication; 0 disables it. Default: 0.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub read_only_port: i32,
    /// Serving certificate file. Default: "" (self-signed in `--cert-dir`).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_cert_file: String,
    /// Serving private key file. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_private_key_file: String,
    /// Allowed TLS cipher suites (Go names). Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls_cipher_suites: Vec<String>,
    /// Allowed key exchange curves as Go `tls.CurveID` numbers. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls_curve_preferences: Vec<i32>,
    /// Minimum TLS version (`VersionTLS12`, `VersionTLS13`). Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_min_version: String,
    /// Enables client certificate rotation. Default: false.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub rotate_certificates: bool,
    /// Requests the serving certificate from the certificates API. Default: false.
    #[serde(
        rename = "serverTLSBootstrap",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub server_tls_bootstrap: bool,
    /// How requests to the kubelet's server are authenticated.
    #[serde(default, deserialize_with = "nullable")]
    pub authentication: KubeletAuthentication,
    /// How requests to the kubelet's server are authorized.
    #[serde(default, deserialize_with = "nullable")]
    pub authorization: KubeletAuthorization,
    /// Registry pulls per second; 0 means no limit. Default: 5.
    #[serde(
        rename = "registryPullQPS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub registry_pull_qps: Option<i32>,
    /// Burst of registry pulls. Default: 10.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub registry_burst: i32,
    /// Credential verification for images already on the node. Default: "" (or
    /// `NeverVerifyPreloadedImages` when `KubeletEnsureSecretPulledImages` is on).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub image_pull_credentials_verification_policy: String,
    /// Images exempt from re-verification under `NeverVerifyAllowlistedImages`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub preloaded_images_verification_allowlist: Vec<String>,
    /// Event creations per second; 0 means no limit. Default: 50.
    #[serde(
        rename = "eventRecordQPS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_record_qps: Option<i32>,
    /// Burst of event creations. Default: 100.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub event_burst: i32,
    /// Serves logs, exec, attach, port-forward. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_debugging_handlers: Option<bool>,
    /// Block profiling when debugging handlers are on. Default: false.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub enable_contention_profiling: bool,
    /// Port of the localhost healthz endpoint; 0 disables it. Default: 10248.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthz_port: Option<i32>,
    /// Address of the healthz endpoint. Default: "127.0.0.1".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub healthz_bind_address: String,
    /// oom_score_adj of the kubelet process, in [-1000, 1000]. Default: -999.
    #[serde(
        rename = "oomScoreAdj",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oom_score_adj: Option<i32>,
    /// Cluster DNS domain. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_domain: String,
    /// Cluster DNS server IPs. Default: nil.
    #[serde(
        rename = "clusterDNS",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_dns: Vec<String>,
    /// Deprecated, no effect. Default: 4h.
    #[serde(default, deserialize_with = "nullable")]
    pub streaming_connection_idle_timeout: Duration,
    /// How often node status is computed. Default: 10s.
    #[serde(default, deserialize_with = "nullable")]
    pub node_status_update_frequency: Duration,
    /// How often unchanged node status is posted. Default: 5m, or `nodeStatusUpdateFrequency`
    /// when only that is set.
    #[serde(default, deserialize_with = "nullable")]
    pub node_status_report_frequency: Duration,
    /// Duration of the node Lease. Default: 40.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub node_lease_duration_seconds: i32,
    /// Minimum age of an unused image before GC. Default: 2m.
    #[serde(rename = "imageMinimumGCAge", default, deserialize_with = "nullable")]
    pub image_minimum_gc_age: Duration,
    /// Maximum unused age before GC; 0s disables. Default: 0s.
    #[serde(rename = "imageMaximumGCAge", default, deserialize_with = "nullable")]
    pub image_maximum_gc_age: Duration,
    /// Disk usage percent that always triggers image GC. Default: 85.
    #[serde(
        rename = "imageGCHighThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_gc_high_threshold_percent: Option<i32>,
    /// Disk usage percent below which image GC never runs. Default: 80.
    #[serde(
        rename = "imageGCLowThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_gc_low_threshold_percent: Option<i32>,
    /// Period of volume disk usage calculation. Default: 1m.
    #[serde(default, deserialize_with = "nullable")]
    pub volume_stats_agg_period: Duration,
    /// Cgroup to isolate the kubelet in. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub kubelet_cgroups: String,
    /// Cgroup for non-kernel processes not in a container. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub system_cgroups: String,
    /// Root cgroup for pods. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cgroup_root: String,
    /// QoS cgroup hierarchy. Default: true.
    #[serde(
        rename = "cgroupsPerQOS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroups_per_qos: Option<bool>,
    /// `cgroupfs` or `systemd`. Default: "cgroupfs".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cgroup_driver: String,
    /// CPU manager policy (`none`, `static`). Default: "none".
    #[serde(
        rename = "cpuManagerPolicy",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cpu_manager_policy: String,
    /// OOM-kill single processes instead of the whole cgroup v2 group. Default: auto.
    #[serde(
        rename = "singleProcessOOMKill",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub single_process_oom_kill: Option<bool>,
    /// CPU manager policy options. Default: nil.
    #[serde(
        rename = "cpuManagerPolicyOptions",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cpu_manager_policy_options: StringMap,
    /// CPU manager reconcile period. Default: 10s.
    #[serde(
        rename = "cpuManagerReconcilePeriod",
        default,
        deserialize_with = "nullable"
    )]
    pub cpu_manager_reconcile_period: Duration,
    /// Memory manager policy (`None`, `Static`). Default: "None".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub memory_manager_policy: String,
    /// Topology manager policy. Default: "none".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub topology_manager_policy: String,
    /// Topology manager scope (`container`, `pod`). Default: "container".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub topology_manager_scope: String,
    /// Topology manager policy options. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub topology_manager_policy_options: StringMap,
    /// Percentages of resources reserved for the guaranteed QoS tier. Default: nil.
    #[serde(
        rename = "qosReserved",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub qos_reserved: StringMap,
    /// Timeout of runtime requests other than long-running ones. Default: 2m.
    #[serde(default, deserialize_with = "nullable")]
    pub runtime_request_timeout: Duration,
    /// Hairpin mode (`promiscuous-bridge`, `hairpin-veth`, `none`). Default: "promiscuous-bridge".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub hairpin_mode: String,
    /// Maximum number of pods. Default: 110.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub max_pods: i32,
    /// Pod CIDR in standalone mode. Default: "".
    #[serde(
        rename = "podCIDR",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub pod_cidr: String,
    /// Maximum PIDs per pod; -1 means node allocatable. Default: -1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_pids_limit: Option<i64>,
    /// Resolver configuration file; "" disables DNS. Default: "/etc/resolv.conf".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<String>,
    /// Check for pods once, run them and exit. Default: false.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub run_once: bool,
    /// CFS quota enforcement for CPU limits. Default: true.
    #[serde(
        rename = "cpuCFSQuota",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_cfs_quota: Option<bool>,
    /// CFS quota period. Default: 100ms.
    #[serde(
        rename = "cpuCFSQuotaPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_cfs_quota_period: Option<Duration>,
    /// Cap on images in node status; -1 no cap. Default: 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_status_max_images: Option<i32>,
    /// Files the kubelet process can open. Default: 1000000.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub max_open_files: i64,
    /// Content type of API server requests. Default: "application/vnd.kubernetes.protobuf".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub content_type: String,
    /// API server QPS. Default: 50.
    #[serde(
        rename = "kubeAPIQPS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_api_qps: Option<i32>,
    /// API server burst. Default: 100.
    #[serde(
        rename = "kubeAPIBurst",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub kube_api_burst: i32,
    /// Pull images one at a time. Default: true (false when `maxParallelImagePulls` >= 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialize_image_pulls: Option<bool>,
    /// Maximum parallel image pulls. Default: nil (no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_image_pulls: Option<i32>,
    /// Hard eviction thresholds. Default (when nil): memory.available<100Mi,
    /// nodefs.available<10%, nodefs.inodesFree<5%, imagefs.available<15%.
    #[serde(default, skip_serializing_if = "is_none_or_empty")]
    pub eviction_hard: Option<StringMap>,
    /// Soft eviction thresholds. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub eviction_soft: StringMap,
    /// Grace periods of soft eviction signals. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub eviction_soft_grace_period: StringMap,
    /// Wait before leaving an eviction pressure condition. Default: 5m.
    #[serde(default, deserialize_with = "nullable")]
    pub eviction_pressure_transition_period: Duration,
    /// Maximum grace period for soft evictions. Default: 0.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub eviction_max_pod_grace_period: i32,
    /// Minimum reclaims per signal. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub eviction_minimum_reclaim: StringMap,
    /// Merge the default eviction signals into those given. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_default_eviction_settings: Option<bool>,
    /// Maximum pods per core; 0 means no limit. Default: 0.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub pods_per_core: i32,
    /// Let the attach/detach controller manage volumes. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_controller_attach_detach: Option<bool>,
    /// Fail when kernel tunables differ from the kubelet's expectations. Default: false.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub protect_kernel_defaults: bool,
    /// Create the KUBE-IPTABLES-HINT chain. Default: true.
    #[serde(
        rename = "makeIPTablesUtilChains",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub make_iptables_util_chains: Option<bool>,
    /// Deprecated, no effect. Default: 14.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptables_masquerade_bit: Option<i32>,
    /// Deprecated, no effect. Default: 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptables_drop_bit: Option<i32>,
    /// Feature gates to turn on or off. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub feature_gates: BTreeMap<String, bool>,
    /// Refuse to start when swap is on. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_swap_on: Option<bool>,
    /// Swap available to workloads.
    #[serde(default, deserialize_with = "nullable")]
    pub memory_swap: MemorySwapConfiguration,
    /// Size at which a container log is rotated. Default: "10Mi".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_log_max_size: String,
    /// Log files kept per container. Default: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_max_files: Option<i32>,
    /// Concurrent log rotation workers. Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_max_workers: Option<i32>,
    /// How often container logs are checked for rotation. Default: 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_monitor_interval: Option<Duration>,
    /// `Get`, `Cache` or `Watch`. Default: "Watch".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub config_map_and_secret_change_detection_strategy: String,
    /// Resources reserved for system daemons (`cpu`, `memory`, ...). Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub system_reserved: StringMap,
    /// Resources reserved for Kubernetes daemons. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub kube_reserved: StringMap,
    /// CPU list reserved for system and Kubernetes threads. Default: "".
    #[serde(
        rename = "reservedSystemCPUs",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub reserved_system_cpus: String,
    /// Previous version whose hidden metrics are shown. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub show_hidden_metrics_for_version: String,
    /// Cgroup enforcing `systemReserved`. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub system_reserved_cgroup: String,
    /// Cgroup enforcing `kubeReserved`. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub kube_reserved_cgroup: String,
    /// Node allocatable enforcements. Default (when nil): ["pods"].
    #[serde(default, skip_serializing_if = "is_none_or_empty")]
    pub enforce_node_allocatable: Option<Vec<String>>,
    /// Allowed unsafe sysctls or patterns ending in `*`. Default: [].
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_unsafe_sysctls: Vec<String>,
    /// Directory of third-party volume plugins.
    /// Default: "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub volume_plugin_dir: String,
    /// Cloud provider instance ID. Default: "".
    #[serde(
        rename = "providerID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_id: String,
    /// Use kernel memcg notifications for memory eviction. Default: false.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub kernel_memcg_notification: bool,
    /// Logging options. Default: format text, flushFrequency 5s.
    #[serde(default, deserialize_with = "nullable")]
    pub logging: LoggingConfiguration,
    /// Serve system logs at `/logs/`. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_system_log_handler: Option<bool>,
    /// Node log query on `/logs`. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_system_log_query: Option<bool>,
    /// Total delay of node shutdown for pod termination. Default: 0s.
    #[serde(default, deserialize_with = "nullable")]
    pub shutdown_grace_period: Duration,
    /// Part of `shutdownGracePeriod` for critical pods. Default: 0s.
    #[serde(default, deserialize_with = "nullable")]
    pub shutdown_grace_period_critical_pods: Duration,
    /// Shutdown grace periods by pod priority. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shutdown_grace_period_by_pod_priority: Vec<ShutdownGracePeriodByPodPriority>,
    /// Node-level container restart backoff settings.
    #[serde(default, deserialize_with = "nullable")]
    pub crash_loop_back_off: CrashLoopBackOffConfig,
    /// Memory reservations per NUMA node. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reserved_memory: Vec<MemoryReservation>,
    /// Serve `/debug/pprof/`. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_profiling_handler: Option<bool>,
    /// Serve `/debug/flags/v`. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_debug_flags_handler: Option<bool>,
    /// Use `RuntimeDefault` as the default seccomp profile. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_default: Option<bool>,
    /// Factor for cgroup v2 `memory.high` under MemoryQoS. Default: 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_throttling_factor: Option<f64>,
    /// Taints added when the node registers. Default: nil.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub register_with_taints: Vec<Taint>,
    /// Register the node with the API server. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_node: Option<bool>,
    /// OpenTelemetry tracing. Default: nil.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfiguration>,
    /// Local ephemeral storage isolation. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_storage_capacity_isolation: Option<bool>,
    /// CRI runtime endpoint. Default: "unix:///run/containerd/containerd.sock".
    #[serde(default, deserialize_with = "nullable")]
    pub container_runtime_endpoint: String,
    /// CRI image service endpoint; "" means `containerRuntimeEndpoint`. Default: "".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub image_service_endpoint: String,
    /// Refuse to start on cgroup v1 hosts. Default: true (Kubernetes 1.35).
    #[serde(
        rename = "failCgroupV1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fail_cgroup_v1: Option<bool>,
    /// User namespace settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespaces: Option<UserNamespaces>,
}

/// `authentication`: how requests to the kubelet's server are authenticated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletAuthentication {
    /// Client certificate authentication.
    #[serde(default, deserialize_with = "nullable")]
    pub x509: KubeletX509Authentication,
    /// Bearer token authentication through TokenReview.
    #[serde(default, deserialize_with = "nullable")]
    pub webhook: KubeletWebhookAuthentication,
    /// Anonymous requests.
    #[serde(default, deserialize_with = "nullable")]
    pub anonymous: KubeletAnonymousAuthentication,
}

/// `authentication.x509`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletX509Authentication {
    /// PEM bundle of client certificate authorities. Default: "".
    #[serde(
        rename = "clientCAFile",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub client_ca_file: String,
}

/// `authentication.webhook`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletWebhookAuthentication {
    /// Enables TokenReview authentication. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Cache lifetime of authentication results. Default: 2m.
    #[serde(rename = "cacheTTL", default, deserialize_with = "nullable")]
    pub cache_ttl: Duration,
}

/// `authentication.anonymous`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletAnonymousAuthentication {
    /// Allows anonymous requests. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `authorization`: how requests to the kubelet's server are authorized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletAuthorization {
    /// `AlwaysAllow` or `Webhook`. Default: "Webhook".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mode: String,
    /// SubjectAccessReview settings.
    #[serde(default, deserialize_with = "nullable")]
    pub webhook: KubeletWebhookAuthorization,
}

/// `authorization.webhook`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletWebhookAuthorization {
    /// Cache lifetime of "authorized" answers. Default: 5m.
    #[serde(rename = "cacheAuthorizedTTL", default, deserialize_with = "nullable")]
    pub cache_authorized_ttl: Duration,
    /// Cache lifetime of "unauthorized" answers. Default: 30s.
    #[serde(
        rename = "cacheUnauthorizedTTL",
        default,
        deserialize_with = "nullable"
    )]
    pub cache_unauthorized_ttl: Duration,
}

/// `memorySwap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemorySwapConfiguration {
    /// `""`/`NoSwap` or `LimitedSwap`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub swap_behavior: String,
}

/// `crashLoopBackOff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrashLoopBackOffConfig {
    /// Maximum container restart backoff, 1s..300s. Default: 300s when
    /// `KubeletCrashLoopBackOffMax` is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_container_restart_period: Option<Duration>,
}

/// One entry of `shutdownGracePeriodByPodPriority`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownGracePeriodByPodPriority {
    /// Lowest priority of the range.
    #[serde(default, deserialize_with = "nullable")]
    pub priority: i32,
    /// Grace period for pods in the range, in seconds.
    #[serde(default, deserialize_with = "nullable")]
    pub shutdown_grace_period_seconds: i64,
}

/// One entry of `reservedMemory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryReservation {
    /// NUMA node ID.
    #[serde(default, deserialize_with = "nullable")]
    pub numa_node: i32,
    /// Reserved amounts by memory type (`memory`, `hugepages-<size>`).
    #[serde(default, deserialize_with = "nullable")]
    pub limits: BTreeMap<String, Quantity>,
}

/// A node taint (`core/v1` `Taint`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    /// Taint key.
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
    /// Taint value.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default, deserialize_with = "nullable")]
    pub effect: String,
    /// RFC 3339 time the taint was added (NoExecute only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// `tracing` (component-base `TracingConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingConfiguration {
    /// Collector endpoint. Default: "localhost:4317".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Sampled spans per million. Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate_per_million: Option<i32>,
}

/// `userNamespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNamespaces {
    /// Length of the UID/GID mapping per pod, a multiple of 65536. Default: 65536.
    #[serde(rename = "idsPerPod", default, skip_serializing_if = "Option::is_none")]
    pub ids_per_pod: Option<i64>,
}

/// `logging` (component-base `LoggingConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingConfiguration {
    /// `text` or `json`. Default: "text".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub format: String,
    /// Maximum time between log flushes (duration string or integer nanoseconds). Default: 5s.
    #[serde(default, deserialize_with = "nullable")]
    pub flush_frequency: TimeOrMetaDuration,
    /// Log verbosity threshold. Default: 0.
    #[serde(default, deserialize_with = "nullable")]
    pub verbosity: u32,
    /// Per-file verbosity overrides.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub vmodule: Vec<VModuleItem>,
    /// Format-specific options.
    #[serde(default, deserialize_with = "nullable")]
    pub options: FormatOptions,
}

/// One `logging.vmodule` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VModuleItem {
    /// File name pattern.
    #[serde(default, deserialize_with = "nullable")]
    pub file_pattern: String,
    /// Verbosity for matching files.
    #[serde(default, deserialize_with = "nullable")]
    pub verbosity: u32,
}

/// `logging.options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormatOptions {
    /// Options of the text format.
    #[serde(default, deserialize_with = "nullable")]
    pub text: OutputRoutingOptions,
    /// Options of the JSON format.
    #[serde(default, deserialize_with = "nullable")]
    pub json: OutputRoutingOptions,
}

/// `logging.options.text` / `logging.options.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputRoutingOptions {
    /// Write info messages to stdout and errors to stderr.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub split_stream: bool,
    /// Buffer size of the info stream when split. Default: "0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_buffer_size: Option<Quantity>,
}
