//! `PodManager` against the in-memory CRI runtime (`test_support::FakeCri`): the apply step's
//! CRI calls, crash-loop restarts, teardown and adoption, with no container runtime. The same
//! behaviour on a real containerd is in `tests/containerd.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use node_runtime::test_support::{CriCall, FakeCri};
use node_runtime::{
    ClientOptions, ContainerState, CriClient, NodePaths, PodInfo, PodManager, PodPhase,
    StaticPodSource, SyncOptions,
};

const NODE: &str = "n1";
const IMAGE: &str = "busybox:local";

struct Node {
    dir: tempfile::TempDir,
    cri: FakeCri,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("manifests")).unwrap();
        let cri = FakeCri::start(dir.path()).unwrap();
        Self { dir, cri }
    }

    fn manifest(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join("manifests").join(file)
    }

    /// A pod with an explicit UID, `init` init containers and `containers`.
    fn write_pod(&self, file: &str, name: &str, policy: &str, init: &[&str], containers: &[&str]) {
        let list = |names: &[&str]| -> String {
            names
                .iter()
                .map(|n| {
                    format!("  - name: {n}\n    image: {IMAGE}\n    command: [\"/bin/true\"]\n")
                })
                .collect()
        };
        let init = if init.is_empty() {
            String::new()
        } else {
            format!("  initContainers:\n{}", list(init))
        };
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  uid: uid-{name}\nspec:\n  hostNetwork: true\n  restartPolicy: {policy}\n{init}  containers:\n{}",
            list(containers)
        );
        std::fs::write(self.manifest(file), manifest).unwrap();
    }

    async fn manager(&self) -> PodManager {
        let client = CriClient::connect(&self.cri.endpoint(), &ClientOptions::default())
            .await
            .unwrap();
        let paths = NodePaths {
            root_dir: self.dir.path().join("root"),
            pod_logs_dir: self.dir.path().join("logs"),
        };
        let mut options = SyncOptions::new(NODE, paths);
        // Short crash-loop back-offs (the fake runs on the wall clock), long enough that a
        // pass right after another never sees one run out on a busy machine.
        options.backoff_initial = Duration::from_secs(5);
        options.backoff_max = Duration::from_secs(60);
        PodManager::new(
            client,
            StaticPodSource::new(self.dir.path().join("manifests"), NODE),
            options,
        )
    }
}

fn methods(calls: &[CriCall]) -> Vec<&str> {
    calls.iter().map(|c| c.method).collect()
}

fn pod(m: &PodManager, name: &str) -> PodInfo {
    m.registry()
        .get("default", &format!("{name}-{NODE}"))
        .unwrap_or_else(|| panic!("no pod {name}"))
}

#[tokio::test]
async fn a_crashing_container_restarts_with_growing_backoff() {
    let node = Node::new();
    node.write_pod("crash.yaml", "crash", "Always", &[], &["app"]);
    node.cri.exit_on_start("app", Some(1));
    let mut m = node.manager().await;

    // Pass 1: sandbox, image, first attempt (which exits at once).
    let report = m.sync_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.sandboxes_created, ["default/crash-n1"]);
    assert_eq!(report.containers_started, ["default/crash-n1/app"]);
    let calls = node.cri.take_calls();
    assert_eq!(
        methods(&calls),
        [
            "Version",
            "ListPodSandbox",
            "ListContainers",
            "ImageStatus",
            "PullImage",
            "RunPodSandbox",
            "ImageStatus",
            "CreateContainer",
            "StartContainer",
            "ContainerStatus",
        ]
    );
    let app = &pod(&m, "crash").containers[0];
    assert!(
        matches!(&app.state, ContainerState::Terminated { exit_code: 1, reason, .. } if reason == "Error"),
        "{app:?}"
    );
    let first = app.container_id.clone().unwrap();

    // Pass 2: the first restart of a crash loop is immediate; the old instance stays as the
    // previous one (its end is lastState).
    let second_started = Instant::now();
    let report = m.sync_once().await;
    assert_eq!(report.containers_started, ["default/crash-n1/app"]);
    let calls = node.cri.take_calls();
    let second = node
        .cri
        .containers()
        .into_iter()
        .find(|c| c.id != first)
        .unwrap()
        .id;
    assert_eq!(
        calls,
        [
            call("ListPodSandbox", ""),
            call("ListContainers", ""),
            call("ContainerStatus", &first),
            call("ImageStatus", IMAGE),
            call("CreateContainer", "app"),
            call("StartContainer", &second),
            call("ContainerStatus", &second),
        ]
    );
    assert_eq!(pod(&m, "crash").containers[0].restart_count, 1);
    assert!(
        matches!(
            pod(&m, "crash").containers[0].last_state,
            Some(ContainerState::Terminated { exit_code: 1, .. })
        ),
        "{:?}",
        pod(&m, "crash").containers[0]
    );

    // Pass 3: back-off (the first delay): waiting, nothing created.
    let report = m.sync_once().await;
    assert!(report.containers_started.is_empty() && !report.settled);
    let app = &pod(&m, "crash").containers[0];
    assert_eq!(
        app.state,
        ContainerState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 5s restarting failed container=app pod=crash-n1_default(uid-crash)"
                .into()
        }
    );
    assert_eq!(app.container_id.as_deref(), Some(second.as_str()));
    assert!(!methods(&node.cri.take_calls()).contains(&"CreateContainer"));

    // Once it ran out: the third attempt (never before the delay since the second one
    // exited), then twice the delay.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = m.sync_once().await;
        if !report.containers_started.is_empty() {
            assert_eq!(report.containers_started, ["default/crash-n1/app"]);
            break;
        }
        assert!(Instant::now() < deadline, "no third attempt: {report:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(second_started.elapsed() >= Duration::from_secs(5));
    m.sync_once().await;
    let app = &pod(&m, "crash").containers[0];
    assert_eq!(app.restart_count, 2);
    assert!(
        matches!(&app.state, ContainerState::Waiting { message, .. } if message.starts_with("back-off 10s ")),
        "{app:?}"
    );
    // The latest instance and the one before it are kept; the first went.
    let left: Vec<String> = node.cri.containers().into_iter().map(|c| c.id).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&first));
    assert!(app.last_state.is_some());
}

fn call(method: &'static str, target: &str) -> CriCall {
    CriCall {
        method,
        target: target.to_owned(),
    }
}

#[tokio::test]
async fn a_removed_manifest_tears_the_pod_down() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &[], &["app", "side"]);
    node.write_pod("keep.yaml", "keep", "Always", &[], &["app"]);
    let mut m = node.manager().await;
    m.sync_once().await;
    assert_eq!(pod(&m, "web").phase, PodPhase::Running);
    assert_eq!(node.cri.sandboxes().len(), 2);
    let web_sandbox = pod(&m, "web").sandbox_id.unwrap();
    node.cri.take_calls();

    std::fs::remove_file(node.manifest("web.yaml")).unwrap();
    let report = m.sync_once().await;
    assert_eq!(report.pods_removed, ["default/web-n1"]);
    let calls = node.cri.take_calls();
    let stops: Vec<&CriCall> = calls
        .iter()
        .filter(|c| c.method.starts_with("Stop") || c.method.starts_with("Remove"))
        .collect();
    assert_eq!(stops.len(), 6, "{calls:?}");
    // The containers go first, then the sandbox.
    let at = |c: &CriCall| calls.iter().position(|x| x == c).unwrap();
    let sandbox_stop = at(&call("StopPodSandbox", &web_sandbox));
    assert_eq!(
        calls[sandbox_stop + 1],
        call("RemovePodSandbox", &web_sandbox)
    );
    assert!(stops.iter().all(|c| at(c) <= sandbox_stop + 1));
    assert!(m.registry().get("default", "web-n1").is_none());
    let left = node.cri.sandboxes();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].metadata.name, "keep-n1");
    assert!(
        node.cri
            .containers()
            .iter()
            .all(|c| c.sandbox_id == left[0].id)
    );
    assert!(!node.dir.path().join("root/pods/uid-web").exists());
}

#[tokio::test]
async fn a_restarted_agent_adopts_its_pods() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &["setup"], &["app"]);
    node.cri.exit_on_start("setup", Some(0));
    let before = {
        let mut m = node.manager().await;
        // The init container completes as it starts: the app starts in the same pass.
        let report = m.sync_once().await;
        assert_eq!(
            report.containers_started,
            ["default/web-n1/setup", "default/web-n1/app"]
        );
        pod(&m, "web")
        // The agent stops here; its pods keep running.
    };
    assert_eq!(before.phase, PodPhase::Running);
    node.cri.take_calls();

    let mut m = node.manager().await;
    let report = m.sync_once().await;
    assert!(report.settled, "{report:?}");
    assert!(report.sandboxes_created.is_empty() && report.containers_started.is_empty());
    let calls = node.cri.take_calls();
    assert_eq!(
        methods(&calls),
        [
            "Version",
            "ListPodSandbox",
            "ListContainers",
            "ContainerStatus",
            "ContainerStatus"
        ]
    );
    let after = pod(&m, "web");
    assert_eq!(after.sandbox_id, before.sandbox_id);
    assert_eq!(after.containers, before.containers);
    assert_eq!(after.phase, PodPhase::Running);
}

#[tokio::test]
async fn a_sandbox_that_died_is_replaced_with_everything_in_it() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &[], &["app"]);
    let mut m = node.manager().await;
    m.sync_once().await;
    let old = pod(&m, "web");
    node.cri
        .set_sandbox_ready(old.sandbox_id.as_deref().unwrap(), false);
    node.cri.take_calls();

    let report = m.sync_once().await;
    assert_eq!(report.sandboxes_created, ["default/web-n1"]);
    let calls = node.cri.take_calls();
    let calls = methods(&calls);
    let run = calls.iter().position(|c| *c == "RunPodSandbox").unwrap();
    let removed = calls.iter().position(|c| *c == "RemovePodSandbox").unwrap();
    assert!(removed < run, "{calls:?}");
    let new = pod(&m, "web");
    assert_ne!(new.sandbox_id, old.sandbox_id);
    assert_eq!(new.containers[0].restart_count, 0);
    assert_eq!(node.cri.sandboxes().len(), 1);
}

#[tokio::test]
async fn a_failing_create_is_reported_and_retried() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &[], &["app"]);
    node.cri.fail(
        "CreateContainer",
        Some((tonic::Code::Internal, "no space left on device")),
    );
    let mut m = node.manager().await;
    let report = m.sync_once().await;
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(
        report.errors[0].contains("no space left on device"),
        "{report:?}"
    );
    let app = &pod(&m, "web").containers[0];
    assert!(
        matches!(app.state, ContainerState::Waiting { .. }),
        "{app:?}"
    );
    assert_eq!(app.container_id, None);

    node.cri.fail("CreateContainer", None);
    let report = m.sync_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.containers_started, ["default/web-n1/app"]);
    assert_eq!(pod(&m, "web").phase, PodPhase::Running);
}

/// An API server pod bound to this node, with host networking (the fake has no CNI).
fn api_pod(name: &str, uid: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid},
        "spec": {
            "nodeName": NODE, "hostNetwork": true, "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "app", "image": IMAGE, "command": ["/bin/sleep", "1000"]}]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn api_pods_run_beside_static_pods_and_stop_when_deleted() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &[], &["app"]);
    let api = node_runtime::ApiPods::new(NODE);
    let mut m = node.manager().await.with_api_pods(api.clone());
    let report = m.sync_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.sandboxes_created, ["default/web-n1"]);
    // A first pull: once before the sandbox, not again at the container's start.
    let reasons: Vec<&str> = report.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["Pulling", "Pulled", "Created", "Started"]);
    let pulled = &report.events[1].message;
    assert!(pulled.starts_with(&format!("Successfully pulled image {IMAGE:?} in ")));

    // The API server's list arrives: its pod (with a preStop hook) runs beside the static pod.
    let with_hook = |mut p: k8s_openapi::api::core::v1::Pod| {
        p.spec.as_mut().unwrap().containers[0].lifecycle = Some(
            serde_json::from_value(serde_json::json!({
                "preStop": {"exec": {"command": ["/bin/sh", "-c", "echo bye"]}}
            }))
            .unwrap(),
        );
        p
    };
    api.replace(vec![with_hook(api_pod("api1", "uid-api1"))]);
    let report = m.sync_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.sandboxes_created, ["default/api1"]);
    // The kubelet's events for what happened, on the container's reference.
    let events: Vec<(String, String, String)> = report
        .events
        .iter()
        .map(|e| {
            (
                e.reason.clone(),
                e.message.clone(),
                e.field_path.clone().unwrap(),
            )
        })
        .collect();
    let app = || "spec.containers{app}".to_owned();
    assert_eq!(
        events,
        [
            (
                "Pulled".into(),
                format!("Container image {IMAGE:?} already present on machine"),
                app()
            ),
            ("Created".into(), "Container created".into(), app()),
            ("Started".into(), "Container started".into(), app()),
        ]
    );
    assert!(
        report
            .events
            .iter()
            .all(|e| e.uid == "uid-api1" && !e.warning)
    );
    let info = m.registry().get("default", "api1").unwrap();
    assert_eq!(info.source, node_runtime::PodSource::Api);
    assert_eq!(info.uid, "uid-api1");
    assert!(info.pod.is_some());

    // An API pod claiming the static pod's name is not run.
    let mut clash = api_pod("web-n1", "uid-clash");
    clash.metadata.name = Some("web-n1".into());
    api.apply(clash);
    let report = m.sync_once().await;
    assert_eq!(
        report.errors,
        ["default/web-n1: UID uid-clash or name taken by a static pod"]
    );

    // Graceful deletion: the pod is stopped with its deletion grace period (capped at 7 s
    // here), its sandbox removed, and it is reported for the final DELETE.
    let mut deleting = with_hook(api_pod("api1", "uid-api1"));
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    deleting.metadata.deletion_grace_period_seconds = Some(7);
    api.apply(deleting.clone());
    node.cri.take_calls();
    let report = m.sync_once().await;
    assert_eq!(report.pods_removed, ["default/api1"]);
    assert_eq!(report.events.len(), 1, "{:?}", report.events);
    assert_eq!(
        (
            report.events[0].reason.as_str(),
            report.events[0].message.as_str()
        ),
        ("Killing", "Stopping container app")
    );
    let calls = node.cri.take_calls();
    // The preStop hook ran in the container first, then the stop (the fake's hook takes no
    // time, so the grace period left is still 7 s).
    let execs = node.cri.execs();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].1, ["/bin/sh", "-c", "echo bye"]);
    let stops = node.cri.stop_timeouts();
    assert_eq!(stops.len(), 1, "{calls:?}");
    assert_eq!(stops[0].0, execs[0].0);
    assert_eq!(stops[0].1, 7);
    let order = methods(&calls);
    let exec_at = order.iter().position(|m| *m == "ExecSync").unwrap();
    let stop_at = order.iter().position(|m| *m == "StopContainer").unwrap();
    assert!(exec_at < stop_at, "{order:?}");
    assert!(methods(&calls).contains(&"RemovePodSandbox"));
    // Its final record stays until the API server forgets the pod: Failed, as its container
    // ended on SIGTERM (143).
    let last = m.registry().get("default", "api1").unwrap();
    assert_eq!(last.phase, PodPhase::Failed);
    assert!(matches!(
        last.containers[0].state,
        ContainerState::Terminated { exit_code: 143, .. }
    ));
    assert!(!last.containers[0].ready);
    assert_eq!(
        api.terminated(),
        [node_runtime::TerminatedPod {
            namespace: "default".into(),
            name: "api1".into(),
            uid: "uid-api1".into()
        }]
    );
    // The final DELETE went through: the pod is gone from the source, nothing else changes.
    api.delete(&deleting);
    let report = m.sync_once().await;
    assert!(report.pods_removed.is_empty());
    assert!(api.terminated().is_empty());
    assert!(m.registry().get("default", "api1").is_none());
    assert!(m.registry().get("default", "web-n1").is_some());
}

#[tokio::test]
async fn pods_that_do_not_fit_are_refused_in_creation_order() {
    let node = Node::new();
    let api = node_runtime::ApiPods::new(NODE);
    let client = CriClient::connect(&node.cri.endpoint(), &ClientOptions::default())
        .await
        .unwrap();
    let paths = NodePaths {
        root_dir: node.dir.path().join("root"),
        pod_logs_dir: node.dir.path().join("logs"),
    };
    let options =
        SyncOptions::new(NODE, paths).with_node_info(Some(node_runtime::NodeInfoFn::new(|| {
            Some(node_runtime::admission::AdmissionNode {
                name: NODE.to_owned(),
                allocatable: [("cpu".to_owned(), 1000), ("pods".to_owned(), 110)].into(),
                ..Default::default()
            })
        })));
    let mut m = PodManager::new(
        client,
        StaticPodSource::new(node.dir.path().join("manifests"), NODE),
        options,
    )
    .with_api_pods(api.clone());
    let sized = |name: &str, uid: &str, created: &str| {
        let mut p = api_pod(name, uid);
        p.spec.as_mut().unwrap().containers[0].resources =
            Some(serde_json::from_value(serde_json::json!({"requests": {"cpu": "600m"}})).unwrap());
        p.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            created.parse().unwrap(),
        ));
        p
    };
    // "second" sorts first by name but was created later: "first" is admitted.
    api.replace(vec![
        sized("second", "uid-2", "2026-01-01T00:00:02Z"),
        sized("first", "uid-1", "2026-01-01T00:00:01Z"),
    ]);
    let report = m.sync_once().await;
    assert_eq!(report.sandboxes_created, ["default/first"]);
    let refused = m.registry().get("default", "second").unwrap();
    assert_eq!(refused.phase, PodPhase::Failed);
    assert_eq!(refused.reason.as_deref(), Some("OutOfcpu"));
    assert_eq!(
        refused.message.as_deref(),
        Some(
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 600, used: 600, capacity: 1000"
        )
    );
    // The decision sticks: the first pod leaving does not admit the refused one.
    api.delete(&sized("first", "uid-1", "2026-01-01T00:00:01Z"));
    let report = m.sync_once().await;
    assert!(report.sandboxes_created.is_empty());
    assert_eq!(
        m.registry()
            .get("default", "second")
            .unwrap()
            .reason
            .as_deref(),
        Some("OutOfcpu")
    );
}

#[tokio::test]
async fn image_errors_show_the_kubelets_waiting_reasons() {
    let node = Node::new();
    let manifest = |name: &str, image: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  uid: uid-{name}\nspec:\n  hostNetwork: true\n  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: {policy}\n"
        )
    };
    std::fs::write(
        node.manifest("never.yaml"),
        manifest("never", "absent:1", "Never"),
    )
    .unwrap();
    std::fs::write(
        node.manifest("pull.yaml"),
        manifest("pull", "unreachable:1", "Always"),
    )
    .unwrap();
    node.cri.fail(
        "PullImage",
        Some((tonic::Code::Unknown, "registry unreachable")),
    );
    let mut m = node.manager().await;
    m.sync_once().await;
    let never = &pod(&m, "never").containers[0];
    assert_eq!(
        never.state,
        ContainerState::Waiting {
            reason: "ErrImageNeverPull".into(),
            message: "Container image \"absent:1\" is not present with pull policy of Never".into(),
        }
    );
    match &pod(&m, "pull").containers[0].state {
        ContainerState::Waiting { reason, message } => {
            assert_eq!(reason, "ErrImagePull");
            assert!(message.contains("registry unreachable"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_container_the_runtime_lost_continues_its_attempts_from_the_log_directory() {
    let node = Node::new();
    node.write_pod("web.yaml", "web", "Always", &[], &["app"]);
    let mut m = node.manager().await;
    m.sync_once().await;
    let first = pod(&m, "web").containers[0].clone();
    assert_eq!(first.restart_count, 0);
    // The runtime kept logs for attempts 0 to 2 (one of them rotated), then lost every
    // container and sandbox (a runtime wipe): the next start is attempt 3, not 0.
    let dir = node.dir.path().join("logs/default_web-n1_uid-web/app");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["0.log", "1.log.20261203-101010.gz", "2.log", "notes.txt"] {
        std::fs::write(dir.join(f), "").unwrap();
    }
    let client = CriClient::connect(&node.cri.endpoint(), &ClientOptions::default())
        .await
        .unwrap();
    for c in node.cri.containers() {
        client.stop_container(&c.id, 0).await.unwrap();
        client.remove_container(&c.id).await.unwrap();
    }
    let report = m.sync_once().await;
    assert!(report.errors.is_empty(), "{report:?}");
    let app = &pod(&m, "web").containers[0];
    assert_eq!(app.restart_count, 3, "{app:?}");
    assert!(
        app.log_path
            .as_ref()
            .is_some_and(|p| p.ends_with("app/3.log")),
        "{app:?}"
    );
}
