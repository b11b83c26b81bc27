//! End to end: device-plugin resources in the Node status on the test API server, with the
//! real `node-agent` binary (on the test run's containerd) and the real `fake-device-plugin`
//! process. Capacity counts healthy and unhealthy devices, allocatable the healthy ones; when
//! the plugin process dies its devices turn unhealthy (allocatable 0, capacity kept).
//!
//! The resource's removal after the plugin's grace period (capacity and allocatable 0, key
//! kept) is not run here: the agent's grace period is the kubelet's fixed 5 minutes
//! (`node_plugins::ENDPOINT_STOP_GRACE_PERIOD`, not configurable). It is covered against the
//! test API server by node-heartbeat's `device_plugin_resources_on_the_server`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, sibling_binary};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const START: Duration = Duration::from_secs(60);
const RESOURCE: &str = "example.com/status";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_plugin_counts_in_node_status() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("device_status") else {
        return;
    };
    let server = node_heartbeat::testserver::TestApiServer::start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "devstatus", &endpoint)
        .config(OPEN_AUTH)
        .config("nodeStatusUpdateFrequency: 1s\n")
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    // Three devices, one of them unhealthy from the start.
    let health = dir.path().join("health");
    std::fs::write(&health, "fake-2\n").unwrap();
    let mut plugin = Command::new(sibling_binary("fake-device-plugin"))
        .args(["--devices", "3", "--resource", RESOURCE, "--health-file"])
        .arg(&health)
        .arg("--kubelet-socket")
        .arg(agent.root().join("device-plugins/kubelet.sock"))
        .stderr(std::fs::File::create(dir.path().join("plugin.log")).unwrap())
        .spawn()
        .unwrap();

    // (capacity, allocatable) of the resource on the API server.
    let on_server = || -> (Option<String>, Option<String>) {
        let Some(n) = server.node(&node) else {
            return (None, None);
        };
        let st = n.status.unwrap_or_default();
        let get = |m: &Option<BTreeMap<String, Quantity>>| {
            m.as_ref()
                .and_then(|m| m.get(RESOURCE))
                .map(|q| q.0.clone())
        };
        (get(&st.capacity), get(&st.allocatable))
    };
    let wait_for = |want: (&str, &str), what: &str, agent: &common::Agent| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = on_server();
            if got.0.as_deref() == Some(want.0) && got.1.as_deref() == Some(want.1) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the Node shows (capacity, allocatable) {got:?}, want {want:?}\n{}",
                agent.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Healthy 2 + unhealthy 1.
    wait_for(("3", "2"), "one unhealthy device", &agent);
    // All healthy.
    std::fs::remove_file(&health).unwrap();
    wait_for(("3", "3"), "all devices healthy", &agent);
    // The plugin process dies: its devices are unhealthy until the grace period ends.
    plugin.kill().unwrap();
    plugin.wait().unwrap();
    wait_for(("3", "0"), "plugin gone", &agent);

    drop(agent);
}
