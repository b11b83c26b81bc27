//! The kubelet's Summary API (`stats/v1alpha1`) as serde types: the JSON field names are
//! the kubelet's, an absent optional value is left out (Go's `omitempty` on a pointer), a
//! pod's `containers` is always written, times are RFC 3339 in UTC with second precision (as
//! `metav1.Time` writes them) while the nanoseconds are kept for `/metrics/resource`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in nanoseconds since the Unix epoch. Serialized as `metav1.Time` is:
/// RFC 3339, UTC, whole seconds (`2026-12-03T10:03:18Z`); read back from any RFC 3339 text
/// (or `null`, the zero time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl Time {
    /// The time `nanos` nanoseconds after the epoch.
    #[must_use]
    pub fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Now, from the system clock.
    #[must_use]
    pub fn now() -> Self {
        let nanos = jiff::Timestamp::now().as_nanosecond();
        Self(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the epoch (rounded down), as Prometheus timestamps are.
    #[must_use]
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Seconds since the epoch with the nanoseconds as the fraction.
    #[must_use]
    pub fn seconds_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The RFC 3339 text `metav1.Time` writes (UTC, whole seconds).
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        match jiff::Timestamp::from_second(secs) {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            // Out of jiff's range (years beyond ±9999): clamp, never fail a response.
            Err(_) if secs < 0 => "0001-01-01T00:00:00Z".to_owned(),
            Err(_) => "9999-12-31T23:59:59Z".to_owned(),
        }
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        let Some(text) = text else {
            return Ok(Self(0));
        };
        let ts: jiff::Timestamp = text.parse().map_err(serde::de::Error::custom)?;
        i64::try_from(ts.as_nanosecond())
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// The whole summary: the node and its pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The node.
    pub node: NodeStats,
    /// The node's pods.
    pub pods: Vec<PodStats>,
}

/// The node's own figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// The node name.
    #[serde(rename = "nodeName")]
    pub node_name: String,
    /// System containers (`kubelet`, `runtime`, `misc`, `pods`) whose cgroups are known.
    #[serde(
        rename = "systemContainers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub system_containers: Vec<ContainerStats>,
    /// When the node started (boot time).
    #[serde(rename = "startTime")]
    pub start_time: Time,
    /// CPU of the root cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CPUStats>,
    /// Memory of the root cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// I/O pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IOStats>,
    /// The node's network interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// The filesystem of the kubelet root directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsStats>,
    /// The runtime's image and container filesystems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStats>,
    /// Process limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit: Option<RlimitStats>,
    /// Swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// Process-id limit and current count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RlimitStats {
    /// When sampled.
    pub time: Time,
    /// `kernel.pid_max`.
    #[serde(rename = "maxpid", default, skip_serializing_if = "Option::is_none")]
    pub max_pid: Option<i64>,
    /// Processes (tasks) running now.
    #[serde(rename = "curproc", default, skip_serializing_if = "Option::is_none")]
    pub num_of_running_processes: Option<i64>,
}

/// The runtime's filesystems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeStats {
    /// Where images are stored.
    #[serde(rename = "imageFs", default, skip_serializing_if = "Option::is_none")]
    pub image_fs: Option<FsStats>,
    /// Where writable layers are stored.
    #[serde(
        rename = "containerFs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_fs: Option<FsStats>,
}

/// The system container names.
pub mod system_container {
    /// The agent's own cgroup.
    pub const KUBELET: &str = "kubelet";
    /// The runtime's cgroup.
    pub const RUNTIME: &str = "runtime";
    /// Other system processes.
    pub const MISC: &str = "misc";
    /// The cgroup holding every pod.
    pub const PODS: &str = "pods";
}

/// A pod's process count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Processes in the pod.
    #[serde(
        rename = "process_count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub process_count: Option<u64>,
}

/// One pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodStats {
    /// Which pod.
    #[serde(rename = "podRef")]
    pub pod_ref: PodReference,
    /// When the pod's sandbox was created.
    #[serde(rename = "startTime")]
    pub start_time: Time,
    /// Its containers; always written (`[]` when there are none).
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
    /// The pod's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CPUStats>,
    /// The pod's memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// I/O pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IOStats>,
    /// The pod's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// Its volumes.
    #[serde(rename = "volume", default, skip_serializing_if = "Vec::is_empty")]
    pub volume_stats: Vec<VolumeStats>,
    /// Local ephemeral storage: writable layers, logs and local ephemeral volumes.
    #[serde(
        rename = "ephemeral-storage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ephemeral_storage: Option<FsStats>,
    /// Processes.
    #[serde(
        rename = "process_stats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub process_stats: Option<ProcessStats>,
    /// Swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// One container (or a system container).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// The container name.
    pub name: String,
    /// When the container was created.
    #[serde(rename = "startTime")]
    pub start_time: Time,
    /// CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CPUStats>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// I/O pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IOStats>,
    /// Accelerators (never filled: the CRI does not report them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerators: Vec<AcceleratorStats>,
    /// The writable layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<FsStats>,
    /// The container's log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<FsStats>,
    /// Custom metrics (never filled: the CRI does not report them).
    #[serde(
        rename = "userDefinedMetrics",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub user_defined_metrics: Vec<UserDefinedMetric>,
    /// Swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
}

/// Which pod a [`PodStats`] is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodReference {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID.
    pub uid: String,
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    #[serde(rename = "rxBytes", default, skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    /// Receive errors.
    #[serde(rename = "rxErrors", default, skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    /// Bytes sent.
    #[serde(rename = "txBytes", default, skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    /// Send errors.
    #[serde(rename = "txErrors", default, skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

/// Network figures: the default interface inline, then every interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    /// When sampled.
    pub time: Time,
    /// The default interface (`eth0`), inlined.
    #[serde(flatten)]
    pub default_interface: InterfaceStats,
    /// Every interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
}

/// CPU figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CPUStats {
    /// When sampled.
    pub time: Time,
    /// Average usage over the last sampling window, in billionths of a core.
    #[serde(
        rename = "usageNanoCores",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_nano_cores: Option<u64>,
    /// Cumulative CPU time in core-nanoseconds.
    #[serde(
        rename = "usageCoreNanoSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_core_nano_seconds: Option<u64>,
    /// CPU pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PSIStats>,
}

/// Memory figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// When sampled.
    pub time: Time,
    /// Memory left before the limit (the node's capacity for the node).
    #[serde(
        rename = "availableBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_bytes: Option<u64>,
    /// Total usage (including page cache).
    #[serde(
        rename = "usageBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_bytes: Option<u64>,
    /// Usage minus inactive file pages: what the OOM killer and eviction look at.
    #[serde(
        rename = "workingSetBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory and swap cache.
    #[serde(rename = "rssBytes", default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Cumulative page faults.
    #[serde(
        rename = "pageFaults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub page_faults: Option<u64>,
    /// Cumulative major page faults.
    #[serde(
        rename = "majorPageFaults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub major_page_faults: Option<u64>,
    /// Memory pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PSIStats>,
}

/// I/O figures (pressure only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IOStats {
    /// When sampled.
    pub time: Time,
    /// I/O pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<PSIStats>,
}

/// Pressure stall information of one resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PSIStats {
    /// All non-idle tasks stalled.
    pub full: PSIData,
    /// Some tasks stalled.
    pub some: PSIData,
}

/// One PSI line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PSIData {
    /// Cumulative stall time in microseconds.
    pub total: u64,
    /// Share of the last 10 s, in percent.
    #[serde(serialize_with = "go_json_float")]
    pub avg10: f64,
    /// Share of the last 60 s, in percent.
    #[serde(serialize_with = "go_json_float")]
    pub avg60: f64,
    /// Share of the last 300 s, in percent.
    #[serde(serialize_with = "go_json_float")]
    pub avg300: f64,
}

/// A float as Go's `encoding/json` writes it: a whole number without a fraction (`0`, not
/// `0.0`); anything else as serde_json writes it (the shortest round-trip digits).
fn go_json_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a whole number below 1e15 is exactly an i64"
        )]
        return s.serialize_i64(*v as i64);
    }
    s.serialize_f64(*v)
}

/// Swap figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwapStats {
    /// When sampled.
    pub time: Time,
    /// Swap left before the limit.
    #[serde(
        rename = "swapAvailableBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub swap_available_bytes: Option<u64>,
    /// Swap in use.
    #[serde(
        rename = "swapUsageBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub swap_usage_bytes: Option<u64>,
}

/// An accelerator (GPU) of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcceleratorStats {
    /// Vendor.
    pub make: String,
    /// Model.
    pub model: String,
    /// Device id.
    pub id: String,
    /// Memory, bytes.
    #[serde(rename = "memoryTotal")]
    pub memory_total: u64,
    /// Memory used, bytes.
    #[serde(rename = "memoryUsed")]
    pub memory_used: u64,
    /// Busy percentage.
    #[serde(rename = "dutyCycle")]
    pub duty_cycle: u64,
}

/// A volume: filesystem figures (inline), its name and claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeStats {
    /// The filesystem figures, inlined.
    #[serde(flatten)]
    pub fs: FsStats,
    /// The volume's name in the pod spec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The claim, for a persistent volume.
    #[serde(rename = "pvcRef", default, skip_serializing_if = "Option::is_none")]
    pub pvc_ref: Option<PVCReference>,
    /// Volume health.
    #[serde(
        rename = "volumeHealthStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_health_stats: Option<VolumeHealthStats>,
}

/// Whether a volume is healthy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeHealthStats {
    /// Abnormal.
    pub abnormal: bool,
}

/// A persistent volume claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PVCReference {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

/// Filesystem figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsStats {
    /// When sampled.
    pub time: Time,
    /// Bytes available to unprivileged users.
    #[serde(
        rename = "availableBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_bytes: Option<u64>,
    /// Size of the filesystem.
    #[serde(
        rename = "capacityBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub capacity_bytes: Option<u64>,
    /// Bytes used (by the whole filesystem, or by what the stats are about).
    #[serde(rename = "usedBytes", default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    /// Free inodes.
    #[serde(
        rename = "inodesFree",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inodes_free: Option<u64>,
    /// All inodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    /// Inodes used.
    #[serde(
        rename = "inodesUsed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inodes_used: Option<u64>,
}

/// A custom metric (never filled by this crate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserDefinedMetric {
    /// Name.
    pub name: String,
    /// `gauge`, `cumulative` or `delta`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Units.
    pub units: String,
    /// Labels.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// When sampled.
    pub time: Time,
    /// Value.
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_seconds_in_utc() {
        let t = Time::from_nanos(1_796_292_198_272_364_604);
        assert_eq!(t.to_rfc3339(), "2026-12-03T10:03:18Z");
        assert_eq!(t.millis(), 1_796_292_198_272);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-12-03T10:03:18Z\""
        );
        let back: Time = serde_json::from_str("\"2026-12-03T10:03:18Z\"").unwrap();
        assert_eq!(back.nanos(), 1_796_292_198_000_000_000);
        let zero: Time = serde_json::from_str("null").unwrap();
        assert_eq!(zero, Time(0));
        // The extremes of the range still format.
        assert_eq!(Time(i64::MIN).to_rfc3339(), "1677-09-21T00:12:43Z");
        assert_eq!(Time(i64::MAX).to_rfc3339(), "2262-04-11T23:47:16Z");
    }

    #[test]
    fn optional_fields_are_left_out_and_containers_always_written() {
        let pod = PodStats {
            pod_ref: PodReference {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u".into(),
            },
            ..PodStats::default()
        };
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "podRef": {"name": "p", "namespace": "ns", "uid": "u"},
                "startTime": "1970-01-01T00:00:00Z",
                "containers": []
            })
        );
    }

    #[test]
    fn psi_averages_are_written_as_go_writes_floats() {
        let p = PSIData {
            total: 5,
            avg10: 0.0,
            avg60: 70.66,
            avg300: 100.0,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"total":5,"avg10":0,"avg60":70.66,"avg300":100}"#
        );
        let back: PSIData =
            serde_json::from_str(r#"{"total":5,"avg10":0,"avg60":70.66,"avg300":100}"#).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn inline_fields_are_flattened() {
        let net = NetworkStats {
            time: Time(0),
            default_interface: InterfaceStats {
                name: "eth0".into(),
                rx_bytes: Some(1),
                ..InterfaceStats::default()
            },
            interfaces: vec![InterfaceStats {
                name: "eth0".into(),
                rx_bytes: Some(1),
                ..InterfaceStats::default()
            }],
        };
        let v = serde_json::to_value(&net).unwrap();
        assert_eq!(v["name"], "eth0");
        assert_eq!(v["rxBytes"], 1);
        assert_eq!(v["interfaces"][0]["name"], "eth0");
        let vol = VolumeStats {
            fs: FsStats {
                used_bytes: Some(5),
                ..FsStats::default()
            },
            name: "data".into(),
            ..VolumeStats::default()
        };
        let v = serde_json::to_value(&vol).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"time": "1970-01-01T00:00:00Z", "usedBytes": 5, "name": "data"})
        );
        let back: VolumeStats = serde_json::from_value(v).unwrap();
        assert_eq!(back, vol);
    }
}
