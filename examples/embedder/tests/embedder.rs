//! The embedder binary, end to end: a real process running a busybox static pod on the test
//! run's containerd (`NODE_TEST_CRI_ENDPOINT`, set by scripts/test.sh), registering its Node and
//! renewing its Lease on node-heartbeat's test API server (real HTTP, real JSON types) standing
//! in for a cluster. SIGTERM: exit 0 with the pod's containers and sandbox removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use node_heartbeat::find_condition;
use node_heartbeat::testserver::TestApiServer;
use node_runtime::cri::ContainerState;
use node_runtime::{ClientOptions, CriClient, LABEL_MANAGED_BY, LABEL_POD_NAME};
use tokio::time::Instant;

const EMBEDDER: &str = env!("CARGO_BIN_EXE_embedder");

/// Generous: a loaded 2-core CI machine; a pod normally starts in about a second.
const POD_UP: Duration = Duration::from_secs(60);
const HEARTBEAT: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pod_and_heartbeat_then_sigterm() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("embedder") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = format!("embedder-{}", std::process::id());
    let cri = CriClient::connect(&endpoint, &ClientOptions::default())
        .await
        .unwrap();
    // The body runs as a task so that, pass or fail, the process is killed (kill_on_drop) and
    // the runtime is cleaned of this node's pods before the test's verdict.
    let body = tokio::spawn(run(endpoint, dir.path().to_owned(), node.clone()));
    let result = body.await;
    remove_pods(&cri, &node).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run(endpoint: String, dir: PathBuf, node: String) {
    let server = TestApiServer::start().await.unwrap();
    let kubeconfig = write_kubeconfig(&dir, &server.url());
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("hello.yaml"), sleep_pod("hello")).unwrap();
    let stderr_path = dir.join("embedder.stderr");
    let mut child = tokio::process::Command::new(EMBEDDER)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--cri-endpoint", &endpoint, "--node-name", &node])
        .arg("--manifest-dir")
        .arg(&manifests)
        .arg("--root-dir")
        .arg(dir.join("root"))
        .arg("--pod-logs-dir")
        .arg(dir.join("logs"))
        // Lease renewed every second, status every second: the test sees both soon.
        .args([
            "--node-lease-duration-seconds",
            "4",
            "--node-status-update-frequency",
            "1s",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let cri = CriClient::connect(&endpoint, &ClientOptions::default())
        .await
        .unwrap();

    // The pod's container runs in containerd, labelled for this node.
    let pod = format!("hello-{node}");
    let deadline = Instant::now() + POD_UP;
    loop {
        let running = containers(&cri, &node).await.into_iter().any(|c| {
            c.labels.get(LABEL_POD_NAME) == Some(&pod)
                && c.state == ContainerState::ContainerRunning as i32
        });
        if running {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("embedder exited early ({status}):\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod} not running within {POD_UP:?}:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The Node is registered and Ready, with the runtime's version; its Lease was created and
    // renewed at least twice since.
    let lease_key = format!("{}/{node}", node_heartbeat::LEASE_NAMESPACE);
    let deadline = Instant::now() + HEARTBEAT;
    let node_obj = loop {
        let ready_node = server.node(&node).filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| find_condition(s, "Ready"))
                .is_some_and(|c| c.status == "True")
        });
        let renewals = server.renewals().get(&lease_key).map_or(0, |r| r.renewals);
        if let Some(n) = ready_node.filter(|_| renewals >= 3) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no Ready node with a renewed lease within {HEARTBEAT:?} (node {:?}, lease renewals {renewals}):\n{}",
            server
                .node(&node)
                .and_then(|n| n.status)
                .and_then(|s| s.conditions),
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let info = node_obj.status.unwrap().node_info.unwrap();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{}",
        info.container_runtime_version
    );
    let lease = server
        .lease(node_heartbeat::LEASE_NAMESPACE, &node)
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(node.as_str()));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let owner = &lease.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", node.as_str())
    );

    // SIGTERM: a clean exit, the pod's containers and sandbox stopped and removed.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = match tokio::time::timeout(EXIT, child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => panic!(
            "embedder did not exit within {EXIT:?} of SIGTERM:\n{}",
            log()
        ),
    };
    assert!(
        status.success(),
        "embedder exited with {status}:\n{}",
        log()
    );
    let left = containers(&cri, &node).await;
    assert!(left.is_empty(), "containers left: {left:?}\n{}", log());
    let sandboxes = cri.list_pod_sandboxes(managed_by(&node)).await.unwrap();
    assert!(
        sandboxes.is_empty(),
        "sandboxes left: {sandboxes:?}\n{}",
        log()
    );
    let log = log();
    assert!(log.contains("pods removed; stopped"), "{log}");
    // Shown with --nocapture.
    eprintln!("embedder's log:\n{log}");
}

fn managed_by(node: &str) -> HashMap<String, String> {
    [(LABEL_MANAGED_BY.to_owned(), node.to_owned())].into()
}

async fn containers(cri: &CriClient, node: &str) -> Vec<node_runtime::cri::Container> {
    cri.list_containers(None, managed_by(node)).await.unwrap()
}

/// Removes whatever this node's pods left in the runtime (after a failure: pods outlive the
/// agent).
async fn remove_pods(cri: &CriClient, node: &str) {
    for c in cri
        .list_containers(None, managed_by(node))
        .await
        .unwrap_or_default()
    {
        let _ = cri.stop_container(&c.id, 0).await;
        let _ = cri.remove_container(&c.id).await;
    }
    for s in cri
        .list_pod_sandboxes(managed_by(node))
        .await
        .unwrap_or_default()
    {
        let _ = cri.stop_pod_sandbox(&s.id).await;
        let _ = cri.remove_pod_sandbox(&s.id).await;
    }
}

/// A busybox pod that sleeps and exits at once on SIGTERM, with host networking (no CNI here).
fn sleep_pod(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
",
        image = node_runtime::test_support::test_image(),
    )
}

/// A kubeconfig for the test API server (no credentials: it accepts anyone), as a user's
/// agent would be given.
fn write_kubeconfig(dir: &Path, server_url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server_url}
users:
- name: embedder
  user: {{}}
contexts:
- name: test
  context: {{cluster: test, user: embedder}}
current-context: test
"
        ),
    )
    .unwrap();
    path
}
