//! A realistic kubeadm-style config round-trips (load -> print -> load gives the same config),
//! and arbitrary input never panics the loader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;

use node_config::{Loader, Strictness, to_yaml};
use proptest::prelude::*;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/configs")
        .join(name)
}

#[test]
fn kubeadm_config_round_trips() {
    let first = Loader::new()
        .config_file(sample("kubelet.yaml"))
        .strictness(Strictness::Strict)
        .load()
        .unwrap();
    let c = &first.config;
    // Values from the file survive; kubeadm's explicit zero durations get v1beta1 defaults.
    assert_eq!(c.cgroup_driver, "systemd");
    assert!(c.rotate_certificates);
    assert_eq!(c.authentication.webhook.enabled, Some(true));
    assert_eq!(
        c.authentication.x509.client_ca_file,
        "/etc/kubernetes/pki/ca.crt"
    );
    assert_eq!(c.cluster_dns, ["10.96.0.10"]);
    assert_eq!(c.static_pod_path, "/etc/kubernetes/manifests");
    assert_eq!(
        c.resolv_conf.as_deref(),
        Some("/run/systemd/resolve/resolv.conf")
    );
    assert_eq!(
        c.eviction_hard.as_ref().unwrap()["memory.available"],
        "200Mi"
    );
    assert_eq!(
        c.authorization.webhook.cache_authorized_ttl.to_string(),
        "5m0s"
    );
    assert_eq!(c.logging.flush_frequency.0.to_string(), "5s");

    let dir = tempfile::tempdir().unwrap();
    let printed = dir.path().join("printed.yaml");
    fs::write(&printed, to_yaml(c).unwrap()).unwrap();
    let second = Loader::new()
        .config_file(&printed)
        .strictness(Strictness::Strict)
        .load()
        .unwrap();
    assert_eq!(&second.config, c);
    // And printing is stable.
    assert_eq!(to_yaml(&second.config).unwrap(), to_yaml(c).unwrap());
}

#[test]
fn sample_dropins_merge() {
    let loaded = Loader::new()
        .config_file(sample("kubelet.yaml"))
        .config_dir(sample("kubelet.conf.d"))
        .load()
        .unwrap();
    assert_eq!(loaded.config.cluster_dns, ["10.96.0.10", "10.96.0.11"]);
    assert_eq!(loaded.config.max_pods, 60);
    assert_eq!(loaded.config.system_reserved["memory"], "1Gi");
    assert_eq!(loaded.sources.len(), 3, "README.txt is not a drop-in");
}

fn load_text(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.yaml");
    fs::write(&path, text).unwrap();
    // Any outcome but a panic is fine.
    let _ = Loader::new().config_file(&path).load();
    let _ = Loader::new()
        .config_file(&path)
        .strictness(Strictness::Strict)
        .load();
}

/// YAML built from arbitrary JSON-like values under real and made-up keys.
fn yaml_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-zA-Z0-9%<>. :/-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "port",
            "maxPods",
            "authentication",
            "webhook",
            "enabled",
            "cacheTTL",
            "evictionHard",
            "featureGates",
            "clusterDNS",
            "logging",
            "flushFrequency",
            "reservedMemory",
            "limits",
            "syncFrequency",
            "staticPodURLHeader",
            "registerWithTaints",
            "effect",
            "memorySwap",
            "tracing",
            "userNamespaces",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        load_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_yaml_never_panics(body in prop::collection::btree_map(key(), yaml_value(), 0..8)) {
        let mut doc = serde_json::Map::new();
        doc.insert("apiVersion".into(), "kubelet.config.k8s.io/v1beta1".into());
        doc.insert("kind".into(), "KubeletConfiguration".into());
        doc.extend(body);
        let text = serde_saphyr::to_string(&serde_json::Value::Object(doc)).unwrap();
        load_text(&text);
    }
}
