//! Run the static pods of a manifest directory on a CRI runtime until Ctrl-C, printing each
//! pod's phase and containers as they change. Passes run when containerd reports a change
//! (`RuntimeWatch`) and every 10 s while the pods are settled (so a manifest edit shows within
//! 10 s); every second while a pod has work or the runtime has no events API.
//!
//! ```text
//! cargo run -p examples --example static_pod -- ENDPOINT MANIFEST_DIR [NODE_NAME]
//! # e.g. with the test harness's private containerd:
//! bash scripts/containerd.sh start /tmp/cri && eval "$(bash scripts/containerd.sh env /tmp/cri)"
//! cargo run -p examples --example static_pod -- "$NODE_TEST_CRI_ENDPOINT" examples/manifests
//! ```
//! Pod files go under `./example-root` (volumes) and `./example-logs` (container logs).
#![allow(clippy::print_stdout)] // an example prints what it sees

use std::time::Duration;

use node_runtime::{
    ClientOptions, CriClient, NodePaths, PodManager, RuntimeWatch, StaticPodSource, SyncOptions,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(endpoint), Some(manifests)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: static_pod ENDPOINT MANIFEST_DIR [NODE_NAME]");
    };
    let node_name = args.next().unwrap_or_else(|| "example-node".to_owned());
    let client = CriClient::connect(&endpoint, &ClientOptions::default()).await?;
    let v = client.version();
    println!(
        "connected to {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );
    let events = RuntimeWatch::start(&client);
    let cwd = std::env::current_dir()?;
    let paths = NodePaths {
        root_dir: cwd.join("example-root"),
        pod_logs_dir: cwd.join("example-logs"),
    };
    let mut manager = PodManager::new(
        client,
        StaticPodSource::new(&manifests, &node_name),
        SyncOptions::new(&node_name, paths),
    );
    let registry = manager.registry();
    let mut last = String::new();
    loop {
        let report = manager.sync_once().await;
        let mut now = String::new();
        for pod in registry.list() {
            now.push_str(&format!("{}/{} {:?}\n", pod.namespace, pod.name, pod.phase));
            for c in &pod.containers {
                now.push_str(&format!(
                    "  {} restarts={} {:?}\n",
                    c.name, c.restart_count, c.state
                ));
            }
        }
        for e in registry.manifest_errors() {
            now.push_str(&format!("error: {e}\n"));
        }
        if now != last {
            print!("---\n{now}");
            last = now;
        }
        for e in report
            .errors
            .iter()
            .filter(|e| !e.starts_with("invalid static pod manifest"))
        {
            println!("sync error: {e}");
        }
        let period = if report.settled && events.is_live() {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = events.changed() => {}
            () = tokio::time::sleep(period) => {}
        }
    }
    println!("stopping and removing the pods");
    manager.remove_all().await?;
    Ok(())
}
