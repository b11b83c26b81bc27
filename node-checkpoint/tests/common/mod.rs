//! Shared set-up: a CRI test server on a Unix socket, a registry with one pod, the service
//! and its router (plain routing, as the agent mounts it behind its auth filter), with a
//! fallback answering like the agent's for paths no route serves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use node_checkpoint::test_support::CriTestServer;
use node_checkpoint::{CheckpointConfig, CheckpointService, router};
use node_runtime::{ContainerInfo, ContainerKind, ContainerState, PodInfo, PodPhase, PodRegistry};
use tower::ServiceExt;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub server: CriTestServer,
    pub registry: PodRegistry,
    pub service: Arc<CheckpointService>,
    pub app: Router,
}

pub fn container(name: &str, kind: ContainerKind, id: Option<&str>) -> ContainerInfo {
    ContainerInfo {
        name: name.to_owned(),
        kind,
        container_id: id.map(str::to_owned),
        image: "docker.io/library/busybox:local".to_owned(),
        state: ContainerState::Running { started_at: 1 },
        restart_count: 0,
        ready: true,
        log_path: None,
        image_id: None,
        last_state: None,
        started: None,
    }
}

pub fn pod(namespace: &str, name: &str, containers: Vec<ContainerInfo>) -> PodInfo {
    PodInfo {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: format!("uid-{namespace}-{name}"),
        source: node_runtime::PodSource::File(PathBuf::from("/etc/kubernetes/manifests/x.yaml")),
        pod: None,
        sandbox_id: Some("sandbox-1".to_owned()),
        pod_ips: Vec::new(),
        phase: PodPhase::Running,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers,
    }
}

impl Env {
    pub async fn new(tweak: impl FnOnce(&mut CheckpointConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = CriTestServer::start(dir.path()).unwrap();
        let registry = PodRegistry::new();
        registry.upsert(pod(
            "default",
            "web",
            vec![
                container("init", ContainerKind::Init, Some("ctr-init")),
                container("app", ContainerKind::Regular, Some("ctr-app")),
                container("sidecar", ContainerKind::Regular, None),
            ],
        ));
        registry.upsert(pod(
            "kube-system",
            "etcd-node-1.example",
            vec![container("etcd", ContainerKind::Regular, Some("ctr-etcd"))],
        ));
        let mut config = CheckpointConfig::new(dir.path().join("root"), "node-1");
        tweak(&mut config);
        let service = if config.enabled {
            CheckpointService::connect(config, &server.endpoint(), registry.clone())
                .await
                .unwrap()
        } else {
            CheckpointService::disabled(config, registry.clone())
        };
        let service = Arc::new(service);
        let app = router(service.clone())
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") });
        Self {
            dir,
            server,
            registry,
            service,
            app,
        }
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.dir.path().join("root/checkpoints")
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, String, Option<String>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), ctype)
    }

    pub async fn post(&self, uri: &str) -> (StatusCode, String) {
        let req = Request::post(uri).body(Body::empty()).unwrap();
        let (s, b, _) = self.send(req).await;
        (s, b)
    }
}

/// Every path under `dir`, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The archive path from a 200 body.
pub fn archive_of(body: &str) -> PathBuf {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    PathBuf::from(items[0].as_str().unwrap())
}
