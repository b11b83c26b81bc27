//! Hollow nodes: many simulated nodes in one process, for control-plane scale tests.
//!
//! Each hollow node runs the agent's own [`LeaseController`] and [`NodeStatusReporter`] at the
//! kubelet's intervals: it registers its Node (with back-off), renews its Lease every
//! `0.25 × leaseDurationSeconds` with 4% jitter and an owner reference to the Node, computes its
//! status every `nodeStatusUpdateFrequency` and PATCHes it when it changed or every
//! `nodeStatusReportFrequency`. What is simulated is the machine and the runtime: every node
//! has the same configured capacity, a runtime that always answers, and no pods.
//!
//! What is shared is what a scale tool should share and N kubelets cannot: one API client with
//! one connection pool for the whole fleet, with at most `max_in_flight` requests at a time (so
//! at most that many connections, whatever the fleet's size), and one set of counters. A
//! node's own state is its two loops and the objects they keep (the last Node and Lease seen).
//! Nodes start at `start_rate` per second, so a fleet's renewals spread over the period instead
//! of arriving together, as they do from nodes that booted at different times.
//!
//! The fleet records, per node, when its lease was last renewed, and reports the longest gap
//! between two renewals of any node ([`FleetHandle::snapshot`]): the figure that tells whether the
//! fleet keeps up (the node lifecycle controller marks a node unreachable after its 40 s lease
//! plus grace period; a kubelet renews every 10 s).
//!
//! ```no_run
//! use std::time::Duration;
//! use node_heartbeat::hollow::{Fleet, FleetConfig};
//! use node_heartbeat::KubeBackend;
//!
//! # async fn run() -> node_heartbeat::Result<()> {
//! let backend = KubeBackend::from_kubeconfig("/root/.kube/config".as_ref(), Duration::from_secs(10)).await?;
//! let fleet = Fleet::new(backend, FleetConfig::new("hollow-", 1000))?;
//! let stats = fleet.stats();
//! let run = tokio::spawn(fleet.run(async { let _ = tokio::signal::ctrl_c().await; }));
//! tokio::time::sleep(Duration::from_secs(60)).await;
//! println!("after a minute: {:?}", stats.snapshot());
//! println!("at the end: {:?}", run.await);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::conditions::RuntimeHealth;
use crate::error::{Error, Result};
use crate::labels::{is_dns1123_subdomain, validate_label_value, validate_node_labels};
use crate::lease::{LeaseConfig, LeaseController};
use crate::machine::MachineFacts;
use crate::resources::CapacityConfig;
use crate::status::{NodeStatusInputs, RuntimeVersion};
use crate::status_loop::{NodeStatusReporter, StatusConfig, StatusSource};

/// The most nodes one fleet runs (a `u32` index space, bounded so counters stay small).
pub const MAX_FLEET_NODES: u32 = 1_000_000;

/// The shortest interval between two client rebuilds on repeated failures: the kubelet drops
/// its connections when its own heartbeats fail, but in a fleet one node's failure would
/// otherwise drop everyone's pool thousands of times a second.
pub const MIN_REBUILD_INTERVAL: Duration = Duration::from_secs(5);

/// What a fleet simulates and how fast it starts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FleetConfig {
    /// Node names are `<name_prefix><index>`, the index zero-padded to 5 digits.
    pub name_prefix: String,
    /// How many nodes.
    pub count: u32,
    /// The first index (to run several fleets against one cluster without name clashes).
    pub first_index: u32,
    /// Logical CPUs each node reports.
    pub num_cores: u32,
    /// Memory each node reports, in bytes.
    pub memory_bytes: u64,
    /// `maxPods`.
    pub max_pods: i64,
    /// `ephemeral-storage` capacity, in bytes.
    pub ephemeral_storage_bytes: u64,
    /// Labels added to the kubelet's default labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// `nodeLeaseDurationSeconds` (40); the lease is renewed every quarter of it.
    pub lease_duration_seconds: i32,
    /// `nodeStatusUpdateFrequency` (10 s).
    pub update_frequency: Duration,
    /// `nodeStatusReportFrequency` (5 min).
    pub report_frequency: Duration,
    /// Nodes started per second (500).
    pub start_rate: u32,
    /// API requests in flight at most, fleet-wide (32): the connection pool's bound.
    pub max_in_flight: u32,
}

impl FleetConfig {
    /// `count` nodes named `<prefix>00000`, `<prefix>00001`, ... with the kubelet's intervals,
    /// 4 CPUs, 16 GiB, 110 pods and 100 GiB of ephemeral storage each.
    pub fn new(name_prefix: impl Into<String>, count: u32) -> Self {
        FleetConfig {
            name_prefix: name_prefix.into(),
            count,
            first_index: 0,
            num_cores: 4,
            memory_bytes: 16 << 30,
            max_pods: 110,
            ephemeral_storage_bytes: 100 << 30,
            labels: BTreeMap::new(),
            lease_duration_seconds: 40,
            update_frequency: Duration::from_secs(10),
            report_frequency: Duration::from_secs(300),
            start_rate: 500,
            max_in_flight: 32,
        }
    }

    /// The name of the node with index `index` (`first_index <= index`).
    pub fn node_name(&self, index: u32) -> String {
        node_name(&self.name_prefix, index)
    }

    /// The index of the node called `name`, relative to `first_index`, when it is one of ours.
    fn slot(&self, name: &str) -> Option<usize> {
        let digits = name.strip_prefix(self.name_prefix.as_str())?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: u32 = digits.parse().ok()?;
        let slot = index.checked_sub(self.first_index)?;
        (slot < self.count).then_some(slot as usize)
    }

    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Err(Error::Fleet {
                field,
                value,
                reason: reason.to_owned(),
            })
        };
        if self.count == 0 || self.count > MAX_FLEET_NODES {
            return bad(
                "count",
                self.count.to_string(),
                &format!("must be between 1 and {MAX_FLEET_NODES}"),
            );
        }
        let Some(last) = self.first_index.checked_add(self.count - 1) else {
            return bad(
                "first_index",
                self.first_index.to_string(),
                "first_index + count overflows",
            );
        };
        // The longest name must be a node name and, as the hostname label's value, a label value.
        let longest = self.node_name(last);
        if !is_dns1123_subdomain(&longest) {
            return bad(
                "name_prefix",
                self.name_prefix.clone(),
                &format!(
                    "node name {longest:?} must be a lowercase RFC 1123 subdomain (lower case alphanumerics, '-' or '.', starting and ending with an alphanumeric)"
                ),
            );
        }
        if let Err(e) = validate_label_value(&longest) {
            return bad(
                "name_prefix",
                self.name_prefix.clone(),
                &format!("node name {longest:?} is the kubernetes.io/hostname label value: {e}"),
            );
        }
        validate_node_labels(&self.labels)?;
        if self.num_cores == 0 {
            return bad("num_cores", "0".into(), "must be at least 1");
        }
        if self.memory_bytes == 0 {
            return bad("memory_bytes", "0".into(), "must be positive");
        }
        if self.max_pods < 0 {
            return bad(
                "max_pods",
                self.max_pods.to_string(),
                "must not be negative",
            );
        }
        if self.lease_duration_seconds <= 0 {
            return bad(
                "lease_duration_seconds",
                self.lease_duration_seconds.to_string(),
                "must be positive",
            );
        }
        for (field, d) in [
            ("update_frequency", self.update_frequency),
            ("report_frequency", self.report_frequency),
        ] {
            if d < Duration::from_millis(100) || d > Duration::from_secs(24 * 3600) {
                return bad(field, format!("{d:?}"), "must be between 100ms and 24h");
            }
        }
        if self.start_rate == 0 {
            return bad(
                "start_rate",
                "0".into(),
                "must be at least 1 node per second",
            );
        }
        if self.max_in_flight == 0 || self.max_in_flight > 4096 {
            return bad(
                "max_in_flight",
                self.max_in_flight.to_string(),
                "must be between 1 and 4096",
            );
        }
        Ok(())
    }
}

/// `<prefix><index>`, the index zero-padded to 5 digits.
pub fn node_name(prefix: &str, index: u32) -> String {
    format!("{prefix}{index:05}")
}

/// A 32-hex-digit identifier derived from a node name and a salt (FNV-1a, 128 bits from two
/// 64-bit hashes): stable across runs, distinct per node.
fn derived_id(name: &str, salt: u8) -> String {
    let fnv = |seed: u64| {
        let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
        for b in name.bytes().chain([salt]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    format!("{:016x}{:016x}", fnv(1), fnv(2))
}

/// Counters of a running fleet, shared by its backend and its [`FleetHandle`]s.
#[derive(Debug)]
struct FleetStats {
    start: Instant,
    /// Nodes started so far.
    started: AtomicU64,
    /// The renewal age past which a held lease counts as overdue.
    overdue_after: Duration,
    registered: AtomicU64,
    lease_renewals: AtomicU64,
    status_patches: AtomicU64,
    requests: AtomicU64,
    request_errors: AtomicU64,
    /// Per node: milliseconds since `start` of the last renewal, plus one (0: never).
    last_renewal: Box<[AtomicU64]>,
    max_gap_ms: AtomicU64,
}

/// A point-in-time view of a fleet's counters ([`FleetHandle::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    /// Nodes in the fleet.
    pub nodes: u64,
    /// Nodes started so far.
    pub started: u64,
    /// Registrations that succeeded (created, or found existing).
    pub registered: u64,
    /// Nodes whose lease has been renewed at least once.
    pub leases_held: u64,
    /// Lease creations and renewals since the last reset.
    pub lease_renewals: u64,
    /// Status PATCHes since the last reset.
    pub status_patches: u64,
    /// API requests since the last reset.
    pub requests: u64,
    /// Failed API requests since the last reset (including expected conflicts and not-found).
    pub request_errors: u64,
    /// The longest time between two renewals of one lease that ended since the last reset, or
    /// the longest time a held lease has now gone without renewal, whichever is longer (ms).
    pub max_renewal_gap_ms: u64,
    /// Held leases not renewed within `overdue_after` at the time of the snapshot.
    pub overdue: u64,
}

impl FleetStats {
    fn new(count: u32, overdue_after: Duration) -> Self {
        FleetStats {
            start: Instant::now(),
            started: AtomicU64::new(0),
            overdue_after,
            registered: AtomicU64::new(0),
            lease_renewals: AtomicU64::new(0),
            status_patches: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            request_errors: AtomicU64::new(0),
            last_renewal: (0..count).map(|_| AtomicU64::new(0)).collect(),
            max_gap_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn renewed(&self, slot: usize) {
        let now = self.now_ms().saturating_add(1);
        if let Some(cell) = self.last_renewal.get(slot) {
            let before = cell.swap(now, Ordering::Relaxed);
            if before != 0 {
                self.max_gap_ms
                    .fetch_max(now.saturating_sub(before), Ordering::Relaxed);
            }
        }
        self.lease_renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// See [`FleetHandle::reset`].
    fn reset(&self) {
        for c in [
            &self.lease_renewals,
            &self.status_patches,
            &self.requests,
            &self.request_errors,
            &self.max_gap_ms,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The counters now.
    fn snapshot(&self) -> FleetReport {
        let now = self.now_ms().saturating_add(1);
        let limit = u64::try_from(self.overdue_after.as_millis()).unwrap_or(u64::MAX);
        let mut held = 0;
        let mut overdue = 0;
        let mut open_gap = 0;
        for cell in self.last_renewal.iter() {
            let last = cell.load(Ordering::Relaxed);
            if last == 0 {
                continue;
            }
            held += 1;
            let age = now.saturating_sub(last);
            open_gap = open_gap.max(age);
            if age > limit {
                overdue += 1;
            }
        }
        FleetReport {
            nodes: self.last_renewal.len() as u64,
            started: self.started.load(Ordering::Relaxed),
            registered: self.registered.load(Ordering::Relaxed),
            leases_held: held,
            lease_renewals: self.lease_renewals.load(Ordering::Relaxed),
            status_patches: self.status_patches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            request_errors: self.request_errors.load(Ordering::Relaxed),
            max_renewal_gap_ms: self.max_gap_ms.load(Ordering::Relaxed).max(open_gap),
            overdue,
        }
    }
}

/// The fleet's one backend: a bound on requests in flight, counters, and rate-limited client
/// rebuilds, in front of the real backend.
#[derive(Debug)]
struct FleetBackend<B> {
    inner: B,
    gate: Semaphore,
    cfg: Arc<FleetConfig>,
    stats: Arc<FleetStats>,
    last_rebuild_ms: AtomicU64,
}

impl<B: Backend> FleetBackend<B> {
    async fn call<T>(&self, op: impl Future<Output = Result<T>>) -> Result<T> {
        // The semaphore is never closed; a closed one would only lift the bound.
        let _permit = self.gate.acquire().await.ok();
        let r = op.await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if r.is_err() {
            self.stats.request_errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn lease_renewed(&self, lease: &Lease) {
        if let Some(slot) = lease
            .metadata
            .name
            .as_deref()
            .and_then(|n| self.cfg.slot(n))
        {
            self.stats.renewed(slot);
        }
    }
}

impl<B: Backend> Backend for FleetBackend<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get_lease(&self, name: &str) -> Result<Lease> {
        self.call(self.inner.get_lease(name)).await
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let r = self.call(self.inner.create_lease(lease)).await;
        if r.is_ok() {
            self.lease_renewed(lease);
        }
        r
    }

    async fn update_lease(&self, lease: &Lease) -> Result<Lease> {
        let r = self.call(self.inner.update_lease(lease)).await;
        if r.is_ok() {
            self.lease_renewed(lease);
        }
        r
    }

    async fn get_node(&self, name: &str) -> Result<Node> {
        self.call(self.inner.get_node(name)).await
    }

    async fn create_node(&self, node: &Node) -> Result<Node> {
        let r = self.call(self.inner.create_node(node)).await;
        match &r {
            Ok(_) => {
                self.stats.registered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.api_kind() == Some(crate::ApiErrorKind::AlreadyExists) => {
                self.stats.registered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        r
    }

    async fn patch_node_status(&self, name: &str, patch: &serde_json::Value) -> Result<Node> {
        let r = self.call(self.inner.patch_node_status(name, patch)).await;
        if r.is_ok() {
            self.stats.status_patches.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn on_repeated_failure(&self) {
        let now = self.stats.now_ms();
        let min = u64::try_from(MIN_REBUILD_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_rebuild_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= min)
            && self
                .last_rebuild_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.inner.on_repeated_failure();
        }
    }

    fn supports_lease(&self) -> bool {
        self.inner.supports_lease()
    }
}

/// A hollow node's status source: the configured machine, a runtime that always answers.
#[derive(Debug)]
struct HollowSource {
    /// Boxed: the status loop's future holds its source twice (see `NodeStatusReporter`).
    inputs: Box<NodeStatusInputs>,
    cfg: Arc<FleetConfig>,
}

impl HollowSource {
    fn new(name: String, cfg: Arc<FleetConfig>) -> Self {
        let machine = MachineFacts {
            num_cores: cfg.num_cores,
            memory_bytes: cfg.memory_bytes,
            hugepages: Vec::new(),
            machine_id: derived_id(&name, b'm'),
            system_uuid: derived_id(&name, b'u'),
            boot_id: derived_id(&name, b'b'),
            kernel_version: "hollow".into(),
            os_image: "Hollow Node".into(),
        };
        let mut inputs = NodeStatusInputs::new(name.clone(), machine);
        inputs.addresses = vec![NodeAddress {
            type_: "Hostname".into(),
            address: name,
        }];
        inputs.capacity = CapacityConfig {
            max_pods: cfg.max_pods,
            ephemeral_storage_bytes: Some(cfg.ephemeral_storage_bytes),
            ..CapacityConfig::default()
        };
        inputs.runtime_version = Some(RuntimeVersion {
            name: "hollow".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        });
        HollowSource {
            inputs: Box::new(inputs),
            cfg,
        }
    }
}

impl StatusSource for HollowSource {
    fn initial_node(&mut self) -> Result<Node> {
        let mono = Instant::now();
        self.inputs.runtime_health = RuntimeHealth::healthy(mono);
        let i = &self.inputs;
        i.initial_node(
            &i.node_name,
            &self.cfg.labels,
            Vec::new(),
            Timestamp::now(),
            mono,
        )
    }

    fn status(&mut self, previous: &NodeStatus) -> Result<NodeStatus> {
        let mono = Instant::now();
        self.inputs.runtime_health = RuntimeHealth::healthy(mono);
        self.inputs.compute(previous, Timestamp::now(), mono)
    }
}

/// A fleet of hollow nodes over one backend.
#[derive(Debug)]
pub struct Fleet<B> {
    backend: Arc<FleetBackend<B>>,
    cfg: Arc<FleetConfig>,
    stats: Arc<FleetStats>,
}

/// Where a running fleet stands: its counters and how many nodes it has started.
#[derive(Debug, Clone)]
pub struct FleetHandle {
    stats: Arc<FleetStats>,
}

impl FleetHandle {
    /// The counters now; a lease is overdue when older than the renewal interval plus 10%.
    pub fn snapshot(&self) -> FleetReport {
        self.stats.snapshot()
    }

    /// Starts a new measurement window: the counters and the longest gap restart from zero
    /// (the per-node renewal times are kept, so a gap that ends in the window counts whole).
    pub fn reset(&self) {
        self.stats.reset();
    }
}

impl<B: Backend> Fleet<B> {
    /// A fleet over `backend` (shared by every node). Fails when `cfg` does not validate.
    pub fn new(backend: B, cfg: FleetConfig) -> Result<Self> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let renew = Duration::from_secs_f64(f64::from(cfg.lease_duration_seconds) / 4.0);
        let stats = Arc::new(FleetStats::new(cfg.count, renew + renew / 10));
        Ok(Fleet {
            backend: Arc::new(FleetBackend {
                inner: backend,
                gate: Semaphore::new(cfg.max_in_flight as usize),
                cfg: cfg.clone(),
                stats: stats.clone(),
                last_rebuild_ms: AtomicU64::new(0),
            }),
            cfg,
            stats,
        })
    }

    /// The fleet's counters, for watching it while it runs.
    pub fn stats(&self) -> FleetHandle {
        FleetHandle {
            stats: self.stats.clone(),
        }
    }

    /// Starts the nodes at `start_rate` per second and runs them until `shutdown`; then stops
    /// every loop and returns the counters as they were when `shutdown` resolved (before the
    /// loops stopped, so stopping thousands of them does not show as late leases). Nodes are
    /// left registered (as kubelets that stop are).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> FleetReport {
        let handle = self.stats();
        tokio::pin!(shutdown);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        // Start in ticks of 10 ms, carrying the fraction, so any rate is honoured on average.
        let tick = Duration::from_millis(10);
        let per_tick = f64::from(self.cfg.start_rate) / 100.0;
        let mut budget = 0.0_f64;
        let mut next = 0_u32;
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while next < self.cfg.count {
            tokio::select! {
                () = &mut shutdown => {
                    let report = handle.snapshot();
                    let _ = stop_tx.send(true);
                    while tasks.join_next().await.is_some() {}
                    return report;
                }
                _ = interval.tick() => {}
            }
            budget += per_tick;
            while budget >= 1.0 && next < self.cfg.count {
                budget -= 1.0;
                self.spawn_node(&mut tasks, next, &stop_rx);
                next += 1;
                self.stats.started.store(u64::from(next), Ordering::Relaxed);
            }
        }
        shutdown.await;
        let report = handle.snapshot();
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        report
    }

    fn spawn_node(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        slot: u32,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        let name = self.cfg.node_name(self.cfg.first_index + slot);
        let lease = LeaseController::new(
            self.backend.clone(),
            LeaseConfig::new(name.clone(), self.cfg.lease_duration_seconds),
        );
        let status = StatusConfig::new(name.clone())
            .with_update_frequency(self.cfg.update_frequency)
            .with_report_frequency(self.cfg.report_frequency);
        let reporter = NodeStatusReporter::new(
            self.backend.clone(),
            HollowSource::new(name, self.cfg.clone()),
            status,
        );
        tasks.spawn(reporter.run(node_util::stopped(stop.clone())));
        tasks.spawn(lease.run(node_util::stopped(stop.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slots() {
        let mut cfg = FleetConfig::new("hollow-", 3);
        cfg.first_index = 7;
        assert_eq!(cfg.node_name(7), "hollow-00007");
        assert_eq!(node_name("n", 123_456), "n123456");
        assert_eq!(cfg.slot("hollow-00007"), Some(0));
        assert_eq!(cfg.slot("hollow-00009"), Some(2));
        for other in [
            "hollow-00010",
            "hollow-00006",
            "hollow-",
            "hollow-0000x",
            "other-00007",
            "hollow-+0007",
            "hollow-99999999999999999999",
        ] {
            assert_eq!(cfg.slot(other), None, "{other}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = FleetConfig::new("hollow-node-", 10_000);
        ok.validate().unwrap();
        let cases: Vec<(FleetConfig, &str)> = vec![
            (FleetConfig::new("hollow-", 0), "count"),
            (FleetConfig::new("hollow-", MAX_FLEET_NODES + 1), "count"),
            (FleetConfig::new("Hollow-", 1), "name_prefix"),
            (FleetConfig::new("hollow_", 1), "name_prefix"),
            (FleetConfig::new("-hollow", 1), "name_prefix"),
            (FleetConfig::new("a".repeat(60), 1), "name_prefix"),
            (
                FleetConfig {
                    first_index: u32::MAX,
                    ..FleetConfig::new("h-", 2)
                },
                "first_index",
            ),
            (
                FleetConfig {
                    start_rate: 0,
                    ..FleetConfig::new("h-", 2)
                },
                "start_rate",
            ),
            (
                FleetConfig {
                    max_in_flight: 0,
                    ..FleetConfig::new("h-", 2)
                },
                "max_in_flight",
            ),
            (
                FleetConfig {
                    lease_duration_seconds: 0,
                    ..FleetConfig::new("h-", 2)
                },
                "lease_duration_seconds",
            ),
            (
                FleetConfig {
                    update_frequency: Duration::from_millis(1),
                    ..FleetConfig::new("h-", 2)
                },
                "update_frequency",
            ),
            (
                FleetConfig {
                    num_cores: 0,
                    ..FleetConfig::new("h-", 2)
                },
                "num_cores",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.validate() {
                Err(Error::Fleet { field: f, .. }) => assert_eq!(f, field, "{cfg:?}"),
                other => panic!("{cfg:?}: {other:?}"),
            }
        }
        let mut labels = FleetConfig::new("h-", 1);
        labels
            .labels
            .insert("kubernetes.io/made-up".into(), "x".into());
        assert!(matches!(labels.validate(), Err(Error::NodeLabels { .. })));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id("hollow-00000", b'm');
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, derived_id("hollow-00000", b'm'));
        assert_ne!(a, derived_id("hollow-00001", b'm'));
        assert_ne!(a, derived_id("hollow-00000", b'u'));
    }

    #[test]
    fn gaps_and_overdue() {
        // The sleep only makes time pass (a lower bound); the overdue age leaves node 0, renewed
        // just before the snapshot, 300 ms of slack on a busy machine.
        let stats = FleetStats::new(3, Duration::from_millis(300));
        stats.renewed(0);
        stats.renewed(1);
        std::thread::sleep(Duration::from_millis(600));
        stats.renewed(0);
        let r = stats.snapshot();
        assert_eq!(r.leases_held, 2);
        assert_eq!(r.lease_renewals, 3);
        // Node 1 has gone 600+ ms without renewal: it is overdue and its open gap counts.
        assert_eq!(r.overdue, 1);
        assert!(r.max_renewal_gap_ms >= 600, "{r:?}");
        // A new window restarts the counters but keeps when each lease was last renewed.
        stats.reset();
        let r = stats.snapshot();
        assert_eq!((r.lease_renewals, r.overdue), (0, 1));
        assert!(r.max_renewal_gap_ms >= 600, "{r:?}");
        // Out-of-range slots are ignored.
        stats.renewed(99);
        // Within the overdue age nothing is overdue.
        let relaxed = FleetStats::new(3, Duration::from_secs(60));
        relaxed.renewed(1);
        let r = relaxed.snapshot();
        assert_eq!((r.leases_held, r.overdue), (1, 0));
    }

    #[test]
    fn a_hollow_node_is_ready_with_the_configured_machine() {
        let mut cfg = FleetConfig::new("hollow-", 1);
        cfg.labels.insert("pool".into(), "hollow".into());
        let cfg = Arc::new(cfg);
        let mut src = HollowSource::new("hollow-00000".into(), cfg);
        let node = src.initial_node().unwrap();
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "hollow-00000");
        assert_eq!(labels["pool"], "hollow");
        let status = node.status.unwrap();
        let ready = crate::find_condition(&status, "Ready").unwrap();
        assert_eq!(ready.status, "True");
        let cap = status.capacity.unwrap();
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(cap["memory"].0, "16Gi");
        assert_eq!(cap["pods"].0, "110");
        let info = status.node_info.unwrap();
        assert_eq!(
            info.container_runtime_version,
            format!("hollow://{}", env!("CARGO_PKG_VERSION"))
        );
        let again = src.status(&NodeStatus::default()).unwrap();
        assert_eq!(
            crate::find_condition(&again, "Ready").unwrap().status,
            "True"
        );
    }
}
#[cfg(test)]
mod size_tests {
    use super::*;

    /// A node's memory is mostly its two loops' futures, held for as long as it runs. They stay
    /// small because the request futures (10-13 KiB) are boxed for the time of a call and the
    /// large objects the loops keep (Node, Lease, inputs) are boxed too.
    #[tokio::test]
    async fn an_idle_hollow_node_holds_small_futures() {
        let cfg = Arc::new(FleetConfig::new("h-", 1));
        let backend = Arc::new(FleetBackend {
            inner: crate::KubeBackend::for_url("http://127.0.0.1:1", Duration::from_secs(1))
                .unwrap(),
            gate: Semaphore::new(1),
            cfg: cfg.clone(),
            stats: Arc::new(FleetStats::new(1, Duration::from_secs(11))),
            last_rebuild_ms: AtomicU64::new(0),
        });
        let lease = LeaseController::new(backend.clone(), LeaseConfig::new("h-00000", 40));
        let reporter = NodeStatusReporter::new(
            backend,
            HollowSource::new("h-00000".into(), cfg),
            StatusConfig::new("h-00000"),
        );
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let status_loop = reporter.run(node_util::stopped(rx.clone()));
        let lease_loop = lease.run(node_util::stopped(rx));
        let (a, b) = (
            std::mem::size_of_val(&status_loop),
            std::mem::size_of_val(&lease_loop),
        );
        assert!(
            a <= 2048 && b <= 1024,
            "status loop {a} B, lease loop {b} B"
        );
    }
}
