//! Mirror pods: the API server's read-only copy of each static pod, so that the scheduler
//! counts its resources and users see it (`pkg/kubelet/pod/mirror_client.go`,
//! `Kubelet.tryReconcileMirrorPods`):
//!
//! * a mirror is the static pod with its annotations plus `kubernetes.io/config.mirror` set to
//!   the static pod's `kubernetes.io/config.hash` (its UID), owned by the Node (one owner
//!   reference, `controller: true`);
//! * a mirror is stale when it is being deleted or its `config.mirror` is not the static pod's
//!   hash (the manifest changed): it is deleted (grace period 0, its UID as precondition) and
//!   created again;
//! * a mirror with no static pod of its name is deleted (no UID precondition), once the
//!   agent's pods are known ([`node_runtime::PodRegistry::is_synced`]);
//! * `404` and `409` answers to a delete mean someone else got there first; `AlreadyExists` to a
//!   create counts as success.
//!
//! [`mirror_actions`] decides; [`MirrorPods`] sends.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, PostParams, Preconditions};
use node_runtime::{ANNOTATION_CONFIG_MIRROR, ApiPods, PodRegistry};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How often mirror pods are reconciled (the kubelet does it on every pod sync and at least
/// every minute).
pub const MIRROR_PERIOD: Duration = Duration::from_secs(2);

/// One change to the API server's mirror pods.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorAction {
    /// Create the mirror of this static pod.
    Create(Box<Pod>),
    /// Delete the mirror `namespace/name`, with its UID as precondition when known.
    Delete {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The mirror's UID (`None` for an orphan).
        uid: Option<String>,
    },
}

/// A static pod to mirror: its `namespace/name`, its hash (UID) and the pod.
#[derive(Debug, Clone)]
pub struct StaticPodRef {
    /// `namespace/name`.
    pub full_name: String,
    /// `kubernetes.io/config.hash`: the static pod's UID.
    pub hash: String,
    /// The static pod (with the kubelet's static-pod defaults).
    pub pod: std::sync::Arc<Pod>,
}

fn mirror_hash(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_CONFIG_MIRROR)
        .map(String::as_str)
}

fn split(full_name: &str) -> (String, String) {
    match full_name.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (String::new(), full_name.to_owned()),
    }
}

/// What to do so that `mirrors` (the API server's mirror pods of this node, by
/// `namespace/name`) match `statics`; orphans are deleted only when `cleanup` (every pod
/// source has been listed).
#[must_use]
pub fn mirror_actions(
    statics: &[StaticPodRef],
    mirrors: &BTreeMap<String, Pod>,
    cleanup: bool,
) -> Vec<MirrorAction> {
    let mut actions = Vec::new();
    for s in statics {
        match mirrors.get(&s.full_name) {
            None => actions.push(MirrorAction::Create(Box::new(mirror_of(s)))),
            Some(m) => {
                let stale = m.metadata.deletion_timestamp.is_some()
                    || mirror_hash(m) != Some(s.hash.as_str());
                if stale {
                    let (namespace, name) = split(&s.full_name);
                    actions.push(MirrorAction::Delete {
                        namespace,
                        name,
                        uid: m.metadata.uid.clone(),
                    });
                    actions.push(MirrorAction::Create(Box::new(mirror_of(s))));
                }
            }
        }
    }
    if cleanup {
        for full_name in mirrors.keys() {
            if !statics.iter().any(|s| &s.full_name == full_name) {
                let (namespace, name) = split(full_name);
                actions.push(MirrorAction::Delete {
                    namespace,
                    name,
                    uid: None,
                });
            }
        }
    }
    actions
}

/// The mirror pod of `s` (without its owner reference, added when the Node's UID is known).
#[must_use]
pub fn mirror_of(s: &StaticPodRef) -> Pod {
    let mut pod = (*s.pod).clone();
    pod.metadata.uid = None;
    pod.metadata.resource_version = None;
    pod.metadata.creation_timestamp = None;
    pod.status = None;
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_CONFIG_MIRROR.to_owned(), s.hash.clone());
    pod
}

/// Keeps the API server's mirror pods in line with the node's static pods.
pub struct MirrorPods {
    client: kube::Client,
    node_name: String,
    registry: PodRegistry,
    pods: ApiPods,
    node_uid: Option<String>,
    last_error: Option<String>,
}

impl std::fmt::Debug for MirrorPods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorPods")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl MirrorPods {
    /// Mirrors the static pods of `registry` for node `node_name`; the API server's current
    /// mirror pods come from `pods` (the watched API pods).
    #[must_use]
    pub fn new(
        client: kube::Client,
        node_name: impl Into<String>,
        registry: PodRegistry,
        pods: ApiPods,
    ) -> Self {
        Self {
            client,
            node_name: node_name.into(),
            registry,
            pods,
            node_uid: None,
            last_error: None,
        }
    }

    /// The static pods the registry has (with their pod), for [`mirror_actions`].
    fn statics(&self) -> Vec<StaticPodRef> {
        self.registry
            .list()
            .into_iter()
            .filter(|p| p.source.is_static())
            .filter_map(|p| {
                Some(StaticPodRef {
                    full_name: format!("{}/{}", p.namespace, p.name),
                    hash: p.uid.clone(),
                    pod: p.pod?,
                })
            })
            .collect()
    }

    /// The Node's UID, for the owner reference; `None` while the Node does not exist (or is
    /// being deleted): no mirror is created then, as the kubelet.
    async fn node_uid(&mut self) -> Result<Option<String>> {
        if self.node_uid.is_some() {
            return Ok(self.node_uid.clone());
        }
        let nodes: kube::Api<Node> = kube::Api::all(self.client.clone());
        let node = nodes
            .get_opt(&self.node_name)
            .await
            .map_err(|e| Error::api(format!("failed to get node UID of {}", self.node_name), e))?;
        let Some(node) = node else { return Ok(None) };
        if node.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        self.node_uid = node.metadata.uid.filter(|u| !u.is_empty());
        Ok(self.node_uid.clone())
    }

    /// One reconciliation. Errors are returned after the remaining actions were tried.
    ///
    /// # Errors
    /// The first failed request.
    pub async fn reconcile_once(&mut self) -> Result<()> {
        if !self.pods.is_synced() {
            return Ok(());
        }
        let actions = mirror_actions(
            &self.statics(),
            &self.pods.mirror_pods(),
            self.registry.is_synced(),
        );
        let mut first_error = None;
        for action in actions {
            if let Err(e) = self.apply(action).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn apply(&mut self, action: MirrorAction) -> Result<()> {
        match action {
            MirrorAction::Create(mut pod) => {
                let Some(node_uid) = self.node_uid().await? else {
                    tracing::debug!(node = %self.node_name, "No need to create a mirror pod, since the node has no UID yet or is being deleted");
                    return Ok(());
                };
                pod.metadata.owner_references = Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: self.node_name.clone(),
                    uid: node_uid,
                    controller: Some(true),
                    block_owner_deletion: None,
                }]);
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), &namespace);
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        tracing::info!(pod = %format!("{namespace}/{name}"), "mirror pod created");
                        Ok(())
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(Error::api(
                        format!("creating the mirror pod {namespace}/{name}"),
                        e,
                    )),
                }
            }
            MirrorAction::Delete {
                namespace,
                name,
                uid,
            } => {
                let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), &namespace);
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: uid.map(|uid| Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => {
                        tracing::info!(pod = %format!("{namespace}/{name}"), "mirror pod deleted");
                        Ok(())
                    }
                    Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(()),
                    Err(e) => Err(Error::api(
                        format!("deleting the mirror pod {namespace}/{name}"),
                        e,
                    )),
                }
            }
        }
    }

    /// Reconciles every [`MIRROR_PERIOD`] until `stop` turns true.
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let stopped = node_util::stopped(stop);
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(MIRROR_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = tick.tick() => {}
            }
            let result = self.reconcile_once().await;
            let error = result.err().map(|e| node_util::error_chain(&e));
            if error != self.last_error {
                if let Some(e) = &error {
                    tracing::warn!(error = %e, "mirror pods");
                }
                self.last_error = error;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn static_pod(name: &str, hash: &str) -> StaticPodRef {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some("kube-system".into());
        pod.metadata.uid = Some(hash.into());
        StaticPodRef {
            full_name: format!("kube-system/{name}"),
            hash: hash.into(),
            pod: std::sync::Arc::new(pod),
        }
    }

    fn mirror(name: &str, hash: &str, uid: &str) -> (String, Pod) {
        let s = static_pod(name, hash);
        let mut m = mirror_of(&s);
        m.metadata.uid = Some(uid.into());
        (s.full_name, m)
    }

    #[test]
    fn create_missing_replace_stale_delete_orphans() {
        let statics = [
            static_pod("etcd-n1", "h1"),
            static_pod("api-n1", "h2"),
            static_pod("sched-n1", "h3"),
        ];
        let mut deleting = mirror("sched-n1", "h3", "m3");
        deleting.1.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        let mirrors: BTreeMap<String, Pod> = [
            mirror("etcd-n1", "h1", "m1"), // up to date
            mirror("api-n1", "old", "m2"), // the manifest changed
            deleting,                      // being deleted
            mirror("gone-n1", "h9", "m9"), // no static pod
        ]
        .into();
        let actions = mirror_actions(&statics, &mirrors, true);
        let summary: Vec<String> = actions
            .iter()
            .map(|a| match a {
                MirrorAction::Create(p) => format!(
                    "create {} {}",
                    p.metadata.name.as_deref().unwrap(),
                    p.metadata.annotations.as_ref().unwrap()[ANNOTATION_CONFIG_MIRROR]
                ),
                MirrorAction::Delete { name, uid, .. } => format!("delete {name} {uid:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "delete api-n1 Some(\"m2\")",
                "create api-n1 h2",
                "delete sched-n1 Some(\"m3\")",
                "create sched-n1 h3",
                "delete gone-n1 None",
            ]
        );
        // Before every source is listed, orphans stay.
        assert_eq!(mirror_actions(&statics, &mirrors, false).len(), 4);
        // The mirror carries no UID, version or status of the static pod.
        let m = mirror_of(&statics[0]);
        assert_eq!(m.metadata.uid, None);
        assert!(m.status.is_none());
    }
}
