//! A container's environment, the kubelet's way (`pkg/kubelet/kubelet_pods.go`
//! `makeEnvironmentVariables`, `getServiceEnvVarMap`, `podFieldSelectorRuntimeValue`;
//! `pkg/kubelet/envvars`; `third_party/forked/golang/expansion`): a pure function of the pod,
//! the container and what the caller fetched ([`EnvInputs`]).
//!
//! Order of evaluation, as upstream:
//!
//! 1. `envFrom` in order: every `data` key of the configMap or secret, with the prefix, into
//!    the environment (a missing object is skipped when `optional`, else an error). Like the
//!    kubelet since 1.30 the keys are not checked against an environment-variable name rule
//!    (the API server validates the prefix; any key the API server stored is used).
//! 2. `env` in order: `value` with `$(VAR)` expanded against what is defined so far and the
//!    service variables ([`expand`]), or `valueFrom` (`fieldRef`, `resourceFieldRef`,
//!    `configMapKeyRef`, `secretKeyRef`; a missing optional object or key leaves the
//!    variable out). Each explicit variable removes the service variable of the same name.
//! 3. The service variables ([`service_env`]) not defined by the container.
//!
//! The result is in first-definition order (envFrom keys in key order, then `env` in
//! declaration order; a redefinition keeps the first position and takes the new value),
//! then the remaining service variables by name. The kubelet builds the same set from Go
//! maps, in random order; the container sees the same variables either way.
//!
//! Errors are [`RuntimeError::ContainerConfig`] with the kubelet's message (the container
//! waits in `CreateContainerConfigError`): `couldn't find key <k> in ConfigMap <ns>/<name>`,
//! `configmap "<name>" not found`, `unsupported fieldPath: ...`, and so on.
//!
//! Differences from the kubelet: a secret value that is not UTF-8 is an error here (the CRI
//! carries environment values as protobuf strings, which must be UTF-8); a `$` before a
//! non-ASCII character is copied as is (Go's `expansion` mangles the character); a service
//! with a cluster IP but no ports gets only `<NAME>_SERVICE_HOST` (the kubelet panics on it;
//! the API server never stores one); `fileKeyRef` (the alpha `EnvFiles` gate) is refused;
//! the IP family order of `status.podIPs` follows the first host IP given, where the kubelet
//! uses its configured `--node-ip`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVarSource, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret,
    Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::RuntimeError;
use crate::projection::{
    container_resource_value, extract_field_path, go_quote, merge_container_limits,
    split_maybe_subscripted_path,
};

/// The namespace of the master services (the kubelet's `--master-service-namespace`
/// default).
pub const MASTER_SERVICE_NAMESPACE: &str = "default";

/// The services whose variables every pod gets, even with `enableServiceLinks: false`.
pub const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// What the caller fetched and knows for one pod.
#[derive(Debug, Clone, Copy)]
pub struct EnvInputs<'a> {
    /// ConfigMaps of the pod's namespace, by name; a missing one is "not found".
    pub config_maps: &'a BTreeMap<String, ConfigMap>,
    /// Secrets of the pod's namespace, by name; a missing one is "not found".
    pub secrets: &'a BTreeMap<String, Secret>,
    /// The services the agent knows (any namespace: those of the pod's namespace and the
    /// master service `default/kubernetes` are used, see [`service_env`]). Empty when the
    /// agent runs without an API server (the kubelet then sets no service variables).
    pub services: &'a [Service],
    /// The node's name, for `spec.nodeName` when the pod does not carry it.
    pub node_name: &'a str,
    /// The node's IPs, primary first (`status.hostIP`, `status.hostIPs`).
    pub host_ips: &'a [String],
    /// The pod's IPs as the runtime reported them (`status.podIP`, `status.podIPs`).
    pub pod_ips: &'a [String],
    /// The node's `status.allocatable`, the default of unset CPU, memory and
    /// ephemeral-storage limits for `resourceFieldRef`.
    pub node_allocatable: &'a BTreeMap<String, Quantity>,
}

/// The environment of `container` (of `pod`) as `(name, value)` pairs, the kubelet's
/// `makeEnvironmentVariables` (see the module documentation for the order and the errors).
pub fn container_env(
    pod: &Pod,
    container: &Container,
    inputs: &EnvInputs<'_>,
) -> Result<Vec<(String, String)>, RuntimeError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let fail = |message: String| RuntimeError::ContainerConfig {
        pod: format!("{namespace}/{pod_name}"),
        container: container.name.clone(),
        message,
        detail: String::new(),
    };
    let enable_service_links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = service_env(inputs.services, namespace, enable_service_links);
    let mut env = OrderedEnv::default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        if let Some(source) = &from.config_map_ref {
            let Some(config_map) = inputs.config_maps.get(&source.name) else {
                if source.optional == Some(true) {
                    continue;
                }
                return Err(fail(format!(
                    "configmap {} not found",
                    go_quote(&source.name)
                )));
            };
            for (key, value) in config_map.data.iter().flatten() {
                env.set(format!("{prefix}{key}"), value.clone());
            }
        } else if let Some(source) = &from.secret_ref {
            let Some(secret) = inputs.secrets.get(&source.name) else {
                if source.optional == Some(true) {
                    continue;
                }
                return Err(fail(format!("secret {} not found", go_quote(&source.name))));
            };
            for (key, value) in secret.data.iter().flatten() {
                let value = utf8(&value.0, namespace, &source.name, key).map_err(&fail)?;
                env.set(format!("{prefix}{key}"), value);
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = match (var.value.as_deref(), &var.value_from) {
            (Some(value), _) if !value.is_empty() => expand(value, |name| {
                env.get(name)
                    .or_else(|| services.get(name).map(String::as_str))
            }),
            (_, Some(source)) => match value_from(pod, container, source, inputs) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(message) => return Err(fail(message)),
            },
            _ => String::new(),
        };
        services.remove(&var.name);
        env.set(var.name.clone(), value);
    }

    let mut result = env.into_pairs();
    let defined: std::collections::HashSet<String> =
        result.iter().map(|(name, _)| name.clone()).collect();
    result.extend(
        services
            .into_iter()
            .filter(|(name, _)| !defined.contains(name)),
    );
    Ok(result)
}

/// Insertion-ordered variables: a redefinition keeps its first position.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: BTreeMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => {
                if let Some(slot) = self.vars.get_mut(i) {
                    slot.1 = value;
                }
            }
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index
            .get(name)
            .and_then(|&i| self.vars.get(i))
            .map(|(_, v)| v.as_str())
    }

    fn into_pairs(self) -> Vec<(String, String)> {
        self.vars
    }
}

/// A secret value as a string; not UTF-8 is an error naming the key.
fn utf8(bytes: &[u8], namespace: &str, name: &str, key: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| format!("value of key {key} in Secret {namespace}/{name} is not valid UTF-8"))
}

/// One `valueFrom`: `Ok(None)` when an optional object or key is missing (the variable is
/// left out).
fn value_from(
    pod: &Pod,
    container: &Container,
    source: &EnvVarSource,
    inputs: &EnvInputs<'_>,
) -> Result<Option<String>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(field) = &source.field_ref {
        return pod_field_value(pod, field, inputs).map(Some);
    }
    if let Some(resource) = &source.resource_field_ref {
        return container_resource_runtime_value(pod, container, resource, inputs).map(Some);
    }
    if let Some(selector) = &source.config_map_key_ref {
        let optional = selector.optional == Some(true);
        let Some(config_map) = inputs.config_maps.get(&selector.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(format!("configmap {} not found", go_quote(&selector.name)))
            };
        };
        return match config_map.data.as_ref().and_then(|d| d.get(&selector.key)) {
            Some(value) => Ok(Some(value.clone())),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {} in ConfigMap {namespace}/{}",
                selector.key, selector.name
            )),
        };
    }
    if let Some(selector) = &source.secret_key_ref {
        let optional = selector.optional == Some(true);
        let Some(secret) = inputs.secrets.get(&selector.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(format!("secret {} not found", go_quote(&selector.name)))
            };
        };
        return match secret.data.as_ref().and_then(|d| d.get(&selector.key)) {
            Some(value) => utf8(&value.0, namespace, &selector.name, &selector.key).map(Some),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {} in Secret {namespace}/{}",
                selector.key, selector.name
            )),
        };
    }
    if source.file_key_ref.is_some() {
        return Err("fileKeyRef is not supported by this node (EnvFiles)".to_owned());
    }
    Ok(Some(String::new()))
}

/// The kubelet's `podFieldSelectorRuntimeValue`: the field label converted
/// ([`convert_downward_api_field_label`]), then `spec.nodeName` (the pod's, else
/// `inputs.node_name`), `spec.serviceAccountName`, `status.hostIP` (the first host IP; an
/// error when none is known), `status.hostIPs` (comma-separated), `status.podIP` and
/// `status.podIPs` ([`sort_pod_ips`]), else [`extract_field_path`].
pub fn pod_field_value(
    pod: &Pod,
    selector: &ObjectFieldSelector,
    inputs: &EnvInputs<'_>,
) -> Result<String, String> {
    let path = convert_downward_api_field_label(
        selector.api_version.as_deref().unwrap_or("v1"),
        &selector.field_path,
    )?;
    let spec = pod.spec.as_ref();
    let pod_ips = sort_pod_ips(inputs.pod_ips, inputs.host_ips);
    let host_ip = || {
        inputs
            .host_ips
            .first()
            .cloned()
            .ok_or_else(|| "host IP unknown; known addresses: []".to_owned())
    };
    match path {
        "spec.nodeName" => Ok(spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| inputs.node_name.to_owned())),
        "spec.serviceAccountName" => Ok(spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default()),
        "status.hostIP" => host_ip(),
        "status.hostIPs" => {
            host_ip()?;
            Ok(inputs.host_ips.join(","))
        }
        "status.podIP" => Ok(pod_ips
            .first()
            .cloned()
            .or_else(|| inputs.pod_ips.first().cloned())
            .unwrap_or_default()),
        "status.podIPs" => Ok(pod_ips.join(",")),
        other => extract_field_path(pod, other),
    }
}

/// `ConvertDownwardAPIFieldLabel` (`pkg/apis/core/pods/helpers.go`): the version must be
/// `v1`; `metadata.labels['k']` and `metadata.annotations['k']` are the only subscripted
/// paths; the known labels pass (`spec.host` becomes `spec.nodeName`); anything else is
/// `field label not supported: <label>`.
pub fn convert_downward_api_field_label<'l>(
    version: &str,
    label: &'l str,
) -> Result<&'l str, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((path, _)) = split_maybe_subscripted_path(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label),
        "spec.host" => Ok("spec.nodeName"),
        _ => Err(format!("field label not supported: {label}")),
    }
}

/// The kubelet's `sortPodIPs`: the first pod IP of the node's primary family (IPv4 when the
/// first of `host_ips` is IPv4 or there is none), then the first of the other family.
pub fn sort_pod_ips(pod_ips: &[String], host_ips: &[String]) -> Vec<String> {
    let primary_v4 = host_ips
        .first()
        .and_then(|ip| ip_family_v4(ip))
        .unwrap_or(true);
    let mut sorted = Vec::with_capacity(2);
    for want_v4 in [primary_v4, !primary_v4] {
        if let Some(ip) = pod_ips.iter().find(|ip| ip_family_v4(ip) == Some(want_v4)) {
            sorted.push(ip.clone());
        }
    }
    sorted
}

/// `Some(true)` for an IPv4 address (also IPv4-mapped IPv6, as Go's `To4`), `Some(false)`
/// for IPv6, `None` for anything else.
fn ip_family_v4(ip: &str) -> Option<bool> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(true),
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().is_some()),
    }
}

/// `containerResourceRuntimeValue` after `defaultPodLimitsForDownwardAPI`: the selected
/// container (this one when `containerName` is empty, else by name among the pod's
/// containers, then init containers) with unset limits defaulted to the node's allocatable
/// (init containers found by name are not defaulted, as upstream).
fn container_resource_runtime_value(
    pod: &Pod,
    container: &Container,
    selector: &ResourceFieldSelector,
    inputs: &EnvInputs<'_>,
) -> Result<String, String> {
    let name = selector.container_name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return container_resource_value(
            selector,
            &merge_container_limits(container, inputs.node_allocatable),
        );
    }
    let spec = pod.spec.as_ref();
    if let Some(c) = spec.and_then(|s| s.containers.iter().find(|c| c.name == name)) {
        return container_resource_value(
            selector,
            &merge_container_limits(c, inputs.node_allocatable),
        );
    }
    match spec.and_then(|s| s.init_containers.iter().flatten().find(|c| c.name == name)) {
        Some(c) => container_resource_value(selector, c),
        None => Err(format!("container {name} not found")),
    }
}

/// The kubelet's `getServiceEnvVarMap`: variables ([`variables_for_services`]) of the
/// services with a cluster IP (not `None`) that are the master services of
/// [`MASTER_SERVICE_NAMESPACE`] (always) or, when `enable_service_links`, in `namespace`
/// (a master service name in its own namespace wins over a same-named one of the pod's
/// namespace).
pub fn service_env(
    services: &[Service],
    namespace: &str,
    enable_service_links: bool,
) -> BTreeMap<String, String> {
    let mut by_name: BTreeMap<&str, &Service> = BTreeMap::new();
    let mut masters: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in services.iter().filter(|s| cluster_ip(s).is_some()) {
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let ns = service.metadata.namespace.as_deref().unwrap_or_default();
        if ns == MASTER_SERVICE_NAMESPACE && MASTER_SERVICES.contains(&name) {
            masters.entry(name).or_insert(service);
        } else if ns == namespace && enable_service_links {
            by_name.insert(name, service);
        }
    }
    // The kubelet's map gives the master entry precedence only if it was met first; either
    // way both name the same variables, and the master service is the one the API server
    // guarantees. Here the master always wins.
    by_name.extend(masters);
    variables_for_services(by_name.values().copied())
        .into_iter()
        .collect()
}

/// The cluster IP of a service when it has one (`IsServiceIPSet`: not empty, not `None`).
fn cluster_ip(service: &Service) -> Option<&str> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
}

/// `envvars.FromServices`: for each service with a cluster IP, `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT` (the first port), `<NAME>_SERVICE_PORT_<PORTNAME>` per named port,
/// and the Docker link variables `<NAME>_PORT` (first port, `tcp://ip:port`),
/// `<NAME>_PORT_<port>_<PROTO>`, `..._PROTO`, `..._PORT`, `..._ADDR` per port. `<NAME>` is
/// the name upper-cased with `-` as `_`; IPv6 addresses are bracketed in URLs.
pub fn variables_for_services<'s>(
    services: impl IntoIterator<Item = &'s Service>,
) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for service in services {
        let Some(ip) = cluster_ip(service) else {
            continue;
        };
        let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        vars.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
        let Some(first) = ports.first() else {
            continue;
        };
        let port_var = format!("{prefix}_SERVICE_PORT");
        vars.push((port_var.clone(), first.port.to_string()));
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!("{port_var}_{}", env_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        for (i, port) in ports.iter().enumerate() {
            let protocol = port
                .protocol
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let host_port = if ip.contains(':') {
                format!("[{ip}]:{}", port.port)
            } else {
                format!("{ip}:{}", port.port)
            };
            let url = format!("{lower}://{host_port}");
            if i == 0 {
                vars.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            vars.push((port_prefix.clone(), url));
            vars.push((format!("{port_prefix}_PROTO"), lower));
            vars.push((format!("{port_prefix}_PORT"), port.port.to_string()));
            vars.push((format!("{port_prefix}_ADDR"), ip.to_owned()));
        }
    }
    vars
}

/// `makeEnvVariableName`: upper case, `-` as `_`.
fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// `expansion.Expand` with `MappingFuncFor`: `$(NAME)` becomes `lookup(NAME)`, or stays
/// `$(NAME)` when the lookup has nothing; `$$` is a literal `$`; an unterminated `$(`, a
/// `$` before any other character and a trailing `$` stay as written.
pub fn expand<'v>(input: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.is_empty() {
            out.push('$');
            rest = after;
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            // `$x`: both copied, scanning goes on after `x`.
            let next = after.chars().next().map_or(0, char::len_utf8);
            out.push('$');
            out.push_str(&after[..next]);
            rest = &after[next..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn service(
        ns: &str,
        name: &str,
        ip: &str,
        ports: &[(Option<&str>, i32, Option<&str>)],
    ) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port, proto)| ServicePort {
                            name: name.map(Into::into),
                            port: *port,
                            protocol: proto.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: serde_json::Value, extra_spec: serde_json::Value) -> Pod {
        let mut spec = serde_json::json!({"containers": containers, "serviceAccountName": "sa", "nodeName": "node-a"});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u1",
                         "labels": {"app": "web"}, "annotations": {"note": "hi"}},
            "spec": spec
        }))
        .unwrap()
    }

    struct Fixture {
        config_maps: BTreeMap<String, ConfigMap>,
        secrets: BTreeMap<String, Secret>,
        services: Vec<Service>,
        host_ips: Vec<String>,
        pod_ips: Vec<String>,
        allocatable: BTreeMap<String, Quantity>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                config_maps: BTreeMap::from([(
                    "cm".to_owned(),
                    ConfigMap {
                        data: Some(BTreeMap::from([
                            ("HOST".to_owned(), "db".to_owned()),
                            ("PORT".to_owned(), "5432".to_owned()),
                            ("weird key".to_owned(), "kept".to_owned()),
                        ])),
                        ..Default::default()
                    },
                )]),
                secrets: BTreeMap::from([(
                    "s".to_owned(),
                    Secret {
                        data: Some(BTreeMap::from([
                            ("PASSWORD".to_owned(), ByteString(b"hunter2".to_vec())),
                            ("BIN".to_owned(), ByteString(vec![0xff, 0xfe])),
                        ])),
                        ..Default::default()
                    },
                )]),
                services: vec![
                    service(
                        "default",
                        "kubernetes",
                        "10.0.0.1",
                        &[(Some("https"), 443, None)],
                    ),
                    service(
                        "prod",
                        "my-db",
                        "10.0.0.5",
                        &[
                            (None, 5432, Some("TCP")),
                            (Some("metrics"), 9187, Some("UDP")),
                        ],
                    ),
                    service("prod", "headless", "None", &[(None, 80, None)]),
                    service("other", "elsewhere", "10.0.0.9", &[(None, 80, None)]),
                ],
                host_ips: vec!["192.168.1.10".into(), "fd00::10".into()],
                pod_ips: vec!["fd00::1:2".into(), "10.1.2.3".into()],
                allocatable: BTreeMap::from([
                    ("cpu".to_owned(), Quantity("4".into())),
                    ("memory".to_owned(), Quantity("16Gi".into())),
                ]),
            }
        }

        fn inputs(&self) -> EnvInputs<'_> {
            EnvInputs {
                config_maps: &self.config_maps,
                secrets: &self.secrets,
                services: &self.services,
                node_name: "node-x",
                host_ips: &self.host_ips,
                pod_ips: &self.pod_ips,
                node_allocatable: &self.allocatable,
            }
        }
    }

    fn run(p: &Pod, f: &Fixture) -> Result<Vec<(String, String)>, RuntimeError> {
        let container = p.spec.as_ref().unwrap().containers[0].clone();
        container_env(p, &container, &f.inputs())
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn expansion_follows_the_kubelet() {
        let vars = BTreeMap::from([("A", "x"), ("EMPTY", "")]);
        let lookup = |n: &str| vars.get(n).copied();
        let cases = [
            ("$(A)", "x"),
            ("$(A)-$(A)", "x-x"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$x"),
            ("$(B)", "$(B)"),
            ("$(EMPTY)|", "|"),
            ("a$b", "a$b"),
            ("$", "$"),
            ("x$(A", "x$(A"),
            ("$()", "$()"),
            ("$é$(A)", "$éx"),
            ("no refs", "no refs"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, lookup), want, "{input}");
        }
    }

    #[test]
    fn env_from_then_env_with_expansion_in_order() {
        let f = Fixture::new();
        let p = pod(
            serde_json::json!([{
                "name": "app", "image": "i",
                "envFrom": [
                    {"configMapRef": {"name": "cm"}, "prefix": "DB_"},
                    {"secretRef": {"name": "missing", "optional": true}}
                ],
                "env": [
                    {"name": "URL", "value": "postgres://$(DB_HOST):$(DB_PORT)/$(LATER)"},
                    {"name": "LATER", "value": "db1"},
                    {"name": "SVC", "value": "$(MY_DB_SERVICE_HOST)"},
                    {"name": "ESCAPED", "value": "$$(DB_HOST)"},
                    {"name": "DB_PORT", "value": "6543"},
                    {"name": "EMPTY"}
                ]
            }]),
            serde_json::json!({"enableServiceLinks": false}),
        );
        let env = run(&p, &f).unwrap();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..8],
            [
                "DB_HOST",
                "DB_PORT",
                "DB_weird key",
                "URL",
                "LATER",
                "SVC",
                "ESCAPED",
                "EMPTY"
            ]
        );
        assert_eq!(get(&env, "URL"), Some("postgres://db:5432/$(LATER)"));
        assert_eq!(get(&env, "DB_PORT"), Some("6543"));
        // Service links off: only the master service's variables, and MY_DB is not known.
        assert_eq!(get(&env, "SVC"), Some("$(MY_DB_SERVICE_HOST)"));
        assert_eq!(get(&env, "ESCAPED"), Some("$(DB_HOST)"));
        assert_eq!(get(&env, "EMPTY"), Some(""));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.0.0.1"));
        assert!(get(&env, "MY_DB_SERVICE_HOST").is_none());
    }

    #[test]
    fn service_links_docker_style() {
        let f = Fixture::new();
        let vars = service_env(&f.services, "prod", true);
        let want = [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.0.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.0.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.0.0.1"),
            ("MY_DB_SERVICE_HOST", "10.0.0.5"),
            ("MY_DB_SERVICE_PORT", "5432"),
            ("MY_DB_SERVICE_PORT_METRICS", "9187"),
            ("MY_DB_PORT", "tcp://10.0.0.5:5432"),
            ("MY_DB_PORT_5432_TCP", "tcp://10.0.0.5:5432"),
            ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
            ("MY_DB_PORT_5432_TCP_PORT", "5432"),
            ("MY_DB_PORT_5432_TCP_ADDR", "10.0.0.5"),
            ("MY_DB_PORT_9187_UDP", "udp://10.0.0.5:9187"),
            ("MY_DB_PORT_9187_UDP_PROTO", "udp"),
            ("MY_DB_PORT_9187_UDP_PORT", "9187"),
            ("MY_DB_PORT_9187_UDP_ADDR", "10.0.0.5"),
        ];
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(vars, want);
        // Links off: the master service only; other namespaces and headless never.
        let off = service_env(&f.services, "prod", false);
        assert!(off.keys().all(|k| k.starts_with("KUBERNETES_")), "{off:?}");
        assert_eq!(off.len(), 8);
        // IPv6 cluster IPs are bracketed in URLs.
        let v6 = variables_for_services([&service("prod", "v6", "fd00::5", &[(None, 80, None)])]);
        assert!(v6.contains(&("V6_PORT".to_owned(), "tcp://[fd00::5]:80".to_owned())));
        // A service without ports only gets its host.
        let bare = variables_for_services([&service("prod", "bare", "10.0.0.7", &[])]);
        assert_eq!(
            bare,
            vec![("BARE_SERVICE_HOST".to_owned(), "10.0.0.7".to_owned())]
        );
    }

    #[test]
    fn explicit_env_overrides_service_variables() {
        let f = Fixture::new();
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "env": [
                {"name": "MY_DB_SERVICE_HOST", "value": "override"},
                {"name": "REF", "value": "$(MY_DB_SERVICE_PORT)"}
            ]}]),
            serde_json::json!({}),
        );
        let env = run(&p, &f).unwrap();
        assert_eq!(
            env.iter()
                .filter(|(n, _)| n == "MY_DB_SERVICE_HOST")
                .count(),
            1
        );
        assert_eq!(get(&env, "MY_DB_SERVICE_HOST"), Some("override"));
        assert_eq!(get(&env, "REF"), Some("5432"));
        // Explicit variables first, then the service variables by name.
        assert_eq!(env[0].0, "MY_DB_SERVICE_HOST");
        assert_eq!(env[1].0, "REF");
        let rest: Vec<&str> = env[2..].iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = rest.clone();
        sorted.sort_unstable();
        assert_eq!(rest, sorted);
        assert_eq!(env.len(), 2 + 20 - 1);
    }

    #[test]
    fn field_refs() {
        let f = Fixture::new();
        let field = |name: &str, path: &str| serde_json::json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "env": [
                field("NAME", "metadata.name"),
                field("NS", "metadata.namespace"),
                field("UID", "metadata.uid"),
                field("APP", "metadata.labels['app']"),
                field("NOTE", "metadata.annotations['note']"),
                field("LABELS", "metadata.labels"),
                field("NODE", "spec.nodeName"),
                field("HOST", "spec.host"),
                field("SA", "spec.serviceAccountName"),
                field("HOST_IP", "status.hostIP"),
                field("HOST_IPS", "status.hostIPs"),
                field("POD_IP", "status.podIP"),
                field("POD_IPS", "status.podIPs")
            ]}]),
            serde_json::json!({"enableServiceLinks": false}),
        );
        let env = run(&p, &f).unwrap();
        let want = [
            ("NAME", "web"),
            ("NS", "prod"),
            ("UID", "u1"),
            ("APP", "web"),
            ("NOTE", "hi"),
            ("LABELS", "app=\"web\""),
            ("NODE", "node-a"),
            ("HOST", "node-a"),
            ("SA", "sa"),
            ("HOST_IP", "192.168.1.10"),
            ("HOST_IPS", "192.168.1.10,fd00::10"),
            ("POD_IP", "10.1.2.3"),
            ("POD_IPS", "10.1.2.3,fd00::1:2"),
        ];
        for (name, value) in want {
            assert_eq!(get(&env, name), Some(value), "{name}");
        }
        // An IPv6-primary node puts the IPv6 pod IP first.
        assert_eq!(
            sort_pod_ips(&f.pod_ips, &["fd00::10".to_owned()]),
            vec!["fd00::1:2".to_owned(), "10.1.2.3".to_owned()]
        );

        for (path, err) in [
            (
                "spec.restartPolicy",
                "unsupported fieldPath: spec.restartPolicy",
            ),
            (
                "spec.containers",
                "field label not supported: spec.containers",
            ),
            (
                "metadata.name['x']",
                "field label does not support subscript: metadata.name['x']",
            ),
        ] {
            let p = pod(
                serde_json::json!([{"name": "app", "image": "i", "env": [field("X", path)]}]),
                serde_json::json!({}),
            );
            let e = run(&p, &f).unwrap_err();
            assert_eq!(e.waiting_message(), err);
            assert_eq!(e.waiting_reason(), "CreateContainerConfigError");
        }
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "env": [
                {"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}}
            ]}]),
            serde_json::json!({}),
        );
        assert_eq!(
            run(&p, &f).unwrap_err().waiting_message(),
            "unsupported pod version: v2"
        );
    }

    #[test]
    fn resource_field_refs_default_to_allocatable() {
        let f = Fixture::new();
        let res = |name: &str, resource: &str, container: Option<&str>, divisor: Option<&str>| {
            serde_json::json!({"name": name, "valueFrom": {"resourceFieldRef": {
                "resource": resource, "containerName": container, "divisor": divisor}}})
        };
        let p = pod(
            serde_json::json!([
                {"name": "app", "image": "i", "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m"}},
                 "env": [
                    res("CPU_LIMIT", "limits.cpu", None, None),
                    res("MEM_LIMIT_MI", "limits.memory", None, Some("1Mi")),
                    res("CPU_REQ_M", "requests.cpu", None, Some("1m")),
                    res("SIDE_MEM", "limits.memory", Some("side"), Some("1Gi")),
                    res("INIT_CPU", "limits.cpu", Some("init"), None)
                 ]},
                {"name": "side", "image": "i"}
            ]),
            serde_json::json!({"initContainers": [{"name": "init", "image": "i"}], "enableServiceLinks": false}),
        );
        let env = run(&p, &f).unwrap();
        assert_eq!(get(&env, "CPU_LIMIT"), Some("4"));
        assert_eq!(get(&env, "MEM_LIMIT_MI"), Some("1024"));
        assert_eq!(get(&env, "CPU_REQ_M"), Some("100"));
        assert_eq!(get(&env, "SIDE_MEM"), Some("16"));
        // Init containers named by a selector are not defaulted (upstream).
        assert_eq!(get(&env, "INIT_CPU"), Some("0"));
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "env": [res("X", "limits.cpu", Some("ghost"), None)]}]),
            serde_json::json!({}),
        );
        assert_eq!(
            run(&p, &f).unwrap_err().waiting_message(),
            "container ghost not found"
        );
    }

    #[test]
    fn key_refs_and_optional_handling() {
        let f = Fixture::new();
        let cm = |name: &str, cm: &str, key: &str, optional: bool| serde_json::json!({"name": name, "valueFrom": {"configMapKeyRef": {"name": cm, "key": key, "optional": optional}}});
        let sk = |name: &str, s: &str, key: &str, optional: bool| serde_json::json!({"name": name, "valueFrom": {"secretKeyRef": {"name": s, "key": key, "optional": optional}}});
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "env": [
                cm("HOST", "cm", "HOST", false),
                cm("OPT_KEY", "cm", "nope", true),
                cm("OPT_CM", "ghost", "x", true),
                sk("PW", "s", "PASSWORD", false),
                sk("OPT_S", "ghost", "x", true),
                {"name": "AFTER", "value": "[$(OPT_KEY)]"}
            ]}]),
            serde_json::json!({"enableServiceLinks": false}),
        );
        let env = run(&p, &f).unwrap();
        assert_eq!(get(&env, "HOST"), Some("db"));
        assert_eq!(get(&env, "PW"), Some("hunter2"));
        for absent in ["OPT_KEY", "OPT_CM", "OPT_S"] {
            assert!(get(&env, absent).is_none(), "{absent}");
        }
        assert_eq!(get(&env, "AFTER"), Some("[$(OPT_KEY)]"));

        let cases = [
            (
                cm("X", "cm", "nope", false),
                "couldn't find key nope in ConfigMap prod/cm",
            ),
            (
                cm("X", "ghost", "k", false),
                "configmap \"ghost\" not found",
            ),
            (
                sk("X", "s", "nope", false),
                "couldn't find key nope in Secret prod/s",
            ),
            (sk("X", "ghost", "k", false), "secret \"ghost\" not found"),
            (
                sk("X", "s", "BIN", false),
                "value of key BIN in Secret prod/s is not valid UTF-8",
            ),
        ];
        for (var, want) in cases {
            let p = pod(
                serde_json::json!([{"name": "app", "image": "i", "env": [var]}]),
                serde_json::json!({}),
            );
            let err = run(&p, &f).unwrap_err();
            assert_eq!(err.waiting_message(), want);
            match err {
                RuntimeError::ContainerConfig { pod, container, .. } => {
                    assert_eq!((pod.as_str(), container.as_str()), ("prod/web", "app"));
                }
                other => panic!("{other}"),
            }
        }
        let p = pod(
            serde_json::json!([{"name": "app", "image": "i", "envFrom": [{"configMapRef": {"name": "ghost"}}]}]),
            serde_json::json!({}),
        );
        assert_eq!(
            run(&p, &f).unwrap_err().waiting_message(),
            "configmap \"ghost\" not found"
        );
    }
}
