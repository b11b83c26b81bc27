//! The status manager: each API pod's status, as the agent's registry has it, sent to the API
//! server with a strategic-merge `PATCH` of `pods/<name>/status` when it changed, and the final
//! `DELETE` of a pod whose deletion the agent has carried out (`pkg/kubelet/status/
//! status_manager.go`, `pkg/util/pod/pod.go PatchPodStatus`):
//!
//! * the patch carries `metadata.uid`, so it can only apply to the pod it was computed for (a
//!   pod deleted and recreated under the same name gets a `409`, and the status is dropped);
//! * `startTime` is set once, when the agent first sends a status for the pod (kept from the
//!   API server's status after an agent restart);
//! * a pod the agent stopped for its deletion gets a terminal status first: the pod manager's
//!   final record (`Succeeded` when every container exited 0, else `Failed`, with how each
//!   container ended), and as a safety net the kubelet's `TerminatePod` rule on what was sent
//!   last (non-terminal phases become `Failed`; containers not known to have ended become
//!   `terminated` with reason `ContainerStatusUnknown` and exit code 137); then the `DELETE`
//!   with `gracePeriodSeconds: 0` and the UID as precondition.
//!
//! Deciding is pure ([`pod_status_patch`], [`terminal_status`]); [`StatusManager`] sends.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use node_runtime::{ApiPods, PodInfo, PodRegistry, PodSource, TerminatedPod};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How often every status is compared with what was sent, changes or not (the kubelet's
/// status manager resyncs every 10 s).
pub const STATUS_PERIOD: Duration = Duration::from_secs(10);

/// The status to send for `info` (an API pod): the runtime's view ([`node_runtime::pod_status::
/// api_status`]) with `startTime`, `hostIPs` and `observedGeneration`.
#[must_use]
pub fn desired_status(
    info: &PodInfo,
    node_name: &str,
    host_ips: &[String],
    start_time: &str,
) -> Value {
    let host_ip = host_ips.first().map(String::as_str);
    let mut status = node_runtime::pod_status::api_status(info, node_name, host_ip);
    let host_network = info
        .pod
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    if let Some(st) = status.as_object_mut() {
        if host_ip.is_some() {
            let ips: Vec<Value> = host_ips.iter().map(|ip| json!({ "ip": ip })).collect();
            st.insert("hostIPs".into(), Value::Array(ips.clone()));
            if host_network {
                st.insert("podIPs".into(), Value::Array(ips));
            }
        }
        st.insert("startTime".into(), start_time.into());
        if let Some(generation) = info.pod.as_ref().and_then(|p| p.metadata.generation) {
            st.insert("observedGeneration".into(), generation.into());
        }
    }
    status
}

/// Stamps `status.conditions` as the kubelet does (`updateLastTransitionTime`): a condition
/// whose status is the one in `previous` (the status sent last, or the API server's) keeps its
/// `lastTransitionTime`, any other gets `now`; `lastProbeTime` is null; each condition carries
/// the pod's `observedGeneration` when the status has one.
pub fn stamp_conditions(status: &mut Value, previous: Option<&Value>, now: &str) {
    let generation = status.get("observedGeneration").cloned();
    let old: Vec<Value> = previous
        .and_then(|p| p.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
        let kept = old
            .iter()
            .find(|o| o.get("type") == c.get("type") && o.get("status") == c.get("status"))
            .and_then(|o| o.get("lastTransitionTime"))
            .filter(|t| t.is_string())
            .cloned();
        c.insert(
            "lastTransitionTime".into(),
            kept.unwrap_or_else(|| now.into()),
        );
        c.insert("lastProbeTime".into(), Value::Null);
        if let Some(g) = &generation {
            c.insert("observedGeneration".into(), g.clone());
        }
    }
}

/// The node's IPs for `hostIP`/`hostIPs` (`pkg/util/node/node.go GetNodeHostIPs`): the first
/// `InternalIP` (else the first `ExternalIP`), then the first address of the other family.
#[must_use]
pub fn node_host_ips(addresses: &[k8s_openapi::api::core::v1::NodeAddress]) -> Vec<String> {
    let of = |kind: &str| -> Vec<std::net::IpAddr> {
        addresses
            .iter()
            .filter(|a| a.type_ == kind)
            .filter_map(|a| a.address.parse().ok())
            .collect()
    };
    let mut ips = of("InternalIP");
    ips.extend(of("ExternalIP"));
    let Some(first) = ips.first().copied() else {
        return Vec::new();
    };
    let mut out = vec![first.to_string()];
    if let Some(other) = ips.iter().find(|ip| ip.is_ipv4() != first.is_ipv4()) {
        out.push(other.to_string());
    }
    out
}

/// The strategic-merge patch that sets `status` on the pod with `uid`, or `None` when
/// `status` equals what was sent last (`previous`). As the kubelet's two-way merge patch
/// (`PatchPodStatus`), a field the agent owns that `previous` had and `status` lacks is sent
/// as `null`, so the API server deletes it: a container's old `waiting` state, a condition's
/// old `reason`, the pod's old `message` ([`with_deletions`]).
#[must_use]
pub fn pod_status_patch(uid: &str, status: &Value, previous: Option<&Value>) -> Option<Value> {
    if previous == Some(status) {
        return None;
    }
    let status = match previous {
        Some(old) => with_deletions(status, old, true),
        None => status.clone(),
    };
    Some(json!({ "metadata": { "uid": uid }, "status": status }))
}

/// Status fields the agent owns at the top level (others, such as `nominatedNodeName` or
/// `resize`, belong to other writers and are never deleted from here).
const OWNED_STATUS_FIELDS: &[&str] = &[
    "phase",
    "reason",
    "message",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "conditions",
    "initContainerStatuses",
    "containerStatuses",
    "observedGeneration",
];

/// The merge key of a status list, as the API's strategic-merge schema declares it.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" => Some("type"),
        "containerStatuses" | "initContainerStatuses" | "ephemeralContainerStatuses" => {
            Some("name")
        }
        "podIPs" | "hostIPs" => Some("ip"),
        _ => None,
    }
}

/// `new` with a `null` for every key of `old` it lacks (only the agent's own fields at the
/// top), recursing into objects and into merge-keyed list items matched by their key.
#[must_use]
pub fn with_deletions(new: &Value, old: &Value, top: bool) -> Value {
    let (Value::Object(n), Value::Object(o)) = (new, old) else {
        return new.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in n {
        let merged = match (merge_key(k), v, o.get(k)) {
            (Some(key), Value::Array(items), Some(Value::Array(old_items))) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        let id = item.get(key);
                        match old_items.iter().find(|x| id.is_some() && x.get(key) == id) {
                            Some(prev) => with_deletions(item, prev, false),
                            None => item.clone(),
                        }
                    })
                    .collect(),
            ),
            (None, Value::Object(_), Some(prev)) => with_deletions(v, prev, false),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    for k in o.keys() {
        if !n.contains_key(k) && (!top || OWNED_STATUS_FIELDS.contains(&k.as_str())) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// The terminal status of a pod the agent stopped for its deletion, from the last status sent
/// (`last`): the kubelet's `TerminatePod`.
#[must_use]
pub fn terminal_status(last: Option<&Value>) -> Value {
    let mut status = last.cloned().unwrap_or_else(|| json!({}));
    let Some(st) = status.as_object_mut() else {
        return json!({ "phase": "Failed" });
    };
    let phase = st
        .get("phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_owned();
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed");
    let phase = if terminal { phase } else { "Failed".to_owned() };
    st.insert("phase".into(), phase.clone().into());
    for key in ["initContainerStatuses", "containerStatuses"] {
        if let Some(list) = st.get_mut(key).and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                let ended = c.get("state").and_then(|s| s.get("terminated")).is_some();
                if !ended {
                    c.insert(
                        "state".into(),
                        json!({ "terminated": {
                            "exitCode": 137,
                            "reason": "ContainerStatusUnknown",
                            "message": "The container could not be located when the pod was terminated",
                        }}),
                    );
                }
                c.insert("ready".into(), false.into());
                c.insert("started".into(), false.into());
            }
        }
    }
    let reason = if phase == "Succeeded" {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    if let Some(conditions) = st.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
            let kind = c.get("type").and_then(Value::as_str).unwrap_or_default();
            if matches!(kind, "Ready" | "ContainersReady") {
                c.insert("status".into(), "False".into());
                c.insert("reason".into(), reason.into());
            }
        }
    }
    status
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Sends the API pods' statuses and the final deletes.
pub struct StatusManager {
    api: kube::Client,
    node_name: String,
    registry: PodRegistry,
    pods: ApiPods,
    host_ips: Vec<String>,
    /// The status last sent, by pod UID.
    sent: HashMap<String, Value>,
    /// `startTime` by pod UID.
    start_times: HashMap<String, String>,
    /// The record last turned into a status, by pod UID (skips unchanged pods cheaply).
    seen: HashMap<String, PodInfo>,
    /// Failures already logged, by pod UID.
    failing: HashMap<String, String>,
}

impl std::fmt::Debug for StatusManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusManager")
            .field("node_name", &self.node_name)
            .field("pods", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl StatusManager {
    /// A manager for node `node_name`'s API pods (`pods`), whose runtime state `registry` has,
    /// with the node's IPs (`hostIP`/`hostIPs`; the first is the primary).
    #[must_use]
    pub fn new(
        client: kube::Client,
        node_name: impl Into<String>,
        registry: PodRegistry,
        pods: ApiPods,
        host_ips: Vec<String>,
    ) -> Self {
        Self {
            api: client,
            node_name: node_name.into(),
            registry,
            pods,
            host_ips,
            sent: HashMap::new(),
            start_times: HashMap::new(),
            seen: HashMap::new(),
            failing: HashMap::new(),
        }
    }

    fn pods_api(&self, namespace: &str) -> kube::Api<Pod> {
        kube::Api::namespaced(self.api.clone(), namespace)
    }

    /// One round: a status patch for each API pod whose status changed, then the final delete
    /// of each pod the agent has stopped for its deletion. Errors are logged (once per pod
    /// until they change) and retried next round.
    pub async fn sync_once(&mut self) {
        // API pods under their own UID; static pods through their mirror pod (skipped while it
        // does not exist or is stale), as the kubelet's status manager.
        let mirrors = self.pods.mirror_pods();
        let targets: Vec<(String, PodInfo)> = self
            .registry
            .list()
            .into_iter()
            .filter_map(|p| match &p.source {
                PodSource::Api => Some((p.uid.clone(), p)),
                PodSource::File(_) => {
                    let m = mirrors.get(&format!("{}/{}", p.namespace, p.name))?;
                    let current = m.metadata.deletion_timestamp.is_none()
                        && m.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(node_runtime::ANNOTATION_CONFIG_MIRROR))
                            == Some(&p.uid);
                    let uid = m.metadata.uid.clone().filter(|_| current)?;
                    Some((uid, p))
                }
            })
            .collect();
        let live: HashSet<String> = targets.iter().map(|(uid, _)| uid.clone()).collect();
        for (uid, info) in targets {
            if self.seen.get(&uid) == Some(&info) && self.sent.contains_key(&uid) {
                continue;
            }
            match self.send_status(&uid, &info).await {
                Ok(()) => {
                    self.failing.remove(&uid);
                    self.seen.insert(uid, info);
                }
                Err(e) => self.failed(&uid, "sending pod status", &e),
            }
        }
        let terminated = self.pods.terminated();
        for pod in &terminated {
            match self.finish(pod).await {
                Ok(()) => {
                    self.failing.remove(&pod.uid);
                    tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), "pod fully terminated and removed from the API server");
                }
                Err(e) => self.failed(&pod.uid, "deleting the pod", &e),
            }
        }
        // Forget pods neither running nor waiting for their delete.
        let waiting: HashSet<String> = terminated.into_iter().map(|p| p.uid).collect();
        let keep = |uid: &String| live.contains(uid) || waiting.contains(uid);
        self.sent.retain(|uid, _| keep(uid));
        self.seen.retain(|uid, _| keep(uid));
        self.start_times.retain(|uid, _| keep(uid));
        self.failing.retain(|uid, _| keep(uid));
    }

    fn failed(&mut self, uid: &str, what: &str, e: &Error) {
        let text = node_util::error_chain(e);
        if self.failing.get(uid) != Some(&text) {
            tracing::warn!(pod_uid = %uid, error = %text, "{what}");
            self.failing.insert(uid.to_owned(), text);
        }
    }

    /// Sends `info`'s status to the API pod with `uid` (the pod itself or a static pod's mirror).
    async fn send_status(&mut self, uid: &str, info: &PodInfo) -> Result<()> {
        let start = self
            .start_times
            .entry(uid.to_owned())
            .or_insert_with(|| {
                // After an agent restart the API server still has the first one.
                info.pod
                    .as_ref()
                    .and_then(|p| p.status.as_ref())
                    .and_then(|s| s.start_time.as_ref())
                    .map_or_else(now_rfc3339, |t| {
                        t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
                    })
            })
            .clone();
        let mut status = desired_status(info, &self.node_name, &self.host_ips, &start);
        // The previous status: what was sent, else (after an agent restart) the API's.
        let api_status = info
            .pod
            .as_ref()
            .filter(|p| p.metadata.uid.as_deref() == Some(uid))
            .and_then(|p| p.status.as_ref())
            .and_then(|st| serde_json::to_value(st).ok());
        let previous = self.sent.get(uid).or(api_status.as_ref());
        stamp_conditions(&mut status, previous, &now_rfc3339());
        if self.sent.get(uid) == Some(&status) {
            return Ok(());
        }
        let Some(patch) = pod_status_patch(uid, &status, previous) else {
            return Ok(());
        };
        self.patch(&info.namespace, &info.name, &patch).await?;
        self.sent.insert(uid.to_owned(), status);
        Ok(())
    }

    async fn patch(&self, namespace: &str, name: &str, patch: &Value) -> Result<()> {
        let result = self
            .pods_api(namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::api(
                format!("failed to patch status {patch} for pod \"{namespace}\"/\"{name}\""),
                e,
            )),
        }
    }

    /// The terminal status, then the DELETE with grace period 0 and the UID precondition.
    async fn finish(&mut self, pod: &TerminatedPod) -> Result<()> {
        // From the pod's final record (how its containers really ended) when the agent still
        // has it, even if sending that status failed; else from what was sent.
        let record = self.registry.get_by_uid(&pod.uid).map(|info| {
            let start = self
                .start_times
                .get(&pod.uid)
                .cloned()
                .unwrap_or_else(now_rfc3339);
            let mut st = desired_status(&info, &self.node_name, &self.host_ips, &start);
            stamp_conditions(&mut st, self.sent.get(&pod.uid), &now_rfc3339());
            st
        });
        let status = terminal_status(record.as_ref().or(self.sent.get(&pod.uid)));
        if self.sent.get(&pod.uid) != Some(&status) {
            let body = match self.sent.get(&pod.uid) {
                Some(old) => with_deletions(&status, old, true),
                None => status.clone(),
            };
            let patch = json!({ "metadata": { "uid": pod.uid }, "status": body });
            match self.patch(&pod.namespace, &pod.name, &patch).await {
                Ok(()) => {
                    self.sent.insert(pod.uid.clone(), status);
                }
                // Gone already, or another pod under that name now: nothing left to do.
                Err(e) if matches!(e.status_code(), Some(404 | 409)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(pod.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .pods_api(&pod.namespace)
            .delete(&pod.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(()),
            Err(e) => Err(Error::api(
                format!("deleting pod {}/{}", pod.namespace, pod.name),
                e,
            )),
        }
    }

    /// A round whenever a pod's record changes ([`PodRegistry::subscribe`]) and at least
    /// every [`STATUS_PERIOD`] (the kubelet's status manager: on each change, and a 10 s
    /// resync), until `stop` turns true.
    pub async fn run(mut self, stop: watch::Receiver<bool>) {
        let stopped = node_util::stopped(stop);
        tokio::pin!(stopped);
        let mut changes = self.registry.subscribe();
        let mut tick = tokio::time::interval(STATUS_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopped => {
                    // What changed last (pods stopped for the node's shutdown) is sent before
                    // the agent goes, for at most a few seconds.
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.sync_once()).await;
                    return;
                }
                _ = tick.tick() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        // The registry is gone: only the resync is left.
                        changes = self.registry.subscribe();
                    }
                }
            }
            self.sync_once().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ips_take_the_first_internal_then_the_other_family() {
        let addr = |t: &str, a: &str| k8s_openapi::api::core::v1::NodeAddress {
            type_: t.into(),
            address: a.into(),
        };
        let list = [
            addr("Hostname", "n1"),
            addr("ExternalIP", "203.0.113.9"),
            addr("InternalIP", "10.0.0.5"),
            addr("InternalIP", "10.0.0.6"),
            addr("InternalIP", "fd00::5"),
        ];
        assert_eq!(node_host_ips(&list), ["10.0.0.5", "fd00::5"]);
        assert_eq!(node_host_ips(&list[..2]), ["203.0.113.9"]);
        assert!(node_host_ips(&list[..1]).is_empty());
    }

    #[test]
    fn condition_times_change_only_with_the_status() {
        let previous = json!({"conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]});
        let mut status = json!({"observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"}
        ]});
        stamp_conditions(&mut status, Some(&previous), "2026-02-02T00:00:00Z");
        assert_eq!(
            status["conditions"][0]["lastTransitionTime"],
            "2026-02-02T00:00:00Z"
        );
        assert_eq!(
            status["conditions"][1]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(status["conditions"][1]["lastProbeTime"], Value::Null);
        assert_eq!(status["conditions"][0]["observedGeneration"], 3);
        let mut fresh = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        stamp_conditions(&mut fresh, None, "2026-03-03T00:00:00Z");
        assert_eq!(
            fresh["conditions"][0]["lastTransitionTime"],
            "2026-03-03T00:00:00Z"
        );
        assert!(fresh["conditions"][0].get("observedGeneration").is_none());
    }

    #[test]
    fn patch_only_when_changed_and_with_the_uid() {
        let s = json!({"phase": "Running"});
        assert_eq!(pod_status_patch("u1", &s, Some(&s)), None);
        assert_eq!(
            pod_status_patch("u1", &s, None),
            Some(json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running"}}))
        );
    }

    #[test]
    fn patches_delete_what_the_status_no_longer_has() {
        let old = json!({
            "phase": "Running", "message": "m", "nominatedNodeName": "other",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                           {"type": "DisruptionTarget", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1}}}],
        });
        let new = json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true,
                "state": {"running": {"startedAt": "t"}},
                "lastState": {"terminated": {"exitCode": 1}}}],
        });
        let patch = pod_status_patch("u", &new, Some(&old)).unwrap();
        let st = &patch["status"];
        assert_eq!(st["message"], Value::Null);
        assert!(st.as_object().unwrap().contains_key("message"));
        // Another writer's field is left alone.
        assert!(!st.as_object().unwrap().contains_key("nominatedNodeName"));
        assert_eq!(
            st["conditions"],
            json!([{"type": "Ready", "status": "True", "reason": null}])
        );
        assert_eq!(
            st["containerStatuses"][0]["state"],
            json!({"running": {"startedAt": "t"}, "waiting": null})
        );
        assert_eq!(
            st["containerStatuses"][0]["lastState"],
            json!({"terminated": {"exitCode": 1}})
        );
        assert_eq!(pod_status_patch("u", &new, Some(&new)), None);
    }

    #[test]
    fn terminal_status_fails_running_pods_and_ends_their_containers() {
        let last = json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [
                {"name": "a", "ready": true, "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
                {"name": "b", "ready": false, "started": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]
        });
        let t = terminal_status(Some(&last));
        assert_eq!(t["phase"], "Failed");
        assert_eq!(
            t["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );
        assert_eq!(
            t["containerStatuses"][0]["state"]["terminated"]["reason"],
            "ContainerStatusUnknown"
        );
        assert_eq!(t["containerStatuses"][0]["ready"], false);
        assert_eq!(
            t["containerStatuses"][1]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(t["conditions"][0]["status"], "False");
        assert_eq!(t["conditions"][0]["reason"], "PodFailed");
        assert_eq!(t["conditions"][1]["reason"], "PodFailed");
        assert_eq!(t["conditions"][2]["status"], "True");
        let done = terminal_status(Some(
            &json!({"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}]}),
        ));
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(done["conditions"][0]["reason"], "PodCompleted");
        assert_eq!(terminal_status(None)["phase"], "Failed");
    }
}
