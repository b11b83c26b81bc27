//! NoSwap / LimitedSwap: which containers may swap, how much, and what the runtime is told.
//!
//! The kubelet's rules (`configureContainerSwapResources` and `LimitedSwapCalculator`):
//! a container gets swap only with `LimitedSwap` on cgroup v2, in a **Burstable** pod that is
//! **not critical** (not static, not mirror, priority below 2,000,000,000), when it requests or
//! limits memory and its request differs from its limit. Its limit is
//! `int64(float64(request) / float64(nodeMemory) * float64(nodeSwap))`, truncated, written as
//! the decimal string of `memory.swap.max` in the CRI `Unified` map. Everyone else gets NoSwap:
//! `memory.swap.max = "0"` on v2, `MemorySwapLimitInBytes = MemoryLimitInBytes` on v1.
//! Without a swap controller nothing swap-related is written at all.
//!
//! Upstream: `pkg/kubelet/kuberuntime/kuberuntime_container_linux.go`
//! (`configureContainerSwapResources`, `GetContainerSwapBehavior`, `swapConfigurationHelper`,
//! `calcSwapForBurstablePods`, `swapControllerAvailable`) and `cmd/kubelet/app/server.go`
//! (LimitedSwap refused on cgroup v1 at startup).

use serde::Serialize;

use crate::cgroup::CgroupVersion;
use crate::error::{Error, Result};
use crate::root::HostRoot;

/// The kubelet's cgroup v1 swap controller file (it looks at this fixed path).
pub const V1_MEMSW_LIMIT_FILE: &str = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";

/// What [`probe_swap_controller`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapControllerProbe {
    /// `swapControllerAvailable()`.
    pub available: bool,
    /// The file looked at and what was seen.
    pub evidence: String,
}

/// `swapControllerAvailable()` the kubelet's way (computed once at startup): on cgroup v1,
/// whether [`V1_MEMSW_LIMIT_FILE`] exists (swap accounting on); on cgroup v2, whether
/// `/sys/fs/cgroup/<own cgroup>/memory.swap.max` exists, the own cgroup being the `0::` line
/// of `/proc/self/cgroup`. The root cgroup has no `memory.swap.max`, so an agent running in
/// the root cgroup of a v2 host sees no controller, as the kubelet would. Anything unreadable
/// or malformed means "not available", as upstream.
#[must_use]
pub fn probe_swap_controller(root: &HostRoot, cgroup: CgroupVersion) -> SwapControllerProbe {
    let present = |path: &str| {
        let available = root.exists(path);
        SwapControllerProbe {
            available,
            evidence: format!(
                "{} {}",
                root.join(path).display(),
                if available {
                    "exists"
                } else {
                    "does not exist"
                }
            ),
        }
    };
    match cgroup {
        CgroupVersion::V1 => present(V1_MEMSW_LIMIT_FILE),
        CgroupVersion::V2 => {
            let text = match root.read("/proc/self/cgroup") {
                Ok(t) => t,
                Err(e) => {
                    return SwapControllerProbe {
                        available: false,
                        evidence: format!("{e}; assuming no swap controller"),
                    };
                }
            };
            match unified_cgroup_path(&text) {
                Some(own) => {
                    let own = own.trim_end_matches('/');
                    present(&format!("/sys/fs/cgroup{own}/memory.swap.max"))
                }
                None => SwapControllerProbe {
                    available: false,
                    evidence: format!(
                        "{}: no usable \"0::<path>\" line; assuming no swap controller",
                        root.join("/proc/self/cgroup").display()
                    ),
                },
            }
        }
    }
}

/// The path of the `0::<path>` line of a `/proc/<pid>/cgroup` text: absolute, with no `.` or
/// `..` component (so it stays under `/sys/fs/cgroup`).
fn unified_cgroup_path(text: &str) -> Option<&str> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim_end();
    let safe = path.starts_with('/')
        && path
            .split('/')
            .all(|c| c != ".." && c != "." && !c.contains('\0'));
    safe.then_some(path)
}

/// `SystemCriticalPriority`: pods at or above it are critical and never swap.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// `memorySwap.swapBehavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SwapBehavior {
    /// The default (`""` or `NoSwap`): pods never swap; the rest of the node may.
    NoSwap,
    /// Burstable pods may swap in proportion to their memory request.
    LimitedSwap,
}

impl SwapBehavior {
    /// Parses the configuration value.
    ///
    /// # Errors
    /// [`Error::SwapConfig`] for `UnlimitedSwap` (removed in 1.30) and anything unknown.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "" | "NoSwap" => Ok(Self::NoSwap),
            "LimitedSwap" => Ok(Self::LimitedSwap),
            "UnlimitedSwap" => Err(Error::SwapConfig {
                behavior: value.to_string(),
                reason: "UnlimitedSwap was removed in Kubernetes 1.30; use LimitedSwap".to_string(),
            }),
            _ => Err(Error::SwapConfig {
                behavior: value.to_string(),
                reason: "expected \"\", \"NoSwap\" or \"LimitedSwap\"".to_string(),
            }),
        }
    }
}

/// A pod's QoS class, computed the way `GetPodQOS` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QosClass {
    /// Every container limits CPU and memory, and requests equal limits.
    Guaranteed,
    /// Something in between.
    Burstable,
    /// No container requests or limits CPU or memory.
    BestEffort,
}

/// The CPU and memory requests/limits of one container (CPU in millicores, memory in bytes).
/// A request left unset takes the limit's value, as the API server defaults it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// CPU request, millicores.
    pub cpu_request: Option<u64>,
    /// CPU limit, millicores.
    pub cpu_limit: Option<u64>,
    /// Memory request, bytes.
    pub memory_request: Option<u64>,
    /// Memory limit, bytes.
    pub memory_limit: Option<u64>,
}

impl ContainerResources {
    fn effective_memory_request(&self) -> u64 {
        self.memory_request.or(self.memory_limit).unwrap_or(0)
    }
    fn effective_cpu_request(&self) -> u64 {
        self.cpu_request.or(self.cpu_limit).unwrap_or(0)
    }
}

/// What the swap rules need to know about a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSwapInput {
    /// `spec.priority`.
    pub priority: Option<i32>,
    /// A static pod (from a file or URL: `kubernetes.io/config.source` is not `api`).
    pub static_pod: bool,
    /// A mirror pod (`kubernetes.io/config.mirror` annotation).
    pub mirror_pod: bool,
    /// Init containers (they count for QoS).
    pub init_containers: Vec<ContainerResources>,
    /// App containers.
    pub containers: Vec<ContainerResources>,
}

impl PodSwapInput {
    /// The pod's QoS class.
    #[must_use]
    pub fn qos(&self) -> QosClass {
        let mut req = [0u64; 2]; // cpu, memory
        let mut lim = [0u64; 2];
        let mut guaranteed = true;
        for c in self.init_containers.iter().chain(&self.containers) {
            let requests = [c.effective_cpu_request(), c.effective_memory_request()];
            let limits = [c.cpu_limit.unwrap_or(0), c.memory_limit.unwrap_or(0)];
            for i in 0..2 {
                req[i] = req[i].saturating_add(requests[i]);
                lim[i] = lim[i].saturating_add(limits[i]);
            }
            if limits.contains(&0) {
                guaranteed = false;
            }
        }
        if req == [0, 0] && lim == [0, 0] {
            return QosClass::BestEffort;
        }
        // Guaranteed needs the same resources requested and limited, with equal sums.
        let same_set = (0..2).all(|i| (req[i] > 0) == (lim[i] > 0));
        if guaranteed && same_set && req == lim {
            QosClass::Guaranteed
        } else {
            QosClass::Burstable
        }
    }

    /// `IsCriticalPod`: static, mirror, or priority >= [`SYSTEM_CRITICAL_PRIORITY`].
    #[must_use]
    pub fn is_critical(&self) -> bool {
        self.static_pod
            || self.mirror_pod
            || self.priority.is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
    }
}

/// What the kubelet hands the runtime for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SwapSetting {
    /// cgroup v2: `LinuxContainerResources.Unified["memory.swap.max"]`.
    MemorySwapMax(String),
    /// cgroup v1 NoSwap: `MemorySwapLimitInBytes` set to the memory limit (0 = no limit).
    MemorySwapLimitInBytes(u64),
    /// No swap controller on the node: nothing is set.
    Untouched,
}

/// The decision for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSwap {
    /// Whether the container may swap at all.
    pub swap_allowed: bool,
    /// The swap limit in bytes (0 for NoSwap).
    pub limit_bytes: u64,
    /// What is written for the runtime.
    pub setting: SwapSetting,
    /// Why.
    pub reason: String,
    /// The LimitedSwap limit could not be computed (node memory 0, request larger than node
    /// memory): the kubelet logs this as an error ("cannot calculate swap allocation amount;
    /// disallowing swap") and falls back to NoSwap.
    pub calc_error: Option<String>,
}

/// The node side of the decision: the configured behaviour and what the kubelet reads from
/// the machine (`MachineInfo.MemoryCapacity`, `MachineInfo.SwapCapacity`, the cgroup mode and
/// `swapControllerAvailable()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapNodeFacts {
    /// `memorySwap.swapBehavior`.
    pub behavior: SwapBehavior,
    /// cgroup v1 (legacy or hybrid) or v2 (unified).
    pub cgroup: CgroupVersion,
    /// `swapControllerAvailable()`: see [`probe_swap_controller`].
    pub swap_controller: bool,
    /// Node memory in bytes (`MemTotal`).
    pub memory_capacity_bytes: u64,
    /// Node swap in bytes (`SwapTotal`).
    pub swap_capacity_bytes: u64,
}

/// The pod and container side of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSwapInput {
    /// `IsCriticalPod`: static, mirror, or priority >= [`SYSTEM_CRITICAL_PRIORITY`].
    pub critical: bool,
    /// The pod's QoS class.
    pub qos: QosClass,
    /// The container's memory request in bytes, 0 when none (after the API server's
    /// defaulting: an unset request takes the limit).
    pub memory_request_bytes: u64,
    /// The container's memory limit in bytes as it goes into
    /// `LinuxContainerResources.MemoryLimitInBytes`, 0 when none.
    pub memory_limit_bytes: u64,
}

/// The kubelet's per-container swap decision, as a pure function of the node facts and the
/// container: what to write into the CRI `LinuxContainerResources`, and why.
///
/// In the kubelet's order: no swap controller -> nothing written; then
/// `GetContainerSwapBehavior` (LimitedSwap only when configured, on cgroup v2, for a
/// non-critical Burstable pod whose container requests or limits memory with request != limit);
/// NoSwap writes `memory.swap.max = "0"` on v2 and `MemorySwapLimitInBytes = MemoryLimitInBytes`
/// on v1; LimitedSwap writes the truncated proportional limit, and a limit that cannot be
/// computed falls back to NoSwap with [`ContainerSwap::calc_error`] set.
#[must_use]
pub fn decide_container_swap(node: &SwapNodeFacts, c: &ContainerSwapInput) -> ContainerSwap {
    let no_swap = |reason: String, calc_error: Option<String>| {
        let setting = match node.cgroup {
            CgroupVersion::V2 => SwapSetting::MemorySwapMax("0".to_string()),
            CgroupVersion::V1 => SwapSetting::MemorySwapLimitInBytes(c.memory_limit_bytes),
        };
        ContainerSwap {
            swap_allowed: false,
            limit_bytes: 0,
            setting,
            reason,
            calc_error,
        }
    };
    if !node.swap_controller {
        return ContainerSwap {
            swap_allowed: false,
            limit_bytes: 0,
            setting: SwapSetting::Untouched,
            reason: "No swap cgroup controller present: nothing is configured".to_string(),
            calc_error: None,
        };
    }
    if node.behavior == SwapBehavior::NoSwap {
        return no_swap("swapBehavior is NoSwap".to_string(), None);
    }
    if node.cgroup == CgroupVersion::V1 {
        return no_swap(
            "LimitedSwap needs cgroup v2; NoSwap on cgroup v1".to_string(),
            None,
        );
    }
    if c.critical {
        return no_swap(
            "critical pod (static, mirror or priority >= 2000000000)".to_string(),
            None,
        );
    }
    if c.qos != QosClass::Burstable {
        return no_swap(
            format!("pod QoS is {:?}, only Burstable pods swap", c.qos),
            None,
        );
    }
    if c.memory_request_bytes == 0 && c.memory_limit_bytes == 0 {
        return no_swap("container requests no memory".to_string(), None);
    }
    if c.memory_request_bytes == c.memory_limit_bytes {
        return no_swap(
            "container memory request equals its limit".to_string(),
            None,
        );
    }
    match SwapPolicy::limited_swap_bytes(
        c.memory_request_bytes,
        node.memory_capacity_bytes,
        node.swap_capacity_bytes,
    ) {
        Ok(bytes) => ContainerSwap {
            swap_allowed: bytes > 0,
            limit_bytes: bytes,
            setting: SwapSetting::MemorySwapMax(bytes.to_string()),
            reason: if node.swap_capacity_bytes == 0 {
                "LimitedSwap, but the node has no swap: limit 0".to_string()
            } else {
                format!(
                    "LimitedSwap: {} / {} * {} bytes",
                    c.memory_request_bytes, node.memory_capacity_bytes, node.swap_capacity_bytes
                )
            },
            calc_error: None,
        },
        Err(e) => no_swap(
            "cannot calculate swap allocation amount; disallowing swap".to_string(),
            Some(e.to_string()),
        ),
    }
}

/// The node side of the swap rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapPolicy {
    facts: SwapNodeFacts,
}

impl SwapPolicy {
    /// Builds the policy for a node.
    ///
    /// # Errors
    /// [`Error::SwapConfig`] for LimitedSwap on cgroup v1, which the kubelet refuses at startup
    /// (`cmd/kubelet/app/server.go`: "swap feature is enabled and LimitedSwap but it is only
    /// supported with cgroupv2"). Zero node memory is not refused: as in the kubelet, each
    /// container then falls back to NoSwap.
    pub fn new(
        behavior: SwapBehavior,
        cgroup: CgroupVersion,
        swap_controller: bool,
        node_memory_bytes: u64,
        node_swap_bytes: u64,
    ) -> Result<Self> {
        if behavior == SwapBehavior::LimitedSwap && cgroup == CgroupVersion::V1 {
            return Err(Error::SwapConfig {
                behavior: "LimitedSwap".to_string(),
                reason:
                    "swap feature is enabled and LimitedSwap but it is only supported with cgroupv2"
                        .to_string(),
            });
        }
        Ok(Self {
            facts: SwapNodeFacts {
                behavior,
                cgroup,
                swap_controller,
                memory_capacity_bytes: node_memory_bytes,
                swap_capacity_bytes: node_swap_bytes,
            },
        })
    }

    /// The node facts the policy decides with.
    #[must_use]
    pub fn facts(&self) -> &SwapNodeFacts {
        &self.facts
    }

    /// [`decide_container_swap`] with this node's facts.
    #[must_use]
    pub fn decide(&self, container: &ContainerSwapInput) -> ContainerSwap {
        decide_container_swap(&self.facts, container)
    }

    /// The LimitedSwap formula for one memory request:
    /// `int64(float64(request) / float64(nodeMemory) * float64(nodeSwap))`.
    ///
    /// # Errors
    /// [`Error::SwapLimit`] with the kubelet's wording when node memory is 0 or the request is
    /// larger than node memory.
    pub fn limited_swap_bytes(
        request_bytes: u64,
        node_memory_bytes: u64,
        node_swap_bytes: u64,
    ) -> Result<u64> {
        if node_memory_bytes == 0 {
            return Err(Error::SwapLimit {
                reason: "total node memory is 0".to_string(),
            });
        }
        if request_bytes > node_memory_bytes {
            return Err(Error::SwapLimit {
                reason: format!(
                    "container request {request_bytes} is larger than total node memory {node_memory_bytes}"
                ),
            });
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the kubelet's float arithmetic and truncation, so limits match to the byte; \
                      the operands are non-negative and the result at most the node's swap"
        )]
        let limit =
            (request_bytes as f64 / node_memory_bytes as f64 * node_swap_bytes as f64) as u64;
        Ok(limit)
    }

    /// The decision for `pod.containers[index]` (`None` if out of range), with the pod's QoS
    /// and criticality computed from `pod`.
    #[must_use]
    pub fn container(&self, pod: &PodSwapInput, index: usize) -> Option<ContainerSwap> {
        let c = pod.containers.get(index)?;
        Some(self.decide(&ContainerSwapInput {
            critical: pod.is_critical(),
            qos: pod.qos(),
            memory_request_bytes: c.effective_memory_request(),
            memory_limit_bytes: c.memory_limit.unwrap_or(0),
        }))
    }

    /// The pod's total swap limit: the sum over its app containers.
    #[must_use]
    pub fn pod_limit_bytes(&self, pod: &PodSwapInput) -> u64 {
        (0..pod.containers.len())
            .filter_map(|i| self.container(pod, i))
            .map(|d| d.limit_bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;
    const MI: u64 = 1 << 20;

    fn mem(request: Option<u64>, limit: Option<u64>) -> ContainerResources {
        ContainerResources {
            memory_request: request,
            memory_limit: limit,
            ..Default::default()
        }
    }

    fn pod(containers: Vec<ContainerResources>) -> PodSwapInput {
        PodSwapInput {
            containers,
            ..Default::default()
        }
    }

    fn limited() -> SwapPolicy {
        SwapPolicy::new(
            SwapBehavior::LimitedSwap,
            CgroupVersion::V2,
            true,
            16 * GI,
            8 * GI,
        )
        .unwrap()
    }

    #[test]
    fn the_documented_example() {
        // 2 GiB request on 16 GiB RAM with 8 GiB swap: memory.swap.max = 1 GiB.
        let p = pod(vec![mem(Some(2 * GI), Some(4 * GI))]);
        let d = limited().container(&p, 0).unwrap();
        assert!(d.swap_allowed);
        assert_eq!(d.limit_bytes, GI);
        assert_eq!(
            d.setting,
            SwapSetting::MemorySwapMax("1073741824".to_string())
        );
    }

    #[test]
    fn formula_truncates_like_the_kubelet() {
        // 1000 / 3000 * 1000 = 333.33.. -> 333
        assert_eq!(
            SwapPolicy::limited_swap_bytes(1000, 3000, 1000).unwrap(),
            333
        );
        assert_eq!(SwapPolicy::limited_swap_bytes(0, 3000, 1000).unwrap(), 0);
        assert_eq!(
            SwapPolicy::limited_swap_bytes(3000, 3000, 1000).unwrap(),
            1000
        );
        let e = SwapPolicy::limited_swap_bytes(3001, 3000, 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot calculate swap allocation amount: container request 3001 is larger than total node memory 3000"
        );
        let e = SwapPolicy::limited_swap_bytes(1, 0, 1000).unwrap_err();
        assert!(e.to_string().ends_with("total node memory is 0"), "{e}");
        // 100 MiB on 24 GiB RAM, 4 GiB swap, computed by hand: 17476266.66.. -> 17476266
        assert_eq!(
            SwapPolicy::limited_swap_bytes(100 * MI, 24 * GI, 4 * GI).unwrap(),
            17_476_266
        );
    }

    #[test]
    fn qos_classes() {
        let g = ContainerResources {
            cpu_request: Some(500),
            cpu_limit: Some(500),
            memory_request: Some(GI),
            memory_limit: Some(GI),
        };
        assert_eq!(pod(vec![g]).qos(), QosClass::Guaranteed);
        // Limits only: requests default to limits -> Guaranteed.
        let limits_only = ContainerResources {
            cpu_limit: Some(500),
            memory_limit: Some(GI),
            ..Default::default()
        };
        assert_eq!(pod(vec![limits_only]).qos(), QosClass::Guaranteed);
        assert_eq!(
            pod(vec![ContainerResources::default()]).qos(),
            QosClass::BestEffort
        );
        assert_eq!(pod(vec![mem(Some(GI), None)]).qos(), QosClass::Burstable);
        // Memory limit without CPU limit is not Guaranteed.
        assert_eq!(
            pod(vec![mem(Some(GI), Some(GI))]).qos(),
            QosClass::Burstable
        );
        // One Guaranteed container and one BestEffort container: Burstable.
        assert_eq!(
            pod(vec![g, ContainerResources::default()]).qos(),
            QosClass::Burstable
        );
        // An init container with requests below limits makes the pod Burstable.
        let mut p = pod(vec![g]);
        p.init_containers.push(ContainerResources {
            cpu_request: Some(100),
            cpu_limit: Some(500),
            memory_request: Some(GI),
            memory_limit: Some(GI),
        });
        assert_eq!(p.qos(), QosClass::Burstable);
    }

    #[test]
    fn who_may_swap() {
        let policy = limited();
        let burst = mem(Some(2 * GI), Some(4 * GI));

        // Guaranteed and BestEffort pods never swap.
        let g = ContainerResources {
            cpu_request: Some(1),
            cpu_limit: Some(1),
            memory_request: Some(GI),
            memory_limit: Some(GI),
        };
        let d = policy.container(&pod(vec![g]), 0).unwrap();
        assert!(!d.swap_allowed);
        assert!(d.reason.contains("Guaranteed"), "{}", d.reason);
        assert_eq!(d.setting, SwapSetting::MemorySwapMax("0".to_string()));
        let d = policy
            .container(&pod(vec![ContainerResources::default()]), 0)
            .unwrap();
        assert!(d.reason.contains("BestEffort"), "{}", d.reason);

        // Critical pods: high priority, static, mirror.
        for p in [
            PodSwapInput {
                priority: Some(SYSTEM_CRITICAL_PRIORITY),
                ..pod(vec![burst])
            },
            PodSwapInput {
                priority: Some(2_000_001_000),
                ..pod(vec![burst])
            },
            PodSwapInput {
                static_pod: true,
                ..pod(vec![burst])
            },
            PodSwapInput {
                mirror_pod: true,
                ..pod(vec![burst])
            },
        ] {
            let d = policy.container(&p, 0).unwrap();
            assert!(!d.swap_allowed);
            assert!(d.reason.contains("critical"), "{}", d.reason);
        }
        // Just below system-critical priority still swaps.
        let p = PodSwapInput {
            priority: Some(SYSTEM_CRITICAL_PRIORITY - 1),
            ..pod(vec![burst])
        };
        assert!(policy.container(&p, 0).unwrap().swap_allowed);

        // In a Burstable pod: a container without memory, and one with request == limit, do not swap.
        let cpu_only = ContainerResources {
            cpu_request: Some(100),
            ..Default::default()
        };
        let eq = mem(Some(GI), Some(GI));
        let p = pod(vec![burst, cpu_only, eq, mem(Some(GI), None)]);
        assert_eq!(p.qos(), QosClass::Burstable);
        let d: Vec<_> = (0..4).map(|i| policy.container(&p, i).unwrap()).collect();
        assert!(d[0].swap_allowed);
        assert!(
            !d[1].swap_allowed && d[1].reason.contains("no memory"),
            "{}",
            d[1].reason
        );
        assert!(
            !d[2].swap_allowed && d[2].reason.contains("equals"),
            "{}",
            d[2].reason
        );
        // Request without limit: eligible, limit from the request.
        assert!(d[3].swap_allowed);
        assert_eq!(d[3].limit_bytes, GI / 2);
        assert_eq!(policy.pod_limit_bytes(&p), GI + GI / 2);
        assert!(policy.container(&p, 4).is_none());

        // A request larger than node memory falls back to NoSwap with the kubelet's reason.
        let huge = pod(vec![mem(Some(17 * GI), None)]);
        let d = policy.container(&huge, 0).unwrap();
        assert!(!d.swap_allowed);
        assert_eq!(
            d.reason,
            "cannot calculate swap allocation amount; disallowing swap"
        );
        assert_eq!(
            d.calc_error.as_deref(),
            Some(
                "cannot calculate swap allocation amount: container request 18253611008 is larger than total node memory 17179869184"
            )
        );
        assert_eq!(d.setting, SwapSetting::MemorySwapMax("0".into()));
    }

    #[test]
    fn no_swap_settings_per_cgroup_version_and_controller() {
        let p = pod(vec![mem(Some(GI), Some(2 * GI))]);
        let v2 = SwapPolicy::new(
            SwapBehavior::NoSwap,
            CgroupVersion::V2,
            true,
            16 * GI,
            8 * GI,
        )
        .unwrap();
        assert_eq!(
            v2.container(&p, 0).unwrap().setting,
            SwapSetting::MemorySwapMax("0".into())
        );
        let v1 = SwapPolicy::new(
            SwapBehavior::NoSwap,
            CgroupVersion::V1,
            true,
            16 * GI,
            8 * GI,
        )
        .unwrap();
        assert_eq!(
            v1.container(&p, 0).unwrap().setting,
            SwapSetting::MemorySwapLimitInBytes(2 * GI)
        );
        let none = SwapPolicy::new(
            SwapBehavior::LimitedSwap,
            CgroupVersion::V2,
            false,
            16 * GI,
            8 * GI,
        )
        .unwrap();
        assert_eq!(
            none.container(&p, 0).unwrap().setting,
            SwapSetting::Untouched
        );
        // LimitedSwap with no swap on the node: nobody swaps.
        let noswap = SwapPolicy::new(
            SwapBehavior::LimitedSwap,
            CgroupVersion::V2,
            true,
            16 * GI,
            0,
        )
        .unwrap();
        let d = noswap.container(&p, 0).unwrap();
        assert!(!d.swap_allowed);
        assert_eq!(d.setting, SwapSetting::MemorySwapMax("0".into()));
    }

    #[test]
    fn limited_swap_is_refused_without_cgroup_v2() {
        let e = SwapPolicy::new(SwapBehavior::LimitedSwap, CgroupVersion::V1, true, GI, GI)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "memorySwap.swapBehavior \"LimitedSwap\": swap feature is enabled and LimitedSwap but it is only supported with cgroupv2"
        );
        // NoSwap on v1 is fine; zero node memory is not refused at startup (per container
        // it falls back to NoSwap).
        SwapPolicy::new(SwapBehavior::NoSwap, CgroupVersion::V1, true, GI, GI).unwrap();
        let zero =
            SwapPolicy::new(SwapBehavior::LimitedSwap, CgroupVersion::V2, true, 0, GI).unwrap();
        let d = zero
            .container(&pod(vec![mem(Some(GI), Some(2 * GI))]), 0)
            .unwrap();
        assert!(!d.swap_allowed);
        assert_eq!(d.setting, SwapSetting::MemorySwapMax("0".into()));
        assert!(
            d.calc_error
                .as_deref()
                .unwrap()
                .ends_with("total node memory is 0"),
            "{d:?}"
        );
        assert_eq!(SwapBehavior::parse("").unwrap(), SwapBehavior::NoSwap);
        assert_eq!(
            SwapBehavior::parse("LimitedSwap").unwrap(),
            SwapBehavior::LimitedSwap
        );
        assert!(
            SwapBehavior::parse("UnlimitedSwap")
                .unwrap_err()
                .to_string()
                .contains("removed in Kubernetes 1.30")
        );
        assert!(SwapBehavior::parse("limitedswap").is_err());
    }

    fn node(behavior: SwapBehavior, cgroup: CgroupVersion, controller: bool) -> SwapNodeFacts {
        SwapNodeFacts {
            behavior,
            cgroup,
            swap_controller: controller,
            memory_capacity_bytes: 16 * GI,
            swap_capacity_bytes: 8 * GI,
        }
    }

    fn input(critical: bool, qos: QosClass, request: u64, limit: u64) -> ContainerSwapInput {
        ContainerSwapInput {
            critical,
            qos,
            memory_request_bytes: request,
            memory_limit_bytes: limit,
        }
    }

    /// Every rule of `configureContainerSwapResources` / `GetContainerSwapBehavior`, one at a
    /// time, against an otherwise eligible container.
    #[test]
    fn decision_rules_one_by_one() {
        use CgroupVersion::{V1, V2};
        use QosClass::{BestEffort, Burstable, Guaranteed};
        use SwapBehavior::{LimitedSwap, NoSwap};
        let eligible = input(false, Burstable, 2 * GI, 4 * GI);
        let max = |v: &str| SwapSetting::MemorySwapMax(v.to_string());

        // The eligible case: 2/16 * 8 GiB = 1 GiB.
        let d = decide_container_swap(&node(LimitedSwap, V2, true), &eligible);
        assert!(d.swap_allowed);
        assert_eq!((d.limit_bytes, d.setting), (GI, max("1073741824")));
        assert_eq!(d.calc_error, None);

        // No swap controller: nothing is written, whatever the behaviour, version and pod.
        for behavior in [NoSwap, LimitedSwap] {
            for cgroup in [V1, V2] {
                for c in [eligible, input(true, Guaranteed, GI, GI)] {
                    let d = decide_container_swap(&node(behavior, cgroup, false), &c);
                    assert_eq!(d.setting, SwapSetting::Untouched);
                    assert!(!d.swap_allowed);
                    assert!(d.reason.starts_with("No swap cgroup controller present"));
                }
            }
        }

        // NoSwap: v2 writes "0", v1 writes the memory limit (0 when there is none).
        let d = decide_container_swap(&node(NoSwap, V2, true), &eligible);
        assert_eq!((d.swap_allowed, d.setting), (false, max("0")));
        assert_eq!(d.reason, "swapBehavior is NoSwap");
        let d = decide_container_swap(&node(NoSwap, V1, true), &eligible);
        assert_eq!(d.setting, SwapSetting::MemorySwapLimitInBytes(4 * GI));
        let d = decide_container_swap(&node(NoSwap, V1, true), &input(false, BestEffort, 0, 0));
        assert_eq!(d.setting, SwapSetting::MemorySwapLimitInBytes(0));

        // LimitedSwap on v1 (unvalidated facts): NoSwap, v1 style.
        let d = decide_container_swap(&node(LimitedSwap, V1, true), &eligible);
        assert!(!d.swap_allowed);
        assert_eq!(d.setting, SwapSetting::MemorySwapLimitInBytes(4 * GI));
        assert!(d.reason.contains("cgroup v2"), "{}", d.reason);

        let limited = node(LimitedSwap, V2, true);
        let cases = [
            (input(true, Burstable, 2 * GI, 4 * GI), "critical"),
            (input(false, Guaranteed, 2 * GI, 4 * GI), "Guaranteed"),
            (input(false, BestEffort, 2 * GI, 4 * GI), "BestEffort"),
            (input(false, Burstable, 0, 0), "requests no memory"),
            (input(false, Burstable, GI, GI), "equals its limit"),
        ];
        for (c, why) in cases {
            let d = decide_container_swap(&limited, &c);
            assert!(!d.swap_allowed, "{why}");
            assert_eq!(d.limit_bytes, 0);
            assert_eq!(d.setting, max("0"), "{why}");
            assert!(d.reason.contains(why), "{why}: {}", d.reason);
            assert_eq!(d.calc_error, None);
        }
        // A limit without a request is defaulted by the caller (request = limit): NoSwap.
        // A request without a limit is eligible; a zero request with a limit gets 0 bytes.
        let d = decide_container_swap(&limited, &input(false, Burstable, GI, 0));
        assert_eq!((d.limit_bytes, d.setting), (GI / 2, max("536870912")));
        let d = decide_container_swap(&limited, &input(false, Burstable, 0, GI));
        assert_eq!(
            (d.swap_allowed, d.limit_bytes, d.setting),
            (false, 0, max("0"))
        );
        assert_eq!(d.calc_error, None);
    }

    #[test]
    fn decision_error_fallbacks() {
        let max0 = SwapSetting::MemorySwapMax("0".to_string());
        let c = input(false, QosClass::Burstable, 2 * GI, 4 * GI);
        // Request larger than node memory.
        let small = SwapNodeFacts {
            memory_capacity_bytes: GI,
            ..node(SwapBehavior::LimitedSwap, CgroupVersion::V2, true)
        };
        let d = decide_container_swap(&small, &c);
        assert_eq!(
            (d.swap_allowed, d.limit_bytes, &d.setting),
            (false, 0, &max0)
        );
        assert_eq!(
            d.calc_error.as_deref(),
            Some(
                "cannot calculate swap allocation amount: container request 2147483648 is larger than total node memory 1073741824"
            )
        );
        // Request equal to node memory is fine: all of the swap.
        let d = decide_container_swap(&small, &input(false, QosClass::Burstable, GI, 4 * GI));
        assert_eq!(d.limit_bytes, 8 * GI);
        // Node memory 0.
        let zero = SwapNodeFacts {
            memory_capacity_bytes: 0,
            ..small
        };
        let d = decide_container_swap(&zero, &c);
        assert_eq!((d.swap_allowed, &d.setting), (false, &max0));
        assert_eq!(
            d.calc_error.as_deref(),
            Some("cannot calculate swap allocation amount: total node memory is 0")
        );
        // No swap on the node: LimitedSwap with a limit of 0, no error.
        let noswap = SwapNodeFacts {
            swap_capacity_bytes: 0,
            ..node(SwapBehavior::LimitedSwap, CgroupVersion::V2, true)
        };
        let d = decide_container_swap(&noswap, &c);
        assert_eq!(
            (d.swap_allowed, d.limit_bytes, &d.setting),
            (false, 0, &max0)
        );
        assert_eq!(d.calc_error, None);
        assert!(d.reason.contains("no swap"), "{}", d.reason);
        // Truncation, not rounding: 1000 / 3000 * 1000 = 333.3.
        let odd = SwapNodeFacts {
            memory_capacity_bytes: 3000,
            swap_capacity_bytes: 1000,
            ..noswap
        };
        let d = decide_container_swap(&odd, &input(false, QosClass::Burstable, 1000, 2000));
        assert_eq!(d.setting, SwapSetting::MemorySwapMax("333".into()));
    }

    #[test]
    fn swap_controller_is_probed_like_the_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path());
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // v1: the fixed memsw file.
        assert!(!probe_swap_controller(&root, CgroupVersion::V1).available);
        w("sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "");
        let p = probe_swap_controller(&root, CgroupVersion::V1);
        assert!(p.available, "{p:?}");
        assert!(p.evidence.ends_with("memory.memsw.limit_in_bytes exists"));
        // v2: no /proc/self/cgroup -> not available.
        let p = probe_swap_controller(&root, CgroupVersion::V2);
        assert!(!p.available && p.evidence.contains("assuming no swap controller"));
        // v2 in the root cgroup: the root has no memory.swap.max.
        w("proc/self/cgroup", "0::/\n");
        assert!(!probe_swap_controller(&root, CgroupVersion::V2).available);
        // v2 in its own cgroup, which has the file.
        w("proc/self/cgroup", "0::/system.slice/agent.service\n");
        assert!(!probe_swap_controller(&root, CgroupVersion::V2).available);
        w(
            "sys/fs/cgroup/system.slice/agent.service/memory.swap.max",
            "max\n",
        );
        let p = probe_swap_controller(&root, CgroupVersion::V2);
        assert!(p.available, "{p:?}");
        // Hybrid-style file with v1 lines first; a path escaping the hierarchy is refused.
        w(
            "proc/self/cgroup",
            "12:memory:/x\n0::/system.slice/agent.service\n",
        );
        assert!(probe_swap_controller(&root, CgroupVersion::V2).available);
        w("sys/fs/cgroup/memory.swap.max", "max\n");
        w("proc/self/cgroup", "0::/a/../\n");
        let p = probe_swap_controller(&root, CgroupVersion::V2);
        assert!(!p.available && p.evidence.contains("no usable"), "{p:?}");
        w("proc/self/cgroup", "0::relative\n");
        assert!(!probe_swap_controller(&root, CgroupVersion::V2).available);
    }
}
