//! End-to-end tests of the real `node-agent` binary on the test run's containerd: static pods in
//! `/pods`, the HTTPS API's authentication and authorization (x509 client certificates,
//! anonymous off, bearer tokens and a denying Webhook authorizer on the test API server), the
//! checkpoint endpoint (containerd's 500; an archive through the CRI test server), device
//! plugins in pod-resources, lock file contention, adoption after kill -9, SIGTERM.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{
    AgentSpec, OPEN_AUTH, client_certs, curl, refs, remove_pods, running, sandboxes,
    sibling_binary, sleep_pod, x509_only,
};
use nix::sys::signal::Signal;

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(60);

/// Static pods run and show in `/pods`; a client certificate is required (anonymous off:
/// 401 without one); `/configz`, `/metrics`, `/healthz` answer; checkpointing on containerd
/// 1.6 gives the runtime's 500; a container stopped outside the agent is noticed at once
/// (runtime events) and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_and_x509_authentication() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("static_pods_and_x509") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = client_certs(dir.path(), "alice", &["e2e:operators"]);
    let spec = AgentSpec::new(dir.path(), "x509", &endpoint)
        .config(&x509_only(&certs.ca_file))
        .manifest("web.yaml", &sleep_pod("web", ""));
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let auth = certs.curl_args();
    let pod = format!("web-{node}");
    let list = agent.wait_pods(&refs(&auth), POD_UP, |l| running(l, &pod).is_some());
    let item = running(&list, &pod).unwrap();
    assert_eq!(item["spec"]["nodeName"], node.as_str());
    assert_eq!(
        item["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );

    // Anonymous off: no certificate, no entry, on every path (even unknown ones).
    for path in ["/pods", "/configz", "/metrics", "/healthz", "/no-such-path"] {
        let r = curl(&[&agent.url(path)]);
        assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"), "{path}");
    }
    let r = curl(&[
        "-X",
        "POST",
        &agent.url(&format!("/checkpoint/default/{pod}/app")),
    ]);
    assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"));

    let get = |path: &str| {
        let mut args = refs(&auth);
        let url = agent.url(path);
        args.push(&url);
        curl(&args)
    };
    let configz: serde_json::Value = serde_json::from_str(&get("/configz").body).unwrap();
    assert_eq!(configz["kubeletconfig"]["port"], agent.port);
    assert_eq!(
        configz["kubeletconfig"]["authentication"]["anonymous"]["enabled"],
        false
    );
    let metrics = get("/metrics").body;
    assert!(
        metrics.contains(&format!("kubelet_node_name{{node=\"{node}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("kubelet_running_pods 1"), "{metrics}");
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    let healthz = get("/healthz");
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok"));
    assert_eq!(get("/no-such-path").status, 404);

    // Checkpoint on containerd 1.6: the runtime's Unimplemented, as the kubelet's 500.
    let mut args = refs(&auth);
    let url = agent.url(&format!("/checkpoint/default/{pod}/app"));
    args.extend(["-X", "POST", &url]);
    let r = curl(&args);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body
            .starts_with(&format!("checkpointing of default/{pod}/app failed (")),
        "{}",
        r.body
    );
    assert!(r.body.contains("Unimplemented"), "{}", r.body);

    // A container stopped behind the agent's back: containerd's exit event brings a pass at
    // once (with the pod settled, passes are otherwise fileCheckFrequency, 20 s, apart), which
    // restarts the container.
    let status = &item["status"]["containerStatuses"][0];
    let first = status["containerID"].as_str().unwrap().to_owned();
    let cri = node_runtime::CriClient::connect(&endpoint, &Default::default())
        .await
        .unwrap();
    cri.stop_container(first.trim_start_matches("containerd://"), 0)
        .await
        .unwrap();
    // The first restart is immediate (the kubelet's back-off starts with the second).
    let list = agent.wait_pods(&refs(&auth), Duration::from_secs(4), |l| {
        running(l, &pod).is_some_and(|p| p["status"]["containerStatuses"][0]["restartCount"] == 1)
    });
    assert_ne!(
        running(&list, &pod).unwrap()["status"]["containerStatuses"][0]["containerID"],
        first.as_str()
    );

    // The generated serving certificate lives in the cert dir (<root>/pki by default).
    assert!(agent.root().join("pki/kubelet.crt").exists());
    assert!(agent.root().join("pki/kubelet.key").exists());

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// Bearer tokens through TokenReview and a Webhook authorizer that denies: 403 worded like the
/// kubelet's; an allowed subresource passes; an unknown token is 401. The node registers and
/// its lease is renewed on the same API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_authentication_and_authorization() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("webhook") else {
        return;
    };
    let server = node_heartbeat::testserver::TestApiServer::start()
        .await
        .unwrap();
    server.add_token("good-token", "alice", &["e2e:operators"]);
    server.allow_access("alice", "proxy");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "webhook", &endpoint)
        .config(
            "authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
nodeStatusUpdateFrequency: 2s
evictionHard:
  memory.available: 100Ti
",
        )
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    let bearer = "Authorization: Bearer good-token";
    let pods = curl(&["-H", bearer, &agent.url("/pods")]);
    assert_eq!(pods.status, 200, "{}", pods.body);
    let denied = curl(&[
        "-H",
        bearer,
        "-X",
        "POST",
        &agent.url("/checkpoint/default/any-pod/app"),
    ]);
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (
            403,
            "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[checkpoint])\n"
        )
    );
    let metrics = curl(&["-H", bearer, &agent.url("/metrics")]);
    assert_eq!(
        (metrics.status, metrics.body.as_str()),
        (
            403,
            "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[metrics])\n"
        )
    );
    let unknown = curl(&["-H", "Authorization: Bearer bad-token", &agent.url("/pods")]);
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (401, "Unauthorized")
    );

    // The SubjectAccessReview carried the kubelet's attributes.
    let reviews: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("subjectaccessreviews"))
        .collect();
    let checkpoint_review = reviews
        .iter()
        .filter_map(|r| r.body.as_ref())
        .find(|b| b["spec"]["resourceAttributes"]["subresource"] == "checkpoint")
        .expect("a SubjectAccessReview for nodes/checkpoint");
    assert_eq!(checkpoint_review["spec"]["user"], "alice");
    assert_eq!(
        checkpoint_review["spec"]["resourceAttributes"]["name"],
        node.as_str()
    );
    assert_eq!(
        checkpoint_review["spec"]["resourceAttributes"]["verb"],
        "create"
    );

    // Heartbeat against the API server: Node registered, lease held by this node.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.lease("kube-node-lease", &node).is_none() || server.node(&node).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no node/lease:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered = server.node(&node).unwrap();
    let status = registered.status.unwrap();
    // No node has 100Ti available: the eviction signals put it under memory pressure.
    let memory = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "MemoryPressure")
        .expect("a MemoryPressure condition");
    assert_eq!(
        (memory.status.as_str(), memory.reason.as_deref()),
        ("True", Some("KubeletHasInsufficientMemory"))
    );
    // Under memory pressure the eviction manager's admission refuses a BestEffort pod from
    // the API server.
    let besteffort: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "besteffort", "namespace": "default"},
        "spec": {"nodeName": node, "hostNetwork": true,
                 "containers": [{"name": "app", "image": "busybox"}]}
    }))
    .unwrap();
    server.create_pod(besteffort).unwrap();
    let deadline = std::time::Instant::now() + POD_UP;
    let evicted = loop {
        let st = server.pod("default", "besteffort").and_then(|p| p.status);
        if let Some(st) = st.filter(|st| st.phase.as_deref() == Some("Failed")) {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Evicted:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(evicted.reason.as_deref(), Some("Evicted"));
    assert_eq!(
        evicted.message.as_deref(),
        Some("Pod was rejected: The node had condition: [MemoryPressure]. ")
    );
    let info = status.node_info.unwrap();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{}",
        info.container_runtime_version
    );
    // The Kubernetes version the agent implements, not the crate version.
    assert_eq!(info.kubelet_version, "v1.35.0");
    let lease = server.lease("kube-node-lease", &node).unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(node.as_str())
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// `POST /checkpoint/...` through the CRI test server (which forwards everything else to
/// containerd and writes a realistic archive): 200 with the archive path, file mode 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_through_the_cri_test_server() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("checkpoint_cri_test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cri_dir = dir.path().join("cri");
    std::fs::create_dir_all(&cri_dir).unwrap();
    let cri = node_checkpoint::test_support::CriTestServer::start_forwarding(&cri_dir, &endpoint)
        .await
        .unwrap();
    let certs = client_certs(dir.path(), "checkpointer", &[]);
    let spec = AgentSpec::new(dir.path(), "checkpoint", &cri.endpoint())
        .config(&x509_only(&certs.ca_file))
        .manifest("db.yaml", &sleep_pod("db", ""));
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let auth = certs.curl_args();
    let pod = format!("db-{node}");
    agent.wait_pods(&refs(&auth), POD_UP, |l| running(l, &pod).is_some());

    let mut args = refs(&auth);
    let url = agent.url(&format!("/checkpoint/default/{pod}/app?timeout=30"));
    args.extend(["-X", "POST", &url]);
    let r = curl(&args);
    assert_eq!(r.status, 200, "{}\n{}", r.body, agent.stderr());
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let archive = PathBuf::from(body["items"][0].as_str().unwrap());
    assert!(
        archive.starts_with(agent.root().join("checkpoints")),
        "{archive:?}"
    );
    let name = archive.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("checkpoint-{pod}_default-app-")),
        "{name}"
    );
    let meta = std::fs::metadata(&archive).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    assert!(meta.len() > 0);
    assert_eq!(cri.seen().len(), 1);
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// The example device plugin registers with the agent (v1beta1 on kubelet.sock, and a second
/// one through the plugins_registry watcher), a pod gets a device, and pod-resources shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_plugin_devices_show_in_pod_resources() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("device_plugin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = AgentSpec::new(dir.path(), "devices", &endpoint).config(OPEN_AUTH);
    let node = spec.node.clone();
    let manifests = spec.dir.join("manifests");
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    let plugin = sibling_binary("fake-device-plugin");
    let kubelet_sock = agent.root().join("device-plugins/kubelet.sock");
    let mut by_socket = Command::new(&plugin)
        .args([
            "--devices",
            "2",
            "--resource",
            "example.com/fake",
            "--kubelet-socket",
        ])
        .arg(&kubelet_sock)
        .stderr(std::fs::File::create(dir.path().join("plugin1.log")).unwrap())
        .spawn()
        .unwrap();
    let mut by_registry = Command::new(&plugin)
        .args([
            "--devices",
            "1",
            "--resource",
            "example.com/watched",
            "--socket-name",
            "watched.sock",
            "--registry-dir",
        ])
        .arg(agent.root().join("plugins_registry"))
        .arg("--kubelet-socket")
        .arg(&kubelet_sock)
        .stderr(std::fs::File::create(dir.path().join("plugin2.log")).unwrap())
        .spawn()
        .unwrap();

    let nodectl = sibling_binary("nodectl");
    let socket = agent.root().join("pod-resources/kubelet.sock");
    let query = |what: &str| -> serde_json::Value {
        let out = Command::new(&nodectl)
            .args(["pod-resources", what, "-o", "json", "--socket"])
            .arg(&socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nodectl pod-resources {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let alloc = query("allocatable").to_string();
        if alloc.contains("example.com/fake") && alloc.contains("example.com/watched") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "plugins never became allocatable: {alloc}\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    std::fs::write(
        manifests.join("gpu.yaml"),
        sleep_pod(
            "gpu",
            "    resources:\n      limits:\n        example.com/fake: 1\n",
        ),
    )
    .unwrap();
    let pod = format!("gpu-{node}");
    agent.wait_pods(&[], POD_UP, |l| running(l, &pod).is_some());
    let list = query("list");
    let entry = list["podResources"]
        .as_array()
        .or_else(|| list["pod_resources"].as_array())
        .and_then(|pods| pods.iter().find(|p| p["name"] == pod.as_str()))
        .unwrap_or_else(|| panic!("{pod} not in pod-resources: {list:#}"));
    let text = entry.to_string();
    assert!(text.contains("example.com/fake"), "{text}");
    assert!(text.contains("fake-"), "a device ID: {text}");

    let _ = by_socket.kill();
    let _ = by_registry.kill();
    let _ = by_socket.wait();
    let _ = by_registry.wait();
    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// A second agent on the same lock file blocks; the first, run with
/// `--exit-on-lock-contention`, exits when the second opens the file, and the second then
/// takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_file_contention() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("lock_file") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("kubelet.lock");
    let lock_arg = format!("--lock-file={}", lock.display());

    let mut first = AgentSpec::new(&dir.path().join("a"), "lock-a", &endpoint)
        .config(OPEN_AUTH)
        .args(&[&lock_arg, "--exit-on-lock-contention"])
        .spawn();
    first.wait_healthy(START);

    // Without --exit-on-lock-contention the second agent blocks on the lock...
    let mut second = AgentSpec::new(&dir.path().join("b"), "lock-b", &endpoint)
        .config(OPEN_AUTH)
        .args(&[&lock_arg])
        .spawn();
    // ...and opening the file makes the first one exit (status 0, as the kubelet).
    let status = first.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", first.stderr());
    assert!(
        first.stderr().contains("lock file contention"),
        "{}",
        first.stderr()
    );
    // The second took the lock once the first let go (usually after waiting for it; on a
    // loaded machine the first can be gone before the second's flock, so this is not asserted).
    second.wait_healthy(START);

    // While the second holds it, a third blocks and does not become healthy.
    let mut third = AgentSpec::new(&dir.path().join("c"), "lock-c", &endpoint)
        .config(OPEN_AUTH)
        .args(&[&lock_arg])
        .spawn();
    // Wait for it to say so (however loaded the machine), then check it is still waiting.
    let deadline = std::time::Instant::now() + START;
    while !third.stderr().contains("waiting for the lock file") {
        assert!(third.try_exit().is_none(), "{}", third.stderr());
        assert!(std::time::Instant::now() < deadline, "{}", third.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(third.try_exit().is_none(), "{}", third.stderr());
    let healthz = curl(&[&format!("http://127.0.0.1:{}/healthz", third.healthz_port)]);
    assert_eq!(healthz.status, 0, "the blocked agent must not serve yet");
    second.signal(Signal::SIGTERM);
    second.wait_exit(Duration::from_secs(20));
    third.wait_healthy(START);
}

/// kill -9 leaves the pods running; a restarted agent adopts them (same container, no new
/// sandbox) and restores its state files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_adopts_pods() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("kill_9_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = AgentSpec::new(dir.path(), "restart", &endpoint)
        .config(OPEN_AUTH)
        .manifest("keep.yaml", &sleep_pod("keep", ""));
    let node = spec.node.clone();
    let config = spec.config.clone();
    let (port, healthz_port) = (spec.port, spec.healthz_port);
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let pod = format!("keep-{node}");
    let before = agent.wait_pods(&[], POD_UP, |l| running(l, &pod).is_some());
    let container =
        running(&before, &pod).unwrap()["status"]["containerStatuses"][0]["containerID"].clone();
    let boxes = sandboxes(&endpoint, &node).await;
    assert_eq!(boxes.len(), 1);

    agent.signal(Signal::SIGKILL);
    agent.wait_exit(Duration::from_secs(10));
    drop(agent);

    let mut again = AgentSpec {
        config,
        port,
        healthz_port,
        node: node.clone(),
        ..AgentSpec::new(dir.path(), "restart", &endpoint)
    }
    .spawn();
    again.wait_healthy(START);
    let after = again.wait_pods(&[], POD_UP, |l| running(l, &pod).is_some());
    let p = running(&after, &pod).unwrap();
    assert_eq!(
        p["status"]["containerStatuses"][0]["containerID"],
        container
    );
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(sandboxes(&endpoint, &node).await, boxes, "no new sandbox");
    let log = again.stderr();
    assert!(log.contains("cpu_manager_state=\"restored\""), "{log}");
    assert!(!log.contains("started pod sandbox"), "{log}");
    drop(again);
    remove_pods(&endpoint, &node).await;
}

/// SIGTERM with graceful shutdown configured: READY=1 and watchdog pings before, then pods
/// stopped within the grace period, `graceful_node_shutdown_state` written, STOPPING=1, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("sigterm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut spec = AgentSpec::new(dir.path(), "sigterm", &endpoint)
        .config(OPEN_AUTH)
        .config("shutdownGracePeriod: 10s\nshutdownGracePeriodCriticalPods: 4s\n")
        .manifest("web.yaml", &sleep_pod("web", ""))
        .manifest(
            "critical.yaml",
            &sleep_pod("critical", "").replace(
                "  hostNetwork: true\n",
                "  hostNetwork: true\n  priorityClassName: system-node-critical\n",
            ),
        );
    spec.env = vec![
        ("NOTIFY_SOCKET".into(), notify.display().to_string()),
        ("WATCHDOG_USEC".into(), "3000000".into()),
    ];
    let node = spec.node.clone();
    // The harness clears NOTIFY_SOCKET and WATCHDOG_USEC unless a test sets them in `env`.
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let web = format!("web-{node}");
    let critical = format!("critical-{node}");
    agent.wait_pods(&[], POD_UP, |l| {
        running(l, &web).is_some() && running(l, &critical).is_some()
    });
    // Watchdog pings every 1.5 s: wait (however loaded the machine) until one has come.
    let mut messages = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !messages.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no WATCHDOG=1 within 30 s: {messages:?}\n{}",
            agent.stderr()
        );
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
        }
    }

    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", agent.stderr());

    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
    }
    assert!(
        messages.iter().any(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("WATCHDOG=1")),
        "{messages:?}"
    );
    let ready = messages.iter().position(|m| m.contains("READY=1")).unwrap();
    let stopping = messages
        .iter()
        .position(|m| m.contains("STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1: {messages:?}"));
    assert!(ready < stopping);

    let state = std::fs::read_to_string(agent.root().join("graceful_node_shutdown_state")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert!(state["startTime"].as_str().unwrap() <= state["endTime"].as_str().unwrap());
    assert!(
        !state["endTime"].as_str().unwrap().starts_with("0001"),
        "{state}"
    );
    assert!(sandboxes(&endpoint, &node).await.is_empty(), "pods stopped");
    let log = agent.stderr();
    // Regular pods first, then the critical group.
    let regular = log.find("priority=0").unwrap_or_else(|| panic!("{log}"));
    let critical_group = log
        .find("priority=2000000000")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(regular < critical_group, "{log}");
}

/// `--help` reads like the kubelet's and lists its flags.
#[test]
fn help_lists_kubelet_flags() {
    let out = Command::new(common::AGENT).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config <FILE>",
        "--config-dir <DIR>",
        "--root-dir",
        "--kubeconfig",
        "--container-runtime-endpoint",
        "--feature-gates",
        "--exit-on-lock-contention",
    ] {
        assert!(help.contains(flag), "{flag}:\n{help}");
    }
    assert!(help.contains("primary node agent"), "{help}");
}
