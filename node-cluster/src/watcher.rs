//! The API server pod source: the pods bound to this node, listed then watched
//! (`fieldSelector=spec.nodeName=<node>`), into a [`node_runtime::ApiPods`] store that the pod
//! manager syncs. As client-go's reflector, which the kubelet's `api` source uses
//! (`pkg/kubelet/config/apiserver.go`, `client-go/tools/cache/reflector.go`):
//!
//! * a list gives every pod and a `resourceVersion`; the store is replaced with it;
//! * a watch from that version follows every change; bookmarks advance the version without a
//!   change; a watch that ends (its `timeoutSeconds`, a dropped connection) resumes from the
//!   last version seen, so no change is lost and none is applied twice;
//! * `410 Gone` (the version fell out of the server's history) means a new list;
//! * failures are retried with a jittered back-off ([`crate::Backoff`]); nothing here panics or
//!   gives up while the agent runs.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, WatchEvent, WatchParams};
use node_runtime::ApiPods;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::error::{Error, Result};

/// A watch that ends sooner than this without an event counts as a failure for the back-off,
/// so a server that closes every watch at once is not asked again in a tight loop.
const SHORT_WATCH: Duration = Duration::from_secs(1);

/// What one watch event means for the source ([`apply_event`]).
#[derive(Debug)]
pub enum Step {
    /// A pod added or changed.
    Apply(Box<Pod>),
    /// A pod deleted.
    Delete(Box<Pod>),
    /// Only the resource version moved on.
    Bookmark,
    /// The version is too old (`410 Gone`): list again.
    Relist(String),
    /// Another error event: watch again from the same version after a back-off.
    Retry(String),
}

/// Applies one watch event to the cursor `resource_version` (the last version seen; `None`
/// after a `410`, meaning "list again") and says what it means for the pods.
pub fn apply_event(resource_version: &mut Option<String>, event: WatchEvent<Pod>) -> Step {
    let seen = |rv: &mut Option<String>, pod: &Pod| {
        if let Some(v) = pod.metadata.resource_version.as_deref()
            && !v.is_empty()
        {
            *rv = Some(v.to_owned());
        }
    };
    match event {
        WatchEvent::Added(pod) | WatchEvent::Modified(pod) => {
            seen(resource_version, &pod);
            Step::Apply(Box::new(pod))
        }
        WatchEvent::Deleted(pod) => {
            seen(resource_version, &pod);
            Step::Delete(Box::new(pod))
        }
        WatchEvent::Bookmark(b) => {
            if !b.metadata.resource_version.is_empty() {
                *resource_version = Some(b.metadata.resource_version);
            }
            Step::Bookmark
        }
        WatchEvent::Error(status)
            if status.code == 410 || crate::error::too_large_resource_version(&status) =>
        {
            *resource_version = None;
            Step::Relist(status.message)
        }
        WatchEvent::Error(status) => Step::Retry(format!(
            "{} ({}): {}",
            status.code, status.reason, status.message
        )),
    }
}

/// Options of [`PodWatcher`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchOptions {
    /// `timeoutSeconds` of each watch request; kube's client read timeout (295 s by default)
    /// must be longer. Default 290 s (client-go picks 5 to 10 min; kube's client caps lower).
    pub watch_timeout: u32,
    /// Retry delays.
    pub backoff: Backoff,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            watch_timeout: 290,
            backoff: Backoff::default(),
        }
    }
}

impl WatchOptions {
    /// Sets [`watch_timeout`](Self::watch_timeout).
    #[must_use]
    pub fn with_watch_timeout(mut self, seconds: u32) -> Self {
        self.watch_timeout = seconds;
        self
    }

    /// Sets [`backoff`](Self::backoff).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Lists and watches the pods bound to one node into an [`ApiPods`] store.
#[derive(Clone)]
pub struct PodWatcher {
    api: kube::Api<Pod>,
    node_name: String,
    pods: ApiPods,
    options: WatchOptions,
}

impl std::fmt::Debug for PodWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodWatcher")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl PodWatcher {
    /// A watcher of node `node_name`'s pods through `client`, filling `pods`.
    #[must_use]
    pub fn new(client: kube::Client, node_name: impl Into<String>, pods: ApiPods) -> Self {
        Self {
            api: kube::Api::all(client),
            node_name: node_name.into(),
            pods,
            options: WatchOptions::default(),
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn with_options(mut self, options: WatchOptions) -> Self {
        self.options = options;
        self
    }

    fn field_selector(&self) -> String {
        format!("spec.nodeName={}", self.node_name)
    }

    /// Lists the pods once into the store; returns the list's resource version.
    ///
    /// # Errors
    /// [`Error::Api`] when the list fails; [`Error::Protocol`] when it has no resource version.
    pub async fn list(&self) -> Result<String> {
        let action = || format!("listing the pods of node {}", self.node_name);
        let list = self
            .api
            .list(&ListParams::default().fields(&self.field_selector()))
            .await
            .map_err(|e| Error::api(action(), e))?;
        let rv = list.metadata.resource_version.clone().unwrap_or_default();
        if rv.is_empty() {
            return Err(Error::Protocol {
                action: action(),
                reason: "the list has no resourceVersion".to_owned(),
            });
        }
        self.pods.replace(list.items);
        Ok(rv)
    }

    /// One watch from `resource_version` until it ends; applies its events and advances the
    /// version. `Ok(true)` when events arrived.
    async fn watch_once(&self, resource_version: &mut Option<String>) -> Result<bool> {
        let Some(from) = resource_version.clone() else {
            return Ok(false);
        };
        let action = || format!("watching the pods of node {}", self.node_name);
        // Bookmarks are asked for (kube's default).
        let params = WatchParams::default()
            .fields(&self.field_selector())
            .timeout(self.options.watch_timeout);
        let stream = self
            .api
            .watch(&params, &from)
            .await
            .map_err(|e| Error::api(action(), e))?;
        let mut stream = std::pin::pin!(stream.into_stream());
        let mut any = false;
        while let Some(item) = stream.next().await {
            let event = item.map_err(|e| Error::api(action(), e))?;
            any = true;
            match apply_event(resource_version, event) {
                Step::Apply(pod) => self.pods.apply(*pod),
                Step::Delete(pod) => self.pods.delete(&pod),
                Step::Bookmark => {}
                Step::Relist(message) => {
                    tracing::info!(node = %self.node_name, %message, "pod watch expired; listing again");
                    return Ok(true);
                }
                Step::Retry(message) => {
                    return Err(Error::Protocol {
                        action: action(),
                        reason: message,
                    });
                }
            }
        }
        Ok(any)
    }

    /// Lists, then watches, until `stop` turns true.
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let stopped = node_util::stopped(stop);
        tokio::pin!(stopped);
        let mut resource_version: Option<String> = None;
        loop {
            let started = Instant::now();
            let outcome = tokio::select! {
                () = &mut stopped => return,
                outcome = self.step(&mut resource_version) => outcome,
            };
            let failed = match outcome {
                Ok(true) => false,
                Ok(false) => started.elapsed() < SHORT_WATCH,
                Err(e) => {
                    // Gone (410), or ahead of the server (an etcd restore): list again, as
                    // client-go's reflector does.
                    if e.status_code() == Some(410) || e.is_too_large_resource_version() {
                        resource_version = None;
                    }
                    tracing::warn!(node = %self.node_name, error = %node_util::error_chain(&e), "pod source");
                    true
                }
            };
            if failed {
                let delay = self.options.backoff.next_delay();
                tokio::select! {
                    () = &mut stopped => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }

    /// A list when there is no version to watch from, else one watch.
    async fn step(&self, resource_version: &mut Option<String>) -> Result<bool> {
        if resource_version.is_none() {
            let rv = self.list().await?;
            tracing::debug!(node = %self.node_name, pods = self.pods.len(), resource_version = %rv, "pods listed");
            *resource_version = Some(rv);
            return Ok(true);
        }
        self.watch_once(resource_version).await
    }
}

#[cfg(test)]
mod tests {
    use kube::core::TypeMeta;
    use kube::core::watch::{Bookmark, BookmarkMeta};

    use super::*;

    fn pod(rv: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("a".into());
        p.metadata.resource_version = Some(rv.into());
        p
    }

    #[test]
    fn events_advance_the_version_and_410_resets_it() {
        let mut rv = Some("10".to_owned());
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Added(pod("11"))),
            Step::Apply(_)
        ));
        assert_eq!(rv.as_deref(), Some("11"));
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Deleted(pod("12"))),
            Step::Delete(_)
        ));
        assert_eq!(rv.as_deref(), Some("12"));
        let bookmark = Bookmark {
            types: TypeMeta::default(),
            metadata: BookmarkMeta {
                resource_version: "20".into(),
                annotations: Default::default(),
            },
        };
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Bookmark(bookmark)),
            Step::Bookmark
        ));
        assert_eq!(rv.as_deref(), Some("20"));
        // A pod without a version leaves the cursor alone.
        let mut unversioned = pod("");
        unversioned.metadata.resource_version = None;
        apply_event(&mut rv, WatchEvent::Modified(unversioned));
        assert_eq!(rv.as_deref(), Some("20"));
        let status = |code: u16| {
            Box::new(
                serde_json::from_value::<kube::core::Status>(serde_json::json!({
                    "status": "Failure", "message": "too old resource version: 5 (9)",
                    "reason": if code == 410 { "Expired" } else { "InternalError" }, "code": code
                }))
                .unwrap(),
            )
        };
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Error(status(500))),
            Step::Retry(m) if m.starts_with("500 (InternalError)")
        ));
        assert_eq!(rv.as_deref(), Some("20"));
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Error(status(410))),
            Step::Relist(m) if m.contains("too old")
        ));
        assert_eq!(rv, None);
        // Too large (the server went back in time): list again.
        let mut rv = Some("317".to_owned());
        let too_large = serde_json::from_value::<kube::core::Status>(serde_json::json!({
            "status": "Failure", "message": "Too large resource version: 317, current: 217",
            "reason": "Timeout", "code": 504,
            "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}
        }))
        .unwrap();
        assert!(crate::error::too_large_resource_version(&too_large));
        assert!(matches!(
            apply_event(&mut rv, WatchEvent::Error(Box::new(too_large))),
            Step::Relist(_)
        ));
        assert_eq!(rv, None);
    }
}
