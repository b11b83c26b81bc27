//! The node status loop: registration with back-off, status computed every
//! `nodeStatusUpdateFrequency` (4% jitter, sliding), PATCHed only when changed or after
//! `nodeStatusReportFrequency`, and fast updates every 100 ms at start-up until Ready
//! (at most 120 s).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeStatus, Taint};
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::conditions::{READY, RuntimeHealth};
use crate::error::{ApiErrorKind, Error, Result};
use crate::labels::ensure_os_arch_labels;
use crate::lease::{JITTER_FACTOR, jitter};
use crate::status::{NodeStatusInputs, find_condition, status_changed, status_patch};

/// `nodeStatusUpdateRetry`.
pub const NODE_STATUS_UPDATE_RETRY: u32 = 5;
/// `nodeReadyGracePeriod`: how long the fast start-up updates may run.
pub const NODE_READY_GRACE_PERIOD: Duration = Duration::from_secs(120);
/// The fast start-up update period.
pub const FAST_STATUS_UPDATE_PERIOD: Duration = Duration::from_millis(100);

/// Computes the node's status and its registration object.
pub trait StatusSource: Send + 'static {
    /// The Node to register (`initialNode`).
    fn initial_node(&mut self) -> Result<Node>;
    /// The new status given the one on the server.
    fn status(&mut self, previous: &NodeStatus) -> Result<NodeStatus>;
    /// `declaredFeatures` to publish, when the gate is on.
    fn declared_features(&self) -> Option<Vec<String>> {
        None
    }
}

/// A [`StatusSource`] over shared [`NodeStatusInputs`]: other tasks update runtime health,
/// pressure and the runtime version through the handle; the loop reads them at each tick.
#[derive(Debug, Clone)]
pub struct SharedInputs {
    /// The inputs.
    pub inputs: Arc<Mutex<NodeStatusInputs>>,
    /// Hostname for the hostname label.
    pub hostname: String,
    /// `--node-labels` (validated by the caller).
    pub node_labels: BTreeMap<String, String>,
    /// Registration taints.
    pub taints: Vec<Taint>,
    /// When set, wall-clock stamps follow tokio time from this base (for paused-time tests and
    /// simulators); otherwise the system clock is used.
    clock_base: Option<(Timestamp, Instant)>,
}

impl SharedInputs {
    /// Wraps inputs for sharing.
    pub fn new(inputs: NodeStatusInputs, hostname: impl Into<String>) -> Self {
        SharedInputs {
            inputs: Arc::new(Mutex::new(inputs)),
            hostname: hostname.into(),
            node_labels: BTreeMap::new(),
            taints: Vec::new(),
            clock_base: None,
        }
    }

    /// Stamps heartbeat and transition times from tokio's clock (starting at the current wall
    /// time), so tests with paused time and simulators see coherent timestamps.
    #[must_use]
    pub fn with_tokio_clock(mut self) -> Self {
        self.clock_base = Some((Timestamp::now(), Instant::now()));
        self
    }

    /// The wall-clock time used for stamps.
    pub fn now(&self) -> Timestamp {
        match self.clock_base {
            None => Timestamp::now(),
            Some((wall, mono)) => {
                let elapsed = Instant::now().saturating_duration_since(mono);
                let span = k8s_openapi::jiff::SignedDuration::try_from(elapsed).unwrap_or_default();
                wall.checked_add(span).unwrap_or(wall)
            }
        }
    }

    /// Records that the container runtime answered its `Status` at `now` (the kubelet's
    /// `updateRuntimeUp`): `runtime_not_ready` is its `RuntimeReady` condition when false.
    /// The shutdown errors already recorded stay.
    pub fn runtime_answered(&self, now: std::time::Instant, runtime_not_ready: Option<String>) {
        self.update(|i| {
            let shutdown_errors = std::mem::take(&mut i.runtime_health.shutdown_errors);
            i.runtime_health = RuntimeHealth {
                runtime_not_ready,
                shutdown_errors,
                ..RuntimeHealth::healthy(now)
            };
        });
    }

    /// Runs `f` on the inputs (e.g. to set pressure or runtime health).
    pub fn update<T>(&self, f: impl FnOnce(&mut NodeStatusInputs) -> T) -> T {
        match self.inputs.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

impl StatusSource for SharedInputs {
    fn initial_node(&mut self) -> Result<Node> {
        let (hostname, labels, taints) = (
            self.hostname.clone(),
            self.node_labels.clone(),
            self.taints.clone(),
        );
        let now = self.now();
        self.update(|i| i.initial_node(&hostname, &labels, taints, now, Instant::now().into_std()))
    }

    fn status(&mut self, previous: &NodeStatus) -> Result<NodeStatus> {
        let now = self.now();
        self.update(|i| i.compute(previous, now, Instant::now().into_std()))
    }

    fn declared_features(&self) -> Option<Vec<String>> {
        match self.inputs.lock() {
            Ok(g) => g.declared_features.clone(),
            Err(p) => p.into_inner().declared_features.clone(),
        }
    }
}

/// Labels `updateDefaultLabels` re-syncs on an existing Node.
pub const DEFAULT_LABELS: [&str; 12] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "node.kubernetes.io/windows-build",
];

/// What re-registration changes on an existing Node: each default label the initial Node has
/// is copied over (an empty value deletes it), and the controller-managed attach/detach
/// annotation is set. Returns a metadata merge patch, or `None` when nothing differs.
pub fn reconcile_existing(initial: &Node, existing: &Node) -> Option<serde_json::Value> {
    let empty = BTreeMap::new();
    let want = initial.metadata.labels.as_ref().unwrap_or(&empty);
    let have = existing.metadata.labels.as_ref().unwrap_or(&empty);
    let mut labels = serde_json::Map::new();
    for key in DEFAULT_LABELS {
        let Some(v) = want.get(key) else { continue };
        if v.is_empty() {
            if have.contains_key(key) {
                labels.insert(key.to_owned(), serde_json::Value::Null);
            }
        } else if have.get(key) != Some(v) {
            labels.insert(key.to_owned(), v.clone().into());
        }
    }
    let mut meta = serde_json::Map::new();
    if !labels.is_empty() {
        meta.insert("labels".to_owned(), labels.into());
    }
    let annotation = crate::status::ATTACH_DETACH_ANNOTATION;
    let has_annotation = existing
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(annotation).map(String::as_str) == Some("true"));
    if !has_annotation {
        meta.insert(
            "annotations".to_owned(),
            serde_json::json!({ annotation: "true" }),
        );
    }
    (!meta.is_empty()).then_some(serde_json::Value::Object(meta))
}

/// Status loop settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusConfig {
    /// The node name.
    pub node_name: String,
    /// `nodeStatusUpdateFrequency` (10 s).
    pub update_frequency: Duration,
    /// `nodeStatusReportFrequency` (5 min).
    pub report_frequency: Duration,
    /// `registerNode` (true): create the Node object. When false the Node must exist already
    /// (made by an administrator); its status is still kept up to date.
    pub register_node: bool,
}

impl StatusConfig {
    /// Defaults of the kubelet.
    pub fn new(node_name: impl Into<String>) -> Self {
        StatusConfig {
            node_name: node_name.into(),
            update_frequency: Duration::from_secs(10),
            report_frequency: Duration::from_secs(300),
            register_node: true,
        }
    }

    /// Sets [`update_frequency`](Self::update_frequency).
    #[must_use]
    pub fn with_update_frequency(mut self, update_frequency: Duration) -> Self {
        self.update_frequency = update_frequency;
        self
    }

    /// Sets [`report_frequency`](Self::report_frequency).
    #[must_use]
    pub fn with_report_frequency(mut self, report_frequency: Duration) -> Self {
        self.report_frequency = report_frequency;
        self
    }

    /// Sets [`register_node`](Self::register_node).
    #[must_use]
    pub fn with_register_node(mut self, register_node: bool) -> Self {
        self.register_node = register_node;
        self
    }
}

/// Registers the node and keeps its status up to date.
#[derive(Debug)]
pub struct NodeStatusReporter<B, S> {
    backend: Arc<B>,
    source: S,
    cfg: StatusConfig,
    registered: bool,
    /// Boxed, as the loop's future holds the reporter (twice, as async fn arguments are):
    /// keeping a 1.5 KiB `Node` inline would double it for every hollow node.
    cached: Option<Box<Node>>,
    last_report: Option<Instant>,
    /// Metadata to reconcile on an existing Node (default labels, attach/detach annotation),
    /// sent with the next status patch.
    pending_metadata: Option<serde_json::Value>,
    /// The Node's pod CIDRs as last seen ([`NodeStatusReporter::pod_cidr`]).
    pod_cidr: tokio::sync::watch::Sender<String>,
    /// Asks for an update now ([`NodeStatusReporter::sync_trigger`]).
    sync_now: std::sync::Arc<tokio::sync::Notify>,
}

/// The pod CIDRs of `node` as the kubelet hands them to the runtime (`spec.podCIDRs` joined
/// with `,`, only when `spec.podCIDR` is set; empty otherwise).
pub fn node_pod_cidr(node: &Node) -> String {
    node.spec
        .as_ref()
        .filter(|s| s.pod_cidr.as_deref().is_some_and(|c| !c.is_empty()))
        .map(|s| match s.pod_cidrs.as_deref() {
            Some(cidrs) if !cidrs.is_empty() => cidrs.join(","),
            _ => s.pod_cidr.clone().unwrap_or_default(),
        })
        .unwrap_or_default()
}

impl<B: Backend, S: StatusSource> NodeStatusReporter<B, S> {
    /// A reporter that has not registered yet.
    pub fn new(backend: Arc<B>, source: S, cfg: StatusConfig) -> Self {
        NodeStatusReporter {
            backend,
            source,
            cfg,
            registered: false,
            cached: None,
            last_report: None,
            pending_metadata: None,
            pod_cidr: tokio::sync::watch::channel(String::new()).0,
            sync_now: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// A handle that makes the running loop update the node status at once (the kubelet's
    /// shutdown manager calls `syncNodeStatus` so the Node turns NotReady, "node is shutting
    /// down", before the pods stop, not at the next tick).
    pub fn sync_trigger(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.sync_now.clone()
    }

    /// The Node's pod CIDRs ([`node_pod_cidr`]) each time they are seen to change: the kubelet
    /// hands them to the runtime (CRI `UpdateRuntimeConfig`) from its status loop.
    pub fn pod_cidr(&self) -> tokio::sync::watch::Receiver<String> {
        self.pod_cidr.subscribe()
    }

    fn remember(&mut self, node: Node) {
        let cidr = node_pod_cidr(&node);
        self.pod_cidr.send_if_modified(|current| {
            let changed = !cidr.is_empty() && *current != cidr;
            if changed {
                current.clone_from(&cidr);
            }
            changed
        });
        self.cached = Some(Box::new(node));
    }

    /// The Node as last seen on the server (the kubelet's lister view).
    pub fn cached(&self) -> Option<&Node> {
        self.cached.as_deref()
    }

    /// Whether registration succeeded.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// One registration attempt: POST, or on AlreadyExists GET the existing Node.
    pub async fn try_register(&mut self) -> Result<()> {
        let node = self.source.initial_node()?;
        match self.backend.create_node(&node).await {
            Ok(n) => {
                tracing::info!(node = %self.cfg.node_name, "Successfully registered node");
                self.remember(n);
            }
            Err(e) if e.api_kind() == Some(ApiErrorKind::AlreadyExists) => {
                let existing = self.backend.get_node(&self.cfg.node_name).await?;
                self.pending_metadata = reconcile_existing(&node, &existing);
                self.remember(existing);
            }
            Err(e) => return Err(e),
        }
        self.registered = true;
        Ok(())
    }

    /// `registerWithAPIServer`: sleep 100 ms doubling to 7 s before each attempt, until it works.
    pub async fn register(&mut self) {
        let mut step = Duration::from_millis(100);
        while !self.registered {
            tokio::time::sleep(step).await;
            step = (step * 2).min(Duration::from_secs(7));
            if let Err(e) = self.try_register().await {
                match e.api_kind() {
                    Some(ApiErrorKind::Permanent) => {
                        tracing::error!(error = %e, "Unable to register node with API server (permanent error, will keep trying)")
                    }
                    _ => tracing::warn!(error = %e, "Unable to register node with API server"),
                }
            }
        }
    }

    async fn try_update(
        &mut self,
        attempt: u32,
        force_if: impl Fn(&NodeStatus, &NodeStatus) -> bool,
    ) -> Result<bool> {
        let mut node = match (&self.cached, attempt) {
            (Some(n), 0) => (**n).clone(),
            _ => {
                let n = self.backend.get_node(&self.cfg.node_name).await?;
                self.remember(n.clone());
                n
            }
        };
        let old = node.status.clone().unwrap_or_default();
        let new = self.source.status(&old)?;
        let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
        let labels_changed = ensure_os_arch_labels(labels);
        let changed =
            labels_changed || self.pending_metadata.is_some() || status_changed(&old, &new);
        let now = Instant::now();
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.report_frequency);
        if !(due || changed && force_if(&old, &new)) {
            return Ok(false);
        }
        let mut patch = status_patch(&old, &new, self.source.declared_features().as_deref());
        if labels_changed {
            patch["metadata"] = serde_json::json!({ "labels": node.metadata.labels });
        }
        if let Some(meta) = &self.pending_metadata {
            crate::merge::json_merge(&mut patch["metadata"], meta);
        }
        let updated = self
            .backend
            .patch_node_status(&self.cfg.node_name, &patch)
            .await?;
        self.pending_metadata = None;
        self.remember(updated);
        self.last_report = Some(now);
        Ok(true)
    }

    /// `updateNodeStatus`: up to 5 tries (cached Node first, then GETs). Returns whether a
    /// PATCH was sent.
    pub async fn update_node_status(&mut self) -> Result<bool> {
        for i in 0..NODE_STATUS_UPDATE_RETRY {
            match self.try_update(i, |_, _| true).await {
                Ok(sent) => return Ok(sent),
                Err(e) => {
                    tracing::error!(error = %e, attempt = i, "Error updating node status, will retry");
                    if i > 0 {
                        self.backend.on_repeated_failure();
                    }
                }
            }
        }
        Err(Error::StatusUpdate)
    }

    /// `syncNodeStatus`: register once, then update.
    pub async fn sync_node_status(&mut self) -> Result<bool> {
        if !self.registered && self.cfg.register_node {
            self.register().await;
        }
        self.update_node_status().await
    }

    fn server_ready(&self) -> bool {
        self.cached
            .as_ref()
            .and_then(|n| n.status.as_ref())
            .and_then(|s| find_condition(s, READY))
            .is_some_and(|c| c.status == "True")
    }

    /// One fast start-up step: PATCH at once if the node just became Ready. Returns true when
    /// the fast phase is over (the server already shows Ready).
    pub async fn fast_update_once(&mut self) -> bool {
        // Not before registration; without registration (registerNode false), not before the
        // regular loop has found the Node.
        if !self.registered && (self.cfg.register_node || self.cached.is_none()) {
            return false;
        }
        if self.server_ready() {
            return true;
        }
        let becomes_ready = |old: &NodeStatus, new: &NodeStatus| {
            let _ = old;
            find_condition(new, READY).is_some_and(|c| c.status == "True")
        };
        // Only a Ready transition is sent here; the regular loop handles everything else.
        let saved = self.last_report;
        self.last_report = Some(Instant::now());
        let r = self.try_update(0, becomes_ready).await;
        match r {
            Ok(true) => {
                tracing::info!("Fast updating node status as it just became ready");
            }
            Ok(false) => self.last_report = saved,
            Err(e) => {
                self.last_report = saved;
                tracing::warn!(error = %e, "fast node status update failed, falling back to a full sync");
                if let Err(e) = self.sync_node_status().await {
                    tracing::error!(error = %e, "node status sync failed");
                }
            }
        }
        self.server_ready()
    }

    /// Runs until `shutdown`: the regular loop every `update_frequency` (jittered, sliding) and
    /// fast 100 ms updates until Ready or 120 s.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let start = Instant::now();
        let mut next_full = start;
        let mut fast = true;
        loop {
            let now = Instant::now();
            if now >= next_full {
                // Boxed, as the fast update below: the request futures are large (about
                // 12 KiB) and only live during a sync, so an idle loop holds a pointer.
                tokio::select! {
                    () = &mut shutdown => return,
                    r = Box::pin(self.sync_node_status()) => if let Err(e) = r {
                        tracing::error!(node = %self.cfg.node_name, error = %e, "Unable to update node status");
                    },
                }
                next_full = Instant::now() + jitter(self.cfg.update_frequency, JITTER_FACTOR);
            }
            if fast {
                if Instant::now().saturating_duration_since(start) >= NODE_READY_GRACE_PERIOD {
                    tracing::warn!("Node not becoming ready in time after startup");
                    fast = false;
                } else {
                    tokio::select! {
                        () = &mut shutdown => return,
                        done = Box::pin(self.fast_update_once()) => fast = !done,
                    }
                }
            }
            let wake = if fast {
                (Instant::now() + FAST_STATUS_UPDATE_PERIOD).min(next_full)
            } else {
                next_full
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(wake) => {}
                () = self.sync_now.notified() => next_full = Instant::now(),
            }
        }
    }
}

/// `evictionMonitoringPeriod`: how often the eviction signals are observed.
pub const EVICTION_MONITORING_PERIOD: Duration = Duration::from_secs(10);

/// Observes the eviction signals every `period` and publishes the resulting pressure into
/// `inputs` for the status loop. An observation error is logged and the previous pressure kept.
pub async fn run_pressure_monitor(
    sources: crate::SignalSources,
    mut tracker: crate::PressureTracker,
    inputs: SharedInputs,
    period: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match sources.observe() {
            Ok(obs) => {
                let p = tracker.observe(&obs, Instant::now().into_std());
                inputs.update(|i| i.pressure = p);
            }
            Err(e) => tracing::warn!(error = %e, "observing eviction signals failed"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}
