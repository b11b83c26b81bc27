//! Whole-process figures for pods from the API server, against the same pods as static pods
//! (docs/benchmarks.md "node-agent: pods from the API server"):
//!
//! 1. start-up latency, ROUNDS (default 5) times each, one pod at a time: a busybox pod created
//!    on the API server until the API server shows it Running and Ready (watch, admission, sync,
//!    status patch), against the same pod written as a manifest until the agent's `/pods`
//!    shows it Running and Ready (directory watch, sync);
//! 2. footprint: PODS (default 30) API pods running, the agent idle for SETTLE (10) s, then
//!    its CPU (`/proc/PID/stat` utime + stime) and memory (`VmRSS`, `VmHWM`) over DURATION
//!    (60) s, with the run's containerd as reference in the same window.
//!
//! Run with the test run's containerd (scripts/containerd.sh; `NODE_TEST_CRI_ENDPOINT` etc.) as
//! root: `cargo bench -p node-agent --bench cluster_pods` (the agent is built with the bench
//! profile: optimized). The API server is node-heartbeat's test API server, in this process
//! (its CPU is not counted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, api_pod, curl, remove_pods, running, sleep_pod};
use node_heartbeat::testserver::TestApiServer;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn api_ready(server: &TestApiServer, name: &str) -> bool {
    server
        .pod("default", name)
        .and_then(|p| p.status)
        .is_some_and(|st| {
            st.phase.as_deref() == Some("Running")
                && st
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

async fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// utime + stime of `pid` in seconds, and VmRSS / VmHWM in KiB.
fn sample(pid: i32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks as f64 / hz, kib("VmRSS:"), kib("VmHWM:"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it as a test: skip that.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("cluster_pods bench") else {
        return;
    };
    let rounds = env_num("ROUNDS", 5);
    let pods = env_num("PODS", 30);
    let duration = env_num("DURATION", 60);
    let settle = env_num("SETTLE", 10);
    let server = TestApiServer::start().await.unwrap();
    server.set_recording(false);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = common::write_kubeconfig(dir.path(), &server.url());
    let spec = AgentSpec::new(dir.path(), "bench", &endpoint)
        .config(&format!(
            "{OPEN_AUTH}evictionHard:\n  memory.available: 1Mi\n"
        ))
        .args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let node = spec.node.clone();
    let manifests = dir.path().join("manifests");
    let mut agent = spec.spawn();
    agent.wait_healthy(Duration::from_secs(60));
    wait("the Node", Duration::from_secs(60), || {
        server.node(&node).is_some()
    })
    .await;

    // 1. Latency, alternating so that both see the same machine state.
    let (mut api, mut file) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let name = format!("api-{i}");
        let t0 = Instant::now();
        server.create_pod(api_pod(&name, &node, "")).unwrap();
        wait(&name, Duration::from_secs(60), || api_ready(&server, &name)).await;
        api.push(t0.elapsed().as_secs_f64());
        server.delete_pod("default", &name, Some(2)).unwrap();
        wait("the API pod gone", Duration::from_secs(60), || {
            server.pod("default", &name).is_none()
        })
        .await;

        let name = format!("file-{i}");
        let full = format!("{name}-{node}");
        let t0 = Instant::now();
        std::fs::write(manifests.join(format!("{name}.yaml")), sleep_pod(&name, "")).unwrap();
        let url = agent.url("/pods");
        // curl blocks: off the runtime's workers, which serve the test API server.
        let get = |url: &str| tokio::task::block_in_place(|| curl(&[url]));
        wait(&name, Duration::from_secs(60), || {
            let r = get(&url);
            r.status == 200
                && serde_json::from_str::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|l| running(&l, &full).map(|p| p["status"]["conditions"].to_string()))
                    .is_some_and(|c| {
                        c.contains(r#""type":"Ready""#) && !c.contains(r#""status":"False""#)
                    })
        })
        .await;
        file.push(t0.elapsed().as_secs_f64());
        // Gone before the next round, as the API pod is.
        std::fs::remove_file(manifests.join(format!("{name}.yaml"))).unwrap();
        wait("the static pod gone", Duration::from_secs(60), || {
            let r = get(&url);
            r.status == 200 && !r.body.contains(&format!("\"{full}\""))
        })
        .await;
    }
    let (api_ms, file_ms) = (median(api.clone()) * 1000.0, median(file.clone()) * 1000.0);
    println!(
        "latency, {rounds} rounds (median ms): API pod created -> Running+Ready on the API server {api_ms:.0}; static pod written -> Running+Ready in /pods {file_ms:.0}; ratio {:.2}",
        api_ms / file_ms
    );
    println!("  api: {api:.3?}\n  file: {file:.3?}");

    // 2. Footprint with PODS API pods.
    for i in 0..pods {
        server
            .create_pod(api_pod(&format!("idle-{i}"), &node, ""))
            .unwrap();
    }
    wait("every API pod Running", Duration::from_secs(300), || {
        (0..pods).all(|i| api_ready(&server, &format!("idle-{i}")))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let containerd: i32 = std::fs::read_to_string(
        std::path::Path::new(&std::env::var("NODE_TEST_CONTAINERD_DIR").unwrap())
            .join("containerd.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let requests0 = server.requests_total();
    let (a0, _, _) = sample(agent.pid());
    let (c0, _, _) = sample(containerd);
    let mut rss = (Vec::new(), Vec::new());
    for _ in 0..duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.0.push(sample(agent.pid()).1 as f64);
        rss.1.push(sample(containerd).1 as f64);
    }
    let (a1, _, a_hwm) = sample(agent.pid());
    let (c1, _, c_hwm) = sample(containerd);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 / 1024.0;
    let secs = duration as f64;
    println!(
        "footprint, {pods} API pods, {duration} s: node-agent {:.4} core, RSS mean {:.1} MiB, VmHWM {:.1} MiB; containerd {:.4} core, RSS mean {:.1} MiB, VmHWM {:.1} MiB; API requests {} ({:.2}/s)",
        (a1 - a0) / secs,
        mean(&rss.0),
        a_hwm as f64 / 1024.0,
        (c1 - c0) / secs,
        mean(&rss.1),
        c_hwm as f64 / 1024.0,
        server.requests_total() - requests0,
        (server.requests_total() - requests0) as f64 / secs,
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
