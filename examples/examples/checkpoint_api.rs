//! The kubelet checkpoint API end to end, on a real HTTP port and a real CRI server.
//!
//! containerd 1.6 cannot checkpoint and CRIU may not run here, so the runtime is
//! `node-checkpoint`'s CRI test server (a tonic server on a Unix socket that writes a
//! containerd-style archive). The example registers a pod, serves the checkpoint route on
//! 127.0.0.1 behind node-server's filter (here the kubelet's command-line defaults:
//! anonymous + AlwaysAllow; the agent uses `KubeletAuth` and TLS), POSTs
//! `/checkpoint/default/web/app`, then inspects the archive and searches its memory pages for a
//! secret.
//!
//! `cargo run -p examples --example checkpoint_api`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use node_checkpoint::test_support::CriTestServer;
use node_checkpoint::{CheckpointConfig, CheckpointService, InspectOptions, inspect_file, router};
use node_runtime::{
    ClientOptions, ContainerInfo, ContainerKind, ContainerState, CriClient, PodInfo, PodPhase,
    PodRegistry,
};
use node_server::{AlwaysAllow, page_not_found, secured};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cri = CriTestServer::start(dir.path())?;
    let client = CriClient::connect(&cri.endpoint(), &ClientOptions::default()).await?;

    // Normally PodManager fills the registry from the static pods it runs.
    let registry = PodRegistry::new();
    registry.upsert(PodInfo {
        namespace: "default".to_owned(),
        name: "web".to_owned(),
        uid: "6f1c9c1e-0000-4000-8000-000000000001".to_owned(),
        source: node_runtime::PodSource::File(PathBuf::from("/etc/kubernetes/manifests/web.yaml")),
        pod: None,
        sandbox_id: Some("sandbox".to_owned()),
        pod_ips: Vec::new(),
        phase: PodPhase::Running,
        reason: None,
        message: None,
        conditions: Vec::new(),
        containers: vec![ContainerInfo {
            name: "app".to_owned(),
            kind: ContainerKind::Regular,
            container_id: Some("4c3f0e2b9d1a".to_owned()),
            image: "docker.io/library/busybox:local".to_owned(),
            state: ContainerState::Running { started_at: 0 },
            restart_count: 0,
            ready: true,
            log_path: None,
            image_id: None,
            last_state: None,
            started: None,
        }],
    });

    let config = CheckpointConfig::new(dir.path().join("var-lib-kubelet"), "node-1");
    let service = Arc::new(CheckpointService::new(config, client, registry)?);
    let routes = router(service.clone()).fallback(page_not_found);
    let app = secured(routes, Arc::new(AlwaysAllow), "node-1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    for path in [
        "/checkpoint/default/web/app",
        "/checkpoint/default/web/nope",
        "/checkpoint/default/web/app?timeout=400000000000",
    ] {
        let (head, body) = post(addr, path).await?;
        println!("POST {path}\n  {head}\n  {body}");
    }

    let archive = std::fs::read_dir(service.checkpoints_dir())?
        .next()
        .context("no archive written")??
        .path();
    let report = inspect_file(
        &archive,
        &InspectOptions::default()
            .with_memory(true)
            .with_search(b"PASSWORD="),
    )?;
    println!(
        "\n{}: container {:?}, image {:?}, engine {}, {} bytes of memory pages",
        archive.display(),
        report.container.unwrap_or_default(),
        report.image.unwrap_or_default(),
        report.engine,
        report.memory_pages_size
    );
    for m in report.search.map(|s| s.matches).unwrap_or_default() {
        let pid = m.pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
        println!(
            "  secret in {} at offset {} (pid {pid}): {}",
            m.file, m.offset, m.context
        );
    }
    Ok(())
}

/// A minimal HTTP/1.1 POST: status line and body.
async fn post(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let head = resp.lines().next().unwrap_or_default().to_owned();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Ok((head, body))
}
