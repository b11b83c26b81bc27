//! `nodectl hollow-nodes` run as a real process against the test API server (real HTTP, real
//! Kubernetes JSON types) in this test process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use node_heartbeat::find_condition;
use node_heartbeat::testserver::TestApiServer;

fn nodectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(args)
        .output()
        .unwrap()
}

fn server() -> (tokio::runtime::Runtime, TestApiServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestApiServer::start()).unwrap();
    server.set_recording(false);
    (rt, server)
}

#[test]
fn a_fleet_registers_ready_nodes_and_keeps_their_leases() {
    let (_rt, server) = server();
    let url = server.url();
    let out = nodectl(&[
        "hollow-nodes",
        "--server",
        &url,
        "--count",
        "30",
        "--name-prefix",
        "ci-hollow-",
        "--first-index",
        "100",
        "--cpu",
        "2",
        "--memory",
        "8Gi",
        "--max-pods",
        "50",
        "--node-labels",
        "pool=hollow,example.com/tier=test",
        // Short intervals so a few renewal periods fit in the run; the defaults are the
        // kubelet's (40 s lease renewed every 10 s, status every 10 s, report every 5 min).
        "--node-lease-duration-seconds",
        "8",
        "--node-status-update-frequency",
        "1s",
        "--node-status-report-frequency",
        "3s",
        "--start-rate",
        "100",
        "--max-in-flight",
        "4",
        "--duration",
        "9s",
        "--report-interval",
        "2s",
        "-o",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Progress lines every 2 s.
    assert!(
        stderr.lines().filter(|l| l.contains("started ")).count() >= 3,
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["nodes"], 30, "{report}");
    assert_eq!(report["started"], 30, "{report}");
    assert_eq!(report["registered"], 30, "{report}");
    assert_eq!(report["leasesHeld"], 30, "{report}");
    // Started over 0.3 s and renewed every 2 s (jittered) for about 9 s: at least 3 each.
    assert!(report["leaseRenewals"].as_u64().unwrap() >= 90, "{report}");
    // Status sent on registration, on becoming Ready and every 3 s after.
    assert!(report["statusPatches"].as_u64().unwrap() >= 60, "{report}");
    // Within the lease's 8 s, though a loaded machine may be late by more than the jitter.
    assert!(
        report["maxRenewalGapMs"].as_u64().unwrap() < 8000,
        "{report}"
    );

    let renewals = server.renewals();
    assert_eq!(renewals.len(), 30);
    for i in 100..130 {
        let name = format!("ci-hollow-{i:05}");
        let node = server
            .node(&name)
            .unwrap_or_else(|| panic!("no node {name}"));
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["pool"], "hollow");
        assert_eq!(labels["example.com/tier"], "test");
        let status = node.status.clone().unwrap();
        let ready = find_condition(&status, "Ready").unwrap();
        assert_eq!(ready.status, "True", "{name}");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        let cap = status.capacity.unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "8Gi");
        assert_eq!(cap["pods"].0, "50");
        let lease = server.lease("kube-node-lease", &name).unwrap();
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some(name.as_str()));
        assert_eq!(spec.lease_duration_seconds, Some(8));
        let owner = &lease.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Node", name.as_str())
        );
        assert_eq!(Some(&owner.uid), node.metadata.uid.as_ref());
        let r = renewals[&format!("kube-node-lease/{name}")];
        assert!(r.renewals >= 3, "{name}: {r:?}");
    }
    assert!(server.node("ci-hollow-00130").is_none());
    assert!(server.node("ci-hollow-00099").is_none());
}

#[test]
fn sigterm_stops_the_fleet_with_its_report() {
    let (_rt, server) = server();
    let child = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args([
            "hollow-nodes",
            "--server",
            &server.url(),
            "--count",
            "5",
            "--report-interval",
            "0s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.renewals().len() < 5 {
        assert!(Instant::now() < deadline, "the leases never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("started 5/5") && stdout.contains("leases held 5"),
        "{stdout}"
    );
    // The default names.
    assert!(server.node("hollow-node-00004").is_some());
}

#[test]
fn bad_settings_are_refused_naming_the_flag() {
    let url = "http://127.0.0.1:9";
    let cases: [(&[&str], &str); 8] = [
        (&["--count", "0"], "count"),
        (&["--count", "3", "--name-prefix", "Bad_"], "name_prefix"),
        (&["--count", "3", "--memory", "lots"], "--memory"),
        (&["--count", "3", "--memory", "0.5"], "--memory"),
        (
            &["--count", "3", "--node-labels", "kubernetes.io/made-up=x"],
            "kubernetes.io",
        ),
        (
            &["--count", "3", "--node-status-update-frequency", "soon"],
            "--node-status-update-frequency",
        ),
        (&["--count", "3", "--max-in-flight", "0"], "max_in_flight"),
        (
            &["--count", "3", "--first-index", "4294967295"],
            "first_index",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["hollow-nodes", "--server", url];
        args.extend_from_slice(extra);
        let out = nodectl(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // One of --kubeconfig / --server is required.
    let out = nodectl(&["hollow-nodes", "--count", "3"]);
    assert!(!out.status.success());
}
