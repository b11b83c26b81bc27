//! How the real agent talks to the runtime, seen by the CRI test server (which forwards every
//! call to the test run's containerd and records the method and `grpc-timeout` of each):
//! `imageServiceEndpoint` gets the image calls on a connection of its own, and every call
//! carries the kubelet's deadline for it (`runtimeRequestTimeout`, twice that for
//! `RunPodSandbox`, plus the grace period for `StopContainer`), so a stop with a grace period
//! longer than `runtimeRequestTimeout` is not cut off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, remove_pods, running};
use node_checkpoint::test_support::{CriTestServer, ForwardedCall};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(60);

/// A `grpc-timeout` header value (`<digits><unit>`, gRPC over HTTP/2) as a duration.
fn grpc_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().unwrap();
    match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        other => panic!("grpc-timeout unit {other:?} in {value:?}"),
    }
}

fn deadlines(calls: &[ForwardedCall], method: &str) -> Vec<Duration> {
    calls
        .iter()
        .filter(|c| c.method == method)
        .map(|c| {
            grpc_timeout(
                c.grpc_timeout
                    .as_deref()
                    .unwrap_or_else(|| panic!("{method} without grpc-timeout: {calls:?}")),
            )
        })
        .collect()
}

fn pod(name: &str, grace: u32, command: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: app
    image: {image}
    imagePullPolicy: IfNotPresent
    command: [\"/bin/sh\", \"-c\", {command:?}]
",
        image = node_runtime::test_support::test_image(),
    )
}

/// Runtime calls go to `containerRuntimeEndpoint`, image calls to `imageServiceEndpoint`
/// (validated with `ImageFsInfo` at startup, as the kubelet's image client does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_service_endpoint_gets_the_image_calls() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("image_service_endpoint") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cri_dir = dir.path().join("cri");
    std::fs::create_dir_all(&cri_dir).unwrap();
    let images = CriTestServer::start_forwarding(&cri_dir, &endpoint)
        .await
        .unwrap();
    let spec = AgentSpec::new(dir.path(), "image-endpoint", &endpoint)
        .config(OPEN_AUTH)
        .config(&format!("imageServiceEndpoint: {}\n", images.endpoint()))
        .manifest("web.yaml", &pod("web", 2, "sleep 3600"));
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("web-{node}");
    agent.wait_pods(&[], POD_UP, |l| running(l, &name).is_some());

    let calls = images.forwarded();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods.first(), Some(&"ImageFsInfo"), "{methods:?}");
    assert!(methods.contains(&"ImageStatus"), "{methods:?}");
    assert!(
        methods
            .iter()
            .all(|m| ["ImageFsInfo", "ImageStatus", "PullImage"].contains(m)),
        "only image calls on the image endpoint: {methods:?}"
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// An image endpoint that does not answer is the kubelet's fatal startup error.
#[test]
fn unreachable_image_endpoint_is_a_startup_error() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("image_endpoint_missing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.sock");
    let mut agent = AgentSpec::new(dir.path(), "image-endpoint-missing", &endpoint)
        .config(OPEN_AUTH)
        .config(&format!(
            "imageServiceEndpoint: unix://{}\n",
            missing.display()
        ))
        .spawn();
    let status = agent.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1));
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!(
            "validate service connection: validate CRI v1 image API for endpoint \"unix://{}\"",
            missing.display()
        )),
        "{stderr}"
    );
}

/// With `runtimeRequestTimeout: 2s`, a container that ignores SIGTERM and has 6 s of grace is
/// still stopped cleanly: `StopContainer` carries 2 s + 6 s, `RunPodSandbox` 4 s, the rest 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_carries_the_kubelets_deadline() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("cri_call_deadlines") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cri_dir = dir.path().join("cri");
    std::fs::create_dir_all(&cri_dir).unwrap();
    let cri = CriTestServer::start_forwarding(&cri_dir, &endpoint)
        .await
        .unwrap();
    let spec = AgentSpec::new(dir.path(), "cri-deadlines", &cri.endpoint())
        .config(OPEN_AUTH)
        .config("runtimeRequestTimeout: 2s\n")
        .manifest(
            "stubborn.yaml",
            &pod("stubborn", 6, "trap '' TERM; while true; do sleep 1; done"),
        );
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let name = format!("stubborn-{node}");
    agent.wait_pods(&[], POD_UP, |l| running(l, &name).is_some());

    // The manifest goes: the agent stops the container with its 6 s grace period.
    let removed = Instant::now();
    std::fs::remove_file(dir.path().join("manifests/stubborn.yaml")).unwrap();
    agent.wait_pods(&[], Duration::from_secs(60), |l| {
        running(l, &name).is_none()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !common::sandboxes(&endpoint, &node).await.is_empty() {
        assert!(Instant::now() < deadline, "{}", agent.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = removed.elapsed();
    assert!(took >= Duration::from_secs(5), "stopped after {took:?}");

    let calls = cri.forwarded();
    let stops = deadlines(&calls, "StopContainer");
    assert_eq!(stops, [Duration::from_secs(8)], "{calls:?}");
    for d in deadlines(&calls, "RunPodSandbox") {
        assert_eq!(d, Duration::from_secs(4));
    }
    for method in [
        "ListContainers",
        "ListPodSandbox",
        "CreateContainer",
        "StartContainer",
    ] {
        let ds = deadlines(&calls, method);
        assert!(!ds.is_empty(), "no {method} in {calls:?}");
        assert!(
            ds.iter().all(|d| *d == Duration::from_secs(2)),
            "{method}: {ds:?}"
        );
    }
    // No StopContainer failed and was retried: the one call above was enough.
    assert!(
        !agent.stderr().contains("DeadlineExceeded")
            && !agent.stderr().contains("context deadline exceeded"),
        "{}",
        agent.stderr()
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
