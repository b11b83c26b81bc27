//! The node lease controller, as the kubelet's `component-helpers/apimachinery/lease`:
//! renew every `0.25 x nodeLeaseDurationSeconds` with 4% jitter (sliding), optimistic PUT from
//! the cached lease, up to 5 attempts, re-read on conflict, ensure with back-off 200 ms
//! doubling to 7 s, owner reference to the Node added once the Node exists.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use crate::backend::{Backend, LEASE_NAMESPACE};
use crate::error::{ApiErrorKind, Error, Result};

/// `maxUpdateRetries`.
pub const MAX_UPDATE_RETRIES: u32 = 5;
/// `maxBackoff`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(7);
/// `nodeLeaseRenewIntervalFraction`.
pub const RENEW_INTERVAL_FRACTION: f64 = 0.25;
/// The jitter factor of the renew loop.
pub const JITTER_FACTOR: f64 = 0.04;

/// The ensure back-off: starts at 100 ms and doubles *before* each wait, so the waits are
/// 200 ms, 400 ms, 800 ms, 1.6 s, 3.2 s, 6.4 s, 7 s, 7 s...
#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    max: Duration,
}

impl Backoff {
    /// The kubelet's lease back-off (100 ms doubled before each wait, capped at 7 s).
    pub fn lease() -> Self {
        Backoff {
            current: Duration::from_millis(100),
            max: MAX_BACKOFF,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        self.current = (self.current * 2).min(self.max);
        self.current
    }
}

/// `wait.Jitter(d, factor)`: a duration in `[d, d + factor*d)`.
pub fn jitter(d: Duration, factor: f64) -> Duration {
    let r: f64 = rand::random();
    d + d.mul_f64(factor * r)
}

/// Lease settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Node name = lease name = holder identity.
    pub node_name: String,
    /// `nodeLeaseDurationSeconds` (40).
    pub duration_seconds: i32,
    /// Renew interval (duration x 0.25 = 10 s).
    pub renew_interval: Duration,
}

impl LeaseConfig {
    /// The kubelet wiring for `node_name` and a lease duration.
    pub fn new(node_name: impl Into<String>, duration_seconds: i32) -> Self {
        let secs = f64::from(duration_seconds.max(1));
        LeaseConfig {
            node_name: node_name.into(),
            duration_seconds,
            renew_interval: Duration::from_secs_f64(secs * RENEW_INTERVAL_FRACTION),
        }
    }

    /// Sets [`renew_interval`](Self::renew_interval).
    #[must_use]
    pub fn with_renew_interval(mut self, renew_interval: Duration) -> Self {
        self.renew_interval = renew_interval;
        self
    }
}

/// Renews one node's lease.
#[derive(Debug)]
pub struct LeaseController<B> {
    backend: Arc<B>,
    cfg: LeaseConfig,
    /// Boxed to keep the loop's future small (see [`LeaseController::run`]).
    latest: Option<Box<Lease>>,
}

impl<B: Backend> LeaseController<B> {
    /// A controller with nothing cached.
    pub fn new(backend: Arc<B>, cfg: LeaseConfig) -> Self {
        LeaseController {
            backend,
            cfg,
            latest: None,
        }
    }

    /// The lease last returned by the server.
    pub fn latest(&self) -> Option<&Lease> {
        self.latest.as_deref()
    }

    /// `newLease(base)` plus `SetNodeOwnerFunc`: bare-minimum fields, renewTime now, duration
    /// re-asserted; the owner reference is added when missing (needs a GET of the Node).
    async fn new_lease(&self, base: Option<&Lease>) -> Result<Lease> {
        let mut lease = match base {
            Some(b) => b.clone(),
            None => Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.node_name.clone()),
                    namespace: Some(LEASE_NAMESPACE.to_owned()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.node_name.clone()),
                    ..Default::default()
                }),
            },
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.cfg.node_name.clone());
        spec.lease_duration_seconds = Some(self.cfg.duration_seconds);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if lease
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
        {
            let node = self.backend.get_node(&self.cfg.node_name).await.inspect_err(|e| {
                tracing::error!(node = %self.cfg.node_name, error = %e, "Failed to get node when trying to set owner ref to the node lease");
            })?;
            lease.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: self.cfg.node_name.clone(),
                uid: node.metadata.uid.unwrap_or_default(),
                ..Default::default()
            }]);
        }
        Ok(lease)
    }

    /// `ensureLease`: GET, or CREATE when not found. `Ok(None)` when the lease cannot be built
    /// yet (the Node is not registered), `Ok(Some((lease, created)))` otherwise.
    async fn ensure_lease(&self) -> Result<Option<(Lease, bool)>> {
        match self.backend.get_lease(&self.cfg.node_name).await {
            Ok(l) => Ok(Some((l, false))),
            Err(e) if e.api_kind() == Some(ApiErrorKind::NotFound) => {
                let Ok(lease) = self.new_lease(None).await else {
                    // The owner reference could not be set: do not create an orphan lease.
                    return Ok(None);
                };
                let created = self.backend.create_lease(&lease).await?;
                Ok(Some((created, true)))
            }
            Err(e) => Err(e),
        }
    }

    /// `backoffEnsureLease`: retries `ensureLease` forever with the lease back-off.
    async fn backoff_ensure_lease(&self) -> Option<(Lease, bool)> {
        let mut backoff = Backoff::lease();
        loop {
            match self.ensure_lease().await {
                Ok(r) => return r,
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::error!(error = %e, ?wait, "failed to ensure lease exists, will retry");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// `retryUpdateLease`: up to 5 PUTs; a conflict re-reads the lease; failures after the first
    /// call [`Backend::on_repeated_failure`].
    async fn retry_update_lease(&mut self, base: Option<Lease>) -> Result<()> {
        let mut base = base;
        for i in 0..MAX_UPDATE_RETRIES {
            let lease = match self.new_lease(base.as_ref()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "Failed to prepare lease");
                    continue;
                }
            };
            match self.backend.update_lease(&lease).await {
                Ok(l) => {
                    self.latest = Some(Box::new(l));
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt = i, "failed to update lease");
                    if e.api_kind() == Some(ApiErrorKind::Conflict) {
                        base = self.backoff_ensure_lease().await.map(|(l, _)| l);
                        continue;
                    }
                    if i > 0 {
                        self.backend.on_repeated_failure();
                    }
                }
            }
        }
        Err(Error::LeaseUpdate {
            attempts: MAX_UPDATE_RETRIES,
        })
    }

    /// One renewal (`sync`): optimistic update from the cache, else ensure + update.
    pub async fn sync(&mut self) -> Result<()> {
        if let Some(latest) = self.latest.as_deref().cloned() {
            match self.retry_update_lease(Some(latest)).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(error = %e, "failed to update lease using latest lease, fallback to ensure lease");
                }
            }
        }
        match self.backoff_ensure_lease().await {
            Some((lease, true)) => {
                self.latest = Some(Box::new(lease));
                Ok(())
            }
            Some((lease, false)) => {
                self.latest = Some(Box::new(lease.clone()));
                self.retry_update_lease(Some(lease)).await
            }
            None => Ok(()),
        }
    }

    /// Renews until `shutdown` resolves: sync, then wait a jittered interval (sliding).
    /// Errors are logged; the loop never ends on its own.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = jitter(self.cfg.renew_interval, JITTER_FACTOR);
            // Boxed: the request futures are large (about 10 KiB) and only live during a
            // renewal, so an idle loop holds a pointer, not them (hollow nodes run thousands).
            tokio::select! {
                () = &mut shutdown => return,
                r = Box::pin(self.sync()) => if let Err(e) = r {
                    tracing::error!(node = %self.cfg.node_name, error = %e, "lease renewal failed");
                },
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_sequence() {
        let mut b = Backoff::lease();
        let waits: Vec<u128> = (0..9).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            vec![200, 400, 800, 1600, 3200, 6400, 7000, 7000, 7000]
        );
    }

    #[test]
    fn interval_and_jitter() {
        let c = LeaseConfig::new("n", 40);
        assert_eq!(c.renew_interval, Duration::from_secs(10));
        for _ in 0..1000 {
            let j = jitter(c.renew_interval, JITTER_FACTOR);
            assert!(
                j >= Duration::from_secs(10) && j < Duration::from_millis(10_400),
                "{j:?}"
            );
        }
    }
}
