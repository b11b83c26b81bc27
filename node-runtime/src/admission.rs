//! Pod admission on the node: checks that run before a pod is planned, so a refused pod never
//! gets a sandbox (the status it leaves is `pkg/kubelet/kubelet.go` `rejectPod`):
//!
//! * sysctls, with node-kernel's allowlist (the safe set for this kernel plus
//!   `allowedUnsafeSysctls`, host-namespace restrictions), as the kubelet's sysctl admit handler
//!   (`pkg/kubelet/sysctl/allowlist.go` `Admit`);
//! * resources ([`fits`]), as the predicate handler's resource check (the scheduler's
//!   `noderesources.Fits` through `pkg/kubelet/lifecycle/predicate.go`): the pod's effective
//!   requests against the node's allocatable minus what the admitted pods request, and the
//!   pod count against `pods`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use node_kernel::SysctlPolicy;

/// The node's allocatable resources for admission: `cpu` in millicores, `memory`,
/// `ephemeral-storage` and `hugepages-*` in bytes, `pods` and extended resources (device
/// plugins') as counts.
pub type Allocatable = BTreeMap<String, i128>;

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
