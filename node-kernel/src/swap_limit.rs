//! NoSwap / LimitedSwap: which containers may swap, how much, and what the runtime is told.
//!
//! The kubelet's rules (`configureContainerSwapResources` and `LimitedSwapCalculator`):
//! a container gets swap only with `LimitedSwap` on cgroup v2, in a **Burstable** pod that is
//! **not critical** (not static, not mirror, priority below 2,000,000,000), when it requests or
//! limits memory and its request differs from its limit. Its limit is
//! `int64(float64(request) / float64(nodeMemory) * float64(nodeSwap))`, truncated, written as
//! the decimal string of `memory.swap.max` in the CRI `Unified` map. Everyone else gets NoSwap:
//! `memory.swap.max = "0"` on v2, `MemorySwapLimitInBytes = MemoryLimitInBytes` on v1.

use serde::Serialize;

use crate::cgroup::CgroupVersion;
use crate::error::{Error, Result};

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
}

/// The node side of the swap rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapPolicy {
    behavior: SwapBehavior,
    cgroup: CgroupVersion,
    swap_controller: bool,
    node_memory_bytes: u64,
    node_swap_bytes: u64,
}

impl SwapPolicy {
    /// Builds the policy for a node.
    ///
    /// # Errors
    /// [`Error::SwapConfig`] for LimitedSwap on cgroup v1 (Kubernetes does not support swap on
    /// v1 nodes) and [`Error::SwapLimit`] for LimitedSwap with zero node memory.
    pub fn new(
        behavior: SwapBehavior,
        cgroup: CgroupVersion,
        swap_controller: bool,
        node_memory_bytes: u64,
        node_swap_bytes: u64,
    ) -> Result<Self> {
        if behavior == SwapBehavior::LimitedSwap {
            if cgroup == CgroupVersion::V1 {
                return Err(Error::SwapConfig {
                    behavior: "LimitedSwap".to_string(),
                    reason:
                        "requires cgroup v2: Kubernetes does not support swap on cgroup v1 nodes"
                            .to_string(),
                });
            }
            if node_memory_bytes == 0 {
                return Err(Error::SwapLimit {
                    reason: "total node memory is 0".to_string(),
                });
            }
        }
        Ok(Self {
            behavior,
            cgroup,
            swap_controller,
            node_memory_bytes,
            node_swap_bytes,
        })
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
        // Same float arithmetic and truncation as the kubelet, so limits match to the byte.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let limit =
            (request_bytes as f64 / node_memory_bytes as f64 * node_swap_bytes as f64) as u64;
        Ok(limit)
    }

    fn no_swap(&self, c: &ContainerResources, reason: String) -> ContainerSwap {
        let setting = match (self.swap_controller, self.cgroup) {
            (false, _) => SwapSetting::Untouched,
            (true, CgroupVersion::V2) => SwapSetting::MemorySwapMax("0".to_string()),
            (true, CgroupVersion::V1) => {
                SwapSetting::MemorySwapLimitInBytes(c.memory_limit.unwrap_or(0))
            }
        };
        ContainerSwap {
            swap_allowed: false,
            limit_bytes: 0,
            setting,
            reason,
        }
    }

    /// The decision for `pod.containers[index]` (`None` if out of range).
    #[must_use]
    pub fn container(&self, pod: &PodSwapInput, index: usize) -> Option<ContainerSwap> {
        let c = pod.containers.get(index)?;
        if !self.swap_controller {
            return Some(ContainerSwap {
                swap_allowed: false,
                limit_bytes: 0,
                setting: SwapSetting::Untouched,
                reason: "no swap controller on this node: nothing is configured".to_string(),
            });
        }
        if self.behavior == SwapBehavior::NoSwap {
            return Some(self.no_swap(c, "swapBehavior is NoSwap".to_string()));
        }
        if pod.is_critical() {
            return Some(self.no_swap(
                c,
                "critical pod (static, mirror or priority >= 2000000000)".to_string(),
            ));
        }
        let qos = pod.qos();
        if qos != QosClass::Burstable {
            return Some(self.no_swap(c, format!("pod QoS is {qos:?}, only Burstable pods swap")));
        }
        let request = c.effective_memory_request();
        let limit = c.memory_limit.unwrap_or(0);
        if request == 0 && limit == 0 {
            return Some(self.no_swap(c, "container requests no memory".to_string()));
        }
        if request == limit {
            return Some(self.no_swap(c, "container memory request equals its limit".to_string()));
        }
        if self.node_swap_bytes == 0 {
            return Some(self.no_swap(c, "the node has no swap".to_string()));
        }
        match Self::limited_swap_bytes(request, self.node_memory_bytes, self.node_swap_bytes) {
            Ok(bytes) => Some(ContainerSwap {
                swap_allowed: true,
                limit_bytes: bytes,
                setting: SwapSetting::MemorySwapMax(bytes.to_string()),
                reason: format!(
                    "LimitedSwap: {request} / {} * {} bytes",
                    self.node_memory_bytes, self.node_swap_bytes
                ),
            }),
            Err(e) => Some(self.no_swap(
                c,
                format!("cannot calculate swap allocation amount; disallowing swap: {e}"),
            )),
        }
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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
        assert!(
            d.reason.contains("is larger than total node memory"),
            "{}",
            d.reason
        );
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
        assert!(e.to_string().contains("requires cgroup v2"), "{e}");
        let e =
            SwapPolicy::new(SwapBehavior::LimitedSwap, CgroupVersion::V2, true, 0, GI).unwrap_err();
        assert!(e.to_string().contains("total node memory is 0"), "{e}");
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
}
