//! node-cluster: pods from an API server run on a CRI runtime and report their status back,
//! then a graceful delete ends in the final DELETE. The API server is node-heartbeat's
//! in-process test API server and the runtime node-runtime's in-memory CRI (`FakeCri`), so the
//! example runs anywhere in about a second; an agent uses a real `kube::Client` and
//! containerd the same way (`bins/node-agent`, README "node-cluster").
//!
//! `cargo run -p examples --example cluster_pods`
#![allow(clippy::print_stdout)] // an example prints what it sees

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use node_cluster::{PodWatcher, StatusManager};
use node_heartbeat::testserver::TestApiServer;
use node_runtime::test_support::FakeCri;
use node_runtime::{
    ApiPods, ClientOptions, CriClient, NodePaths, PodManager, StaticPodSource, SyncOptions,
};

const NODE: &str = "example-node";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = TestApiServer::start().await?;
    let client = kube::Client::try_from(kube::Config::new(server.url().parse()?))?;
    let cri = FakeCri::start(dir.path())?;
    let runtime = CriClient::connect(&cri.endpoint(), &ClientOptions::default()).await?;

    // The pod manager runs the API server's pods (and the static pods of a directory).
    let pods = ApiPods::new(NODE);
    let paths = NodePaths {
        root_dir: dir.path().join("root"),
        pod_logs_dir: dir.path().join("logs"),
    };
    let mut manager = PodManager::new(
        runtime,
        StaticPodSource::new(dir.path().join("manifests"), NODE),
        SyncOptions::new(NODE, paths),
    )
    .with_api_pods(pods.clone());

    // The watcher fills `pods` from the API server; the status manager reports back.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(PodWatcher::new(client.clone(), NODE, pods.clone()).run(stop));
    let mut status = StatusManager::new(
        client,
        NODE,
        manager.registry(),
        pods.clone(),
        vec!["10.0.0.5".into()],
    );

    // A user creates a pod the scheduler bound to this node.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": NODE, "hostNetwork": true, "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "app", "image": "busybox:local"}]}
    }))?;
    server.create_pod(pod)?;

    // Sync passes (an agent runs them from node_runtime::sync_loop) until the API server
    // shows the pod Running.
    let running = |s: &TestApiServer| {
        s.pod("default", "web")
            .and_then(|p| p.status)
            .is_some_and(|st| st.phase.as_deref() == Some("Running"))
    };
    for _ in 0..200 {
        manager.sync_once().await;
        status.sync_once().await;
        if running(&server) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = server
        .pod("default", "web")
        .and_then(|p| p.status)
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    println!(
        "web on the API server: phase {:?}, podIP {:?}, container {:?}",
        st.phase,
        st.pod_ip,
        st.container_statuses
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
    );

    // The user deletes it with a 5 s grace period: stopped, terminal status, final DELETE.
    server.delete_pod("default", "web", Some(5))?;
    for _ in 0..200 {
        manager.sync_once().await;
        status.sync_once().await;
        if server.pod("default", "web").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "web deleted: {}; stop grace periods the runtime got: {:?}",
        server.pod("default", "web").is_none(),
        cri.stop_timeouts()
            .iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
    );
    let _ = stop_tx.send(true);
    watcher.await?;
    Ok(())
}
