//! Static pods on a real containerd (private instance started by `scripts/test.sh`, endpoint in
//! `NODE_TEST_CRI_ENDPOINT`). Without the variable the tests print a skip line; with `CI` set,
//! its absence is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use node_runtime::test_support::{cri_endpoint as endpoint, test_image as image};
use node_runtime::{
    ClientOptions, ContainerState, CriClient, NodePaths, PodInfo, PodManager, PodPhase,
    RuntimeError, RuntimeWatch, StaticPodSource, SyncOptions, WatchState,
};

struct Node {
    dir: tempfile::TempDir,
    node_name: String,
    endpoint: String,
}

impl Node {
    fn new(endpoint: String, node_name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("manifests")).unwrap();
        Self {
            dir,
            node_name: node_name.to_owned(),
            endpoint,
        }
    }
    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn paths(&self) -> NodePaths {
        NodePaths {
            root_dir: self.root(),
            pod_logs_dir: self.dir.path().join("logs"),
        }
    }
    fn options(&self) -> SyncOptions {
        let mut o = SyncOptions::new(&self.node_name, self.paths());
        o.backoff_initial = Duration::from_secs(2);
        o.backoff_max = Duration::from_secs(8);
        o
    }
    async fn manager(&self) -> PodManager {
        let client = CriClient::connect(&self.endpoint, &ClientOptions::default())
            .await
            .unwrap();
        PodManager::new(
            client,
            StaticPodSource::new(self.manifests(), &self.node_name),
            self.options(),
        )
    }
    /// The runtime's sandboxes labelled for this node.
    async fn sandboxes(&self) -> Vec<node_runtime::cri::PodSandbox> {
        let client = CriClient::connect(&self.endpoint, &ClientOptions::default())
            .await
            .unwrap();
        client
            .list_pod_sandboxes(
                [(
                    node_runtime::LABEL_MANAGED_BY.to_owned(),
                    self.node_name.clone(),
                )]
                .into(),
            )
            .await
            .unwrap()
    }
    fn write_pod(&self, file: &str, name: &str, extra_spec: &str, command: &str) {
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n{extra_spec}  containers:\n  - name: app\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", {command:?}]\n",
            image()
        );
        std::fs::write(self.manifests().join(file), manifest).unwrap();
    }
}

/// Runs passes until `done` holds for the registry's view of the node's pods.
async fn sync_until(
    m: &mut PodManager,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[PodInfo]) -> bool,
) -> Vec<PodInfo> {
    let start = Instant::now();
    loop {
        let report = m.sync_once().await;
        let pods = m.registry().list();
        if done(&pods) {
            return pods;
        }
        if start.elapsed() > timeout {
            panic!("timed out waiting for {what}; pods: {pods:#?}; last report: {report:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn running(pods: &[PodInfo], name: &str) -> bool {
    pods.iter()
        .any(|p| p.name == name && p.phase == PodPhase::Running)
}

async fn wait_for_file_containing(path: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{} never contained {needle:?}; has {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn static_pod_runs_logs_restarts_on_edit_and_goes_away() {
    let Some(ep) = endpoint("static_pod_runs_logs_restarts_on_edit_and_goes_away") else {
        return;
    };
    let node = Node::new(ep, "node-lifecycle");
    node.write_pod("web.yaml", "web", "", "echo hello-v1; sleep 3600");
    let mut m = node.manager().await;

    let pods = sync_until(&mut m, "web running", Duration::from_secs(30), |p| {
        running(p, "web-node-lifecycle")
    })
    .await;
    let v1 = pods[0].clone();
    assert_eq!(v1.namespace, "default");
    let app = v1.container("app").unwrap();
    let log = app.log_path.clone().unwrap();
    // The kubelet's layout: <podLogsDir>/<namespace>_<name>_<uid>/<container>/<attempt>.log
    assert_eq!(
        log,
        node.paths()
            .pod_logs_dir
            .join(format!("default_web-node-lifecycle_{}", v1.uid))
            .join("app/0.log")
    );
    let text = wait_for_file_containing(&log, "hello-v1").await;
    assert!(
        text.contains(" stdout F hello-v1"),
        "CRI log format: {text:?}"
    );
    assert_eq!(
        m.registry()
            .get("default", "web-node-lifecycle")
            .unwrap()
            .uid,
        v1.uid
    );

    // Editing the manifest restarts the pod (new UID, old sandbox gone).
    node.write_pod("web.yaml", "web", "", "echo hello-v2; sleep 3600");
    let pods = sync_until(&mut m, "web v2 running", Duration::from_secs(30), |p| {
        p.len() == 1 && p[0].uid != v1.uid && running(p, "web-node-lifecycle")
    })
    .await;
    let v2_log = pods[0].container("app").unwrap().log_path.clone().unwrap();
    wait_for_file_containing(&v2_log, "hello-v2").await;
    let client = CriClient::connect(&node.endpoint, &ClientOptions::default())
        .await
        .unwrap();
    let sandboxes = client
        .list_pod_sandboxes([(node_runtime::LABEL_POD_UID.to_owned(), v1.uid.clone())].into())
        .await
        .unwrap();
    assert!(sandboxes.is_empty(), "old sandbox removed: {sandboxes:?}");

    // Deleting the manifest stops and removes it.
    std::fs::remove_file(node.manifests().join("web.yaml")).unwrap();
    sync_until(
        &mut m,
        "web removed",
        Duration::from_secs(30),
        <[PodInfo]>::is_empty,
    )
    .await;
    let left = client
        .list_containers(
            None,
            [(
                node_runtime::LABEL_MANAGED_BY.to_owned(),
                node.node_name.clone(),
            )]
            .into(),
        )
        .await
        .unwrap();
    assert!(left.is_empty(), "containers left: {left:?}");
    assert!(
        !node.root().join("pods").join(&pods[0].uid).exists(),
        "pod dir cleaned"
    );
}

#[tokio::test]
async fn crashing_container_restarts_with_growing_backoff() {
    let Some(ep) = endpoint("crashing_container_restarts_with_growing_backoff") else {
        return;
    };
    let node = Node::new(ep, "node-crash");
    node.write_pod("crash.yaml", "crash", "", "echo crashing; exit 3");
    let mut m = node.manager().await;
    let mut seen: Vec<u32> = Vec::new();
    let mut backoffs: Vec<String> = Vec::new();
    let start = Instant::now();
    while seen.last().is_none_or(|count| *count < 3) {
        // Generous: the back-offs are 0 s, 2 s and 4 s, but a loaded machine starts containers
        // slowly.
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "restarts seen: {seen:?}, back-offs: {backoffs:?}"
        );
        let report = m.sync_once().await;
        if let Some(pod) = m.registry().get("default", "crash-node-crash") {
            let app = pod.container("app").unwrap();
            if let ContainerState::Waiting { reason, message } = &app.state
                && reason == "CrashLoopBackOff"
            {
                assert!(message.starts_with("back-off "), "{message}");
                assert!(
                    !report.settled,
                    "a pass waiting for a back-off is not settled"
                );
                assert!(app.restart_count > 0, "the first restart is immediate");
                let delay = message.split(' ').nth(1).unwrap().to_owned();
                if backoffs.last() != Some(&delay) {
                    backoffs.push(delay);
                }
            }
            if seen.last() != Some(&app.restart_count) {
                seen.push(app.restart_count);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Restarts 1, 2, 3 come after back-offs of 0 s (the first restart is immediate, as the
    // kubelet's), 2 s and 4 s: the back-off doubles. The back-off is measured from the
    // runtime's exit time, so these values do not depend on how fast passes run.
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(
        backoffs,
        ["2s", "4s"],
        "CrashLoopBackOff reported while waiting"
    );
    let log = node
        .paths()
        .pod_logs_dir
        .join(format!(
            "default_crash-node-crash_{}",
            m.registry().list()[0].uid
        ))
        .join("app/2.log");
    assert!(
        std::fs::read_to_string(log).unwrap().contains("crashing"),
        "each attempt logs to <attempt>.log"
    );
    m.remove_all().await.unwrap();
}

#[tokio::test]
async fn localhost_seccomp_profile_is_enforced() {
    let Some(ep) = endpoint("localhost_seccomp_profile_is_enforced") else {
        return;
    };
    let node = Node::new(ep, "node-seccomp");
    let profiles = node.root().join("seccomp/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("deny-mkdir.json"),
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let sc = "  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: profiles/deny-mkdir.json\n";
    node.write_pod("sc.yaml", "sc", sc, "grep Seccomp: /proc/self/status; mkdir /tmp/x && echo MKDIR-OK || echo MKDIR-DENIED; sleep 3600");
    let missing = "  securityContext:\n    seccompProfile:\n      type: Localhost\n      localhostProfile: profiles/missing.json\n";
    node.write_pod("missing.yaml", "missing", missing, "sleep 3600");
    let mut m = node.manager().await;
    let pods = sync_until(&mut m, "sc running", Duration::from_secs(30), |p| {
        running(p, "sc-node-seccomp")
    })
    .await;
    let sc_pod = pods.iter().find(|p| p.name == "sc-node-seccomp").unwrap();
    let log = sc_pod.container("app").unwrap().log_path.clone().unwrap();
    let text = wait_for_file_containing(&log, "MKDIR-").await;
    assert!(text.contains("Seccomp:\t2"), "filter mode: {text:?}");
    assert!(
        text.contains("MKDIR-DENIED") && !text.contains("MKDIR-OK"),
        "{text:?}"
    );

    let missing_pod = m.registry().get("default", "missing-node-seccomp").unwrap();
    match &missing_pod.container("app").unwrap().state {
        ContainerState::Waiting { reason, message } => {
            assert_eq!(reason, "CreateContainerError");
            assert!(message.contains("profiles/missing.json"), "{message}");
        }
        other => panic!("expected CreateContainerError, got {other:?}"),
    }
    m.remove_all().await.unwrap();
}

#[tokio::test]
async fn restarted_agent_adopts_running_pod() {
    let Some(ep) = endpoint("restarted_agent_adopts_running_pod") else {
        return;
    };
    let node = Node::new(ep, "node-adopt");
    node.write_pod("keep.yaml", "keep", "", "sleep 3600");
    let mut first = node.manager().await;
    let pods = sync_until(&mut first, "keep running", Duration::from_secs(30), |p| {
        running(p, "keep-node-adopt")
    })
    .await;
    let before = pods[0].clone();
    drop(first);

    // A new agent process: same manifests, same node name.
    let mut second = node.manager().await;
    let report = second.sync_once().await;
    assert!(
        report.sandboxes_created.is_empty() && report.containers_started.is_empty(),
        "{report:?}"
    );
    let after = second.registry().get("default", "keep-node-adopt").unwrap();
    assert_eq!(after.sandbox_id, before.sandbox_id);
    assert_eq!(
        after.container("app").unwrap().container_id,
        before.container("app").unwrap().container_id
    );
    assert_eq!(node.sandboxes().await.len(), 1, "no duplicate sandbox");
    second.remove_all().await.unwrap();
}

#[tokio::test]
async fn bad_manifests_are_reported_and_leave_other_pods_running() {
    let Some(ep) = endpoint("bad_manifests_are_reported_and_leave_other_pods_running") else {
        return;
    };
    let node = Node::new(ep, "node-bad");
    node.write_pod("good.yaml", "good", "", "sleep 3600");
    let mut m = node.manager().await;
    let pods = sync_until(&mut m, "good running", Duration::from_secs(30), |p| {
        running(p, "good-node-bad")
    })
    .await;
    let good_id = pods[0].container("app").unwrap().container_id.clone();

    let dir = node.manifests();
    std::fs::write(
        dir.join("kind.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n",
    )
    .unwrap();
    std::fs::write(dir.join("noimage.yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: noimage\nspec:\n  containers:\n  - name: a\n").unwrap();
    std::fs::write(
        dir.join("dup.yaml"),
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: dup\nspec:\n  containers:\n  - name: a\n    image: {0}\n  - name: a\n    image: {0}\n", image()),
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [\n",
    )
    .unwrap();
    std::fs::write(dir.join("huge.yaml"), vec![b'#'; 10_000_000]).unwrap();

    m.sync_once().await;
    let errors = m.registry().manifest_errors();
    for (file, reason) in [
        ("kind.yaml", "kind Pod"),
        ("noimage.yaml", "spec.containers[0].image: Required value"),
        (
            "dup.yaml",
            "spec.containers[1].name: Duplicate value: \"a\"",
        ),
        ("broken.yaml", "invalid YAML"),
        ("huge.yaml", "10000000 bytes"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(file) && e.contains(reason)),
            "{file}: {reason} not in {errors:#?}"
        );
    }
    let pods = m.registry().list();
    assert_eq!(pods.len(), 1, "{pods:#?}");
    assert_eq!(pods[0].phase, PodPhase::Running);
    assert_eq!(
        pods[0].container("app").unwrap().container_id,
        good_id,
        "good pod untouched"
    );
    m.remove_all().await.unwrap();
}

#[tokio::test]
async fn unreachable_endpoint_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    let options = ClientOptions::default().with_connect_timeout(Duration::from_millis(300));
    let err = CriClient::connect(&format!("unix://{}", sock.display()), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Unreachable { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "container runtime is not reachable at unix://{0}: socket {0} does not exist",
            sock.display()
        )
    );
    // A socket nobody accepts on: connection refused.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(listener);
    let err = CriClient::connect(&format!("unix://{}", sock.display()), &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "container runtime is not reachable at unix://{}: ",
            sock.display()
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    let err = CriClient::connect("tcp://127.0.0.1:1", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidEndpoint { .. }), "{err}");
}

#[tokio::test]
async fn stop_pods_stops_only_the_chosen_pods_within_the_grace_cap() {
    let Some(ep) = endpoint("stop_pods_stops_only_the_chosen_pods") else {
        return;
    };
    let node = Node::new(ep, "node-stop");
    // `stubborn` ignores SIGTERM and asks for 30 s of grace; the cap of 2 s must win.
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stubborn\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 30\n  containers:\n  - name: app\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", \"trap '' TERM; while true; do sleep 1; done\"]\n",
        image()
    );
    std::fs::write(node.manifests().join("stubborn.yaml"), manifest).unwrap();
    node.write_pod("keep.yaml", "keep", "", "sleep 3600");
    let mut m = node.manager().await;
    let pods = sync_until(&mut m, "both running", Duration::from_secs(30), |p| {
        running(p, "stubborn-node-stop") && running(p, "keep-node-stop")
    })
    .await;
    let uid = pods
        .iter()
        .find(|p| p.name == "stubborn-node-stop")
        .unwrap()
        .uid
        .clone();

    let started = Instant::now();
    m.stop_pods(&[uid.clone()].into(), Duration::from_secs(2))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "stopped in {took:?}: the 2 s cap, not the pod's 30 s"
    );
    // Its record stays as the shutdown left it (for the status manager): Failed, Terminated.
    let stopped = m.registry().get_by_uid(&uid).unwrap();
    assert_eq!(stopped.phase, node_runtime::PodPhase::Failed);
    assert_eq!(stopped.reason.as_deref(), Some("Terminated"));
    assert!(stopped.sandbox_id.is_none());
    assert!(
        stopped
            .conditions
            .iter()
            .any(|c| c.type_ == "DisruptionTarget" && c.status)
    );
    assert!(m.registry().get("default", "keep-node-stop").is_some());
    let left = node.sandboxes().await;
    assert_eq!(left.len(), 1, "only the other pod's sandbox is left");
    assert_eq!(
        left[0].labels.get(node_runtime::LABEL_POD_UID),
        m.registry()
            .get("default", "keep-node-stop")
            .map(|p| p.uid)
            .as_ref()
    );
    m.remove_all().await.unwrap();
}

/// Waits out the wake-ups already queued in `watch` (its own subscription and earlier events).
async fn drain(watch: &RuntimeWatch) {
    while tokio::time::timeout(Duration::from_millis(500), watch.changed())
        .await
        .is_ok()
    {}
}

#[tokio::test]
async fn runtime_watch_wakes_on_container_exit_and_settled_passes_say_so() {
    let Some(ep) = endpoint("runtime_watch_wakes_on_container_exit") else {
        return;
    };
    let node = Node::new(ep, "node-watch");
    node.write_pod("watched.yaml", "watched", "", "sleep 3600");
    let mut m = node.manager().await;
    let client = CriClient::connect(&node.endpoint, &ClientOptions::default())
        .await
        .unwrap();
    let watch = RuntimeWatch::start(&client);
    let start = Instant::now();
    while !watch.is_live() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "containerd's event stream never became live: {:?}",
            watch.state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Becoming live wakes the owner (changes before the subscription were not reported).
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .expect("a wake-up when the stream became live");

    let report = m.sync_once().await;
    assert!(!report.settled, "the pass that starts a pod is not settled");
    assert_eq!(report.sandboxes_created.len(), 1);
    let pods = sync_until(&mut m, "pod running", Duration::from_secs(30), |p| {
        running(p, "watched-node-watch")
    })
    .await;
    let report = m.sync_once().await;
    assert!(
        report.settled,
        "a running pod with nothing to do is settled: {report:?}"
    );
    // Starting the pod published events (so do the other tests' pods: the watch follows the
    // whole CRI namespace, and a wake-up only costs a relist); let them pass.
    drain(&watch).await;

    // A change made behind the manager's back (the container is stopped) wakes the watch.
    let id = pods[0].containers[0].container_id.clone().unwrap();
    let stopped = Instant::now();
    client.stop_container(&id, 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("a wake-up for the container's exit");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let report = m.sync_once().await;
    assert!(
        !report.settled,
        "the pass after the exit has work (a restart, or its back-off): {report:?}"
    );
    sync_until(
        &mut m,
        "container restarted",
        Duration::from_secs(15),
        |p| running(p, "watched-node-watch") && p[0].containers[0].restart_count == 1,
    )
    .await;
    assert_eq!(watch.state(), WatchState::Live);
    m.remove_all().await.unwrap();
}

/// A call that outlives its deadline fails with `DEADLINE_EXCEEDED`: a "runtime" that accepts
/// connections and never answers cannot hold the client longer than the call's deadline (here
/// `Version` at connect, under `runtimeRequestTimeout`), and the error says so.
#[tokio::test]
async fn a_call_past_its_deadline_is_deadline_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn); // accepted, never read from or answered
        }
    });
    let options = ClientOptions::default().with_request_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = CriClient::connect(&format!("unix://{}", socket.display()), &options)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("DeadlineExceeded") || text.contains("deadline exceeded"),
        "{text}"
    );
    holder.abort();
}

/// `with_request_timeout` shares the connection with another base deadline.
#[tokio::test]
async fn with_request_timeout_shares_the_connection() {
    let Some(ep) = endpoint("with_request_timeout") else {
        return;
    };
    let client = CriClient::connect(&ep, &ClientOptions::default())
        .await
        .unwrap();
    let other = client.with_request_timeout(Duration::from_secs(7));
    assert_eq!(other.request_timeout(), Duration::from_secs(7));
    assert_eq!(client.request_timeout(), Duration::from_secs(120));
    other
        .list_containers(None, Default::default())
        .await
        .unwrap();
}

/// A hook whose `pod_removed` waits until a task on the test's (single-threaded) runtime
/// answers. Run on the executor thread it would hold that thread, the task could never answer,
/// and the wait would time out.
#[derive(Debug)]
struct WaitingHook {
    started: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    outcome: std::sync::Mutex<Option<Result<(), String>>>,
}

impl node_runtime::ContainerHook for WaitingHook {
    fn before_create<'a>(
        &'a self,
        _request: node_runtime::ContainerRequest<'a>,
        _config: &'a mut node_runtime::cri::ContainerConfig,
    ) -> node_runtime::HookFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn pod_removed(&self, _pod_uid: &str) {
        if let Some(started) = self.started.lock().unwrap().take() {
            let _ = started.send(());
        }
        let got = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60))
            .map_err(|e| format!("no answer from the executor thread: {e}"));
        self.outcome.lock().unwrap().get_or_insert(got);
    }
}

#[tokio::test]
async fn pod_removal_work_runs_off_the_executor_thread() {
    let Some(ep) = endpoint("pod_removal_work_runs_off_the_executor_thread") else {
        return;
    };
    let node = Node::new(ep, "node-offload");
    let volume = "  volumes:\n  - name: scratch\n    emptyDir: {}\n";
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: filler\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n{volume}  containers:\n  - name: app\n    image: {}\n    imagePullPolicy: IfNotPresent\n    command: [\"/bin/sh\", \"-c\", \"for i in $(seq 1 500); do echo $i > /scratch/f$i; done; sleep 3600\"]\n    volumeMounts:\n    - name: scratch\n      mountPath: /scratch\n",
        image()
    );
    std::fs::write(node.manifests().join("filler.yaml"), manifest).unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let hook = std::sync::Arc::new(WaitingHook {
        started: std::sync::Mutex::new(Some(started_tx)),
        release: std::sync::Mutex::new(release_rx),
        outcome: std::sync::Mutex::new(None),
    });
    let mut m = node.manager().await.with_container_hook(hook.clone());
    let pods = sync_until(&mut m, "filler running", Duration::from_secs(30), |p| {
        running(p, "filler-node-offload")
    })
    .await;
    let uid = pods[0].uid.clone();
    let scratch = node.root().join(format!(
        "pods/{uid}/volumes/kubernetes.io~empty-dir/scratch"
    ));
    let start = Instant::now();
    while !scratch.join("f500").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the container never filled {}",
            scratch.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::remove_file(node.manifests().join("filler.yaml")).unwrap();
    let answer = async move {
        started_rx.await.expect("pod_removed was called");
        release_tx.send(()).unwrap();
    };
    let (report, ()) = tokio::join!(m.sync_once(), answer);
    assert_eq!(
        report.pods_removed,
        ["default/filler-node-offload"],
        "{report:#?}"
    );
    assert_eq!(hook.outcome.lock().unwrap().clone(), Some(Ok(())));
    assert!(
        !node.root().join(format!("pods/{uid}")).exists(),
        "the pod directory and its emptyDir are gone"
    );
    assert!(report.errors.is_empty(), "{report:#?}");
}
