//! The kubelet's command-line flags: those that set a configuration field (they override the
//! file and the drop-ins) and those that exist only on the command line (`--root-dir`,
//! `--hostname-override`, ...). One table drives parsing, help and application, so binaries
//! accept exactly the kubelet's flag names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::duration::Duration;
use crate::error::ConfigError;
use crate::gates;

/// How a flag's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `true`/`false` (Go `strconv.ParseBool`); a bare `--flag` means true.
    Bool,
    /// A signed integer.
    Int,
    /// Any text.
    String,
    /// A Go duration (`10s`, `1m30s`).
    Duration,
    /// Comma-separated list; replaces the whole list.
    List,
    /// `k=v,k2=v2`; replaces the whole map.
    Map,
    /// `signal<quantity,...` (eviction thresholds); replaces the whole map.
    LessThanMap,
    /// `Name=bool,...`; merged per key into `featureGates`.
    FeatureGates,
    /// `key=value:Effect,...` taints; replaces the list.
    Taints,
}

/// Where a flag's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagTarget {
    /// A field of `KubeletConfiguration`, as a dotted JSON path.
    Config(&'static str),
    /// A command-line-only setting, kept in [`KubeletFlags`].
    FlagOnly,
}

/// One kubelet flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    /// Name without the leading dashes.
    pub name: &'static str,
    /// Value syntax.
    pub kind: FlagKind,
    /// Destination.
    pub target: FlagTarget,
}

const fn cfg(name: &'static str, kind: FlagKind, path: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        target: FlagTarget::Config(path),
    }
}

const fn only(name: &'static str, kind: FlagKind) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        target: FlagTarget::FlagOnly,
    }
}

use FlagKind::{
    Bool, Duration as Dur, FeatureGates as Gates, Int, LessThanMap, List, Map as KvMap,
    String as Str, Taints,
};

/// Every supported kubelet flag, sorted by name.
pub const KUBELET_FLAGS: &[FlagSpec] = &[
    cfg("address", Str, "address"),
    cfg("allowed-unsafe-sysctls", List, "allowedUnsafeSysctls"),
    cfg("anonymous-auth", Bool, "authentication.anonymous.enabled"),
    cfg(
        "authentication-token-webhook",
        Bool,
        "authentication.webhook.enabled",
    ),
    cfg(
        "authentication-token-webhook-cache-ttl",
        Dur,
        "authentication.webhook.cacheTTL",
    ),
    cfg("authorization-mode", Str, "authorization.mode"),
    cfg(
        "authorization-webhook-cache-authorized-ttl",
        Dur,
        "authorization.webhook.cacheAuthorizedTTL",
    ),
    cfg(
        "authorization-webhook-cache-unauthorized-ttl",
        Dur,
        "authorization.webhook.cacheUnauthorizedTTL",
    ),
    only("bootstrap-kubeconfig", Str),
    only("cert-dir", Str),
    cfg("cgroup-driver", Str, "cgroupDriver"),
    cfg("cgroup-root", Str, "cgroupRoot"),
    cfg("cgroups-per-qos", Bool, "cgroupsPerQOS"),
    cfg("client-ca-file", Str, "authentication.x509.clientCAFile"),
    cfg("cluster-dns", List, "clusterDNS"),
    cfg("cluster-domain", Str, "clusterDomain"),
    cfg("container-log-max-files", Int, "containerLogMaxFiles"),
    cfg("container-log-max-size", Str, "containerLogMaxSize"),
    cfg("container-log-max-workers", Int, "containerLogMaxWorkers"),
    cfg(
        "container-log-monitor-interval",
        Dur,
        "containerLogMonitorInterval",
    ),
    cfg(
        "container-runtime-endpoint",
        Str,
        "containerRuntimeEndpoint",
    ),
    cfg("contention-profiling", Bool, "enableContentionProfiling"),
    cfg("cpu-cfs-quota", Bool, "cpuCFSQuota"),
    cfg("cpu-cfs-quota-period", Dur, "cpuCFSQuotaPeriod"),
    cfg("cpu-manager-policy", Str, "cpuManagerPolicy"),
    cfg(
        "cpu-manager-policy-options",
        KvMap,
        "cpuManagerPolicyOptions",
    ),
    cfg(
        "cpu-manager-reconcile-period",
        Dur,
        "cpuManagerReconcilePeriod",
    ),
    cfg(
        "enable-controller-attach-detach",
        Bool,
        "enableControllerAttachDetach",
    ),
    cfg("enable-debugging-handlers", Bool, "enableDebuggingHandlers"),
    cfg("enable-server", Bool, "enableServer"),
    cfg("enforce-node-allocatable", List, "enforceNodeAllocatable"),
    cfg("event-burst", Int, "eventBurst"),
    cfg("event-qps", Int, "eventRecordQPS"),
    cfg("eviction-hard", LessThanMap, "evictionHard"),
    cfg(
        "eviction-max-pod-grace-period",
        Int,
        "evictionMaxPodGracePeriod",
    ),
    cfg("eviction-minimum-reclaim", KvMap, "evictionMinimumReclaim"),
    cfg(
        "eviction-pressure-transition-period",
        Dur,
        "evictionPressureTransitionPeriod",
    ),
    cfg("eviction-soft", LessThanMap, "evictionSoft"),
    cfg(
        "eviction-soft-grace-period",
        KvMap,
        "evictionSoftGracePeriod",
    ),
    only("exit-on-lock-contention", Bool),
    cfg("fail-swap-on", Bool, "failSwapOn"),
    cfg("feature-gates", Gates, "featureGates"),
    cfg("file-check-frequency", Dur, "fileCheckFrequency"),
    cfg("hairpin-mode", Str, "hairpinMode"),
    cfg("healthz-bind-address", Str, "healthzBindAddress"),
    cfg("healthz-port", Int, "healthzPort"),
    only("hostname-override", Str),
    cfg("http-check-frequency", Dur, "httpCheckFrequency"),
    cfg(
        "image-gc-high-threshold",
        Int,
        "imageGCHighThresholdPercent",
    ),
    cfg("image-gc-low-threshold", Int, "imageGCLowThresholdPercent"),
    cfg("image-service-endpoint", Str, "imageServiceEndpoint"),
    cfg("iptables-drop-bit", Int, "iptablesDropBit"),
    cfg("iptables-masquerade-bit", Int, "iptablesMasqueradeBit"),
    cfg("kernel-memcg-notification", Bool, "kernelMemcgNotification"),
    cfg("kube-api-burst", Int, "kubeAPIBurst"),
    cfg("kube-api-content-type", Str, "contentType"),
    cfg("kube-api-qps", Int, "kubeAPIQPS"),
    cfg("kube-reserved", KvMap, "kubeReserved"),
    cfg("kube-reserved-cgroup", Str, "kubeReservedCgroup"),
    only("kubeconfig", Str),
    cfg("kubelet-cgroups", Str, "kubeletCgroups"),
    cfg(
        "local-storage-capacity-isolation",
        Bool,
        "localStorageCapacityIsolation",
    ),
    only("lock-file", Str),
    cfg("log-flush-frequency", Dur, "logging.flushFrequency"),
    cfg("logging-format", Str, "logging.format"),
    cfg("make-iptables-util-chains", Bool, "makeIPTablesUtilChains"),
    cfg("manifest-url", Str, "staticPodURL"),
    cfg("max-open-files", Int, "maxOpenFiles"),
    cfg("max-parallel-image-pulls", Int, "maxParallelImagePulls"),
    cfg("max-pods", Int, "maxPods"),
    cfg("memory-manager-policy", Str, "memoryManagerPolicy"),
    cfg("minimum-image-ttl-duration", Dur, "imageMinimumGCAge"),
    only("node-ip", Str),
    only("node-labels", KvMap),
    cfg("node-status-max-images", Int, "nodeStatusMaxImages"),
    cfg(
        "node-status-update-frequency",
        Dur,
        "nodeStatusUpdateFrequency",
    ),
    cfg("oom-score-adj", Int, "oomScoreAdj"),
    cfg("pod-cidr", Str, "podCIDR"),
    cfg("pod-manifest-path", Str, "staticPodPath"),
    cfg("pod-max-pids", Int, "podPidsLimit"),
    cfg("pods-per-core", Int, "podsPerCore"),
    cfg("port", Int, "port"),
    cfg("protect-kernel-defaults", Bool, "protectKernelDefaults"),
    cfg("provider-id", Str, "providerID"),
    cfg("qos-reserved", KvMap, "qosReserved"),
    cfg("read-only-port", Int, "readOnlyPort"),
    cfg("register-node", Bool, "registerNode"),
    cfg("register-with-taints", Taints, "registerWithTaints"),
    cfg("registry-burst", Int, "registryBurst"),
    cfg("registry-qps", Int, "registryPullQPS"),
    cfg("reserved-cpus", Str, "reservedSystemCPUs"),
    cfg("resolv-conf", Str, "resolvConf"),
    only("root-dir", Str),
    cfg("rotate-certificates", Bool, "rotateCertificates"),
    cfg("runonce", Bool, "runOnce"),
    cfg("runtime-request-timeout", Dur, "runtimeRequestTimeout"),
    cfg("seccomp-default", Bool, "seccompDefault"),
    cfg("serialize-image-pulls", Bool, "serializeImagePulls"),
    cfg(
        "show-hidden-metrics-for-version",
        Str,
        "showHiddenMetricsForVersion",
    ),
    cfg(
        "streaming-connection-idle-timeout",
        Dur,
        "streamingConnectionIdleTimeout",
    ),
    cfg("sync-frequency", Dur, "syncFrequency"),
    cfg("system-cgroups", Str, "systemCgroups"),
    cfg("system-reserved", KvMap, "systemReserved"),
    cfg("system-reserved-cgroup", Str, "systemReservedCgroup"),
    cfg("tls-cert-file", Str, "tlsCertFile"),
    cfg("tls-cipher-suites", List, "tlsCipherSuites"),
    cfg("tls-min-version", Str, "tlsMinVersion"),
    cfg("tls-private-key-file", Str, "tlsPrivateKeyFile"),
    cfg("topology-manager-policy", Str, "topologyManagerPolicy"),
    cfg(
        "topology-manager-policy-options",
        KvMap,
        "topologyManagerPolicyOptions",
    ),
    cfg("topology-manager-scope", Str, "topologyManagerScope"),
    cfg("v", Int, "logging.verbosity"),
    cfg("volume-plugin-dir", Str, "volumePluginDir"),
    cfg("volume-stats-agg-period", Dur, "volumeStatsAggPeriod"),
];

/// Looks a flag up by name (without dashes).
pub fn flag_spec(name: &str) -> Option<&'static FlagSpec> {
    KUBELET_FLAGS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &KUBELET_FLAGS[i])
}

/// Settings that exist only on the kubelet's command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletFlags {
    /// `--root-dir` (default `/var/lib/kubelet`).
    pub root_dir: PathBuf,
    /// `--hostname-override`.
    pub hostname_override: Option<String>,
    /// `--node-ip` (comma-separated, up to one per family).
    pub node_ip: Option<String>,
    /// `--node-labels`.
    pub node_labels: BTreeMap<String, String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--bootstrap-kubeconfig`.
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// `--cert-dir` (default `/var/lib/kubelet/pki`).
    pub cert_dir: PathBuf,
    /// `--lock-file`.
    pub lock_file: Option<PathBuf>,
    /// `--exit-on-lock-contention`.
    pub exit_on_lock_contention: bool,
}

/// The kubelet's default `--root-dir`.
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";

/// The kubelet's default `--cert-dir`.
pub const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";

/// Flags given on the command line, in order, validated against [`KUBELET_FLAGS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagOverrides {
    entries: Vec<(&'static FlagSpec, Value)>,
    flag_only: Vec<(&'static FlagSpec, Value)>,
}

impl FlagOverrides {
    /// No flags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `--name=value`, checking the name and the value's syntax now.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let spec = flag_spec(name).ok_or_else(|| ConfigError::UnknownFlag(name.to_owned()))?;
        let parsed = parse_value(spec, value)?;
        match spec.target {
            FlagTarget::Config(_) => self.entries.push((spec, parsed)),
            FlagTarget::FlagOnly => self.flag_only.push((spec, parsed)),
        }
        Ok(())
    }

    /// Parses kubelet-style arguments: `--name=value`, `--name value`, or a bare `--name` for
    /// booleans.
    pub fn parse_args<I, S>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::new();
        let args: Vec<String> = args.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(ConfigError::UnknownFlag(arg.clone()));
            };
            if let Some((name, value)) = body.split_once('=') {
                out.set(name, value)?;
            } else {
                let spec =
                    flag_spec(body).ok_or_else(|| ConfigError::UnknownFlag(body.to_owned()))?;
                if spec.kind == FlagKind::Bool {
                    out.set(body, "true")?;
                } else {
                    i += 1;
                    let value = args.get(i).ok_or_else(|| ConfigError::Flag {
                        flag: body.to_owned(),
                        value: String::new(),
                        message: "flag needs an argument".to_owned(),
                    })?;
                    out.set(body, value)?;
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.flag_only.is_empty()
    }

    /// The feature gates given with `--feature-gates`, merged in order.
    pub fn feature_gates(&self) -> BTreeMap<String, bool> {
        let mut gates = BTreeMap::new();
        for (spec, value) in &self.entries {
            if let (FlagKind::FeatureGates, Value::Object(map)) = (spec.kind, value) {
                for (k, v) in map {
                    gates.insert(k.clone(), v.as_bool().unwrap_or_default());
                }
            }
        }
        gates
    }

    /// Writes the configuration flags into the JSON form of a configuration: each replaces
    /// its field, except `--feature-gates`, which is merged per key.
    pub fn apply(&self, config: &mut Value) {
        for (spec, value) in &self.entries {
            let FlagTarget::Config(path) = spec.target else {
                continue;
            };
            let slot = pointer_mut_create(config, path);
            match (spec.kind, &mut *slot, value) {
                (FlagKind::FeatureGates, Value::Object(existing), Value::Object(new)) => {
                    for (k, v) in new {
                        existing.insert(k.clone(), v.clone());
                    }
                }
                _ => *slot = value.clone(),
            }
        }
    }

    /// The command-line-only settings, with the kubelet's defaults for those not given.
    pub fn kubelet_flags(&self) -> KubeletFlags {
        let mut flags = KubeletFlags {
            root_dir: PathBuf::from(DEFAULT_ROOT_DIR),
            cert_dir: PathBuf::from(DEFAULT_CERT_DIR),
            ..Default::default()
        };
        for (spec, value) in &self.flag_only {
            let text = value.as_str().map(str::to_owned);
            match spec.name {
                "root-dir" => flags.root_dir = text.map(PathBuf::from).unwrap_or_default(),
                "cert-dir" => flags.cert_dir = text.map(PathBuf::from).unwrap_or_default(),
                "hostname-override" => flags.hostname_override = text,
                "node-ip" => flags.node_ip = text,
                "kubeconfig" => flags.kubeconfig = text.map(PathBuf::from),
                "bootstrap-kubeconfig" => flags.bootstrap_kubeconfig = text.map(PathBuf::from),
                "lock-file" => flags.lock_file = text.map(PathBuf::from),
                "exit-on-lock-contention" => {
                    flags.exit_on_lock_contention = value.as_bool().unwrap_or_default()
                }
                "node-labels" => {
                    if let Value::Object(map) = value {
                        flags.node_labels = map
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect();
                    }
                }
                _ => {}
            }
        }
        flags
    }
}

/// Returns the JSON slot at dotted `path`, creating objects on the way.
fn pointer_mut_create<'a>(root: &'a mut Value, path: &str) -> &'a mut Value {
    let mut cur = root;
    for key in path.split('.') {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(map) => map.entry(key.to_owned()).or_insert(Value::Null),
            // Not reachable: `cur` was made an object just above.
            other => other,
        };
    }
    cur
}

fn flag_error(spec: &FlagSpec, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag: spec.name.to_owned(),
        value: value.to_owned(),
        message: message.into(),
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_value(spec: &FlagSpec, value: &str) -> Result<Value, ConfigError> {
    Ok(match spec.kind {
        FlagKind::Bool => Value::Bool(
            gates::parse_go_bool(value)
                .ok_or_else(|| flag_error(spec, value, "expected true or false"))?,
        ),
        FlagKind::Int => Value::from(
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| flag_error(spec, value, "expected an integer"))?,
        ),
        FlagKind::String => Value::String(value.to_owned()),
        FlagKind::Duration => Value::String(
            Duration::parse(value)
                .map_err(|e| flag_error(spec, value, e.to_string()))?
                .to_string(),
        ),
        FlagKind::List => Value::Array(
            split_list(value)
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        FlagKind::Map | FlagKind::LessThanMap => {
            let sep = if spec.kind == FlagKind::Map { '=' } else { '<' };
            let mut map = Map::new();
            for pair in split_list(value) {
                let (k, v) = pair.split_once(sep).ok_or_else(|| {
                    flag_error(
                        spec,
                        value,
                        format!("malformed pair {pair:?}, expected key{sep}value"),
                    )
                })?;
                map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            Value::Object(map)
        }
        FlagKind::FeatureGates => {
            let parsed =
                gates::parse_flag(value).map_err(|e| flag_error(spec, value, e.to_string()))?;
            Value::Object(
                parsed
                    .into_iter()
                    .map(|(k, v)| (k, Value::Bool(v)))
                    .collect(),
            )
        }
        FlagKind::Taints => {
            let mut taints = Vec::new();
            for item in split_list(value) {
                let (kv, effect) = item.rsplit_once(':').ok_or_else(|| {
                    flag_error(
                        spec,
                        value,
                        format!("invalid taint spec {item:?}, expected key[=value]:Effect"),
                    )
                })?;
                let (key, val) = kv.split_once('=').unwrap_or((kv, ""));
                let mut t = Map::new();
                t.insert("key".into(), Value::String(key.to_owned()));
                if !val.is_empty() {
                    t.insert("value".into(), Value::String(val.to_owned()));
                }
                t.insert("effect".into(), Value::String(effect.to_owned()));
                taints.push(Value::Object(t));
            }
            Value::Array(taints)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted() {
        for pair in KUBELET_FLAGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn parses_forms() {
        let f = FlagOverrides::parse_args([
            "--port=8081",
            "--fail-swap-on",
            "--root-dir",
            "/tmp/k",
            "--eviction-hard=memory.available<1Gi,nodefs.available<5%",
            "--feature-gates=ContainerCheckpoint=false",
            "--node-labels=a=b,c=d",
        ])
        .unwrap();
        let mut json = serde_json::json!({"featureGates": {"Other": true}});
        f.apply(&mut json);
        assert_eq!(json["port"], 8081);
        assert_eq!(json["failSwapOn"], true);
        assert_eq!(json["evictionHard"]["memory.available"], "1Gi");
        assert_eq!(
            json["featureGates"],
            serde_json::json!({"Other": true, "ContainerCheckpoint": false})
        );
        let kf = f.kubelet_flags();
        assert_eq!(kf.root_dir, PathBuf::from("/tmp/k"));
        assert_eq!(kf.node_labels.len(), 2);
        assert_eq!(kf.cert_dir, PathBuf::from(DEFAULT_CERT_DIR));
    }

    #[test]
    fn bad_flags() {
        assert!(matches!(
            FlagOverrides::parse_args(["--nope=1"]),
            Err(ConfigError::UnknownFlag(_))
        ));
        let err = FlagOverrides::parse_args(["--port=high"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument \"high\" for \"--port\" flag: expected an integer"
        );
        assert!(FlagOverrides::parse_args(["--sync-frequency=5"]).is_err());
        assert!(FlagOverrides::parse_args(["--port"]).is_err());
    }
}
