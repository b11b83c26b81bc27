//! Hollow nodes: one process runs N nodes' lease and status loops (each node with its own API
//! client and connection pool, as N kubelets would have) against the test API server running
//! in a child process, at the kubelet's default intervals (lease 10 s with 4% jitter, status
//! computed every 10 s, sent on change or every 5 min).
//!
//! `cargo bench -p node-heartbeat --bench hollow_nodes` measures, per N in `HOLLOW_NODES`
//! (default `1000`): CPU (utime+stime from /proc) and RSS growth of the nodes process per
//! node over a `HOLLOW_SECS`-second window (default 60) after a warm-up, the server process's
//! CPU for the same traffic (the same-run reference), and whether every lease stayed on time
//! (longest gap between two renewals of any lease as seen by the server).
//! Without `--bench` (e.g. `cargo test --benches`) it runs a 20-node smoke version (11 s warm-up, 11 s window).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use node_heartbeat::testserver::TestApiServer;
use node_heartbeat::{
    KubeBackend, LeaseConfig, LeaseController, MachineFacts, NodeStatusInputs, NodeStatusReporter,
    RuntimeHealth, RuntimeVersion, SharedInputs, StatusConfig,
};

fn clk_tck() -> f64 {
    100.0
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clk_tck()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn run_server() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = TestApiServer::start().await.unwrap();
        server.set_recording(false);
        println!("{}", server.url());
        std::io::stdout().flush().unwrap();
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
        drop(server);
    });
}

async fn http(url: &str, method: &str, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hostport = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("{}");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

fn inputs(name: &str) -> SharedInputs {
    let machine = MachineFacts {
        num_cores: 4,
        memory_bytes: 16 << 30,
        hugepages: vec![],
        machine_id: format!("{:032x}", name.len()),
        system_uuid: "4C4C4544-0042-3510-8052-B4C04F564433".into(),
        boot_id: "b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11".into(),
        kernel_version: "6.18.0".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
    };
    let mut i = NodeStatusInputs::new(name, machine);
    i.capacity.ephemeral_storage_bytes = Some(100 << 30);
    i.runtime_version = Some(RuntimeVersion {
        name: "containerd".into(),
        version: "1.6.20".into(),
    });
    i.runtime_health = RuntimeHealth::healthy(tokio::time::Instant::now().into_std());
    SharedInputs::new(i, name)
}

struct Outcome {
    nodes: usize,
    window: f64,
    cpu_nodes: f64,
    cpu_server: f64,
    rss_per_node_kib: f64,
    rss_total_kib: u64,
    max_gap_ms: u64,
    renewals: u64,
    leases: u64,
}

fn measure(n: usize, warmup: Duration, window: Duration, url: &str, server_pid: u32) -> Outcome {
    let me = std::process::id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rss0 = rss_kib(me);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let url_owned = url.to_owned();
    rt.block_on(async {
        for k in 0..n {
            let name = format!("hollow-{k:05}");
            let backend =
                Arc::new(KubeBackend::for_url(&url_owned, Duration::from_secs(10)).unwrap());
            let src = inputs(&name);
            // The runtime answers every 5 s (updateRuntimeUp).
            let rt_src = src.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    rt_src.update(|i| {
                        i.runtime_health.last_sync = Some(tokio::time::Instant::now().into_std())
                    });
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            });
            let reporter = NodeStatusReporter::new(backend.clone(), src, StatusConfig::new(&name));
            let lease = LeaseController::new(backend, LeaseConfig::new(&name, 40));
            let mut s1 = stop_rx.clone();
            let mut s2 = stop_rx.clone();
            tokio::spawn(reporter.run(async move {
                let _ = s1.changed().await;
            }));
            tokio::spawn(lease.run(async move {
                let _ = s2.changed().await;
            }));
            // Stagger start-up a little, as real nodes do not all boot in the same millisecond.
            if k % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // Warm-up: registration, first status, first leases, then two renewal periods.
        tokio::time::sleep(warmup).await;
    });
    let (c0, s0) = (cpu_secs(me), cpu_secs(server_pid));
    rt.block_on(async {
        http(url, "POST", "/debug/renewals/reset").await;
    });
    let t0 = Instant::now();
    rt.block_on(async { tokio::time::sleep(window).await });
    let elapsed = t0.elapsed().as_secs_f64();
    let (c1, s1) = (cpu_secs(me), cpu_secs(server_pid));
    let rss1 = rss_kib(me);
    let stats = rt.block_on(http(url, "GET", "/debug/renewals"));
    let _ = stop_tx.send(true);
    rt.shutdown_timeout(Duration::from_secs(5));
    Outcome {
        nodes: n,
        window: elapsed,
        cpu_nodes: (c1 - c0) / elapsed,
        cpu_server: (s1 - s0) / elapsed,
        rss_per_node_kib: rss1.saturating_sub(rss0) as f64 / n as f64,
        rss_total_kib: rss1,
        max_gap_ms: stats["maxGapMs"].as_u64().unwrap_or(0),
        renewals: stats["renewals"].as_u64().unwrap_or(0),
        leases: stats["leases"].as_u64().unwrap_or(0),
    }
}

fn main() {
    if std::env::var_os("HOLLOW_ROLE").is_some_and(|r| r == "server") {
        run_server();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let counts: Vec<usize> = if full {
        std::env::var("HOLLOW_NODES")
            .unwrap_or_else(|_| "1000".into())
            .split(',')
            .map(|s| s.trim().parse().unwrap())
            .collect()
    } else {
        vec![20]
    };
    let secs: u64 = if full {
        std::env::var("HOLLOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60)
    } else {
        11
    };
    println!(
        "| nodes | window s | nodes-process CPU (cores) | per node (millicores) | server CPU (cores, reference) | ratio nodes/server | RSS growth per node (KiB) | nodes-process RSS (MiB) | renewals in window | longest lease gap (ms) | on time (gap <= 10400 ms + 600 ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for n in counts {
        // A fresh server process per size.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("HOLLOW_ROLE", "server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        let url = url.trim().to_owned();
        let warmup = Duration::from_secs(if full { 25 } else { 11 });
        let o = measure(n, warmup, Duration::from_secs(secs), &url, child.id());
        drop(child.stdin.take());
        let _ = child.wait();
        let on_time = o.max_gap_ms <= 11_000 && usize::try_from(o.leases).unwrap() == o.nodes;
        println!(
            "| {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.2} | {:.1} | {:.1} | {} | {} | {} |",
            o.nodes,
            o.window,
            o.cpu_nodes,
            o.cpu_nodes * 1000.0 / o.nodes as f64,
            o.cpu_server,
            if o.cpu_server > 0.0 {
                o.cpu_nodes / o.cpu_server
            } else {
                f64::NAN
            },
            o.rss_per_node_kib,
            o.rss_total_kib as f64 / 1024.0,
            o.renewals,
            o.max_gap_ms,
            if on_time { "yes" } else { "NO" }
        );
        if !full {
            assert_eq!(
                usize::try_from(o.leases).unwrap(),
                n,
                "every hollow node must hold a lease"
            );
            assert!(on_time, "leases late in the smoke run: {} ms", o.max_gap_ms);
        }
    }
}
