//! The checkpoint API against a real CRI server (the test server over a Unix socket).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, archive_of, tree};
use http::StatusCode;
use node_checkpoint::test_support::Behaviour;
use node_checkpoint::{InspectOptions, MAX_TIMEOUT_SECONDS, Retention, inspect_file};

/// `checkpoint-<pod>_<ns>-<ctr>-<RFC 3339>.tar`; returns the timestamp.
fn timestamp_of(path: &std::path::Path, pod: &str, ns: &str, ctr: &str) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    let prefix = format!("checkpoint-{pod}_{ns}-{ctr}-");
    let ts = name
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(".tar"))
        .unwrap_or_else(|| panic!("{name} does not match {prefix}<ts>.tar"));
    ts.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{ts} is not RFC 3339: {e}"));
    ts.to_owned()
}

#[tokio::test]
async fn checkpoint_writes_a_root_only_archive_and_answers_like_the_kubelet() {
    let env = Env::new(|_| {}).await;
    let dir = env.checkpoints();
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);

    let req = http::Request::post("/checkpoint/default/web/app")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, body, ctype) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ctype.as_deref(), Some("application/json"));
    let archive = archive_of(&body);
    assert_eq!(body, format!("{{\"items\":[\"{}\"]}}", archive.display()));
    assert_eq!(archive.parent().unwrap(), dir);
    let ts = timestamp_of(&archive, "web", "default", "app");
    assert!(
        !ts.contains('.'),
        "first archive of a second has whole seconds: {ts}"
    );
    let meta = std::fs::metadata(&archive).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600, "the runtime left 0644");
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(meta.nlink(), 1, "temporary name gone");
    assert_eq!(tree(&dir), std::slice::from_ref(&archive));

    // The runtime saw the container ID, a location in the checkpoints directory and the
    // kubelet's deadline in seconds (no timeout: runtimeRequestTimeout = 120 s).
    let seen = env.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].container_id, "ctr-app");
    assert_eq!(seen[0].timeout, 120);
    assert!(std::path::Path::new(&seen[0].location).starts_with(&dir));

    let report = inspect_file(&archive, &InspectOptions::default()).unwrap();
    assert_eq!(report.id.as_deref(), Some("ctr-app"));
    assert_eq!(report.engine, "containerd");

    // Init containers are found too; a timeout above the default is passed on.
    let (status, body) = env.post("/checkpoint/default/web/init?timeout=300").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    timestamp_of(&archive_of(&body), "web", "default", "init");
    assert_eq!(env.server.seen()[1].timeout, 300);
    // A pod name with dots (a DNS subdomain) works.
    let (status, body) = env
        .post("/checkpoint/kube-system/etcd-node-1.example/etcd")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    timestamp_of(
        &archive_of(&body),
        "etcd-node-1.example",
        "kube-system",
        "etcd",
    );
}

#[tokio::test]
async fn unknown_names_and_bad_timeouts_give_the_kubelets_404s() {
    let env = Env::new(|_| {}).await;
    for (uri, text) in [
        ("/checkpoint/nope/web/app", "pod does not exist"),
        ("/checkpoint/default/nope/app", "pod does not exist"),
        (
            "/checkpoint/default/web/nope",
            "container nope does not exist",
        ),
        (
            "/checkpoint/default/web/app?timeout=abc",
            "cannot parse value of timeout parameter",
        ),
        (
            "/checkpoint/default/web/app?timeout=",
            "cannot parse value of timeout parameter",
        ),
        (
            "/checkpoint/default/web/app?timeout=5&timeout=1.5",
            "cannot parse value of timeout parameter",
        ),
        // Pod and container are checked before the timeout, as in the kubelet.
        (
            "/checkpoint/default/nope/app?timeout=abc",
            "pod does not exist",
        ),
        (
            "/checkpoint/default/web/nope?timeout=abc",
            "container nope does not exist",
        ),
    ] {
        let (status, body) = env.post(uri).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, text),
            "{uri}"
        );
    }
    // Wrong method: the route exists only for POST.
    let req = http::Request::get("/checkpoint/default/web/app")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(env.send(req).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // A negative timeout and a container without an instance are runtime-side errors: 500.
    let (status, body) = env.post("/checkpoint/default/web/app?timeout=-1").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        "checkpointing of default/web/app failed (CheckpointContainer requires the timeout value to be > 0)"
    );
    let (status, body) = env.post("/checkpoint/default/web/sidecar").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        "checkpointing of default/web/sidecar failed (container sidecar not found)"
    );
    assert!(env.server.seen().is_empty(), "the runtime was never called");
    assert!(tree(&env.checkpoints()).is_empty());
}

#[tokio::test]
async fn runtime_errors_are_500_with_the_runtimes_message_and_leave_nothing() {
    let env = Env::new(|_| {}).await;
    env.server.set_behaviour(Behaviour {
        error: Some((
            tonic::Code::Unimplemented,
            "method CheckpointContainer not implemented".to_owned(),
        )),
        ..Behaviour::default()
    });
    let (status, body) = env.post("/checkpoint/default/web/app").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        "checkpointing of default/web/app failed (rpc error: code = Unimplemented desc = method CheckpointContainer not implemented)"
    );
    env.server.set_behaviour(Behaviour {
        error: Some((
            tonic::Code::Unknown,
            "checkpoint/restore support not available".to_owned(),
        )),
        ..Behaviour::default()
    });
    let (status, body) = env.post("/checkpoint/default/web/app").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.ends_with(
            "(rpc error: code = Unknown desc = checkpoint/restore support not available)"
        ),
        "{body}"
    );
    assert!(tree(&env.checkpoints()).is_empty());
}

#[tokio::test]
async fn a_runtime_slower_than_the_timeout_gives_500_within_the_timeout_plus_one_second() {
    let env = Env::new(|c| c.runtime_request_timeout = Duration::from_secs(1)).await;
    env.server.set_behaviour(Behaviour {
        delay: Duration::from_secs(30),
        ..Behaviour::default()
    });
    let start = Instant::now();
    let (status, body) = env.post("/checkpoint/default/web/app?timeout=2").await;
    let took = start.elapsed();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(
        body,
        "checkpointing of default/web/app failed (rpc error: code = DeadlineExceeded desc = context deadline exceeded)"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(env.server.seen()[0].timeout, 2);
    // The server side is cancelled with the call; nothing is left behind.
    let start = Instant::now();
    while env.server.in_flight() > 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.server.in_flight(), 0);
    assert!(tree(&env.checkpoints()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_give_twenty_intact_archives() {
    let env = Arc::new(Env::new(|_| {}).await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            env.post("/checkpoint/default/web/app").await
        }));
    }
    let mut paths = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        paths.push(archive_of(&body));
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 20, "distinct names");
    assert_eq!(
        tree(&env.checkpoints()),
        paths,
        "nothing else in the directory"
    );
    let mut seconds = std::collections::BTreeSet::new();
    let mut whole = 0;
    for p in &paths {
        let ts = timestamp_of(p, "web", "default", "app");
        seconds.insert(
            ts.split('.')
                .next()
                .unwrap()
                .trim_end_matches('Z')
                .to_owned(),
        );
        whole += usize::from(!ts.contains('.'));
        assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o7777, 0o600);
        let report = inspect_file(p, &InspectOptions::default().with_search(b"hunter2")).unwrap();
        assert_eq!(
            report.search.unwrap().total_matches,
            1,
            "{} intact",
            p.display()
        );
    }
    assert!(whole <= seconds.len(), "one whole-second name per second");
}

#[tokio::test]
async fn an_existing_archive_is_never_overwritten() {
    let env = Env::new(|_| {}).await;
    // Occupy the kubelet's names for the next few seconds.
    let now = jiff::Zoned::now();
    let mut planted = Vec::new();
    for s in -1..4 {
        let t = now.checked_add(jiff::SignedDuration::from_secs(s)).unwrap();
        let name = node_checkpoint::archive_file_name(
            "web",
            "default",
            "app",
            &node_checkpoint::names::rfc3339_seconds(&t),
        );
        let p = env.checkpoints().join(name);
        std::fs::write(&p, b"earlier archive").unwrap();
        planted.push(p);
    }
    let (status, body) = env.post("/checkpoint/default/web/app").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let archive = archive_of(&body);
    assert!(!planted.contains(&archive));
    let ts = timestamp_of(&archive, "web", "default", "app");
    assert!(
        ts.contains('.'),
        "fractional seconds when the name is taken: {ts}"
    );
    for p in &planted {
        assert_eq!(std::fs::read(p).unwrap(), b"earlier archive");
    }
}

#[tokio::test]
async fn gate_off_means_no_route_and_no_directory() {
    let env = Env::new(|c| c.enabled = false).await;
    for uri in [
        "/checkpoint/default/web/app",
        "/checkpoint/default/web/app?timeout=5",
        "/checkpoint/nope/nope/nope",
        "/checkpoint",
        "/checkpoint/",
    ] {
        let (status, body) = env.post(uri).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, "404 page not found"),
            "{uri}"
        );
    }
    assert!(!env.checkpoints().exists());
    assert!(env.server.seen().is_empty());
}

#[tokio::test]
async fn traversal_attempts_are_404_and_create_nothing() {
    let env = Env::new(|_| {}).await;
    let before = tree(env.dir.path());
    let long = "a".repeat(4096);
    let cases = [
        "/checkpoint/default/../app".to_owned(),
        "/checkpoint/../../etc/passwd".to_owned(),
        "/checkpoint/default/%2e%2e/app".to_owned(),
        "/checkpoint/default/%2e%2e%2f%2e%2e%2fetc/app".to_owned(),
        "/checkpoint/%2e%2e%2f/web/app".to_owned(),
        "/checkpoint/default/web/%2e%2e%2f%2e%2e%2fx".to_owned(),
        "/checkpoint/default/a%2fb/app".to_owned(),
        "/checkpoint/default/web/a%2fb".to_owned(),
        "/checkpoint/default/web/a%2Fb".to_owned(),
        "/checkpoint/default/%2Fetc%2Fshadow/app".to_owned(),
        "/checkpoint/default/web/%2Ftmp%2Fx".to_owned(),
        "/checkpoint/default/web/app%00".to_owned(),
        "/checkpoint/default/web/%ff".to_owned(),
        format!("/checkpoint/{long}/web/app"),
        format!("/checkpoint/default/{long}/app"),
        format!("/checkpoint/default/web/{long}"),
        "/checkpoint/default/web%2fapp/x".to_owned(),
        "/checkpoint/default/web/app/extra".to_owned(),
        "/checkpoint/default/web/".to_owned(),
        "/checkpoint//web/app".to_owned(),
    ];
    for uri in &cases {
        let (status, body) = env.post(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(
            body == "pod does not exist"
                || body == "404 page not found"
                || (body.starts_with("container ") && body.ends_with(" does not exist")),
            "{uri}: {body}"
        );
    }
    assert_eq!(tree(env.dir.path()), before, "nothing created anywhere");
    assert!(env.server.seen().is_empty(), "the runtime was never called");
}

/// Timeouts at the edge of a Go `time.Duration` of seconds: the largest one reaches the
/// runtime unchanged (a valid grpc-timeout, a valid timer), anything larger is the kubelet's
/// 404 before the runtime is called, negative ones are the CRI client's 500, and the last of
/// repeated values decides.
#[tokio::test]
async fn timeouts_beyond_a_go_duration_are_404_and_the_largest_valid_one_works() {
    let env = Env::new(|_| {}).await;
    let max = MAX_TIMEOUT_SECONDS.to_string();
    let (status, body) = env
        .post(&format!("/checkpoint/default/web/app?timeout={max}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.server.seen()[0].timeout, MAX_TIMEOUT_SECONDS);

    for timeout in [
        "9223372037",
        "400000000000",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "5&timeout=400000000000",
    ] {
        let (status, body) = env
            .post(&format!("/checkpoint/default/web/app?timeout={timeout}"))
            .await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::NOT_FOUND,
                "cannot parse value of timeout parameter"
            ),
            "{timeout}"
        );
    }
    for timeout in ["-9223372037", "-9223372036854775808"] {
        let (status, body) = env
            .post(&format!("/checkpoint/default/web/app?timeout={timeout}"))
            .await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "checkpointing of default/web/app failed (CheckpointContainer requires the timeout value to be > 0)"
            ),
            "{timeout}"
        );
    }
    assert_eq!(
        env.server.seen().len(),
        1,
        "only the valid timeout was sent"
    );
    // The last value wins: a huge one followed by a small one is fine.
    let (status, body) = env
        .post("/checkpoint/default/web/app?timeout=400000000000&timeout=300")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.server.seen()[1].timeout, 300);
}

/// The route is plain routing: it never looks at credentials (the server's filter does) and
/// never reads a request body.
#[tokio::test]
async fn the_route_ignores_credentials_and_bodies() {
    let env = Env::new(|_| {}).await;
    let req = http::Request::post("/checkpoint/default/web/app")
        .header(http::header::AUTHORIZATION, "Bearer whatever")
        .body(axum::body::Body::from(vec![b'x'; 4 << 20]))
        .unwrap();
    let (status, body, _) = env.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.server.seen().len(), 1);
}

#[tokio::test]
async fn retention_keeps_the_newest_archives() {
    let env = Env::new(|c| c.retention = Retention::default().with_max_count(2)).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let (status, body) = env.post("/checkpoint/default/web/app").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        made.push(archive_of(&body));
        // Distinct modification times.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut left = tree(&env.checkpoints());
    left.sort();
    let mut expect = made[1..].to_vec();
    expect.sort();
    assert_eq!(left, expect);
}

#[tokio::test]
async fn a_timeout_above_the_request_timeout_extends_the_deadline() {
    let env = Env::new(|c| c.runtime_request_timeout = Duration::from_secs(1)).await;
    env.server.set_behaviour(Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    });
    // No timeout: runtimeRequestTimeout (1 s) applies and the slow runtime misses it.
    let (status, body) = env.post("/checkpoint/default/web/app").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("DeadlineExceeded"), "{body}");
    // timeout=3: max(3 s, 1 s) = 3 s, long enough.
    let (status, body) = env.post("/checkpoint/default/web/app?timeout=3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(tree(&env.checkpoints()), [archive_of(&body)]);
}
