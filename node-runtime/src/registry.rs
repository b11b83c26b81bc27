//! What the agent knows about its pods, shared with the other crates (checkpoint API,
//! pod-resources, heartbeat): find a pod by namespace/name with its containers and runtime IDs,
//! or list the active pods.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::Serialize;

pub use crate::spec::ContainerKind;

/// Pod lifecycle phase, as in `PodStatus.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PodPhase {
    /// Sandbox, images or init containers not done yet.
    Pending,
    /// All containers started, at least one running.
    Running,
    /// All containers exited 0 and will not be restarted.
    Succeeded,
    /// A container failed and will not be restarted.
    Failed,
}

/// One container's state, as in `ContainerStatus.state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerState {
    /// Not running yet, or waiting to be restarted.
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, `ErrImageNeverPull`, ...
        reason: String,
        /// Details.
        message: String,
    },
    /// Running since `started_at` (Unix nanoseconds).
    Running {
        /// Start time, Unix nanoseconds.
        started_at: i64,
    },
    /// Exited.
    Terminated {
        /// Exit code.
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, ...
        reason: String,
        /// Start time, Unix nanoseconds.
        started_at: i64,
        /// Exit time, Unix nanoseconds.
        finished_at: i64,
        /// The runtime's message and the container's termination message
        /// ([`crate::termination`]); empty when there is none.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
        /// The runtime's ID of the instance that ended (`terminated.containerID`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        container_id: String,
    },
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    /// Container name.
    pub name: String,
    /// Init or regular.
    pub kind: ContainerKind,
    /// Runtime ID of the latest instance, if one exists.
    pub container_id: Option<String>,
    /// Image as written in the pod.
    pub image: String,
    /// Current state.
    pub state: ContainerState,
    /// Restarts so far.
    pub restart_count: u32,
    /// Running (no readiness probes for static pods here).
    pub ready: bool,
    /// Log file of the latest instance.
    pub log_path: Option<PathBuf>,
    /// The image the latest instance runs, as the runtime names it (`status.imageID`: the
    /// CRI `ContainerStatus.image_ref`, e.g. `sha256:...` or `repo@sha256:...`).
    pub image_id: Option<String>,
    /// How the previous instance ended (`status.lastState`), when one is kept: the kubelet
    /// keeps one dead instance per container.
    pub last_state: Option<ContainerState>,
    /// Whether its startup probe passed (`status.started`); `None` without a prober's
    /// answer, when running means started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// A pod condition (`PodScheduled`, `Initialized`, `ContainersReady`, `Ready`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: bool,
    /// Why not, when it does not.
    pub reason: Option<String>,
    /// Details, e.g. `containers with unready status: [app]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything known about one pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name (`<manifest name>-<node name>` for static pods).
    pub name: String,
    /// UID.
    pub uid: String,
    /// The config source it came from (the manifest file of a static pod).
    pub source: crate::PodSource,
    /// The pod as its source gave it (the static pod with the kubelet's defaults, or the API
    /// server's object), when known: the spec behind `/pods`, the status sent to the API
    /// server and the shutdown priority. `None` in records built by hand (tools, tests).
    #[serde(skip)]
    pub pod: Option<std::sync::Arc<k8s_openapi::api::core::v1::Pod>>,
    /// Runtime ID of the ready sandbox.
    pub sandbox_id: Option<String>,
    /// The pod's IPs from its sandbox, the primary first (`status.podIPs`); empty for a
    /// host-network pod (its IPs are the node's) and before the sandbox exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<String>,
    /// Phase.
    pub phase: PodPhase,
    /// Why the pod is in this phase, when the agent decided it (`status.reason`): for a pod
    /// refused at admission the kubelet's reason, e.g. `SysctlForbidden`.
    pub reason: Option<String>,
    /// Details for humans (`status.message`), e.g.
    /// `Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted`.
    pub message: Option<String>,
    /// Conditions.
    pub conditions: Vec<PodCondition>,
    /// Init containers first, in order, then regular containers. Static pods have no
    /// ephemeral containers.
    pub containers: Vec<ContainerInfo>,
}

impl PodInfo {
    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Default)]
struct Inner {
    pods: HashMap<String, PodInfo>,
    manifest_errors: Vec<String>,
    /// A pass has run with every pod source listed.
    synced: bool,
}

/// A cheap-to-clone, thread-safe view of the agent's pods.
#[derive(Debug, Clone)]
pub struct PodRegistry {
    inner: Arc<RwLock<Inner>>,
    /// Bumped whenever a pod's record changes ([`PodRegistry::subscribe`]).
    version: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for PodRegistry {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            version: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl PodRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pod `namespace/name`, if the agent runs it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<PodInfo> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .pods
            .values()
            .find(|p| p.namespace == namespace && p.name == name)
            .cloned()
    }

    /// The pod with `uid`.
    pub fn get_by_uid(&self, uid: &str) -> Option<PodInfo> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.pods.get(uid).cloned()
    }

    /// Every pod the agent runs (not Succeeded or Failed), sorted by namespace/name.
    pub fn list_active(&self) -> Vec<PodInfo> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut pods: Vec<PodInfo> = inner
            .pods
            .values()
            .filter(|p| !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed))
            .cloned()
            .collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods
    }

    /// Every pod, sorted by namespace/name.
    pub fn list(&self) -> Vec<PodInfo> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut pods: Vec<PodInfo> = inner.pods.values().cloned().collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods
    }

    /// The manifest errors of the latest scan (file and reason each).
    pub fn manifest_errors(&self) -> Vec<String> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.manifest_errors.clone()
    }

    /// Adds a pod, or replaces the one with the same UID. For embedders that track pods
    /// themselves (a virtual kubelet, a test harness) instead of running a
    /// [`PodManager`](crate::PodManager); a running `PodManager` replaces the whole set on its
    /// next pass, so do not mix the two on one registry.
    pub fn upsert(&self, pod: PodInfo) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.pods.insert(pod.uid.clone(), pod);
        drop(inner);
        self.bump();
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees a new value each time a pod's record changes (a pass that changed
    /// a phase, a container state, the set of pods; [`PodRegistry::upsert`],
    /// [`PodRegistry::remove`]): for a status manager that reports changes as they happen
    /// instead of polling.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The number [`PodRegistry::subscribe`] would show now. It moves after every change to
    /// the pods' records (the same changes `subscribe` reports), so an answer built from the
    /// registry after reading version `n` stays current while the version is still `n`.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Removes the pod with `uid`, returning it if it was there (see [`PodRegistry::upsert`]).
    pub fn remove(&self, uid: &str) -> Option<PodInfo> {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let removed = inner.pods.remove(uid);
        drop(inner);
        if removed.is_some() {
            self.bump();
        }
        removed
    }

    pub(crate) fn replace(
        &self,
        pods: HashMap<String, PodInfo>,
        manifest_errors: Vec<String>,
        synced: bool,
    ) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = inner.pods != pods;
        inner.pods = pods;
        inner.manifest_errors = manifest_errors;
        inner.synced |= synced;
        drop(inner);
        if changed {
            self.bump();
        }
    }

    /// Whether a sync pass has run with every pod source listed (the static pod path and,
    /// with an API server, its first pod list): from then on the registry has every pod the
    /// node should run, so what is missing from it can be cleaned up (orphaned mirror pods).
    pub fn is_synced(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .synced
    }
}
