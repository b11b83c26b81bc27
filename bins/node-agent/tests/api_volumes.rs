//! Pods as users write them, with the real `node-agent`, the test run's containerd and
//! node-heartbeat's test API server: configMap, secret, downwardAPI and projected volumes
//! (a service-account token requested from the API server and rotated), `env` from configMaps,
//! secrets, the pod's fields and the services, and a configMap change reaching the mounted
//! volume through the `..data` swap; secrets on tmpfs, unmounted when the pod goes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, api_pod, remove_pods};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use node_heartbeat::testserver::TestApiServer;

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);

fn log_text(logs: &Path) -> String {
    let mut out = String::new();
    for d in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        if d.file_name().to_string_lossy().contains("_files_") {
            let text = std::fs::read_to_string(d.path().join("app/0.log")).unwrap_or_default();
            for l in text.lines() {
                if let Some(m) = l.splitn(4, ' ').nth(3) {
                    out.push_str(m);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn mounted_tmpfs(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(1) == Some(&path.to_str().unwrap()) && f.get(2) == Some(&"tmpfs")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_volumes_and_env_follow_the_api_server() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("api_volumes") else {
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let json = |v: serde_json::Value| v;
    server.put_config_map(
        serde_json::from_value::<ConfigMap>(json(serde_json::json!({
            "metadata": {"name": "app-config", "namespace": "default"},
            "data": {"greeting": "hello", "mode": "fast"}
        })))
        .unwrap(),
    );
    server.put_secret(
        serde_json::from_value::<Secret>(serde_json::json!({
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": "aHVudGVyMg=="}
        }))
        .unwrap(),
    );
    for (name, ip, port) in [
        ("kubernetes", "10.96.0.1", 443),
        ("web-front", "10.96.0.20", 80),
    ] {
        server.put_service(
            serde_json::from_value::<Service>(serde_json::json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [{"name": "main", "port": port, "protocol": "TCP"}]}
            }))
            .unwrap(),
        );
    }
    // Tokens that expire at once: each pass asks for a new one.
    server.set_token_lifetime(Some(Duration::from_secs(60)));

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "api_volumes", &endpoint)
        .config(&format!(
            "{OPEN_AUTH}{}syncFrequency: 2s\nfileCheckFrequency: 2s\n",
            common::NO_PRESSURE
        ))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    let extra = serde_json::json!({
        "serviceAccountName": "builder",
        "volumes": [
            {"name": "cfg", "configMap": {"name": "app-config"}},
            {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 256}},
            {"name": "bundle", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
            ]}}
        ],
        "containers": [{
            "name": "app", "image": node_runtime::test_support::test_image(), "imagePullPolicy": "Never",
            "command": ["/bin/sh", "-c", "env | sort; while true; do echo greeting=$(cat /cfg/greeting) password=$(cat /sec/password) name=$(cat /bundle/name); sleep 1; done"],
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/cfg"},
                {"name": "sec", "mountPath": "/sec"},
                {"name": "bundle", "mountPath": "/bundle"}
            ],
            "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "SEC_"}],
            "env": [
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MESSAGE", "value": "$(GREETING) from $(MY_NODE)"}
            ]
        }]
    });
    server
        .create_pod(api_pod("files", &node, &extra.to_string()))
        .unwrap();
    let logs = dir.path().join("logs");
    let deadline = Instant::now() + POD_UP;
    while !log_text(&logs).contains("greeting=hello password=hunter2 name=files") {
        assert!(
            Instant::now() < deadline,
            "the pod never read its files; log:\n{}\nstatus: {:?}\nagent:\n{}",
            log_text(&logs),
            server.pod("default", "files").and_then(|p| p.status),
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = log_text(&logs);
    for want in [
        "GREETING=hello",
        "SEC_password=hunter2",
        &format!("MY_NODE={node}"),
        &format!("MESSAGE=hello from {node}"),
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
        "KUBERNETES_SERVICE_PORT=443",
        "WEB_FRONT_SERVICE_HOST=10.96.0.20",
        "WEB_FRONT_PORT=tcp://10.96.0.20:80",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("MY_IP=") && l.len() > "MY_IP=".len()),
        "{text}"
    );

    // On the node: the kubelet's layout, the secret on tmpfs with its mode.
    let uid = server
        .pod("default", "files")
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let pod_dir = agent.root().join("pods").join(&uid);
    let volume =
        |plugin: &str, name: &str| -> PathBuf { pod_dir.join("volumes").join(plugin).join(name) };
    let cfg = volume("kubernetes.io~configmap", "cfg");
    let sec = volume("kubernetes.io~secret", "sec");
    let bundle = volume("kubernetes.io~projected", "bundle");
    let data_before = std::fs::read_link(cfg.join("..data")).unwrap();
    assert!(
        data_before.to_str().unwrap().starts_with("..20"),
        "{data_before:?}"
    );
    assert_eq!(
        std::fs::read_link(cfg.join("greeting")).unwrap(),
        Path::new("..data/greeting")
    );
    assert!(mounted_tmpfs(&sec) && mounted_tmpfs(&bundle) && !mounted_tmpfs(&cfg));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sec.join("password"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400);

    // The token was requested for the pod, and is rotated.
    let requests = server.token_requests();
    let first = requests.first().expect("a TokenRequest");
    assert_eq!(first.namespace, "default");
    assert_eq!(first.service_account, "builder");
    assert_eq!(first.request.spec.audiences, vec!["vault".to_owned()]);
    assert_eq!(first.request.spec.expiration_seconds, Some(600));
    let bound = first.request.spec.bound_object_ref.as_ref().unwrap();
    assert_eq!(
        (
            bound.kind.as_deref(),
            bound.name.as_deref(),
            bound.uid.as_deref()
        ),
        (Some("Pod"), Some("files"), Some(uid.as_str()))
    );
    let token1 = std::fs::read_to_string(bundle.join("token")).unwrap();
    wait_until("the token is rotated", POD_UP, || {
        std::fs::read_to_string(bundle.join("token")).is_ok_and(|t| t != token1)
    })
    .await;

    // A configMap change reaches the running container through the ..data swap.
    server.put_config_map(
        serde_json::from_value::<ConfigMap>(serde_json::json!({
            "metadata": {"name": "app-config", "namespace": "default"},
            "data": {"greeting": "bye", "mode": "fast"}
        }))
        .unwrap(),
    );
    wait_until("the container sees the new value", POD_UP, || {
        log_text(&logs).contains("greeting=bye password=hunter2")
    })
    .await;
    let data_after = std::fs::read_link(cfg.join("..data")).unwrap();
    assert_ne!(data_before, data_after);
    assert!(
        !cfg.join(&data_before).exists(),
        "the old data directory is removed"
    );

    // Deleting the pod unmounts its tmpfs volumes and removes its directory.
    server.delete_pod("default", "files", Some(2)).unwrap();
    wait_until("the pod is gone", POD_UP, || {
        server.pod("default", "files").is_none()
    })
    .await;
    wait_until("the pod directory is removed", POD_UP, || !pod_dir.exists()).await;
    assert!(!mounted_tmpfs(&sec) && !mounted_tmpfs(&bundle));
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
