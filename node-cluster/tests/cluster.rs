//! The cluster side end to end without a container runtime: pods created on node-heartbeat's
//! test API server (real HTTP, the real watch protocol) run on node-runtime's in-memory CRI
//! (`FakeCri`) through `ApiPods` + `PodManager`, their status comes back to the API server,
//! deletions finish with the final DELETE, static pods get mirror pods, and broken watches
//! recover. The same flow on containerd with the real agent is in
//! `bins/node-agent/tests/cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use node_cluster::{MirrorPods, PodWatcher, StatusManager, WatchOptions};
use node_heartbeat::testserver::TestApiServer;
use node_runtime::test_support::FakeCri;
use node_runtime::{
    ApiPods, ClientOptions, CriClient, NodePaths, PodManager, StaticPodSource, SyncOptions,
};
use tokio::sync::watch;

const NODE: &str = "n1";

/// Polls `f` every 20 ms until it is true, for at most 20 s.
async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn api_pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node, "hostNetwork": true, "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "app", "image": "busybox:local", "command": ["/bin/sleep", "1000"]}]
        }
    }))
    .unwrap()
}

struct Cluster {
    _dir: tempfile::TempDir,
    server: TestApiServer,
    client: kube::Client,
    cri: FakeCri,
    pods: ApiPods,
    manager: PodManager,
    stop: watch::Sender<bool>,
}

impl Cluster {
    async fn start(manifest: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        if let Some(m) = manifest {
            std::fs::write(manifests.join("static.yaml"), m).unwrap();
        }
        let cri = FakeCri::start(dir.path()).unwrap();
        let server = TestApiServer::start().await.unwrap();
        let client =
            kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
        let runtime = CriClient::connect(&cri.endpoint(), &ClientOptions::default())
            .await
            .unwrap();
        let paths = NodePaths {
            root_dir: dir.path().join("root"),
            pod_logs_dir: dir.path().join("logs"),
        };
        let pods = ApiPods::new(NODE);
        let manager = PodManager::new(
            runtime,
            StaticPodSource::new(&manifests, NODE),
            SyncOptions::new(NODE, paths),
        )
        .with_api_pods(pods.clone());
        let (stop, _) = watch::channel(false);
        Self {
            _dir: dir,
            server,
            client,
            cri,
            pods,
            manager,
            stop,
        }
    }

    fn watcher(&self) -> tokio::task::JoinHandle<()> {
        let options = WatchOptions::default().with_backoff(node_cluster::Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
            Duration::from_secs(10),
        ));
        tokio::spawn(
            PodWatcher::new(self.client.clone(), NODE, self.pods.clone())
                .with_options(options)
                .run(self.stop.subscribe()),
        )
    }

    fn status(&self) -> StatusManager {
        StatusManager::new(
            self.client.clone(),
            NODE,
            self.manager.registry(),
            self.pods.clone(),
            vec!["10.0.0.5".into()],
        )
    }

    /// Sync passes until `f` holds on the API server.
    async fn converge(
        &mut self,
        status: &mut StatusManager,
        what: &str,
        f: impl Fn(&TestApiServer) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            self.manager.sync_once().await;
            status.sync_once().await;
            if f(&self.server) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn an_api_pod_runs_reports_its_status_and_is_deleted_gracefully() {
    let mut c = Cluster::start(None).await;
    c.server.create_pod(api_pod("web", NODE)).unwrap();
    c.server.create_pod(api_pod("elsewhere", "n2")).unwrap();
    let watcher = c.watcher();
    let pods = c.pods.clone();
    wait_for("the first list", || pods.is_synced() && pods.len() == 1).await;

    let mut status = c.status();
    c.converge(&mut status, "Running reported", |s| {
        s.pod("default", "web")
            .and_then(|p| p.status)
            .is_some_and(|st| st.phase.as_deref() == Some("Running"))
    })
    .await;
    let pod = c.server.pod("default", "web").unwrap();
    let st = pod.status.unwrap();
    assert_eq!(st.host_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(st.pod_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
    assert!(st.start_time.is_some());
    let cs = &st.container_statuses.unwrap()[0];
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert_eq!(cs.restart_count, 0);
    assert!(cs.ready);
    let ready = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    // The pod on the other node never ran.
    assert_eq!(c.cri.sandboxes().len(), 1);

    // An unchanged pod sends nothing.
    c.server.clear_requests();
    c.manager.sync_once().await;
    status.sync_once().await;
    assert!(
        c.server.requests().iter().all(|r| r.method != "PATCH"),
        "{:?}",
        c.server.requests()
    );

    // A user deletes it with a 5 s grace period: stopped with that grace period, a terminal
    // status, then the final DELETE.
    c.server.delete_pod("default", "web", Some(5)).unwrap();
    c.converge(&mut status, "the pod deleted", |s| {
        s.pod("default", "web").is_none()
    })
    .await;
    assert_eq!(c.cri.stop_timeouts().last().unwrap().1, 5);
    assert!(c.cri.sandboxes().is_empty());
    let deletes: Vec<_> = c
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let body = deletes[0].body.clone().unwrap();
    assert_eq!(body["gracePeriodSeconds"], 0);
    assert_eq!(body["preconditions"]["uid"], pod.metadata.uid.unwrap());
    let terminal = c
        .server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .unwrap();
    let terminal = terminal.body.unwrap();
    assert_eq!(terminal["status"]["phase"], "Failed");
    // How the container ended: SIGTERM (the fake's 143).
    assert_eq!(
        terminal["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        143
    );
    wait_for("the store to forget the pod", || pods.is_empty()).await;
    let _ = c.stop.send(true);
    watcher.await.unwrap();
}

#[tokio::test]
async fn broken_watches_resume_and_expired_ones_relist() {
    let c = Cluster::start(None).await;
    c.server.set_bookmark_period(None);
    let watcher = c.watcher();
    let pods = c.pods.clone();
    let server = &c.server;
    wait_for("the first list", || pods.is_synced()).await;
    wait_for("the watch", || server.watch_count() == 1).await;
    c.server.create_pod(api_pod("a", NODE)).unwrap();
    wait_for("a", || pods.len() == 1).await;

    // A disconnect: the watch resumes from the last version; what happened meanwhile arrives
    // once.
    c.server.break_watches();
    c.server.create_pod(api_pod("b", NODE)).unwrap();
    wait_for("b after the disconnect", || pods.len() == 2).await;
    c.server.send_bookmarks();

    // The server goes away; meanwhile a pod is deleted and one created, and the history is
    // compacted: the watch from the old version gets 410 and the watcher lists again.
    c.server.stop();
    c.server.delete_pod("default", "a", Some(0)).unwrap();
    c.server.create_pod(api_pod("c", NODE)).unwrap();
    c.server.compact();
    c.server.restart().await.unwrap();
    wait_for("the re-list", || {
        let mut names: Vec<String> = pods.pods().into_values().map(|p| p.name).collect();
        names.sort();
        names == ["b", "c"]
    })
    .await;
    // And it watches again.
    wait_for("the new watch", || server.watch_count() == 1).await;
    c.server.create_pod(api_pod("d", NODE)).unwrap();
    wait_for("d", || pods.len() == 3).await;
    let _ = c.stop.send(true);
    watcher.await.unwrap();
}

#[tokio::test]
async fn a_static_pod_gets_a_mirror_pod_that_comes_back_and_carries_its_status() {
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  hostNetwork: true\n  containers:\n  - name: etcd\n    image: busybox:local\n    command: [\"/bin/sleep\", \"1000\"]\n";
    let mut c = Cluster::start(Some(manifest)).await;
    let nodes: kube::Api<Node> = kube::Api::all(c.client.clone());
    let mut node = Node::default();
    node.metadata.name = Some(NODE.into());
    let node = nodes.create(&Default::default(), &node).await.unwrap();
    let watcher = c.watcher();
    let pods = c.pods.clone();
    wait_for("the first list", || pods.is_synced()).await;
    c.manager.sync_once().await;
    let mut mirrors = MirrorPods::new(c.client.clone(), NODE, c.manager.registry(), c.pods.clone());
    mirrors.reconcile_once().await.unwrap();
    let mirror = c
        .server
        .pod("kube-system", "etcd-n1")
        .expect("a mirror pod");
    let static_uid = c
        .manager
        .registry()
        .get("kube-system", "etcd-n1")
        .unwrap()
        .uid;
    let annotations = mirror.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["kubernetes.io/config.mirror"], static_uid);
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    assert_eq!(annotations["kubernetes.io/config.hash"], static_uid);
    assert!(annotations.contains_key("kubernetes.io/config.seen"));
    let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));
    assert_eq!(Some(&owner.uid), node.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    // The mirror is never run as a pod of its own.
    wait_for("the mirror in the store", || pods.mirror_pods().len() == 1).await;
    c.manager.sync_once().await;
    assert_eq!(c.cri.sandboxes().len(), 1);

    // Its status is the static pod's.
    let mut status = c.status();
    c.converge(&mut status, "the mirror's status", |s| {
        s.pod("kube-system", "etcd-n1")
            .and_then(|p| p.status)
            .is_some_and(|st| st.phase.as_deref() == Some("Running"))
    })
    .await;

    // Deleted by a user: it comes back (a new UID).
    c.server
        .delete_pod("kube-system", "etcd-n1", Some(0))
        .unwrap();
    wait_for("the deletion seen", || pods.mirror_pods().is_empty()).await;
    mirrors.reconcile_once().await.unwrap();
    let again = c
        .server
        .pod("kube-system", "etcd-n1")
        .expect("the mirror is back");
    assert_ne!(again.metadata.uid, mirror.metadata.uid);
    let _ = c.stop.send(true);
    watcher.await.unwrap();
}
