//! Static pod manifests: reading one file into a [`StaticPod`], named and identified the way
//! the kubelet names static pods (`<name>-<nodeName>`, a content-derived UID, the
//! `kubernetes.io/config.*` annotations), and checked before anything reaches the runtime.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::error::RuntimeError;

/// Largest manifest accepted: the API server's request size limit (1.5 MiB), since a larger
/// static pod could never be mirrored to the API server.
pub const MAX_MANIFEST_BYTES: u64 = 3 * 1024 * 1024 / 2;

/// `kubernetes.io/config.hash`: the static pod's UID.
pub const ANNOTATION_CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// `kubernetes.io/config.source`: `file` for manifests from `staticPodPath`.
pub const ANNOTATION_CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// `kubernetes.io/config.seen`: when the agent first saw this version of the manifest.
pub const ANNOTATION_CONFIG_SEEN: &str = "kubernetes.io/config.seen";

/// A validated static pod.
#[derive(Debug, Clone)]
pub struct StaticPod {
    /// The manifest file.
    pub path: PathBuf,
    /// The pod with the kubelet's defaults for static pods applied (name, namespace, UID,
    /// annotations).
    pub pod: Pod,
    /// `metadata.namespace` (default `default`).
    pub namespace: String,
    /// `<manifest name>-<node name>`.
    pub name: String,
    /// Content-derived UID (also `kubernetes.io/config.hash`).
    pub uid: String,
}

impl StaticPod {
    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Reads and validates one manifest file for node `node_name`.
pub fn read_manifest(path: &Path, node_name: &str) -> Result<StaticPod, RuntimeError> {
    let bad = |reason: String| RuntimeError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(bad(format!(
            "file is {} bytes; a static pod manifest may be at most {MAX_MANIFEST_BYTES} bytes (the API server's object size limit)",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
    parse_manifest(path, &text, node_name)
}

/// Parses and validates manifest `text` (YAML or JSON) as if read from `path`.
pub fn parse_manifest(path: &Path, text: &str, node_name: &str) -> Result<StaticPod, RuntimeError> {
    let bad = |reason: String| RuntimeError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    if text.trim().is_empty() {
        return Err(bad("file is empty".to_owned()));
    }
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| bad(format!("invalid YAML: {}", first_line(&e.to_string()))))?;
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != "v1" || kind != "Pod" {
        return Err(bad(format!(
            "expected apiVersion v1, kind Pod; found apiVersion {api_version:?}, kind {kind:?}"
        )));
    }
    let mut pod: Pod = serde_path_to_error_json(value).map_err(bad)?;
    validate(&pod).map_err(bad)?;

    let manifest_name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = match pod.metadata.namespace.as_deref() {
        None | Some("") => "default".to_owned(),
        Some(ns) => ns.to_owned(),
    };
    let name = format!("{manifest_name}-{node_name}");
    let uid = match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => derive_uid(&pod, node_name, path),
    };
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = Some(namespace.clone());
    pod.metadata.uid = Some(uid.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(ANNOTATION_CONFIG_HASH.to_owned(), uid.clone());
    annotations.insert(ANNOTATION_CONFIG_SOURCE.to_owned(), "file".to_owned());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node_name.to_owned());
    }
    Ok(StaticPod {
        path: path.to_path_buf(),
        pod,
        namespace,
        name,
        uid,
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn serde_path_to_error_json(value: Value) -> Result<Pod, String> {
    serde_json::from_value::<Pod>(value).map_err(|e| format!("not a valid v1 Pod: {e}"))
}

/// The kubelet's recipe for a static pod UID: an MD5 over the pod as decoded, the node name and
/// the manifest path, hex-encoded. The kubelet hashes Go's in-memory rendering of the pod; we
/// hash its canonical JSON, so the UID is deterministic and changes with any edit, but is not
/// byte-identical to the one a Go kubelet derives.
fn derive_uid(pod: &Pod, node_name: &str, path: &Path) -> String {
    let mut hasher = Md5::new();
    hasher.update(serde_json::to_vec(pod).unwrap_or_default());
    hasher.update(format!("host:{node_name}"));
    hasher.update(format!("file:{}", path.display()));
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, alphanumeric at both ends, <= 253.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// DNS-1123 label: like a subdomain without dots, <= 63.
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

/// The checks that keep a broken manifest from reaching the runtime.
fn validate(pod: &Pod) -> Result<(), String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if !is_dns_subdomain(name) {
        return Err(format!(
            "metadata.name {name:?} must be a lowercase DNS-1123 subdomain"
        ));
    }
    let spec = pod.spec.as_ref().ok_or("spec is missing")?;
    if spec.containers.is_empty() {
        return Err("spec.containers must list at least one container".to_owned());
    }
    let mut names = HashSet::new();
    let volumes: HashSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| ("initContainers", c))
        .chain(spec.containers.iter().map(|c| ("containers", c)));
    for (list, c) in all {
        if !is_dns_label(&c.name) {
            return Err(format!(
                "spec.{list}: name {:?} must be a lowercase DNS-1123 label",
                c.name
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!(
                "spec.{list}: duplicate container name {:?}",
                c.name
            ));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            return Err(format!("spec.{list}[{}].image: required value", c.name));
        }
        for m in c.volume_mounts.iter().flatten() {
            if !volumes.contains(m.name.as_str()) {
                return Err(format!(
                    "spec.{list}[{}].volumeMounts: volume {:?} is not defined in spec.volumes",
                    c.name, m.name
                ));
            }
        }
    }
    if let Some(policy) = spec.restart_policy.as_deref()
        && !["Always", "OnFailure", "Never"].contains(&policy)
    {
        return Err(format!(
            "spec.restartPolicy {policy:?} must be Always, OnFailure or Never"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  hostNetwork: true\n  containers:\n  - name: app\n    image: busybox\n";

    #[test]
    fn names_and_annotates_like_the_kubelet() {
        let p = parse_manifest(
            Path::new("/etc/kubernetes/manifests/web.yaml"),
            POD,
            "node-a",
        )
        .unwrap();
        assert_eq!(p.name, "web-node-a");
        assert_eq!(p.namespace, "default");
        assert_eq!(p.uid.len(), 32);
        let ann = p.pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann[ANNOTATION_CONFIG_HASH], p.uid);
        assert_eq!(ann[ANNOTATION_CONFIG_SOURCE], "file");
        // Deterministic, and different for another node or another content.
        let again = parse_manifest(
            Path::new("/etc/kubernetes/manifests/web.yaml"),
            POD,
            "node-a",
        )
        .unwrap();
        assert_eq!(again.uid, p.uid);
        let other = parse_manifest(
            Path::new("/etc/kubernetes/manifests/web.yaml"),
            POD,
            "node-b",
        )
        .unwrap();
        assert_ne!(other.uid, p.uid);
        let edited = parse_manifest(
            Path::new("/etc/kubernetes/manifests/web.yaml"),
            &POD.replace("busybox", "busybox:2"),
            "node-a",
        )
        .unwrap();
        assert_ne!(edited.uid, p.uid);
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases = [
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n",
                "kind Pod",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n",
                "image: required",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: i\n  - name: a\n    image: i\n",
                "duplicate container name",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: [\n",
                "invalid YAML",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: a\n    image: i\n",
                "DNS-1123",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: i\n    volumeMounts:\n    - name: data\n      mountPath: /d\n",
                "not defined",
            ),
            ("", "empty"),
        ];
        for (text, expected) in cases {
            let err = parse_manifest(Path::new("/m/x.yaml"), text, "n")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.contains("/m/x.yaml"),
                "{expected}: {err}"
            );
        }
    }
}
