//! [`ProbeManager`]: the thin async layer (`pkg/kubelet/prober/prober_manager.go`): one task
//! per (pod, container, probe kind), the published results, and the queries the sync loop and
//! the status generator ask.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::handlers::{ProbeContext, ProbeOutcome, run_probe};
use super::spec::{ProbeKind, ProbeSpec};
use super::worker::{Action, ProbeResult, TickInput, WorkerState, cheap_random, first_probe_delay};
use crate::client::CriClient;
use crate::sync::PodEvent;

/// How many events [`ProbeManager::take_events`] keeps at most; older ones are dropped.
pub const MAX_EVENTS: usize = 1000;

/// A pod as the probe workers see it, handed to [`ProbeManager::update`] after every sync pass.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The pod's UID.
    pub uid: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod (its containers' probes, ports and env).
    pub pod: Arc<Pod>,
    /// The pod's IP, the host of probes that name none.
    pub pod_ip: Option<String>,
    /// The pod has a deletion timestamp (liveness and startup probes stop).
    pub deleting: bool,
    /// The pod is `Succeeded` or `Failed` (its workers exit).
    pub terminal: bool,
    /// The pod's containers' current instances.
    pub containers: Vec<ProbedContainer>,
}

/// A container's current instance, as the runtime reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbedContainer {
    /// The container's name in the pod spec.
    pub name: String,
    /// The runtime's ID of the current instance; `None` before it is created.
    pub container_id: Option<String>,
    /// When it started running.
    pub running_since: Option<SystemTime>,
    /// It is running.
    pub running: bool,
    /// It will be started again if it exits (restart policy, sidecar).
    pub may_restart: bool,
}

/// A container a failed probe wants restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeKill {
    /// [`ProbeKind::Liveness`] or [`ProbeKind::Startup`].
    pub probe: ProbeKind,
    /// The probe's `terminationGracePeriodSeconds`; `None` uses the pod's.
    pub grace: Option<i64>,
    /// `Container <c> failed liveness probe, will be restarted` (the suffix only when the
    /// container may restart), the kubelet's kill message.
    pub message: String,
}

/// The kubelet's probe workers: start them with [`ProbeManager::update`], ask
/// [`ProbeManager::started`], [`ProbeManager::ready`] and [`ProbeManager::kill_request`], wake
/// on [`ProbeManager::changed`], record [`ProbeManager::take_events`]. Cheap to clone (one
/// shared state); its tasks need a Tokio runtime.
#[derive(Debug, Clone)]
pub struct ProbeManager {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: Option<CriClient>,
    start: Instant,
    registry: Mutex<Registry>,
    changed: watch::Sender<u64>,
    events: Mutex<VecDeque<PodEvent>>,
    live: AtomicUsize,
    ticks: AtomicU64,
    next_generation: AtomicU64,
    metrics: super::metrics::ProbeMetrics,
}

#[derive(Debug, Default)]
struct Registry {
    pods: HashMap<String, PodWorkers>,
}

#[derive(Debug)]
struct PodWorkers {
    input: watch::Sender<Arc<ProbeTarget>>,
    workers: HashMap<(String, ProbeKind), Worker>,
}

#[derive(Debug)]
struct Worker {
    generation: u64,
    /// `None` until the task is spawned (outside the registry's lock).
    abort: Option<AbortHandle>,
    finished: bool,
    trigger: Arc<Notify>,
    spec: Arc<ProbeSpec>,
    /// The published result and the container it is about.
    result: Option<(String, ProbeResult)>,
}

impl Worker {
    fn alive(&self) -> bool {
        !self.finished
    }

    fn result_for(&self, container_id: &str) -> Option<ProbeResult> {
        self.result
            .as_ref()
            .filter(|(id, _)| id == container_id)
            .map(|(_, r)| *r)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The containers that get probes: the regular ones and the restartable init containers
/// (sidecars), with whether each is a sidecar.
fn probed_containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let sidecars = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| (c, true));
    let regular = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| (c, false));
    sidecars.chain(regular)
}

impl ProbeManager {
    /// A manager whose exec probes run through `client`.
    #[must_use]
    pub fn new(client: CriClient) -> Self {
        Self::build(Some(client))
    }

    /// A manager without a container runtime: exec probes error (and are thrown away);
    /// httpGet, tcpSocket and grpc probes work.
    #[must_use]
    pub fn without_runtime() -> Self {
        Self::build(None)
    }

    fn build(client: Option<CriClient>) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                start: Instant::now(),
                registry: Mutex::new(Registry::default()),
                changed: watch::channel(0).0,
                events: Mutex::new(VecDeque::new()),
                live: AtomicUsize::new(0),
                ticks: AtomicU64::new(0),
                next_generation: AtomicU64::new(0),
                metrics: super::metrics::ProbeMetrics::default(),
            }),
        }
    }

    /// The probe metrics (`/metrics/probes`): clones share the counts.
    #[must_use]
    pub fn metrics(&self) -> super::metrics::ProbeMetrics {
        self.shared.metrics.clone()
    }

    /// The pods as the sync loop sees them now: starts a worker for each probe of each
    /// regular container and sidecar of a new pod, hands the current container instances to
    /// the workers (a new container ID resets their state at their next tick), and stops the
    /// workers of pods no longer listed. Must be called inside a Tokio runtime (else it logs
    /// and does nothing).
    pub fn update(&self, targets: Vec<ProbeTarget>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("ProbeManager::update called outside a Tokio runtime");
            return;
        };
        let mut aborts = Vec::new();
        let mut spawn = Vec::new();
        {
            let mut registry = lock(&self.shared.registry);
            let present: HashSet<String> = targets.iter().map(|t| t.uid.clone()).collect();
            registry.pods.retain(|uid, pod| {
                let keep = present.contains(uid);
                if !keep {
                    aborts.extend(pod.workers.values().filter_map(|w| w.abort.clone()));
                }
                keep
            });
            for target in targets {
                let target = Arc::new(target);
                let pod = registry
                    .pods
                    .entry(target.uid.clone())
                    .or_insert_with(|| PodWorkers {
                        input: watch::channel(target.clone()).0,
                        workers: HashMap::new(),
                    });
                pod.input.send_replace(target.clone());
                for (container, sidecar) in probed_containers(&target.pod) {
                    for kind in ProbeKind::ALL {
                        let Some(probe) = kind.probe_of(container) else {
                            continue;
                        };
                        let key = (container.name.clone(), kind);
                        if pod.workers.contains_key(&key) {
                            continue;
                        }
                        let spec = Arc::new(ProbeSpec::new(kind, probe));
                        if !spec.adjustments.is_empty() {
                            tracing::warn!(
                                pod = %format!("{}/{}", target.namespace, target.name),
                                container = %container.name,
                                probe = kind.name(),
                                adjustments = ?spec.adjustments,
                                "probe values out of range"
                            );
                        }
                        let generation =
                            self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
                        let trigger = Arc::new(Notify::new());
                        let task = WorkerTask {
                            shared: self.shared.clone(),
                            uid: target.uid.clone(),
                            key: key.clone(),
                            container: container.clone(),
                            sidecar,
                            spec: spec.clone(),
                            generation,
                            input: pod.input.subscribe(),
                            trigger: trigger.clone(),
                        };
                        spawn.push(task);
                        pod.workers.insert(
                            key,
                            Worker {
                                generation,
                                abort: None,
                                finished: false,
                                trigger,
                                spec,
                                result: None,
                            },
                        );
                    }
                }
                // The kubelet's UpdatePodStatus: a readiness probe with no result for the
                // current container runs now rather than at its next tick.
                for c in &target.containers {
                    let Some(id) = c.container_id.as_deref() else {
                        continue;
                    };
                    if c.running {
                        trigger_readiness(pod, &c.name, id);
                    }
                }
            }
        }
        for a in aborts {
            a.abort();
        }
        // Spawned outside the lock: a task dropped at once (a runtime shutting down) takes the
        // lock in its guard.
        for task in spawn {
            let (uid, key, generation) = (task.uid.clone(), task.key.clone(), task.generation);
            let guard = WorkerGuard::new(&self.shared, &uid, &key, generation);
            let handle = runtime.spawn(task.run(guard));
            let mut registry = lock(&self.shared.registry);
            match registry
                .pods
                .get_mut(&uid)
                .and_then(|p| p.workers.get_mut(&key))
                .filter(|w| w.generation == generation)
            {
                Some(w) => w.abort = Some(handle.abort_handle()),
                // Removed meanwhile.
                None => handle.abort(),
            }
        }
    }

    /// Stops the workers of pod `uid` and forgets its results.
    pub fn remove_pod(&self, uid: &str) {
        let removed = lock(&self.shared.registry).pods.remove(uid);
        for a in removed
            .iter()
            .flat_map(|p| p.workers.values())
            .filter_map(|w| w.abort.as_ref())
        {
            a.abort();
        }
    }

    /// Stops every worker and forgets every result.
    pub fn stop_all(&self) {
        let removed = std::mem::take(&mut lock(&self.shared.registry).pods);
        for a in removed
            .values()
            .flat_map(|p| p.workers.values())
            .filter_map(|w| w.abort.as_ref())
        {
            a.abort();
        }
    }

    /// Whether `container_id` of `container` in pod `uid` counts as started: it has no
    /// startup probe, or the startup probe succeeded for this instance. False for a
    /// container the last [`ProbeManager::update`] reported not running. (The kubelet's
    /// `isContainerStarted`.)
    #[must_use]
    pub fn started(&self, uid: &str, container: &str, container_id: &str) -> bool {
        let registry = lock(&self.shared.registry);
        let Some(pod) = registry.pods.get(uid) else {
            return true;
        };
        if known_not_running(pod, container, container_id) {
            return false;
        }
        started_in(pod, container, container_id)
    }

    /// Whether `container_id` of `container` in pod `uid` is ready: started, running, and
    /// its readiness probe succeeded for this instance, or it has no readiness probe (then
    /// running decides; the caller knows). Without a result yet, the readiness probe is run
    /// now. (The kubelet's `UpdatePodStatus`.)
    #[must_use]
    pub fn ready(&self, uid: &str, container: &str, container_id: &str) -> bool {
        let registry = lock(&self.shared.registry);
        let Some(pod) = registry.pods.get(uid) else {
            return true;
        };
        if known_not_running(pod, container, container_id)
            || !started_in(pod, container, container_id)
        {
            return false;
        }
        match pod
            .workers
            .get(&(container.to_owned(), ProbeKind::Readiness))
            .filter(|w| w.alive())
        {
            None => true,
            Some(w) => match w.result_for(container_id) {
                Some(r) => r == ProbeResult::Success,
                None => {
                    w.trigger.notify_one();
                    false
                }
            },
        }
    }

    /// The restart a failed liveness (or startup) probe asks for `container_id`, if any.
    /// `None` for another instance of the container or one the last
    /// [`ProbeManager::update`] reported not running.
    #[must_use]
    pub fn kill_request(
        &self,
        uid: &str,
        container: &str,
        container_id: &str,
    ) -> Option<ProbeKill> {
        let registry = lock(&self.shared.registry);
        let pod = registry.pods.get(uid)?;
        if known_not_running(pod, container, container_id) {
            return None;
        }
        let (kind, worker) = [ProbeKind::Liveness, ProbeKind::Startup]
            .into_iter()
            .filter_map(|k| pod.workers.get(&(container.to_owned(), k)).map(|w| (k, w)))
            .find(|(_, w)| w.result_for(container_id) == Some(ProbeResult::Failure))?;
        let may_restart = pod
            .input
            .borrow()
            .containers
            .iter()
            .find(|c| c.name == container)
            .is_none_or(|c| c.may_restart);
        let what = match kind {
            ProbeKind::Startup => "startup",
            _ => "liveness",
        };
        let mut message = format!("Container {container} failed {what} probe");
        if may_restart {
            message.push_str(", will be restarted");
        }
        Some(ProbeKill {
            probe: kind,
            grace: worker.spec.termination_grace_seconds,
            message,
        })
    }

    /// The published result of a probe for `container_id` (`None`: no such probe or no
    /// result for this instance yet).
    #[must_use]
    pub fn result(
        &self,
        uid: &str,
        container: &str,
        kind: ProbeKind,
        container_id: &str,
    ) -> Option<ProbeResult> {
        let registry = lock(&self.shared.registry);
        registry
            .pods
            .get(uid)?
            .workers
            .get(&(container.to_owned(), kind))?
            .result_for(container_id)
    }

    /// A counter bumped whenever a published result changes: the sync loop waits on it to
    /// restart a container or update readiness.
    #[must_use]
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// The probe events since the last call, oldest first: `Unhealthy` (`Liveness probe
    /// failed: <output>`, `... probe errored and resulted in unknown state: <error>`) and
    /// `ProbeWarning` (`... probe warning: <output>`), all `Warning`s. At most
    /// [`MAX_EVENTS`] are kept.
    #[must_use]
    pub fn take_events(&self) -> Vec<PodEvent> {
        lock(&self.shared.events).drain(..).collect()
    }

    /// How many worker tasks are running.
    #[must_use]
    pub fn worker_count(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// How many times workers have woken up in total (each wake-up is one tick: a probe or a
    /// decision not to probe); for tests and debugging.
    #[must_use]
    pub fn tick_count(&self) -> u64 {
        self.shared.ticks.load(Ordering::SeqCst)
    }
}

fn known_not_running(pod: &PodWorkers, container: &str, container_id: &str) -> bool {
    pod.input.borrow().containers.iter().any(|c| {
        c.name == container && c.container_id.as_deref() == Some(container_id) && !c.running
    })
}

fn started_in(pod: &PodWorkers, container: &str, container_id: &str) -> bool {
    match pod.workers.get(&(container.to_owned(), ProbeKind::Startup)) {
        None => true,
        Some(w) => match w.result_for(container_id) {
            Some(r) => r == ProbeResult::Success,
            None => !w.alive(),
        },
    }
}

fn trigger_readiness(pod: &PodWorkers, container: &str, container_id: &str) {
    if !started_in(pod, container, container_id) {
        return;
    }
    if let Some(w) = pod
        .workers
        .get(&(container.to_owned(), ProbeKind::Readiness))
        .filter(|w| w.alive() && w.result_for(container_id).is_none())
    {
        w.trigger.notify_one();
    }
}

impl Shared {
    /// Publishes `result` for `container_id` from worker `generation`; bumps the change
    /// counter when it differs from what was published.
    fn publish(
        &self,
        uid: &str,
        key: &(String, ProbeKind),
        generation: u64,
        id: &str,
        result: ProbeResult,
    ) {
        let mut registry = lock(&self.registry);
        let Some(w) = registry
            .pods
            .get_mut(uid)
            .and_then(|p| p.workers.get_mut(key))
            .filter(|w| w.generation == generation)
        else {
            return;
        };
        if w.result_for(id) == Some(result) {
            return;
        }
        w.result = Some((id.to_owned(), result));
        drop(registry);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn started(&self, uid: &str, container: &str, container_id: &str) -> bool {
        let registry = lock(&self.registry);
        registry
            .pods
            .get(uid)
            .is_none_or(|p| started_in(p, container, container_id))
    }

    fn event(&self, event: PodEvent) {
        let mut events = lock(&self.events);
        while events.len() >= MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }
}

/// Marks the worker finished and forgets its result when its task ends (returns or is
/// aborted), as the kubelet's worker does on exit.
struct WorkerGuard {
    shared: Arc<Shared>,
    uid: String,
    key: (String, ProbeKind),
    generation: u64,
}

impl WorkerGuard {
    /// Counts a live worker until the guard is dropped.
    fn new(shared: &Arc<Shared>, uid: &str, key: &(String, ProbeKind), generation: u64) -> Self {
        shared.live.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: shared.clone(),
            uid: uid.to_owned(),
            key: key.clone(),
            generation,
        }
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::SeqCst);
        let mut registry = lock(&self.shared.registry);
        let changed = registry
            .pods
            .get_mut(&self.uid)
            .and_then(|p| p.workers.get_mut(&self.key))
            .filter(|w| w.generation == self.generation)
            .is_some_and(|w| {
                w.finished = true;
                w.result.take().is_some()
            });
        drop(registry);
        if changed {
            self.shared.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// Removes a worker's metric series when dropped.
struct RemoveSeries {
    metrics: super::metrics::ProbeMetrics,
    series: super::metrics::ProbeSeries,
}

impl Drop for RemoveSeries {
    fn drop(&mut self) {
        self.metrics.remove(&self.series);
    }
}

struct WorkerTask {
    shared: Arc<Shared>,
    uid: String,
    key: (String, ProbeKind),
    container: Container,
    sidecar: bool,
    spec: Arc<ProbeSpec>,
    generation: u64,
    input: watch::Receiver<Arc<ProbeTarget>>,
    trigger: Arc<Notify>,
}

impl WorkerTask {
    /// The worker's loop; `_guard` (made before the task is spawned, so a task dropped
    /// before its first poll is counted out too) marks the worker finished when it ends.
    async fn run(self, _guard: WorkerGuard) {
        // The kubelet deletes a worker's series when it stops; dropped also when the task is
        // aborted.
        let _series = RemoveSeries {
            metrics: self.shared.metrics.clone(),
            series: self.series(&self.input.borrow().clone()),
        };
        let key = self.key.clone();
        let mut state = WorkerState::new(&self.spec);
        let delay = first_probe_delay(
            self.spec.period,
            self.shared.start.elapsed(),
            cheap_random(&format!("{}/{}", self.uid, self.container.name)),
        );
        // Not cut short by a trigger (which stays pending and runs right after): after an
        // agent restart every readiness worker is triggered, and the jitter spreads them.
        tokio::time::sleep(delay).await;
        let mut ticker = tokio::time::interval(self.spec.period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // The first tick of an interval is immediate: that is this first probe.
        ticker.tick().await;
        loop {
            self.shared.ticks.fetch_add(1, Ordering::SeqCst);
            if !self.tick(&key, &mut state).await {
                break;
            }
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.trigger.notified() => ticker.reset(),
            }
        }
    }

    fn series(&self, target: &ProbeTarget) -> super::metrics::ProbeSeries {
        super::metrics::ProbeSeries {
            namespace: target.namespace.clone(),
            pod: target.name.clone(),
            pod_uid: self.uid.clone(),
            container: self.container.name.clone(),
            kind: self.spec.kind,
        }
    }

    /// One tick; false when the worker is done.
    async fn tick(&self, key: &(String, ProbeKind), state: &mut WorkerState) -> bool {
        let target = self.input.borrow().clone();
        let current = target
            .containers
            .iter()
            .find(|c| c.name == self.container.name);
        let id = current.and_then(|c| c.container_id.as_deref());
        let input = TickInput {
            container_id: id,
            running: current.is_some_and(|c| c.running),
            running_since: current.and_then(|c| c.running_since),
            may_restart: current.is_some_and(|c| c.may_restart),
            started: id.is_some_and(|id| self.shared.started(&self.uid, &self.container.name, id)),
            deleting: target.deleting,
            terminal: target.terminal,
        };
        let tick = state.tick(&input, SystemTime::now());
        let publish = |result| {
            if let Some(id) = state.container_id() {
                self.shared
                    .publish(&self.uid, key, self.generation, id, result);
            }
        };
        if let Some(result) = tick.publish {
            publish(result);
        }
        match tick.action {
            Action::Exit => return false,
            Action::Wait => return true,
            Action::Probe => {}
        }
        let Some(id) = state.container_id().map(str::to_owned) else {
            return true;
        };
        let ctx = ProbeContext {
            container: &self.container,
            container_id: &id,
            pod_ip: target.pod_ip.as_deref(),
        };
        let began = Instant::now();
        let outcome = run_probe(self.shared.client.as_ref(), &self.spec, ctx).await;
        let run = match outcome.result() {
            Some(ProbeResult::Success) => Some(super::metrics::RunResult::Successful),
            Some(ProbeResult::Failure) => Some(super::metrics::RunResult::Failed),
            Some(ProbeResult::Unknown) => Some(super::metrics::RunResult::Unknown),
            // A probe error is thrown away before it is counted, as in the kubelet.
            None => None,
        };
        if let Some(run) = run {
            self.shared
                .metrics
                .observe(&self.series(&target), run, began.elapsed());
        }
        self.record_event(&target, &outcome);
        if let Some(result) = state.record(outcome.result()) {
            self.shared
                .publish(&self.uid, key, self.generation, &id, result);
        }
        true
    }

    /// The kubelet's events for one probe run (`prober.go` `probe`).
    fn record_event(&self, target: &ProbeTarget, outcome: &ProbeOutcome) {
        let kind = self.spec.kind.name();
        let (reason, message) = match outcome {
            ProbeOutcome::Success(_) => return,
            ProbeOutcome::Warning(out) => ("ProbeWarning", format!("{kind} probe warning: {out}")),
            ProbeOutcome::Failure(out) => ("Unhealthy", format!("{kind} probe failed: {out}")),
            ProbeOutcome::Error(e) => (
                "Unhealthy",
                format!("{kind} probe errored and resulted in unknown state: {e}"),
            ),
        };
        let field = if self.sidecar {
            "initContainers"
        } else {
            "containers"
        };
        self.shared.event(PodEvent {
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            uid: target.uid.clone(),
            field_path: Some(format!("spec.{field}{{{}}}", self.container.name)),
            warning: true,
            reason: reason.to_owned(),
            message,
        });
    }
}
