//! The kubelet's drop-in merge and precedence rules, including the seed's golden examples
//! (`kubelet-config-directory-merging`: structs, lists, `map[string][]string`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use node_config::{ConfigError, FlagOverrides, LoadedConfig, Loader, Strictness};
use serde_json::{Value, json};

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir(f.dropins()).unwrap();
        f
    }
    fn base(&self) -> PathBuf {
        self.dir.path().join("kubelet.yaml")
    }
    fn dropins(&self) -> PathBuf {
        self.dir.path().join("kubelet.conf.d")
    }
    fn write_base(&self, body: &str) -> &Self {
        fs::write(self.base(), format!("{HEAD}{body}")).unwrap();
        self
    }
    fn write_dropin(&self, name: &str, body: &str) -> &Self {
        let path = self.dropins().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{HEAD}{body}")).unwrap();
        self
    }
    fn loader(&self) -> Loader {
        Loader::new()
            .config_file(self.base())
            .config_dir(self.dropins())
    }
    fn load(&self) -> LoadedConfig {
        self.loader().load().unwrap()
    }
}

/// The configuration as the kubelet would print it (v1beta1 JSON).
fn json_of(loaded: &LoadedConfig) -> Value {
    serde_json::to_value(&loaded.config).unwrap()
}

#[test]
fn seed_example_structs() {
    let f = Fixture::new();
    f.write_base(
        "port: 20250\nauthorization:\n  mode: Webhook\n  webhook:\n    cacheAuthorizedTTL: \"5m\"\n    cacheUnauthorizedTTL: \"30s\"\nserializeImagePulls: false\naddress: \"192.168.0.1\"\n",
    )
    .write_dropin(
        "00-authz.conf",
        "authorization:\n  mode: AlwaysAllow\n  webhook:\n    cacheAuthorizedTTL: \"8m\"\n    cacheUnauthorizedTTL: \"45s\"\naddress: \"192.168.0.8\"\n",
    );
    let j = json_of(&f.load());
    assert_eq!(j["port"], 20250);
    assert_eq!(j["serializeImagePulls"], false);
    assert_eq!(j["address"], "192.168.0.8");
    assert_eq!(
        j["authorization"],
        json!({"mode": "AlwaysAllow", "webhook": {"cacheAuthorizedTTL": "8m0s", "cacheUnauthorizedTTL": "45s"}})
    );
}

#[test]
fn seed_example_lists_are_replaced() {
    let f = Fixture::new();
    f.write_base("port: 20250\nserializeImagePulls: false\nclusterDNS:\n  - \"192.168.0.9\"\n  - \"192.168.0.8\"\n")
        .write_dropin("00-dns.conf", "clusterDNS:\n  - \"192.168.0.2\"\n  - \"192.168.0.3\"\n  - \"192.168.0.5\"\n");
    let j = json_of(&f.load());
    assert_eq!(j["port"], 20250);
    assert_eq!(j["serializeImagePulls"], false);
    assert_eq!(
        j["clusterDNS"],
        json!(["192.168.0.2", "192.168.0.3", "192.168.0.5"])
    );
}

#[test]
fn seed_example_maps_merge_per_key() {
    let f = Fixture::new();
    f.write_base(
        "port: 20250\nserializeImagePulls: false\nfeatureGates:\n  AllAlpha: false\n  MemoryQoS: true\nstaticPodURLHeader:\n  kubelet-api-support:\n  - \"Authorization: 234APSDFA\"\n  - \"X-Custom-Header: 123\"\n  custom-static-pod:\n  - \"Authorization: 223EWRWER\"\n  - \"X-Custom-Header: 456\"\n",
    )
    .write_dropin(
        "00-maps.conf",
        "featureGates:\n  MemoryQoS: false\n  KubeletTracing: true\n  DynamicResourceAllocation: true\nstaticPodURLHeader:\n  custom-static-pod:\n  - \"Authorization: 223EWRWER\"\n  - \"X-Custom-Header: 345\"\n",
    );
    let loaded = f.load();
    let j = json_of(&loaded);
    assert_eq!(
        j["featureGates"],
        json!({"AllAlpha": false, "MemoryQoS": false, "KubeletTracing": true, "DynamicResourceAllocation": true})
    );
    assert_eq!(
        j["staticPodURLHeader"],
        json!({
            "kubelet-api-support": ["Authorization: 234APSDFA", "X-Custom-Header: 123"],
            "custom-static-pod": ["Authorization: 223EWRWER", "X-Custom-Header: 345"],
        })
    );
    assert_eq!(j["port"], 20250);
    assert_eq!(j["serializeImagePulls"], false);
    // Setting GA gates is allowed and warned about, as the kubelet does.
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("Setting GA feature gate")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn e2e_vector_two_dropins() {
    // The upstream e2e test's files 10 and 20 (kubelet_config_dir_test.go). Its feature gates name
    // DisableKubeletCloudCredentialProviders, which 1.35 no longer knows, so the gates here are
    // checked at the merge level below and the typed load uses gates 1.35 accepts.
    let f = Fixture::new();
    f.write_base("")
        .write_dropin(
            "10-kubelet.conf",
            "port: 10255\nreadOnlyPort: 10257\nclusterDNS:\n- 192.168.1.10\nsystemReserved:\n  memory: 1Gi\nshutdownGracePeriodByPodPriority:\n  - priority: 1\n    shutdownGracePeriodSeconds: 60\n  - priority: 2\n    shutdownGracePeriodSeconds: 45\nfeatureGates:\n  KubeletTracing: true\n  PodAndContainerStatsFromCRI: true\n",
        )
        .write_dropin(
            "20-kubelet.conf",
            "clusterDNS:\n- 192.168.1.1\n- 192.168.1.5\n- 192.168.1.8\nport: 8080\nsystemReserved:\n  memory: 2Gi\nshutdownGracePeriodByPodPriority:\n  - priority: 1\n    shutdownGracePeriodSeconds: 19\n  - priority: 6\n    shutdownGracePeriodSeconds: 30\nfeatureGates:\n  PodAndContainerStatsFromCRI: false\n  DynamicResourceAllocation: true\n",
        );
    let j = json_of(&f.load());
    assert_eq!(j["port"], 8080);
    assert_eq!(j["readOnlyPort"], 10257);
    assert_eq!(j["systemReserved"], json!({"memory": "2Gi"}));
    assert_eq!(
        j["clusterDNS"],
        json!(["192.168.1.1", "192.168.1.5", "192.168.1.8"])
    );
    assert_eq!(j["cpuCFSQuotaPeriod"], "100ms", "the true default persists");
    assert_eq!(
        j["shutdownGracePeriodByPodPriority"],
        json!([{"priority": 1, "shutdownGracePeriodSeconds": 19}, {"priority": 6, "shutdownGracePeriodSeconds": 30}])
    );
    assert_eq!(
        j["featureGates"],
        json!({"KubeletTracing": true, "PodAndContainerStatsFromCRI": false, "DynamicResourceAllocation": true})
    );
}

#[test]
fn gates_unknown_to_1_35_are_rejected_like_the_kubelet() {
    let f = Fixture::new();
    f.write_base("featureGates:\n  DisableKubeletCloudCredentialProviders: true\n");
    let err = f.loader().load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid feature gates: unrecognized feature gate: DisableKubeletCloudCredentialProviders"
    );
}

#[test]
fn null_deletes_and_the_default_returns() {
    let f = Fixture::new();
    f.write_base("port: 20250\nmaxPods: 30\nclusterDNS: [10.0.0.10]\n")
        .write_dropin("10-null.conf", "port: null\nclusterDNS: null\n");
    let loaded = f.load();
    assert_eq!(
        loaded.config.port, 10250,
        "deleted key takes the v1beta1 default"
    );
    assert_eq!(loaded.config.max_pods, 30, "untouched key kept");
    assert!(loaded.config.cluster_dns.is_empty());
}

#[test]
fn only_conf_files_in_byte_order_recursively() {
    let f = Fixture::new();
    f.write_base("")
        .write_dropin("20-b.conf", "maxPods: 20\n")
        .write_dropin("100-a.conf", "maxPods: 100\npodsPerCore: 1\n")
        .write_dropin("30-c.yaml", "maxPods: 30\n")
        .write_dropin("40-d.CONF", "maxPods: 40\n")
        .write_dropin("25-sub/1.conf", "podsPerCore: 7\n")
        .write_dropin("25-sub/ignored.txt", "podsPerCore: 9\n");
    let loaded = f.load();
    // Byte order: "100-a.conf" < "20-b.conf" < "25-sub/" < "30-c.yaml" < "40-d.CONF".
    assert_eq!(loaded.config.max_pods, 20);
    assert_eq!(loaded.config.pods_per_core, 7);
    let names: Vec<String> = loaded
        .sources
        .iter()
        .skip(1)
        .map(|p| p.strip_prefix(f.dropins()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["100-a.conf", "20-b.conf", "25-sub/1.conf"]);
}

#[test]
fn empty_dropin_is_fatal() {
    let f = Fixture::new();
    f.write_base("");
    fs::write(f.dropins().join("20-kubelet.conf"), "\n  \n").unwrap();
    let err = f.loader().load().unwrap_err();
    let path = f.dropins().join("20-kubelet.conf");
    assert_eq!(
        err.to_string(),
        format!("kubelet config file {path:?} was empty")
    );
}

#[test]
fn empty_config_file_is_fatal() {
    let f = Fixture::new();
    fs::write(f.base(), "").unwrap();
    assert!(matches!(f.loader().load(), Err(ConfigError::Empty { .. })));
}

#[test]
fn dropin_with_other_api_version_fails() {
    let f = Fixture::new();
    f.write_base("");
    fs::write(
        f.dropins().join("10.conf"),
        "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n",
    )
    .unwrap();
    let err = f.loader().load().unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown apiVersion/kind: kubelet.config.k8s.io/v1"),
        "{err}"
    );
    fs::write(f.dropins().join("10.conf"), "maxPods: 3\n").unwrap();
    let err = f.loader().load().unwrap_err();
    assert!(err.to_string().ends_with("no apiVersion/kind"), "{err}");
}

#[test]
fn duplicate_keys_name_file_and_line() {
    let f = Fixture::new();
    f.write_base("");
    f.write_dropin("10.conf", "maxPods: 1\nmaxPods: 2\n");
    let err = f.loader().load().unwrap_err().to_string();
    let path = f.dropins().join("10.conf");
    assert!(err.starts_with(&format!("{}:4:", path.display())), "{err}");
    assert!(err.to_lowercase().contains("duplicate"), "{err}");
}

#[test]
fn bad_types_name_file_line_and_field() {
    let f = Fixture::new();
    f.write_base("maxPods: 10\nevictionHard:\n  memory.available: [1]\n");
    let err = f.loader().load().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:5:", f.base().display())),
        "{err}"
    );
    assert!(err.contains("field evictionHard.memory.available"), "{err}");

    f.write_base("syncFrequency: often\n");
    let err = f.loader().load().unwrap_err().to_string();
    assert!(
        err.contains("field syncFrequency") && err.contains("invalid duration \"often\""),
        "{err}"
    );
}

#[test]
fn unknown_fields_warn_by_default_and_fail_in_strict_mode() {
    let f = Fixture::new();
    f.write_base("maxPods: 12\nfutureField: 1\nlogging:\n  colour: true\n")
        .write_dropin("10.conf", "anotherNewField: x\n");
    let loaded = f.load();
    assert_eq!(loaded.config.max_pods, 12);
    let warnings = loaded.warnings.join("\n");
    assert!(
        warnings.contains("futureField, logging.colour"),
        "{warnings}"
    );
    assert!(warnings.contains("anotherNewField"), "{warnings}");

    let err = f
        .loader()
        .strictness(Strictness::Strict)
        .load()
        .unwrap_err();
    match err {
        ConfigError::UnknownFields { path, fields } => {
            assert_eq!(path, f.base());
            assert_eq!(fields, ["futureField", "logging.colour"]);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn relative_paths_resolve_against_their_file() {
    let f = Fixture::new();
    f.write_base("staticPodPath: manifests\ntlsCertFile: pki/kubelet.crt\nresolvConf: \"\"\nauthentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n")
        .write_dropin("sub/10.conf", "tlsPrivateKeyFile: keys/kubelet.key\n");
    let c = f.load().config;
    let root = f.dir.path();
    assert_eq!(Path::new(&c.static_pod_path), root.join("manifests"));
    assert_eq!(Path::new(&c.tls_cert_file), root.join("pki/kubelet.crt"));
    assert_eq!(
        Path::new(&c.tls_private_key_file),
        f.dropins().join("sub/keys/kubelet.key")
    );
    assert_eq!(
        c.resolv_conf.as_deref(),
        Some(""),
        "empty resolvConf stays empty (DNS off)"
    );
    assert_eq!(
        c.authentication.x509.client_ca_file,
        "/etc/kubernetes/pki/ca.crt"
    );
}

#[test]
fn flags_beat_dropins_beat_file_beat_defaults() {
    let f = Fixture::new();
    f.write_base("port: 8079\nreadOnlyPort: 10254\nmaxPods: 90\nfeatureGates:\n  ContainerCheckpoint: false\n  KubeletTracing: false\n")
        .write_dropin("10.conf", "port: 8080\nreadOnlyPort: 10255\nfeatureGates:\n  KubeletTracing: true\n  MemoryQoS: true\n");
    let flags = FlagOverrides::parse_args([
        "--port=8081",
        "--read-only-port=10256",
        "--feature-gates=MemoryQoS=false",
    ])
    .unwrap();
    let loaded = f.loader().flags(flags).load().unwrap();
    let c = &loaded.config;
    assert_eq!(c.port, 8081, "cli args override kubelet.conf.d");
    assert_eq!(c.read_only_port, 10256);
    assert_eq!(c.max_pods, 90, "file beats default");
    assert_eq!(c.node_lease_duration_seconds, 40, "default");
    assert_eq!(
        c.feature_gates,
        [
            ("ContainerCheckpoint", false),
            ("KubeletTracing", true),
            ("MemoryQoS", false)
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    );
    assert!(!loaded.feature_gates.enabled("ContainerCheckpoint"));
    assert!(
        loaded.feature_gates.enabled("KubeletPodResourcesGet"),
        "default-on beta gate"
    );
}

#[test]
fn config_dir_without_config_starts_from_flag_defaults() {
    let f = Fixture::new();
    f.write_dropin("10.conf", "maxPods: 7\n");
    let loaded = Loader::new().config_dir(f.dropins()).load().unwrap();
    assert_eq!(loaded.config.max_pods, 7);
    assert_eq!(loaded.config.port, 10250);
    // The kubelet's command-line defaults differ from the config file's (secure) defaults.
    assert_eq!(loaded.config.authorization.mode, "AlwaysAllow");
    assert_eq!(loaded.config.read_only_port, 10255);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("no --config file"))
    );
}

#[test]
fn validation_reports_every_problem() {
    let f = Fixture::new();
    f.write_base("port: 70000\ncgroupDriver: upstart\nimageGCHighThresholdPercent: 50\nimageGCLowThresholdPercent: 60\nnodeLeaseDurationSeconds: -1\n")
        .write_dropin("10.conf", "memorySwap:\n  swapBehavior: UnlimitedSwap\n");
    match f.loader().load().unwrap_err() {
        ConfigError::Invalid { violations } => {
            let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
            for expected in [
                "port",
                "cgroupDriver",
                "imageGCLowThresholdPercent",
                "nodeLeaseDurationSeconds",
                "memorySwap.swapBehavior",
            ] {
                assert!(
                    fields.contains(&expected),
                    "{expected} missing from {fields:?}"
                );
            }
            let port = violations.iter().find(|v| v.field == "port").unwrap();
            assert_eq!(
                port.message,
                "port (--port) 70000 must be between 1 and 65535, inclusive"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn locked_gate_and_bad_flag_values() {
    let f = Fixture::new();
    f.write_base("");
    let locked = node_config::gates::known_gates()
        .iter()
        .find(|g| g.locked)
        .unwrap();
    let flags = FlagOverrides::parse_args([format!(
        "--feature-gates={}={}",
        locked.name, !locked.default
    )])
    .unwrap();
    let err = f.loader().flags(flags).load().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "cannot set feature gate {} to {}, feature is locked to {}",
            locked.name, !locked.default, locked.default
        )),
        "{err}"
    );
    let err = FlagOverrides::parse_args(["--feature-gates=ContainerCheckpoint"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("malformed pair, expect string=bool"), "{err}");
}

#[test]
fn eviction_hard_default_and_per_key_merge() {
    let f = Fixture::new();
    f.write_base("evictionHard:\n  memory.available: 300Mi\n");
    let c = Loader::new().config_file(f.base()).load().unwrap().config;
    assert_eq!(
        c.eviction_hard.unwrap().len(),
        1,
        "a set map is not filled with defaults"
    );

    f.write_base("")
        .write_dropin("10.conf", "evictionHard:\n  memory.available: 300Mi\n");
    let c = f.load().config;
    let hard = c.eviction_hard.unwrap();
    assert_eq!(
        hard.len(),
        4,
        "the drop-in merges into the defaulted base per key"
    );
    assert_eq!(hard["memory.available"], "300Mi");
}

/// Regression (fuzzing audit): quantities and durations beyond int64 are errors naming the
/// field and the value, never wrapped or saturated amounts.
#[test]
fn out_of_range_quantities_and_durations_name_field_and_value() {
    let f = Fixture::new();
    f.write_base("systemReserved:\n  memory: \"1e38\"\nkubeReserved:\n  cpu: \"1e400\"\nevictionHard:\n  memory.available: 16Ei\n");
    match f.loader().load().unwrap_err() {
        ConfigError::Invalid { violations } => {
            let find = |field: &str| {
                violations
                    .iter()
                    .find(|v| v.field == field)
                    .unwrap_or_else(|| panic!("{field} missing from {violations:?}"))
            };
            let memory = find("systemReserved.memory");
            assert!(
                memory.message.contains("\"1e38\"") && memory.message.contains("out of range"),
                "{memory}"
            );
            let cpu = find("kubeReserved.cpu");
            assert!(cpu.message.contains("\"1e400\""), "{cpu}");
            let eviction = find("evictionHard.memory.available");
            assert!(eviction.message.contains("\"16Ei\""), "{eviction}");
        }
        other => panic!("unexpected {other}"),
    }

    // Unquoted, 1e38 is a YAML float where the kubelet wants a string (as Go's decoder does).
    let f = Fixture::new();
    f.write_base("systemReserved:\n  memory: 1e38\n");
    let text = f.loader().load().unwrap_err().to_string();
    assert!(
        text.contains("systemReserved.memory") && text.contains("1e+38"),
        "{text}"
    );

    // reservedMemory limits are typed quantities: a decode error with the field path.
    let f = Fixture::new();
    f.write_base("reservedMemory:\n- numaNode: 0\n  limits:\n    memory: 1e38\n");
    let err = f.loader().load().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("reservedMemory[0].limits.memory") && text.contains("1e38"),
        "{text}"
    );

    // A duration whose fraction used to overflow the i128 accumulator.
    let f = Fixture::new();
    f.write_base("syncFrequency: 47261439850130342147690917.9h\n");
    let err = f.loader().load().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("syncFrequency")
            && text.contains("47261439850130342147690917.9h")
            && text.contains("out of range"),
        "{text}"
    );
}
