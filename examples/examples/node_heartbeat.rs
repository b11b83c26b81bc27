//! node-heartbeat: this machine's node status, registered and kept alive against the in-process
//! test API server, with the lease renewed and the systemd watchdog pinging a notify socket.
//!
//! `cargo run -p examples --example node_heartbeat`
//!
//! Shortened intervals (lease 2 s, status 1 s) so the example finishes in a few seconds; the
//! defaults are the kubelet's (10 s and 10 s, report every 5 min).
#![allow(clippy::print_stdout)] // an example prints what it sees

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use node_heartbeat::testserver::TestApiServer;
use node_heartbeat::watchdog::{Notifier, Watchdog};
use node_heartbeat::{
    AddressInputs, KubeBackend, LeaseConfig, LeaseController, NodeStatusReporter, RuntimeHealth,
    SharedInputs, StatusConfig, dns_lookup, find_condition, inputs_for_root, node_addresses,
    probe_network,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let server = TestApiServer::start().await?;
    let backend = Arc::new(KubeBackend::for_url(
        &server.url(),
        Duration::from_secs(10),
    )?);

    // Status inputs from this machine: /proc, /sys, /etc, and the filesystem of /.
    let name = "example-node";
    let kc = node_config::KubeletConfiguration {
        max_pods: 110,
        ..Default::default()
    };
    let mut inputs = inputs_for_root(Path::new("/"), Path::new("/var/lib/kubelet"), name, &kc)?;
    let (interfaces, defaults) = probe_network(Path::new("/"));
    inputs.addresses = node_addresses(
        &AddressInputs {
            node_name: name.into(),
            hostname: name.into(),
            interface_ips: interfaces,
            default_route_ips: defaults,
            ..Default::default()
        },
        &dns_lookup,
    )
    .unwrap_or_default();
    inputs.runtime_health = RuntimeHealth::healthy(std::time::Instant::now());
    let src = SharedInputs::new(inputs, name);

    let mut status_cfg = StatusConfig::new(name);
    status_cfg.update_frequency = Duration::from_secs(1);
    let reporter = NodeStatusReporter::new(backend.clone(), src.clone(), status_cfg);
    let mut lease_cfg = LeaseConfig::new(name, 8);
    lease_cfg.renew_interval = Duration::from_secs(2);
    let lease = LeaseController::new(backend.clone(), lease_cfg);

    // A stand-in for systemd's notify socket.
    let dir = tempfile::tempdir()?;
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path)?;
    sock.set_nonblocking(true)?;
    let notifier = Notifier::new(sock_path.to_string_lossy());
    let watchdog = Watchdog::new(notifier.clone(), Duration::from_secs(4))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let tasks = vec![
        tokio::spawn(reporter.run(stop(stop_rx.clone()))),
        tokio::spawn(lease.run(stop(stop_rx.clone()))),
        tokio::spawn(watchdog.run(stop(stop_rx.clone()))),
    ];
    notifier.ready()?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await?;
    }
    notifier.stopping()?;

    let node = server
        .node(name)
        .ok_or_else(|| anyhow::anyhow!("node not registered"))?;
    let status = node.status.unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    println!(
        "node {name}: kernel {} on {}",
        info.kernel_version, info.os_image
    );
    for (k, v) in status.capacity.clone().unwrap_or_default() {
        let alloc = status
            .allocatable
            .as_ref()
            .and_then(|a| a.get(&k))
            .map_or("-", |q| q.0.as_str());
        println!("  {k:<20} capacity {:<14} allocatable {alloc}", v.0);
    }
    for c in status.conditions.clone().unwrap_or_default() {
        println!(
            "  {:<16} {:<6} {}",
            c.type_,
            c.status,
            c.reason.unwrap_or_default()
        );
    }
    let ready = find_condition(&status, "Ready").map(|c| c.status.clone());
    let lease = server
        .lease("kube-node-lease", name)
        .ok_or_else(|| anyhow::anyhow!("no lease"))?;
    let spec = lease.spec.unwrap_or_default();
    println!(
        "lease: holder {:?}, duration {:?}s, renewed {}, owner {:?}",
        spec.holder_identity.unwrap_or_default(),
        spec.lease_duration_seconds.unwrap_or_default(),
        spec.renew_time.map(|t| t.0.to_string()).unwrap_or_default(),
        lease
            .metadata
            .owner_references
            .unwrap_or_default()
            .first()
            .map(|o| o.kind.clone()),
    );
    let mut buf = [0u8; 64];
    let mut messages = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
    }
    println!("sd_notify messages: {}", messages.join(", "));
    anyhow::ensure!(
        ready.as_deref() == Some("True"),
        "node did not become Ready"
    );
    Ok(())
}
