//! The service's added latency: a checkpoint through `CheckpointService` and through the
//! HTTP router, against a direct CRI `CheckpointContainer` call to the same CRI test server
//! (a real tonic server on a Unix socket writing the same archive).
//!
//! References, each a direct CRI call plus:
//! * nothing (`direct_cri_call`);
//! * an fsync of the archive and of its directory (`direct_cri_call_plus_fsyncs`): durable,
//!   but the runtime wrote the final name itself, so that name existed before its content was
//!   durable and could have replaced an older archive: not what the service may do;
//! * the least a correct publish does (`direct_cri_call_durable_publish`): the runtime writes
//!   a temporary name, then fsync of the archive, `renameat2(RENAME_NOREPLACE)` to the final
//!   name, fsync of the directory. The name change comes after the data is durable, so the
//!   directory fsync has a journal commit of its own to wait for.
//!
//! Besides criterion's estimates, an interleaved loop (every contender once per round, so each
//! sees the same machine) prints p50/p90 per contender to stderr; it also runs the durable
//! publish with the service's former naming (hard link, directory fsync, unlink of the
//! temporary name: `direct_cri_call_link_publish`) to compare the two ways of naming.
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

    // One timed call per contender; each writes a fresh archive, and removing it is not timed.
    // Criterion and the interleaved loop below run the same functions.
    let direct = |i: u64| direct_call(&rt, &client, &direct_dir, i, false);
    // The same call plus fsync of the archive and of its directory (durable, but the runtime
    // wrote the final name itself: not a correct publish).
    let direct_fsyncs = |i: u64| direct_call(&rt, &client, &direct_dir, i, true);
    // The least a correct publish does: temporary name, fsync, no-replace rename, directory
    // fsync (see the crate doc above).
    let durable = |i: u64| durable_publish(&rt, &client, &direct_dir, i);
    let linked = |i: u64| link_publish(&rt, &client, &direct_dir, i);
    let served = |_: u64| {
        let start = Instant::now();
        let p = rt
            .block_on(service.checkpoint("default", "web", "app", None))
            .unwrap();
        let elapsed = start.elapsed();
        std::fs::remove_file(&p).unwrap();
        elapsed
    };
    let through_http = |_: u64| {
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
        let elapsed = start.elapsed();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        std::fs::remove_file(v["items"][0].as_str().unwrap()).unwrap();
        elapsed
    };
    let contenders: [(&str, &dyn Fn(u64) -> Duration); 6] = [
        ("direct_cri_call", &direct),
        ("direct_cri_call_plus_fsyncs", &direct_fsyncs),
        ("direct_cri_call_durable_publish", &durable),
        ("service", &served),
        ("http_router", &through_http),
        ("direct_cri_call_link_publish", &linked),
    ];

    let mut g = c.benchmark_group("checkpoint_latency");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(15));
    // The link naming is only in the interleaved loop.
    for (name, run) in &contenders[..5] {
        g.bench_function(*name, |b| b.iter_custom(|iters| (0..iters).map(run).sum()));
    }
    g.finish();

    // Interleaved: each round runs every contender once.
    let rounds: u64 = 200;
    let mut samples: [Vec<Duration>; 6] = Default::default();
    for i in 0..rounds {
        for ((_, run), out) in contenders.iter().zip(samples.iter_mut()) {
            out.push(run(i));
        }
    }
    for ((name, _), mut v) in contenders.iter().zip(samples) {
        v.sort();
        let at = |q: f64| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "an index into `v`: `q` is in 0..=1"
            )]
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v[i]
        };
        eprintln!(
            "checkpoint_latency interleaved {name}: p50 {:?} p90 {:?} ({rounds} rounds)",
            at(0.5),
            at(0.9)
        );
    }
    drop(server);
}

/// A direct CRI call to the final name, with (`fsyncs`) or without fsync of the archive and of
/// its directory. The archive is removed outside the timed region.
fn direct_call(
    rt: &tokio::runtime::Runtime,
    client: &CriClient,
    dir: &std::path::Path,
    i: u64,
    fsyncs: bool,
) -> Duration {
    let loc = dir.join(format!("d-{i}.tar"));
    let loc_s = loc.to_str().unwrap().to_owned();
    let start = Instant::now();
    rt.block_on(client.checkpoint_container("ctr-app", &loc_s, 120))
        .unwrap();
    if fsyncs {
        std::fs::File::open(&loc).unwrap().sync_all().unwrap();
        std::fs::File::open(dir).unwrap().sync_all().unwrap();
    }
    let elapsed = start.elapsed();
    std::fs::remove_file(&loc).unwrap();
    elapsed
}

/// The same with the naming the service used before: fsync of the archive, a hard link to
/// the final name (never replaces), fsync of the directory, unlink of the temporary name.
fn link_publish(
    rt: &tokio::runtime::Runtime,
    client: &CriClient,
    dir: &std::path::Path,
    i: u64,
) -> Duration {
    let temp = dir.join(format!(".tmp-l-{i}.tar"));
    let temp_s = temp.to_str().unwrap().to_owned();
    let name = dir.join(format!("l-{i}.tar"));
    let start = Instant::now();
    rt.block_on(client.checkpoint_container("ctr-app", &temp_s, 120))
        .unwrap();
    std::fs::File::open(&temp).unwrap().sync_all().unwrap();
    std::fs::hard_link(&temp, &name).unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
    std::fs::remove_file(&temp).unwrap();
    let elapsed = start.elapsed();
    std::fs::remove_file(name).unwrap();
    elapsed
}

/// A direct CRI call to a temporary name, then what a correct publish must do: fsync of the
/// archive, `renameat2(RENAME_NOREPLACE)` to the final name, fsync of the directory. The
/// final name is removed outside the timed region.
fn durable_publish(
    rt: &tokio::runtime::Runtime,
    client: &CriClient,
    dir: &std::path::Path,
    i: u64,
) -> Duration {
    let temp = dir.join(format!(".tmp-{i}.tar"));
    let temp_s = temp.to_str().unwrap().to_owned();
    let name = format!("c-{i}.tar");
    let start = Instant::now();
    rt.block_on(client.checkpoint_container("ctr-app", &temp_s, 120))
        .unwrap();
    std::fs::File::open(&temp).unwrap().sync_all().unwrap();
    let d = std::fs::File::open(dir).unwrap();
    nix::fcntl::renameat2(
        &d,
        temp.file_name().unwrap(),
        &d,
        name.as_str(),
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .unwrap();
    d.sync_all().unwrap();
    let elapsed = start.elapsed();
    std::fs::remove_file(dir.join(name)).unwrap();
    elapsed
}

criterion_group!(benches, bench);
criterion_main!(benches);
