//! The lease and status loops against the test API server (real HTTP, real JSON types), with
//! paused tokio time so the kubelet's timings are checked exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::NodeAddress;
use node_heartbeat::testserver::TestApiServer;
use node_heartbeat::{
    Backend, KubeBackend, LeaseConfig, LeaseController, MachineFacts, NodeStatusInputs,
    NodeStatusReporter, RuntimeHealth, RuntimeVersion, SharedInputs, StandaloneBackend,
    StatusConfig, find_condition,
};
use tokio::time::Instant;

const NODE: &str = "node-1";

fn machine() -> MachineFacts {
    MachineFacts {
        num_cores: 4,
        memory_bytes: 8 << 30,
        hugepages: vec![(2 << 20, 0)],
        machine_id: "0123456789abcdef0123456789abcdef".into(),
        system_uuid: "4C4C4544-0042-3510-8052-B4C04F564433".into(),
        boot_id: "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11".into(),
        kernel_version: "6.18.0".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
    }
}

fn inputs(healthy: bool) -> SharedInputs {
    let mut i = NodeStatusInputs::new(NODE, machine());
    i.capacity.ephemeral_storage_bytes = Some(100 << 30);
    i.reservations.eviction_hard =
        node_heartbeat::EvictionThresholds::parse(&node_config::default_eviction_hard()).unwrap();
    i.runtime_version = Some(RuntimeVersion {
        name: "containerd".into(),
        version: "1.6.20".into(),
    });
    i.addresses = vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: "10.0.0.5".into(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: NODE.into(),
        },
    ];
    if healthy {
        i.runtime_health = RuntimeHealth::healthy(Instant::now().into_std());
    }
    SharedInputs::new(i, NODE).with_tokio_clock()
}

/// Keeps the runtime "seen" every 5 s, like the kubelet's updateRuntimeUp.
fn runtime_heartbeat(src: &SharedInputs) -> tokio::task::JoinHandle<()> {
    let src = src.clone();
    tokio::spawn(async move {
        loop {
            src.update(|i| {
                if i.runtime_health.last_sync.is_some() {
                    i.runtime_health.last_sync = Some(Instant::now().into_std());
                }
            });
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

async fn setup() -> (TestApiServer, Arc<KubeBackend>) {
    let server = TestApiServer::start().await.unwrap();
    let backend = Arc::new(KubeBackend::for_url(&server.url(), Duration::from_secs(10)).unwrap());
    (server, backend)
}

fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}")
}

fn deltas_ms(times: &[Instant]) -> Vec<u128> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn lease_object_field_by_field_and_optimistic_update() {
    let (server, backend) = setup().await;
    let mut lc = LeaseController::new(backend.clone(), LeaseConfig::new(NODE, 40));

    // No Node yet: the lease is not created (no orphan without an owner reference).
    lc.sync().await.unwrap();
    assert!(server.lease("kube-node-lease", NODE).is_none());

    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    rep.try_register().await.unwrap();
    let node_uid = server.node(NODE).unwrap().metadata.uid.unwrap();

    server.clear_requests();
    let before = k8s_openapi::jiff::Timestamp::now();
    lc.sync().await.unwrap();
    let reqs: Vec<(String, String, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.status))
        .collect();
    assert_eq!(
        reqs,
        vec![
            ("GET".into(), lease_path(), 404),
            ("GET".into(), format!("/api/v1/nodes/{NODE}"), 200),
            (
                "POST".into(),
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases".into(),
                201
            ),
        ]
    );
    // The JSON body on the wire.
    let body = server.requests()[2].body.clone().unwrap();
    assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(body["kind"], "Lease");
    assert_eq!(body["metadata"]["name"], NODE);
    assert_eq!(body["metadata"]["namespace"], "kube-node-lease");
    assert_eq!(body["metadata"]["ownerReferences"][0]["apiVersion"], "v1");
    assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(body["metadata"]["ownerReferences"][0]["name"], NODE);
    assert_eq!(
        body["metadata"]["ownerReferences"][0]["uid"],
        node_uid.as_str()
    );
    assert_eq!(body["spec"]["holderIdentity"], NODE);
    assert_eq!(body["spec"]["leaseDurationSeconds"], 40);
    assert!(
        body["spec"].get("acquireTime").is_none() && body["spec"].get("leaseTransitions").is_none()
    );
    // renewTime is a MicroTime: RFC 3339 with microseconds.
    let renew = body["spec"]["renewTime"].as_str().unwrap();
    assert_eq!(renew.len(), "2026-01-01T00:00:00.000000Z".len(), "{renew}");
    let lease = server.lease("kube-node-lease", NODE).unwrap();
    let r1 = lease.spec.as_ref().unwrap().renew_time.clone().unwrap().0;
    assert!(
        r1 >= before.round(k8s_openapi::jiff::Unit::Microsecond).unwrap()
            || (before - r1).get_milliseconds() < 1
    );

    // Next renewal: one optimistic PUT from the cached lease, no GET.
    server.clear_requests();
    tokio::time::sleep(Duration::from_millis(5)).await;
    lc.sync().await.unwrap();
    let reqs: Vec<(String, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(reqs, vec![("PUT".into(), 200)]);
    let put = server.requests()[0].body.clone().unwrap();
    assert_eq!(
        put["metadata"]["resourceVersion"],
        lease.metadata.resource_version.clone().unwrap().as_str()
    );
    let lease2 = server.lease("kube-node-lease", NODE).unwrap();
    assert!(lease2.spec.unwrap().renew_time.unwrap().0 >= r1);

    // Someone else wrote the lease: the PUT conflicts, the lease is re-read, the PUT retried.
    assert!(server.modify_lease("kube-node-lease", NODE, |l| {
        l.metadata.labels = Some([("touched".to_owned(), "yes".to_owned())].into());
    }));
    server.clear_requests();
    lc.sync().await.unwrap();
    let reqs: Vec<(String, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        reqs,
        vec![
            ("PUT".into(), 409),
            ("GET".into(), 200),
            ("PUT".into(), 200)
        ]
    );
    // The other writer's change is kept (the update is based on the fresh copy).
    let lease3 = server.lease("kube-node-lease", NODE).unwrap();
    assert_eq!(lease3.metadata.labels.unwrap()["touched"], "yes");
}

#[tokio::test(start_paused = true)]
async fn ensure_backoff_on_500_is_200ms_doubling_to_7s() {
    let (server, backend) = setup().await;
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    rep.try_register().await.unwrap();
    server.clear_requests();
    server.fail_all(Some(500));
    let mut lc = LeaseController::new(backend.clone(), LeaseConfig::new(NODE, 40));
    let start = Instant::now();
    let task = tokio::spawn(async move {
        lc.sync().await.unwrap();
        lc
    });
    tokio::time::sleep(Duration::from_secs(20)).await;
    server.fail_all(None);
    let lc = task.await.unwrap();
    assert!(lc.latest().is_some());
    let gets: Vec<Instant> = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == lease_path())
        .map(|r| r.at)
        .collect();
    assert_eq!(gets[0], start);
    // 0, .2, .6, 1.4, 3.0, 6.2, 12.6, 19.6 fail; 26.6 succeeds.
    assert_eq!(
        deltas_ms(&gets),
        vec![200, 400, 800, 1600, 3200, 6400, 7000, 7000]
    );
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 8);
    assert_eq!(
        server
            .lease("kube-node-lease", NODE)
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some(NODE)
    );
}

#[tokio::test(start_paused = true)]
async fn server_down_then_back_follows_the_backoff() {
    let (server, backend) = setup().await;
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    rep.try_register().await.unwrap();
    let mut lc = LeaseController::new(backend.clone(), LeaseConfig::new(NODE, 40));
    lc.sync().await.unwrap();
    assert!(lc.latest().is_some());

    server.stop();
    server.clear_requests();
    let start = Instant::now();
    let task = tokio::spawn(async move {
        // 5 optimistic PUTs fail (connection refused), then GETs back off 200 ms, 400 ms, ...
        lc.sync().await.unwrap();
        lc
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.restart().await.unwrap();
    let _lc = task.await.unwrap();
    let reqs = server.requests();
    // Refused at 0, 0.2, 0.6, 1.4, 3.0; the first request the server sees is the GET at 6.2 s.
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].at - start, Duration::from_millis(6200));
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(reqs[1].status, 200);
}

#[tokio::test(start_paused = true)]
async fn registration_backoff_and_status_retries() {
    let (server, backend) = setup().await;
    server.fail_all(Some(500));
    let src = inputs(true);
    let mut rep = NodeStatusReporter::new(backend.clone(), src.clone(), StatusConfig::new(NODE));
    let start = Instant::now();
    let task = tokio::spawn(async move {
        rep.register().await;
        rep
    });
    tokio::time::sleep(Duration::from_secs(15)).await;
    server.fail_all(None);
    let mut rep = task.await.unwrap();
    assert!(rep.registered());
    let posts: Vec<Instant> = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.at)
        .collect();
    assert_eq!(posts[0] - start, Duration::from_millis(100));
    assert_eq!(
        deltas_ms(&posts),
        vec![200, 400, 800, 1600, 3200, 6400, 7000]
    );

    // Status: try 0 uses the cached Node; later tries GET it first.
    server.clear_requests();
    server.fail_next([500, 500]);
    assert!(rep.update_node_status().await.unwrap());
    let seq: Vec<(String, u16)> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        seq,
        vec![
            ("PATCH".into(), 500),
            ("GET".into(), 500),
            ("GET".into(), 200),
            ("PATCH".into(), 200)
        ]
    );

    // Five failures in a row (a change is pending, so every try PATCHes or GETs): the kubelet's error.
    src.update(|i| i.pressure.disk = true);
    server.fail_all(Some(409));
    let err = rep.update_node_status().await.unwrap_err();
    assert_eq!(err.to_string(), "update node status exceeds retry count");
    server.fail_all(None);
}

#[tokio::test(start_paused = true)]
async fn status_sent_on_change_or_after_report_interval() {
    let (server, backend) = setup().await;
    let src = inputs(true);
    let _rt = runtime_heartbeat(&src);
    let rep = NodeStatusReporter::new(backend.clone(), src.clone(), StatusConfig::new(NODE));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let loop_task = tokio::spawn(rep.run(async move {
        let _ = stop_rx.await;
    }));

    let patches = |server: &TestApiServer| -> Vec<(Duration, serde_json::Value)> {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| (r.at - start, r.body.clone().unwrap()))
            .collect()
    };

    // Registration at 100 ms, then the first status patch right away.
    tokio::time::sleep(Duration::from_secs(200)).await;
    let p = patches(&server);
    assert_eq!(
        p.len(),
        1,
        "unchanged status must not be re-sent before 5 min: {:?}",
        p.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    assert_eq!(p[0].0, Duration::from_millis(100));
    let body = &p[0].1;
    assert_eq!(
        body["status"]["$setElementOrder/conditions"],
        serde_json::json!([{"type": "MemoryPressure"}, {"type": "DiskPressure"}, {"type": "PIDPressure"}, {"type": "Ready"}])
    );
    assert_eq!(
        body["status"]["nodeInfo"]["containerRuntimeVersion"],
        "containerd://1.6.20"
    );
    assert_eq!(body["status"]["allocatable"]["memory"], "8092Mi");
    // Field by field on the server.
    let node = server.node(NODE).unwrap();
    let st = node.status.as_ref().unwrap();
    let ready = find_condition(st, "Ready").unwrap();
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_deref(),
            ready.message.as_deref()
        ),
        (
            "True",
            Some("KubeletReady"),
            Some("kubelet is posting ready status")
        )
    );
    assert_eq!(
        st.node_info.as_ref().unwrap().boot_id,
        "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11"
    );
    assert_eq!(st.addresses.as_ref().unwrap()[0].address, "10.0.0.5");
    assert_eq!(
        st.daemon_endpoints
            .as_ref()
            .unwrap()
            .kubelet_endpoint
            .as_ref()
            .unwrap()
            .port,
        10250
    );
    assert_eq!(
        node.metadata.labels.as_ref().unwrap()["kubernetes.io/os"],
        "linux"
    );

    // A changed condition goes out at the next computation (<= 10.4 s), not after 5 min.
    src.update(|i| i.pressure.memory = true);
    let changed_at = Instant::now() - start;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let p = patches(&server);
    assert_eq!(p.len(), 2);
    let delay = p[1].0 - changed_at;
    assert!(delay <= Duration::from_millis(10_400), "{delay:?}");
    assert_eq!(p[1].1["status"]["conditions"][0]["type"], "MemoryPressure");
    assert_eq!(p[1].1["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        p[1].1["status"]["conditions"][0]["reason"],
        "KubeletHasInsufficientMemory"
    );
    let mp = find_condition(
        server.node(NODE).unwrap().status.as_ref().unwrap(),
        "MemoryPressure",
    )
    .unwrap()
    .clone();
    assert_eq!(mp.status, "True");

    // Unchanged again: the next patch comes after the 5-minute report interval.
    tokio::time::sleep(Duration::from_secs(320)).await;
    let p = patches(&server);
    assert_eq!(p.len(), 3);
    let gap = p[2].0 - p[1].0;
    assert!(
        gap >= Duration::from_secs(300) && gap <= Duration::from_millis(310_400),
        "{gap:?}"
    );
    // Only heartbeat times moved; the transition time is kept.
    let mp2 = find_condition(
        server.node(NODE).unwrap().status.as_ref().unwrap(),
        "MemoryPressure",
    )
    .unwrap()
    .clone();
    assert_eq!(mp2.last_transition_time, mp.last_transition_time);
    assert!(mp2.last_heartbeat_time > mp.last_heartbeat_time);

    let _ = stop_tx.send(());
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fast_updates_until_ready() {
    let (server, backend) = setup().await;
    let src = inputs(false);
    let rep = NodeStatusReporter::new(backend.clone(), src.clone(), StatusConfig::new(NODE));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let loop_task = tokio::spawn(rep.run(async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(2050)).await;
    let ready = find_condition(server.node(NODE).unwrap().status.as_ref().unwrap(), "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready.status, "False");
    assert_eq!(
        ready.message.as_deref(),
        Some("[container runtime status check may not have completed yet, network state unknown]")
    );
    src.update(|i| i.runtime_health = RuntimeHealth::healthy(Instant::now().into_std()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p: Vec<Duration> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.at - start)
        .collect();
    // The patch that makes the node Ready comes from the 100 ms fast loop, not the 10 s loop.
    let last = *p.last().unwrap();
    assert!(
        last > Duration::from_millis(2050) && last <= Duration::from_millis(2150),
        "{p:?}"
    );
    assert_eq!(
        find_condition(server.node(NODE).unwrap().status.as_ref().unwrap(), "Ready")
            .unwrap()
            .status,
        "True"
    );
    let _ = stop_tx.send(());
    loop_task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn standalone_keeps_status_locally() {
    let backend = Arc::new(StandaloneBackend::new());
    assert!(!backend.supports_lease());
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    assert!(rep.sync_node_status().await.unwrap());
    let node = backend.node().unwrap();
    assert_eq!(
        find_condition(node.status.as_ref().unwrap(), "Ready")
            .unwrap()
            .status,
        "True"
    );
    // Unchanged: not re-sent.
    assert!(!rep.sync_node_status().await.unwrap());
    let err = backend.get_lease(NODE).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "get lease is not supported by the standalone backend"
    );
}

#[tokio::test(start_paused = true)]
async fn reregistration_reconciles_default_labels() {
    let (server, backend) = setup().await;
    // A Node left by an earlier registration with a stale hostname label and no annotation.
    let stale = k8s_openapi::api::core::v1::Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(NODE.into()),
            labels: Some(
                [
                    ("kubernetes.io/hostname".to_owned(), "old-name".to_owned()),
                    ("team".to_owned(), "a".to_owned()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    backend.create_node(&stale).await.unwrap();
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    rep.try_register().await.unwrap();
    assert!(rep.update_node_status().await.unwrap());
    let node = server.node(NODE).unwrap();
    let labels = node.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["kubernetes.io/arch"], node_heartbeat::go_arch());
    assert_eq!(labels["team"], "a");
    assert_eq!(
        node.metadata.annotations.unwrap()[node_heartbeat::ATTACH_DETACH_ANNOTATION],
        "true"
    );
    assert!(find_condition(node.status.as_ref().unwrap(), "Ready").is_some());
}

#[tokio::test(start_paused = true)]
async fn pressure_monitor_reads_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "proc/meminfo",
        "MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n",
    );
    w("proc/sys/kernel/pid_max", "32768\n");
    w("proc/loadavg", "0.0 0.0 0.0 1/100 5\n");
    let src = inputs(true);
    let thresholds = node_heartbeat::EvictionThresholds::parse(
        &[("memory.available".to_owned(), "1Gi".to_owned())].into(),
    )
    .unwrap();
    let sources = node_heartbeat::SignalSources {
        root: dir.path().into(),
        nodefs: dir.path().into(),
        imagefs: None,
    };
    let tracker = node_heartbeat::PressureTracker::new(thresholds, Duration::from_secs(300));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node_heartbeat::run_pressure_monitor(
        sources,
        tracker,
        src.clone(),
        node_heartbeat::EVICTION_MONITORING_PERIOD,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!src.update(|i| i.pressure.memory));
    w(
        "proc/meminfo",
        "MemTotal: 8388608 kB\nMemAvailable: 524288 kB\n",
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(src.update(|i| i.pressure.memory));
    let _ = stop_tx.send(());
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn register_node_false_never_creates_the_node_but_updates_an_existing_one() {
    let (server, backend) = setup().await;
    let mut cfg = StatusConfig::new(NODE);
    cfg.register_node = false;
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), cfg);
    // No Node yet: the update fails (as the kubelet's "error getting node") and nothing is
    // created.
    assert!(rep.sync_node_status().await.is_err());
    assert!(!rep.fast_update_once().await);
    assert!(server.node(NODE).is_none());
    assert!(server.requests().iter().all(|r| r.method != "POST"));

    // An administrator creates it: the next sync fills in its status.
    let made = k8s_openapi::api::core::v1::Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(NODE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    backend.create_node(&made).await.unwrap();
    assert!(rep.sync_node_status().await.unwrap());
    let node = server.node(NODE).unwrap();
    assert!(find_condition(node.status.as_ref().unwrap(), "Ready").is_some());
    assert!(!rep.registered(), "registration never ran");
}

/// Device-plugin resources on the API server, as the kubelet reports them: capacity counts
/// healthy and unhealthy devices, allocatable the healthy ones; a resource removed after its
/// plugin's grace period goes to 0 in both and stays at 0 on every later update (also from a
/// restarted reporter that no longer knows it was removed); a stale extended allocatable key
/// without capacity is deleted; a cluster-level extended resource advertised by someone else
/// is kept.
#[tokio::test(start_paused = true)]
async fn device_plugin_resources_on_the_server() {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let (server, backend) = setup().await;
    let gpu = "example.com/gpu".to_owned();
    let quantities = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // The Node exists with an administrator's extended resource and a stale allocatable key.
    let existing = k8s_openapi::api::core::v1::Node {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(NODE.into()),
            ..Default::default()
        },
        status: Some(k8s_openapi::api::core::v1::NodeStatus {
            capacity: Some(quantities(&[("example.com/dongle", "4")])),
            allocatable: Some(quantities(&[
                ("example.com/dongle", "4"),
                ("example.com/stale", "5"),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    };
    backend.create_node(&existing).await.unwrap();
    let on_server = |field: &str, key: &str| -> Option<String> {
        let node = server.node(NODE).unwrap();
        let st = node.status.unwrap();
        let list = if field == "capacity" {
            st.capacity
        } else {
            st.allocatable
        };
        list.unwrap().get(key).map(|q| q.0.clone())
    };
    let counts = |list: &[(&str, i64)]| {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect::<std::collections::BTreeMap<_, _>>()
    };

    // Healthy 2 + unhealthy 1.
    let src = inputs(true);
    src.update(|i| {
        i.capacity
            .set_device_resources(&counts(&[(&gpu, 3)]), &counts(&[(&gpu, 2)]), &[])
    });
    let mut rep = NodeStatusReporter::new(backend.clone(), src.clone(), StatusConfig::new(NODE));
    assert!(rep.sync_node_status().await.unwrap());
    assert_eq!(on_server("capacity", &gpu).as_deref(), Some("3"));
    assert_eq!(on_server("allocatable", &gpu).as_deref(), Some("2"));
    assert_eq!(on_server("allocatable", "example.com/stale"), None);
    assert_eq!(
        on_server("capacity", "example.com/dongle").as_deref(),
        Some("4")
    );
    assert_eq!(
        on_server("allocatable", "example.com/dongle").as_deref(),
        Some("4")
    );

    // The plugin is gone past the grace period: GetCapacity names it deleted, once.
    server.clear_requests();
    src.update(|i| {
        i.capacity
            .set_device_resources(&counts(&[]), &counts(&[]), std::slice::from_ref(&gpu))
    });
    assert!(rep.sync_node_status().await.unwrap());
    let patch = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .and_then(|r| r.body)
        .unwrap();
    assert_eq!(patch["status"]["capacity"][&gpu], "0");
    assert_eq!(patch["status"]["allocatable"][&gpu], "0");
    assert_eq!(on_server("capacity", &gpu).as_deref(), Some("0"));
    assert_eq!(on_server("allocatable", &gpu).as_deref(), Some("0"));

    // Later updates no longer name it: nothing changed, so nothing is sent ...
    src.update(|i| {
        i.capacity
            .set_device_resources(&counts(&[]), &counts(&[]), &[])
    });
    assert!(!rep.sync_node_status().await.unwrap());
    // ... and the periodic report (nodeStatusReportFrequency) keeps it at 0.
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(301)).await;
        src.update(|i| i.runtime_health = RuntimeHealth::healthy(Instant::now().into_std()));
        assert!(rep.sync_node_status().await.unwrap());
        assert_eq!(on_server("capacity", &gpu).as_deref(), Some("0"));
        assert_eq!(on_server("allocatable", &gpu).as_deref(), Some("0"));
    }

    // A restarted reporter that never saw the removal keeps the 0 it reads from the server.
    let fresh = inputs(true);
    let mut rep2 = NodeStatusReporter::new(backend.clone(), fresh.clone(), StatusConfig::new(NODE));
    assert!(rep2.sync_node_status().await.unwrap());
    assert_eq!(on_server("capacity", &gpu).as_deref(), Some("0"));
    assert_eq!(on_server("allocatable", &gpu).as_deref(), Some("0"));

    // The plugin registers again with one healthy device.
    fresh.update(|i| {
        i.capacity
            .set_device_resources(&counts(&[(&gpu, 1)]), &counts(&[(&gpu, 1)]), &[])
    });
    assert!(rep2.sync_node_status().await.unwrap());
    assert_eq!(on_server("capacity", &gpu).as_deref(), Some("1"));
    assert_eq!(on_server("allocatable", &gpu).as_deref(), Some("1"));
    assert_eq!(
        on_server("capacity", "example.com/dongle").as_deref(),
        Some("4")
    );
}

#[tokio::test]
async fn the_nodes_pod_cidrs_are_seen_when_the_node_is_read_or_patched() {
    let (server, backend) = setup().await;
    let mut rep = NodeStatusReporter::new(backend.clone(), inputs(true), StatusConfig::new(NODE));
    let mut cidrs = rep.pod_cidr();
    rep.try_register().await.unwrap();
    // No CIDR yet: nothing to hand to the runtime.
    assert!(!cidrs.has_changed().unwrap());
    // The IPAM controller assigns them; the next status patch's answer carries them.
    assert!(server.modify_node(NODE, |n| {
        let spec = n.spec.get_or_insert_with(Default::default);
        spec.pod_cidr = Some("10.244.3.0/24".into());
        spec.pod_cidrs = Some(vec!["10.244.3.0/24".into(), "fd00:10:244:3::/64".into()]);
    }));
    assert!(rep.sync_node_status().await.unwrap());
    assert!(cidrs.has_changed().unwrap());
    assert_eq!(
        *cidrs.borrow_and_update(),
        "10.244.3.0/24,fd00:10:244:3::/64"
    );
    // Unchanged CIDRs do not wake the receiver again.
    rep.update_node_status().await.unwrap();
    assert!(!cidrs.has_changed().unwrap());
    assert_eq!(
        node_heartbeat::node_pod_cidr(&server.node(NODE).unwrap()),
        "10.244.3.0/24,fd00:10:244:3::/64"
    );
}
