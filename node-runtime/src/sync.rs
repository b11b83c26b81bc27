//! The pod sync loop: makes the runtime match the static pod manifests. Each pass lists the
//! agent's sandboxes and containers (by CRI labels, so a restarted agent adopts what it created
//! before), tears down pods whose manifest is gone, and for every desired pod ensures a ready
//! sandbox, runs init containers in order, starts containers, and restarts exited ones per the
//! restart policy with the kubelet's crash-loop back-off. Errors are logged and retried on the
//! next pass: the loop never panics and never stops on a bad pod.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use node_seccomp::SeccompResolver;

use crate::client::CriClient;
use crate::cri;
use crate::error::RuntimeError;
use crate::hook::{ContainerHook, ContainerRequest};
use crate::manifest::SourcePod;
use crate::plan::{
    self, Backoff, BackoffPolicy, BackoffState, ContainerAction, ContainerStep, DesiredPod,
    Instance, SandboxAction, StartReason,
};
use crate::registry::{
    ContainerInfo, ContainerState, PodCondition, PodInfo, PodPhase, PodRegistry,
};
use crate::source::StaticPodSource;
use crate::spec::{
    ANNOTATION_GRACE_PERIOD, ContainerKind, LABEL_CONTAINER_NAME, LABEL_MANAGED_BY, LABEL_POD_UID,
    NodePaths, PodIdentity, PodVolumes, container_config, prepare_volumes, sandbox_config,
};

/// How the sync loop behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Node name (static pods are named `<name>-<node>`).
    pub node_name: String,
    /// Root and log directories.
    pub paths: NodePaths,
    /// The node's DNS settings for pods (`clusterDNS`, `clusterDomain`, `resolvConf`);
    /// the default has no cluster DNS and reads `/etc/resolv.conf`.
    pub dns: crate::network::DnsSettings,
    /// `seccompDefault`: RuntimeDefault for containers that set no profile.
    pub seccomp_default: bool,
    /// Time between passes (the kubelet re-syncs on events and every `syncFrequency`).
    pub sync_period: Duration,
    /// First crash-loop back-off (kubelet: 10 s).
    pub backoff_initial: Duration,
    /// Back-off cap (kubelet: 5 min, `crashLoopBackOff.maxContainerRestartPeriod`); a
    /// container that ran for twice this long starts its next crash loop afresh.
    pub backoff_max: Duration,
    /// The node's sysctl allowlist for admission (the safe set for the kernel plus
    /// `allowedUnsafeSysctls`); `None` refuses every pod that sets a sysctl.
    pub sysctl_policy: Option<node_kernel::SysctlPolicy>,
    /// The node's swap facts and `memorySwap.swapBehavior`, detected once at startup: each
    /// container's swap settings are derived from it the kubelet's way. `None` writes nothing
    /// swap-related (as the kubelet without a swap controller).
    pub swap: Option<node_kernel::SwapPolicy>,
    /// The node as admission sees it (allocatable resources, labels, taints), asked for when
    /// a new pod is admitted: with it, a pod that does not fit is refused (`OutOfcpu`,
    /// `OutOfmemory`, `OutOfpods`, ..., [`crate::admission::fits`]) and so is one the node
    /// does not match (`NodeAffinity`, `NodeName`, `NodePorts`, `TaintToleration`,
    /// [`crate::admission::predicates`]); `None` (the default) checks neither.
    pub node_info: Option<NodeInfoFn>,
    /// Where the configMaps, secrets, services and service-account tokens pods reference come
    /// from (`node-cluster`'s `ApiObjects` with an API server); `None` (standalone): a pod that
    /// references one cannot start.
    pub objects: Option<ObjectSourceRef>,
    /// The node's IPs, primary first: `status.hostIP(s)` in containers' environment.
    pub host_ips: Vec<String>,
}

/// A shared [`crate::objects::ObjectSource`].
#[derive(Clone)]
pub struct ObjectSourceRef(pub std::sync::Arc<dyn crate::objects::ObjectSource>);

impl std::fmt::Debug for ObjectSourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectSourceRef")
    }
}

/// Where admission reads the node from (its resources change with device plugins and
/// reservations): `None` when not known yet (no check then).
#[derive(Clone)]
pub struct NodeInfoFn(
    pub std::sync::Arc<dyn Fn() -> Option<crate::admission::AdmissionNode> + Send + Sync>,
);

impl NodeInfoFn {
    /// Wraps `f`.
    pub fn new(
        f: impl Fn() -> Option<crate::admission::AdmissionNode> + Send + Sync + 'static,
    ) -> Self {
        Self(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for NodeInfoFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeInfoFn")
    }
}

impl SyncOptions {
    /// The kubelet's timings for `node_name` with the given directories.
    pub fn new(node_name: impl Into<String>, paths: NodePaths) -> Self {
        Self {
            node_name: node_name.into(),
            paths,
            dns: crate::network::DnsSettings {
                resolv_conf: Some("/etc/resolv.conf".into()),
                ..Default::default()
            },
            seccomp_default: false,
            sync_period: Duration::from_secs(1),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            // The safe sysctls every kernel has; callers that know the kernel and the
            // configured `allowedUnsafeSysctls` replace it.
            sysctl_policy: node_kernel::SysctlPolicy::new(None, &[]).ok(),
            swap: None,
            node_info: None,
            objects: None,
            host_ips: Vec::new(),
        }
    }

    /// Sets [`node_info`](Self::node_info).
    #[must_use]
    pub fn with_node_info(mut self, node_info: Option<NodeInfoFn>) -> Self {
        self.node_info = node_info;
        self
    }

    /// Sets [`seccomp_default`](Self::seccomp_default).
    #[must_use]
    pub fn with_seccomp_default(mut self, seccomp_default: bool) -> Self {
        self.seccomp_default = seccomp_default;
        self
    }

    /// Sets [`sync_period`](Self::sync_period).
    #[must_use]
    pub fn with_sync_period(mut self, sync_period: Duration) -> Self {
        self.sync_period = sync_period;
        self
    }

    /// Sets [`backoff_initial`](Self::backoff_initial).
    #[must_use]
    pub fn with_backoff_initial(mut self, backoff_initial: Duration) -> Self {
        self.backoff_initial = backoff_initial;
        self
    }

    /// Sets [`backoff_max`](Self::backoff_max).
    #[must_use]
    pub fn with_backoff_max(mut self, backoff_max: Duration) -> Self {
        self.backoff_max = backoff_max;
        self
    }

    /// Sets [`sysctl_policy`](Self::sysctl_policy).
    #[must_use]
    pub fn with_sysctl_policy(mut self, sysctl_policy: Option<node_kernel::SysctlPolicy>) -> Self {
        self.sysctl_policy = sysctl_policy;
        self
    }

    /// Sets [`swap`](Self::swap).
    #[must_use]
    pub fn with_swap(mut self, swap: Option<node_kernel::SwapPolicy>) -> Self {
        self.swap = swap;
        self
    }
}

impl SyncOptions {
    /// The crash-loop back-off timings of these options.
    pub fn backoff_policy(&self) -> BackoffPolicy {
        BackoffPolicy {
            initial: self.backoff_initial,
            max: self.backoff_max,
        }
    }
}

/// Something that happened to a pod or one of its containers, with the kubelet's event reason
/// and message (`pkg/kubelet/events/event.go`; the texts of `images/image_manager.go` and
/// `kuberuntime/kuberuntime_container.go`), for an event recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's UID.
    pub uid: String,
    /// The container's reference inside the pod (`spec.containers{app}`,
    /// `spec.initContainers{init}`); `None` for the pod itself.
    pub field_path: Option<String>,
    /// A `Warning` (else `Normal`).
    pub warning: bool,
    /// `Pulling`, `Pulled`, `Created`, `Started`, `Killing`, `BackOff`, `Failed`, ...
    pub reason: String,
    /// What happened, for humans.
    pub message: String,
}

fn field_path(kind: ContainerKind, name: &str) -> String {
    match kind {
        ContainerKind::Init => format!("spec.initContainers{{{name}}}"),
        _ => format!("spec.containers{{{name}}}"),
    }
}

/// What the probe workers need to know of a running pod with probes; `None` for pods
/// without probes or without a spec.
fn probe_target(info: &PodInfo) -> Option<crate::prober::ProbeTarget> {
    let pod = info.pod.clone()?;
    let spec = pod.spec.as_ref()?;
    let has_probes = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.startup_probe.is_some() || c.readiness_probe.is_some() || c.liveness_probe.is_some()
        });
    if !has_probes {
        return None;
    }
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let sidecar = |name: &str| {
        spec.init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };
    let containers = info
        .containers
        .iter()
        .map(|c| {
            let running_since = match c.state {
                ContainerState::Running { started_at } => u64::try_from(started_at)
                    .ok()
                    .map(|n| std::time::UNIX_EPOCH + Duration::from_nanos(n)),
                _ => None,
            };
            crate::prober::ProbedContainer {
                name: c.name.clone(),
                container_id: c.container_id.clone(),
                running: running_since.is_some(),
                running_since,
                may_restart: policy != "Never" || sidecar(&c.name),
            }
        })
        .collect();
    Some(crate::prober::ProbeTarget {
        uid: info.uid.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        pod_ip: info.pod_ips.first().cloned(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        terminal: matches!(info.phase, PodPhase::Succeeded | PodPhase::Failed),
        containers,
        pod,
    })
}

/// Sets each running container's `started` and `ready` from the probes (the kubelet's
/// `UpdatePodStatus`) and recomputes the pod's conditions.
fn apply_probe_results(prober: &crate::prober::ProbeManager, info: &mut PodInfo) {
    let Some(pod) = info.pod.clone() else {
        return;
    };
    if info.sandbox_id.is_none() {
        return;
    }
    let mut changed = false;
    for c in &mut info.containers {
        let (ContainerState::Running { .. }, Some(id)) = (&c.state, c.container_id.as_deref())
        else {
            continue;
        };
        let started = prober.started(&info.uid, &c.name, id);
        let ready = started && prober.ready(&info.uid, &c.name, id);
        if c.started != Some(started) || c.ready != ready {
            c.started = Some(started);
            c.ready = ready;
            changed = true;
        }
    }
    if changed {
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let spec = pod.spec.clone().unwrap_or_default();
        let (phase, conditions) =
            plan::pod_status_with_sidecars(&info.containers, policy, &plan::sidecars(&spec));
        info.phase = phase;
        info.conditions = conditions;
    }
}

fn spec_err_for(id: &PodIdentity, reason: String) -> RuntimeError {
    RuntimeError::PodSpec {
        pod: id.full_name(),
        reason,
    }
}

fn container_event(
    id: &PodIdentity,
    kind: ContainerKind,
    container: &str,
    warning: bool,
    reason: &str,
    message: String,
) -> PodEvent {
    PodEvent {
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        uid: id.uid.clone(),
        field_path: Some(field_path(kind, container)),
        warning,
        reason: reason.to_owned(),
        message,
    }
}

/// One pass's findings, for tests and logs.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Pods whose sandbox was created this pass.
    pub sandboxes_created: Vec<String>,
    /// Containers started this pass (`namespace/pod/container`).
    pub containers_started: Vec<String>,
    /// Pods torn down this pass.
    pub pods_removed: Vec<String>,
    /// Errors (each also logged).
    pub errors: Vec<String>,
    /// The static pod path could not be listed this pass (an error other than "does not
    /// exist"); the pods of the last good listing were kept.
    pub listing_error: Option<String>,
    /// Pods refused at admission (`namespace/name: reason`), never started.
    pub rejected: Vec<String>,
    /// What happened to pods and containers this pass, as the kubelet reports it in events
    /// (`Pulling`, `Pulled`, `Created`, `Started`, `Killing`, `BackOff`, `Failed`, ...).
    pub events: Vec<PodEvent>,
    /// Nothing is left to do until something changes: no errors (rejected manifests aside:
    /// they wait for their file to change), nothing started or removed this pass, and no
    /// container waiting (to be created, or restarted after its crash-loop back-off). A loop
    /// that follows the runtime's events ([`crate::RuntimeWatch`]) can wait for the next one.
    pub settled: bool,
}

/// Runs static pods on a CRI runtime.
#[derive(Debug)]
pub struct PodManager {
    client: CriClient,
    /// Shared with the blocking pool, where scans run (they read files).
    source: std::sync::Arc<std::sync::Mutex<StaticPodSource>>,
    options: SyncOptions,
    resolver: SeccompResolver,
    registry: PodRegistry,
    backoff: BackoffState,
    /// Cached `ContainerStatus` by container ID, refreshed when `ListContainers` reports a
    /// different state (an idle pass then costs two list calls, not one call per container).
    statuses: HashMap<String, cri::ContainerStatus>,
    /// The IPs of each sandbox (`PodSandboxStatus.network`), asked once per sandbox: they do
    /// not change while it lives.
    sandbox_ips: HashMap<String, Vec<String>>,
    last_errors: Vec<String>,
    hook: Option<std::sync::Arc<dyn ContainerHook>>,
    /// The pods of the last manifest scan, reused by passes that do not rescan.
    last_scan: Option<HashMap<String, crate::manifest::SourcePod>>,
    /// The static pod path has been listed successfully at least once: until then the agent
    /// does not know which pods should run, so it removes none (the kubelet waits for every
    /// source to be seen before it cleans up pods).
    source_seen: bool,
    /// The last listing error, logged once until it changes.
    last_listing_error: Option<String>,
    /// Pods from the API server, when the agent has one ([`PodManager::with_api_pods`]).
    api: Option<crate::ApiPods>,
    /// The API pods that could not run in the last pass, logged once each.
    last_api_errors: Vec<String>,
    /// Admission decisions by pod UID, kept while the pod is wanted.
    decided: HashMap<String, Result<(), crate::admission::Rejection>>,
    /// The final records of pods stopped for their deletion, until the API server deletes them.
    finished: HashMap<String, PodInfo>,
    /// `Killing` events of the teardowns of the running pass (they run behind `&self`).
    kill_events: std::sync::Mutex<Vec<PodEvent>>,
    /// The kubelet's probe workers (startup, readiness, liveness) for the running pods.
    prober: crate::prober::ProbeManager,
    /// Containers stopped for a failed liveness or startup probe, until the runtime forgets
    /// them (each is stopped once).
    probe_killed: std::collections::HashSet<String>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn managed_selector(node_name: &str) -> HashMap<String, String> {
    HashMap::from([(LABEL_MANAGED_BY.to_owned(), node_name.to_owned())])
}

impl PodManager {
    /// A manager for the pods in `source`, run through `client`.
    pub fn new(client: CriClient, source: StaticPodSource, options: SyncOptions) -> Self {
        let resolver = SeccompResolver::new(&options.paths.root_dir, options.seccomp_default);
        Self {
            prober: crate::prober::ProbeManager::new(client.clone()),
            client,
            source: std::sync::Arc::new(std::sync::Mutex::new(source)),
            options,
            resolver,
            registry: PodRegistry::new(),
            backoff: HashMap::new(),
            statuses: HashMap::new(),
            sandbox_ips: HashMap::new(),
            last_errors: Vec::new(),
            hook: None,
            last_scan: None,
            source_seen: false,
            last_listing_error: None,
            api: None,
            last_api_errors: Vec::new(),
            decided: HashMap::new(),
            finished: HashMap::new(),
            kill_events: std::sync::Mutex::new(Vec::new()),
            probe_killed: std::collections::HashSet::new(),
        }
    }

    /// Also runs the pods the API server assigned to this node, merged with the static pods
    /// as the kubelet merges its config sources: a static pod keeps its UID and its name
    /// against an API pod claiming either. Until `api` has been listed once, no pod unknown to
    /// the sources is removed. A pod the API server is deleting (`deletionTimestamp`) is
    /// stopped with its `deletionGracePeriodSeconds` and then reported through
    /// [`crate::ApiPods::terminated`] for the final DELETE.
    #[must_use]
    pub fn with_api_pods(mut self, api: crate::ApiPods) -> Self {
        self.api = Some(api);
        self
    }

    /// Adds a hook called before each `CreateContainer` and after each pod removal (the device
    /// manager uses it to hand allocated devices to containers).
    pub fn with_container_hook(mut self, hook: std::sync::Arc<dyn ContainerHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The shared registry this manager keeps up to date.
    pub fn registry(&self) -> PodRegistry {
        self.registry.clone()
    }

    /// Runs passes every `sync_period` until `shutdown` resolves. Pods keep running when the
    /// loop stops (as when a kubelet restarts); use [`PodManager::remove_all`] to tear down.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Self {
        tokio::pin!(shutdown);
        loop {
            let started = Instant::now();
            let report = self.sync_once().await;
            for e in &report.errors {
                tracing::warn!(error = %e, "pod sync");
            }
            let wait = self.options.sync_period.saturating_sub(started.elapsed());
            tokio::select! {
                () = &mut shutdown => return self,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass. Never fails as a whole: each problem lands in the report.
    pub async fn sync_once(&mut self) -> SyncReport {
        self.sync(true).await
    }

    /// One pass; with `rescan_manifests` false the manifests of the previous scan are used
    /// again (for a caller that watches the static pod path and knows nothing changed: each
    /// rescan stats every manifest file). Manifest errors are reported by rescanning passes.
    pub async fn sync(&mut self, rescan_manifests: bool) -> SyncReport {
        let mut report = SyncReport::default();
        let (sandboxes, containers) = match self.list_runtime().await {
            Ok(x) => x,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        // Every container the runtime has now: cached statuses of others are dropped.
        let listed: std::collections::HashSet<String> =
            containers.iter().map(|c| c.id.clone()).collect();
        let listed_sandboxes: std::collections::HashSet<&str> =
            sandboxes.iter().map(|s| s.id.as_str()).collect();
        self.sandbox_ips
            .retain(|id, _| listed_sandboxes.contains(id.as_str()));
        if !self.source_seen {
            // Before the first listing (an agent restart): if several manifests claim the UID
            // of a running pod, the one that made it keeps it.
            lock(&self.source).prefer_owners(sandboxes.iter().filter_map(|s| {
                let uid = s.labels.get(LABEL_POD_UID)?;
                let m = s.metadata.as_ref()?;
                Some((uid.clone(), format!("{}/{}", m.namespace, m.name)))
            }));
        }
        let previous = self.last_scan.take();
        let pods = match previous {
            Some(pods) if !rescan_manifests => pods,
            previous => {
                let source = self.source.clone();
                let scan = crate::blocking::run("reading static pod manifests", move || {
                    Ok(lock(&source).scan())
                })
                .await
                .unwrap_or_else(|e| crate::source::Scan {
                    listing_error: Some(e),
                    ..crate::source::Scan::default()
                });
                if let Some(e) = scan.listing_error {
                    // Not "does not exist": keep the pods of the last good listing.
                    let e = e.with_cause();
                    if self.last_listing_error.as_ref() != Some(&e) {
                        tracing::error!(error = %e, "cannot list static pods; keeping the pods of the last good listing");
                    }
                    self.last_listing_error = Some(e.clone());
                    report.listing_error = Some(e);
                    previous.unwrap_or_default()
                } else {
                    if self.last_listing_error.take().is_some() {
                        tracing::info!("static pod path listed again");
                    }
                    self.source_seen = true;
                    let errors: Vec<String> = scan.errors.iter().map(ToString::to_string).collect();
                    for e in errors.iter().filter(|e| !self.last_errors.contains(e)) {
                        tracing::error!(error = %e, "static pod manifest rejected");
                    }
                    self.last_errors.clone_from(&errors);
                    report.errors.extend(errors);
                    scan.pods
                }
            }
        };
        let mut manifest_errors = self.last_errors.clone();

        // The API server's pods, merged after the static pods (`pkg/kubelet/config/config.go`
        // merges per source; names and UIDs are unique across them here).
        let api_synced = self.api.as_ref().is_none_or(crate::ApiPods::is_synced);
        let all_seen = self.source_seen && api_synced;
        let mut desired = pods.clone();
        let mut terminating: Vec<SourcePod> = Vec::new();
        if let Some(api) = &self.api {
            let mut errors = api.errors();
            let static_names: std::collections::HashSet<String> =
                pods.values().map(SourcePod::full_name).collect();
            let mut api_pods: Vec<SourcePod> = api.pods().into_values().collect();
            api_pods.sort_by_key(SourcePod::full_name);
            // What the runtime has of each pod, by UID.
            let in_runtime: std::collections::HashSet<&str> = sandboxes
                .iter()
                .map(|s| &s.labels)
                .chain(containers.iter().map(|c| &c.labels))
                .filter_map(|l| l.get(LABEL_POD_UID).map(String::as_str))
                .collect();
            for pod in api_pods {
                let finished_on_server = matches!(
                    pod.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                if finished_on_server
                    && crate::deletion_grace(&pod.pod).is_none()
                    && !in_runtime.contains(pod.uid.as_str())
                {
                    // Finished (it ran to completion, was refused, or was stopped for a node
                    // shutdown) and nothing of it is left here: never run again, as the
                    // kubelet's pod workers skip terminal pods after a restart.
                    continue;
                }
                if desired.contains_key(&pod.uid) || static_names.contains(&pod.full_name()) {
                    errors.push(format!(
                        "{}: UID {} or name taken by a static pod",
                        pod.full_name(),
                        pod.uid
                    ));
                } else if crate::deletion_grace(&pod.pod).is_some() {
                    terminating.push(pod);
                } else {
                    desired.insert(pod.uid.clone(), pod);
                }
            }
            for e in errors.iter().filter(|e| !self.last_api_errors.contains(e)) {
                tracing::error!(error = %e, "pod from the API server not run");
            }
            self.last_api_errors.clone_from(&errors);
            report.errors.extend(errors.iter().cloned());
            manifest_errors.extend(errors);
        }
        let manifest_error_count = report.errors.len();

        // Admission: a refused pod never gets a sandbox; whatever the runtime still has of it
        // (an agent restarted with a stricter allowlist) is removed like an orphan. Each pod is
        // decided once, in creation order (the kubelet's HandlePodAdditions), the resource fit
        // against the pods admitted before it.
        let decisions = self.admit(&desired);
        let mut rejected: HashMap<String, PodInfo> = HashMap::new();
        let mut admitted: HashMap<String, SourcePod> = HashMap::new();
        for (uid, pod) in &desired {
            match decisions.get(uid).cloned().unwrap_or(Ok(())) {
                Ok(()) => {
                    admitted.insert(uid.clone(), pod.clone());
                }
                Err(r) => {
                    report.rejected.push(format!(
                        "{}: {}: {}",
                        pod.full_name(),
                        r.reason,
                        r.message
                    ));
                    rejected.insert(uid.clone(), rejected_info(pod, &r));
                }
            }
        }
        for (uid, info) in &rejected {
            let known = self
                .registry
                .get_by_uid(uid)
                .is_some_and(|p| p.reason == info.reason);
            if !known {
                tracing::warn!(pod = %format!("{}/{}", info.namespace, info.name), reason = info.reason.as_deref().unwrap_or_default(), message = info.message.as_deref().unwrap_or_default(), "pod rejected at admission");
                // `rejectPod`: a Warning event with the reason and the bare message.
                let message = info.message.as_deref().unwrap_or_default();
                report.events.push(PodEvent {
                    namespace: info.namespace.clone(),
                    name: info.name.clone(),
                    uid: info.uid.clone(),
                    field_path: None,
                    warning: true,
                    reason: info.reason.clone().unwrap_or_default(),
                    message: message
                        .strip_prefix("Pod was rejected: ")
                        .unwrap_or(message)
                        .to_owned(),
                });
            }
        }
        let scan = crate::source::Scan {
            pods: admitted,
            errors: Vec::new(),
            listing_error: None,
        };

        let mut sandboxes_by_uid: HashMap<String, Vec<cri::PodSandbox>> = HashMap::new();
        for s in sandboxes {
            let uid = s.labels.get(LABEL_POD_UID).cloned().unwrap_or_default();
            sandboxes_by_uid.entry(uid).or_default().push(s);
        }
        let mut containers_by_uid: HashMap<String, Vec<cri::Container>> = HashMap::new();
        for c in containers {
            let uid = c.labels.get(LABEL_POD_UID).cloned().unwrap_or_default();
            containers_by_uid.entry(uid).or_default().push(c);
        }

        let runtime_uids: std::collections::HashSet<String> = sandboxes_by_uid
            .keys()
            .chain(containers_by_uid.keys())
            .cloned()
            .collect();
        // Pods the API server is deleting: stopped with their deletion grace period, then
        // reported for the final DELETE (the kubelet's SyncTerminatingPod, then
        // SyncTerminatedPod and the status manager's delete). Their final record (phase and
        // how each container ended) stays in the registry until the API server forgets them.
        let mut finished: Vec<String> = Vec::new();
        for pod in terminating {
            let sandboxes = sandboxes_by_uid.remove(&pod.uid).unwrap_or_default();
            let containers = containers_by_uid.remove(&pod.uid).unwrap_or_default();
            let label = pod.full_name();
            if !sandboxes.is_empty() || !containers.is_empty() {
                // Stopped, then read (how each container ended is the pod's final status),
                // then removed.
                let grace = crate::deletion_grace(&pod.pod);
                let grace = self.pre_stop_hooks(&pod, &containers, grace).await;
                self.stop_for_deletion(&pod.uid, &containers, grace).await;
                let mut ended = Vec::new();
                for c in &containers {
                    if let Ok(status) = self.client.container_status(&c.id).await {
                        ended.push((c.clone(), status));
                    }
                }
                if let Err(e) = self.remove_stopped(&sandboxes, &containers).await {
                    report.errors.push(format!("stopping {label}: {e}"));
                    continue;
                }
                let record = finished_info(&pod, &ended, &self.options);
                // In the registry now, before the pod is reported finished below: the status
                // manager sends its terminal status from this record (a pass that goes on
                // stopping other pods would otherwise leave it without one).
                self.registry.upsert(record.clone());
                self.finished.insert(pod.uid.clone(), record);
                tracing::info!(pod = %label, "stopped pod being deleted");
                report.pods_removed.push(label);
            }
            finished.push(pod.uid.clone());
            self.backoff.retain(|(u, _), _| *u != pod.uid);
            self.pod_removed(&pod.uid).await;
            if let Err(e) = self.remove_pod_dir(&pod.uid).await {
                report.errors.push(e.with_cause());
            }
            if let Some(api) = &self.api {
                api.mark_terminated(&pod.uid);
            }
        }

        // Pods whose manifest is gone (or changed: a new UID) are stopped and removed, once
        // every source has been listed: before that every pod would look like an orphan.
        let orphans: Vec<String> = if all_seen {
            sandboxes_by_uid
                .keys()
                .chain(containers_by_uid.keys())
                .filter(|uid| !scan.pods.contains_key(*uid))
                .cloned()
                .collect::<std::collections::BTreeSet<String>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        for uid in orphans {
            let sandboxes = sandboxes_by_uid.remove(&uid).unwrap_or_default();
            let containers = containers_by_uid.remove(&uid).unwrap_or_default();
            let meta = sandboxes.first().and_then(|s| s.metadata.clone());
            let label = meta
                .as_ref()
                .map_or_else(|| uid.clone(), |m| format!("{}/{}", m.namespace, m.name));
            match self.teardown(&sandboxes, &containers).await {
                Ok(()) => {
                    self.backoff.retain(|(u, _), _| *u != uid);
                    self.pod_removed(&uid).await;
                    if let Err(e) = self.remove_pod_dir(&uid).await {
                        report.errors.push(e.with_cause());
                    }

                    tracing::info!(pod = %label, "removed pod whose manifest is gone");
                    report.pods_removed.push(label);
                }
                Err(e) => report.errors.push(format!("tearing down {label}: {e}")),
            }
        }

        // Pod directories of pods that are neither wanted nor in the runtime (a pod whose
        // volumes never came up, a teardown interrupted by a restart) are removed on manifest
        // rescans, as the kubelet's cleanupOrphanedPodDirs does.
        if all_seen && rescan_manifests {
            let paths = self.options.paths.clone();
            match crate::blocking::run("listing pod directories", move || paths.pod_dir_uids())
                .await
            {
                Ok(uids) => {
                    for uid in uids {
                        // Orphans torn down above had their directory removed already; one
                        // whose teardown failed still has containers and keeps it.
                        let active = scan.pods.contains_key(&uid) || runtime_uids.contains(&uid);
                        if !active && let Err(e) = self.remove_pod_dir(&uid).await {
                            report.errors.push(e.with_cause());
                        }
                    }
                }
                Err(e) => report.errors.push(e.with_cause()),
            }
        }

        let mut infos = HashMap::new();
        for (uid, pod) in &scan.pods {
            let sandboxes = sandboxes_by_uid.remove(uid).unwrap_or_default();
            let containers = containers_by_uid.remove(uid).unwrap_or_default();
            let info = match self.sync_pod(pod, sandboxes, containers, &mut report).await {
                Ok(info) => info,
                Err(e) => {
                    report.errors.push(e.with_cause());
                    pending_info(pod, e.waiting_reason(), &e.waiting_message())
                }
            };
            infos.insert(uid.clone(), info);
        }
        // Statuses of containers still there (the latest instances, and the previous ones
        // whose end is `lastState`) stay cached.
        self.statuses.retain(|id, _| listed.contains(id));
        self.probe_killed.retain(|id| listed.contains(id));
        // Probes: workers follow the pods' current containers; their results decide
        // `started` and `ready` (and so the Ready conditions).
        self.prober
            .update(infos.values().filter_map(probe_target).collect());
        for info in infos.values_mut() {
            apply_probe_results(&self.prober, info);
        }
        report.events.extend(self.prober.take_events());
        report.settled = report.errors.len() == manifest_error_count
            && report.sandboxes_created.is_empty()
            && report.containers_started.is_empty()
            && report.pods_removed.is_empty()
            && infos.values().all(|p| {
                p.containers
                    .iter()
                    .all(|c| !matches!(c.state, ContainerState::Waiting { .. }))
            });
        infos.extend(rejected);
        self.finished.retain(|uid, _| finished.contains(uid));
        for (uid, info) in &self.finished {
            infos.insert(uid.clone(), info.clone());
        }
        self.registry.replace(infos, manifest_errors, all_seen);
        report
            .events
            .extend(std::mem::take(&mut *lock(&self.kill_events)));
        self.last_scan = Some(pods);
        report
    }

    /// Admission decisions for `desired`, by UID: sticky for pods already decided, made now for
    /// new ones in creation order (then name), each new pod's resources checked against the
    /// admitted active pods' ([`crate::admission::fits`], with [`SyncOptions::allocatable`];
    /// critical pods skip that check, as the kubelet would preempt for them, which this agent
    /// does not).
    fn admit(
        &mut self,
        desired: &HashMap<String, SourcePod>,
    ) -> HashMap<String, Result<(), crate::admission::Rejection>> {
        self.decided.retain(|uid, _| desired.contains_key(uid));
        let node = self.options.node_info.as_ref().and_then(|f| (f.0)());
        let mut new: Vec<&SourcePod> = desired
            .values()
            .filter(|p| !self.decided.contains_key(&p.uid))
            .collect();
        new.sort_by(|a, b| {
            let created = |p: &SourcePod| p.pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| a.full_name().cmp(&b.full_name()))
        });
        for pod in new {
            // The eviction manager's handler first, then sysctls (the kubelet's order).
            let qos = crate::spec::pod_qos(
                &pod.pod,
                &PodIdentity {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    uid: pod.uid.clone(),
                    node_name: self.options.node_name.clone(),
                },
            )
            .unwrap_or(node_kernel::QosClass::BestEffort);
            let mut decision = node.as_ref().map_or(Ok(()), |n| {
                crate::admission::evicted(&pod.pod, &n.pressure, qos)
            });
            if decision.is_ok() {
                decision = crate::admission::admit(&pod.pod, self.options.sysctl_policy.as_ref());
            }
            if decision.is_ok()
                && let Some(node) = &node
            {
                // What the admitted active pods use.
                let mut used = std::collections::BTreeMap::new();
                let mut used_pods = 0i128;
                let mut ports = Vec::new();
                for (uid, d) in &self.decided {
                    let active = self
                        .registry
                        .get_by_uid(uid)
                        .is_none_or(|p| !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed));
                    if d.is_ok()
                        && active
                        && let Some(other) = desired.get(uid)
                    {
                        for (k, v) in crate::admission::pod_requests(&other.pod) {
                            *used.entry(k).or_insert(0) += v;
                        }
                        used_pods += 1;
                        ports.extend(crate::admission::host_ports(&other.pod));
                    }
                }
                decision = crate::admission::os_checks(&pod.pod, node);
                // Critical pods skip the resource fit: the kubelet would preempt for them.
                if decision.is_ok() && !crate::spec::is_critical_pod(&pod.pod) {
                    decision =
                        crate::admission::fits(&pod.pod, &used, used_pods, &node.allocatable);
                }
                if decision.is_ok() {
                    decision = crate::admission::predicates(
                        &pod.pod,
                        node,
                        pod.source.is_static(),
                        &ports,
                    );
                }
            }
            self.decided.insert(pod.uid.clone(), decision);
        }
        self.decided.clone()
    }

    /// The API server's pods this manager runs, if any ([`PodManager::with_api_pods`]).
    #[must_use]
    pub fn api_pods(&self) -> Option<crate::ApiPods> {
        self.api.clone()
    }

    /// The probe workers: the sync loop wakes when a result changes
    /// ([`crate::prober::ProbeManager::changed`]).
    pub fn prober(&self) -> crate::prober::ProbeManager {
        self.prober.clone()
    }

    /// Stops and removes every pod this agent manages (used on shutdown by tests and tools).
    pub async fn remove_all(&mut self) -> Result<(), RuntimeError> {
        let (sandboxes, containers) = self.list_runtime().await?;
        self.teardown(&sandboxes, &containers).await?;
        let uids: std::collections::BTreeSet<&String> = sandboxes
            .iter()
            .filter_map(|s| s.labels.get(LABEL_POD_UID))
            .collect();
        for uid in uids {
            self.pod_removed(uid).await;
            if let Err(e) = self.remove_pod_dir(uid).await {
                tracing::warn!(error = %e, "removing pod directory");
            }
        }
        self.registry.replace(HashMap::new(), Vec::new(), false);
        Ok(())
    }

    /// Stops and removes the pods whose UID is in `uids`, each running container with the
    /// smaller of its own grace period and `max_grace` (graceful node shutdown stops pods in
    /// priority groups, each group with its share of `shutdownGracePeriod`). The pods leave
    /// the registry; the container hook hears `pod_removed` for each.
    pub async fn stop_pods(
        &mut self,
        uids: &std::collections::BTreeSet<String>,
        max_grace: Duration,
    ) -> Result<(), RuntimeError> {
        let (sandboxes, containers) = self.list_runtime().await?;
        let selected = |labels: &HashMap<String, String>| {
            labels
                .get(LABEL_POD_UID)
                .is_some_and(|uid| uids.contains(uid))
        };
        let sandboxes: Vec<cri::PodSandbox> = sandboxes
            .into_iter()
            .filter(|s| selected(&s.labels))
            .collect();
        let containers: Vec<cri::Container> = containers
            .into_iter()
            .filter(|c| selected(&c.labels))
            .collect();
        // Stopped, then read (how each container ended goes into the pod's final status),
        // then removed.
        self.stop_containers(&containers, Some(max_grace), false)
            .await;
        let mut ended: HashMap<String, Vec<(cri::Container, cri::ContainerStatus)>> =
            HashMap::new();
        for c in &containers {
            if let (Some(uid), Ok(status)) = (
                c.labels.get(LABEL_POD_UID),
                self.client.container_status(&c.id).await,
            ) {
                ended
                    .entry(uid.clone())
                    .or_default()
                    .push((c.clone(), status));
            }
        }
        self.remove_stopped(&sandboxes, &containers).await?;
        for uid in uids {
            // The kubelet's shutdown manager marks each pod it kills Failed, `Terminated`, with
            // a DisruptionTarget condition; the record stays so that status is sent.
            if let Some(PodInfo {
                namespace,
                name,
                source,
                pod: Some(pod),
                ..
            }) = self.registry.remove(uid)
            {
                let source_pod = SourcePod {
                    source,
                    pod,
                    namespace,
                    name,
                    uid: uid.clone(),
                };
                let ended = ended.remove(uid).unwrap_or_default();
                self.registry
                    .upsert(shutdown_info(&source_pod, &ended, &self.options));
            }
            self.pod_removed(uid).await;
        }
        Ok(())
    }

    async fn list_runtime(
        &self,
    ) -> Result<(Vec<cri::PodSandbox>, Vec<cri::Container>), RuntimeError> {
        let sandboxes = self
            .client
            .list_pod_sandboxes(managed_selector(&self.options.node_name))
            .await?;
        let containers = self
            .client
            .list_containers(None, managed_selector(&self.options.node_name))
            .await?;
        Ok((sandboxes, containers))
    }

    /// Graceful stop: every container with its grace period (in parallel), then the sandboxes.
    async fn teardown(
        &self,
        sandboxes: &[cri::PodSandbox],
        containers: &[cri::Container],
    ) -> Result<(), RuntimeError> {
        self.teardown_capped(sandboxes, containers, None).await
    }

    /// [`Self::teardown`] with each container's grace period capped at `max_grace`.
    async fn teardown_capped(
        &self,
        sandboxes: &[cri::PodSandbox],
        containers: &[cri::Container],
        max_grace: Option<Duration>,
    ) -> Result<(), RuntimeError> {
        self.stop_containers(containers, max_grace, false).await;
        self.remove_stopped(sandboxes, containers).await
    }

    /// Runs the preStop hooks of `pod`'s running `containers` in parallel, for at most `grace`
    /// ([`crate::lifecycle::run_pre_stop`]; a failure is a `FailedPreStopHook` event), and
    /// returns the grace period left for stopping them: `grace` minus the time the hooks took,
    /// at least [`crate::lifecycle::MIN_GRACE`] (as `killContainer`, per pod here rather than
    /// per container).
    async fn pre_stop_hooks(
        &self,
        pod: &SourcePod,
        containers: &[cri::Container],
        grace: Option<Duration>,
    ) -> Option<Duration> {
        let grace = grace?;
        if grace.is_zero() {
            return Some(grace);
        }
        let spec = pod.pod.spec.clone().unwrap_or_default();
        let started = std::time::Instant::now();
        let mut hooks = tokio::task::JoinSet::new();
        for c in containers
            .iter()
            .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
        {
            let name = c
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            let found = spec
                .init_containers
                .iter()
                .flatten()
                .map(|s| (ContainerKind::Init, s))
                .chain(spec.containers.iter().map(|s| (ContainerKind::Regular, s)))
                .find(|(_, s)| s.name == name);
            let Some((kind, container)) = found else {
                continue;
            };
            if container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
                .is_none()
            {
                continue;
            }
            let (client, pod_obj, container, id) = (
                self.client.clone(),
                pod.pod.clone(),
                container.clone(),
                c.id.clone(),
            );
            let pod_ip = self
                .sandbox_ips
                .get(&c.pod_sandbox_id)
                .and_then(|ips| ips.first().cloned());
            hooks.spawn(async move {
                let result = crate::lifecycle::run_pre_stop(
                    &client,
                    &pod_obj,
                    &container,
                    &id,
                    grace,
                    pod_ip.as_deref(),
                )
                .await;
                (kind, container.name, result)
            });
        }
        let id = PodIdentity {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            node_name: self.options.node_name.clone(),
        };
        while let Some(done) = hooks.join_next().await {
            if let Ok((kind, name, Err(e))) = done {
                tracing::warn!(pod = %pod.full_name(), container = %name, error = %e, "preStop hook failed");
                lock(&self.kill_events).push(container_event(
                    &id,
                    kind,
                    &name,
                    true,
                    "FailedPreStopHook",
                    "PreStopHook failed".to_owned(),
                ));
            }
        }
        // Whole seconds, as the kubelet subtracts them.
        let took = Duration::from_secs(started.elapsed().as_secs());
        Some(grace.saturating_sub(took).max(crate::lifecycle::MIN_GRACE))
    }

    /// Stops a deleted pod's `containers` with its deletion grace period (the kubelet's
    /// `gracePeriodOverride`: `deletionGracePeriodSeconds`, not the spec's), and, when the API
    /// server shortens it meanwhile (a second DELETE with a shorter grace period), stops them
    /// again with the shorter one, as the kubelet's pod worker does.
    async fn stop_for_deletion(
        &self,
        uid: &str,
        containers: &[cri::Container],
        grace: Option<Duration>,
    ) {
        tracing::info!(pod_uid = %uid, grace = ?grace, "stopping the containers of a pod being deleted");
        let stop = self.stop_containers(containers, grace, true);
        let (Some(api), Some(mut current)) = (self.api.clone(), grace) else {
            stop.await;
            return;
        };
        tokio::pin!(stop);
        let mut since = std::time::Instant::now();
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = api.changed() => {
                    let Some(new) = api.pods().get(uid).and_then(|p| crate::deletion_grace(&p.pod)) else {
                        continue;
                    };
                    if new >= current.saturating_sub(since.elapsed()) {
                        continue;
                    }
                    tracing::info!(pod_uid = %uid, grace = ?new, "the deletion grace period was shortened");
                    let secs = i64::try_from(new.as_secs()).unwrap_or(i64::MAX);
                    for c in containers
                        .iter()
                        .filter(|c| c.state != cri::ContainerState::ContainerExited as i32)
                    {
                        let (client, id) = (self.client.clone(), c.id.clone());
                        tokio::spawn(async move {
                            if let Err(e) = client.stop_container(&id, secs).await {
                                tracing::warn!(error = %e, "stopping container with the shortened grace period");
                            }
                        });
                    }
                    (current, since) = (new, std::time::Instant::now());
                }
            }
        }
    }

    /// Stops the running `containers` in parallel, each with its own grace period (the pod's,
    /// from its annotation) capped at `max_grace`, or with exactly `max_grace` when `exact`,
    /// with a `Killing` event each.
    async fn stop_containers(
        &self,
        containers: &[cri::Container],
        max_grace: Option<Duration>,
        exact: bool,
    ) {
        let mut stops = tokio::task::JoinSet::new();
        for c in containers
            .iter()
            .filter(|c| c.state != cri::ContainerState::ContainerExited as i32)
        {
            let client = self.client.clone();
            let id = c.id.clone();
            let grace = c
                .annotations
                .get(ANNOTATION_GRACE_PERIOD)
                .and_then(|g| g.parse::<i64>().ok())
                .unwrap_or(30);
            let grace = max_grace.map_or(grace, |cap| {
                let cap = i64::try_from(cap.as_secs()).unwrap_or(i64::MAX);
                if exact { cap } else { grace.min(cap) }
            });
            let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
            let name = label(LABEL_CONTAINER_NAME);
            lock(&self.kill_events).push(PodEvent {
                namespace: label(crate::LABEL_POD_NAMESPACE),
                name: label(crate::LABEL_POD_NAME),
                uid: label(LABEL_POD_UID),
                field_path: Some(field_path(ContainerKind::Regular, &name)),
                warning: false,
                reason: "Killing".to_owned(),
                message: format!("Stopping container {name}"),
            });
            stops.spawn(async move { client.stop_container(&id, grace).await });
        }
        while let Some(result) = stops.join_next().await {
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "stopping container");
            }
        }
    }

    /// Removes `containers` (stopped), then stops and removes `sandboxes`.
    async fn remove_stopped(
        &self,
        sandboxes: &[cri::PodSandbox],
        containers: &[cri::Container],
    ) -> Result<(), RuntimeError> {
        for c in containers {
            if let Err(e) = self.client.remove_container(&c.id).await {
                tracing::warn!(error = %e, "removing container");
            }
        }
        for s in sandboxes {
            self.client.stop_pod_sandbox(&s.id).await?;
            self.client.remove_pod_sandbox(&s.id).await?;
        }
        Ok(())
    }

    /// Pulls the container's image as its pull policy says, reporting the kubelet's image
    /// events for the container.
    async fn ensure_image(
        &self,
        id: &PodIdentity,
        kind: ContainerKind,
        container: &Container,
        report: &mut SyncReport,
    ) -> Result<(), RuntimeError> {
        let image = container.image.clone().unwrap_or_default();
        let policy = container
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| default_pull_policy(&image).to_owned());
        let event = |warning: bool, reason: &str, message: String| {
            container_event(id, kind, &container.name, warning, reason, message)
        };
        let pull = async |report: &mut SyncReport| -> Result<(), RuntimeError> {
            report
                .events
                .push(event(false, "Pulling", format!("Pulling image {image:?}")));
            let started = std::time::Instant::now();
            match self.client.pull_image(&image).await {
                Ok(_) => {
                    report.events.push(event(
                        false,
                        "Pulled",
                        format!(
                            "Successfully pulled image {image:?} in {:.3}s",
                            started.elapsed().as_secs_f64()
                        ),
                    ));
                    Ok(())
                }
                Err(e) => {
                    let message = format!("Failed to pull image {image:?}: {}", e.with_cause());
                    report.events.push(event(true, "Failed", message.clone()));
                    // The kubelet's waiting reason for a failed pull (`images.ErrImagePull`).
                    Err(RuntimeError::Image {
                        reason: "ErrImagePull",
                        message,
                    })
                }
            }
        };
        // `Pulled` "already present" (the image manager's, for IfNotPresent and Never), once
        // per container start: not again after this pass pulled it (before the sandbox).
        let already_present = |report: &mut SyncReport| {
            let present = event(
                false,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
            let pulled_now = report.events.iter().any(|e| {
                e.reason == "Pulled" && e.uid == present.uid && e.field_path == present.field_path
            });
            if !pulled_now {
                report.events.push(present);
            }
        };
        match policy.as_str() {
            "Always" => {
                pull(report).await?;
            }
            "Never" => {
                if !self.client.image_present(&image).await? {
                    report.events.push(event(
                        true,
                        "ErrImageNeverPull",
                        format!(
                            "Container image {image:?} is not present with pull policy of Never"
                        ),
                    ));
                    return Err(RuntimeError::Image {
                        reason: "ErrImageNeverPull",
                        message: format!(
                            "Container image {image:?} is not present with pull policy of Never"
                        ),
                    });
                }
                already_present(report);
            }
            _ => {
                if self.client.image_present(&image).await? {
                    already_present(report);
                } else {
                    pull(report).await?;
                }
            }
        }
        Ok(())
    }

    /// Syncs one desired pod: plans with [`crate::plan`], then applies the plan with CRI
    /// calls (the kubelet's computePodActions, then SyncPod, in
    /// `pkg/kubelet/kuberuntime/kuberuntime_manager.go`).
    async fn sync_pod(
        &mut self,
        pod: &SourcePod,
        sandboxes: Vec<cri::PodSandbox>,
        containers: Vec<cri::Container>,
        report: &mut SyncReport,
    ) -> Result<PodInfo, RuntimeError> {
        let id = PodIdentity {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            node_name: self.options.node_name.clone(),
        };
        let spec = pod.pod.spec.clone().unwrap_or_default();
        let sandbox_cfg = sandbox_config(
            &pod.pod,
            &id,
            &self.options.paths,
            &self.resolver,
            &self.options.dns.cluster_domain,
        )?;
        self.kill_for_probes(&id, &spec, &containers, report).await;
        // The pod directory and volumes come before the sandbox (the kubelet waits for its
        // volume manager first).
        // A pod already running goes on when its volumes can no longer be set up (a configMap
        // deleted): a FailedMount event, and its containers keep (and restart with) the files
        // they have, as the kubelet's. A pod not started yet waits.
        let running = sandboxes
            .iter()
            .any(|s| s.state == cri::PodSandboxState::SandboxReady as i32);
        let prepared = match self.pod_objects(&pod.pod, &id).await {
            Ok(objects) => {
                let objects = std::sync::Arc::new(objects);
                let (pod, id, paths) = (pod.pod.clone(), id.clone(), self.options.paths.clone());
                let for_setup = objects.clone();
                crate::blocking::run("setting up pod volumes", move || {
                    prepare_volumes(&pod, &id, &paths, &for_setup)
                })
                .await
                .map(|volumes| (objects, volumes))
            }
            Err(e) => Err(e),
        };
        let (objects, volumes) = match prepared {
            Ok(ready) => ready,
            Err(e) => {
                report.events.push(PodEvent {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    uid: id.uid.clone(),
                    field_path: None,
                    warning: true,
                    reason: "FailedMount".to_owned(),
                    message: e.waiting_message(),
                });
                if !running {
                    return Err(e);
                }
                tracing::warn!(pod = %id.full_name(), error = %e.with_cause(), "volumes of a running pod could not be set up; it keeps the files it has");
                let pod_dir = self.options.paths.checked_pod_dir(&id.uid)?;
                (
                    std::sync::Arc::new(crate::api_volumes::PodObjects::default()),
                    crate::spec::volume_paths(&pod.pod, &pod_dir),
                )
            }
        };
        let log_dir = self
            .options
            .paths
            .pod_log_dir(&id.namespace, &id.name, &id.uid);
        let desired = DesiredPod {
            id: &id,
            spec: &spec,
            log_dir: &log_dir,
            backoff: self.options.backoff_policy(),
        };

        let sandbox_plan = plan::plan_sandbox(&id, sandboxes, containers);
        if let Some(foreign) = &sandbox_plan.foreign {
            for f in &foreign.sandboxes {
                let owner = f
                    .metadata
                    .as_ref()
                    .map_or_else(String::new, |m| format!("{}/{}", m.namespace, m.name));
                tracing::warn!(pod = %id.full_name(), sandbox = %f.id, owner = %owner, "removing a sandbox with this pod's UID that was made for another pod");
            }
            self.teardown(&foreign.sandboxes, &foreign.containers)
                .await?;
        }
        // No ready sandbox: a pod that would start nothing in a new one is finished (its dead
        // sandbox and containers stay, for its status and logs).
        if let SandboxAction::Create { .. } = &sandbox_plan.action
            && desired.restart_policy() != "Always"
            && let Some(dead) = sandbox_plan
                .kill
                .iter()
                .flat_map(|t| t.sandboxes.iter())
                .max_by_key(|s| s.created_at)
        {
            let dead_containers: Vec<cri::Container> = sandbox_plan
                .kill
                .iter()
                .flat_map(|t| t.containers.iter())
                .cloned()
                .collect();
            let mut statuses = HashMap::new();
            for c in plan::to_inspect(&desired, &dead_containers) {
                let status = self.status_of(c).await?;
                statuses.insert(c.id.clone(), status);
            }
            let plan = plan::plan_containers(
                &desired,
                &dead_containers,
                &statuses,
                &self.backoff,
                now_nanos(),
            );
            if plan::finished_without_sandbox(&desired, &plan) {
                let mut infos: Vec<ContainerInfo> =
                    plan.steps.iter().map(|s| s.info.clone()).collect();
                for info in infos.iter_mut().filter(|i| i.last_state.is_none()) {
                    info.last_state = plan.previous.get(&info.name).and_then(plan::last_state);
                }
                let (phase, conditions) = plan::pod_status_with_sidecars(
                    &infos,
                    desired.restart_policy(),
                    &plan::sidecars(desired.spec),
                );
                return Ok(PodInfo {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    uid: id.uid.clone(),
                    source: pod.source.clone(),
                    pod: Some(pod.pod.clone()),
                    sandbox_id: None,
                    pod_ips: self.sandbox_ips.get(&dead.id).cloned().unwrap_or_default(),
                    phase,
                    reason: None,
                    message: None,
                    conditions,
                    containers: infos,
                });
            }
        }
        for old in &sandbox_plan.kill {
            self.teardown(&old.sandboxes, &old.containers).await?;
        }
        let sandbox_id = match &sandbox_plan.action {
            SandboxAction::Keep { sandbox_id } => sandbox_id.clone(),
            SandboxAction::Create { reason } => {
                for (kind, c) in desired.containers() {
                    self.ensure_image(&id, kind, c, report)
                        .await
                        .map_err(|e| with_pod(e, &id))?;
                }
                let (paths, log_id) = (self.options.paths.clone(), id.clone());
                crate::blocking::run("creating pod log directory", move || {
                    paths.create_pod_log_dir(&log_id.namespace, &log_id.name, &log_id.uid)
                })
                .await?;
                let mut config = sandbox_cfg.clone();
                config.dns_config = Some(self.pod_dns(&id, &pod.pod, report).await?);
                let sid = self.client.run_pod_sandbox(config).await?;
                tracing::info!(pod = %id.full_name(), sandbox = %sid, reason = ?reason, "started pod sandbox");
                report.sandboxes_created.push(id.full_name());
                sid
            }
        };

        let pod_ips = self.sandbox_ips(&sandbox_id, &spec).await?;
        let mut statuses = HashMap::new();
        for c in plan::to_inspect(&desired, &sandbox_plan.containers) {
            let status = self.status_of(c).await?;
            statuses.insert(c.id.clone(), status);
        }
        let plan = plan::plan_containers(
            &desired,
            &sandbox_plan.containers,
            &statuses,
            &self.backoff,
            now_nanos(),
        );
        if !plan.kill_unknown.is_empty() {
            for c in &plan.kill_unknown {
                tracing::info!(pod = %id.full_name(), container = %c.labels.get(LABEL_CONTAINER_NAME).map_or("", String::as_str), "stopping a container that is not in the pod spec");
            }
            self.teardown(&[], &plan.kill_unknown).await?;
        }
        for old in &plan.remove_stale {
            let _ = self.client.remove_container(old).await;
        }

        let target = Target {
            pod,
            desired: &desired,
            sandbox_id: &sandbox_id,
            pod_ips: &pod_ips,
            sandbox_cfg: &sandbox_cfg,
            volumes: &volumes,
            objects: &objects,
        };
        let previous = plan.previous;
        let mut infos = self
            .apply_steps(&target, plan.latest, plan.steps, plan.backoff, report)
            .await;
        for info in infos.iter_mut().filter(|i| i.last_state.is_none()) {
            info.last_state = previous.get(&info.name).and_then(plan::last_state);
        }
        let (phase, conditions) = plan::pod_status_with_sidecars(
            &infos,
            desired.restart_policy(),
            &plan::sidecars(desired.spec),
        );
        // A pod that finished (Succeeded, or Failed for good) has its sandbox stopped, as the
        // kubelet's pod worker kills a terminal pod; its containers stay.
        let sandbox_id = if matches!(phase, PodPhase::Succeeded | PodPhase::Failed) {
            tracing::info!(pod = %id.full_name(), phase = ?phase, "pod finished; stopping its sandbox");
            self.client.stop_pod_sandbox(&sandbox_id).await?;
            None
        } else {
            Some(sandbox_id)
        };
        Ok(PodInfo {
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            uid: id.uid.clone(),
            source: pod.source.clone(),
            pod: Some(pod.pod.clone()),
            sandbox_id,
            pod_ips,
            phase,
            reason: None,
            message: None,
            conditions,
            containers: infos,
        })
    }

    /// The API objects `pod` references ([`crate::api_volumes::fetch`]) and the node's
    /// allocatable resources.
    async fn pod_objects(
        &self,
        pod: &k8s_openapi::api::core::v1::Pod,
        id: &PodIdentity,
    ) -> Result<crate::api_volumes::PodObjects, RuntimeError> {
        let source = self.options.objects.as_ref().map(|s| s.0.as_ref());
        let mut objects = crate::api_volumes::fetch(source, pod, &id.full_name()).await?;
        if let Some(node) = self.options.node_info.as_ref().and_then(|f| (f.0)()) {
            objects.node_allocatable = node
                .allocatable
                .iter()
                .map(|(name, v)| {
                    let text = if name == "cpu" {
                        format!("{v}m")
                    } else {
                        v.to_string()
                    };
                    (
                        name.clone(),
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity(text),
                    )
                })
                .collect();
        }
        Ok(objects)
    }

    /// Stops the running containers whose liveness or startup probe failed (the kubelet's
    /// `computePodActions` kill, with the probe's `terminationGracePeriodSeconds` or the
    /// pod's), each once; the restart policy and back-off then decide the restart.
    async fn kill_for_probes(
        &mut self,
        id: &PodIdentity,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        containers: &[cri::Container],
        report: &mut SyncReport,
    ) {
        for c in containers {
            if c.state != cri::ContainerState::ContainerRunning as i32
                || self.probe_killed.contains(&c.id)
            {
                continue;
            }
            let name = c
                .labels
                .get(LABEL_CONTAINER_NAME)
                .map_or("", String::as_str);
            let Some(kill) = self.prober.kill_request(&id.uid, name, &c.id) else {
                continue;
            };
            let grace = kill
                .grace
                .unwrap_or_else(|| crate::spec::grace_period(spec))
                .max(0);
            tracing::info!(pod = %id.full_name(), container = %name, probe = kill.probe.name(), "{}", kill.message);
            self.probe_killed.insert(c.id.clone());
            let kind = if spec
                .init_containers
                .iter()
                .flatten()
                .any(|i| i.name == name)
            {
                ContainerKind::Init
            } else {
                ContainerKind::Regular
            };
            report.events.push(container_event(
                id,
                kind,
                name,
                false,
                "Killing",
                kill.message.clone(),
            ));
            if let Err(e) = self.client.stop_container(&c.id, grace).await {
                report.errors.push(format!(
                    "stopping container {name} of {} for its failed probe: {}",
                    id.full_name(),
                    e.with_cause()
                ));
            }
        }
    }

    /// The sandbox's DNS config ([`crate::network::pod_dns`]), reading the node's resolver
    /// file; its warnings become the pod's events.
    async fn pod_dns(
        &self,
        id: &PodIdentity,
        pod: &std::sync::Arc<k8s_openapi::api::core::v1::Pod>,
        report: &mut SyncReport,
    ) -> Result<cri::DnsConfig, RuntimeError> {
        let host = match self.options.dns.resolv_conf.clone() {
            Some(path) => {
                let pod_id = id.clone();
                Some(
                    crate::blocking::run("reading the node's resolver file", move || {
                        crate::network::read_resolv_conf(&path)
                            .map_err(|e| spec_err_for(&pod_id, e))
                    })
                    .await?,
                )
            }
            None => None,
        };
        let dns = crate::network::pod_dns(pod, &self.options.dns, host.as_ref());
        for w in dns.warnings {
            report.events.push(PodEvent {
                namespace: id.namespace.clone(),
                name: id.name.clone(),
                uid: id.uid.clone(),
                field_path: None,
                warning: true,
                reason: w.reason.to_owned(),
                message: w.message,
            });
        }
        Ok(dns.config)
    }

    /// The pod's IPs from its sandbox (the kubelet's `determinePodSandboxIPs`): the primary
    /// one, then the others; none for a host-network pod (its IPs are the node's). Asked once
    /// per sandbox.
    async fn sandbox_ips(
        &mut self,
        sandbox_id: &str,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<Vec<String>, RuntimeError> {
        if spec.host_network == Some(true) {
            return Ok(Vec::new());
        }
        if let Some(ips) = self.sandbox_ips.get(sandbox_id) {
            return Ok(ips.clone());
        }
        let status = self.client.pod_sandbox_status(sandbox_id).await?;
        let ips = crate::network::sandbox_ips(&status);
        self.sandbox_ips.insert(sandbox_id.to_owned(), ips.clone());
        Ok(ips)
    }

    async fn status_of(
        &mut self,
        c: &cri::Container,
    ) -> Result<cri::ContainerStatus, RuntimeError> {
        if let Some(s) = self.statuses.get(&c.id)
            && s.state == c.state
        {
            return Ok(s.clone());
        }
        let mut status = self.client.container_status(&c.id).await?;
        if status.state == cri::ContainerState::ContainerExited as i32 {
            // Read once per exit (the status is cached until the state changes).
            let copy = status.clone();
            status.message = crate::blocking::run("reading a termination message", move || {
                Ok(crate::termination::message(&copy))
            })
            .await?;
        }
        self.statuses.insert(c.id.clone(), status.clone());
        Ok(status)
    }

    /// Runs the container steps in order and returns each container's status. An init
    /// container that completed before its status was read (a fast one) lets the next one
    /// start in the same pass: the remaining steps are planned again with it done.
    async fn apply_steps(
        &mut self,
        target: &Target<'_>,
        mut latest: HashMap<String, Instance>,
        steps: Vec<ContainerStep>,
        backoff: Vec<(String, Backoff)>,
        report: &mut SyncReport,
    ) -> Vec<ContainerInfo> {
        let uid = &target.desired.id.uid;
        for (name, b) in backoff {
            self.backoff.insert((uid.clone(), name), b);
        }
        let mut infos = Vec::with_capacity(steps.len());
        let mut pending = steps.into_iter();
        while let Some(step) = pending.next() {
            let (info, started) = self.apply_step(target, &step, report).await;
            let init_done = step.kind == ContainerKind::Init
                && matches!(info.state, ContainerState::Terminated { exit_code: 0, .. });
            infos.push(info);
            if let (true, Some(new)) = (init_done, started) {
                latest.insert(step.container.name.clone(), new);
                let (steps, backoff) =
                    plan::plan_steps(target.desired, &latest, &self.backoff, now_nanos());
                for (name, b) in backoff {
                    self.backoff.insert((uid.clone(), name), b);
                }
                let done = infos.len();
                pending = steps.into_iter().skip(done).collect::<Vec<_>>().into_iter();
            }
        }
        infos
    }

    /// Applies one step: its container's status, and the new instance if one was started.
    async fn apply_step(
        &mut self,
        target: &Target<'_>,
        step: &ContainerStep,
        report: &mut SyncReport,
    ) -> (ContainerInfo, Option<Instance>) {
        let result = match step.action {
            ContainerAction::Keep | ContainerAction::WaitForInit => {
                return (step.info.clone(), None);
            }
            ContainerAction::BackOff { .. } => {
                // `kuberuntime_manager.go doBackOff`.
                let id = target.desired.id;
                report.events.push(container_event(
                    id,
                    step.kind,
                    &step.container.name,
                    true,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        step.container.name, id.name, id.namespace, id.uid
                    ),
                ));
                return (step.info.clone(), None);
            }
            ContainerAction::StartCreated => match &step.instance {
                Some(inst) => self
                    .client
                    .start_container(&inst.id)
                    .await
                    .map(|()| (step.info.clone(), None)),
                None => return (step.info.clone(), None),
            },
            ContainerAction::Start { attempt, reason } => self
                .start_step(target, step, attempt, reason, report)
                .await
                .map(|(info, inst)| (info, Some(inst))),
        };
        result.unwrap_or_else(|e| {
            report.errors.push(e.with_cause());
            // Image failures have their own events (`ensure_image`).
            if !matches!(e.waiting_reason(), "ErrImagePull" | "ErrImageNeverPull") {
                report.events.push(container_event(
                    target.desired.id,
                    step.kind,
                    &step.container.name,
                    true,
                    "Failed",
                    format!("Error: {}", e.waiting_message()),
                ));
            }
            let state = ContainerState::Waiting {
                reason: e.waiting_reason().to_owned(),
                message: e.waiting_message(),
            };
            let info = match &step.instance {
                // A restart that failed: the last instance's ID and count remain.
                Some(inst) => ContainerInfo {
                    state,
                    ready: false,
                    ..plan::info_from(
                        &step.container,
                        step.kind,
                        inst,
                        plan::log_path(target.desired.log_dir, &step.container.name, inst.attempt),
                    )
                },
                None => plan::waiting_info(
                    &step.container,
                    step.kind,
                    e.waiting_reason(),
                    &e.waiting_message(),
                ),
            };
            (info, None)
        })
    }

    /// Creates and starts attempt `attempt` of a container (stopping the running instance
    /// first when its spec changed); the previous instance is removed once the new one exists.
    async fn start_step(
        &mut self,
        target: &Target<'_>,
        step: &ContainerStep,
        attempt: u32,
        reason: StartReason,
        report: &mut SyncReport,
    ) -> Result<(ContainerInfo, Instance), RuntimeError> {
        let id = target.desired.id;
        let container = &step.container;
        let kind = step.kind;
        if let (StartReason::SpecChanged { grace_seconds }, Some(inst)) = (reason, &step.instance) {
            tracing::info!(pod = %id.full_name(), container = %container.name, "container spec changed; restarting it");
            self.client.stop_container(&inst.id, grace_seconds).await?;
        }
        self.ensure_image(id, kind, container, report)
            .await
            .map_err(|e| with_pod(e, id))?;
        // A first start with no instance in the runtime: if the runtime lost the container's
        // state (a node reboot, a runtime wipe), its log directory still counts the attempts,
        // and the new one continues after them rather than appending to `0.log`
        // (`kuberuntime_container.go` `startContainer`, `calcRestartCountByLogDir`).
        let attempt = if matches!(reason, StartReason::First) && step.instance.is_none() {
            let dir = target.desired.log_dir.join(&container.name);
            let names = crate::blocking::run("reading the container's log directory", move || {
                Ok::<_, RuntimeError>(
                    std::fs::read_dir(&dir)
                        .map(|d| {
                            d.filter_map(Result::ok)
                                .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                )
            })
            .await?;
            attempt.max(plan::restart_count_from_log_names(&names))
        } else {
            attempt
        };
        // subPath mounts, directories and Localhost seccomp profiles: filesystem work.
        let mut config = {
            let (pod, id, container, volumes) = (
                target.pod.pod.clone(),
                id.clone(),
                container.clone(),
                target.volumes.clone(),
            );
            let (resolver, node_name, swap) = (
                self.resolver.clone(),
                self.options.node_name.clone(),
                self.options.swap.clone(),
            );
            let (pod_ips, domain, objects, host_ips) = (
                target.pod_ips.to_vec(),
                self.options.dns.cluster_domain.clone(),
                target.objects.clone(),
                self.options.host_ips.clone(),
            );
            crate::blocking::run("making the container configuration", move || {
                let mut config = container_config(
                    &pod,
                    &id,
                    &container,
                    kind,
                    attempt,
                    &volumes,
                    &resolver,
                    &node_name,
                    swap.as_ref(),
                    &crate::spec::ContainerEnvInputs {
                        objects: &objects,
                        host_ips: &host_ips,
                        // A host-network pod's IPs are the node's.
                        pod_ips: if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
                            &host_ips
                        } else {
                            &pod_ips
                        },
                    },
                )?;
                // The kubelet's managed /etc/hosts (makeMounts), unless the container mounts
                // its own.
                if crate::network::mounts_hosts_file(&container) {
                    let content = crate::network::hosts_file_content(&pod, &pod_ips, &domain)
                        .map_err(|e| spec_err_for(&id, e))?;
                    let path = crate::network::write_hosts_file(&volumes.pod_dir, &content)?;
                    config.mounts.push(cri::Mount {
                        container_path: crate::network::ETC_HOSTS.to_owned(),
                        host_path: path.display().to_string(),
                        readonly: false,
                        selinux_relabel: true,
                        ..Default::default()
                    });
                }
                Ok(config)
            })
            .await?
        };
        if let Some(hook) = &self.hook {
            let limits: std::collections::BTreeMap<String, String> = container
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .map(|l| l.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default();
            let request = ContainerRequest {
                pod_namespace: &id.namespace,
                pod_name: &id.name,
                pod_uid: &id.uid,
                container_name: &container.name,
                limits: &limits,
            };
            hook.before_create(request, &mut config)
                .await
                .map_err(|reason| RuntimeError::PodSpec {
                    pod: id.full_name(),
                    reason: format!("container {}: {reason}", container.name),
                })?;
        }
        let cid = self
            .client
            .create_container(target.sandbox_id, config, target.sandbox_cfg.clone())
            .await?;
        report.events.push(container_event(
            id,
            kind,
            &container.name,
            false,
            "Created",
            "Container created".to_owned(),
        ));
        // The instance before stays until the next restart (its end is `lastState`); older
        // ones go on the next pass.
        self.client.start_container(&cid).await?;
        report.events.push(container_event(
            id,
            kind,
            &container.name,
            false,
            "Started",
            "Container started".to_owned(),
        ));
        tracing::info!(pod = %id.full_name(), container = %container.name, attempt = attempt, "started container");
        // postStart (the kubelet's startContainer): a failed hook kills the container; the
        // restart policy and back-off take it from there.
        if let Err(message) = crate::lifecycle::run_post_start(
            &self.client,
            &target.pod.pod,
            container,
            &cid,
            target.pod_ips.first().map(String::as_str),
        )
        .await
        {
            tracing::warn!(pod = %id.full_name(), container = %container.name, error = %message, "postStart hook failed");
            // The 1.35 kubelet's texts (the details go to the log).
            report.events.push(container_event(
                id,
                kind,
                &container.name,
                true,
                "FailedPostStartHook",
                "PostStartHook failed".to_owned(),
            ));
            report.events.push(container_event(
                id,
                kind,
                &container.name,
                false,
                "Killing",
                "FailedPostStartHook".to_owned(),
            ));
            let grace = crate::spec::grace_period(target.desired.spec);
            if let Err(e) = self.client.stop_container(&cid, grace).await {
                report.errors.push(e.with_cause());
            }
        }
        report
            .containers_started
            .push(format!("{}/{}", id.full_name(), container.name));
        let status = self.client.container_status(&cid).await?;
        let inst = Instance {
            id: cid,
            attempt,
            status,
        };
        let mut info = plan::info_from(
            container,
            kind,
            &inst,
            plan::log_path(target.desired.log_dir, &container.name, attempt),
        );
        // The instance this one replaces is the previous one now.
        info.last_state = step
            .instance
            .as_ref()
            .and_then(|old| plan::last_state(&old.status));
        Ok((info, inst))
    }

    /// Unmounts the subPath mounts of a pod that is gone and removes `<root>/pods/<uid>`. The
    /// UID comes from a runtime label, so it is checked to be one path component under the
    /// pods directory first; nothing is followed through a symlink or across a mount. Runs
    /// on the blocking pool: the directory may hold a large emptyDir.
    async fn remove_pod_dir(&self, uid: &str) -> Result<(), RuntimeError> {
        let (paths, uid) = (self.options.paths.clone(), uid.to_owned());
        crate::blocking::run("removing pod directory", move || paths.remove_pod_dir(&uid)).await
    }

    /// Tells the hook (if any) that the pod is gone, on the blocking pool: the device manager
    /// writes its checkpoint there.
    async fn pod_removed(&self, uid: &str) {
        let Some(hook) = self.hook.clone() else {
            return;
        };
        let uid = uid.to_owned();
        if let Err(e) = crate::blocking::run("releasing a removed pod's resources", move || {
            hook.pod_removed(&uid);
            Ok(())
        })
        .await
        {
            tracing::error!(error = %e, "container hook");
        }
    }
}

/// Where a pod's containers go: the parts of a pod sync every container step needs.
struct Target<'a> {
    pod: &'a SourcePod,
    desired: &'a DesiredPod<'a>,
    sandbox_id: &'a str,
    /// The pod's IPs (empty on the host network).
    pod_ips: &'a [String],
    sandbox_cfg: &'a cri::PodSandboxConfig,
    volumes: &'a PodVolumes,
    /// The API objects the pod references (volumes, environment).
    objects: &'a std::sync::Arc<crate::api_volumes::PodObjects>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn with_pod(e: RuntimeError, id: &PodIdentity) -> RuntimeError {
    match e {
        RuntimeError::PodSpec { pod, reason } if pod.is_empty() => RuntimeError::PodSpec {
            pod: id.full_name(),
            reason,
        },
        other => other,
    }
}

/// The kubelet's default pull policy: `Always` for `:latest` or untagged images, else
/// `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        None | Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// The final record of a pod stopped for its deletion, from how its containers ended: the
/// kubelet's terminal phase (`getPhase` with the pod terminal: `Succeeded` when every regular
/// container exited 0, else `Failed`), every container terminated, not ready.
/// The kubelet's message for pods it kills because the node shuts down.
pub const NODE_SHUTDOWN_MESSAGE: &str = "Pod was terminated in response to imminent node shutdown.";

/// The final record of a pod stopped for the node's shutdown (`nodeshutdown_manager_linux.go`
/// `killPods`): phase `Failed`, reason `Terminated`, the kubelet's message, and a
/// `DisruptionTarget` condition (`TerminationByKubelet`).
fn shutdown_info(
    pod: &SourcePod,
    ended: &[(cri::Container, cri::ContainerStatus)],
    options: &SyncOptions,
) -> PodInfo {
    let mut info = finished_info(pod, ended, options);
    info.phase = PodPhase::Failed;
    info.reason = Some("Terminated".to_owned());
    info.message = Some(NODE_SHUTDOWN_MESSAGE.to_owned());
    for c in info
        .conditions
        .iter_mut()
        .filter(|c| c.type_ == "Ready" || c.type_ == "ContainersReady")
    {
        c.status = false;
        c.reason = Some("PodFailed".to_owned());
    }
    info.conditions.push(PodCondition {
        type_: "DisruptionTarget".to_owned(),
        status: true,
        reason: Some("TerminationByKubelet".to_owned()),
        message: Some(NODE_SHUTDOWN_MESSAGE.to_owned()),
    });
    info
}

fn finished_info(
    pod: &SourcePod,
    ended: &[(cri::Container, cri::ContainerStatus)],
    options: &SyncOptions,
) -> PodInfo {
    let spec = pod.pod.spec.clone().unwrap_or_default();
    let log_dir = options
        .paths
        .pod_log_dir(&pod.namespace, &pod.name, &pod.uid);
    let mut info = pending_info(pod, "", "");
    info.containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (ContainerKind::Init, c))
        .chain(spec.containers.iter().map(|c| (ContainerKind::Regular, c)))
        .map(|(kind, c)| {
            // The latest instance of this container (highest attempt).
            let last = ended
                .iter()
                .filter(|(rc, _)| rc.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name))
                .max_by_key(|(rc, _)| plan::attempt_of(rc));
            match last {
                Some((rc, status)) => {
                    let inst = plan::Instance {
                        id: rc.id.clone(),
                        attempt: plan::attempt_of(rc),
                        status: status.clone(),
                    };
                    let mut ci = plan::info_from(
                        c,
                        kind,
                        &inst,
                        plan::log_path(&log_dir, &c.name, inst.attempt),
                    );
                    ci.ready = false;
                    ci
                }
                None => plan::waiting_info(c, kind, "", ""),
            }
        })
        .collect();
    let all_succeeded = info
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Regular)
        .all(|c| matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }));
    info.phase = if all_succeeded {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    };
    let reason = if all_succeeded {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    info.conditions = vec![
        PodCondition {
            type_: "PodScheduled".to_owned(),
            status: true,
            reason: None,
            message: None,
        },
        PodCondition {
            type_: "Initialized".to_owned(),
            status: true,
            reason: None,
            message: None,
        },
        PodCondition {
            type_: "ContainersReady".to_owned(),
            status: false,
            reason: Some(reason.to_owned()),
            message: None,
        },
        PodCondition {
            type_: "Ready".to_owned(),
            status: false,
            reason: Some(reason.to_owned()),
            message: None,
        },
    ];
    info
}

/// A pod refused at admission, as the kubelet's `rejectPod` leaves it: phase Failed with the
/// reason and message, no containers started.
fn rejected_info(pod: &SourcePod, r: &crate::admission::Rejection) -> PodInfo {
    let mut info = pending_info(pod, "", &r.message);
    info.phase = PodPhase::Failed;
    info.reason = Some(r.reason.clone());
    info.message = Some(r.message.clone());
    info.conditions = Vec::new();
    info.containers = Vec::new();
    info
}

fn pending_info(pod: &SourcePod, reason: &str, message: &str) -> PodInfo {
    let spec = pod.pod.spec.clone().unwrap_or_default();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| plan::waiting_info(c, ContainerKind::Init, reason, message))
        .chain(
            spec.containers
                .iter()
                .map(|c| plan::waiting_info(c, ContainerKind::Regular, reason, message)),
        )
        .collect();
    PodInfo {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        source: pod.source.clone(),
        pod: Some(pod.pod.clone()),
        sandbox_id: None,
        pod_ips: Vec::new(),
        phase: PodPhase::Pending,
        reason: None,
        message: None,
        conditions: vec![PodCondition {
            type_: "Ready".to_owned(),
            status: false,
            reason: Some(message.to_owned()),
            message: None,
        }],
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_backoff_doubles_to_the_cap() {
        let opts = SyncOptions::new(
            "n",
            NodePaths {
                root_dir: "/r".into(),
                pod_logs_dir: "/l".into(),
            },
        );
        let delays: Vec<u64> = (0..8)
            .map(|r| {
                Backoff { restarts: r }
                    .delay(opts.backoff_policy())
                    .as_secs()
            })
            .collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            Backoff { restarts: 100 }
                .delay(opts.backoff_policy())
                .as_secs(),
            300
        );
    }

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/busybox:local"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abcd"), "IfNotPresent");
    }
}
