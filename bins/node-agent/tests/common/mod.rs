//! The end-to-end harness: the real `node-agent` binary, started with its own root dir, ports,
//! node name and static pod directory against the test run's containerd, talked to with `curl`
//! (a real HTTP/TLS client) and inspected through its files and stderr.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The agent binary under test.
pub const AGENT: &str = env!("CARGO_BIN_EXE_node-agent");

/// Another workspace binary next to the agent (built by `cargo build --workspace`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let path = Path::new(AGENT).parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace --all-targets`)",
        path.display()
    );
    path
}

/// A port nobody listens on right now, and never handed out before in this test binary
/// (tests run in parallel: the kernel may offer a just-released port twice).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A unique node name per test (pods are scoped to their node's label).
pub fn node_name(test: &str) -> String {
    format!("e2e-{}-{}", test.replace('_', "-"), std::process::id())
}

/// The configuration every test starts from: this machine is a cgroup v1 (hybrid) host, the
/// agent listens on loopback only, on free ports.
pub fn base_config(dir: &Path, port: u16, healthz_port: u16) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
address: 127.0.0.1
port: {port}
healthzPort: {healthz_port}
staticPodPath: {pods}
podLogsDir: {logs}
",
        pods = dir.join("manifests").display(),
        logs = dir.join("logs").display(),
    )
}

/// Anonymous requests allowed and authorization AlwaysAllow (the kubelet's command-line
/// defaults) for tests that are not about authentication.
pub const OPEN_AUTH: &str = "authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
";

/// Eviction thresholds low enough that the test machine's own disk and memory never put the
/// node under pressure: API pods (not critical) would be refused with `Evicted` on a build
/// machine whose disk is 85 % full (the kubelet's default `imagefs.available` is 15 %). Setting
/// `evictionHard` replaces all the defaults, so every signal is named.
pub const NO_PRESSURE: &str = "evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
  imagefs.inodesFree: 1%
";

/// A busybox pod that sleeps, with host networking (no CNI here).
pub fn sleep_pod(name: &str, extra_container_yaml: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {image}
    imagePullPolicy: Never
    command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]
{extra_container_yaml}",
        image = node_runtime::test_support::test_image(),
    )
}

/// One running agent.
pub struct Agent {
    pub dir: PathBuf,
    pub node: String,
    pub port: u16,
    pub healthz_port: u16,
    pub child: Option<Child>,
    pub stderr_path: PathBuf,
}

/// How to start an agent.
pub struct AgentSpec {
    pub dir: PathBuf,
    pub node: String,
    pub port: u16,
    pub healthz_port: u16,
    pub config: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub endpoint: String,
}

impl AgentSpec {
    /// A standalone agent in `dir` (created) against `endpoint`.
    pub fn new(dir: &Path, test: &str, endpoint: &str) -> Self {
        std::fs::create_dir_all(dir.join("manifests")).unwrap();
        let (port, healthz_port) = (free_port(), free_port());
        AgentSpec {
            dir: dir.to_path_buf(),
            node: node_name(test),
            port,
            healthz_port,
            config: base_config(dir, port, healthz_port),
            args: Vec::new(),
            env: Vec::new(),
            endpoint: endpoint.to_owned(),
        }
    }

    /// Appends YAML to the configuration.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config.push_str(yaml);
        self
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Adds a manifest to the static pod directory.
    pub fn manifest(self, file: &str, yaml: &str) -> Self {
        std::fs::write(self.dir.join("manifests").join(file), yaml).unwrap();
        self
    }

    /// Starts the agent (it may still be starting up).
    pub fn spawn(self) -> Agent {
        let config = self.dir.join("config.yaml");
        std::fs::write(&config, &self.config).unwrap();
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let stderr_path = self.dir.join(format!("agent-{n}.log"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(AGENT);
        cmd.arg("--config")
            .arg(&config)
            .arg("--root-dir")
            .arg(self.dir.join("root"))
            .arg("--hostname-override")
            .arg(&self.node)
            .arg("--container-runtime-endpoint")
            .arg(&self.endpoint)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Agent {
            dir: self.dir,
            node: self.node,
            port: self.port,
            healthz_port: self.healthz_port,
            child: Some(child),
            stderr_path,
        }
    }
}

impl Agent {
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until the plain healthz endpoint answers `ok`; panics with the agent's stderr if
    /// it exits or takes longer than `timeout`.
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let url = format!("http://127.0.0.1:{}/healthz", self.healthz_port);
        loop {
            if let Some(status) = self.try_exit() {
                panic!(
                    "agent exited with {status} before becoming healthy:\n{}",
                    self.stderr()
                );
            }
            let r = curl(&[&url]);
            if r.status == 200 && r.body == "ok" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent not healthy after {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `GET /pods` (with `auth` curl arguments) until `pred` holds on the PodList.
    pub fn wait_pods(
        &mut self,
        auth: &[&str],
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let url = self.url("/pods");
        loop {
            let mut args = auth.to_vec();
            args.push(&url);
            let r = curl(&args);
            if r.status == 200 {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                if pred(&v) {
                    return v;
                }
                assert!(
                    Instant::now() < deadline,
                    "pods never matched; last: {v:#}\n{}",
                    self.stderr()
                );
            } else {
                assert!(
                    Instant::now() < deadline,
                    "GET /pods: {} {}\n{}",
                    r.status,
                    r.body,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent still running after {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes every sandbox labelled for `node` from the runtime (pods outlive the agent).
pub async fn remove_pods(endpoint: &str, node: &str) {
    let client =
        node_runtime::CriClient::connect(endpoint, &node_runtime::ClientOptions::default())
            .await
            .unwrap();
    let labels = [(node_runtime::LABEL_MANAGED_BY.to_owned(), node.to_owned())].into();
    for c in client
        .list_containers(None, labels)
        .await
        .unwrap_or_default()
    {
        let _ = client.stop_container(&c.id, 0).await;
        let _ = client.remove_container(&c.id).await;
    }
    let labels = [(node_runtime::LABEL_MANAGED_BY.to_owned(), node.to_owned())].into();
    for s in client.list_pod_sandboxes(labels).await.unwrap_or_default() {
        let _ = client.stop_pod_sandbox(&s.id).await;
        let _ = client.remove_pod_sandbox(&s.id).await;
    }
}

/// Sandboxes the runtime has for `node`.
pub async fn sandboxes(endpoint: &str, node: &str) -> Vec<String> {
    let client =
        node_runtime::CriClient::connect(endpoint, &node_runtime::ClientOptions::default())
            .await
            .unwrap();
    let labels = [(node_runtime::LABEL_MANAGED_BY.to_owned(), node.to_owned())].into();
    client
        .list_pod_sandboxes(labels)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// A curl answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Runs `curl -sk` with `args`; status 0 means no HTTP answer (connection refused, TLS error).
pub fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
    }
}

/// The running pod named `<name>-<node>` in a PodList, if its app container runs.
pub fn running<'a>(list: &'a serde_json::Value, pod: &str) -> Option<&'a serde_json::Value> {
    list["items"].as_array()?.iter().find(|p| {
        p["metadata"]["name"] == pod
            && p["status"]["phase"] == "Running"
            && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
    })
}

/// Reads a child's whole stderr file once it exits (for startup-error tests).
pub fn run_to_exit(mut cmd: Command, timeout: Duration) -> (ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("agent did not exit within {timeout:?}:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client CA written to `dir/ca.crt`, and a client certificate for `cn` in `dir/<cn>.{crt,key}`.
pub struct ClientCerts {
    pub ca_file: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn client_certs(dir: &Path, cn: &str, orgs: &[&str]) -> ClientCerts {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "e2e-client-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let out = ClientCerts {
        ca_file: dir.join("ca.crt"),
        cert: dir.join(format!("{cn}.crt")),
        key: dir.join(format!("{cn}.key")),
    };
    std::fs::write(&out.ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&out.cert, cert.pem()).unwrap();
    std::fs::write(&out.key, key.serialize_pem()).unwrap();
    out
}

impl ClientCerts {
    pub fn curl_args(&self) -> Vec<String> {
        vec![
            "--cert".into(),
            self.cert.display().to_string(),
            "--key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// Anonymous off, client certificates from `ca_file`, AlwaysAllow.
pub fn x509_only(ca_file: &Path) -> String {
    format!(
        "authentication:
  x509:
    clientCAFile: {}
  anonymous:
    enabled: false
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
",
        ca_file.display()
    )
}

/// `&str`s of `args`.
pub fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Writes `<dir>/kubeconfig` for a test API server at `server_url` (no credentials: the test
/// server accepts anyone) and returns its path.
pub fn write_kubeconfig(dir: &Path, server_url: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server_url}
users:
- name: agent
  user: {{}}
contexts:
- name: test
  context: {{cluster: test, user: agent}}
current-context: test
"
        ),
    )
    .unwrap();
    path
}

/// An API pod for `node`: the sleep pod of the static tests (busybox exiting on SIGTERM,
/// host networking).
pub fn api_pod(name: &str, node: &str, extra_spec: &str) -> k8s_openapi::api::core::v1::Pod {
    let mut value = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node, "hostNetwork": true, "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "app", "image": node_runtime::test_support::test_image(),
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
            }]
        }
    });
    if !extra_spec.is_empty() {
        let extra: serde_json::Value = serde_json::from_str(extra_spec).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            value["spec"][k] = v.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}
