//! `nodectl pod-resources` against a real pod-resources server (node-plugins) on a Unix socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use node_plugins::proto::podresources::{ContainerMemory, NumaNode, TopologyInfo};
use node_plugins::{
    CpuMemoryProvider, DeviceManager, DeviceManagerOptions, PodResourcesOptions,
    PodResourcesServer, pod_resources_socket,
};
use node_runtime::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase, PodRegistry};

struct Cpus;

impl CpuMemoryProvider for Cpus {
    fn container_cpus(&self, pod_uid: &str, _container: &str) -> Vec<i64> {
        if pod_uid == "uid-web" {
            vec![4, 5]
        } else {
            Vec::new()
        }
    }
    fn allocatable_cpus(&self) -> Vec<i64> {
        vec![2, 3, 4, 5]
    }
    fn allocatable_memory(&self) -> Vec<ContainerMemory> {
        vec![ContainerMemory {
            memory_type: "hugepages-2Mi".to_owned(),
            size: 1 << 30,
            topology: Some(TopologyInfo {
                nodes: vec![NumaNode { id: 0 }],
            }),
        }]
    }
}

fn registry() -> PodRegistry {
    let pods = PodRegistry::new();
    pods.upsert(PodInfo {
        namespace: "default".to_owned(),
        name: "web".to_owned(),
        uid: "uid-web".to_owned(),
        source: node_runtime::PodSource::File("/etc/kubernetes/manifests/web.yaml".into()),
        pod: None,
        sandbox_id: Some("sb".to_owned()),
        pod_ips: Vec::new(),
        phase: PodPhase::Running,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers: vec![ContainerInfo {
            name: "nginx".to_owned(),
            kind: ContainerKind::Regular,
            container_id: Some("cid".to_owned()),
            image: "nginx".to_owned(),
            state: ContainerState::Running { started_at: 1 },
            restart_count: 0,
            ready: true,
            log_path: None,
            image_id: None,
            last_state: None,
            started: None,
        }],
    });
    pods
}

fn nodectl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn list_allocatable_and_get_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let devices = DeviceManager::new(DeviceManagerOptions::new(dir.path().join("device-plugins")));
    let server = PodResourcesServer::with_cpu_memory(
        registry(),
        devices,
        PodResourcesOptions::default(),
        Arc::new(Cpus),
    );
    let socket = pod_resources_socket(dir.path());
    let _handle = server.serve(&socket).unwrap();
    let sock = socket.to_str().unwrap();

    let out = nodectl(&["pod-resources", "list", "--socket", sock, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pod = &v["podResources"][0];
    assert_eq!(pod["name"], "web");
    assert_eq!(pod["namespace"], "default");
    assert_eq!(pod["containers"][0]["name"], "nginx");
    assert_eq!(pod["containers"][0]["cpuIds"], serde_json::json!([4, 5]));

    let out = nodectl(&["pod-resources", "list", "--socket", sock]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("default\tweb\tnginx\t-\t4,5\t-"), "{text}");

    let out = nodectl(&[
        "pod-resources",
        "allocatable",
        "--socket",
        sock,
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cpuIds"], serde_json::json!([2, 3, 4, 5]));
    assert_eq!(v["memory"][0]["memoryType"], "hugepages-2Mi");
    assert_eq!(v["memory"][0]["size"], 1u64 << 30);
    assert_eq!(v["memory"][0]["numaNodes"], serde_json::json!([0]));

    let out = nodectl(&[
        "pod-resources",
        "get",
        "web",
        "--socket",
        sock,
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["podResources"]["containers"][0]["cpuIds"],
        serde_json::json!([4, 5])
    );

    let out = nodectl(&[
        "pod-resources",
        "get",
        "nope",
        "-n",
        "kube-system",
        "--socket",
        sock,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("pod nope in namespace kube-system not found"),
        "{err}"
    );
}

#[test]
fn a_missing_socket_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nope.sock");
    let out = nodectl(&["pod-resources", "list", "--socket", sock.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("connecting to the pod-resources socket"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
