//! Hollow nodes: one process runs N simulated nodes with `node_heartbeat::hollow::Fleet` (the
//! code behind `nodectl hollow-nodes`: every node runs the agent's lease and status loops, all
//! share one API client bounded to 32 requests in flight) against the test API server running
//! in a child process, at the kubelet's default intervals (lease 10 s with 4% jitter, status
//! computed every 10 s, sent on change or every 5 min). Nodes start at 500 per second.
//!
//! `cargo bench -p node-heartbeat --bench hollow_nodes` measures, per N in `HOLLOW_NODES`
//! (default `1000`): CPU (utime+stime from /proc) and RSS growth of the nodes process per
//! node over a `HOLLOW_SECS`-second window (default 60) after all nodes started and a 25 s
//! warm-up, the server process's CPU for the same traffic (the same-run reference), and whether
//! every lease stayed on time (longest gap between two renewals of any lease as seen by the
//! server, and as seen by the fleet).
//! Without `--bench` (e.g. `cargo test --benches`) it runs a 20-node smoke version (11 s warm-up, 11 s window).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use node_heartbeat::KubeBackend;
use node_heartbeat::hollow::{Fleet, FleetConfig};
use node_heartbeat::testserver::TestApiServer;

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

struct Outcome {
    nodes: usize,
    window: f64,
    cpu_nodes: f64,
    cpu_server: f64,
    rss_per_node_kib: f64,
    rss_total_kib: u64,
    max_gap_ms: u64,
    client_gap_ms: u64,
    renewals: u64,
    leases: u64,
    errors: u64,
}

/// Runs a fleet of `n` hollow nodes (`node_heartbeat::hollow::Fleet`: the product's code, one
/// shared client) in this process until all have started plus `warmup`, then measures a
/// `window`.
fn measure(n: usize, warmup: Duration, window: Duration, url: &str, server_pid: u32) -> Outcome {
    let me = std::process::id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rss0 = rss_kib(me);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = FleetConfig::new("hollow-", u32::try_from(n).unwrap());
    let backend = rt
        .block_on(async { KubeBackend::for_url(url, Duration::from_secs(10)) })
        .unwrap();
    let fleet = Fleet::new(backend, cfg).unwrap();
    let handle = fleet.stats();
    let running = rt.spawn(fleet.run(async move {
        let _ = stop_rx.await;
    }));
    rt.block_on(async {
        // Registration, first status and first leases of every node, then the warm-up.
        while handle.snapshot().started < n as u64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(warmup).await;
    });
    let (c0, s0) = (cpu_secs(me), cpu_secs(server_pid));
    rt.block_on(async {
        http(url, "POST", "/debug/renewals/reset").await;
    });
    handle.reset();
    let t0 = Instant::now();
    rt.block_on(async { tokio::time::sleep(window).await });
    let elapsed = t0.elapsed().as_secs_f64();
    let (c1, s1) = (cpu_secs(me), cpu_secs(server_pid));
    let rss1 = rss_kib(me);
    let stats = rt.block_on(http(url, "GET", "/debug/renewals"));
    let _ = stop_tx.send(());
    let client = rt.block_on(running).unwrap();
    rt.shutdown_timeout(Duration::from_secs(5));
    Outcome {
        nodes: n,
        window: elapsed,
        cpu_nodes: (c1 - c0) / elapsed,
        cpu_server: (s1 - s0) / elapsed,
        rss_per_node_kib: rss1.saturating_sub(rss0) as f64 / n as f64,
        rss_total_kib: rss1,
        max_gap_ms: stats["maxGapMs"].as_u64().unwrap_or(0),
        client_gap_ms: client.max_renewal_gap_ms,
        renewals: stats["renewals"].as_u64().unwrap_or(0),
        leases: stats["leases"].as_u64().unwrap_or(0),
        errors: client.request_errors,
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
        "| nodes | window s | nodes-process CPU (cores) | per node (millicores) | server CPU (cores, reference) | ratio nodes/server | RSS growth per node (KiB) | nodes-process RSS (MiB) | renewals in window | longest lease gap, server (ms) | longest lease gap, fleet (ms) | failed requests | on time (gap <= 10400 ms + 600 ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
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
            "| {} | {:.1} | {:.3} | {:.4} | {:.3} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
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
            o.client_gap_ms,
            o.errors,
            if on_time { "yes" } else { "NO" }
        );
        if !full {
            assert_eq!(
                usize::try_from(o.leases).unwrap(),
                n,
                "every hollow node must hold a lease"
            );
            assert!(on_time, "leases late in the smoke run: {} ms", o.max_gap_ms);
            assert_eq!(o.errors, 0, "failed requests in the smoke run's window");
        }
    }
}
