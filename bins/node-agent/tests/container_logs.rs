//! `GET /containerLogs` and container log rotation with the real `node-agent` and the test
//! run's containerd, through `curl` on the agent's HTTPS port: every query parameter on a
//! running container's log, `follow` seeing a line written after the request started and
//! ending when the container exits (and ending the agent's reader when the client goes away),
//! `previous` of a restarted container, the 404/400/422 answers, a line longer than
//! containerd's 16 KiB buffer (partial records joined), and rotation of a chatty container's
//! log to `.gz` files with at most `containerLogMaxFiles` files kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, AgentSpec, OPEN_AUTH, curl, remove_pods, running};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(120);
/// The long line's length: more than two of containerd's 16 KiB record buffers.
const LONG: usize = 40_000;

fn container<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn pod_of<'a>(list: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    list["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"] == name)
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `timeout` with `what`.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn image() -> String {
    node_runtime::test_support::test_image()
}

/// A pod with one container `app` running `script`, `hostPath` `/signal` from `signal`.
fn pod(name: &str, restart: &str, signal: &Path, script: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  hostNetwork: true
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  volumes:
  - name: signal
    hostPath: {{path: {signal}, type: Directory}}
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", {script:?}]
    volumeMounts: [{{name: signal, mountPath: /signal}}]
",
        signal = signal.display(),
        image = image(),
    )
}

/// `curl` in the background writing the body to `out`.
fn curl_background(url: &str, out: &Path) -> Child {
    Command::new("curl")
        .args(["-sk", "-N", "--max-time", "120", "-o"])
        .arg(out)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl is installed")
}

/// How many inotify instances the agent holds (each log follower has one while it runs).
fn inotify_fds(agent: &Agent) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains("inotify"))
                .count()
        })
        .unwrap_or(0)
}

/// `text` with long runs of `x` shortened, for failure messages.
fn short(text: &str) -> String {
    text.replace(&"x".repeat(LONG), &format!("<{LONG} x>"))
}

/// Asserts `got == want`, printing both with the long line shortened.
#[track_caller]
fn same(got: &str, want: &str) {
    assert!(got == want, "got {:?}\nwant {:?}", short(got), short(want));
}

/// Whether `line` starts with the fixed-width RFC 3339 time and a space.
fn stamped(line: &str) -> bool {
    let Some((stamp, _)) = line.split_once(' ') else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() >= 30
        && b[19] == b'.'
        && b[20..29].iter().all(u8::is_ascii_digit)
        && (stamp.ends_with('Z') || b.len() == 35)
        && stamp.parse::<jiff::Timestamp>().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_queries_follow_previous_and_errors() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("container_logs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let signal = dir.path().join("signal");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&signal).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    // Output once, then quiet: stdout and stderr lines, a 40000-byte line printed without
    // its newline (containerd writes it as partial records), then its end.
    let talker = format!(
        "echo line-1; usleep 300000; echo line-2 >&2; usleep 300000; echo line-3; \
         head -c {LONG} /dev/zero | tr '\\0' x; sleep 1; echo tail; echo ready; \
         trap 'exit 0' TERM; while true; do sleep 1; done"
    );
    // The first instance prints and fails; the second prints and stays.
    let restarter = "if [ -f /signal/ran ]; then echo second; trap 'exit 0' TERM; \
         while true; do sleep 1; done; else touch /signal/ran; echo first; exit 1; fi";
    let follower = "echo start; while [ ! -f /signal/go ]; do sleep 1; done; echo late line";
    let spec = AgentSpec::new(dir.path(), "container_logs", &endpoint);
    let node = spec.node.clone();
    let mut agent = spec
        .config(OPEN_AUTH)
        .manifest("talker.yaml", &pod("talker", "Always", &signal, &talker))
        .manifest(
            "restarter.yaml",
            &pod("restarter", "Always", &state, restarter),
        )
        .manifest(
            "follower.yaml",
            &pod("follower", "Never", &signal, follower),
        )
        .spawn();
    agent.wait_healthy(START);
    let talker_pod = format!("talker-{node}");
    let restarter_pod = format!("restarter-{node}");
    let follower_pod = format!("follower-{node}");
    let base_url = agent.url("/containerLogs/default");
    let logs = |pod: &str, query: &str| curl(&[&format!("{base_url}/{pod}/app{query}")]);

    agent.wait_pods(&[], POD_UP, |v| {
        running(v, &talker_pod).is_some() && running(v, &follower_pod).is_some()
    });
    let long = "x".repeat(LONG);
    let everything = format!("line-1\nline-2\nline-3\n{long}tail\nready\n");
    let all = wait_for(Duration::from_secs(30), "the talker's output", || {
        let r = logs(&talker_pod, "");
        (r.status == 200 && r.body.ends_with("ready\n")).then_some(r.body)
    });
    same(&all, &everything);

    // The long line reached the file as partial records (containerd's 16 KiB buffer).
    let log_dir = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("default_{talker_pod}_"))
        })
        .unwrap();
    let raw = std::fs::read_to_string(log_dir.join("app/0.log")).unwrap();
    assert!(
        raw.lines().filter(|l| l.contains(" stdout P ")).count() >= 2,
        "{}",
        &raw[..raw.len().min(400)]
    );

    // tailLines (and legacy tail), limitBytes.
    same(&logs(&talker_pod, "?tailLines=1").body, "ready\n");
    // tailLines counts physical lines: the long line's last record holds its remainder.
    let two = logs(&talker_pod, "?tailLines=2").body;
    let rest = two.strip_suffix("tail\nready\n").unwrap_or_default();
    assert!(
        !rest.is_empty() && rest.len() < LONG && rest.bytes().all(|b| b == b'x'),
        "{}",
        short(&two)
    );
    same(&logs(&talker_pod, "?tail=1").body, "ready\n");
    same(&logs(&talker_pod, "?tail=all").body, &everything);
    same(&logs(&talker_pod, "?tailLines=0").body, "");
    same(&logs(&talker_pod, "?limitBytes=9").body, "line-1\nli");
    // timestamps: one prefix per logical line (the long line has one).
    let r = logs(&talker_pod, "?timestamps=true");
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 5, "{}", short(&r.body));
    assert!(lines.iter().all(|l| stamped(l)), "{}", short(&r.body));
    assert!(lines[3].ends_with(&format!(" {long}tail")));
    assert_eq!(lines[3].matches(' ').count(), 1);
    // sinceTime / sinceSeconds: nothing was written in the last second after the output.
    same(
        &logs(&talker_pod, "?sinceTime=2000-01-01T00:00:00Z").body,
        &everything,
    );
    let future = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
    let r = logs(&talker_pod, &format!("?sinceTime={future}"));
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    same(&logs(&talker_pod, "?sinceSeconds=3600").body, &everything);
    std::thread::sleep(Duration::from_secs(2));
    let r = logs(&talker_pod, "?sinceSeconds=1");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    // stream: All is everything; a single stream needs PodLogsQuerySplitStreams.
    same(&logs(&talker_pod, "?stream=All").body, &everything);
    let r = logs(&talker_pod, "?stream=Stdout");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"unable to return the given log stream: "Stdout". Please enable PodLogsQuerySplitStreams feature gate in kubelet"#
        )
    );

    // The kubelet's refusals.
    for (query, status, body) in [
        ("?tailLines=-1", 422, r#"{"message": "Invalid request."}"#),
        ("?limitBytes=0", 422, r#"{"message": "Invalid request."}"#),
        (
            "?sinceSeconds=1&sinceTime=2000-01-01T00:00:00Z",
            422,
            r#"{"message": "Invalid request."}"#,
        ),
        ("?stream=Both", 422, r#"{"message": "Invalid request."}"#),
        (
            "?tailLines=many",
            400,
            r#"{"message": "Unable to decode query."}"#,
        ),
        (
            "?sinceTime=yesterday",
            400,
            r#"{"message": "Unable to decode query."}"#,
        ),
    ] {
        let r = logs(&talker_pod, query);
        assert_eq!((r.status, r.body.as_str()), (status, body), "{query}");
    }
    let r = logs(&talker_pod, "?previous=true");
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            format!(r#"previous terminated container "app" in pod "{talker_pod}" not found"#)
        )
    );
    let r = curl(&[&agent.url("/containerLogs/default/nope/app")]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"pod "nope" does not exist"#)
    );
    let r = curl(&[&agent.url(&format!("/containerLogs/default/{talker_pod}/nope"))]);
    assert_eq!(
        (r.status, r.body.clone()),
        (
            404,
            format!(r#"container "nope" not found in pod "{talker_pod}""#)
        )
    );
    let r = curl(&[&agent.url(&format!("/containerLogs/default/{talker_pod}/"))]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"message": "Missing container name."}"#)
    );

    // follow: a line written after the request started arrives, and the body ends when the
    // container exits.
    let out = dir.path().join("follow.out");
    let mut follow = curl_background(
        &agent.url(&format!(
            "/containerLogs/default/{follower_pod}/app?follow=true"
        )),
        &out,
    );
    wait_for(Duration::from_secs(30), "the follower's first line", || {
        (std::fs::read_to_string(&out).unwrap_or_default() == "start\n").then_some(())
    });
    std::fs::write(signal.join("go"), "").unwrap();
    let status = wait_for(
        Duration::from_secs(60),
        "curl to end with the container",
        || follow.try_wait().unwrap(),
    );
    assert!(status.success(), "curl: {status}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "start\nlate line\n");

    // A client that goes away ends the agent's follower (its inotify instance closes).
    let baseline = inotify_fds(&agent);
    let out = dir.path().join("follow2.out");
    let mut follow = curl_background(
        &agent.url(&format!(
            "/containerLogs/default/{talker_pod}/app?follow=true&tailLines=1"
        )),
        &out,
    );
    wait_for(
        Duration::from_secs(30),
        "the talker's followed line",
        || (std::fs::read_to_string(&out).unwrap_or_default() == "ready\n").then_some(()),
    );
    wait_for(
        Duration::from_secs(30),
        "the follower's inotify instance",
        || (inotify_fds(&agent) > baseline).then_some(()),
    );
    follow.kill().unwrap();
    follow.wait().unwrap();
    wait_for(
        Duration::from_secs(30),
        "the follower to end after the client left",
        || (inotify_fds(&agent) == baseline).then_some(()),
    );

    // previous: the restarted container's first instance; the current one is the second.
    let list = agent.wait_pods(&[], POD_UP, |v| {
        pod_of(v, &restarter_pod).is_some_and(|p| {
            container(p, "app")["restartCount"].as_u64() >= Some(1)
                && container(p, "app")["state"]["running"].is_object()
        })
    });
    let app = container(pod_of(&list, &restarter_pod).unwrap(), "app");
    assert!(app["lastState"]["terminated"].is_object(), "{app:#}");
    let current = wait_for(
        Duration::from_secs(30),
        "the second instance's output",
        || {
            let r = logs(&restarter_pod, "");
            (r.status == 200 && !r.body.is_empty()).then_some(r.body)
        },
    );
    assert_eq!(current, "second\n");
    let r = logs(&restarter_pod, "?previous=true");
    assert_eq!((r.status, r.body.as_str()), (200, "first\n"));

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// The files of the container log directory, rotations counted once (a `.gz` being written
/// next to its source and `.tmp` files are one rotation in flight).
fn rotation_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.ends_with(".tmp"))
                .map(|n| n.trim_end_matches(".gz").to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatty_container_logs_are_rotated() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("log_rotation") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let chatty = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: chatty
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo chatty line $i with some padding to fill the log; usleep 50000; done\"]
",
        image = image()
    );
    // 3 s is the shortest monitor interval the kubelet's validation accepts.
    let spec = AgentSpec::new(dir.path(), "log_rotation", &endpoint).config(
        "containerLogMaxSize: 1Ki\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 3s\n",
    );
    let node = spec.node.clone();
    let mut agent = spec
        .config(OPEN_AUTH)
        .manifest("chatty.yaml", &chatty)
        .spawn();
    agent.wait_healthy(START);
    let pod = format!("chatty-{node}");
    agent.wait_pods(&[], POD_UP, |v| running(v, &pod).is_some());
    assert!(
        !agent
            .stderr()
            .contains("accepted but not acted on: containerLog"),
        "{}",
        agent.stderr()
    );
    let logs_root = dir.path().join("logs");
    let app_dir: PathBuf = wait_for(Duration::from_secs(30), "the pod's log directory", || {
        std::fs::read_dir(&logs_root)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("default_{pod}_"))
            })
            .map(|p| p.join("app"))
    });

    // Compressed rotations appear; never more than maxFiles files.
    let mut gz_seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while gz_seen.len() < 2 {
        let files = rotation_files(&app_dir);
        assert!(
            files.len() <= 3,
            "more than containerLogMaxFiles: {files:?}"
        );
        for e in std::fs::read_dir(&app_dir).unwrap().filter_map(Result::ok) {
            let name = e.file_name().into_string().unwrap();
            if name.ends_with(".gz") {
                gz_seen.insert(name);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no compressed rotations after 90 s: {files:?}\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(agent.stderr().contains("container log rotated"));
    let gz = std::fs::read_dir(&app_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "gz"));
    if let Some(gz) = gz {
        // `gzip -dc`: a real gzip reader (a rotation may be removed between the listing and
        // the read, which then fails).
        let out = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(" stdout F chatty line "), "{text}");
        }
    }

    // The endpoint still serves the current file.
    let url = agent.url(&format!("/containerLogs/default/{pod}/app?tailLines=1"));
    let line = wait_for(
        Duration::from_secs(30),
        "a line from the current file",
        || {
            let r = curl(&[&url]);
            (r.status == 200 && r.body.starts_with("chatty line ")).then_some(r.body)
        },
    );
    assert!(
        line.ends_with(" with some padding to fill the log\n"),
        "{line}"
    );

    drop(agent);
    remove_pods(&endpoint, &node).await;
}
