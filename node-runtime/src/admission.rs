//! Pod admission on the node: checks that run before a pod is planned, so a refused pod never
//! gets a sandbox (the status it leaves is `pkg/kubelet/kubelet.go` `rejectPod`):
//!
//! * node pressure ([`evicted`]), as the eviction manager's admit handler
//!   (`pkg/kubelet/eviction/eviction_manager.go` `Admit`);
//! * sysctls, with node-kernel's allowlist (the safe set for this kernel plus
//!   `allowedUnsafeSysctls`, host-namespace restrictions), as the kubelet's sysctl admit handler
//!   (`pkg/kubelet/sysctl/allowlist.go` `Admit`);
//! * resources ([`fits`]), as the predicate handler's resource check (the scheduler's
//!   `noderesources.Fits` through `pkg/kubelet/lifecycle/predicate.go`): the pod's effective
//!   requests against the node's allocatable minus what the admitted pods request, and the
//!   pod count against `pods`;
//! * the predicate handler's OS checks ([`os_checks`]) and the rest of its general filter
//!   ([`predicates`]): node affinity
//!   (`nodeSelector` and required node affinity), node name, host ports, and for pods not
//!   static, `NoExecute` taints the pod does not tolerate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use node_kernel::SysctlPolicy;

/// The node's allocatable resources for admission: `cpu` in millicores, `memory`,
/// `ephemeral-storage` and `hugepages-*` in bytes, `pods` and extended resources (device
/// plugins') as counts.
pub type Allocatable = BTreeMap<String, i128>;

/// The node as admission sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmissionNode {
    /// The node's name (`metadata.name`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints.
    pub taints: Vec<Taint>,
    /// Its allocatable resources.
    pub allocatable: Allocatable,
    /// The pressure conditions it has now, in the kubelet's order (`MemoryPressure`,
    /// `DiskPressure`, `PIDPressure`).
    pub pressure: Vec<String>,
}

/// The eviction manager's admission: on a node under pressure only critical pods are admitted,
/// except that under memory pressure alone a pod that is not BestEffort, or a BestEffort pod
/// tolerating `node.kubernetes.io/memory-pressure:NoSchedule`, is admitted too. `qos` is the
/// pod's QoS class.
///
/// # Errors
/// Reason `Evicted`, message `Pod was rejected: The node had condition: [<conditions>]. `
/// (Go's rendering of the condition list).
pub fn evicted(
    pod: &Pod,
    pressure: &[String],
    qos: node_kernel::QosClass,
) -> Result<(), Rejection> {
    if pressure.is_empty() || crate::spec::is_critical_pod(pod) {
        return Ok(());
    }
    if pressure.len() == 1 && pressure[0] == "MemoryPressure" {
        let tolerates_memory_pressure = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|t| {
                tolerates(
                    t,
                    &Taint {
                        key: "node.kubernetes.io/memory-pressure".into(),
                        value: None,
                        effect: "NoSchedule".into(),
                        time_added: None,
                    },
                )
            });
        if qos != node_kernel::QosClass::BestEffort || tolerates_memory_pressure {
            return Ok(());
        }
    }
    Err(Rejection {
        reason: "Evicted".to_owned(),
        message: format!(
            "Pod was rejected: The node had condition: [{}]. ",
            pressure.join(" ")
        ),
    })
}

/// A host port a pod asks for: protocol, host IP (`0.0.0.0` when unset), port.
pub type HostPort = (String, String, i32);

/// The host ports of `pod`'s containers (init containers included, as the scheduler counts).
#[must_use]
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            Some((
                p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                p.host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_owned()),
                port,
            ))
        })
        .collect()
}

fn ports_conflict(a: &HostPort, b: &HostPort) -> bool {
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || a.1 == "0.0.0.0" || b.1 == "0.0.0.0")
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(bound) = bound.parse::<i64>() else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term matches when every expression and every field requirement does; an
/// empty term matches nothing (`component-helpers/scheduling/corev1/nodeaffinity`).
fn term_matches(term: &NodeSelectorTerm, node: &AdmissionNode) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name.as_str())))
}

/// Whether `pod`'s `nodeSelector` and required node affinity match `node`.
#[must_use]
pub fn node_affinity_matches(pod: &Pod, node: &AdmissionNode) -> bool {
    let Some(spec) = &pod.spec else {
        return true;
    };
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok =
        required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)));
    selector_ok && affinity_ok
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// The predicate handler's OS checks, before the resource fit
/// (`pkg/kubelet/lifecycle/predicate.go`): the pod's `kubernetes.io/os` label against the
/// node's (`PodOSSelectorNodeLabelDoesNotMatch`), and `spec.os.name` against the runtime's
/// (`PodOSNotSupported`; this agent runs Linux containers only).
///
/// # Errors
/// The rejection, with the kubelet's message.
pub fn os_checks(pod: &Pod, node: &AdmissionNode) -> Result<(), Rejection> {
    let os_label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/os"));
    if let Some(os) = os_label
        && node.labels.get("kubernetes.io/os").is_some_and(|n| n != os)
    {
        return Err(Rejection {
            reason: "PodOSSelectorNodeLabelDoesNotMatch".to_owned(),
            message: "Pod was rejected: Failed to admit pod as the `kubernetes.io/os` label doesn't match node label".to_owned(),
        });
    }
    if let Some(os) = pod.spec.as_ref().and_then(|s| s.os.as_ref())
        && os.name != "linux"
    {
        return Err(Rejection {
            reason: "PodOSNotSupported".to_owned(),
            message: "Pod was rejected: Failed to admit pod as the OS field doesn't match node OS"
                .to_owned(),
        });
    }
    Ok(())
}

/// The predicate handler's general filter after the resource fit
/// (`pkg/kubelet/lifecycle/predicate.go` `generalFilter`, the scheduler's `AdmissionCheck`),
/// first failure reported: `NodeAffinity` (`nodeSelector`, required node affinity),
/// `NodeName`, `NodePorts` (against `used_ports`, the admitted pods' [`host_ports`]) and, for
/// pods that are not static, `TaintToleration` (`NoExecute` taints only).
///
/// # Errors
/// The rejection: reason the predicate's name, message `Pod was rejected: Predicate <Name>
/// failed: <why>`.
pub fn predicates(
    pod: &Pod,
    node: &AdmissionNode,
    is_static: bool,
    used_ports: &[HostPort],
) -> Result<(), Rejection> {
    let reject = |name: &str, why: &str| Rejection {
        reason: name.to_owned(),
        message: format!("Pod was rejected: Predicate {name} failed: {why}"),
    };
    if !node_affinity_matches(pod, node) {
        return Err(reject(
            "NodeAffinity",
            "node(s) didn't match Pod's node affinity/selector",
        ));
    }
    let spec = pod.spec.as_ref();
    if let Some(name) = spec
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        && name != node.name
    {
        return Err(reject(
            "NodeName",
            "node(s) didn't match the requested node name",
        ));
    }
    let wanted = host_ports(pod);
    if wanted
        .iter()
        .any(|p| used_ports.iter().any(|u| ports_conflict(p, u)))
    {
        return Err(reject(
            "NodePorts",
            "node(s) didn't have free ports for the requested pod ports",
        ));
    }
    if !is_static {
        let tolerations = spec
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        let untolerated = node
            .taints
            .iter()
            .filter(|t| t.effect == "NoExecute")
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)));
        if untolerated {
            return Err(reject(
                "TaintToleration",
                "node(s) had taints that the pod didn't tolerate",
            ));
        }
    }
    Ok(())
}

/// A resource quantity in admission units: millicores for `cpu`, rounded up, else the value
/// rounded up (as Go's `MilliValue()`/`Value()`); `None` when it does not parse.
fn amount(
    resource: &str,
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Option<i128> {
    let v = node_config::Quantity::parse(&q.0).ok()?.value();
    let v = if resource == "cpu" { v * 1000.0 } else { v };
    if !v.is_finite() || !(0.0..=1e30).contains(&v) {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked finite, non-negative and below 1e30 just above: the cast only rounds"
    )]
    Some(v.ceil() as i128)
}

/// A container's requests (its limits where a request is missing, as API defaulting does).
fn container_requests(c: &Container) -> BTreeMap<String, i128> {
    let mut out = BTreeMap::new();
    let Some(res) = &c.resources else {
        return out;
    };
    for (name, q) in res.limits.iter().flatten() {
        if let Some(v) = amount(name, q) {
            out.insert(name.clone(), v);
        }
    }
    for (name, q) in res.requests.iter().flatten() {
        if let Some(v) = amount(name, q) {
            out.insert(name.clone(), v);
        }
    }
    out
}

fn add(into: &mut BTreeMap<String, i128>, from: &BTreeMap<String, i128>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// A pod's effective requests, the scheduler's way (`computePodResourceRequest`): the regular
/// containers and the restartable (sidecar) init containers add up; each regular init
/// container runs alone with the sidecars declared before it, so the larger of the two counts
/// per resource; then the pod overhead is added.
#[must_use]
pub fn pod_requests(pod: &Pod) -> BTreeMap<String, i128> {
    let Some(spec) = &pod.spec else {
        return BTreeMap::new();
    };
    let mut total = BTreeMap::new();
    for c in &spec.containers {
        add(&mut total, &container_requests(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak: BTreeMap<String, i128> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut sidecars, &r);
            add(&mut total, &r);
        } else {
            let mut alone = sidecars.clone();
            add(&mut alone, &r);
            for (k, v) in alone {
                let e = init_peak.entry(k).or_insert(0);
                *e = (*e).max(v);
            }
        }
    }
    for (k, v) in init_peak {
        let e = total.entry(k).or_insert(0);
        *e = (*e).max(v);
    }
    let overhead: BTreeMap<String, i128> = spec
        .overhead
        .iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), amount(k, q)?)))
        .collect();
    add(&mut total, &overhead);
    total
}

/// Whether `pod` fits on the node: `used` is the sum of the admitted active pods' requests
/// ([`pod_requests`]), `used_pods` their number. The first shortage is reported as the kubelet
/// reports it: reason `OutOf<resource>` (`OutOfpods`, `OutOfcpu`, `OutOfmemory`, ...), message
/// `Pod was rejected: Node didn't have enough resource: <resource>, requested: <n>, used: <n>,
/// capacity: <allocatable>`. Extended resources the node does not advertise are ignored
/// (`removeMissingExtendedResources`); a pod requesting nothing is only counted.
///
/// # Errors
/// The rejection.
pub fn fits(
    pod: &Pod,
    used: &BTreeMap<String, i128>,
    used_pods: i128,
    allocatable: &Allocatable,
) -> Result<(), Rejection> {
    let reject = |resource: &str, requested: i128, used: i128, capacity: i128| Rejection {
        reason: format!("OutOf{resource}"),
        message: format!(
            "Pod was rejected: Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"
        ),
    };
    if let Some(&max_pods) = allocatable.get("pods")
        && used_pods + 1 > max_pods
    {
        return Err(reject("pods", 1, used_pods, max_pods));
    }
    let requests = pod_requests(pod);
    let mut names: Vec<&String> = requests.keys().collect();
    // The scheduler's order: cpu, memory, ephemeral-storage, then the others.
    names.sort_by_key(|n| match n.as_str() {
        "cpu" => (0, n.as_str()),
        "memory" => (1, n.as_str()),
        "ephemeral-storage" => (2, n.as_str()),
        other => (3, other),
    });
    for name in names {
        let requested = requests.get(name).copied().unwrap_or(0);
        if requested == 0 || name == "pods" {
            continue;
        }
        let native = matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        let capacity = match allocatable.get(name) {
            Some(&c) => c,
            None if native => 0,
            // An extended resource the node does not advertise.
            None => continue,
        };
        let used = used.get(name).copied().unwrap_or(0);
        if used + requested > capacity {
            return Err(reject(name, requested, used, capacity));
        }
    }
    Ok(())
}

/// A pod refused at admission: the kubelet leaves it in phase `Failed` with this reason and
/// message, and starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `status.reason`, e.g. `SysctlForbidden`.
    pub reason: String,
    /// `status.message`: `Pod was rejected: <why>`.
    pub message: String,
}

/// Admits or refuses `pod`. `sysctls` is the node's allowlist; `None` refuses every sysctl
/// (no allowlist could be built).
pub fn admit(pod: &Pod, sysctls: Option<&SysctlPolicy>) -> Result<(), Rejection> {
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    let names: Vec<&str> = spec
        .security_context
        .iter()
        .flat_map(|s| s.sysctls.iter().flatten())
        .map(|s| s.name.as_str())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let host_network = spec.host_network == Some(true);
    let host_ipc = spec.host_ipc == Some(true);
    let result = match sysctls {
        Some(policy) => policy
            .admit(&names, host_network, host_ipc)
            .map_err(|r| (r.reason.to_owned(), r.message)),
        None => Err((
            node_kernel::FORBIDDEN_REASON.to_owned(),
            format!("forbidden sysctl: {:?} not allowlisted", names[0]),
        )),
    };
    result.map_err(|(reason, message)| Rejection {
        reason,
        message: format!("Pod was rejected: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(containers: &str, init: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": serde_json::from_str::<serde_json::Value>(containers).unwrap(),
                "initContainers": serde_json::from_str::<serde_json::Value>(init).unwrap(),
                "overhead": {"cpu": "10m"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn pressure_admits_only_what_the_eviction_manager_does() {
        use node_kernel::QosClass::{BestEffort, Burstable};
        let pod = |tolerations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}
            }))
            .unwrap()
        };
        let mem = ["MemoryPressure".to_owned()];
        let both = ["MemoryPressure".to_owned(), "DiskPressure".to_owned()];
        assert_eq!(
            evicted(&pod(serde_json::json!([])), &[], BestEffort),
            Ok(())
        );
        let r = evicted(&pod(serde_json::json!([])), &mem, BestEffort).unwrap_err();
        assert_eq!(r.reason, "Evicted");
        assert_eq!(
            r.message,
            "Pod was rejected: The node had condition: [MemoryPressure]. "
        );
        assert_eq!(
            evicted(&pod(serde_json::json!([])), &mem, Burstable),
            Ok(())
        );
        let tolerating = serde_json::json!([{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]);
        assert_eq!(evicted(&pod(tolerating.clone()), &mem, BestEffort), Ok(()));
        let r = evicted(&pod(tolerating), &both, Burstable).unwrap_err();
        assert_eq!(
            r.message,
            "Pod was rejected: The node had condition: [MemoryPressure DiskPressure]. "
        );
    }

    #[test]
    fn predicates_like_the_kubelets_general_filter() {
        let node = AdmissionNode {
            name: "n1".into(),
            labels: [
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ("zone".to_owned(), "a".to_owned()),
                ("gen".to_owned(), "5".to_owned()),
            ]
            .into(),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("db".into()),
                effect: "NoExecute".into(),
                time_added: None,
            }],
            allocatable: Allocatable::new(),
            pressure: Vec::new(),
        };
        let pod = |spec: serde_json::Value| -> Pod {
            let mut spec = spec;
            spec["containers"] = serde_json::json!([{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]);
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": spec}))
                .unwrap()
        };
        let tolerant = serde_json::json!([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]);
        let ok = pod(serde_json::json!({
            "nodeName": "n1", "nodeSelector": {"zone": "a"}, "tolerations": tolerant,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]},
                                          {"key": "gpu", "operator": "DoesNotExist"}],
                     "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
                ]}}}
        }));
        assert_eq!(predicates(&ok, &node, false, &[]), Ok(()));
        let reason = |p: &Pod, is_static: bool, used: &[HostPort]| {
            predicates(p, &node, is_static, used).unwrap_err()
        };
        let r = reason(
            &pod(serde_json::json!({"nodeSelector": {"zone": "b"}})),
            true,
            &[],
        );
        assert_eq!(r.reason, "NodeAffinity");
        assert_eq!(
            r.message,
            "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
        );
        let empty_term = pod(
            serde_json::json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}}),
        );
        assert_eq!(reason(&empty_term, true, &[]).reason, "NodeAffinity");
        assert_eq!(
            reason(&pod(serde_json::json!({"nodeName": "n2"})), true, &[]).reason,
            "NodeName"
        );
        let used = [("TCP".to_owned(), "0.0.0.0".to_owned(), 8080)];
        assert_eq!(
            reason(
                &pod(serde_json::json!({"tolerations": tolerant})),
                false,
                &used
            )
            .reason,
            "NodePorts"
        );
        let udp = [("UDP".to_owned(), "0.0.0.0".to_owned(), 8080)];
        assert_eq!(
            predicates(
                &pod(serde_json::json!({"tolerations": tolerant})),
                &node,
                false,
                &udp
            ),
            Ok(())
        );
        // The NoExecute taint: API pods must tolerate it, static pods are not checked.
        assert_eq!(
            reason(&pod(serde_json::json!({})), false, &[]).reason,
            "TaintToleration"
        );
        assert_eq!(
            predicates(&pod(serde_json::json!({})), &node, true, &[]),
            Ok(())
        );
        // The OS checks.
        let mut windows = pod(serde_json::json!({"os": {"name": "windows"}}));
        assert_eq!(
            os_checks(&windows, &node).unwrap_err().reason,
            "PodOSNotSupported"
        );
        windows.spec.as_mut().unwrap().os = None;
        windows.metadata.labels =
            Some([("kubernetes.io/os".to_owned(), "windows".to_owned())].into());
        let r = os_checks(&windows, &node).unwrap_err();
        assert_eq!(r.reason, "PodOSSelectorNodeLabelDoesNotMatch");
        assert_eq!(
            r.message,
            "Pod was rejected: Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
        );
        let exists = serde_json::json!([{"operator": "Exists"}]);
        assert_eq!(
            predicates(
                &pod(serde_json::json!({"tolerations": exists})),
                &node,
                false,
                &[]
            ),
            Ok(())
        );
    }

    #[test]
    fn effective_requests_follow_the_scheduler() {
        let pod = sized(
            r#"[{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "0.5", "example.com/gpu": "1"}}}]"#,
            r#"[{"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}]"#,
        );
        let r = pod_requests(&pod);
        // cpu: max(100 + 500 + 50, 50 + 2000) + 10 overhead.
        assert_eq!(r["cpu"], 2060);
        assert_eq!(r["memory"], 64 << 20);
        assert_eq!(r["example.com/gpu"], 1);
    }

    #[test]
    fn fit_reports_the_first_shortage_like_the_kubelet() {
        let alloc: Allocatable = [
            ("cpu".to_owned(), 1000),
            ("memory".to_owned(), 1 << 30),
            ("pods".to_owned(), 2),
        ]
        .into();
        let pod = sized(
            r#"[{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}}}]"#,
            "[]",
        );
        let used: BTreeMap<String, i128> = [("cpu".to_owned(), 600)].into();
        let r = fits(&pod, &used, 1, &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfcpu");
        assert_eq!(
            r.message,
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 510, used: 600, capacity: 1000"
        );
        let r = fits(&pod, &BTreeMap::new(), 1, &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfmemory");
        let r = fits(&pod, &BTreeMap::new(), 2, &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfpods");
        assert!(
            r.message
                .ends_with("pods, requested: 1, used: 2, capacity: 2")
        );
        // An extended resource the node does not advertise is ignored; one it does is counted.
        let gpu = sized(
            r#"[{"name": "a", "resources": {"limits": {"example.com/gpu": "2"}}}]"#,
            "[]",
        );
        assert_eq!(fits(&gpu, &BTreeMap::new(), 0, &alloc), Ok(()));
        let mut with_gpu = alloc;
        with_gpu.insert("example.com/gpu".to_owned(), 1);
        assert_eq!(
            fits(&gpu, &BTreeMap::new(), 0, &with_gpu)
                .unwrap_err()
                .reason,
            "OutOfexample.com/gpu"
        );
    }

    fn pod(sysctls: &str, host: &str) -> Pod {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: p}}\nspec:\n  {host}\n  securityContext:\n    sysctls: {sysctls}\n  containers: [{{name: c, image: i}}]\n"
        ))
        .unwrap()
    }

    fn policy(unsafe_: &[&str]) -> SysctlPolicy {
        let kernel = node_kernel::KernelVersion::parse("6.1.0").unwrap();
        let allowed: Vec<String> = unsafe_.iter().map(|s| (*s).to_owned()).collect();
        SysctlPolicy::new(Some(&kernel), &allowed).unwrap()
    }

    #[test]
    fn safe_sysctls_pass_and_unsafe_ones_are_refused_like_the_kubelet() {
        let p = policy(&[]);
        assert_eq!(admit(&pod("[]", ""), Some(&p)), Ok(()));
        assert_eq!(
            admit(
                &pod("[{name: net.ipv4.tcp_syncookies, value: '1'}]", ""),
                Some(&p)
            ),
            Ok(())
        );
        let r = admit(&pod("[{name: kernel.msgmax, value: '1'}]", ""), Some(&p)).unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(
            r.message,
            "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
        );
    }

    #[test]
    fn allowed_unsafe_patterns_and_host_namespaces() {
        let p = policy(&["kernel.msg*", "net.core.somaxconn"]);
        assert_eq!(
            admit(&pod("[{name: kernel.msgmax, value: '1'}]", ""), Some(&p)),
            Ok(())
        );
        assert_eq!(
            admit(
                &pod("[{name: net.core.somaxconn, value: '1'}]", ""),
                Some(&p)
            ),
            Ok(())
        );
        let r = admit(
            &pod(
                "[{name: net.core.somaxconn, value: '1'}]",
                "hostNetwork: true",
            ),
            Some(&p),
        )
        .unwrap_err();
        assert_eq!(
            r.message,
            "Pod was rejected: forbidden sysctl: \"net.core.somaxconn\" not allowed with host Net enabled"
        );
        let r = admit(
            &pod("[{name: kernel.msgmax, value: '1'}]", "hostIPC: true"),
            Some(&p),
        )
        .unwrap_err();
        assert!(
            r.message.ends_with("not allowed with host IPC enabled"),
            "{}",
            r.message
        );
        // Slash-separated names are normalized first.
        let r = admit(&pod("[{name: kernel/shmmax, value: '1'}]", ""), Some(&p)).unwrap_err();
        assert!(
            r.message.contains("\"kernel.shmmax\" not allowlisted"),
            "{}",
            r.message
        );
    }

    #[test]
    fn without_an_allowlist_every_sysctl_is_refused() {
        let r = admit(
            &pod("[{name: net.ipv4.tcp_syncookies, value: '1'}]", ""),
            None,
        )
        .unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(admit(&pod("[]", ""), None), Ok(()));
    }
}
