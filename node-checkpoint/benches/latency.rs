//! The service's added latency: a checkpoint through `CheckpointService` and through the
//! HTTP router, against a direct CRI `CheckpointContainer` call to the same CRI test server
//! (a real tonic server on a Unix socket writing the same archive).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use node_checkpoint::test_support::CriTestServer;
use node_checkpoint::{CheckpointConfig, CheckpointService, router};
use node_runtime::{
    ClientOptions, ContainerInfo, ContainerKind, ContainerState, CriClient, PodInfo, PodPhase,
    PodRegistry,
};
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = rt.block_on(async { CriTestServer::start(tmp.path()).unwrap() });
    let client = rt.block_on(async {
        CriClient::connect(&server.endpoint(), &ClientOptions::default())
            .await
            .unwrap()
    });
    let registry = PodRegistry::new();
    registry.upsert(PodInfo {
        namespace: "default".to_owned(),
        name: "web".to_owned(),
        uid: "uid-1".to_owned(),
        source: node_runtime::PodSource::File(PathBuf::from("/etc/kubernetes/manifests/web.yaml")),
        pod: None,
        sandbox_id: Some("sb".to_owned()),
        pod_ips: Vec::new(),
        phase: PodPhase::Running,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers: vec![ContainerInfo {
            name: "app".to_owned(),
            kind: ContainerKind::Regular,
            container_id: Some("ctr-app".to_owned()),
            image: "busybox".to_owned(),
            state: ContainerState::Running { started_at: 1 },
            restart_count: 0,
            ready: true,
            log_path: None,
            image_id: None,
            last_state: None,
            started: None,
        }],
    });
    let service = Arc::new(
        CheckpointService::new(
            CheckpointConfig::new(tmp.path().join("root"), "node-1"),
            client.clone(),
            registry,
        )
        .unwrap(),
    );
    let app = router(service.clone());
    let direct_dir = tmp.path().join("direct");
    std::fs::create_dir(&direct_dir).unwrap();

    let mut g = c.benchmark_group("checkpoint_latency");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(15));
    // Each contender writes a fresh archive per call; removing it is not timed.
    g.bench_function("direct_cri_call", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let loc = direct_dir.join(format!("a-{i}.tar"));
                let loc_s = loc.to_str().unwrap().to_owned();
                let start = Instant::now();
                rt.block_on(client.checkpoint_container("ctr-app", &loc_s, 120))
                    .unwrap();
                total += start.elapsed();
                std::fs::remove_file(&loc).unwrap();
            }
            total
        });
    });
    // The same call plus what the service adds on disk: fsync of the archive and of its
    // directory (so a reported archive survives a crash).
    g.bench_function("direct_cri_call_plus_fsyncs", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let loc = direct_dir.join(format!("b-{i}.tar"));
                let loc_s = loc.to_str().unwrap().to_owned();
                let start = Instant::now();
                rt.block_on(client.checkpoint_container("ctr-app", &loc_s, 120))
                    .unwrap();
                std::fs::File::open(&loc).unwrap().sync_all().unwrap();
                std::fs::File::open(&direct_dir)
                    .unwrap()
                    .sync_all()
                    .unwrap();
                total += start.elapsed();
                std::fs::remove_file(&loc).unwrap();
            }
            total
        });
    });
    g.bench_function("service", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let p = rt
                    .block_on(service.checkpoint("default", "web", "app", None))
                    .unwrap();
                total += start.elapsed();
                std::fs::remove_file(&p).unwrap();
            }
            total
        });
    });
    g.bench_function("http_router", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let resp = rt
                    .block_on(
                        app.clone().oneshot(
                            http::Request::post("/checkpoint/default/web/app")
                                .body(Body::empty())
                                .unwrap(),
                        ),
                    )
                    .unwrap();
                let body = rt
                    .block_on(http_body_util::BodyExt::collect(resp.into_body()))
                    .unwrap()
                    .to_bytes();
                total += start.elapsed();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                std::fs::remove_file(v["items"][0].as_str().unwrap()).unwrap();
            }
            total
        });
    });
    g.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
