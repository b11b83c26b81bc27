//! Settings the agent accepts without acting on them are named at startup, once, in one
//! warning (`nodectl config --explain` gives the reasons).

mod common;

use std::time::Duration;

use common::{AgentSpec, OPEN_AUTH};

#[test]
fn fields_not_acted_on_are_named_in_one_warning() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("not_acted_on_warning") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "not-acted-on", &endpoint)
        .config(OPEN_AUTH)
        .config("imageGCHighThresholdPercent: 90\nnodeStatusMaxImages: 10\nclusterDNS: [10.96.0.10]\nmaxPods: 50\n")
        .spawn();
    agent.wait_healthy(Duration::from_secs(60));
    let stderr = agent.stderr();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("accepted but not acted on"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    // Named in the kubelet's field order; maxPods (the pods capacity) and clusterDNS (pod DNS)
    // are acted on.
    assert!(
        lines[0].contains(
            "accepted but not acted on: nodeStatusMaxImages, imageGCHighThresholdPercent ("
        ),
        "{}",
        lines[0]
    );
}

/// A configuration that sets only what the agent acts on gets no such warning.
#[test]
fn no_warning_when_everything_set_is_acted_on() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("not_acted_on_none") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "acted-on", &endpoint)
        .config(OPEN_AUTH)
        .config("maxPods: 50\n")
        .spawn();
    agent.wait_healthy(Duration::from_secs(60));
    let stderr = agent.stderr();
    assert!(!stderr.contains("accepted but not acted on"), "{stderr}");
}
