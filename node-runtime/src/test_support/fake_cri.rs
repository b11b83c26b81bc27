//! [`FakeCri`]: an in-memory CRI runtime (`RuntimeService` and `ImageService`) served over a
//! real Unix socket, so the real [`crate::CriClient`] and [`crate::PodManager`] run against it
//! without a container runtime. It keeps sandboxes, containers and images in memory, records
//! every call, and lets a test drive what a runtime would do on its own: make a container
//! exit, make every instance of a container exit as it starts, make a sandbox not ready,
//! fail a method. Its clock is the wall clock (the agent caches container statuses, which a
//! real runtime never rewrites, so time cannot be faked here): tests use short back-offs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tonic::{Request, Response, Status};

use crate::cri;
use crate::cri::image_service_server::{ImageService, ImageServiceServer};
use crate::cri::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use crate::spec::LABEL_CONTAINER_NAME;

/// One call the fake runtime answered (or failed), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriCall {
    /// The CRI method (`RunPodSandbox`, `CreateContainer`, `ImageStatus`, ...).
    pub method: &'static str,
    /// What it was about: the sandbox or container ID, the image, `namespace/name` for
    /// `RunPodSandbox`, the container name for `CreateContainer`; empty for list calls.
    pub target: String,
}

/// A sandbox the fake runtime holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSandbox {
    /// Runtime ID (`sandbox-0001`, ... in creation order).
    pub id: String,
    /// Its metadata as the client sent it.
    pub metadata: cri::PodSandboxMetadata,
    /// Ready (running) or not.
    pub ready: bool,
    /// Creation time, Unix nanoseconds.
    pub created_at: i64,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
    /// The IP the fake network gave it: `10.88.0.<n>` for a sandbox in its own network
    /// namespace, empty for a host-network one (the runtime reports none then).
    pub ip: String,
    /// The config it was created with (hostname, DNS, port mappings, ...).
    pub config: cri::PodSandboxConfig,
}

/// A container the fake runtime holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeContainer {
    /// Runtime ID (`container-0001`, ... in creation order).
    pub id: String,
    /// Its sandbox.
    pub sandbox_id: String,
    /// Name and attempt as the client sent them.
    pub metadata: cri::ContainerMetadata,
    /// Image reference.
    pub image: String,
    /// Created, running or exited.
    pub state: cri::ContainerState,
    /// Exit code once exited.
    pub exit_code: i32,
    /// Unix nanoseconds (0 when not yet).
    pub created_at: i64,
    /// Unix nanoseconds (0 when not yet).
    pub started_at: i64,
    /// Unix nanoseconds (0 when not yet).
    pub finished_at: i64,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
    /// Log path as the client sent it (the fake writes nothing there).
    pub log_path: String,
}

impl FakeContainer {
    /// The container name label (the spec's container name).
    pub fn name(&self) -> &str {
        self.labels
            .get(LABEL_CONTAINER_NAME)
            .map_or("", String::as_str)
    }
}

#[derive(Debug, Default)]
struct State {
    sandboxes: BTreeMap<String, FakeSandbox>,
    containers: BTreeMap<String, FakeContainer>,
    images: BTreeSet<String>,
    calls: Vec<CriCall>,
    /// `(container ID, timeout)` of every `StopContainer`, in order.
    stop_timeouts: Vec<(String, i64)>,
    /// `(container ID, command)` of every `ExecSync` (which exits 0 with no output).
    execs: Vec<(String, Vec<String>)>,
    /// The pod CIDR of every `UpdateRuntimeConfig`, in order.
    pod_cidrs: Vec<String>,
    /// Container name -> exit code of every instance as soon as it starts.
    exit_on_start: HashMap<String, i32>,
    /// Method -> the error it answers.
    failures: HashMap<&'static str, (tonic::Code, String)>,
    next_id: u64,
    /// The last time handed out (times never repeat).
    last_time: i64,
}

impl State {
    /// Records the call, then fails it if the test asked for that.
    fn call(&mut self, method: &'static str, target: impl Into<String>) -> Result<(), Status> {
        self.calls.push(CriCall {
            method,
            target: target.into(),
        });
        match self.failures.get(method) {
            Some((code, message)) => Err(Status::new(*code, message.clone())),
            None => Ok(()),
        }
    }

    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{:04}", self.next_id)
    }

    /// Wall-clock Unix nanoseconds, strictly increasing from one call to the next.
    fn now(&mut self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.last_time = wall.max(self.last_time.saturating_add(1));
        self.last_time
    }

    fn exit(&mut self, id: &str, code: i32) {
        let now = self.now();
        if let Some(c) = self.containers.get_mut(id)
            && c.state == cri::ContainerState::ContainerRunning
        {
            c.state = cri::ContainerState::ContainerExited;
            c.exit_code = code;
            c.finished_at = now;
        }
    }

    fn container(&self, id: &str) -> Result<&FakeContainer, Status> {
        self.containers
            .get(id)
            .ok_or_else(|| Status::not_found(format!("container {id:?} not found")))
    }
}

fn selected(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn sandbox_state(ready: bool) -> i32 {
    if ready {
        cri::PodSandboxState::SandboxReady as i32
    } else {
        cri::PodSandboxState::SandboxNotready as i32
    }
}

fn image_of(spec: Option<&cri::ImageSpec>) -> String {
    spec.map(|i| i.image.clone()).unwrap_or_default()
}

/// The in-memory CRI runtime, listening on `<dir>/fake-cri.sock` until dropped.
#[derive(Debug)]
pub struct FakeCri {
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeCri {
    /// Starts serving on `<dir>/fake-cri.sock` (inside a Tokio runtime), with no sandboxes,
    /// containers or images.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        let socket = dir.join("fake-cri.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let state = Arc::new(Mutex::new(State::default()));
        let service = Service {
            state: state.clone(),
        };
        let runtime = RuntimeServiceServer::new(service.clone())
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::MAX_MESSAGE_SIZE);
        let image = ImageServiceServer::new(service)
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::MAX_MESSAGE_SIZE);
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(runtime)
                .add_service(image)
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "fake CRI server");
            }
        });
        Ok(Self {
            socket,
            state,
            task,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `unix:///.../fake-cri.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<CriCall> {
        self.state().calls.clone()
    }

    /// The calls so far, forgetting them (the next `take_calls` returns only newer ones).
    pub fn take_calls(&self) -> Vec<CriCall> {
        std::mem::take(&mut self.state().calls)
    }

    /// `(container ID, command)` of every `ExecSync` call so far, in order (each exits 0).
    pub fn execs(&self) -> Vec<(String, Vec<String>)> {
        self.state().execs.clone()
    }

    /// The pod CIDR of every `UpdateRuntimeConfig` call so far, in order.
    pub fn pod_cidrs(&self) -> Vec<String> {
        self.state().pod_cidrs.clone()
    }

    /// `(container ID, timeout in seconds)` of every `StopContainer` call so far, in order.
    pub fn stop_timeouts(&self) -> Vec<(String, i64)> {
        self.state().stop_timeouts.clone()
    }

    /// The sandboxes, in creation order.
    pub fn sandboxes(&self) -> Vec<FakeSandbox> {
        self.state().sandboxes.values().cloned().collect()
    }

    /// The containers, in creation order.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.state().containers.values().cloned().collect()
    }

    /// The images present.
    pub fn images(&self) -> Vec<String> {
        self.state().images.iter().cloned().collect()
    }

    /// Makes `image` present (as if pulled before).
    pub fn add_image(&self, image: &str) {
        self.state().images.insert(image.to_owned());
    }

    /// Makes the running instances of the container named `name` (its name label) exit with
    /// `code` now; returns how many did.
    pub fn exit_container(&self, name: &str, code: i32) -> usize {
        let mut state = self.state();
        let running: Vec<String> = state
            .containers
            .values()
            .filter(|c| c.name() == name && c.state == cri::ContainerState::ContainerRunning)
            .map(|c| c.id.clone())
            .collect();
        for id in &running {
            state.exit(id, code);
        }
        running.len()
    }

    /// Every instance of the container named `name` started from now on exits with `code`
    /// at once (a crashing or a very short container); `None` lets them run.
    pub fn exit_on_start(&self, name: &str, code: Option<i32>) {
        let mut state = self.state();
        match code {
            Some(code) => state.exit_on_start.insert(name.to_owned(), code),
            None => state.exit_on_start.remove(name),
        };
    }

    /// Makes a sandbox not ready (its network or its pause process died) or ready again.
    pub fn set_sandbox_ready(&self, id: &str, ready: bool) {
        if let Some(s) = self.state().sandboxes.get_mut(id) {
            s.ready = ready;
        }
    }

    /// Makes every later call of `method` fail with `code` and `message`, or (with `None`)
    /// succeed again.
    pub fn fail(&self, method: &'static str, error: Option<(tonic::Code, &str)>) {
        let mut state = self.state();
        match error {
            Some((code, message)) => state.failures.insert(method, (code, message.to_owned())),
            None => state.failures.remove(method),
        };
    }
}

/// The shared state, also after a panicking holder (a failed assertion in another task).
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for FakeCri {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Clone)]
struct Service {
    state: Arc<Mutex<State>>,
}

impl Service {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Stats of a fake container: its identity, with no usage figures (the fake runs nothing).
fn fake_stats(c: &FakeContainer) -> cri::ContainerStats {
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(c.metadata.clone()),
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
        }),
        ..cri::ContainerStats::default()
    }
}

fn status_of(c: &FakeContainer) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(c.metadata.clone()),
        state: c.state as i32,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        image: Some(crate::image_spec(&c.image)),
        image_ref: c.image.clone(),
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        log_path: c.log_path.clone(),
        ..cri::ContainerStatus::default()
    }
}

#[tonic::async_trait]
impl RuntimeService for Service {
    async fn version(
        &self,
        _: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        self.state().call("Version", "")?;
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".to_owned(),
            runtime_name: "fake-cri".to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_api_version: "v1".to_owned(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let config = r.into_inner().config.unwrap_or_default();
        let metadata = config.metadata.clone().unwrap_or_default();
        let mut state = self.state();
        state.call(
            "RunPodSandbox",
            format!("{}/{}", metadata.namespace, metadata.name),
        )?;
        let id = state.id("sandbox");
        let created_at = state.now();
        let host_network = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.network == cri::NamespaceMode::Node as i32);
        let ip = if host_network {
            String::new()
        } else {
            format!("10.88.0.{}", state.sandboxes.len() % 250 + 2)
        };
        state.sandboxes.insert(
            id.clone(),
            FakeSandbox {
                id: id.clone(),
                metadata,
                ready: true,
                created_at,
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
                ip,
                config,
            },
        );
        Ok(Response::new(cri::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.call("StopPodSandbox", &id)?;
        // Stopping a sandbox kills its containers, as a runtime does.
        let inside: Vec<String> = state
            .containers
            .values()
            .filter(|c| c.sandbox_id == id)
            .map(|c| c.id.clone())
            .collect();
        for c in inside {
            state.exit(&c, 137);
        }
        match state.sandboxes.get_mut(&id) {
            Some(s) => s.ready = false,
            None => return Err(Status::not_found(format!("sandbox {id:?} not found"))),
        }
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.call("RemovePodSandbox", &id)?;
        if state.sandboxes.remove(&id).is_none() {
            return Err(Status::not_found(format!("sandbox {id:?} not found")));
        }
        state.containers.retain(|_, c| c.sandbox_id != id);
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.call("PodSandboxStatus", &id)?;
        let s = state
            .sandboxes
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("sandbox {id:?} not found")))?;
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(cri::PodSandboxStatus {
                id: s.id.clone(),
                metadata: Some(s.metadata.clone()),
                state: sandbox_state(s.ready),
                created_at: s.created_at,
                labels: s.labels.clone(),
                annotations: s.annotations.clone(),
                network: (!s.ip.is_empty()).then(|| cri::PodSandboxNetworkStatus {
                    ip: s.ip.clone(),
                    additional_ips: Vec::new(),
                }),
                ..cri::PodSandboxStatus::default()
            }),
            info: HashMap::new(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let mut state = self.state();
        state.call("ListPodSandbox", "")?;
        let items = state
            .sandboxes
            .values()
            .filter(|s| filter.id.is_empty() || s.id == filter.id)
            .filter(|s| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|v| v.state == sandbox_state(s.ready))
            })
            .filter(|s| selected(&s.labels, &filter.label_selector))
            .map(|s| cri::PodSandbox {
                id: s.id.clone(),
                metadata: Some(s.metadata.clone()),
                state: sandbox_state(s.ready),
                created_at: s.created_at,
                labels: s.labels.clone(),
                annotations: s.annotations.clone(),
                ..cri::PodSandbox::default()
            })
            .collect();
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let r = r.into_inner();
        let config = r.config.unwrap_or_default();
        let metadata = config.metadata.unwrap_or_default();
        let mut state = self.state();
        state.call("CreateContainer", &metadata.name)?;
        match state.sandboxes.get(&r.pod_sandbox_id) {
            Some(s) if s.ready => {}
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "sandbox {:?} is not ready",
                    r.pod_sandbox_id
                )));
            }
            None => {
                return Err(Status::not_found(format!(
                    "sandbox {:?} not found",
                    r.pod_sandbox_id
                )));
            }
        }
        let id = state.id("container");
        let created_at = state.now();
        state.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                sandbox_id: r.pod_sandbox_id,
                metadata,
                image: image_of(config.image.as_ref()),
                state: cri::ContainerState::ContainerCreated,
                exit_code: 0,
                created_at,
                started_at: 0,
                finished_at: 0,
                labels: config.labels,
                annotations: config.annotations,
                log_path: config.log_path,
            },
        );
        Ok(Response::new(cri::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("StartContainer", &id)?;
        let c = state.container(&id)?;
        if c.state != cri::ContainerState::ContainerCreated {
            return Err(Status::failed_precondition(format!(
                "container {id:?} is not in created state"
            )));
        }
        let exit = state.exit_on_start.get(c.name()).copied();
        let now = state.now();
        if let Some(c) = state.containers.get_mut(&id) {
            c.state = cri::ContainerState::ContainerRunning;
            c.started_at = now;
        }
        if let Some(code) = exit {
            state.exit(&id, code);
        }
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let r = r.into_inner();
        let id = r.container_id;
        let mut state = self.state();
        state.call("StopContainer", &id)?;
        state.stop_timeouts.push((id.clone(), r.timeout));
        state.container(&id)?;
        // SIGTERM, as a shell running `sleep` answers it.
        state.exit(&id, 143);
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("RemoveContainer", &id)?;
        if state.containers.remove(&id).is_none() {
            return Err(Status::not_found(format!("container {id:?} not found")));
        }
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let mut state = self.state();
        state.call("ListContainers", "")?;
        let containers = state
            .containers
            .values()
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| filter.pod_sandbox_id.is_empty() || c.sandbox_id == filter.pod_sandbox_id)
            .filter(|c| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|v| v.state == c.state as i32)
            })
            .filter(|c| selected(&c.labels, &filter.label_selector))
            .map(|c| cri::Container {
                id: c.id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: Some(c.metadata.clone()),
                image: Some(crate::image_spec(&c.image)),
                image_ref: c.image.clone(),
                state: c.state as i32,
                created_at: c.created_at,
                labels: c.labels.clone(),
                annotations: c.annotations.clone(),
                ..cri::Container::default()
            })
            .collect();
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("ContainerStatus", &id)?;
        let status = status_of(state.container(&id)?);
        Ok(Response::new(cri::ContainerStatusResponse {
            status: Some(status),
            info: HashMap::new(),
        }))
    }

    async fn status(
        &self,
        _: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        self.state().call("Status", "")?;
        let ready = |t: &str| cri::RuntimeCondition {
            r#type: t.to_owned(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![ready("RuntimeReady"), ready("NetworkReady")],
            }),
            info: HashMap::new(),
        }))
    }

    async fn exec_sync(
        &self,
        r: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let r = r.into_inner();
        let mut state = self.state();
        state.call("ExecSync", &r.container_id)?;
        state.container(&r.container_id)?;
        state.execs.push((r.container_id, r.cmd));
        Ok(Response::new(cri::ExecSyncResponse::default()))
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        let mut state = self.state();
        state.call("UpdateRuntimeConfig", &cidr)?;
        state.pod_cidrs.push(cidr);
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("ReopenContainerLog", &id)?;
        let c = state.container(&id)?;
        if c.state != cri::ContainerState::ContainerRunning {
            return Err(Status::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        // A runtime creates the file anew at its path; so does the fake.
        if !c.log_path.is_empty() {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&c.log_path);
        }
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }

    async fn exec(
        &self,
        r: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("Exec", &id)?;
        state.container(&id)?;
        Err(Status::unimplemented(
            "the fake runtime has no streaming server",
        ))
    }

    async fn attach(
        &self,
        r: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let id = r.into_inner().container_id;
        let mut state = self.state();
        state.call("Attach", &id)?;
        state.container(&id)?;
        Err(Status::unimplemented(
            "the fake runtime has no streaming server",
        ))
    }

    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.call("PortForward", &id)?;
        if !state.sandboxes.contains_key(&id) {
            return Err(Status::not_found(format!("sandbox {id} not found")));
        }
        Err(Status::unimplemented(
            "the fake runtime has no streaming server",
        ))
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let mut state = self.state();
        state.call("ListContainerStats", &filter.id)?;
        let stats = state
            .containers
            .values()
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| filter.pod_sandbox_id.is_empty() || c.sandbox_id == filter.pod_sandbox_id)
            .map(fake_stats)
            .collect();
        Ok(Response::new(cri::ListContainerStatsResponse { stats }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let mut state = self.state();
        state.call("ListPodSandboxStats", &filter.id)?;
        let stats = state
            .sandboxes
            .values()
            .filter(|s| s.ready && (filter.id.is_empty() || s.id == filter.id))
            .map(|s| cri::PodSandboxStats {
                attributes: Some(cri::PodSandboxAttributes {
                    id: s.id.clone(),
                    metadata: Some(s.metadata.clone()),
                    labels: s.labels.clone(),
                    annotations: s.annotations.clone(),
                }),
                linux: Some(cri::LinuxPodSandboxStats {
                    containers: state
                        .containers
                        .values()
                        .filter(|c| c.sandbox_id == s.id)
                        .map(fake_stats)
                        .collect(),
                    ..cri::LinuxPodSandboxStats::default()
                }),
            })
            .collect();
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
    }

    async fn checkpoint_container(
        &self,
        r: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        self.state().call("CheckpointContainer", &id)?;
        Err(Status::unimplemented(
            "method CheckpointContainer not implemented",
        ))
    }
}

#[tonic::async_trait]
impl ImageService for Service {
    async fn image_status(
        &self,
        r: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let image = image_of(r.into_inner().image.as_ref());
        let mut state = self.state();
        state.call("ImageStatus", &image)?;
        let found = state.images.contains(&image).then(|| cri::Image {
            id: format!("sha256:fake-{image}"),
            repo_tags: vec![image.clone()],
            spec: Some(crate::image_spec(&image)),
            ..cri::Image::default()
        });
        Ok(Response::new(cri::ImageStatusResponse {
            image: found,
            info: HashMap::new(),
        }))
    }

    async fn pull_image(
        &self,
        r: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let image = image_of(r.into_inner().image.as_ref());
        let mut state = self.state();
        state.call("PullImage", &image)?;
        state.images.insert(image.clone());
        Ok(Response::new(cri::PullImageResponse {
            image_ref: format!("sha256:fake-{image}"),
        }))
    }

    async fn image_fs_info(
        &self,
        _: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        self.state().call("ImageFsInfo", "")?;
        Ok(Response::new(cri::ImageFsInfoResponse::default()))
    }
}
