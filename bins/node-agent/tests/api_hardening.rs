//! The real `node-agent` binary's HTTPS API against hostile requests, on the test run's
//! containerd: a checkpoint `timeout` beyond a Go Duration (it used to panic inside tonic's
//! grpc-timeout encoder) is the kubelet's 404 and leaves the agent fully working (healthz,
//! `/pods`, the process, the next checkpoint reaching the runtime); with anonymous requests off,
//! every unauthenticated request is 401 whatever its method and path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    Agent, AgentSpec, OPEN_AUTH, client_certs, curl, remove_pods, running, sleep_pod, x509_only,
};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(60);
const BAD_TIMEOUT: &str = "cannot parse value of timeout parameter";

/// Removes the node's pods from the runtime when dropped, even when an assertion failed.
/// Declare it before the agent: the agent must be gone first, or it restarts the pods.
struct PodCleanup {
    endpoint: String,
    node: String,
}

impl Drop for PodCleanup {
    fn drop(&mut self) {
        let (endpoint, node) = (self.endpoint.clone(), self.node.clone());
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(remove_pods(&endpoint, &node));
        });
        let _ = cleanup.join();
    }
}

/// `POST <path>` with `extra` curl arguments first.
fn post(agent: &Agent, extra: &[&str], path: &str) -> common::Answer {
    let url = agent.url(path);
    let mut args = extra.to_vec();
    args.extend(["-X", "POST", "--path-as-is", &url]);
    curl(&args)
}

/// The 500 containerd 1.6 gives for a checkpoint (it has no CheckpointContainer).
fn assert_reached_containerd(r: &common::Answer, pod: &str) {
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.starts_with(&format!(
            "checkpointing of default/{pod}/app failed (rpc error: code = Unimplemented desc = "
        )),
        "{}",
        r.body
    );
}

/// Healthz on the plain port, `/pods` with the pod running, and the process still there.
fn assert_agent_works(agent: &mut Agent, auth: &[&str], pod: &str) {
    assert!(
        agent.try_exit().is_none(),
        "agent exited:\n{}",
        agent.stderr()
    );
    let healthz = curl(&[&format!("http://127.0.0.1:{}/healthz", agent.healthz_port)]);
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok"));
    let list = agent.wait_pods(auth, Duration::from_secs(10), |l| running(l, pod).is_some());
    assert!(running(&list, pod).is_some());
    assert!(
        agent.try_exit().is_none(),
        "agent exited:\n{}",
        agent.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_beyond_a_go_duration_is_404_and_the_agent_keeps_working() {
    let Some(endpoint) =
        node_runtime::test_support::cri_endpoint("a_timeout_beyond_a_go_duration_is_404")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = AgentSpec::new(dir.path(), "api-timeout", &endpoint)
        .config(OPEN_AUTH)
        .manifest("web.yaml", &sleep_pod("web", ""));
    let node = spec.node.clone();
    let _cleanup = PodCleanup {
        endpoint,
        node: node.clone(),
    };
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let pod = format!("web-{node}");
    agent.wait_pods(&[], POD_UP, |l| running(l, &pod).is_some());
    let path = |query: &str| format!("/checkpoint/default/{pod}/app?{query}");

    // The request that used to panic in tonic (400000000000 s is more than the 99,999,999
    // hours a grpc-timeout header can carry), and its neighbours.
    for query in [
        "timeout=400000000000",
        "timeout=9223372037",
        "timeout=9223372036854775807",
        "timeout=1&timeout=400000000000",
    ] {
        let r = post(&agent, &[], &path(query));
        assert_eq!((r.status, r.body.as_str()), (404, BAD_TIMEOUT), "{query}");
        assert_agent_works(&mut agent, &[], &pod);
    }

    // The largest valid timeout, a repeated one whose last value is fine, and none at all
    // all reach containerd through the same CRI channel.
    for query in ["timeout=9223372036", "timeout=400000000000&timeout=1", ""] {
        let r = post(&agent, &[], &path(query));
        assert_reached_containerd(&r, &pod);
    }
    // A negative timeout is the kubelet's CRI client error, not a panic either.
    let r = post(&agent, &[], &path("timeout=-9223372036854775808"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            500,
            format!(
                "checkpointing of default/{pod}/app failed (CheckpointContainer requires the timeout value to be > 0)"
            )
            .as_str()
        )
    );
    assert_agent_works(&mut agent, &[], &pod);
    let log = agent.stderr();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        std::fs::read_dir(agent.root().join("checkpoints"))
            .unwrap()
            .next()
            .is_none(),
        "no archive and no temporary file left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_anonymous_every_unauthenticated_request_is_401() {
    let Some(endpoint) =
        node_runtime::test_support::cri_endpoint("without_anonymous_every_unauthenticated")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = client_certs(dir.path(), "alice", &[]);
    let cert_args = certs.curl_args();
    let spec = AgentSpec::new(dir.path(), "api-401", &endpoint).config(&x509_only(&certs.ca_file));
    let mut agent = spec.spawn();
    agent.wait_healthy(START);

    let paths = [
        "/pods",
        "/checkpoint/a/b/c",
        "/checkpoint/default/web/app?timeout=400000000000",
        "/checkpoint",
        "/nonexistent",
        "/",
        "/healthz",
        "/metrics",
        "/configz",
        "/checkpoint/%ff/b/c",
    ];
    for path in paths {
        let url = agent.url(path);
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"] {
            let r = curl(&["-X", method, "--path-as-is", &url]);
            assert_eq!(
                (r.status, r.body.as_str()),
                (401, "Unauthorized"),
                "{method} {path}"
            );
        }
        let r = curl(&["-I", "--path-as-is", &url]);
        assert_eq!(r.status, 401, "HEAD {path}");
    }

    // With the client certificate the kubelet's own answers come back.
    let auth: Vec<&str> = cert_args.iter().map(String::as_str).collect();
    let with = |method: &str, path: &str| {
        let url = agent.url(path);
        let mut args = auth.clone();
        args.extend(["-X", method, "--path-as-is", &url]);
        curl(&args)
    };
    let r = with("GET", "/nonexistent");
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found"));
    assert_eq!(with("GET", "/checkpoint/a/b/c").status, 405);
    let r = with("POST", "/checkpoint/a/b/c");
    assert_eq!((r.status, r.body.as_str()), (404, "pod does not exist"));
    let r = with("POST", "/checkpoint/%ff/b/c");
    assert_eq!((r.status, r.body.as_str()), (404, "pod does not exist"));
    let r = with("GET", "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert!(
        agent.try_exit().is_none(),
        "agent exited:\n{}",
        agent.stderr()
    );
}
