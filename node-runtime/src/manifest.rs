//! Static pod manifests: reading one file into a [`SourcePod`], named and identified the way
//! the kubelet names static pods (`<name>-<nodeName>`, a content-derived UID, the
//! `kubernetes.io/config.*` annotations), and checked before anything reaches the runtime.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::error::RuntimeError;
use crate::validation::validate_pod;

/// Largest manifest accepted: the API server's request size limit (1.5 MiB), since a larger
/// static pod could never be mirrored to the API server.
pub const MAX_MANIFEST_BYTES: u64 = 3 * 1024 * 1024 / 2;

/// `kubernetes.io/config.hash`: the static pod's UID.
pub const ANNOTATION_CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// `kubernetes.io/config.source`: `file` for manifests from `staticPodPath`.
pub const ANNOTATION_CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// `kubernetes.io/config.seen`: when the agent first saw this version of the manifest.
pub const ANNOTATION_CONFIG_SEEN: &str = "kubernetes.io/config.seen";

/// Where a pod came from: the kubelet's config sources (`kubernetes.io/config.source`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PodSource {
    /// A static pod: a manifest file of `staticPodPath` (source `file`).
    File(PathBuf),
    /// A pod the API server assigned to this node (source `api`).
    Api,
}

impl PodSource {
    /// The `kubernetes.io/config.source` value: `file` or `api`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            PodSource::File(_) => "file",
            PodSource::Api => "api",
        }
    }

    /// The manifest file of a static pod.
    #[must_use]
    pub fn manifest(&self) -> Option<&Path> {
        match self {
            PodSource::File(path) => Some(path),
            PodSource::Api => None,
        }
    }

    /// Whether the pod is a static pod (from a file), which the API server only sees through
    /// its mirror pod.
    #[must_use]
    pub fn is_static(&self) -> bool {
        matches!(self, PodSource::File(_))
    }
}

/// A validated pod from one of the agent's config sources, ready to sync: a static pod read
/// from a manifest ([`read_manifest`]) or a pod from the API server
/// ([`crate::api_source::ApiPods`]).
#[derive(Debug, Clone)]
pub struct SourcePod {
    /// Where it came from.
    pub source: PodSource,
    /// The pod: for a static pod, with the kubelet's defaults for static pods applied (name,
    /// namespace, UID, annotations); for an API pod, as the API server sent it. Shared, as
    /// every sync pass hands it to the pod's record ([`crate::PodInfo::pod`]).
    pub pod: std::sync::Arc<Pod>,
    /// `metadata.namespace` (default `default`).
    pub namespace: String,
    /// `<manifest name>-<node name>`.
    pub name: String,
    /// Content-derived UID (also `kubernetes.io/config.hash`).
    pub uid: String,
}

impl SourcePod {
    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The pod's `kubernetes.io/config.seen` annotation.
pub(crate) fn seen_of(pod: &SourcePod) -> Option<String> {
    pod.pod
        .metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_CONFIG_SEEN)
        .cloned()
}

/// Sets `kubernetes.io/config.seen` to `seen`, or to now (RFC 3339 with nanoseconds, as the
/// kubelet's `recordFirstSeenTime`).
pub(crate) fn set_seen(pod: &mut SourcePod, seen: Option<String>) {
    let seen = seen.unwrap_or_else(|| jiff::Timestamp::now().to_string());
    std::sync::Arc::make_mut(&mut pod.pod)
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_CONFIG_SEEN.to_owned(), seen);
}

/// Reads and validates one manifest file for node `node_name`.
pub fn read_manifest(path: &Path, node_name: &str) -> Result<SourcePod, RuntimeError> {
    let bad = |reason: String| RuntimeError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    // Opened without blocking (a FIFO swapped in must not hang the agent), checked to be a
    // regular file, and read no further than the cap even if it grows meanwhile.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".to_owned()));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(bad(format!(
            "file is {} bytes; a static pod manifest may be at most {MAX_MANIFEST_BYTES} bytes (the API server's object size limit)",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(bad(format!(
            "file grew past {MAX_MANIFEST_BYTES} bytes while being read"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
    parse_manifest(path, &text, node_name)
}

/// Parses and validates manifest `text` (YAML or JSON) as if read from `path`.
pub fn parse_manifest(path: &Path, text: &str, node_name: &str) -> Result<SourcePod, RuntimeError> {
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
    // The kubelet's order (`tryDecodeSinglePod`): a name is needed before defaulting, then the
    // defaults, then the API server's validation of the defaulted pod.
    let manifest_name = match pod.metadata.name.as_deref() {
        None | Some("") => return Err(bad("invalid pod: name is needed for the pod".to_owned())),
        Some(name) => name.to_owned(),
    };
    let namespace = match pod.metadata.namespace.as_deref() {
        None | Some("") => "default".to_owned(),
        Some(ns) => ns.to_owned(),
    };
    let name = format!("{manifest_name}-{}", node_name.to_lowercase());
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
    validate_pod(&pod).map_err(|e| bad(format!("invalid pod: {e}")))?;
    if let Some(spec) = &pod.spec {
        let refs = api_references(spec);
        if !refs.is_empty() {
            return Err(bad(format!(
                "static pods may not reference {}",
                refs.join(", ")
            )));
        }
    }
    Ok(SourcePod {
        source: PodSource::File(path.to_path_buf()),
        pod: std::sync::Arc::new(pod),
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

/// What a static pod may not reference: API objects the node cannot read without an API
/// server, and which a static pod could otherwise use to read what its node may read
/// (`PreventStaticPodAPIReferences`, beta and on by default since 1.34;
/// `pkg/kubelet/config/common.go`).
fn api_references(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut add = |what: &'static str| {
        if !found.contains(&what) {
            found.push(what);
        }
    };
    if spec
        .service_account_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        add("serviceaccounts");
    }
    for v in spec.volumes.iter().flatten() {
        if v.secret.is_some() {
            add("secrets");
        }
        if v.config_map.is_some() {
            add("configmaps");
        }
        if v.persistent_volume_claim.is_some() || v.ephemeral.is_some() {
            add("persistentvolumeclaims");
        }
        for s in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if s.secret.is_some() {
                add("secrets");
            }
            if s.config_map.is_some() {
                add("configmaps");
            }
            if s.service_account_token.is_some() {
                add("serviceaccounts");
            }
            if s.cluster_trust_bundle.is_some() {
                add("clustertrustbundles");
            }
        }
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for e in c.env_from.iter().flatten() {
            if e.secret_ref.is_some() {
                add("secrets");
            }
            if e.config_map_ref.is_some() {
                add("configmaps");
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(from) = &e.value_from {
                if from.secret_key_ref.is_some() {
                    add("secrets");
                }
                if from.config_map_key_ref.is_some() {
                    add("configmaps");
                }
            }
        }
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        add("resourceclaims");
    }
    found
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
                "spec.containers[0].image: Required value",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: i\n  - name: a\n    image: i\n",
                "spec.containers[1].name: Duplicate value: \"a\"",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: [\n",
                "invalid YAML",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: a\n    image: i\n",
                "metadata.name: Invalid value: \"Bad_Name-n\"",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: i\n    volumeMounts:\n    - name: data\n      mountPath: /d\n",
                "spec.containers[0].volumeMounts[0].name: Invalid value: \"data\": not found in spec.volumes",
            ),
            ("", "empty"),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  uid: ../../victim\nspec:\n  containers:\n  - name: a\n    image: i\n",
                "invalid pod: name is needed for the pod",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  uid: ../../victim\nspec:\n  containers:\n  - name: a\n    image: i\n",
                "metadata.uid: Invalid value: \"../../victim\"",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: ../x\nspec:\n  containers:\n  - name: a\n    image: i\n",
                "metadata.namespace: Invalid value: \"../x\"",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  volumes:\n  - name: s\n    secret: {secretName: db}\n  containers:\n  - name: a\n    image: i\n    envFrom: [{configMapRef: {name: c}}]\n",
                "static pods may not reference secrets, configmaps",
            ),
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
