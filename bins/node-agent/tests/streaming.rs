//! exec, attach, port-forward and run with the real `node-agent`, the test run's containerd
//! (its streaming server) and a real WebSocket client (Python websocket-client, through
//! tests/streaming_clients/ws_client.py): the agent asks the runtime for a streaming URL and
//! proxies the upgraded connection to it, as the kubelet does. Then SPDY, the protocol the
//! API server speaks to kubelets: kubectl (`kubectl exec`, `kubectl port-forward`, `kubectl
//! logs`) through a minimal API server front (tests/streaming_clients/front.rs) that forwards
//! the pod subresources to the agent as the API server does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "streaming_clients/front.rs"]
mod front;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{AgentSpec, OPEN_AUTH, curl, remove_pods, running};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(90);

/// The test venv's Python with websocket-client (`NODE_TEST_PYTHON`, else
/// `target/test-venv`); fails, never skips, without it.
fn python() -> PathBuf {
    let python = std::env::var_os("NODE_TEST_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python3"),
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", "import websocket"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import websocket (scripts/test.sh installs websocket-client into \
         target/test-venv; or set NODE_TEST_PYTHON)",
        python.display()
    );
    python
}

/// Runs the WebSocket client in `mode` against `url` and returns its JSON report.
fn ws(mode: &str, url: &str, extra: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/streaming_clients/ws_client.py");
    let out = Command::new(python())
        .arg(script)
        .args([mode, url])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ws_client {mode} {url}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

fn all_running(pod: &serde_json::Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| cs.len() == 3 && cs.iter().all(|c| c["state"]["running"].is_object()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_attach_port_forward_and_run_reach_the_containers() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("streaming") else {
        return;
    };
    if node_runtime::test_support::pod_subnet("streaming").is_none() {
        return;
    }
    let image = node_runtime::test_support::test_image();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the pod\n").unwrap();
    let pod = format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: stream
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: www
    hostPath: {{path: {www}, type: Directory}}
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
  - name: web
    image: {image}
    imagePullPolicy: Never
    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  - name: chat
    image: {image}
    imagePullPolicy: Never
    stdin: true
    command: [\"/bin/sh\", \"-c\", \"while read l; do echo \\\"echo:$l\\\"; done\"]
",
        www = www.display(),
    );
    let spec = AgentSpec::new(dir.path(), "streaming", &endpoint);
    let node = spec.node.clone();
    let mut agent = spec.config(OPEN_AUTH).manifest("stream.yaml", &pod).spawn();
    agent.wait_healthy(START);
    let name = format!("stream-{node}");
    let list = agent.wait_pods(&[], POD_UP, |v| running(v, &name).is_some_and(all_running));
    let uid = running(&list, &name).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let wss = |path: &str| format!("wss://127.0.0.1:{}{path}", agent.port);

    // exec with stdin, stdout, stderr and a non-zero exit code.
    let script = "read x; echo got:$x; echo oops >&2; exit 3";
    let q = format!(
        "command=sh&command=-c&command={}&input=1&output=1&error=1",
        script
            .replace(' ', "%20")
            .replace(';', "%3B")
            .replace('>', "%3E")
            .replace('&', "%26")
            .replace('$', "%24")
    );
    let r = ws("exec", &wss(&format!("/exec/default/{name}/app?{q}")), &[]);
    assert_eq!(r["protocol"], "v4.channel.k8s.io", "{r}");
    assert_eq!(r["stdout"], "got:hello\n", "{r}");
    assert_eq!(r["stderr"], "oops\n", "{r}");
    let status: serde_json::Value = serde_json::from_str(r["status"].as_str().unwrap()).unwrap();
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");

    // The same through the path with the pod UID; exit 0 is a Success status.
    let r = ws(
        "exec",
        &wss(&format!(
            "/exec/default/{name}/{uid}/app?command=head&command=-n1&input=1&output=1"
        )),
        &[],
    );
    assert_eq!(r["stdout"], "hello\n", "{r}");
    let status: serde_json::Value = serde_json::from_str(r["status"].as_str().unwrap()).unwrap();
    assert_eq!(status["status"], "Success", "{status}");

    // A TTY: resize reaches the terminal, and the exit code comes back.
    let r = ws(
        "tty",
        &wss(&format!(
            "/exec/default/{name}/app?command=sh&input=1&output=1&tty=1"
        )),
        &[],
    );
    assert!(r["stdout"].as_str().unwrap().contains("45 123"), "{r}");
    let status: serde_json::Value = serde_json::from_str(r["status"].as_str().unwrap()).unwrap();
    assert_eq!(status["details"]["causes"][0]["message"], "7", "{status}");

    // attach to the main process's stdin and stdout.
    let r = ws(
        "attach",
        &wss(&format!("/attach/default/{name}/chat?input=1&output=1")),
        &[],
    );
    assert!(r["stdout"].as_str().unwrap().contains("echo:hi"), "{r}");

    // port-forward: an HTTP request over the forwarded port reaches httpd in the pod.
    let r = ws(
        "forward",
        &wss(&format!("/portForward/default/{name}?port=8080")),
        &["hello.txt"],
    );
    assert_eq!(r["ports"]["0"], 8080, "{r}");
    assert_eq!(r["ports"]["1"], 8080, "{r}");
    let data = r["data"].as_str().unwrap();
    assert!(data.starts_with("HTTP/1.") && data.contains(" 200 "), "{r}");
    assert!(data.ends_with("hello from the pod\n"), "{r}");

    // run: the combined output as the body.
    let url = agent.url(&format!("/run/default/{name}/app?cmd=echo%20ran"));
    let a = curl(&["-X", "POST", &url]);
    assert_eq!((a.status, a.body.as_str()), (200, "ran\n"));
    let url = agent.url(&format!("/run/default/{name}/app?cmd=false"));
    let a = curl(&["-X", "POST", &url]);
    assert_eq!(a.status, 500, "{a:?}");
    assert!(a.body.contains("command 'false' exited with 1"), "{a:?}");

    // The kubelet's refusals.
    let exec = agent.url(&format!("/exec/default/{name}/app?command=true"));
    let a = curl(&[&exec]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "you must specify at least 1 of stdin, stdout, stderr")
    );
    let a = curl(&[&format!("{exec}&output=1")]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (500, "Upgrade request required\n")
    );
    let a = curl(&[&agent.url("/exec/default/nope/app?command=true&output=1")]);
    assert_eq!((a.status, a.body.as_str()), (404, "pod does not exist"));
    let a = curl(&[&agent.url(&format!("/exec/default/{name}/nope?command=true&output=1"))]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (500, "container not found (\"nope\")")
    );
    let a = curl(&[&agent.url(&format!("/portForward/default/{name}/not-the-uid"))]);
    assert_eq!((a.status, a.body.as_str()), (404, "pod not found"));
    let a = curl(&[
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        &agent.url(&format!("/portForward/default/{name}")),
    ]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "query parameter \"port\" is required")
    );

    // SPDY, from kubectl through an API server front.
    let front = front::start(format!("127.0.0.1:{}", agent.port).parse().unwrap()).await;
    let kubeconfig = common::write_kubeconfig(dir.path(), &format!("http://{front}"));
    let Some(kubectl) = kubectl() else {
        eprintln!("WARNING: kubectl not found: the SPDY (kubectl) part of this test did not run");
        drop(agent);
        remove_pods(&endpoint, &node).await;
        return;
    };
    let run = |args: Vec<String>, stdin: &'static str| {
        let kubectl = kubectl.clone();
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(&kubectl)
                .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
                .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let out = run(
        vec![
            "exec".into(),
            "-i".into(),
            "-n".into(),
            "default".into(),
            name.clone(),
            "-c".into(),
            "app".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ],
        "hello\n",
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got:hello\n",
        "{stderr}"
    );
    assert!(stderr.contains("oops"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");

    // port-forward: kubectl listens locally and carries each connection into the pod.
    let mut pf = Command::new(&kubectl)
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "port-forward",
            "-n",
            "default",
            &format!("pod/{name}"),
            ":8080",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = pf.stdout.take().unwrap();
    let local = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let mut lines = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok);
        let port = lines.find_map(|l| {
            l.strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|r| r.split(' ').next().map(str::to_owned))
        });
        // kubectl writes a line per connection: keep its stdout open and drained.
        std::thread::spawn(move || lines.for_each(drop));
        port
    })
    .await
    .unwrap();
    let Some(local) = local else {
        let _ = pf.kill();
        let out = pf.wait_with_output().unwrap();
        panic!(
            "kubectl port-forward: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let a = curl(&[&format!("http://127.0.0.1:{local}/hello.txt")]);
    let _ = pf.kill();
    let pf_out = pf.wait_with_output().unwrap();
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "hello from the pod\n"),
        "kubectl port-forward: {}",
        String::from_utf8_lossy(&pf_out.stderr)
    );

    // logs: the API server's pods/log becomes the kubelet's containerLogs.
    let out = run(
        vec![
            "logs".into(),
            "-n".into(),
            "default".into(),
            name.clone(),
            "-c".into(),
            "chat".into(),
        ],
        "",
    )
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("echo:hi"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// kubectl: `NODE_TEST_KUBECTL` (must run), else `kubectl` on PATH if there is one. It comes
/// with the build machines' image but from no registry scripts/test.sh can reach, so without it
/// the SPDY half of the test is left out with a warning (the WebSocket half always runs).
fn kubectl() -> Option<PathBuf> {
    let runs = |k: &Path| {
        Command::new(k)
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(k) = std::env::var_os("NODE_TEST_KUBECTL").map(PathBuf::from) {
        assert!(runs(&k), "NODE_TEST_KUBECTL={} does not run", k.display());
        return Some(k);
    }
    let k = PathBuf::from("kubectl");
    runs(&k).then_some(k)
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_logs_and_disabled_debugging_handlers() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("node-logs") else {
        return;
    };
    // A directory of our own in the real /var/log (the kubelet's /logs/ root).
    let name = format!("node-agent-test-{}", std::process::id());
    let mine = Path::new("/var/log").join(&name);
    std::fs::create_dir_all(&mine).unwrap();
    let _cleanup = RemoveOnDrop(mine.clone());
    std::fs::write(mine.join("hello.log"), "hi from /var/log\n").unwrap();
    std::fs::write(mine.join("a b.json"), "{}\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "secret\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), mine.join("escape")).unwrap();
    std::os::unix::fs::symlink(mine.join("hello.log"), mine.join("inside")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "node-logs", &endpoint)
        .config(OPEN_AUTH)
        .spawn();
    agent.wait_healthy(START);
    let a = curl(&[&agent.url("/logs/")]);
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains(&format!("<a href=\"{name}/\">{name}/</a>")),
        "{}",
        a.body
    );
    let a = curl(&["-D", "-", &agent.url(&format!("/logs/{name}"))]);
    assert_eq!(a.status, 301);
    assert!(a.body.contains(&format!("location: {name}/")), "{}", a.body);
    let a = curl(&[&agent.url(&format!("/logs/{name}/"))]);
    assert!(
        a.body.contains("<a href=\"hello.log\">hello.log</a>"),
        "{}",
        a.body
    );
    let a = curl(&["-D", "-", &agent.url(&format!("/logs/{name}/hello.log"))]);
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("content-type: text/plain; charset=utf-8"),
        "{}",
        a.body
    );
    assert!(a.body.ends_with("\r\n\r\nhi from /var/log\n"), "{}", a.body);
    // Paths are percent-decoded as Go's file server decodes them, and the listing's links
    // lead back to the files; known extensions get Go's built-in content types.
    let a = curl(&[&agent.url(&format!("/logs/{name}/"))]);
    assert!(
        a.body.contains("<a href=\"a%20b.json\">a b.json</a>"),
        "{}",
        a.body
    );
    let a = curl(&["-D", "-", &agent.url(&format!("/logs/{name}/a%20b.json"))]);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("content-type: application/json"),
        "{}",
        a.body
    );
    // A symlink inside the directory is followed; one leading out of it is not, and
    // neither is a path climbing out.
    let a = curl(&[&agent.url(&format!("/logs/{name}/inside"))]);
    assert_eq!((a.status, a.body.as_str()), (200, "hi from /var/log\n"));
    let a = curl(&[&agent.url(&format!("/logs/{name}/escape"))]);
    assert_eq!(a.status, 404, "{a:?}");
    let a = curl(&["--path-as-is", &agent.url("/logs/../../etc/hostname")]);
    assert_eq!(a.status, 404, "{a:?}");
    let a = curl(&[
        "--path-as-is",
        &agent.url("/logs/%2e%2e/%2e%2e/etc/hostname"),
    ]);
    assert_eq!(a.status, 404, "{a:?}");
    let a = curl(&[
        "--path-as-is",
        &agent.url(&format!("/logs/{name}/../../../etc/hostname")),
    ]);
    assert_eq!(a.status, 404, "{a:?}");
    drop(agent);

    // enableSystemLogHandler: false.
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "node-logs-off", &endpoint)
        .config(&format!("{OPEN_AUTH}enableSystemLogHandler: false\n"))
        .spawn();
    agent.wait_healthy(START);
    let a = curl(&[&agent.url(&format!("/logs/{name}/hello.log"))]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (405, "logs endpoint is disabled.\n")
    );
    drop(agent);

    // enableDebuggingHandlers: false.
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "debug-off", &endpoint)
        .config(&format!("{OPEN_AUTH}enableDebuggingHandlers: false\n"))
        .spawn();
    agent.wait_healthy(START);
    for path in [
        "/logs/",
        "/exec/default/p/c?command=true&output=1",
        "/containerLogs/default/p/c",
        "/portForward/default/p",
    ] {
        let a = curl(&[&agent.url(path)]);
        assert_eq!(
            (a.status, a.body.as_str()),
            (405, "Debug endpoints are disabled.\n"),
            "{path}"
        );
    }
    let a = curl(&["-X", "POST", &agent.url("/run/default/p/c?cmd=true")]);
    assert_eq!(
        (a.status, a.body.as_str()),
        (405, "Debug endpoints are disabled.\n")
    );
}
