//! The deciding half of a pod sync, with no I/O: from the desired pod, what the runtime has of
//! it (sandboxes, containers and their statuses), the crash-loop back-off state and the time,
//! which sandboxes and containers to stop and remove, whether to make a new sandbox, which
//! containers to start or restart (with their attempt number), which wait in
//! `CrashLoopBackOff`, and the status each container then shows. [`crate::PodManager`] applies
//! the result with CRI calls.
//!
//! This is the kubelet's split of `computePodActions` (deciding) and `SyncPod` (doing), both in
//! `pkg/kubelet/kuberuntime/kuberuntime_manager.go`; the decisions themselves are this agent's
//! (static pods, restart policy, init containers in order, the kubelet's back-off timings).
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::Path;
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::{Container, PodSpec};
//! use node_runtime::PodIdentity;
//! use node_runtime::plan::{self, BackoffPolicy, BackoffState, DesiredPod, SandboxAction};
//!
//! let spec = PodSpec {
//!     containers: vec![Container { name: "app".into(), image: Some("busybox".into()), ..Default::default() }],
//!     ..Default::default()
//! };
//! let id = PodIdentity { namespace: "default".into(), name: "web-node1".into(), uid: "u1".into(), node_name: "node1".into() };
//! let desired = DesiredPod {
//!     id: &id,
//!     spec: &spec,
//!     log_dir: Path::new("/var/log/pods/default_web-node1_u1"),
//!     backoff: BackoffPolicy { initial: Duration::from_secs(10), max: Duration::from_secs(300) },
//! };
//! // Nothing in the runtime yet: a new sandbox, then the container's first attempt.
//! let actions = plan::plan_pod(&desired, Vec::new(), Vec::new(), &HashMap::new(), &BackoffState::new(), 0);
//! assert!(matches!(actions.sandbox.action, SandboxAction::Create { .. }));
//! assert_eq!(actions.starts(), vec![("app", 0)]);
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::cri;
use crate::registry::{ContainerInfo, ContainerState, PodCondition, PodPhase};
use crate::spec::{
    ANNOTATION_CONTAINER_HASH, ANNOTATION_RESTART_COUNT, ContainerKind, LABEL_CONTAINER_NAME,
    PodIdentity, container_hash, grace_period,
};

/// The crash-loop back-off timings (kubelet: 10 s first, 5 min cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The delay before the second restart of a crash loop.
    pub initial: Duration,
    /// The cap (`crashLoopBackOff.maxContainerRestartPeriod`); a container that ran for twice
    /// this long starts its next crash loop afresh.
    pub max: Duration,
}

/// Crash-loop back-off of one container, counted from its exit, as the kubelet's: the first
/// restart is immediate, the next waits `initial`, and each further one twice as long up to
/// the cap; a container that ran for twice the cap (10 minutes by default) starts over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Restarts so far in this crash loop.
    pub restarts: u32,
}

impl Backoff {
    /// How long after its exit the container may restart.
    pub fn delay(self, policy: BackoffPolicy) -> Duration {
        let Some(doublings) = self.restarts.checked_sub(1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        policy.initial.saturating_mul(factor).min(policy.max)
    }
}

/// The back-off of every container, by pod UID and container name.
pub type BackoffState = HashMap<(String, String), Backoff>;

/// The pod as it should run.
#[derive(Debug, Clone, Copy)]
pub struct DesiredPod<'a> {
    /// Namespace, name, UID, node.
    pub id: &'a PodIdentity,
    /// The pod spec (containers, init containers, restart policy, grace period).
    pub spec: &'a PodSpec,
    /// The pod's log directory (`<podLogsDir>/<namespace>_<name>_<uid>`).
    pub log_dir: &'a Path,
    /// Crash-loop back-off timings.
    pub backoff: BackoffPolicy,
}

impl DesiredPod<'_> {
    /// `spec.restartPolicy` (default `Always`).
    pub fn restart_policy(&self) -> &str {
        self.spec.restart_policy.as_deref().unwrap_or("Always")
    }

    /// The init containers in order, then the regular ones.
    pub fn containers(&self) -> impl Iterator<Item = (ContainerKind, &Container)> {
        self.spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (ContainerKind::Init, c))
            .chain(
                self.spec
                    .containers
                    .iter()
                    .map(|c| (ContainerKind::Regular, c)),
            )
    }
}

/// The latest instance of a container in the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Runtime container ID.
    pub id: String,
    /// Attempt (restart count) from its annotation.
    pub attempt: u32,
    /// Its `ContainerStatus`.
    pub status: cri::ContainerStatus,
}

/// Sandboxes and containers to stop (running containers with their grace period) and remove,
/// in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Teardown {
    /// Sandboxes, stopped and removed after the containers.
    pub sandboxes: Vec<cri::PodSandbox>,
    /// Containers.
    pub containers: Vec<cri::Container>,
}

/// Why a new sandbox is made (the kubelet's `podSandboxChanged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxReason {
    /// The pod has no sandbox (first start, or it was removed).
    NoSandbox,
    /// No sandbox of the pod is ready: everything old goes with it.
    NotReady,
}

/// The pod's sandbox after the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxAction {
    /// Keep using this ready sandbox (the newest ready one).
    Keep {
        /// Its runtime ID.
        sandbox_id: String,
    },
    /// Make a new sandbox (pulling every image of the pod first).
    Create {
        /// Why.
        reason: SandboxReason,
    },
}

/// What to do with the pod's sandboxes.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxPlan {
    /// Sandboxes labelled with this pod's UID but made for another pod (a manifest that took
    /// an explicit UID over, an edited name), with their containers: removed first, never
    /// adopted.
    pub foreign: Option<Teardown>,
    /// Keep a ready sandbox or make a new one.
    pub action: SandboxAction,
    /// Then removed: with [`SandboxAction::Keep`], every other sandbox of the pod with its
    /// containers (one teardown each); with [`SandboxAction::Create`], everything old of the
    /// pod in one teardown.
    pub kill: Vec<Teardown>,
    /// The containers of the kept sandbox (none for a new one): the input of
    /// [`plan_containers`].
    pub containers: Vec<cri::Container>,
}

/// Why a container is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartReason {
    /// It has no instance yet.
    First,
    /// Its spec changed (the hash annotation differs) while it runs: stop it with the pod's
    /// grace period, then start the next attempt at once, not counted as a crash.
    SpecChanged {
        /// Grace period for the stop, in seconds.
        grace_seconds: i64,
    },
    /// It exited, its restart policy restarts it, and its back-off has passed.
    Restart,
}

/// What to do with one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerAction {
    /// Nothing: it runs, or it exited and is not restarted.
    Keep,
    /// An earlier init container has not completed: it waits (`PodInitializing`).
    WaitForInit,
    /// Its latest instance was created but never started (an agent that stopped in between):
    /// start that instance.
    StartCreated,
    /// Create and start attempt `attempt`; the latest instance (if any) is removed once the
    /// new one is created.
    Start {
        /// The new instance's attempt (restart count).
        attempt: u32,
        /// Why.
        reason: StartReason,
    },
    /// It exited and waits out its crash-loop back-off (`CrashLoopBackOff`).
    BackOff {
        /// The back-off delay, counted from its exit.
        delay: Duration,
    },
}

/// The plan for one container of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStep {
    /// Its spec.
    pub container: Container,
    /// Init or regular.
    pub kind: ContainerKind,
    /// Its latest instance in the runtime.
    pub instance: Option<Instance>,
    /// What to do.
    pub action: ContainerAction,
    /// Its status after the step. For [`ContainerAction::Start`] it is provisional
    /// (`ContainerCreating`): the new instance reports its own.
    pub info: ContainerInfo,
}

/// What to do with the containers of the kept (or new) sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    /// Containers the spec does not name: stopped and removed (every instance).
    pub kill_unknown: Vec<cri::Container>,
    /// Older attempts of named containers: removed (the latest instance and the one before it
    /// are kept).
    pub remove_stale: Vec<String>,
    /// The status of the instance before the latest, by container name (for `lastState`).
    pub previous: HashMap<String, cri::ContainerStatus>,
    /// The latest instance of each container the spec names.
    pub latest: HashMap<String, Instance>,
    /// One step per container of the spec: init containers in order, then regular ones.
    pub steps: Vec<ContainerStep>,
    /// New back-off states (by container name), to record before the steps run.
    pub backoff: Vec<(String, Backoff)>,
}

/// Everything one sync of a pod does.
#[derive(Debug, Clone, PartialEq)]
pub struct PodActions {
    /// Sandboxes.
    pub sandbox: SandboxPlan,
    /// Containers.
    pub containers: ContainerPlan,
}

impl PodActions {
    /// The containers started or restarted, with the new attempt number, in spec order.
    pub fn starts(&self) -> Vec<(&str, u32)> {
        self.containers
            .steps
            .iter()
            .filter_map(|s| match s.action {
                ContainerAction::Start { attempt, .. } => {
                    Some((s.container.name.as_str(), attempt))
                }
                _ => None,
            })
            .collect()
    }

    /// The init container started next, if one is.
    pub fn next_init(&self) -> Option<&str> {
        self.containers
            .steps
            .iter()
            .find(|s| {
                s.kind == ContainerKind::Init
                    && matches!(
                        s.action,
                        ContainerAction::Start { .. } | ContainerAction::StartCreated
                    )
            })
            .map(|s| s.container.name.as_str())
    }

    /// The step of the container named `name`.
    pub fn step(&self, name: &str) -> Option<&ContainerStep> {
        self.containers
            .steps
            .iter()
            .find(|s| s.container.name == name)
    }
}

/// The whole plan in one call: [`plan_sandbox`], then [`plan_containers`] with the given
/// statuses (by container ID; a container without one is judged by its list entry). `now` is
/// Unix nanoseconds.
pub fn plan_pod(
    desired: &DesiredPod<'_>,
    sandboxes: Vec<cri::PodSandbox>,
    containers: Vec<cri::Container>,
    statuses: &HashMap<String, cri::ContainerStatus>,
    backoff: &BackoffState,
    now: i64,
) -> PodActions {
    let sandbox = plan_sandbox(desired.id, sandboxes, containers);
    let containers = plan_containers(desired, &sandbox.containers, statuses, backoff, now);
    PodActions {
        sandbox,
        containers,
    }
}

/// Which sandbox the pod keeps (the newest ready one made for it) and what is removed, or
/// that a new one is needed. `sandboxes` and `containers` are everything the runtime has
/// under the pod's UID.
pub fn plan_sandbox(
    id: &PodIdentity,
    sandboxes: Vec<cri::PodSandbox>,
    containers: Vec<cri::Container>,
) -> SandboxPlan {
    let (sandboxes, foreign): (Vec<cri::PodSandbox>, Vec<cri::PodSandbox>) =
        sandboxes.into_iter().partition(|s| {
            s.metadata
                .as_ref()
                .is_some_and(|m| m.namespace == id.namespace && m.name == id.name)
        });
    let (foreign, containers) = if foreign.is_empty() {
        (None, containers)
    } else {
        let (theirs, ours): (Vec<cri::Container>, Vec<cri::Container>) = containers
            .into_iter()
            .partition(|c| foreign.iter().any(|f| f.id == c.pod_sandbox_id));
        (
            Some(Teardown {
                sandboxes: foreign,
                containers: theirs,
            }),
            ours,
        )
    };

    let mut ready: Vec<&cri::PodSandbox> = sandboxes
        .iter()
        .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
        .collect();
    ready.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    if let Some(keep) = ready.first() {
        let kill = sandboxes
            .iter()
            .filter(|x| x.id != keep.id)
            .map(|extra| Teardown {
                sandboxes: vec![extra.clone()],
                containers: containers
                    .iter()
                    .filter(|c| c.pod_sandbox_id == extra.id)
                    .cloned()
                    .collect(),
            })
            .collect();
        let sandbox_id = keep.id.clone();
        let kept = containers
            .into_iter()
            .filter(|c| c.pod_sandbox_id == sandbox_id)
            .collect();
        SandboxPlan {
            foreign,
            action: SandboxAction::Keep { sandbox_id },
            kill,
            containers: kept,
        }
    } else {
        let reason = if sandboxes.is_empty() {
            SandboxReason::NoSandbox
        } else {
            SandboxReason::NotReady
        };
        let kill = if sandboxes.is_empty() && containers.is_empty() {
            Vec::new()
        } else {
            vec![Teardown {
                sandboxes,
                containers,
            }]
        };
        SandboxPlan {
            foreign,
            action: SandboxAction::Create { reason },
            kill,
            containers: Vec::new(),
        }
    }
}

fn name_of(c: &cri::Container) -> &str {
    c.labels
        .get(LABEL_CONTAINER_NAME)
        .map_or("", String::as_str)
}

pub(crate) fn attempt_of(c: &cri::Container) -> u32 {
    c.annotations
        .get(ANNOTATION_RESTART_COUNT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// The instances of each name by attempt: the latest (the highest attempt; the first listed
/// on a tie), the one before it (kept, for `lastState`, as the kubelet's container GC keeps
/// one dead instance), and the IDs of the older ones.
fn latest_of(
    containers: &[cri::Container],
) -> (
    HashMap<&str, &cri::Container>,
    HashMap<&str, &cri::Container>,
    Vec<String>,
) {
    let mut by_name: HashMap<&str, Vec<&cri::Container>> = HashMap::new();
    for c in containers {
        by_name.entry(name_of(c)).or_default().push(c);
    }
    let mut latest = HashMap::new();
    let mut previous = HashMap::new();
    let mut stale = Vec::new();
    for (name, mut list) in by_name {
        // Highest attempt first; a stable sort keeps the first listed first on a tie.
        list.sort_by_key(|c| std::cmp::Reverse(attempt_of(c)));
        let mut it = list.into_iter();
        if let Some(c) = it.next() {
            latest.insert(name, c);
        }
        if let Some(c) = it.next() {
            previous.insert(name, c);
        }
        stale.extend(it.map(|c| c.id.clone()));
    }
    (latest, previous, stale)
}

/// The containers whose `ContainerStatus` [`plan_containers`] reads: the latest instance of
/// each container the spec names, and the one before it (for `lastState`).
pub fn to_inspect<'a>(
    desired: &DesiredPod<'_>,
    containers: &'a [cri::Container],
) -> Vec<&'a cri::Container> {
    let (latest, previous, _) = latest_of(containers);
    let mut out: Vec<&cri::Container> = latest
        .into_iter()
        .chain(previous)
        .filter(|(name, _)| desired.containers().any(|(_, c)| c.name == *name))
        .map(|(_, c)| c)
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The status of a container the caller has no `ContainerStatus` for: what its list entry
/// says.
fn status_from_list(c: &cri::Container) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: c.metadata.clone(),
        state: c.state,
        created_at: c.created_at,
        image: c.image.clone(),
        image_ref: c.image_ref.clone(),
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        image_id: c.image_id.clone(),
        ..cri::ContainerStatus::default()
    }
}

/// What to do with the containers of the kept sandbox (`containers`, see
/// [`SandboxPlan::containers`]): containers the spec does not name and older attempts go,
/// then [`plan_steps`] on the latest instances.
pub fn plan_containers(
    desired: &DesiredPod<'_>,
    containers: &[cri::Container],
    statuses: &HashMap<String, cri::ContainerStatus>,
    backoff: &BackoffState,
    now: i64,
) -> ContainerPlan {
    let wanted = |name: &str| desired.containers().any(|(_, c)| c.name == name);
    // Containers the spec does not name (a manifest that kept its UID but dropped a
    // container, or one planted with the pod's labels) are stopped and removed, as the
    // kubelet's computePodActions kills containers that are not in the pod spec.
    let kill_unknown: Vec<cri::Container> = containers
        .iter()
        .filter(|c| !wanted(name_of(c)))
        .cloned()
        .collect();
    let (latest, previous, stale) = latest_of(containers);
    // The status read for an instance, else what its list entry says.
    let status_of = |c: &cri::Container| {
        statuses
            .get(&c.id)
            .cloned()
            .unwrap_or_else(|| status_from_list(c))
    };
    let previous: HashMap<String, cri::ContainerStatus> = previous
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, c)| (name.to_owned(), status_of(c)))
        .collect();
    // Keep the latest instance of each container and the one before it, as the kubelet's GC
    // does (one dead instance per container).
    let remove_stale = stale
        .into_iter()
        .filter(|id| !kill_unknown.iter().any(|c| &c.id == id))
        .collect();
    let latest: HashMap<String, Instance> = latest
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, c)| {
            (
                name.to_owned(),
                Instance {
                    id: c.id.clone(),
                    attempt: attempt_of(c),
                    status: status_of(c),
                },
            )
        })
        .collect();
    let (steps, backoff) = plan_steps(desired, &latest, backoff, now);
    ContainerPlan {
        kill_unknown,
        remove_stale,
        previous,
        latest,
        steps,
        backoff,
    }
}

/// Whether a pod without a ready sandbox is finished, given the plan for the containers of
/// its dead sandbox (the kubelet's `computePodActions`): a new sandbox is made only when a
/// container would start in it, so never for `restartPolicy: Never` once containers ran, and
/// with `OnFailure` only while a regular container's latest instance has not succeeded. A
/// finished pod keeps its dead sandbox and containers (its final status), as the kubelet's.
#[must_use]
pub fn finished_without_sandbox(desired: &DesiredPod<'_>, plan: &ContainerPlan) -> bool {
    if plan.latest.is_empty() {
        return false;
    }
    match desired.restart_policy() {
        "Never" => true,
        "OnFailure" => desired.spec.containers.iter().all(|c| {
            plan.latest.get(&c.name).is_some_and(|i| {
                i.status.state == cri::ContainerState::ContainerExited as i32
                    && i.status.exit_code == 0
            })
        }),
        _ => false,
    }
}

/// One step per container of the spec, given the latest instance of each: init containers
/// run one at a time in order (the first that has not completed blocks the rest, and the
/// regular containers), regular containers all at once. Returns the steps and the new
/// back-off states.
pub fn plan_steps(
    desired: &DesiredPod<'_>,
    latest: &HashMap<String, Instance>,
    backoff: &BackoffState,
    now: i64,
) -> (Vec<ContainerStep>, Vec<(String, Backoff)>) {
    let mut steps = Vec::new();
    let mut updates = Vec::new();
    let mut blocked_by_init = false;
    for (kind, container) in desired.containers() {
        let instance = latest.get(&container.name);
        if blocked_by_init {
            steps.push(ContainerStep {
                container: container.clone(),
                kind,
                instance: instance.cloned(),
                action: ContainerAction::WaitForInit,
                info: waiting_info(container, kind, "PodInitializing", ""),
            });
            continue;
        }
        let (action, info, update) = plan_one(desired, container, kind, instance, backoff, now);
        if let Some(b) = update {
            updates.push((container.name.clone(), b));
        }
        if kind == ContainerKind::Init {
            // A started init container has not completed yet: the rest wait for it. A sidecar
            // lets the next one start once it runs.
            let done = !matches!(action, ContainerAction::Start { .. })
                && (matches!(info.state, ContainerState::Terminated { exit_code: 0, .. })
                    || (is_sidecar(container)
                        && matches!(info.state, ContainerState::Running { .. })));
            if !done {
                blocked_by_init = true;
            }
        }
        steps.push(ContainerStep {
            container: container.clone(),
            kind,
            instance: instance.cloned(),
            action,
            info,
        });
    }
    (steps, updates)
}

/// The attempt a container's first start continues from when the runtime has no instance of
/// it: one past the highest `<n>` of the `<n>.log[.<anything>]` files in its log directory (0
/// when there are none), as the kubelet's `calcRestartCountByLogDir` counts them.
#[must_use]
pub fn restart_count_from_log_names(names: &[String]) -> u32 {
    names
        .iter()
        .filter_map(|name| {
            let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let rest = &name[digits..];
            if digits == 0 || !(rest == ".log" || rest.starts_with(".log.")) {
                return None;
            }
            name[..digits].parse::<u32>().ok()
        })
        .map(|n| n.saturating_add(1))
        .max()
        .unwrap_or(0)
}

/// The log file of a container attempt: `<log_dir>/<container>/<attempt>.log`.
pub fn log_path(log_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    log_dir.join(container).join(format!("{attempt}.log"))
}

fn nanos_between(from: i64, to: i64) -> Duration {
    Duration::from_nanos(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

/// One container: the action, its status, and its new back-off state if it changes.
fn plan_one(
    desired: &DesiredPod<'_>,
    container: &Container,
    kind: ContainerKind,
    instance: Option<&Instance>,
    backoff: &BackoffState,
    now: i64,
) -> (ContainerAction, ContainerInfo, Option<Backoff>) {
    let starting = |attempt, reason| {
        (
            ContainerAction::Start { attempt, reason },
            waiting_info(container, kind, "ContainerCreating", ""),
            None,
        )
    };
    let Some(inst) = instance else {
        return starting(0, StartReason::First);
    };
    let s = &inst.status;
    let info = info_from(
        container,
        kind,
        inst,
        log_path(desired.log_dir, &container.name, inst.attempt),
    );
    let exited = s.state == cri::ContainerState::ContainerExited as i32;
    let changed = s
        .annotations
        .get(ANNOTATION_CONTAINER_HASH)
        .is_some_and(|h| *h != container_hash(container));
    if changed && !exited {
        // The kubelet restarts a container whose spec changed (computePodActions), at once
        // and without counting it as a crash.
        return starting(
            inst.attempt.saturating_add(1),
            StartReason::SpecChanged {
                grace_seconds: grace_period(desired.spec),
            },
        );
    }
    if !exited {
        if s.state == cri::ContainerState::ContainerCreated as i32 {
            return (ContainerAction::StartCreated, info, None);
        }
        return (ContainerAction::Keep, info, None);
    }
    let policy = desired.restart_policy();
    let restart = match (kind, policy) {
        // A sidecar is restarted whatever the pod's policy, like a regular container of an
        // `Always` pod.
        (ContainerKind::Init, _) if is_sidecar(container) => true,
        (ContainerKind::Init, _) => s.exit_code != 0 && policy != "Never",
        (_, "Always") => true,
        (_, "OnFailure") => s.exit_code != 0,
        _ => false,
    };
    if !restart {
        return (ContainerAction::Keep, info, None);
    }
    let mut b = backoff
        .get(&(desired.id.uid.clone(), container.name.clone()))
        .copied()
        .unwrap_or_default();
    let ran = nanos_between(s.started_at, s.finished_at);
    if ran >= desired.backoff.max.saturating_mul(2) {
        b.restarts = 0;
    }
    let delay = b.delay(desired.backoff);
    let since_exit = nanos_between(s.finished_at, now);
    if since_exit < delay {
        let id = desired.id;
        let waiting = ContainerInfo {
            // The instance that just ended is the last state now (the kubelet's
            // `convertToAPIContainerStatuses`): `kubectl logs` without `--previous` reads it.
            last_state: last_state(s),
            state: ContainerState::Waiting {
                reason: "CrashLoopBackOff".to_owned(),
                message: format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    node_config::Duration::from_nanos(
                        i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX)
                    ),
                    container.name,
                    id.name,
                    id.namespace,
                    id.uid
                ),
            },
            ready: false,
            ..info
        };
        return (ContainerAction::BackOff { delay }, waiting, Some(b));
    }
    b.restarts = b.restarts.saturating_add(1);
    let (action, info, _) = starting(inst.attempt.saturating_add(1), StartReason::Restart);
    (action, info, Some(b))
}

/// A container's status from its latest instance.
pub fn info_from(
    container: &Container,
    kind: ContainerKind,
    inst: &Instance,
    log_path: PathBuf,
) -> ContainerInfo {
    let s = &inst.status;
    let state = if s.state == cri::ContainerState::ContainerRunning as i32 {
        ContainerState::Running {
            started_at: s.started_at,
        }
    } else if let Some(ended) = last_state(s) {
        ended
    } else {
        ContainerState::Waiting {
            reason: "ContainerCreating".to_owned(),
            message: String::new(),
        }
    };
    ContainerInfo {
        name: container.name.clone(),
        kind,
        container_id: Some(inst.id.clone()),
        image: container.image.clone().unwrap_or_default(),
        ready: matches!(state, ContainerState::Running { .. }),
        state,
        restart_count: inst.attempt,
        log_path: Some(log_path),
        image_id: (!s.image_ref.is_empty()).then(|| s.image_ref.clone()),
        last_state: None,
        started: None,
    }
}

/// How a container ended, from its status (`None` while it has not): the state of an exited
/// instance, also a container's `lastState` from its previous instance.
#[must_use]
pub fn last_state(status: &cri::ContainerStatus) -> Option<ContainerState> {
    (status.state == cri::ContainerState::ContainerExited as i32).then(|| {
        let reason = if !status.reason.is_empty() {
            status.reason.clone()
        } else if status.exit_code == 0 {
            "Completed".to_owned()
        } else {
            "Error".to_owned()
        };
        ContainerState::Terminated {
            exit_code: status.exit_code,
            reason,
            started_at: status.started_at,
            finished_at: status.finished_at,
            message: status.message.clone(),
            container_id: status.id.clone(),
        }
    })
}

/// A container with no instance, waiting for `reason`.
pub fn waiting_info(
    container: &Container,
    kind: ContainerKind,
    reason: &str,
    message: &str,
) -> ContainerInfo {
    ContainerInfo {
        name: container.name.clone(),
        kind,
        container_id: None,
        image: container.image.clone().unwrap_or_default(),
        state: ContainerState::Waiting {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        restart_count: 0,
        ready: false,
        log_path: None,
        image_id: None,
        last_state: None,
        started: None,
    }
}

/// The pod's phase and conditions from its containers' statuses (init containers first, as
/// [`plan_steps`] orders them) and its restart policy.
pub fn pod_status(infos: &[ContainerInfo], policy: &str) -> (PodPhase, Vec<PodCondition>) {
    pod_status_with_sidecars(infos, policy, &[])
}

/// The names of `spec`'s sidecars: init containers with `restartPolicy: Always` (native
/// sidecars), which run beside the regular containers.
pub fn sidecars(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<&str> {
    spec.init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c))
        .map(|c| c.name.as_str())
        .collect()
}

/// Whether `c` is a native sidecar (an init container with `restartPolicy: Always`).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// [`pod_status`] for a pod with the `sidecars` named: a running sidecar does not hold the
/// pod's initialization up.
pub fn pod_status_with_sidecars(
    infos: &[ContainerInfo],
    policy: &str,
    sidecars: &[&str],
) -> (PodPhase, Vec<PodCondition>) {
    let init_done = |c: &ContainerInfo| {
        matches!(c.state, ContainerState::Terminated { exit_code: 0, .. })
            || (sidecars.contains(&c.name.as_str())
                && matches!(c.state, ContainerState::Running { .. })
                && c.started != Some(false))
    };
    // The first init container that has not completed blocks the pod; if it failed for good
    // (restart policy Never), the pod failed.
    let (init_failed, blocked_by_init) = match infos
        .iter()
        .find(|c| c.kind == ContainerKind::Init && !init_done(c))
    {
        Some(c) => (
            matches!(c.state, ContainerState::Terminated { .. })
                && policy == "Never"
                && !sidecars.contains(&c.name.as_str()),
            true,
        ),
        None => (false, false),
    };
    let phase = pod_phase(infos, policy, init_failed, blocked_by_init);
    let unready: Vec<&str> = infos
        .iter()
        .filter(|c| {
            (c.kind == ContainerKind::Regular || sidecars.contains(&c.name.as_str())) && !c.ready
        })
        .map(|c| c.name.as_str())
        .collect();
    let ready = phase == PodPhase::Running && unready.is_empty();
    let incomplete: Vec<&str> = infos
        .iter()
        .filter(|c| c.kind == ContainerKind::Init && !init_done(c))
        .map(|c| c.name.as_str())
        .collect();
    let cond = |t: &str, s: bool, r: &str, message: Option<String>| PodCondition {
        type_: t.to_owned(),
        status: s,
        reason: (!s).then(|| r.to_owned()),
        message: if s { None } else { message },
    };
    // The kubelet's GenerateContainersReadyCondition: a finished pod says so; otherwise the
    // unready containers are named (Go's `%s` of a string slice: `[a b]`).
    let (reason, message) = match phase {
        PodPhase::Succeeded => ("PodCompleted", None),
        PodPhase::Failed => ("PodFailed", None),
        _ => (
            "ContainersNotReady",
            (!unready.is_empty())
                .then(|| format!("containers with unready status: [{}]", unready.join(" "))),
        ),
    };
    let init_message = (!incomplete.is_empty()).then(|| {
        format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        )
    });
    (
        phase,
        vec![
            cond("PodScheduled", true, "", None),
            cond(
                "Initialized",
                !blocked_by_init,
                "ContainersNotInitialized",
                init_message,
            ),
            cond("ContainersReady", ready, reason, message.clone()),
            cond("Ready", ready, reason, message),
        ],
    )
}

fn pod_phase(
    infos: &[ContainerInfo],
    policy: &str,
    init_failed: bool,
    blocked_by_init: bool,
) -> PodPhase {
    if init_failed {
        return PodPhase::Failed;
    }
    if blocked_by_init {
        return PodPhase::Pending;
    }
    // The kubelet's getPhase: a container waiting to be restarted after it ran (its last
    // state is a termination, or it is in CrashLoopBackOff) counts as stopped, not waiting.
    let (mut running, mut stopped, mut succeeded, mut waiting) = (0, 0, 0, 0);
    for c in infos.iter().filter(|c| c.kind == ContainerKind::Regular) {
        match &c.state {
            ContainerState::Running { .. } => running += 1,
            ContainerState::Terminated { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerState::Waiting { reason, .. } => {
                if matches!(c.last_state, Some(ContainerState::Terminated { .. }))
                    || reason == "CrashLoopBackOff"
                {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if waiting > 0 {
        PodPhase::Pending
    } else if running > 0 {
        PodPhase::Running
    } else if stopped > 0 {
        if policy == "Always" {
            PodPhase::Running
        } else if stopped == succeeded {
            PodPhase::Succeeded
        } else if policy == "Never" {
            PodPhase::Failed
        } else {
            PodPhase::Running
        }
    } else {
        PodPhase::Pending
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn restart_counts_continue_after_the_log_files() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(super::restart_count_from_log_names(&[]), 0);
        assert_eq!(
            super::restart_count_from_log_names(&names(&[
                "0.log",
                "1.log",
                "3.log.20261203-101010.gz"
            ])),
            4
        );
        assert_eq!(
            super::restart_count_from_log_names(&names(&[
                "x.log", "12", "7.txt", "log", ".log", "5.logx"
            ])),
            0
        );
        assert_eq!(
            super::restart_count_from_log_names(&names(&["4294967295.log"])),
            u32::MAX
        );
    }

    use super::*;

    const SEC: i64 = 1_000_000_000;
    /// "Now" in every test: an arbitrary Unix time in nanoseconds.
    const NOW: i64 = 1_800_000_000 * SEC;

    fn ident() -> PodIdentity {
        PodIdentity {
            namespace: "default".into(),
            name: "web-n1".into(),
            uid: "u1".into(),
            node_name: "n1".into(),
        }
    }

    fn ctr(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox:1.36".into()),
            ..Container::default()
        }
    }

    fn pod_spec(init: &[&str], regular: &[&str], policy: Option<&str>) -> PodSpec {
        PodSpec {
            init_containers: (!init.is_empty()).then(|| init.iter().map(|n| ctr(n)).collect()),
            containers: regular.iter().map(|n| ctr(n)).collect(),
            restart_policy: policy.map(str::to_owned),
            ..PodSpec::default()
        }
    }

    const POLICY: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(300),
    };

    /// What the runtime holds, built up by a test.
    #[derive(Default)]
    struct World {
        sandboxes: Vec<cri::PodSandbox>,
        containers: Vec<cri::Container>,
        statuses: HashMap<String, cri::ContainerStatus>,
    }

    impl World {
        fn sandbox_for(mut self, id: &str, ready: bool, created_at: i64, name: &str) -> Self {
            self.sandboxes.push(cri::PodSandbox {
                id: id.into(),
                metadata: Some(cri::PodSandboxMetadata {
                    name: name.into(),
                    uid: "u1".into(),
                    namespace: "default".into(),
                    attempt: 0,
                }),
                state: if ready {
                    cri::PodSandboxState::SandboxReady as i32
                } else {
                    cri::PodSandboxState::SandboxNotready as i32
                },
                created_at,
                labels: HashMap::from([(crate::spec::LABEL_POD_UID.into(), "u1".into())]),
                ..cri::PodSandbox::default()
            });
            self
        }

        fn sandbox(self, id: &str, ready: bool, created_at: i64) -> Self {
            self.sandbox_for(id, ready, created_at, "web-n1")
        }

        /// A container instance; `hash_of` is the spec whose hash it records.
        #[allow(clippy::too_many_arguments)]
        fn instance(
            mut self,
            id: &str,
            sandbox: &str,
            name: &str,
            attempt: u32,
            state: cri::ContainerState,
            exit_code: i32,
            started_at: i64,
            finished_at: i64,
        ) -> Self {
            let annotations = HashMap::from([
                (ANNOTATION_RESTART_COUNT.to_owned(), attempt.to_string()),
                (
                    ANNOTATION_CONTAINER_HASH.to_owned(),
                    container_hash(&ctr(name)),
                ),
            ]);
            let labels = HashMap::from([(LABEL_CONTAINER_NAME.to_owned(), name.to_owned())]);
            self.containers.push(cri::Container {
                id: id.into(),
                pod_sandbox_id: sandbox.into(),
                state: state as i32,
                labels: labels.clone(),
                annotations: annotations.clone(),
                ..cri::Container::default()
            });
            self.statuses.insert(
                id.into(),
                cri::ContainerStatus {
                    id: id.into(),
                    state: state as i32,
                    started_at,
                    finished_at,
                    exit_code,
                    labels,
                    annotations,
                    ..cri::ContainerStatus::default()
                },
            );
            self
        }

        fn running(self, id: &str, sandbox: &str, name: &str, attempt: u32) -> Self {
            self.instance(
                id,
                sandbox,
                name,
                attempt,
                cri::ContainerState::ContainerRunning,
                0,
                NOW - 100 * SEC,
                0,
            )
        }

        /// Exited `ago` seconds before NOW after running for `ran` seconds.
        #[allow(clippy::too_many_arguments)]
        fn exited(
            self,
            id: &str,
            sandbox: &str,
            name: &str,
            attempt: u32,
            code: i32,
            ago: i64,
            ran: i64,
        ) -> Self {
            let finished = NOW - ago * SEC;
            self.instance(
                id,
                sandbox,
                name,
                attempt,
                cri::ContainerState::ContainerExited,
                code,
                finished - ran * SEC,
                finished,
            )
        }

        fn plan(self, spec: &PodSpec, backoff: &BackoffState) -> PodActions {
            let id = ident();
            let desired = DesiredPod {
                id: &id,
                spec,
                log_dir: Path::new("/logs/default_web-n1_u1"),
                backoff: POLICY,
            };
            plan_pod(
                &desired,
                self.sandboxes,
                self.containers,
                &self.statuses,
                backoff,
                NOW,
            )
        }
    }

    fn backoff(name: &str, restarts: u32) -> BackoffState {
        HashMap::from([(("u1".to_owned(), name.to_owned()), Backoff { restarts })])
    }

    fn actions(a: &PodActions) -> Vec<(&str, ContainerAction)> {
        a.containers
            .steps
            .iter()
            .map(|s| (s.container.name.as_str(), s.action))
            .collect()
    }

    fn keep(sandbox: &str) -> SandboxAction {
        SandboxAction::Keep {
            sandbox_id: sandbox.into(),
        }
    }

    fn infos(a: &PodActions) -> Vec<ContainerInfo> {
        a.containers.steps.iter().map(|s| s.info.clone()).collect()
    }

    fn ids(t: &Teardown) -> (Vec<&str>, Vec<&str>) {
        (
            t.sandboxes.iter().map(|s| s.id.as_str()).collect(),
            t.containers.iter().map(|c| c.id.as_str()).collect(),
        )
    }

    const START0: ContainerAction = ContainerAction::Start {
        attempt: 0,
        reason: StartReason::First,
    };

    fn restart(attempt: u32) -> ContainerAction {
        ContainerAction::Start {
            attempt,
            reason: StartReason::Restart,
        }
    }

    #[test]
    fn backoff_doubles_from_the_first_delay_to_the_cap() {
        let delays: Vec<u64> = (0..8)
            .map(|r| Backoff { restarts: r }.delay(POLICY).as_secs())
            .collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(Backoff { restarts: u32::MAX }.delay(POLICY).as_secs(), 300);
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_then_every_container() {
        let spec = pod_spec(&[], &["app", "side"], None);
        let a = World::default().plan(&spec, &BackoffState::new());
        assert_eq!(
            a.sandbox.action,
            SandboxAction::Create {
                reason: SandboxReason::NoSandbox
            }
        );
        assert!(a.sandbox.kill.is_empty() && a.sandbox.foreign.is_none());
        assert_eq!(actions(&a), [("app", START0), ("side", START0)]);
        assert_eq!(a.starts(), [("app", 0), ("side", 0)]);
        assert!(a.containers.backoff.is_empty());
        let (phase, _) = pod_status(&infos(&a), "Always");
        assert_eq!(phase, PodPhase::Pending);
    }

    #[test]
    fn adopted_ready_sandbox_with_running_containers_needs_nothing() {
        // After an agent restart: the runtime still runs what the agent made before.
        let spec = pod_spec(&["init"], &["app", "side"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("i0", "s1", "init", 0, 0, 50, 1)
            .running("a0", "s1", "app", 0)
            .running("b3", "s1", "side", 3)
            .plan(&spec, &BackoffState::new());
        assert_eq!(a.sandbox.action, keep("s1"));
        assert!(a.sandbox.kill.is_empty() && a.sandbox.foreign.is_none());
        assert!(a.containers.kill_unknown.is_empty() && a.containers.remove_stale.is_empty());
        assert_eq!(
            actions(&a),
            [
                ("init", ContainerAction::Keep),
                ("app", ContainerAction::Keep),
                ("side", ContainerAction::Keep)
            ]
        );
        assert!(a.starts().is_empty() && a.next_init().is_none());
        assert!(a.containers.backoff.is_empty());
        let side = &a.step("side").map(|s| s.info.clone());
        assert_eq!(side.as_ref().map(|i| i.restart_count), Some(3));
        assert_eq!(
            side.as_ref().and_then(|i| i.log_path.clone()),
            Some(PathBuf::from("/logs/default_web-n1_u1/side/3.log"))
        );
        let (phase, conditions) = pod_status(&infos(&a), "Always");
        assert_eq!(phase, PodPhase::Running);
        assert!(conditions.iter().all(|c| c.status), "{conditions:?}");
    }

    #[test]
    fn a_sandbox_that_is_not_ready_is_replaced_and_everything_old_goes() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox("s1", false, 1)
            .running("a0", "s1", "app", 0)
            .exited("a1", "", "app", 1, 1, 5, 1)
            .plan(&spec, &BackoffState::new());
        assert_eq!(
            a.sandbox.action,
            SandboxAction::Create {
                reason: SandboxReason::NotReady
            }
        );
        assert_eq!(a.sandbox.kill.len(), 1);
        assert_eq!(ids(&a.sandbox.kill[0]), (vec!["s1"], vec!["a0", "a1"]));
        assert!(a.sandbox.containers.is_empty());
        // A new sandbox starts from attempt 0.
        assert_eq!(actions(&a), [("app", START0)]);
    }

    #[test]
    fn the_newest_ready_sandbox_is_kept_and_the_others_go_with_their_containers() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox("old", true, 1)
            .sandbox("new", true, 3)
            .sandbox("dead", false, 2)
            .running("a-old", "old", "app", 0)
            .running("a-new", "new", "app", 0)
            .plan(&spec, &BackoffState::new());
        assert_eq!(a.sandbox.action, keep("new"));
        let kills: Vec<_> = a.sandbox.kill.iter().map(ids).collect();
        assert_eq!(
            kills,
            [(vec!["old"], vec!["a-old"]), (vec!["dead"], vec![])]
        );
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);
    }

    #[test]
    fn a_sandbox_made_for_another_pod_under_this_uid_is_removed_not_adopted() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox_for("theirs", true, 5, "other-n1")
            .sandbox("mine", true, 1)
            .running("t0", "theirs", "app", 0)
            .running("m0", "mine", "app", 0)
            .plan(&spec, &BackoffState::new());
        let foreign = a.sandbox.foreign.as_ref().map(ids);
        assert_eq!(foreign, Some((vec!["theirs"], vec!["t0"])));
        assert_eq!(a.sandbox.action, keep("mine"));
        assert!(a.sandbox.kill.is_empty());
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);

        // Only a foreign sandbox: a new one of our own.
        let a = World::default()
            .sandbox_for("theirs", true, 5, "other-n1")
            .running("t0", "theirs", "app", 0)
            .plan(&spec, &BackoffState::new());
        assert!(a.sandbox.foreign.is_some());
        assert_eq!(
            a.sandbox.action,
            SandboxAction::Create {
                reason: SandboxReason::NoSandbox
            }
        );
        assert!(a.sandbox.kill.is_empty());
    }

    #[test]
    fn a_pod_that_would_start_nothing_in_a_new_sandbox_is_finished() {
        // (policy, exit code of the only container) -> finished?
        for (policy, code, finished) in [
            ("Never", 0, true),
            ("Never", 1, true),
            ("OnFailure", 0, true),
            ("OnFailure", 1, false),
            ("Always", 0, false),
        ] {
            let spec = pod_spec(&[], &["app"], Some(policy));
            let w = World::default()
                .sandbox("dead", false, 1)
                .exited("a0", "dead", "app", 0, code, 5, 1);
            let id = ident();
            let desired = DesiredPod {
                id: &id,
                spec: &spec,
                log_dir: Path::new("/logs/default_web-n1_u1"),
                backoff: POLICY,
            };
            let plan = plan_containers(
                &desired,
                &w.containers,
                &w.statuses,
                &BackoffState::new(),
                NOW,
            );
            assert_eq!(
                finished_without_sandbox(&desired, &plan),
                finished,
                "{policy} exit {code}"
            );
            if finished {
                let infos: Vec<ContainerInfo> = plan.steps.iter().map(|s| s.info.clone()).collect();
                let (phase, conditions) = pod_status(&infos, policy);
                let want = if code == 0 {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                };
                assert_eq!(phase, want);
                let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
                let reason = if code == 0 {
                    "PodCompleted"
                } else {
                    "PodFailed"
                };
                assert_eq!(ready.reason.as_deref(), Some(reason));
            }
        }
        // Nothing ran yet: a sandbox is made.
        let spec = pod_spec(&[], &["app"], Some("Never"));
        let id = ident();
        let desired = DesiredPod {
            id: &id,
            spec: &spec,
            log_dir: Path::new("/logs/default_web-n1_u1"),
            backoff: POLICY,
        };
        let plan = plan_containers(&desired, &[], &HashMap::new(), &BackoffState::new(), NOW);
        assert!(!finished_without_sandbox(&desired, &plan));
    }

    #[test]
    fn unready_and_incomplete_containers_are_named_in_the_conditions() {
        let spec = pod_spec(&["init"], &["a", "b"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("i0", "s1", "init", 0, 0, 50, 1)
            .running("a0", "s1", "a", 0)
            .plan(&spec, &BackoffState::new());
        let (_, conditions) = pod_status(&infos(&a), "Always");
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "ContainersReady")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [b]")
        );
        let spec = pod_spec(&["init"], &["a"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .running("i0", "s1", "init", 0)
            .plan(&spec, &BackoffState::new());
        let (_, conditions) = pod_status(&infos(&a), "Always");
        let init = conditions
            .iter()
            .find(|c| c.type_ == "Initialized")
            .unwrap();
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [init]")
        );
    }

    #[test]
    fn a_running_sidecar_lets_the_pod_go_on_and_is_always_restarted() {
        let mut spec = pod_spec(&["side", "setup"], &["app"], Some("Never"));
        spec.init_containers.as_mut().unwrap()[0].restart_policy = Some("Always".into());
        // The instances record the sidecar's real spec hash.
        let hash = container_hash(&spec.init_containers.as_ref().unwrap()[0]);
        let sidecar_hash = |mut w: World| {
            for c in w.containers.iter_mut().filter(|c| c.id.starts_with("side")) {
                c.annotations
                    .insert(ANNOTATION_CONTAINER_HASH.to_owned(), hash.clone());
            }
            for (id, st) in &mut w.statuses {
                if id.starts_with("side") {
                    st.annotations
                        .insert(ANNOTATION_CONTAINER_HASH.to_owned(), hash.clone());
                }
            }
            w
        };
        // The sidecar runs: the next init container starts.
        let a = sidecar_hash(
            World::default()
                .sandbox("s1", true, 1)
                .running("side0", "s1", "side", 0),
        )
        .plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [
                ("side", ContainerAction::Keep),
                ("setup", START0),
                ("app", ContainerAction::WaitForInit)
            ]
        );
        // Setup done: the app starts beside the sidecar, and the pod is initialized.
        let a = sidecar_hash(
            World::default()
                .sandbox("s1", true, 1)
                .running("side0", "s1", "side", 0)
                .exited("setup0", "s1", "setup", 0, 0, 5, 1),
        )
        .plan(&spec, &BackoffState::new());
        assert_eq!(actions(&a)[2], ("app", START0));
        let a = sidecar_hash(
            World::default()
                .sandbox("s1", true, 1)
                .running("side0", "s1", "side", 0)
                .exited("setup0", "s1", "setup", 0, 0, 5, 1)
                .running("app0", "s1", "app", 0),
        )
        .plan(&spec, &BackoffState::new());
        let (phase, conditions) = pod_status_with_sidecars(&infos(&a), "Never", &sidecars(&spec));
        assert_eq!(phase, PodPhase::Running);
        let init = conditions
            .iter()
            .find(|c| c.type_ == "Initialized")
            .unwrap();
        assert!(init.status, "{conditions:?}");
        // A sidecar that exits is restarted even with restartPolicy Never.
        let a = sidecar_hash(
            World::default()
                .sandbox("s1", true, 1)
                .exited("side0", "s1", "side", 0, 0, 50, 1),
        )
        .plan(&spec, &BackoffState::new());
        assert!(matches!(
            actions(&a)[0],
            ("side", ContainerAction::Start { attempt: 1, .. })
        ));
    }

    #[test]
    fn restart_policy_by_exit_code() {
        // (policy, exit code) -> restarted?, then the pod phase when it is not.
        let cases = [
            ("Always", 0, true, None),
            ("Always", 1, true, None),
            ("OnFailure", 0, false, Some(PodPhase::Succeeded)),
            ("OnFailure", 1, true, None),
            ("OnFailure", 137, true, None),
            ("Never", 0, false, Some(PodPhase::Succeeded)),
            ("Never", 1, false, Some(PodPhase::Failed)),
        ];
        for (policy, code, restarted, phase) in cases {
            let spec = pod_spec(&[], &["app"], Some(policy));
            let a = World::default()
                .sandbox("s1", true, 1)
                .exited("a0", "s1", "app", 0, code, 1, 1)
                .plan(&spec, &BackoffState::new());
            let what = format!("{policy} exit {code}");
            if restarted {
                // The first restart of a crash loop is immediate.
                assert_eq!(actions(&a), [("app", restart(1))], "{what}");
                assert_eq!(
                    a.containers.backoff,
                    [("app".to_owned(), Backoff { restarts: 1 })],
                    "{what}"
                );
            } else {
                assert_eq!(actions(&a), [("app", ContainerAction::Keep)], "{what}");
                assert!(a.containers.backoff.is_empty(), "{what}");
                let info = &a.containers.steps[0].info;
                let reason = if code == 0 { "Completed" } else { "Error" };
                assert!(
                    matches!(&info.state, ContainerState::Terminated { exit_code, reason: r, .. } if *exit_code == code && r == reason),
                    "{what}: {info:?}"
                );
                assert_eq!(
                    pod_status(&infos(&a), policy).0,
                    phase.unwrap_or(PodPhase::Running),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn crash_loop_backoff_waits_with_the_kubelets_message() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("a2", "s1", "app", 2, 1, 5, 1)
            .plan(&spec, &backoff("app", 1));
        let delay = Duration::from_secs(10);
        assert_eq!(actions(&a), [("app", ContainerAction::BackOff { delay })]);
        let info = &a.containers.steps[0].info;
        assert_eq!(
            info.state,
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 10s restarting failed container=app pod=web-n1_default(u1)"
                    .into()
            }
        );
        assert_eq!(info.container_id.as_deref(), Some("a2"));
        assert_eq!(info.restart_count, 2);
        assert!(!info.ready);
        // The instance that just ended is the last state (logs without --previous read it).
        assert!(
            matches!(
                &info.last_state,
                Some(ContainerState::Terminated { container_id, exit_code: 1, .. }) if container_id == "a2"
            ),
            "{:?}",
            info.last_state
        );
        // Waiting does not count as a restart.
        assert_eq!(
            a.containers.backoff,
            [("app".to_owned(), Backoff { restarts: 1 })]
        );
        // A crash-looping container counts as stopped: an `Always` pod is Running, as the
        // kubelet's getPhase says.
        assert_eq!(pod_status(&infos(&a), "Always").0, PodPhase::Running);
    }

    #[test]
    fn crash_loop_backoff_grows_to_the_cap_and_restarts_once_it_passed() {
        let spec = pod_spec(&[], &["app"], None);
        for (restarts, secs, message) in [
            (2, 20, "back-off 20s"),
            (3, 40, "back-off 40s"),
            (4, 80, "back-off 1m20s"),
            (6, 300, "back-off 5m0s"),
            (40, 300, "back-off 5m0s"),
        ] {
            // Exited a second ago: still waiting.
            let a = World::default()
                .sandbox("s1", true, 1)
                .exited("a", "s1", "app", restarts, 1, 1, 1)
                .plan(&spec, &backoff("app", restarts));
            let delay = Duration::from_secs(secs);
            assert_eq!(actions(&a), [("app", ContainerAction::BackOff { delay })]);
            let ContainerState::Waiting { message: m, .. } = &a.containers.steps[0].info.state
            else {
                panic!("not waiting");
            };
            assert!(m.starts_with(message), "{m}");
            // Exited exactly the delay ago: restarted, one more restart in the loop.
            let ago = i64::try_from(secs).unwrap();
            let a = World::default()
                .sandbox("s1", true, 1)
                .exited("a", "s1", "app", restarts, 1, ago, 1)
                .plan(&spec, &backoff("app", restarts));
            assert_eq!(actions(&a), [("app", restart(restarts + 1))]);
            assert_eq!(
                a.containers.backoff,
                [(
                    "app".to_owned(),
                    Backoff {
                        restarts: restarts + 1
                    }
                )]
            );
        }
    }

    #[test]
    fn crash_loop_starts_over_after_running_twice_the_cap() {
        let spec = pod_spec(&[], &["app"], None);
        // Ran ten minutes (twice the 5 min cap), exited a second ago: immediate restart.
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("a", "s1", "app", 7, 1, 1, 600)
            .plan(&spec, &backoff("app", 6));
        assert_eq!(actions(&a), [("app", restart(8))]);
        assert_eq!(
            a.containers.backoff,
            [("app".to_owned(), Backoff { restarts: 1 })]
        );
        // Just under: the loop goes on.
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("a", "s1", "app", 7, 1, 1, 599)
            .plan(&spec, &backoff("app", 6));
        assert!(matches!(
            actions(&a)[..],
            [("app", ContainerAction::BackOff { .. })]
        ));
    }

    #[test]
    fn init_containers_run_one_at_a_time_in_order() {
        let spec = pod_spec(&["one", "two"], &["app"], None);
        let a = World::default().plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [
                ("one", START0),
                ("two", ContainerAction::WaitForInit),
                ("app", ContainerAction::WaitForInit)
            ]
        );
        assert_eq!(a.next_init(), Some("one"));
        assert_eq!(
            a.step("app").map(|s| s.info.state.clone()),
            Some(ContainerState::Waiting {
                reason: "PodInitializing".into(),
                message: String::new()
            })
        );
        let (phase, conditions) = pod_status(&infos(&a), "Always");
        assert_eq!(phase, PodPhase::Pending);
        assert_eq!(conditions[1].type_, "Initialized");
        assert_eq!(
            conditions[1].reason.as_deref(),
            Some("ContainersNotInitialized")
        );

        // The first is running: the rest wait.
        let a = World::default()
            .sandbox("s1", true, 1)
            .running("o", "s1", "one", 0)
            .plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [
                ("one", ContainerAction::Keep),
                ("two", ContainerAction::WaitForInit),
                ("app", ContainerAction::WaitForInit)
            ]
        );

        // The first completed: the second starts.
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("o", "s1", "one", 0, 0, 1, 1)
            .plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [
                ("one", ContainerAction::Keep),
                ("two", START0),
                ("app", ContainerAction::WaitForInit)
            ]
        );
        assert_eq!(a.next_init(), Some("two"));

        // Both completed: the regular containers start, the pod is initialized.
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("o", "s1", "one", 0, 0, 2, 1)
            .exited("t", "s1", "two", 0, 0, 1, 1)
            .plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [
                ("one", ContainerAction::Keep),
                ("two", ContainerAction::Keep),
                ("app", START0)
            ]
        );
        assert!(a.next_init().is_none());
        let (_, conditions) = pod_status(&infos(&a), "Always");
        assert!(conditions[1].status);
    }

    #[test]
    fn a_failed_init_container_by_restart_policy() {
        for policy in ["Always", "OnFailure", "Never"] {
            let spec = pod_spec(&["one", "two"], &["app"], Some(policy));
            let a = World::default()
                .sandbox("s1", true, 1)
                .exited("o", "s1", "one", 0, 0, 2, 1)
                .exited("t", "s1", "two", 0, 3, 1, 1)
                .plan(&spec, &BackoffState::new());
            let (phase, _) = pod_status(&infos(&a), policy);
            if policy == "Never" {
                // Never restarted: the pod failed, the regular containers never run.
                assert_eq!(
                    actions(&a),
                    [
                        ("one", ContainerAction::Keep),
                        ("two", ContainerAction::Keep),
                        ("app", ContainerAction::WaitForInit)
                    ],
                    "{policy}"
                );
                assert_eq!(phase, PodPhase::Failed);
            } else {
                // Restarted (crash-loop back-off applies), the rest still waits.
                assert_eq!(
                    actions(&a),
                    [
                        ("one", ContainerAction::Keep),
                        ("two", restart(1)),
                        ("app", ContainerAction::WaitForInit)
                    ],
                    "{policy}"
                );
                assert_eq!(phase, PodPhase::Pending);
            }
        }
        // In back-off: waiting, the rest blocked.
        let spec = pod_spec(&["one"], &["app"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("o", "s1", "one", 1, 3, 1, 1)
            .plan(&spec, &backoff("one", 1));
        assert_eq!(
            actions(&a),
            [
                (
                    "one",
                    ContainerAction::BackOff {
                        delay: Duration::from_secs(10)
                    }
                ),
                ("app", ContainerAction::WaitForInit)
            ]
        );
    }

    #[test]
    fn a_completed_init_container_is_never_rerun_and_regular_ones_restart_by_policy() {
        // Init containers that exited 0 stay done even with restart policy Always.
        let spec = pod_spec(&["one"], &["app"], Some("Always"));
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("o", "s1", "one", 0, 0, 100, 1)
            .exited("a", "s1", "app", 0, 0, 1, 1)
            .plan(&spec, &BackoffState::new());
        assert_eq!(
            actions(&a),
            [("one", ContainerAction::Keep), ("app", restart(1))]
        );
    }

    #[test]
    fn unknown_containers_and_older_attempts_are_removed() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("a0", "s1", "app", 0, 1, 30, 1)
            .running("a2", "s1", "app", 2)
            .exited("a1", "s1", "app", 1, 1, 20, 1)
            .running("g1", "s1", "gone", 1)
            .exited("g0", "s1", "gone", 0, 0, 40, 1)
            .plan(&spec, &BackoffState::new());
        let unknown: Vec<&str> = a
            .containers
            .kill_unknown
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(unknown, ["g1", "g0"]);
        // a1 is kept as the previous instance (lastState).
        assert_eq!(a.containers.remove_stale, ["a0"]);
        assert_eq!(
            a.containers.previous.keys().collect::<Vec<_>>(),
            [&"app".to_owned()]
        );
        assert_eq!(
            a.containers.latest.keys().collect::<Vec<_>>(),
            [&"app".to_owned()]
        );
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);
        assert_eq!(a.step("app").map(|s| s.info.restart_count), Some(2));
    }

    #[test]
    fn the_latest_and_previous_named_instances_are_inspected() {
        let spec = pod_spec(&[], &["app", "side"], None);
        let w = World::default()
            .sandbox("s1", true, 1)
            .exited("a0", "s1", "app", 0, 1, 30, 1)
            .running("a1", "s1", "app", 1)
            .running("g", "s1", "gone", 0)
            .running("s", "s1", "side", 0);
        let id = ident();
        let desired = DesiredPod {
            id: &id,
            spec: &spec,
            log_dir: Path::new("/l"),
            backoff: POLICY,
        };
        let seen: Vec<&str> = to_inspect(&desired, &w.containers)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        // a0 for lastState; g is not in the spec.
        assert_eq!(seen, ["a0", "a1", "s"]);
    }

    #[test]
    fn a_changed_spec_restarts_a_running_container_at_once() {
        let mut spec = pod_spec(&[], &["app"], Some("Never"));
        spec.containers[0].args = Some(vec!["sleep".into(), "1000".into()]);
        spec.termination_grace_period_seconds = Some(5);
        let a = World::default()
            .sandbox("s1", true, 1)
            .running("a3", "s1", "app", 3)
            .plan(&spec, &backoff("app", 4));
        assert_eq!(
            actions(&a),
            [(
                "app",
                ContainerAction::Start {
                    attempt: 4,
                    reason: StartReason::SpecChanged { grace_seconds: 5 }
                }
            )]
        );
        // Not a crash: the back-off is untouched.
        assert!(a.containers.backoff.is_empty());
        // An exited container with a changed spec follows its restart policy.
        let a = World::default()
            .sandbox("s1", true, 1)
            .exited("a3", "s1", "app", 3, 0, 1, 1)
            .plan(&spec, &BackoffState::new());
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);
        // The same spec: nothing to do.
        let a = World::default()
            .sandbox("s1", true, 1)
            .running("a3", "s1", "app", 3)
            .plan(
                &pod_spec(&[], &["app"], Some("Never")),
                &BackoffState::new(),
            );
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);
    }

    #[test]
    fn a_created_but_never_started_instance_is_started() {
        let spec = pod_spec(&[], &["app"], None);
        let a = World::default()
            .sandbox("s1", true, 1)
            .instance(
                "a0",
                "s1",
                "app",
                0,
                cri::ContainerState::ContainerCreated,
                0,
                0,
                0,
            )
            .plan(&spec, &BackoffState::new());
        assert_eq!(actions(&a), [("app", ContainerAction::StartCreated)]);
        assert_eq!(
            a.containers.steps[0].info.state,
            ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new()
            }
        );
    }

    #[test]
    fn a_missing_status_falls_back_to_the_list_entry() {
        let spec = pod_spec(&[], &["app"], None);
        let mut w = World::default()
            .sandbox("s1", true, 1)
            .running("a0", "s1", "app", 0);
        w.statuses.clear();
        let a = w.plan(&spec, &BackoffState::new());
        assert_eq!(actions(&a), [("app", ContainerAction::Keep)]);
    }
}
