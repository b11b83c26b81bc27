//! Graceful node shutdown on SIGTERM, with the kubelet's settings: pods stop in priority
//! groups, lowest priority first, each group with its grace period —
//! `shutdownGracePeriodByPodPriority`, or the two groups derived from `shutdownGracePeriod` and
//! `shutdownGracePeriodCriticalPods` (regular pods get the difference, pods at or above the
//! system-critical priority get the critical share). `graceful_node_shutdown_state` records
//! the start, then the end. With no grace period configured the pods are left running, as a
//! kubelet restart leaves them, and the next start adopts them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use node_config::ShutdownGracePeriodByPodPriority;
use node_state::GracefulShutdownState;
use node_state::gotime::GoTime;

use crate::registry::PodRegistry;
use crate::sync::PodManager;

/// `system-cluster-critical`'s priority; at or above it a pod is critical.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// `system-node-critical`'s priority.
pub const SYSTEM_NODE_CRITICAL_PRIORITY: i32 = 2_000_001_000;

/// Pods at or above `priority` (up to the next group) get `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Lowest priority of the group.
    pub priority: i32,
    /// The group's grace period.
    pub grace: Duration,
}

/// The priority groups, lowest first; empty when graceful shutdown is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownPlan {
    /// Groups sorted by priority.
    pub groups: Vec<Group>,
}

impl ShutdownPlan {
    /// The plan the kubelet derives from `shutdownGracePeriod`,
    /// `shutdownGracePeriodCriticalPods` and `shutdownGracePeriodByPodPriority` (which wins
    /// when not empty).
    pub fn new(
        grace_period: Duration,
        critical_pods: Duration,
        by_pod_priority: &[ShutdownGracePeriodByPodPriority],
    ) -> Self {
        let mut groups: Vec<Group> = if by_pod_priority.is_empty() {
            let total = grace_period;
            let critical = critical_pods;
            if total.is_zero() {
                Vec::new()
            } else {
                vec![
                    Group {
                        priority: 0,
                        grace: total.saturating_sub(critical),
                    },
                    Group {
                        priority: SYSTEM_CRITICAL_PRIORITY,
                        grace: critical,
                    },
                ]
            }
        } else {
            by_pod_priority
                .iter()
                .map(|g| Group {
                    priority: g.priority,
                    grace: Duration::from_secs(
                        u64::try_from(g.shutdown_grace_period_seconds).unwrap_or(0),
                    ),
                })
                .collect()
        };
        groups.sort_by_key(|g| g.priority);
        Self { groups }
    }

    /// Whether pods are stopped at all.
    pub fn enabled(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The index of the group for a pod of `priority` (below the lowest group: the lowest).
    pub fn group_of(&self, priority: i32) -> usize {
        self.groups
            .iter()
            .rposition(|g| priority >= g.priority)
            .unwrap_or(0)
    }
}

/// A pod's priority: `spec.priority`, else its system priority class, else 0 (static pods do
/// not go through the API server's priority admission).
pub fn pod_priority(pod: &k8s_openapi::api::core::v1::Pod) -> i32 {
    let spec = pod.spec.as_ref();
    if let Some(p) = spec.and_then(|s| s.priority) {
        return p;
    }
    match spec.and_then(|s| s.priority_class_name.as_deref()) {
        Some("system-node-critical") => SYSTEM_NODE_CRITICAL_PRIORITY,
        Some("system-cluster-critical") => SYSTEM_CRITICAL_PRIORITY,
        _ => 0,
    }
}

/// Runs the shutdown: records the start, stops the groups in order, records the end.
pub async fn run(
    plan: &ShutdownPlan,
    manager: &mut PodManager,
    registry: &PodRegistry,
    node_name: &str,
    state_path: &Path,
) {
    if !plan.enabled() {
        tracing::info!("graceful node shutdown is off (shutdownGracePeriod 0): pods keep running");
        return;
    }
    let mut state = GracefulShutdownState {
        start_time: GoTime::now(),
        end_time: GoTime::ZERO,
    };
    store(&state, state_path).await;
    let mut buckets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); plan.groups.len()];
    for pod in registry.list() {
        let priority =
            crate::pod_status::desired_pod(&pod, node_name).map_or(0, |p| pod_priority(&p));
        if let Some(bucket) = buckets.get_mut(plan.group_of(priority)) {
            bucket.insert(pod.uid);
        }
    }
    for (group, uids) in plan.groups.iter().zip(&buckets) {
        if uids.is_empty() {
            continue;
        }
        tracing::info!(
            pods = uids.len(),
            priority = group.priority,
            grace = ?group.grace,
            "shutdown: stopping pods"
        );
        let stop = manager.stop_pods(uids, group.grace);
        // A group gets its grace period plus a little for the runtime's bookkeeping.
        match tokio::time::timeout(group.grace + Duration::from_secs(5), stop).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "shutdown: stopping pods failed"),
            Err(_) => tracing::warn!("shutdown: the group's grace period ran out"),
        }
    }
    state.end_time = GoTime::now();
    store(&state, state_path).await;
}

/// Writes the state file (write, fsync, rename) on the blocking pool.
async fn store(state: &GracefulShutdownState, path: &Path) {
    let (state, owned) = (*state, path.to_path_buf());
    let written = crate::blocking::run("writing graceful node shutdown state", move || {
        Ok(state.store(&owned))
    })
    .await;
    // A blocking-pool failure is logged by `blocking::run` itself.
    if let Ok(Err(e)) = written {
        tracing::error!(path = %path.display(), error = %e, "writing graceful node shutdown state");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_from_the_two_settings() {
        let plan = ShutdownPlan::new(Duration::from_secs(30), Duration::from_secs(10), &[]);
        assert_eq!(
            plan.groups,
            [
                Group {
                    priority: 0,
                    grace: Duration::from_secs(20)
                },
                Group {
                    priority: SYSTEM_CRITICAL_PRIORITY,
                    grace: Duration::from_secs(10)
                },
            ]
        );
        assert_eq!(plan.group_of(-5), 0);
        assert_eq!(plan.group_of(1000), 0);
        assert_eq!(plan.group_of(SYSTEM_NODE_CRITICAL_PRIORITY), 1);
        assert!(!ShutdownPlan::new(Duration::ZERO, Duration::ZERO, &[]).enabled());
    }

    #[test]
    fn plan_by_pod_priority_is_sorted() {
        let by_priority = [
            ShutdownGracePeriodByPodPriority {
                priority: 100_000,
                shutdown_grace_period_seconds: 5,
            },
            ShutdownGracePeriodByPodPriority {
                priority: 0,
                shutdown_grace_period_seconds: 60,
            },
        ];
        // The list wins over the two settings.
        let plan = ShutdownPlan::new(Duration::from_secs(30), Duration::ZERO, &by_priority);
        assert_eq!(plan.groups[0].priority, 0);
        assert_eq!(plan.group_of(100_001), 1);
    }

    #[test]
    fn priority_from_spec_or_system_class() {
        let pod =
            |yaml: &str| -> k8s_openapi::api::core::v1::Pod { serde_json::from_str(yaml).unwrap() };
        assert_eq!(
            pod_priority(&pod(r#"{"spec":{"containers":[],"priority":7}}"#)),
            7
        );
        assert_eq!(
            pod_priority(&pod(
                r#"{"spec":{"containers":[],"priorityClassName":"system-node-critical"}}"#
            )),
            SYSTEM_NODE_CRITICAL_PRIORITY
        );
        assert_eq!(pod_priority(&pod(r#"{"spec":{"containers":[]}}"#)), 0);
    }
}
