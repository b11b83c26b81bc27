//! Test support (feature `test-support`): a real CRI server over a Unix socket whose
//! `CheckpointContainer` writes a realistic checkpoint archive, and the archive writer itself.
//!
//! CRIU cannot run on every machine (and containerd 1.6 has no checkpoint support), so tests
//! and benchmarks of the success path talk to this server through the same `CriClient` the
//! agent uses. The archive follows containerd 2.x's layout: `config.dump`, `spec.dump`,
//! `status.dump`, `checkpoint/` with CRIU images (`inventory.img`, `pstree.img`,
//! `pagemap-<pid>.img`, `pages-<n>.img`), `rootfs-diff.tar`, `stats-dump`, `dump.log`.
//!
//! [`CriTestServer::start_forwarding`] puts the same server in front of a real runtime: every
//! `RuntimeService` and `ImageService` call goes to the upstream endpoint unchanged (answers,
//! status codes and messages come back as the runtime gave them), except
//! `CheckpointContainer`, which this server answers itself. That lets an end-to-end test run
//! real pods on containerd 1.6 (which has no checkpoint support) and still reach the
//! checkpoint success path.
#![allow(missing_docs)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node_runtime::cri;
use node_runtime::cri::image_service_client::ImageServiceClient;
use node_runtime::cri::image_service_server::{ImageService, ImageServiceServer};
use node_runtime::cri::runtime_service_client::RuntimeServiceClient;
use node_runtime::cri::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use node_runtime::{MAX_MESSAGE_SIZE, socket_path};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::inspect::{CRIU_COMMON_MAGIC, CRIU_PAGEMAP_MAGIC, PAGE_SIZE};

/// One process in a synthetic archive.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    /// Bytes of memory pages (rounded up to whole pages).
    pub memory_bytes: u64,
}

/// What a synthetic archive holds.
#[derive(Debug, Clone)]
pub struct ArchiveSpec {
    pub container_name: String,
    pub pod_name: String,
    pub namespace: String,
    pub container_id: String,
    pub image: String,
    pub processes: Vec<Process>,
    /// Written into the first process's memory pages (what `--search` finds).
    pub secret: Option<String>,
    pub rootfs_diff_files: Vec<(String, Vec<u8>)>,
}

impl ArchiveSpec {
    pub fn new(namespace: &str, pod: &str, container: &str, container_id: &str) -> Self {
        Self {
            container_name: container.to_owned(),
            pod_name: pod.to_owned(),
            namespace: namespace.to_owned(),
            container_id: container_id.to_owned(),
            image: "docker.io/library/busybox:local".to_owned(),
            processes: vec![
                Process {
                    pid: 1,
                    memory_bytes: 64 * 1024,
                },
                Process {
                    pid: 7,
                    memory_bytes: 16 * 1024,
                },
            ],
            secret: Some("PASSWORD=hunter2".to_owned()),
            rootfs_diff_files: vec![("tmp/state.txt".to_owned(), b"written at runtime\n".to_vec())],
        }
    }
}

fn header(path: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_773_438_186);
    h.set_entry_type(tar::EntryType::Regular);
    // Paths here are short constants; set_path only fails for over-long or absolute ones.
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

fn append(b: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = header(path, data.len() as u64, 0o600);
    b.append_data(&mut h, path, data)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "protobuf varint: each byte takes the low 7 bits"
)]
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn criu_entry(out: &mut Vec<u8>, msg: &[u8]) {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the messages written here are a few bytes long"
    )]
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
}

/// A CRIU `pagemap-<pid>.img`: magics, a `pagemap_head{pages_id}`, one entry per run.
fn pagemap_image(pages_id: u32, nr_pages: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&CRIU_COMMON_MAGIC.to_le_bytes());
    out.extend_from_slice(&CRIU_PAGEMAP_MAGIC.to_le_bytes());
    let mut head = Vec::new();
    head.push(0x08);
    varint(&mut head, u64::from(pages_id));
    criu_entry(&mut out, &head);
    let mut entry = Vec::new();
    entry.push(0x08); // vaddr
    varint(&mut entry, 0x5555_5555_4000);
    entry.push(0x10); // nr_pages
    varint(&mut entry, nr_pages);
    entry.push(0x20); // flags: PE_PRESENT
    varint(&mut entry, 4);
    criu_entry(&mut out, &entry);
    out
}

/// A reader of `len` bytes of fake memory, with `secret` at offset 1000 + one page.
struct Pages {
    len: u64,
    pos: u64,
    secret: Vec<u8>,
}

impl std::io::Read for Pages {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the noise byte keeps the low bits of a hash on purpose"
    )]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos + i as u64;
            let s = at.wrapping_sub(PAGE_SIZE + 1000);
            *b = match usize::try_from(s).ok().and_then(|s| self.secret.get(s)) {
                Some(&c) => c,
                // Noise with the high bit set: no NULs (a search must really scan) and never
                // printable ASCII (so the secret's context ends where the secret does).
                None => (at.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80,
            };
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Writes a checkpoint archive in containerd 2.x's layout to `w`, streaming the memory pages
/// (constant memory whatever their size).
pub fn write_archive(w: impl Write, spec: &ArchiveSpec) -> std::io::Result<()> {
    let mut b = tar::Builder::new(w);
    let config = serde_json::json!({
        "id": spec.container_id,
        "name": spec.container_name,
        "rootfsImage": spec.image,
        "rootfsImageRef": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
        "rootfsImageName": spec.image,
        "runtime": "io.containerd.runc.v2",
        "createdTime": "2026-03-13T21:40:01.123456789Z",
        "checkpointedTime": "2026-03-13T21:43:06.5Z",
    });
    append(&mut b, "config.dump", config.to_string().as_bytes())?;
    let oci = serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {"args": ["/bin/sh", "-c", "sleep 3600"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": spec.container_name,
            "io.kubernetes.cri.sandbox-name": spec.pod_name,
            "io.kubernetes.cri.sandbox-namespace": spec.namespace,
            "io.kubernetes.cri.image-name": spec.image,
        }
    });
    append(&mut b, "spec.dump", oci.to_string().as_bytes())?;
    let status = serde_json::json!({"id": spec.container_id, "state": "CONTAINER_RUNNING",
        "metadata": {"name": spec.container_name, "attempt": 0}});
    append(&mut b, "status.dump", status.to_string().as_bytes())?;
    let mut inventory = Vec::new();
    inventory.extend_from_slice(&CRIU_COMMON_MAGIC.to_le_bytes());
    inventory.extend_from_slice(&0x5831_1116u32.to_le_bytes());
    criu_entry(&mut inventory, &[0x08, 0x02]);
    append(&mut b, "checkpoint/inventory.img", &inventory)?;
    append(&mut b, "checkpoint/pstree.img", &[0u8; 64])?;
    for (i, p) in spec.processes.iter().enumerate() {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a test archive has a handful of processes"
        )]
        let pages_id = i as u32 + 1;
        let nr = p.memory_bytes.div_ceil(PAGE_SIZE);
        append(
            &mut b,
            &format!("checkpoint/core-{}.img", p.pid),
            &[0u8; 256],
        )?;
        append(&mut b, &format!("checkpoint/mm-{}.img", p.pid), &[0u8; 128])?;
        append(
            &mut b,
            &format!("checkpoint/pagemap-{}.img", p.pid),
            &pagemap_image(pages_id, nr),
        )?;
        let len = nr * PAGE_SIZE;
        let secret = match (&spec.secret, i) {
            (Some(s), 0) => s.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let h = header(&format!("checkpoint/pages-{pages_id}.img"), len, 0o600);
        b.append(
            &h,
            Pages {
                len,
                pos: 0,
                secret,
            },
        )?;
    }
    let mut diff = tar::Builder::new(Vec::new());
    for (path, data) in &spec.rootfs_diff_files {
        append(&mut diff, path, data)?;
    }
    let diff = diff.into_inner()?;
    append(&mut b, "rootfs-diff.tar", &diff)?;
    append(&mut b, "stats-dump", &[0u8; 40])?;
    append(
        &mut b,
        "dump.log",
        b"(00.000000) Dumping finished successfully\n",
    )?;
    b.into_inner()?.flush()
}

/// How the test server answers `CheckpointContainer`.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Sleep this long first (a slow runtime).
    pub delay: Duration,
    /// Answer with this error instead of writing.
    pub error: Option<(tonic::Code, String)>,
    /// Memory of each process in the archive.
    pub memory_bytes: Option<u64>,
}

/// One `CheckpointContainer` request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub container_id: String,
    pub location: String,
    pub timeout: i64,
}

/// One call the forwarding server passed on to the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedCall {
    /// The CRI method (`RunPodSandbox`, `ImageStatus`, ...).
    pub method: String,
    /// The request's `grpc-timeout` header (the caller's deadline), as sent.
    pub grpc_timeout: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<SeenRequest>>,
    forwarded: Mutex<Vec<ForwardedCall>>,
    in_flight: AtomicUsize,
}

impl Shared {
    fn record(&self, method: &str, metadata: &tonic::metadata::MetadataMap) {
        let grpc_timeout = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.forwarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(ForwardedCall {
                method: method.to_owned(),
                grpc_timeout,
            });
    }
}

/// The CRI test server, listening on `<dir>/cri.sock` until dropped.
#[derive(Debug)]
pub struct CriTestServer {
    socket: PathBuf,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CriTestServer {
    /// Starts serving on `<dir>/cri.sock` (inside a Tokio runtime). Only `Version` and
    /// `CheckpointContainer` are implemented; every other call answers `Unimplemented`.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        Self::serve(dir, None)
    }

    /// Starts serving on `<dir>/cri.sock` in front of the CRI runtime at `upstream_endpoint`
    /// (`unix:///path` or an absolute socket path): `CheckpointContainer` is answered here as
    /// [`CriTestServer::start`] does (archive, [`SeenRequest`], [`Behaviour`]); every other
    /// `RuntimeService` call and every `ImageService` call is forwarded to the runtime, whose
    /// answer or error status comes back unchanged.
    ///
    /// Waits up to 10 s for the runtime's socket to accept connections; the error names the
    /// endpoint and why it could not be reached.
    pub async fn start_forwarding(dir: &Path, upstream_endpoint: &str) -> std::io::Result<Self> {
        let upstream = Upstream::connect(upstream_endpoint, Duration::from_secs(10)).await?;
        Self::serve(dir, Some(upstream))
    }

    fn serve(dir: &Path, upstream: Option<Upstream>) -> std::io::Result<Self> {
        let socket = dir.join("cri.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let shared = Arc::new(Shared::default());
        let svc = Server {
            shared: shared.clone(),
            upstream: upstream.clone(),
        };
        let runtime = RuntimeServiceServer::new(svc)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        // The image service exists only in front of a runtime: alone, this server has no
        // images to describe (and a missing service answers `Unimplemented`, as before).
        let image = upstream.map(|up| {
            ImageServiceServer::new(ImageForwarder {
                upstream: up,
                shared: shared.clone(),
            })
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
        });
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(runtime)
                .add_optional_service(image)
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "CRI test server");
            }
        });
        Ok(Self {
            socket,
            shared,
            task,
        })
    }

    /// `unix:///.../cri.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = b;
    }

    /// The `CheckpointContainer` requests so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The calls forwarded to the runtime so far (both services), in order.
    pub fn forwarded(&self) -> Vec<ForwardedCall> {
        self.shared
            .forwarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for CriTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real runtime behind a forwarding server: one channel, both services.
#[derive(Debug, Clone)]
struct Upstream {
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
}

impl Upstream {
    /// Connects to `endpoint`, retrying while its socket is missing or refuses connections.
    async fn connect(endpoint: &str, wait: Duration) -> std::io::Result<Self> {
        let invalid = |reason: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream CRI endpoint {endpoint:?}: {reason}"),
            )
        };
        let path = socket_path(endpoint).map_err(|e| invalid(e.to_string()))?;
        let uri = format!("unix://{}", path.display());
        let ep = Endpoint::from_shared(uri.clone()).map_err(|e| invalid(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(50);
        let channel = loop {
            match ep.connect().await {
                Ok(channel) => break channel,
                Err(e) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::debug!(endpoint = %uri, error = %e, "upstream CRI runtime not ready, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    let mut reason = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        reason = format!("{reason}: {s}");
                        src = s.source();
                    }
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!(
                            "upstream CRI endpoint {uri} not reachable within {wait:?}: {reason}"
                        ),
                    ));
                }
            }
        };
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            image: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        })
    }
}

#[derive(Debug, Clone)]
struct Server {
    shared: Arc<Shared>,
    /// `Some` in forwarding mode.
    upstream: Option<Upstream>,
}

impl Server {
    /// The upstream runtime client, or the `Unimplemented` answer of a server without one.
    fn runtime(
        &self,
        what: &str,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<RuntimeServiceClient<Channel>, Status> {
        match &self.upstream {
            Some(up) => {
                self.shared.record(what, metadata);
                Ok(up.runtime.clone())
            }
            None => Err(Status::unimplemented(format!(
                "method {what} not implemented"
            ))),
        }
    }
}

/// Forwards `ImageService` to the upstream runtime.
#[derive(Debug, Clone)]
struct ImageForwarder {
    upstream: Upstream,
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl ImageService for ImageForwarder {
    async fn image_status(
        &self,
        r: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        self.shared.record("ImageStatus", r.metadata());
        self.upstream
            .image
            .clone()
            .image_status(r.into_inner())
            .await
    }
    async fn pull_image(
        &self,
        r: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        self.shared.record("PullImage", r.metadata());
        self.upstream.image.clone().pull_image(r.into_inner()).await
    }
    async fn image_fs_info(
        &self,
        r: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        self.shared.record("ImageFsInfo", r.metadata());
        self.upstream
            .image
            .clone()
            .image_fs_info(r.into_inner())
            .await
    }
}

struct InFlight<'a>(&'a AtomicUsize);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl RuntimeService for Server {
    async fn version(
        &self,
        r: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        if let Some(up) = &self.upstream {
            return up.runtime.clone().version(r.into_inner()).await;
        }
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".to_owned(),
            runtime_name: "cri-test-server".to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_api_version: "v1".to_owned(),
        }))
    }
    async fn checkpoint_container(
        &self,
        r: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.shared.in_flight);
        let req = r.into_inner();
        self.shared
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(SeenRequest {
                container_id: req.container_id.clone(),
                location: req.location.clone(),
                timeout: req.timeout,
            });
        let b = self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        tokio::time::sleep(b.delay).await;
        if let Some((code, msg)) = b.error {
            return Err(Status::new(code, msg));
        }
        if req.container_id.is_empty() {
            return Err(Status::not_found("container \"\" not found"));
        }
        let mut spec = ArchiveSpec::new("default", "pod", "app", &req.container_id);
        if let Some(m) = b.memory_bytes {
            for p in &mut spec.processes {
                p.memory_bytes = m;
            }
        }
        let location = PathBuf::from(&req.location);
        tokio::task::spawn_blocking(move || {
            // Like containerd: O_RDWR|O_CREAT without O_TRUNC; but world-readable, to prove
            // the agent makes the archive root-only whatever the runtime left.
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&location)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            write_archive(std::io::BufWriter::new(f), &spec)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(format!("writing checkpoint archive: {e}")))?;
        Ok(Response::new(cri::CheckpointContainerResponse {}))
    }
    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        self.runtime("RunPodSandbox", r.metadata())?
            .run_pod_sandbox(r.into_inner())
            .await
    }
    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        self.runtime("StopPodSandbox", r.metadata())?
            .stop_pod_sandbox(r.into_inner())
            .await
    }
    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        self.runtime("RemovePodSandbox", r.metadata())?
            .remove_pod_sandbox(r.into_inner())
            .await
    }
    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        self.runtime("PodSandboxStatus", r.metadata())?
            .pod_sandbox_status(r.into_inner())
            .await
    }
    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        self.runtime("ListPodSandbox", r.metadata())?
            .list_pod_sandbox(r.into_inner())
            .await
    }
    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        self.runtime("CreateContainer", r.metadata())?
            .create_container(r.into_inner())
            .await
    }
    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        self.runtime("StartContainer", r.metadata())?
            .start_container(r.into_inner())
            .await
    }
    async fn exec_sync(
        &self,
        r: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        self.runtime("ExecSync", r.metadata())?
            .exec_sync(r.into_inner())
            .await
    }
    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        self.runtime("UpdateRuntimeConfig", r.metadata())?
            .update_runtime_config(r.into_inner())
            .await
    }
    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        self.runtime("ReopenContainerLog", r.metadata())?
            .reopen_container_log(r.into_inner())
            .await
    }
    async fn exec(
        &self,
        r: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        self.runtime("Exec", r.metadata())?
            .exec(r.into_inner())
            .await
    }
    async fn attach(
        &self,
        r: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        self.runtime("Attach", r.metadata())?
            .attach(r.into_inner())
            .await
    }
    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        self.runtime("PortForward", r.metadata())?
            .port_forward(r.into_inner())
            .await
    }
    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        self.runtime("ListContainerStats", r.metadata())?
            .list_container_stats(r.into_inner())
            .await
    }
    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        self.runtime("ListPodSandboxStats", r.metadata())?
            .list_pod_sandbox_stats(r.into_inner())
            .await
    }
    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        self.runtime("StopContainer", r.metadata())?
            .stop_container(r.into_inner())
            .await
    }
    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        self.runtime("RemoveContainer", r.metadata())?
            .remove_container(r.into_inner())
            .await
    }
    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        self.runtime("ListContainers", r.metadata())?
            .list_containers(r.into_inner())
            .await
    }
    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        self.runtime("ContainerStatus", r.metadata())?
            .container_status(r.into_inner())
            .await
    }
    async fn status(
        &self,
        r: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        self.runtime("Status", r.metadata())?
            .status(r.into_inner())
            .await
    }
}
