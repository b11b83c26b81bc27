//! Swap on this cgroup v1 host, with the real `node-agent` and the test run's containerd: a
//! static pod (critical, so NoSwap whatever `swapBehavior` says) with a memory limit gets the
//! kubelet's v1 NoSwap setting, `MemorySwapLimitInBytes = MemoryLimitInBytes`, when the host
//! has swap accounting (`memory.memsw.limit_in_bytes`), and nothing swap-related otherwise.
//! The cgroup v2 branch (`memory.swap.max`) is covered by the unit tests of `node-kernel`,
//! `node-runtime` and the agent's preflight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{AgentSpec, OPEN_AUTH, remove_pods, running, sleep_pod};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);
const LIMIT: u64 = 64 << 20;

/// `ctr containers info <id>` on the test run's containerd, as JSON.
fn ctr_info(endpoint: &str, id: &str) -> serde_json::Value {
    let socket = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    let out = Command::new("ctr")
        .args(["-a", socket, "-n", "k8s.io", "containers", "info", id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctr containers info {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The CRI `ContainerConfig` containerd's CRI plugin stored for the container (the
/// `io.cri-containerd.container.metadata` extension, base64 JSON), which shows what the agent
/// sent, apart from anything containerd adds to the OCI spec itself.
fn cri_config(info: &serde_json::Value) -> serde_json::Value {
    let value = info["Extensions"]["io.cri-containerd.container.metadata"]["value"]
        .as_str()
        .expect("CRI metadata extension");
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["Metadata"]["Config"].clone()
}

/// A cgroup v1 memory file of the container, from the host.
fn memory_file(cgroups_path: &str, file: &str) -> u64 {
    let path = format!("/sys/fs/cgroup/memory{cgroups_path}/{file}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pod_container_gets_the_kubelets_v1_swap_setting() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("swap_v1") else {
        return;
    };
    assert!(
        !Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        "this test describes a cgroup v1 host"
    );
    let memsw = Path::new(node_kernel::V1_MEMSW_LIMIT_FILE).exists();
    let dir = tempfile::tempdir().unwrap();
    // A Burstable container with a memory limit, and one with no limit at all.
    let extra = format!(
        "    resources:\n      requests: {{memory: 32Mi}}\n      limits: {{memory: 64Mi}}\n  - name: nolimit\n    image: {}\n    imagePullPolicy: Never\n    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
        node_runtime::test_support::test_image()
    );
    // LimitedSwap would be refused on cgroup v1; the default (NoSwap) applies.
    let spec = AgentSpec::new(dir.path(), "swap", &endpoint)
        .config(OPEN_AUTH)
        .manifest("swap.yaml", &sleep_pod("swap", &extra));
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let pod = format!("swap-{node}");
    agent.wait_pods(&[], POD_UP, |l| {
        running(l, &pod).is_some_and(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["ready"] == true))
        })
    });

    // The startup line says what containers get on this host.
    let log = agent.stderr();
    let expected = if memsw {
        "swap: NoSwap: each container's memory+swap limit (MemorySwapLimitInBytes) is set to its memory limit"
    } else {
        "swap: No swap cgroup controller present: nothing swap-related is set on containers"
    };
    assert!(log.contains(expected), "{log}");
    assert!(!log.contains("pods get no swap"), "{log}");

    let client =
        node_runtime::CriClient::connect(&endpoint, &node_runtime::ClientOptions::default())
            .await
            .unwrap();
    let labels = [(node_runtime::LABEL_MANAGED_BY.to_owned(), node.clone())].into();
    let containers = client.list_containers(None, labels).await.unwrap();
    assert_eq!(containers.len(), 2, "{containers:?}");
    for c in &containers {
        let name = c.metadata.as_ref().unwrap().name.clone();
        let info = ctr_info(&endpoint, &c.id);
        let config = cri_config(&info);
        let resources = &config["linux"]["resources"];
        let memory = &info["Spec"]["linux"]["resources"]["memory"];
        let cgroups_path = info["Spec"]["linux"]["cgroupsPath"].as_str().unwrap();
        // Nothing cgroup v2 is ever sent on this host.
        assert!(resources.get("unified").is_none(), "{name}: {resources}");
        match name.as_str() {
            "app" => {
                assert_eq!(resources["memory_limit_in_bytes"], LIMIT, "{resources}");
                assert_eq!(memory["limit"], LIMIT, "{memory}");
                assert_eq!(memory_file(cgroups_path, "memory.limit_in_bytes"), LIMIT);
                if memsw {
                    // The agent sent MemorySwapLimitInBytes = MemoryLimitInBytes; runc wrote it.
                    assert_eq!(
                        resources["memory_swap_limit_in_bytes"], LIMIT,
                        "{resources}"
                    );
                    assert_eq!(memory["swap"], LIMIT, "{memory}");
                    assert_eq!(
                        memory_file(cgroups_path, "memory.memsw.limit_in_bytes"),
                        LIMIT
                    );
                } else {
                    assert!(
                        resources.get("memory_swap_limit_in_bytes").is_none(),
                        "{resources}"
                    );
                }
            }
            "nolimit" => {
                // MemorySwapLimitInBytes = MemoryLimitInBytes = 0: nothing is limited.
                assert!(
                    resources.get("memory_limit_in_bytes").is_none(),
                    "{resources}"
                );
                assert!(
                    resources.get("memory_swap_limit_in_bytes").is_none(),
                    "{resources}"
                );
                assert!(memory.get("swap").is_none(), "{memory}");
                if memsw {
                    assert!(
                        memory_file(cgroups_path, "memory.memsw.limit_in_bytes") > 1 << 60,
                        "unlimited"
                    );
                }
            }
            other => panic!("unexpected container {other}"),
        }
    }
    eprintln!(
        "swap e2e: memsw {}, 2 containers checked",
        if memsw { "present" } else { "absent" }
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
