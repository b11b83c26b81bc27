//! node-runtime: static pod manifests (`staticPodPath` files) through `parse_manifest`, the
//! YAML/JSON decode, the kubelet's checks and the static pod naming.
//!
//! Invariants: an accepted manifest gets the name `<name>-<node>`, a non-empty namespace and
//! UID, and the `kubernetes.io/config.hash` annotation equal to its UID.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node_runtime::{ANNOTATION_CONFIG_HASH, parse_manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/kubernetes/manifests/fuzz.yaml");
    let Ok(pod) = parse_manifest(path, text, "node-1") else {
        return;
    };
    assert!(pod.name.ends_with("-node-1"), "{}", pod.name);
    assert!(!pod.namespace.is_empty());
    assert!(!pod.uid.is_empty());
    let annotations = pod
        .pod
        .metadata
        .annotations
        .as_ref()
        .expect("annotations are set");
    assert_eq!(annotations.get(ANNOTATION_CONFIG_HASH), Some(&pod.uid));
    assert_eq!(pod.full_name(), format!("{}/{}", pod.namespace, pod.name));
});
