//! The decisions, without I/O: CPU rates from two cumulative samples (and the bounded cache
//! of previous samples), which sandboxes and containers are reported, container figures from
//! the runtime's answer, pod figures summed from containers, ephemeral storage, and the
//! reduced (CPU and memory only) form.

use std::collections::{HashMap, HashSet};

use super::types::{
    CPUStats, ContainerStats, FsStats, IOStats, InterfaceStats, MemoryStats, NetworkStats,
    NodeStats, PSIData, PSIStats, PodReference, PodStats, ProcessStats, Summary, SwapStats, Time,
    VolumeStats,
};
use crate::cri;

/// A cumulative CPU reading: when, and core-nanoseconds used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
    /// Cumulative usage, core-nanoseconds.
    pub usage_ns: u64,
}

/// Average usage between two samples in billionths of a core, or `None` when the interval
/// is not positive or the counter went backwards (a restarted container).
#[must_use]
pub fn nano_cores(prev: CpuSample, cur: CpuSample) -> Option<u64> {
    let dt = cur.time_ns.checked_sub(prev.time_ns)?;
    if dt <= 0 {
        return None;
    }
    let used = cur.usage_ns.checked_sub(prev.usage_ns)?;
    let rate = used as f64 / dt as f64 * 1e9;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the rate is finite and not negative; `as` saturates at u64::MAX"
    )]
    Some(rate as u64)
}

/// Samples closer together than this do not replace the cached one: a rate over a few
/// milliseconds (two scrapes back to back) would be noise. The kubelet's own window is its
/// eviction manager's 10 s period.
pub const MIN_WINDOW_NS: i64 = 1_000_000_000;

/// Entries older than this are dropped (the kubelet's `defaultCachePeriod`).
pub const MAX_AGE_NS: i64 = 10 * 60 * 1_000_000_000;

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    sample: CpuSample,
    rate: Option<u64>,
}

/// The previous CPU sample of each container, pod and the node, to turn cumulative usage into
/// `usageNanoCores`. Bounded: at most `capacity` entries; [`CpuRateCache::prune`] drops what
/// is gone.
#[derive(Debug, Clone)]
pub struct CpuRateCache {
    entries: HashMap<String, CacheEntry>,
    capacity: usize,
}

impl Default for CpuRateCache {
    fn default() -> Self {
        Self::with_capacity(8192)
    }
}

impl CpuRateCache {
    /// A cache holding at most `capacity` entries.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// Records `sample` for `key` and returns the usage rate: computed from the previous sample
    /// when it is at least [`MIN_WINDOW_NS`] older, the last computed rate when it is newer
    /// than that, `None` for a first sample or after the counter went backwards.
    pub fn update(&mut self, key: &str, sample: CpuSample) -> Option<u64> {
        let Some(entry) = self.entries.get_mut(key) else {
            if self.entries.len() < self.capacity {
                self.entries
                    .insert(key.to_owned(), CacheEntry { sample, rate: None });
            }
            return None;
        };
        let prev = entry.sample;
        if sample.usage_ns < prev.usage_ns || sample.time_ns < prev.time_ns {
            *entry = CacheEntry { sample, rate: None };
            return None;
        }
        if sample.time_ns - prev.time_ns < MIN_WINDOW_NS {
            return entry.rate;
        }
        let rate = nano_cores(prev, sample);
        *entry = CacheEntry { sample, rate };
        rate
    }

    /// Keeps only the entries in `live` whose sample is younger than [`MAX_AGE_NS`] at `now`.
    pub fn prune(&mut self, live: &HashSet<String>, now: Time) {
        self.entries.retain(|k, e| {
            live.contains(k) && now.nanos().saturating_sub(e.sample.time_ns) <= MAX_AGE_NS
        });
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The usage rate to report: the runtime's when it gives a non-zero one (containerd computes
/// its own), else the one computed from our samples, else the runtime's zero.
#[must_use]
pub fn pick_nano_cores(runtime: Option<u64>, computed: Option<u64>) -> Option<u64> {
    match (runtime, computed) {
        (Some(r), _) if r > 0 => Some(r),
        (_, Some(c)) => Some(c),
        (r, None) => r,
    }
}

/// A runtime timestamp as a [`Time`], `now` when the runtime left it at zero (containerd does
/// for a writable layer it has not measured yet).
#[must_use]
pub fn runtime_time(timestamp: i64, now: Time) -> Time {
    if timestamp > 0 { Time(timestamp) } else { now }
}

fn value(v: Option<&cri::UInt64Value>) -> Option<u64> {
    v.map(|v| v.value)
}

fn psi_data(d: Option<&cri::PsiData>) -> PSIData {
    d.map(|d| PSIData {
        total: d.total,
        avg10: if d.avg10.is_finite() { d.avg10 } else { 0.0 },
        avg60: if d.avg60.is_finite() { d.avg60 } else { 0.0 },
        avg300: if d.avg300.is_finite() { d.avg300 } else { 0.0 },
    })
    .unwrap_or_default()
}

/// The runtime's pressure figures.
#[must_use]
pub fn psi_from_cri(p: Option<&cri::PsiStats>) -> Option<PSIStats> {
    p.map(|p| PSIStats {
        full: psi_data(p.full.as_ref()),
        some: psi_data(p.some.as_ref()),
    })
}

/// CPU figures from the runtime; a missing `cpu` is zero usage sampled `now`, as the kubelet
/// shows it.
#[must_use]
pub fn cpu_from_cri(cpu: Option<&cri::CpuUsage>, nano_cores: Option<u64>, now: Time) -> CPUStats {
    match cpu {
        Some(cpu) => CPUStats {
            time: runtime_time(cpu.timestamp, now),
            usage_nano_cores: nano_cores,
            usage_core_nano_seconds: value(cpu.usage_core_nano_seconds.as_ref()),
            psi: psi_from_cri(cpu.psi.as_ref()),
        },
        None => CPUStats {
            time: now,
            usage_nano_cores: Some(0),
            usage_core_nano_seconds: Some(0),
            psi: None,
        },
    }
}

/// Memory figures from the runtime; a missing `memory` is a zero working set sampled `now`.
/// An `available_bytes` of zero is left out: containerd reports zero for a container without
/// a memory limit, where the kubelet (through cAdvisor) reports nothing.
#[must_use]
pub fn memory_from_cri(mem: Option<&cri::MemoryUsage>, now: Time) -> MemoryStats {
    match mem {
        Some(m) => MemoryStats {
            time: runtime_time(m.timestamp, now),
            available_bytes: value(m.available_bytes.as_ref()).filter(|v| *v > 0),
            usage_bytes: value(m.usage_bytes.as_ref()),
            working_set_bytes: value(m.working_set_bytes.as_ref()),
            rss_bytes: value(m.rss_bytes.as_ref()),
            page_faults: value(m.page_faults.as_ref()),
            major_page_faults: value(m.major_page_faults.as_ref()),
            psi: psi_from_cri(m.psi.as_ref()),
        },
        None => MemoryStats {
            time: now,
            working_set_bytes: Some(0),
            ..MemoryStats::default()
        },
    }
}

/// Swap figures from the runtime; missing is zero sampled `now`, as the kubelet shows it.
#[must_use]
pub fn swap_from_cri(swap: Option<&cri::SwapUsage>, now: Time) -> SwapStats {
    match swap {
        Some(s) => SwapStats {
            time: runtime_time(s.timestamp, now),
            swap_available_bytes: value(s.swap_available_bytes.as_ref()),
            swap_usage_bytes: value(s.swap_usage_bytes.as_ref()),
        },
        None => SwapStats {
            time: now,
            swap_available_bytes: Some(0),
            swap_usage_bytes: Some(0),
        },
    }
}

/// The writable layer as [`FsStats`]: used bytes and inodes from the runtime, capacity and
/// free space of the filesystem holding it (`fs`) when known.
#[must_use]
pub fn rootfs_from_cri(
    layer: Option<&cri::FilesystemUsage>,
    fs: Option<&FsStats>,
    now: Time,
) -> Option<FsStats> {
    let layer = layer?;
    Some(FsStats {
        time: runtime_time(layer.timestamp, now),
        used_bytes: value(layer.used_bytes.as_ref()),
        inodes_used: value(layer.inodes_used.as_ref()),
        ..capacity_of(fs)
    })
}

/// The capacity half of a filesystem's figures (available, capacity, inodes, free inodes).
#[must_use]
pub fn capacity_of(fs: Option<&FsStats>) -> FsStats {
    fs.map(|fs| FsStats {
        time: fs.time,
        available_bytes: fs.available_bytes,
        capacity_bytes: fs.capacity_bytes,
        used_bytes: None,
        inodes_free: fs.inodes_free,
        inodes: fs.inodes,
        inodes_used: None,
    })
    .unwrap_or_default()
}

/// Usage of something on a filesystem: `used` bytes and inodes (a walk) with the capacity of
/// the filesystem (`fs`).
#[must_use]
pub fn usage_on(fs: Option<&FsStats>, used: (u64, u64), now: Time) -> FsStats {
    FsStats {
        time: fs.map_or(now, |f| f.time),
        used_bytes: Some(used.0),
        inodes_used: Some(used.1),
        ..capacity_of(fs)
    }
}

/// What the thin layer looked up on disk for one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerDisk {
    /// The filesystem of the writable layer (statvfs of the runtime's mountpoint).
    pub layer_fs: Option<FsStats>,
    /// The container's log files: usage on the node filesystem.
    pub logs: Option<FsStats>,
}

/// One container's [`ContainerStats`] from the runtime's container and its stats;
/// `nano_cores` is the rate decided by [`pick_nano_cores`]. `disk` is `None` for the CPU and
/// memory form.
#[must_use]
pub fn container_stats(
    container: &cri::Container,
    stats: &cri::ContainerStats,
    nano_cores: Option<u64>,
    disk: Option<&ContainerDisk>,
    now: Time,
) -> ContainerStats {
    let name = stats
        .attributes
        .as_ref()
        .and_then(|a| a.metadata.as_ref())
        .or(container.metadata.as_ref())
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let mut out = ContainerStats {
        name,
        // The Summary's container start time is its creation time.
        start_time: Time(container.created_at),
        cpu: Some(cpu_from_cri(stats.cpu.as_ref(), nano_cores, now)),
        memory: Some(memory_from_cri(stats.memory.as_ref(), now)),
        ..ContainerStats::default()
    };
    if let Some(disk) = disk {
        out.swap = Some(swap_from_cri(stats.swap.as_ref(), now));
        out.io = stats.io.as_ref().map(|io| IOStats {
            time: runtime_time(io.timestamp, now),
            psi: psi_from_cri(io.psi.as_ref()),
        });
        out.rootfs = rootfs_from_cri(stats.writable_layer.as_ref(), disk.layer_fs.as_ref(), now);
        out.logs = disk.logs.clone();
    }
    out
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn sum0(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0)))
}

/// The pod's CPU, memory and swap summed over its containers, the kubelet's way when it has
/// no pod cgroup figures: every summed field present (missing counts as zero), the time of
/// the last container, no pressure figures.
#[must_use]
pub fn sum_containers(
    containers: &[ContainerStats],
) -> (Option<CPUStats>, Option<MemoryStats>, Option<SwapStats>) {
    let mut cpu: Option<CPUStats> = None;
    let mut mem: Option<MemoryStats> = None;
    let mut swap: Option<SwapStats> = None;
    for c in containers {
        if let Some(cc) = &c.cpu {
            let p = cpu.get_or_insert_with(CPUStats::default);
            p.time = cc.time;
            p.usage_core_nano_seconds = sum0(p.usage_core_nano_seconds, cc.usage_core_nano_seconds);
            p.usage_nano_cores = sum0(p.usage_nano_cores, cc.usage_nano_cores);
        }
        if let Some(cm) = &c.memory {
            let p = mem.get_or_insert_with(MemoryStats::default);
            p.time = cm.time;
            p.available_bytes = sum0(p.available_bytes, cm.available_bytes);
            p.usage_bytes = sum0(p.usage_bytes, cm.usage_bytes);
            p.working_set_bytes = sum0(p.working_set_bytes, cm.working_set_bytes);
            p.rss_bytes = sum0(p.rss_bytes, cm.rss_bytes);
            p.page_faults = sum0(p.page_faults, cm.page_faults);
            p.major_page_faults = sum0(p.major_page_faults, cm.major_page_faults);
        }
        if let Some(cs) = &c.swap {
            let p = swap.get_or_insert_with(|| SwapStats {
                time: cs.time,
                ..SwapStats::default()
            });
            p.swap_available_bytes = sum0(p.swap_available_bytes, cs.swap_available_bytes);
            p.swap_usage_bytes = sum0(p.swap_usage_bytes, cs.swap_usage_bytes);
        }
    }
    (cpu, mem, swap)
}

/// The pod's local ephemeral storage: its containers' writable layers and logs, its local
/// ephemeral volumes and `extra` files (the pod's `etc-hosts`), with the capacity of the node
/// filesystem `rootfs`. Sums saturate; a field nothing reported stays absent.
#[must_use]
pub fn ephemeral_storage(
    containers: &[ContainerStats],
    ephemeral_volumes: &[VolumeStats],
    extra: Option<(u64, u64)>,
    rootfs: Option<&FsStats>,
    now: Time,
) -> FsStats {
    let mut out = FsStats {
        time: rootfs.map_or(now, |f| f.time),
        ..capacity_of(rootfs)
    };
    let mut take = |fs: &FsStats| {
        out.used_bytes = add(out.used_bytes, fs.used_bytes);
        out.inodes_used = add(out.inodes_used, fs.inodes_used);
        out.time = out.time.max(fs.time);
    };
    for c in containers {
        if let Some(r) = &c.rootfs {
            take(r);
        }
        if let Some(l) = &c.logs {
            take(l);
        }
    }
    for v in ephemeral_volumes {
        take(&v.fs);
    }
    if let Some((bytes, inodes)) = extra {
        take(&FsStats {
            time: Time(0),
            used_bytes: Some(bytes),
            inodes_used: Some(inodes),
            ..FsStats::default()
        });
    }
    out
}

/// The sandboxes to report, the kubelet's `removeTerminatedPods`: of several sandboxes of one
/// pod (name and namespace), the ready ones, else the newest; a lone sandbox always.
#[must_use]
pub fn select_sandboxes(sandboxes: &[cri::PodSandbox]) -> Vec<&cri::PodSandbox> {
    let mut sorted: Vec<&cri::PodSandbox> = sandboxes.iter().collect();
    sorted.sort_by_key(|s| s.created_at);
    let mut by_pod: Vec<((String, String), Vec<&cri::PodSandbox>)> = Vec::new();
    for s in sorted {
        let key = s
            .metadata
            .as_ref()
            .map(|m| (m.namespace.clone(), m.name.clone()))
            .unwrap_or_default();
        match by_pod.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(s),
            None => by_pod.push((key, vec![s])),
        }
    }
    let mut out = Vec::new();
    for (_, list) in by_pod {
        if list.len() == 1 {
            out.extend(list);
            continue;
        }
        let ready: Vec<&cri::PodSandbox> = list
            .iter()
            .copied()
            .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            .collect();
        if ready.is_empty() {
            out.extend(list.last().copied());
        } else {
            out.extend(ready);
        }
    }
    out
}

/// Whether the runtime says the container runs (the kubelet counts only those).
#[must_use]
pub fn is_running(c: &cri::Container) -> bool {
    c.state == cri::ContainerState::ContainerRunning as i32
}

/// The pod reference and start time (sandbox creation) of a sandbox.
#[must_use]
pub fn pod_base(sandbox: &cri::PodSandbox) -> PodStats {
    let meta = sandbox.metadata.clone().unwrap_or_default();
    PodStats {
        pod_ref: PodReference {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
        },
        start_time: Time(sandbox.created_at),
        ..PodStats::default()
    }
}

fn interface(i: &cri::NetworkInterfaceUsage) -> InterfaceStats {
    InterfaceStats {
        name: i.name.clone(),
        rx_bytes: value(i.rx_bytes.as_ref()),
        rx_errors: value(i.rx_errors.as_ref()),
        tx_bytes: value(i.tx_bytes.as_ref()),
        tx_errors: value(i.tx_errors.as_ref()),
    }
}

/// The pod-level figures a runtime's `ListPodSandboxStats` gives (CPU with `nano_cores`
/// decided by the caller, memory, network, processes, I/O pressure) onto `pod`.
pub fn apply_sandbox_stats(
    pod: &mut PodStats,
    linux: &cri::LinuxPodSandboxStats,
    nano_cores: Option<u64>,
    now: Time,
) {
    if let Some(cpu) = &linux.cpu {
        pod.cpu = Some(cpu_from_cri(Some(cpu), nano_cores, now));
    }
    if let Some(m) = &linux.memory {
        pod.memory = Some(memory_from_cri(Some(m), now));
    }
    if let Some(n) = &linux.network {
        pod.network = Some(NetworkStats {
            time: runtime_time(n.timestamp, now),
            default_interface: n
                .default_interface
                .as_ref()
                .map(interface)
                .unwrap_or_default(),
            interfaces: n.interfaces.iter().map(interface).collect(),
        });
    }
    if let Some(p) = &linux.process {
        pod.process_stats = Some(ProcessStats {
            process_count: value(p.process_count.as_ref()),
        });
    }
    if let Some(io) = &linux.io {
        pod.io = Some(IOStats {
            time: runtime_time(io.timestamp, now),
            psi: psi_from_cri(io.psi.as_ref()),
        });
    }
}

/// Network figures of a network namespace (the node's, a pod's): `eth0` inlined as the
/// default interface (an empty name when there is none), every interface listed; `None`
/// without interfaces.
#[must_use]
pub fn network_stats(interfaces: Vec<InterfaceStats>, time: Time) -> Option<NetworkStats> {
    if interfaces.is_empty() {
        return None;
    }
    let default_interface = interfaces
        .iter()
        .find(|i| i.name == super::host::DEFAULT_INTERFACE)
        .cloned()
        .unwrap_or_default();
    Some(NetworkStats {
        time,
        default_interface,
        interfaces,
    })
}

/// The sandbox process's PID in a runtime's verbose status (containerd and CRI-O put a JSON
/// document with `"pid"` under `info`), when it is a plausible PID.
#[must_use]
pub fn pid_from_verbose_info(info: &std::collections::HashMap<String, String>) -> Option<u32> {
    let doc: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    let pid = u32::try_from(doc.get("pid")?.as_u64()?).ok()?;
    (pid > 0 && i32::try_from(pid).is_ok()).then_some(pid)
}

/// The node's CPU from the root cgroup's cumulative usage and the rate decided by the cache.
#[must_use]
pub fn node_cpu(usage_ns: Option<u64>, nano_cores: Option<u64>, time: Time) -> Option<CPUStats> {
    Some(CPUStats {
        time,
        usage_nano_cores: nano_cores,
        usage_core_nano_seconds: Some(usage_ns?),
        psi: None,
    })
}

/// The reduced summary of `?only_cpu_and_memory=true` (the kubelet's `GetCPUAndMemoryStats`):
/// the node's name, start time, CPU, memory and swap; each pod's reference, start time, CPU
/// and memory; each container's name, start time, CPU and memory.
#[must_use]
pub fn only_cpu_and_memory(summary: Summary) -> Summary {
    let node = NodeStats {
        node_name: summary.node.node_name,
        system_containers: summary
            .node
            .system_containers
            .into_iter()
            .map(reduce_container)
            .collect(),
        start_time: summary.node.start_time,
        cpu: summary.node.cpu,
        memory: summary.node.memory,
        swap: summary.node.swap,
        ..NodeStats::default()
    };
    let pods = summary
        .pods
        .into_iter()
        .map(|p| PodStats {
            pod_ref: p.pod_ref,
            start_time: p.start_time,
            containers: p.containers.into_iter().map(reduce_container).collect(),
            cpu: p.cpu,
            memory: p.memory,
            ..PodStats::default()
        })
        .collect();
    Summary { node, pods }
}

fn reduce_container(c: ContainerStats) -> ContainerStats {
    ContainerStats {
        name: c.name,
        start_time: c.start_time,
        cpu: c.cpu,
        memory: c.memory,
        ..ContainerStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, u: u64) -> CpuSample {
        CpuSample {
            time_ns: t,
            usage_ns: u,
        }
    }

    #[test]
    fn nano_cores_from_two_samples() {
        // Half a core over 2 s.
        assert_eq!(
            nano_cores(s(0, 0), s(2_000_000_000, 1_000_000_000)),
            Some(500_000_000)
        );
        assert_eq!(nano_cores(s(5, 0), s(5, 10)), None, "zero interval");
        assert_eq!(nano_cores(s(6, 0), s(5, 10)), None, "time went back");
        assert_eq!(nano_cores(s(0, 10), s(5, 0)), None, "counter reset");
        assert_eq!(nano_cores(s(i64::MIN, 0), s(i64::MAX, 1)), None, "overflow");
        assert_eq!(
            nano_cores(s(0, 0), s(1, u64::MAX)),
            Some(u64::MAX),
            "saturates"
        );
    }

    #[test]
    fn the_cache_keeps_a_window_and_is_bounded() {
        let mut c = CpuRateCache::with_capacity(2);
        assert_eq!(c.update("a", s(0, 0)), None, "first sample");
        // Too close: no rate yet, the first sample is kept.
        assert_eq!(c.update("a", s(100, 50)), None);
        assert_eq!(
            c.update("a", s(2_000_000_000, 2_000_000_000)),
            Some(1_000_000_000)
        );
        // Close to the last one: the last rate again.
        assert_eq!(
            c.update("a", s(2_000_000_100, 2_000_000_000)),
            Some(1_000_000_000)
        );
        // Restarted container: counter back to zero.
        assert_eq!(c.update("a", s(3_000_000_000, 5)), None);
        c.update("b", s(0, 0));
        c.update("c", s(0, 0));
        assert_eq!(c.len(), 2, "capacity holds");
        assert_eq!(c.update("c", s(2_000_000_000, 1)), None, "never cached");
        let live: HashSet<String> = ["a".to_owned()].into();
        c.prune(&live, Time(3_000_000_000));
        assert_eq!(c.len(), 1);
        c.prune(&live, Time(3_000_000_000 + MAX_AGE_NS + 1));
        assert!(c.is_empty(), "too old");
    }

    #[test]
    fn the_runtime_rate_wins_unless_zero() {
        assert_eq!(pick_nano_cores(Some(7), Some(9)), Some(7));
        assert_eq!(pick_nano_cores(Some(0), Some(9)), Some(9));
        assert_eq!(pick_nano_cores(Some(0), None), Some(0));
        assert_eq!(pick_nano_cores(None, None), None);
        assert_eq!(pick_nano_cores(None, Some(3)), Some(3));
    }

    fn u(v: u64) -> Option<cri::UInt64Value> {
        Some(cri::UInt64Value { value: v })
    }

    fn cri_container(id: &str, name: &str, running: bool) -> cri::Container {
        cri::Container {
            id: id.into(),
            pod_sandbox_id: "sb".into(),
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            state: if running {
                cri::ContainerState::ContainerRunning as i32
            } else {
                cri::ContainerState::ContainerExited as i32
            },
            created_at: 1_796_292_198_408_312_269,
            ..cri::Container::default()
        }
    }

    fn cri_stats(id: &str, name: &str) -> cri::ContainerStats {
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: id.into(),
                metadata: Some(cri::ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                ..cri::ContainerAttributes::default()
            }),
            cpu: Some(cri::CpuUsage {
                timestamp: 1_796_292_200_516_596_205,
                usage_core_nano_seconds: u(1_697_999_541),
                usage_nano_cores: u(0),
                psi: None,
            }),
            memory: Some(cri::MemoryUsage {
                timestamp: 1_796_292_200_516_596_205,
                working_set_bytes: u(520_192),
                available_bytes: u(0),
                usage_bytes: u(520_192),
                rss_bytes: u(57_344),
                page_faults: u(840),
                major_page_faults: u(0),
                psi: None,
            }),
            writable_layer: Some(cri::FilesystemUsage {
                timestamp: 0,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: "/var/lib/containerd/overlay".into(),
                }),
                used_bytes: u(4096),
                inodes_used: u(3),
            }),
            swap: None,
            io: None,
        }
    }

    #[test]
    fn container_figures_as_containerd_1_6_gives_them() {
        let now = Time(1_796_292_201_000_000_000);
        let layer_fs = FsStats {
            time: now,
            capacity_bytes: Some(1000),
            available_bytes: Some(400),
            used_bytes: Some(600),
            inodes: Some(10),
            inodes_free: Some(4),
            inodes_used: Some(6),
        };
        let disk = ContainerDisk {
            layer_fs: Some(layer_fs),
            logs: Some(usage_on(None, (8192, 2), now)),
        };
        let c = container_stats(
            &cri_container("c1", "burn", true),
            &cri_stats("c1", "burn"),
            Some(123),
            Some(&disk),
            now,
        );
        assert_eq!(c.name, "burn");
        assert_eq!(c.start_time, Time(1_796_292_198_408_312_269));
        let cpu = c.cpu.as_ref().unwrap();
        assert_eq!(cpu.usage_core_nano_seconds, Some(1_697_999_541));
        assert_eq!(cpu.usage_nano_cores, Some(123));
        let mem = c.memory.as_ref().unwrap();
        assert_eq!(mem.working_set_bytes, Some(520_192));
        assert_eq!(mem.available_bytes, None, "containerd's 0 for no limit");
        assert_eq!(mem.rss_bytes, Some(57_344));
        let rootfs = c.rootfs.as_ref().unwrap();
        assert_eq!(rootfs.time, now, "timestamp 0 becomes now");
        assert_eq!(rootfs.used_bytes, Some(4096));
        assert_eq!(rootfs.inodes_used, Some(3));
        assert_eq!(rootfs.capacity_bytes, Some(1000));
        assert_eq!(rootfs.available_bytes, Some(400));
        assert_eq!(rootfs.inodes_free, Some(4));
        let swap = c.swap.as_ref().unwrap();
        assert_eq!(swap.swap_usage_bytes, Some(0));
        assert_eq!(c.logs.as_ref().unwrap().used_bytes, Some(8192));
        // The CPU and memory form looks at no disk.
        let reduced = container_stats(
            &cri_container("c1", "burn", true),
            &cri_stats("c1", "burn"),
            None,
            None,
            now,
        );
        assert!(reduced.rootfs.is_none() && reduced.logs.is_none() && reduced.swap.is_none());
        // Nothing from the runtime: zeros now, as the kubelet.
        let empty = container_stats(
            &cri_container("c2", "x", true),
            &cri::ContainerStats::default(),
            None,
            None,
            now,
        );
        assert_eq!(
            empty.name, "x",
            "name from the container when stats have none"
        );
        assert_eq!(empty.cpu.as_ref().unwrap().usage_core_nano_seconds, Some(0));
        assert_eq!(empty.memory.as_ref().unwrap().working_set_bytes, Some(0));
        assert_eq!(empty.memory.as_ref().unwrap().time, now);
    }

    #[test]
    fn pod_sums_saturate_and_fill_every_field() {
        let c = |cpu: u64, ws: u64, t: i64| ContainerStats {
            cpu: Some(CPUStats {
                time: Time(t),
                usage_core_nano_seconds: Some(cpu),
                usage_nano_cores: None,
                psi: None,
            }),
            memory: Some(MemoryStats {
                time: Time(t),
                working_set_bytes: Some(ws),
                ..MemoryStats::default()
            }),
            swap: Some(SwapStats {
                time: Time(t),
                swap_usage_bytes: Some(1),
                swap_available_bytes: None,
            }),
            ..ContainerStats::default()
        };
        let (cpu, mem, swap) = sum_containers(&[c(5, 10, 1), c(u64::MAX, 20, 2)]);
        let cpu = cpu.unwrap();
        assert_eq!(cpu.usage_core_nano_seconds, Some(u64::MAX));
        assert_eq!(cpu.usage_nano_cores, Some(0));
        assert_eq!(cpu.time, Time(2));
        let mem = mem.unwrap();
        assert_eq!(mem.working_set_bytes, Some(30));
        assert_eq!(mem.rss_bytes, Some(0));
        let swap = swap.unwrap();
        assert_eq!(swap.swap_usage_bytes, Some(2));
        assert_eq!(swap.time, Time(1), "the first container's time");
        assert_eq!(sum_containers(&[]), (None, None, None));
    }

    #[test]
    fn ephemeral_storage_sums_layers_logs_volumes_and_extras() {
        let rootfs = FsStats {
            time: Time(10),
            capacity_bytes: Some(100),
            available_bytes: Some(50),
            inodes: Some(9),
            inodes_free: Some(3),
            used_bytes: Some(50),
            inodes_used: Some(6),
        };
        let fs = |b: u64, i: u64, t: i64| FsStats {
            time: Time(t),
            used_bytes: Some(b),
            inodes_used: Some(i),
            ..FsStats::default()
        };
        let c = ContainerStats {
            rootfs: Some(fs(1, 1, 5)),
            logs: Some(fs(2, 1, 20)),
            ..ContainerStats::default()
        };
        let vols = [VolumeStats {
            fs: fs(4, 2, 0),
            name: "cache".into(),
            ..VolumeStats::default()
        }];
        let e = ephemeral_storage(&[c], &vols, Some((8, 1)), Some(&rootfs), Time(0));
        assert_eq!(e.used_bytes, Some(15));
        assert_eq!(e.inodes_used, Some(5));
        assert_eq!(e.capacity_bytes, Some(100));
        assert_eq!(e.available_bytes, Some(50));
        assert_eq!(e.time, Time(20), "the newest sample");
        let e = ephemeral_storage(&[], &[], None, None, Time(7));
        assert_eq!(e.used_bytes, None);
        assert_eq!(e.time, Time(7));
    }

    fn sandbox(id: &str, name: &str, created: i64, ready: bool) -> cri::PodSandbox {
        cri::PodSandbox {
            id: id.into(),
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{id}"),
                namespace: "ns".into(),
                attempt: 0,
            }),
            state: if ready {
                cri::PodSandboxState::SandboxReady as i32
            } else {
                cri::PodSandboxState::SandboxNotready as i32
            },
            created_at: created,
            ..cri::PodSandbox::default()
        }
    }

    #[test]
    fn terminated_sandboxes_are_dropped_when_a_newer_one_exists() {
        let list = [
            sandbox("old", "web", 1, false),
            sandbox("new", "web", 2, true),
            sandbox("gone1", "db", 1, false),
            sandbox("gone2", "db", 3, false),
            sandbox("lone", "cache", 1, false),
        ];
        let mut ids: Vec<&str> = select_sandboxes(&list)
            .into_iter()
            .map(|s| s.id.as_str())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, ["gone2", "lone", "new"]);
        let p = pod_base(&list[1]);
        assert_eq!(p.pod_ref.uid, "uid-new");
        assert_eq!(p.start_time, Time(2));
        assert!(is_running(&cri_container("a", "a", true)));
        assert!(!is_running(&cri_container("a", "a", false)));
    }

    #[test]
    fn sandbox_stats_fill_pod_level_figures() {
        let mut pod = PodStats::default();
        let linux = cri::LinuxPodSandboxStats {
            cpu: Some(cri::CpuUsage {
                timestamp: 5,
                usage_core_nano_seconds: u(10),
                usage_nano_cores: None,
                psi: None,
            }),
            network: Some(cri::NetworkUsage {
                timestamp: 5,
                default_interface: Some(cri::NetworkInterfaceUsage {
                    name: "eth0".into(),
                    rx_bytes: u(1),
                    ..cri::NetworkInterfaceUsage::default()
                }),
                interfaces: vec![],
            }),
            process: Some(cri::ProcessUsage {
                timestamp: 5,
                process_count: u(3),
            }),
            ..cri::LinuxPodSandboxStats::default()
        };
        apply_sandbox_stats(&mut pod, &linux, Some(4), Time(9));
        assert_eq!(pod.cpu.as_ref().unwrap().usage_nano_cores, Some(4));
        assert_eq!(pod.network.as_ref().unwrap().default_interface.name, "eth0");
        assert_eq!(pod.process_stats.as_ref().unwrap().process_count, Some(3));
        assert!(pod.memory.is_none());
    }

    #[test]
    fn sandbox_pid_from_the_verbose_status() {
        let info =
            |v: &str| -> HashMap<String, String> { [("info".to_owned(), v.to_owned())].into() };
        assert_eq!(
            pid_from_verbose_info(&info(r#"{"pid": 4242, "processStatus": "running"}"#)),
            Some(4242)
        );
        assert_eq!(pid_from_verbose_info(&info(r#"{"pid": 0}"#)), None);
        assert_eq!(pid_from_verbose_info(&info(r#"{"pid": -1}"#)), None);
        assert_eq!(
            pid_from_verbose_info(&info(r#"{"pid": 99999999999}"#)),
            None
        );
        assert_eq!(pid_from_verbose_info(&info(r#"{"pid": "12"}"#)), None);
        assert_eq!(pid_from_verbose_info(&info("garbage")), None);
        assert_eq!(pid_from_verbose_info(&HashMap::new()), None);
    }

    #[test]
    fn node_network_inlines_eth0() {
        let ifs = vec![
            InterfaceStats {
                name: "cni0".into(),
                ..InterfaceStats::default()
            },
            InterfaceStats {
                name: "eth0".into(),
                rx_bytes: Some(3),
                ..InterfaceStats::default()
            },
        ];
        let n = network_stats(ifs, Time(1)).unwrap();
        assert_eq!(n.default_interface.name, "eth0");
        assert_eq!(n.interfaces.len(), 2);
        assert!(network_stats(Vec::new(), Time(1)).is_none());
    }

    #[test]
    fn reduced_form_keeps_cpu_and_memory_only() {
        let full = Summary {
            node: NodeStats {
                node_name: "n".into(),
                cpu: Some(CPUStats::default()),
                fs: Some(FsStats::default()),
                swap: Some(SwapStats::default()),
                ..NodeStats::default()
            },
            pods: vec![PodStats {
                containers: vec![ContainerStats {
                    name: "c".into(),
                    cpu: Some(CPUStats::default()),
                    rootfs: Some(FsStats::default()),
                    ..ContainerStats::default()
                }],
                ephemeral_storage: Some(FsStats::default()),
                memory: Some(MemoryStats::default()),
                ..PodStats::default()
            }],
        };
        let r = only_cpu_and_memory(full);
        assert!(r.node.fs.is_none());
        assert!(r.node.swap.is_some() && r.node.cpu.is_some());
        assert!(r.pods[0].ephemeral_storage.is_none());
        assert!(r.pods[0].memory.is_some());
        assert!(r.pods[0].containers[0].rootfs.is_none());
        assert!(r.pods[0].containers[0].cpu.is_some());
    }
}
