//! The checkpoint API against the real containerd of the test harness (a private instance
//! started by `scripts/test.sh`, endpoint in `NODE_TEST_CRI_ENDPOINT`). containerd 1.6 has no
//! CRI checkpoint support, so the kubelet's answer is a 500 carrying the runtime's
//! "not implemented" message, and nothing may be left in the checkpoints directory. Without
//! the variable the test prints a skip line; with `CI` set, its absence is a failure.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use node_checkpoint::{CheckpointConfig, CheckpointService, router};
use node_runtime::test_support::{cri_endpoint as endpoint, test_image as image};
use node_runtime::{
    ClientOptions, CriClient, NodePaths, PodManager, PodPhase, StaticPodSource, SyncOptions,
};
use tower::ServiceExt;

#[tokio::test]
async fn containerd_without_checkpoint_support_gives_500_and_leaves_no_file() {
    let Some(ep) = endpoint("containerd_without_checkpoint_support_gives_500_and_leaves_no_file")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let node = "node-ckpt";
    std::fs::write(
        manifests.join("ckpt.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ckpt\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", \"sleep 3600\"]\n",
            image()
        ),
    )
    .unwrap();
    let root = dir.path().join("root");
    let paths = NodePaths {
        root_dir: root.clone(),
        pod_logs_dir: dir.path().join("logs"),
    };
    let client = CriClient::connect(&ep, &ClientOptions::default())
        .await
        .unwrap();
    let mut manager = PodManager::new(
        client.clone(),
        StaticPodSource::new(&manifests, node),
        SyncOptions::new(node, paths),
    );
    let start = Instant::now();
    let pod_name = format!("ckpt-{node}");
    loop {
        let report = manager.sync_once().await;
        let running = manager
            .registry()
            .get("default", &pod_name)
            .is_some_and(|p| p.phase == PodPhase::Running);
        if running {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pod never ran: {report:#?} {:#?}",
            manager.registry().list()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let config = CheckpointConfig::new(&root, node);
    let service = Arc::new(CheckpointService::new(config, client, manager.registry()).unwrap());
    let app = router(service.clone());
    let resp = app
        .oneshot(
            http::Request::post(format!("/checkpoint/default/{pod_name}/app"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    let result_dir = common::tree(service.checkpoints_dir());
    manager.remove_all().await.unwrap();

    eprintln!("containerd answered {status}: {body}");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let prefix = format!(
        "checkpointing of default/{pod_name}/app failed (rpc error: code = Unimplemented desc = "
    );
    assert!(body.starts_with(&prefix), "{body}");
    // containerd 1.6.x/1.7.x: "method CheckpointContainer not implemented"; a 1.6.0 without
    // the RPC: gRPC's "unknown method CheckpointContainer ...".
    assert!(
        body.contains("method CheckpointContainer not implemented")
            || body.contains("unknown method CheckpointContainer"),
        "{body}"
    );
    assert!(result_dir.is_empty(), "left behind: {result_dir:?}");
}
