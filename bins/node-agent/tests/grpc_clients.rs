//! The agent's gRPC servers on Unix sockets (device-plugin registration on
//! `device-plugins/kubelet.sock`, pod-resources on `pod-resources/kubelet.sock`) with clients
//! that are not tonic:
//!
//! * Python grpcio (installed by scripts/test.sh), which sends the percent-encoded socket path
//!   as the HTTP/2 `:authority` over a Unix socket, acting as a device plugin and as a
//!   pod-resources client (tests/grpc_clients/uds_client.py);
//! * hand-written HTTP/2 frames, to pin down which `:authority` values are accepted (any field
//!   value, as grpc-go accepts them) and which requests stay malformed (vendor/h2/PATCHED.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{AgentSpec, OPEN_AUTH, remove_pods, running, sleep_pod};

const START: Duration = Duration::from_secs(60);
const POD_UP: Duration = Duration::from_secs(60);

/// The Python with grpcio and grpcio-tools: `NODE_TEST_PYTHON` (scripts/test.sh sets it to its
/// virtualenv), else that virtualenv under the workspace's `target/`. Fails (never skips) when
/// neither can import the modules.
fn python() -> PathBuf {
    let python = std::env::var_os("NODE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-venv/bin/python3"));
    let probe = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools; print(grpc.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "{} cannot import grpc and grpc_tools (run scripts/test.sh, which installs grpcio \
             and grpcio-tools into target/test-venv, or set NODE_TEST_PYTHON): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "{}: {e} (run scripts/test.sh, which installs grpcio and grpcio-tools into \
             target/test-venv, or set NODE_TEST_PYTHON)",
            python.display()
        ),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Waits until `path` exists (the agent binds its sockets while it starts).
fn wait_path(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (if still running) and reaped when the test ends, even by a panic.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, read on a thread.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(stdout: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line (from now on) that starts with `prefix`. Panics with `context()` when
    /// the child closes its stdout first or at the deadline.
    fn wait(&mut self, prefix: &str, deadline: Instant, context: impl Fn() -> String) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no '{prefix}' line from the Python client ({e}); its output so far: \
                     {:#?}\n{}",
                    self.seen,
                    context()
                ),
            }
        }
    }
}

/// A Python grpcio device plugin registers with the agent on `device-plugins/kubelet.sock`
/// (grpcio's default `:authority`, the percent-encoded socket path), its devices show in
/// pod-resources GetAllocatableResources (asked by grpcio too), a static pod asking for two of
/// them gets them through the plugin's Allocate, and List and Get report them; a List with the
/// raw socket path as `:authority` (grpc-java's, grpcurl's) passes as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_device_plugin_and_pod_resources() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("python_grpcio") else {
        return;
    };
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let spec = AgentSpec::new(dir.path(), "pygrpc", &endpoint).config(OPEN_AUTH);
    let node = spec.node.clone();
    let manifests = spec.dir.join("manifests");
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    let plugins_dir = agent.root().join("device-plugins");
    let pod_resources = agent.root().join("pod-resources/kubelet.sock");
    wait_path(&plugins_dir.join("kubelet.sock"), START);
    wait_path(&pod_resources, START);

    let pod = format!("pyfoo-{node}");
    let client_log = dir.path().join("python-client.log");
    let mut client = Killed(
        Command::new(&python)
            .arg(workspace().join("bins/node-agent/tests/grpc_clients/uds_client.py"))
            .arg("--proto-root")
            .arg(workspace().join("node-plugins/proto"))
            .arg("--device-plugins-dir")
            .arg(&plugins_dir)
            .arg("--pod-resources-socket")
            .arg(&pod_resources)
            .args(["--resource", "example.com/pyfoo", "--devices", "3"])
            .args(["--pod", &pod, "--timeout", "150"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&client_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut lines = Lines::new(client.0.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(150);
    let context = || {
        format!(
            "Python client stderr:\n{}\nagent stderr:\n{}",
            std::fs::read_to_string(&client_log).unwrap_or_default(),
            agent.stderr()
        )
    };

    let line = lines.wait("REGISTERED", deadline, context);
    assert_eq!(line, "REGISTERED example.com/pyfoo");
    let line = lines.wait("ALLOCATABLE", deadline, context);
    assert_eq!(
        line,
        "ALLOCATABLE example.com/pyfoo pyfoo-0,pyfoo-1,pyfoo-2"
    );
    let line = lines.wait("LIST ", deadline, context);
    assert_eq!(line, "LIST 0", "no pod runs yet");

    // Now a pod that needs two of the plugin's devices.
    std::fs::write(
        manifests.join("pyfoo.yaml"),
        sleep_pod(
            "pyfoo",
            "    resources:\n      limits:\n        example.com/pyfoo: 2\n",
        ),
    )
    .unwrap();
    // The client reports POD only after the plugin's Allocate ran (and printed ALLOCATE).
    let line = lines.wait("POD ", deadline, context);
    let allocated = line
        .strip_prefix(&format!("POD default/{pod} example.com/pyfoo "))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    assert_eq!(allocated.split(',').count(), 2, "{allocated}");
    let line = lines.wait("GET ", deadline, context);
    assert_eq!(
        line,
        format!("GET default/{pod} example.com/pyfoo {allocated}")
    );
    let line = lines.wait("LIST_RAW_AUTHORITY", deadline, context);
    assert_eq!(line, "LIST_RAW_AUTHORITY 1");
    lines.wait("DONE", deadline, context);
    assert!(
        lines.seen.contains(&format!("ALLOCATE {allocated}")),
        "the plugin's Allocate was not called with {allocated}: {:#?}",
        lines.seen
    );
    let status = client.0.wait().unwrap();
    assert!(status.success(), "Python client: {status}\n{}", context());
    agent.wait_pods(&[], POD_UP, |l| running(l, &pod).is_some());

    drop(agent);
    remove_pods(&endpoint, &node).await;
}

/// What the server did with one request stream.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Answered with a HEADERS frame: the request reached the gRPC service.
    Answered,
    /// RST_STREAM with this error code (1 = PROTOCOL_ERROR).
    Reset(u32),
    /// GOAWAY with this error code.
    GoAway(u32),
}

/// HPACK: an integer with an `n`-bit prefix (RFC 7541 §5.1), first byte ORed with `flags`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "every byte pushed is below 256: `value` < `max` <= 255, `% 128`, then < 128"
)]
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// HPACK: a literal field without indexing, new name, no Huffman coding (RFC 7541 §6.2.2).
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Sends one request (the given pseudo-headers, then a gRPC `content-type` and `te`, then an
/// empty gRPC message) on stream 1 of a fresh connection to `socket`, and reports the first
/// thing the server says about that stream.
fn one_request(socket: &Path, pseudo: &[(&str, &[u8])]) -> Outcome {
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    const GOAWAY: u8 = 7;
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut block = Vec::new();
    for (name, value) in pseudo {
        hpack_literal(&mut block, name, value);
    }
    hpack_literal(&mut block, "content-type", b"application/grpc");
    hpack_literal(&mut block, "te", b"trailers");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, 0x4, 1, &block)); // END_HEADERS
    out.extend(frame(DATA, 0x1, 1, &[0, 0, 0, 0, 0])); // END_STREAM
    s.write_all(&out).unwrap();
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        let code = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
        match kind {
            SETTINGS if flags & 0x1 == 0 => s.write_all(&frame(SETTINGS, 0x1, 0, &[])).unwrap(),
            HEADERS if stream == 1 => return Outcome::Answered,
            RST_STREAM if stream == 1 => return Outcome::Reset(code(0)),
            GOAWAY => return Outcome::GoAway(code(4)),
            _ => {}
        }
    }
}

/// Over a Unix socket the server accepts any `:authority` that is a valid header field value,
/// URI authority or not (the socket path raw or percent-encoded, as gRPC clients other than
/// grpc-go send it), and still resets a stream whose `:authority` is empty or holds a control
/// character, a CONNECT whose authority is not one, and a request without `:scheme`.
#[test]
fn authority_values_on_the_pod_resources_socket() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("authority_values") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentSpec::new(dir.path(), "authority", &endpoint)
        .config(OPEN_AUTH)
        .spawn();
    agent.wait_healthy(START);
    let socket = agent.root().join("pod-resources/kubelet.sock");
    wait_path(&socket, START);
    let raw_path = socket.to_str().unwrap().to_owned();
    let encoded = raw_path.trim_start_matches('/').replace('/', "%2F");
    let post = |authority: Option<&[u8]>| {
        let mut pseudo: Vec<(&str, &[u8])> = vec![
            (":method", b"POST"),
            (":scheme", b"http"),
            (":path", b"/v1.PodResourcesLister/List"),
        ];
        if let Some(a) = authority {
            pseudo.push((":authority", a));
        }
        one_request(&socket, &pseudo)
    };
    const PROTOCOL_ERROR: u32 = 1;

    assert_eq!(post(Some(b"localhost")), Outcome::Answered);
    assert_eq!(post(None), Outcome::Answered);
    // grpcio (C core) >= 1.57: the percent-encoded path without its leading slash.
    assert_eq!(
        post(Some(encoded.as_bytes())),
        Outcome::Answered,
        "{encoded}"
    );
    // grpc-java, grpcurl: the raw path.
    assert_eq!(
        post(Some(raw_path.as_bytes())),
        Outcome::Answered,
        "{raw_path}"
    );
    assert_eq!(post(Some(b"a b@[::1")), Outcome::Answered);

    // Still malformed.
    assert_eq!(post(Some(b"")), Outcome::Reset(PROTOCOL_ERROR));
    assert_eq!(post(Some(b"tmp\x01x")), Outcome::Reset(PROTOCOL_ERROR));
    assert_eq!(post(Some(b"tmp\x7fx")), Outcome::Reset(PROTOCOL_ERROR));
    assert_eq!(
        one_request(
            &socket,
            &[(":method", b"CONNECT"), (":authority", raw_path.as_bytes())]
        ),
        Outcome::Reset(PROTOCOL_ERROR)
    );
    assert_eq!(
        one_request(
            &socket,
            &[
                (":method", b"POST"),
                (":path", b"/v1.PodResourcesLister/List"),
                (":authority", encoded.as_bytes()),
            ]
        ),
        Outcome::Reset(PROTOCOL_ERROR)
    );
    drop(agent);
}
