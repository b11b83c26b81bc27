//! Pods as the API shows them: the kubelet's `GET /pods` answer, a `v1` `PodList` of full Pod
//! objects (metadata and spec from the manifest with the static-pod name, UID and
//! `kubernetes.io/config.*` annotations; status from the runtime as the registry has it).
//!
//! ```
//! let list = node_runtime::pod_status::pod_list(&[], "node-1", Some("10.0.0.5"));
//! assert_eq!(list["kind"], "PodList");
//! ```

use node_kernel::QosClass;
use serde_json::{Map, Value, json};

use crate::registry::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase};
use crate::spec::{PodIdentity, pod_qos};

/// The `PodList` for `pods`, each with the spec its source gave (a static pod's manifest read
/// again against `node_name` when its record has none). `host_ip` is the node's address (static pods run with the host's network).
pub fn pod_list(pods: &[PodInfo], node_name: &str, host_ip: Option<&str>) -> Value {
    let items: Vec<Value> = pods
        .iter()
        .map(|p| pod_object(p, node_name, host_ip))
        .collect();
    json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    })
}

/// The pod's `status` as the API shows it (phase, reason, message, conditions, hostIP and
/// podIP, container and init container statuses, `qosClass`), from the runtime as the
/// registry has it: what `/pods` shows and what is sent to the API server.
pub fn api_status(info: &PodInfo, node_name: &str, host_ip: Option<&str>) -> Value {
    let desired = desired_pod(info, node_name);
    status_with_qos(info, node_name, host_ip, desired.as_deref())
}

fn status_with_qos(
    info: &PodInfo,
    node_name: &str,
    host_ip: Option<&str>,
    desired: Option<&k8s_openapi::api::core::v1::Pod>,
) -> Value {
    // The QoS class the runtime side computes for cgroups and swap (BestEffort when the pod
    // is not known: the pod is being torn down).
    let qos = desired.map_or(QosClass::BestEffort, |p| {
        let id = PodIdentity {
            namespace: info.namespace.clone(),
            name: info.name.clone(),
            uid: info.uid.clone(),
            node_name: node_name.to_owned(),
        };
        pod_qos(p, &id).unwrap_or(QosClass::BestEffort)
    });
    let mut status = pod_status(info, host_ip);
    if let Some(st) = status.as_object_mut() {
        st.insert("qosClass".into(), qos_name(qos).into());
    }
    status
}

fn pod_object(info: &PodInfo, node_name: &str, host_ip: Option<&str>) -> Value {
    let desired = desired_pod(info, node_name);
    let status = status_with_qos(info, node_name, host_ip, desired.as_deref());
    let mut pod = desired
        .and_then(|p| serde_json::to_value(&*p).ok())
        .unwrap_or_else(|| {
            json!({
                "metadata": { "name": info.name, "namespace": info.namespace, "uid": info.uid },
                "spec": {},
            })
        });
    if let Some(obj) = pod.as_object_mut() {
        obj.insert("kind".into(), "Pod".into());
        obj.insert("apiVersion".into(), "v1".into());
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), node_name.into());
        }
        obj.insert("status".into(), status);
    }
    pod
}

/// The pod behind `info`: the one its source gave, or for a hand-built record of a static
/// pod, its manifest read again (bounded, as the source reads it).
pub(crate) fn desired_pod(
    info: &PodInfo,
    node_name: &str,
) -> Option<std::sync::Arc<k8s_openapi::api::core::v1::Pod>> {
    if let Some(pod) = &info.pod {
        return Some(pod.clone());
    }
    let path = info.source.manifest()?;
    crate::manifest::read_manifest(path, node_name)
        .ok()
        .map(|m| m.pod)
}

/// The API's name of a QoS class (`status.qosClass`).
fn qos_name(qos: QosClass) -> &'static str {
    match qos {
        QosClass::Guaranteed => "Guaranteed",
        QosClass::Burstable => "Burstable",
        QosClass::BestEffort => "BestEffort",
    }
}

fn pod_status(info: &PodInfo, host_ip: Option<&str>) -> Value {
    let phase = match info.phase {
        PodPhase::Pending => "Pending",
        PodPhase::Running => "Running",
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
    };
    // `PodReadyToStartContainers` (beta, on in 1.35) first, as the kubelet orders it: true
    // while the pod has a ready sandbox. Pods refused at admission have no conditions.
    let sandbox_condition = (!info.conditions.is_empty()).then(|| {
        json!({
            "type": "PodReadyToStartContainers",
            "status": if info.sandbox_id.is_some() { "True" } else { "False" },
        })
    });
    let conditions: Vec<Value> = sandbox_condition
        .into_iter()
        .chain(info.conditions.iter().map(|c| {
            let mut obj = Map::new();
            obj.insert("type".into(), c.type_.clone().into());
            obj.insert(
                "status".into(),
                (if c.status { "True" } else { "False" }).into(),
            );
            if let Some(reason) = &c.reason {
                obj.insert("reason".into(), reason.clone().into());
            }
            if let Some(message) = &c.message {
                obj.insert("message".into(), message.clone().into());
            }
            Value::Object(obj)
        }))
        .collect();
    let statuses = |kind: ContainerKind| -> Vec<Value> {
        info.containers
            .iter()
            .filter(|c| c.kind == kind)
            .map(container_status)
            .collect()
    };
    let mut status = Map::new();
    status.insert("phase".into(), phase.into());
    if let Some(reason) = &info.reason {
        status.insert("reason".into(), reason.clone().into());
    }
    if let Some(message) = &info.message {
        status.insert("message".into(), message.clone().into());
    }
    status.insert("conditions".into(), conditions.into());
    if let Some(ip) = host_ip {
        status.insert("hostIP".into(), ip.into());
    }
    // A host-network pod's IP is the node's; any other pod's comes from its sandbox.
    let host_network = info
        .pod
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .is_none_or(|s| s.host_network == Some(true));
    let pod_ips: Vec<&str> = if host_network {
        host_ip.into_iter().collect()
    } else {
        info.pod_ips.iter().map(String::as_str).collect()
    };
    if let Some(first) = pod_ips.first() {
        status.insert("podIP".into(), (*first).into());
        let ips: Vec<Value> = pod_ips.iter().map(|ip| json!({ "ip": ip })).collect();
        status.insert("podIPs".into(), ips.into());
    }
    let init = statuses(ContainerKind::Init);
    if !init.is_empty() {
        status.insert("initContainerStatuses".into(), init.into());
    }
    status.insert(
        "containerStatuses".into(),
        statuses(ContainerKind::Regular).into(),
    );
    Value::Object(status)
}

fn container_status(c: &ContainerInfo) -> Value {
    let state = state_value(&c.state);
    let mut obj = Map::new();
    obj.insert("name".into(), c.name.clone().into());
    obj.insert("state".into(), state);
    // As the kubelet: `{}` when there is no previous instance.
    obj.insert(
        "lastState".into(),
        c.last_state.as_ref().map_or_else(|| json!({}), state_value),
    );
    obj.insert("ready".into(), c.ready.into());
    obj.insert("restartCount".into(), c.restart_count.into());
    obj.insert("image".into(), c.image.clone().into());
    if let Some(id) = &c.container_id {
        obj.insert("containerID".into(), format!("containerd://{id}").into());
    }
    if let Some(image_id) = &c.image_id {
        obj.insert("imageID".into(), image_id.clone().into());
    }
    let running = matches!(c.state, ContainerState::Running { .. });
    obj.insert(
        "started".into(),
        (running && c.started.unwrap_or(true)).into(),
    );
    Value::Object(obj)
}

/// A container state as the API shows it (`{"running": ...}`, `{"terminated": ...}`, ...).
fn state_value(state: &ContainerState) -> Value {
    match state {
        ContainerState::Waiting { reason, message } => {
            let mut w = Map::new();
            w.insert("reason".into(), reason.clone().into());
            if !message.is_empty() {
                w.insert("message".into(), message.clone().into());
            }
            json!({ "waiting": w })
        }
        ContainerState::Running { started_at } => {
            json!({ "running": { "startedAt": rfc3339(*started_at) } })
        }
        ContainerState::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
            message,
            container_id,
        } => {
            let mut t = json!({
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": rfc3339(*started_at),
                "finishedAt": rfc3339(*finished_at),
            });
            if !message.is_empty() {
                t["message"] = message.clone().into();
            }
            if !container_id.is_empty() {
                t["containerID"] = format!("containerd://{container_id}").into();
            }
            json!({ "terminated": t })
        }
    }
}

/// Unix nanoseconds as the API's RFC 3339 seconds (`2026-11-27T20:00:00Z`).
fn rfc3339(nanos: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::registry::PodCondition;

    #[test]
    fn pod_list_has_manifest_spec_and_runtime_status() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("web.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  hostNetwork: true\n  containers:\n  - name: app\n    image: busybox\n",
        )
        .unwrap();
        let info = PodInfo {
            namespace: "default".into(),
            name: "web-node1".into(),
            uid: "abc".into(),
            source: crate::PodSource::File(manifest),
            pod: None,
            sandbox_id: Some("s1".into()),
            pod_ips: Vec::new(),
            phase: PodPhase::Running,
            reason: None,
            message: None,
            conditions: vec![PodCondition {
                type_: "Ready".into(),
                status: true,
                reason: None,
                message: None,
            }],
            containers: vec![ContainerInfo {
                name: "app".into(),
                kind: ContainerKind::Regular,
                container_id: Some("c1".into()),
                image: "busybox".into(),
                state: ContainerState::Running {
                    started_at: 1_700_000_000_000_000_000,
                },
                restart_count: 2,
                ready: true,
                log_path: Some(PathBuf::from("/var/log/pods/x/app/0.log")),
                image_id: None,
                last_state: None,
                started: None,
            }],
        };
        let list = pod_list(&[info], "node1", Some("10.0.0.5"));
        assert_eq!(list["kind"], "PodList");
        let pod = &list["items"][0];
        assert_eq!(pod["metadata"]["name"], "web-node1");
        assert_eq!(pod["spec"]["nodeName"], "node1");
        assert_eq!(pod["spec"]["containers"][0]["image"], "busybox");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["podIP"], "10.0.0.5");
        let c = &pod["status"]["containerStatuses"][0];
        assert_eq!(c["containerID"], "containerd://c1");
        assert_eq!(c["restartCount"], 2);
        assert_eq!(c["lastState"], serde_json::json!({}));
        assert_eq!(c["state"]["running"]["startedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(
            pod["status"]["conditions"][0]["type"],
            "PodReadyToStartContainers"
        );
        assert_eq!(pod["status"]["conditions"][0]["status"], "True");
        assert_eq!(pod["status"]["conditions"][1]["type"], "Ready");
        assert_eq!(pod["status"]["conditions"][1]["status"], "True");
    }

    /// A pod with no sandbox or containers yet, from `manifest`.
    fn pending(namespace: &str, name: &str, manifest: PathBuf) -> PodInfo {
        PodInfo {
            namespace: namespace.into(),
            name: name.into(),
            uid: "u".into(),
            source: crate::PodSource::File(manifest),
            pod: None,
            sandbox_id: None,
            pod_ips: Vec::new(),
            phase: PodPhase::Pending,
            reason: None,
            message: None,
            conditions: vec![],
            containers: vec![],
        }
    }

    /// The class comes from node-runtime's quantity-aware rule: `1` CPU and `1000m` are equal.
    #[test]
    fn qos_class_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let class = |resources: &str| {
            let manifest = dir.path().join("p.yaml");
            std::fs::write(
                &manifest,
                format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: busybox\n{resources}"),
            )
            .unwrap();
            let info = pending("default", "p-node1", manifest);
            pod_list(&[info], "node1", None)["items"][0]["status"]["qosClass"].clone()
        };
        assert_eq!(class(""), "BestEffort");
        assert_eq!(
            class(
                "    resources:\n      limits: {cpu: '1', memory: 1Gi}\n      requests: {cpu: 1000m, memory: 1Gi}\n"
            ),
            "Guaranteed"
        );
        assert_eq!(
            class("    resources:\n      requests: {cpu: '1'}\n"),
            "Burstable"
        );
        assert_eq!(
            class(
                "    resources:\n      limits: {cpu: '2', memory: 1Gi}\n      requests: {cpu: '1', memory: 1Gi}\n"
            ),
            "Burstable"
        );
    }

    #[test]
    fn a_pod_whose_manifest_is_gone_still_lists() {
        let info = pending(
            "kube-system",
            "gone-node1",
            PathBuf::from("/nonexistent/gone.yaml"),
        );
        let list = pod_list(&[info], "node1", None);
        assert_eq!(list["items"][0]["metadata"]["namespace"], "kube-system");
        assert_eq!(list["items"][0]["status"]["phase"], "Pending");
    }
}
