//! The node status as the kubelet computes it: setters in `defaultNodeStatusFuncs()` order
//! (addresses, machine info, version info, daemon endpoints, OS/arch, pressure conditions,
//! Ready last), the initial Node for registration, and change detection that ignores
//! heartbeat times.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::Result;
use crate::conditions::{self, RuntimeHealth};
use crate::labels::{self, go_arch, go_os};
use crate::machine::MachineFacts;
use crate::pressure::Pressure;
use crate::resources::{self, CapacityConfig, Reservations};

/// The kubelet's default port (`kubeletEndpoint.Port`).
pub const KUBELET_PORT: i32 = 10250;

/// Annotation the kubelet sets at registration.
pub const ATTACH_DETACH_ANNOTATION: &str = "volumes.kubernetes.io/controller-managed-attach-detach";

/// Container runtime identity for `nodeInfo.containerRuntimeVersion` (from CRI `Version`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// `runtime_name`, e.g. `containerd`.
    pub name: String,
    /// `runtime_version`, e.g. `1.6.20`.
    pub version: String,
}

impl RuntimeVersion {
    /// `<runtime>://<version>`, or `Unknown` when the version call failed (`None`).
    pub fn format(v: Option<&RuntimeVersion>) -> String {
        match v {
            Some(v) => format!("{}://{}", v.name, v.version),
            None => "Unknown".to_owned(),
        }
    }
}

/// Everything the setters read, static and dynamic. Build once, update the dynamic parts
/// (`runtime_health`, `pressure`, `runtime_version`) as they change.
#[derive(Debug, Clone)]
pub struct NodeStatusInputs {
    /// The node name.
    pub node_name: String,
    /// `status.addresses`, computed by [`crate::node_addresses`].
    pub addresses: Vec<NodeAddress>,
    /// Machine facts.
    pub machine: MachineFacts,
    /// Capacity knobs.
    pub capacity: CapacityConfig,
    /// Reservations for allocatable.
    pub reservations: Reservations,
    /// Runtime identity (`None` if the CRI version call failed).
    pub runtime_version: Option<RuntimeVersion>,
    /// The Kubernetes version the agent implements, reported as `kubeletVersion` (default
    /// [`node_config::KUBERNETES_VERSION`], `v1.35.0`).
    pub kubelet_version: String,
    /// The kubelet port.
    pub kubelet_port: i32,
    /// Runtime health for the Ready condition.
    pub runtime_health: RuntimeHealth,
    /// Current pressure.
    pub pressure: Pressure,
    /// Ready-condition warnings (`. WARNING: ...`).
    pub warnings: Vec<String>,
    /// Whether LocalStorageCapacityIsolation is on (then `ephemeral-storage` is required for Ready).
    pub local_storage_capacity_isolation: bool,
    /// `declaredFeatures` when the NodeDeclaredFeatures gate is on (`None`: gate off).
    pub declared_features: Option<Vec<String>>,
}

impl NodeStatusInputs {
    /// Inputs with defaults for everything but the machine and name.
    pub fn new(node_name: impl Into<String>, machine: MachineFacts) -> Self {
        NodeStatusInputs {
            node_name: node_name.into(),
            addresses: Vec::new(),
            machine,
            capacity: CapacityConfig::default(),
            reservations: Reservations::default(),
            runtime_version: None,
            kubelet_version: node_config::KUBERNETES_VERSION.to_owned(),
            kubelet_port: KUBELET_PORT,
            runtime_health: RuntimeHealth::default(),
            pressure: Pressure::default(),
            warnings: Vec::new(),
            local_storage_capacity_isolation: true,
            declared_features: None,
        }
    }

    /// Runs the setters over `previous` (the status last seen on the API server) and returns
    /// the new status. `now` stamps heartbeats; `mono` is the monotonic clock for runtime health.
    pub fn compute(
        &self,
        previous: &NodeStatus,
        now: Timestamp,
        mono: Instant,
    ) -> Result<NodeStatus> {
        let mut st = previous.clone();
        // 1. NodeAddress
        st.addresses = Some(self.addresses.clone());
        // 2. MachineInfo, over the capacity and allocatable on the server (device-plugin
        // resources: see `resources::node_resources`).
        let (cap, alloc) = resources::node_resources(
            previous.capacity.as_ref(),
            previous.allocatable.as_ref(),
            &self.machine,
            &self.capacity,
            &self.reservations,
        )?;
        // 3. VersionInfo and 6. GoRuntime
        let info = st.node_info.get_or_insert_with(NodeSystemInfo::default);
        info.machine_id.clone_from(&self.machine.machine_id);
        info.system_uuid.clone_from(&self.machine.system_uuid);
        info.boot_id.clone_from(&self.machine.boot_id);
        info.kernel_version.clone_from(&self.machine.kernel_version);
        info.os_image.clone_from(&self.machine.os_image);
        info.container_runtime_version = RuntimeVersion::format(self.runtime_version.as_ref());
        info.kubelet_version.clone_from(&self.kubelet_version);
        info.kube_proxy_version = String::new();
        info.operating_system = go_os().to_owned();
        info.architecture = go_arch().to_owned();
        // 4. DaemonEndpoints
        st.daemon_endpoints = Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: self.kubelet_port,
            }),
        });
        // 8. pressure conditions, 9. Ready last.
        let mut conds = st.conditions.take().unwrap_or_default();
        conditions::set_pressure_conditions(&mut conds, self.pressure, now);
        let mut required = vec!["cpu", "memory", "pods"];
        if self.local_storage_capacity_isolation {
            required.push("ephemeral-storage");
        }
        let missing: Vec<&str> = required
            .into_iter()
            .filter(|r| !cap.contains_key(*r))
            .collect();
        st.capacity = Some(cap);
        st.allocatable = Some(alloc);
        conditions::set_ready_condition(
            &mut conds,
            &self.runtime_health.errors(mono),
            &missing,
            &self.warnings,
            now,
        );
        // Keep Ready last among the conditions (version-skew rule, kubernetes#16961).
        if let Some(i) = conds.iter().position(|c| c.type_ == conditions::READY) {
            let ready = conds.remove(i);
            conds.push(ready);
        }
        st.conditions = Some(conds);
        Ok(st)
    }

    /// The Node POSTed at registration (`initialNode`): name, default labels plus
    /// `--node-labels`, the attach/detach annotation, registration taints, and a first status.
    pub fn initial_node(
        &self,
        hostname: &str,
        node_labels: &BTreeMap<String, String>,
        taints: Vec<Taint>,
        now: Timestamp,
        mono: Instant,
    ) -> Result<Node> {
        let status = self.compute(&NodeStatus::default(), now, mono)?;
        Ok(Node {
            metadata: ObjectMeta {
                name: Some(self.node_name.clone()),
                labels: Some(labels::default_labels(hostname, node_labels)),
                annotations: Some(
                    [(ATTACH_DETACH_ANNOTATION.to_owned(), "true".to_owned())].into(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: (!taints.is_empty()).then_some(taints),
                ..Default::default()
            }),
            status: Some(status),
        })
    }
}

fn without_heartbeats(st: &NodeStatus) -> NodeStatus {
    let mut s = st.clone();
    if let Some(conds) = s.conditions.as_mut() {
        for c in conds.iter_mut() {
            c.last_heartbeat_time = None;
        }
        conds.sort_by(|a, b| a.type_.cmp(&b.type_));
    }
    s
}

/// `nodeStatusHasChanged`: compares conditions sorted by type with heartbeat times ignored,
/// and every other status field as is.
pub fn status_changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    without_heartbeats(old) != without_heartbeats(new)
}

/// The strategic-merge patch body sent to `nodes/<name>/status`: the status fields this agent
/// owns, with `$setElementOrder/conditions` so the server keeps the kubelet's order, and
/// `declaredFeatures` when given.
///
/// `capacity` and `allocatable` are maps, which a strategic merge patch merges key by key: a
/// key left out keeps the server's value. So every key of `old` (the status the new one was
/// computed from, as read from the server) that `new` no longer has is sent as `null`, which
/// deletes it, as the two-way merge patch of the kubelet's `PatchNodeStatus` does (this is
/// how a stale extended allocatable key goes away). A removed device-plugin resource is not
/// dropped but sent as `"0"` (see `resources::node_resources`).
pub fn status_patch(
    old: &NodeStatus,
    new: &NodeStatus,
    declared_features: Option<&[String]>,
) -> serde_json::Value {
    let mut status = serde_json::to_value(new).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut status {
        for (field, before, after) in [
            ("capacity", &old.capacity, &new.capacity),
            ("allocatable", &old.allocatable, &new.allocatable),
        ] {
            let Some(before) = before else { continue };
            let gone: Vec<&String> = before
                .keys()
                .filter(|k| after.as_ref().is_none_or(|a| !a.contains_key(*k)))
                .collect();
            if gone.is_empty() {
                continue;
            }
            let entry = map
                .entry(field.to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(m) = entry {
                for k in gone {
                    m.insert(k.clone(), serde_json::Value::Null);
                }
            }
        }
        if let Some(conds) = &new.conditions {
            let order: Vec<serde_json::Value> = conds
                .iter()
                .map(|c| serde_json::json!({ "type": c.type_ }))
                .collect();
            map.insert("$setElementOrder/conditions".to_owned(), order.into());
        }
        if let Some(f) = declared_features {
            map.insert("declaredFeatures".to_owned(), serde_json::json!(f));
        }
    }
    serde_json::json!({ "status": status })
}

/// The condition of `type_` in a status, if any.
pub fn find_condition<'a>(st: &'a NodeStatus, type_: &str) -> Option<&'a NodeCondition> {
    st.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Normalises a `declaredFeatures` list as the kubelet publishes it: sorted, de-duplicated,
/// invalid entries (not CamelCase `Feature` or `Feature/SubFeature`, or longer than 253) dropped.
pub fn normalize_declared_features(features: &[String]) -> Vec<String> {
    let valid_part = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && p.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let mut out: Vec<String> = features
        .iter()
        .filter(|f| {
            let ok = f.len() <= 253 && {
                let parts: Vec<&str> = f.split('/').collect();
                parts.len() <= 2 && parts.iter().all(|p| valid_part(p))
            };
            if !ok {
                tracing::error!(feature = %f, "dropping invalid declared feature");
            }
            ok
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inputs() -> NodeStatusInputs {
        let dir = tempfile::tempdir().unwrap();
        crate::machine::tests::fixture_root(dir.path());
        let mut i = NodeStatusInputs::new("node-1", MachineFacts::read(dir.path()).unwrap());
        i.capacity.ephemeral_storage_bytes = Some(100 << 30);
        i.reservations.eviction_hard =
            crate::EvictionThresholds::parse(&node_config::default_eviction_hard()).unwrap();
        i.runtime_version = Some(RuntimeVersion {
            name: "containerd".into(),
            version: "1.6.20".into(),
        });
        i.addresses = vec![NodeAddress {
            type_: "InternalIP".into(),
            address: "10.0.0.5".into(),
        }];
        i
    }

    #[test]
    fn setters_fill_every_field_in_order() {
        let mono = Instant::now();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut i = inputs();
        i.runtime_health = RuntimeHealth::healthy(mono);
        let st = i.compute(&NodeStatus::default(), now, mono).unwrap();
        let info = st.node_info.as_ref().unwrap();
        assert_eq!(info.machine_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(info.system_uuid, "4C4C4544-0042-3510-8052-B4C04F564433");
        assert_eq!(info.boot_id, "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11");
        assert_eq!(info.kernel_version, "6.18.0-test");
        assert_eq!(info.os_image, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.architecture, go_arch());
        assert_eq!(st.capacity.as_ref().unwrap()["memory"].0, "8Gi");
        assert_eq!(st.capacity.as_ref().unwrap()["hugepages-2Mi"].0, "1Gi");
        // 8Gi - 100Mi - 1Gi hugepages
        assert_eq!(st.allocatable.as_ref().unwrap()["memory"].0, "7068Mi");
        assert_eq!(
            st.daemon_endpoints
                .as_ref()
                .unwrap()
                .kubelet_endpoint
                .as_ref()
                .unwrap()
                .port,
            10250
        );
        let types: Vec<&str> = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            vec!["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert_eq!(
            find_condition(&st, "Ready").unwrap().reason.as_deref(),
            Some("KubeletReady")
        );

        // Unknown runtime version, missing ephemeral-storage -> NotReady with the kubelet text.
        let mut j = inputs();
        j.runtime_version = None;
        j.capacity.ephemeral_storage_bytes = None;
        j.runtime_health = RuntimeHealth::healthy(mono);
        let st = j.compute(&NodeStatus::default(), now, mono).unwrap();
        assert_eq!(
            st.node_info.as_ref().unwrap().container_runtime_version,
            "Unknown"
        );
        assert_eq!(
            find_condition(&st, "Ready").unwrap().message.as_deref(),
            Some("missing node capacity for resources: ephemeral-storage")
        );
    }

    #[test]
    fn change_detection_ignores_heartbeats() {
        let mono = Instant::now();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let mut i = inputs();
        i.runtime_health = RuntimeHealth::healthy(mono);
        let a = i.compute(&NodeStatus::default(), t0, mono).unwrap();
        let b = i.compute(&a, t1, mono + Duration::from_secs(1)).unwrap();
        assert_ne!(a, b);
        assert!(!status_changed(&a, &b));
        i.pressure.memory = true;
        let c = i.compute(&b, t1, mono).unwrap();
        assert!(status_changed(&b, &c));
        let patch = status_patch(&b, &c, Some(&["B".to_owned()]));
        assert_eq!(
            patch["status"]["$setElementOrder/conditions"][3]["type"],
            "Ready"
        );
        assert_eq!(
            patch["status"]["conditions"][0]["reason"],
            "KubeletHasInsufficientMemory"
        );
        assert_eq!(patch["status"]["declaredFeatures"][0], "B");
    }

    /// The patch carries what the server must end up with: the healthy count in allocatable,
    /// "0" for a removed device-plugin resource, and `null` for a stale extended allocatable
    /// key (a key left out of a strategic merge patch keeps the server's value).
    #[test]
    fn device_resources_reach_the_server_through_the_patch() {
        let mono = Instant::now();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut i = inputs();
        i.runtime_health = RuntimeHealth::healthy(mono);
        let gpu = "example.com/gpu".to_owned();
        i.capacity.set_device_resources(
            &[(gpu.clone(), 3)].into(),
            &[(gpu.clone(), 2)].into(),
            &[],
        );
        let mut server = i
            .initial_node("node-1", &BTreeMap::new(), vec![], now, mono)
            .unwrap();
        // Someone left an extended allocatable key without capacity on the server.
        server
            .status
            .as_mut()
            .unwrap()
            .allocatable
            .as_mut()
            .unwrap()
            .insert(
                "example.com/stale".into(),
                resources::to_quantities(&[("x".to_owned(), 1)].into())["x"].clone(),
            );
        let cap = |n: &Node, k: &str| {
            n.status
                .as_ref()
                .unwrap()
                .capacity
                .as_ref()
                .unwrap()
                .get(k)
                .map(|q| q.0.clone())
        };
        let alloc = |n: &Node, k: &str| {
            n.status
                .as_ref()
                .unwrap()
                .allocatable
                .as_ref()
                .unwrap()
                .get(k)
                .map(|q| q.0.clone())
        };
        let sync = |i: &NodeStatusInputs, server: &Node| -> Node {
            let old = server.status.clone().unwrap();
            let new = i.compute(&old, now, mono).unwrap();
            let patch = status_patch(&old, &new, None);
            crate::merge::apply_node_status_patch(server, &patch).unwrap()
        };
        server = sync(&i, &server);
        assert_eq!(cap(&server, &gpu).as_deref(), Some("3"));
        assert_eq!(alloc(&server, &gpu).as_deref(), Some("2"));
        assert_eq!(alloc(&server, "example.com/stale"), None);

        // Removed after the grace period: 0 on the server, and still 0 on later syncs.
        i.capacity.set_device_resources(
            &BTreeMap::new(),
            &BTreeMap::new(),
            std::slice::from_ref(&gpu),
        );
        let old = server.status.clone().unwrap();
        let new = i.compute(&old, now, mono).unwrap();
        let patch = status_patch(&old, &new, None);
        assert_eq!(patch["status"]["capacity"][&gpu], "0");
        assert_eq!(patch["status"]["allocatable"][&gpu], "0");
        server = crate::merge::apply_node_status_patch(&server, &patch).unwrap();
        for _ in 0..3 {
            i.capacity
                .set_device_resources(&BTreeMap::new(), &BTreeMap::new(), &[]);
            server = sync(&i, &server);
            assert_eq!(cap(&server, &gpu).as_deref(), Some("0"));
            assert_eq!(alloc(&server, &gpu).as_deref(), Some("0"));
        }
        assert!(!status_changed(
            server.status.as_ref().unwrap(),
            &i.compute(server.status.as_ref().unwrap(), now, mono)
                .unwrap()
        ));
    }

    #[test]
    fn initial_node_and_features() {
        let mono = Instant::now();
        let i = inputs();
        let n = i
            .initial_node(
                "node-1",
                &[("node.kubernetes.io/pool".to_owned(), "a".to_owned())].into(),
                vec![],
                Timestamp::now(),
                mono,
            )
            .unwrap();
        let labels = n.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "node-1");
        assert_eq!(labels["node.kubernetes.io/pool"], "a");
        assert_eq!(
            n.metadata.annotations.as_ref().unwrap()[ATTACH_DETACH_ANNOTATION],
            "true"
        );
        assert_eq!(
            find_condition(n.status.as_ref().unwrap(), "Ready")
                .unwrap()
                .status,
            "False"
        );
        let f = normalize_declared_features(&[
            "Zeta".into(),
            "Alpha/Sub".into(),
            "Alpha/Sub".into(),
            "bad".into(),
            "A/B/C".into(),
        ]);
        assert_eq!(f, vec!["Alpha/Sub".to_owned(), "Zeta".to_owned()]);
    }

    #[test]
    fn real_machine_status() {
        let mono = Instant::now();
        let facts = MachineFacts::read(std::path::Path::new("/")).unwrap();
        let mut i = NodeStatusInputs::new("real", facts);
        i.capacity.ephemeral_storage_bytes = Some(
            crate::FsStats::of(std::path::Path::new("/"))
                .unwrap()
                .capacity_bytes,
        );
        i.runtime_health = RuntimeHealth::healthy(mono);
        let st = i
            .compute(&NodeStatus::default(), Timestamp::now(), mono)
            .unwrap();
        assert_eq!(find_condition(&st, "Ready").unwrap().status, "True");
        let cap = st.capacity.unwrap();
        assert!(cap["cpu"].0.parse::<u32>().unwrap() >= 1);
        assert!(!st.node_info.unwrap().kernel_version.is_empty());
    }
}

/// Builds [`NodeStatusInputs`] for a node from a root (`/` or a fixture tree), the kubelet root
/// dir (for `ephemeral-storage` and nodefs) and a defaulted `KubeletConfiguration` (maxPods,
/// podsPerCore, systemReserved, kubeReserved, evictionHard). Pressure is observed once against
/// the hard eviction thresholds; runtime health and the runtime version are left for the
/// caller (until set, the node reports NotReady as a starting kubelet does).
pub fn inputs_for_root(
    root: &std::path::Path,
    root_dir: &std::path::Path,
    node_name: &str,
    kc: &node_config::KubeletConfiguration,
) -> Result<NodeStatusInputs> {
    let machine = MachineFacts::read(root)?;
    let mut inputs = NodeStatusInputs::new(node_name, machine);
    inputs.capacity.max_pods = i64::from(kc.max_pods);
    inputs.capacity.pods_per_core = i64::from(kc.pods_per_core);
    let nodefs = if root_dir.exists() { root_dir } else { root };
    inputs.capacity.ephemeral_storage_bytes = Some(crate::FsStats::of(nodefs)?.capacity_bytes);
    let eviction = kc
        .eviction_hard
        .clone()
        .unwrap_or_else(node_config::default_eviction_hard);
    let thresholds = crate::EvictionThresholds::parse(&eviction)?;
    inputs.reservations = Reservations {
        system: kc.system_reserved.clone(),
        kube: kc.kube_reserved.clone(),
        eviction_hard: thresholds.clone(),
    };
    let sources = crate::SignalSources {
        root: root.to_path_buf(),
        nodefs: nodefs.to_path_buf(),
        imagefs: None,
    };
    let obs = sources.observe()?;
    let mut tracker =
        crate::PressureTracker::new(thresholds, kc.eviction_pressure_transition_period.to_std());
    inputs.pressure = tracker.observe(&obs, Instant::now());
    Ok(inputs)
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn inputs_from_fixture_root_and_config() {
        let dir = tempfile::tempdir().unwrap();
        crate::machine::tests::fixture_root(dir.path());
        let kc = node_config::KubeletConfiguration {
            max_pods: 50,
            system_reserved: [("memory".to_owned(), "512Mi".to_owned())].into(),
            eviction_hard: Some([("memory.available".to_owned(), "5Gi".to_owned())].into()),
            ..Default::default()
        };
        let mut i = inputs_for_root(dir.path(), &dir.path().join("missing"), "fx", &kc).unwrap();
        // MemAvailable 4Gi < 5Gi: memory pressure.
        assert!(i.pressure.memory && !i.pressure.pid);
        i.runtime_health = RuntimeHealth::healthy(Instant::now());
        let st = i
            .compute(&NodeStatus::default(), Timestamp::now(), Instant::now())
            .unwrap();
        assert_eq!(st.capacity.as_ref().unwrap()["pods"].0, "50");
        // 8Gi - 512Mi - 5Gi - 1Gi hugepages = 1.5Gi
        assert_eq!(st.allocatable.as_ref().unwrap()["memory"].0, "1536Mi");
        assert_eq!(
            find_condition(&st, "MemoryPressure").unwrap().status,
            "True"
        );
    }
}
