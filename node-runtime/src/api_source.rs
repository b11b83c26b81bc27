//! Pods from the API server: the kubelet's `api` config source as a store that a list+watch
//! client fills ([`ApiPods::replace`] after a list, [`ApiPods::apply`] and [`ApiPods::delete`]
//! for watch events) and [`crate::PodManager`] reads on every pass
//! ([`crate::PodManager::with_api_pods`]).
//!
//! Every pod is checked before it can reach the runtime, as a static pod is: the API server is
//! trusted by the kubelet, but this agent runs as root and a pod's UID, names and volumes become
//! paths on the node ([`crate::validation::validate_pod`]). A pod that fails is not run and is
//! reported by [`ApiPods::errors`]. Mirror pods (`kubernetes.io/config.mirror`) are the API
//! server's view of static pods: they are kept apart ([`ApiPods::mirror_pods`]) and never run.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
//! let pods = node_runtime::ApiPods::new("node-1");
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web".into());
//! pod.metadata.namespace = Some("default".into());
//! pod.metadata.uid = Some("0b5c1d0e-1111-2222-3333-444455556666".into());
//! pod.spec = Some(PodSpec {
//!     node_name: Some("node-1".into()),
//!     containers: vec![Container { name: "app".into(), image: Some("busybox".into()), ..Default::default() }],
//!     ..Default::default()
//! });
//! pods.replace(vec![pod]);
//! assert!(pods.is_synced());
//! assert_eq!(pods.len(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;

use crate::manifest::{ANNOTATION_CONFIG_SOURCE, PodSource, SourcePod};
use crate::spec::ANNOTATION_CONFIG_MIRROR;
use crate::validation::validate_pod;

#[derive(Debug, Default)]
struct Inner {
    /// Valid pods by UID.
    pods: HashMap<String, SourcePod>,
    /// `namespace/name` -> why the pod cannot run.
    invalid: BTreeMap<String, String>,
    /// Mirror pods by `namespace/name`.
    mirrors: BTreeMap<String, Pod>,
    /// A full list has been applied.
    synced: bool,
    /// UIDs of pods being deleted whose containers and sandboxes are all gone.
    terminated: BTreeSet<String>,
}

/// The pods the API server assigned to this node (shared, cheap to clone).
#[derive(Debug, Clone)]
pub struct ApiPods {
    node_name: String,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

/// A pod being deleted whose containers and sandbox are gone: ready for the final DELETE
/// ([`ApiPods::terminated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminatedPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (the DELETE's precondition).
    pub uid: String,
}

/// Checks an API pod for node `node_name`: `None` when it is not this node's (the watch's
/// field selector should prevent that), else the pod ready to sync or why it cannot run.
///
/// # Errors
/// The validation failure, naming the field and value.
pub fn api_pod(mut pod: Pod, node_name: &str) -> Option<Result<SourcePod, String>> {
    let bound_here = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| n == node_name);
    if !bound_here {
        return None;
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        return Some(Err("metadata.uid: Required value".to_owned()));
    }
    if let Err(e) = validate_pod(&pod) {
        return Some(Err(format!("invalid pod: {e}")));
    }
    // The kubelet marks every pod with its source (`pkg/kubelet/config/config.go`).
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_CONFIG_SOURCE.to_owned(), "api".to_owned());
    Some(Ok(SourcePod {
        source: PodSource::Api,
        pod: Arc::new(pod),
        namespace,
        name,
        uid,
    }))
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_CONFIG_MIRROR))
}

impl Inner {
    fn remove(&mut self, pod: &Pod) {
        let key = full_name(pod);
        self.invalid.remove(&key);
        self.mirrors.remove(&key);
        if let Some(uid) = pod.metadata.uid.as_deref() {
            self.pods.remove(uid);
            self.terminated.remove(uid);
        }
        // A pod replaced under the same name with a new UID.
        self.pods.retain(|_, p| p.full_name() != key);
    }

    fn upsert(&mut self, pod: Pod, node_name: &str) {
        // `kubernetes.io/config.seen` of this UID, kept across updates.
        let seen = pod
            .metadata
            .uid
            .as_deref()
            .and_then(|uid| self.pods.get(uid))
            .and_then(crate::manifest::seen_of);
        self.remove(&pod);
        let key = full_name(&pod);
        if is_mirror(&pod) {
            self.mirrors.insert(key, pod);
            return;
        }
        match api_pod(pod, node_name) {
            None => {}
            Some(Ok(mut p)) => {
                crate::manifest::set_seen(&mut p, seen);
                self.pods.insert(p.uid.clone(), p);
            }
            Some(Err(e)) => {
                self.invalid.insert(key, e);
            }
        }
    }
}

impl ApiPods {
    /// An empty, not yet synced source for node `node_name`.
    #[must_use]
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            inner: Arc::new(Mutex::new(Inner::default())),
            changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Replaces every pod with `pods` (a full list) and marks the source synced: until then
    /// the pod manager removes no pod it does not know, as the kubelet waits for all its
    /// sources before cleaning up.
    pub fn replace(&self, pods: Vec<Pod>) {
        {
            let mut inner = self.lock();
            let terminated = std::mem::take(&mut inner.terminated);
            inner.pods.clear();
            inner.invalid.clear();
            inner.mirrors.clear();
            for pod in pods {
                inner.upsert(pod, &self.node_name);
            }
            // Keep what was learnt about pods still listed.
            let kept: BTreeSet<String> = terminated
                .into_iter()
                .filter(|uid| inner.pods.contains_key(uid))
                .collect();
            inner.terminated = kept;
            inner.synced = true;
        }
        self.changed.notify_one();
    }

    /// A pod added or modified (a watch's `ADDED` or `MODIFIED`).
    pub fn apply(&self, pod: Pod) {
        self.lock().upsert(pod, &self.node_name);
        self.changed.notify_one();
    }

    /// A pod deleted from the API server (a watch's `DELETED`).
    pub fn delete(&self, pod: &Pod) {
        self.lock().remove(pod);
        self.changed.notify_one();
    }

    /// Whether a full list has been applied.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.lock().synced
    }

    /// The number of pods that can run.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().pods.len()
    }

    /// Whether no pod can run.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pods that can run, by UID.
    #[must_use]
    pub fn pods(&self) -> HashMap<String, SourcePod> {
        self.lock().pods.clone()
    }

    /// `namespace/name: reason` for each pod that cannot run.
    #[must_use]
    pub fn errors(&self) -> Vec<String> {
        self.lock()
            .invalid
            .iter()
            .map(|(k, e)| format!("{k}: {e}"))
            .collect()
    }

    /// The mirror pods on the API server for this node, by `namespace/name`.
    #[must_use]
    pub fn mirror_pods(&self) -> BTreeMap<String, Pod> {
        self.lock().mirrors.clone()
    }

    /// Resolves after the next change (a list, an event).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Pods being deleted that are fully stopped and wait for their final DELETE.
    #[must_use]
    pub fn terminated(&self) -> Vec<TerminatedPod> {
        let inner = self.lock();
        inner
            .terminated
            .iter()
            .filter_map(|uid| {
                let p = inner.pods.get(uid)?;
                Some(TerminatedPod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    uid: uid.clone(),
                })
            })
            .collect()
    }

    /// Records that the pod `uid`, being deleted, has no container or sandbox left.
    pub(crate) fn mark_terminated(&self, uid: &str) {
        let newly = self.lock().terminated.insert(uid.to_owned());
        if newly {
            self.changed.notify_one();
        }
    }
}

/// Whether the API server is deleting `pod` (`metadata.deletionTimestamp` set), and the grace
/// period to stop it with (`metadata.deletionGracePeriodSeconds`).
#[must_use]
pub fn deletion_grace(pod: &Pod) -> Option<std::time::Duration> {
    pod.metadata.deletion_timestamp.as_ref()?;
    let secs = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
    Some(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(name: &str, uid: &str, node: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(uid.into());
        p.spec = Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    #[test]
    fn list_then_events() {
        let s = ApiPods::new("n1");
        assert!(!s.is_synced());
        s.replace(vec![pod("a", "u1", "n1"), pod("other", "u9", "n2")]);
        assert!(s.is_synced());
        assert_eq!(s.pods().keys().collect::<Vec<_>>(), vec!["u1"]);
        let a = &s.pods()["u1"];
        assert_eq!(a.source, PodSource::Api);
        assert_eq!(a.full_name(), "default/a");
        assert_eq!(
            a.pod.metadata.annotations.as_ref().unwrap()[ANNOTATION_CONFIG_SOURCE],
            "api"
        );
        // First seen now, and kept when the pod is updated.
        let seen = crate::manifest::seen_of(a).unwrap();
        assert!(seen.parse::<jiff::Timestamp>().is_ok(), "{seen}");
        s.apply(pod("a", "u1", "n1"));
        assert_eq!(crate::manifest::seen_of(&s.pods()["u1"]).unwrap(), seen);
        s.apply(pod("b", "u2", "n1"));
        assert_eq!(s.len(), 2);
        // Recreated under the same name: the old UID is gone.
        s.apply(pod("b", "u3", "n1"));
        let mut uids: Vec<String> = s.pods().into_keys().collect();
        uids.sort();
        assert_eq!(uids, vec!["u1", "u3"]);
        s.delete(&pod("a", "u1", "n1"));
        assert_eq!(s.pods().into_keys().collect::<Vec<_>>(), vec!["u3"]);
    }

    #[test]
    fn hostile_pods_are_reported_not_run() {
        let s = ApiPods::new("n1");
        s.replace(vec![
            pod("a", "../../etc", "n1"),
            pod("b", "", "n1"),
            pod("Bad_Name", "u3", "n1"),
        ]);
        assert!(s.is_empty());
        let errors = s.errors();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("default/Bad_Name: invalid pod: metadata.name"));
        assert!(errors[1].contains("metadata.uid"), "{errors:?}");
        assert_eq!(errors[2], "default/b: metadata.uid: Required value");
        // A corrected pod replaces the error.
        s.apply(pod("b", "u2", "n1"));
        assert_eq!(s.errors().len(), 2);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn mirror_pods_are_kept_apart() {
        let s = ApiPods::new("n1");
        let mut m = pod("web-n1", "m1", "n1");
        m.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_CONFIG_MIRROR.to_owned(),
            "hash".to_owned(),
        )]));
        s.replace(vec![m]);
        assert!(s.is_empty());
        assert_eq!(
            s.mirror_pods().keys().collect::<Vec<_>>(),
            vec!["default/web-n1"]
        );
    }

    #[test]
    fn terminated_pods_until_deleted() {
        let s = ApiPods::new("n1");
        let mut p = pod("a", "u1", "n1");
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        p.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(deletion_grace(&p), Some(std::time::Duration::from_secs(5)));
        s.replace(vec![p.clone()]);
        s.mark_terminated("u1");
        s.mark_terminated("gone");
        assert_eq!(
            s.terminated(),
            vec![TerminatedPod {
                namespace: "default".into(),
                name: "a".into(),
                uid: "u1".into()
            }]
        );
        s.replace(vec![p.clone()]);
        assert_eq!(s.terminated().len(), 1);
        s.delete(&p);
        assert!(s.terminated().is_empty());
        assert_eq!(deletion_grace(&pod("b", "u2", "n1")), None);
    }
}
