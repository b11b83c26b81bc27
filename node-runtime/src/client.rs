//! A CRI `runtime.v1` client over Unix sockets, configured like the kubelet's (16 MiB
//! messages, the kubelet's deadline for each call, an optional separate image service
//! endpoint), that waits for a runtime that is still starting.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::cri;
use crate::cri::image_service_client::ImageServiceClient;
use crate::cri::runtime_service_client::RuntimeServiceClient;
use crate::error::RuntimeError;

/// The kubelet's maximum CRI message size (16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// The CRI API version the kubelet announces in `Version`.
pub const KUBE_RUNTIME_API_VERSION: &str = "0.1.0";

/// The longest deadline any call gets (Go's largest `time.Duration`, about 292 years). Longer
/// computed deadlines (a huge grace period) are capped here: tonic's `grpc-timeout` encoder
/// panics on durations it cannot write in 8 digits of hours, and timers need a finite instant.
pub const MAX_DEADLINE: Duration = Duration::from_secs(i64::MAX.unsigned_abs() / 1_000_000_000);

/// How to reach the runtime.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long to keep retrying while the socket is missing or refuses connections.
    pub connect_timeout: Duration,
    /// `runtimeRequestTimeout` (default 2m): the base of every call's deadline
    /// ([`call_deadline`]), as the kubelet's CRI client uses it.
    pub request_timeout: Duration,
}

/// The deadline of one CRI call as the kubelet's CRI client sets it (`k8s.io/cri-client`
/// v0.35.0 `pkg/remote_runtime.go`, `pkg/remote_image.go`): `request_timeout`
/// (`runtimeRequestTimeout`) for ordinary calls, twice that for `RunPodSandbox`,
/// `request_timeout` plus the grace period for `StopContainer`, `request_timeout` plus the
/// command's own timeout for `ExecSync` (none when that is 0), and none at all for `PullImage`
/// and the `GetContainerEvents` stream. `extra_seconds` is the grace period or exec timeout
/// (negative counts as 0). `None` means no deadline; a deadline is at most [`MAX_DEADLINE`].
pub fn call_deadline(
    call: &str,
    request_timeout: Duration,
    extra_seconds: i64,
) -> Option<Duration> {
    let extra = Duration::from_secs(u64::try_from(extra_seconds).unwrap_or(0));
    let deadline = match call {
        "PullImage" | "GetContainerEvents" => return None,
        "ExecSync" if extra_seconds <= 0 => return None,
        "RunPodSandbox" => request_timeout.saturating_mul(2),
        "StopContainer" | "ExecSync" => request_timeout.saturating_add(extra),
        _ => request_timeout,
    };
    Some(deadline.min(MAX_DEADLINE))
}

/// The streams of an exec or attach (`input`, `output`, `error`, `tty` query parameters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamFlags {
    /// Stdin is streamed.
    pub stdin: bool,
    /// Stdout is streamed.
    pub stdout: bool,
    /// Stderr is streamed (never with a TTY: it joins stdout).
    pub stderr: bool,
    /// A TTY is allocated.
    pub tty: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl ClientOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    #[must_use]
    pub fn with_request_timeout(mut self, request_timeout: Duration) -> Self {
        self.request_timeout = request_timeout;
        self
    }
}

/// The runtime's `Version` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// e.g. `containerd`.
    pub runtime_name: String,
    /// e.g. `1.6.20~ds1`.
    pub runtime_version: String,
    /// e.g. `v1`.
    pub runtime_api_version: String,
}

/// A connected CRI client: the runtime service, and the image service on the same endpoint or
/// on its own (`imageServiceEndpoint`).
#[derive(Debug, Clone)]
pub struct CriClient {
    endpoint: String,
    image_endpoint: String,
    socket: PathBuf,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
    version: RuntimeVersion,
    request_timeout: Duration,
}

/// Turns `unix:///run/x.sock` (or `/run/x.sock`) into the socket path.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, RuntimeError> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.is_empty() || !Path::new(path).is_absolute() {
        return Err(RuntimeError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(PathBuf::from(path))
}

impl CriClient {
    /// Connects to `endpoint`, retrying while the runtime starts, and checks that it speaks
    /// `runtime.v1` with a `Version` call.
    pub async fn connect(endpoint: &str, options: &ClientOptions) -> Result<Self, RuntimeError> {
        Self::connect_with_image_endpoint(endpoint, None, options).await
    }

    /// Connects like [`CriClient::connect`], with the image service on `image_endpoint` when
    /// it is given and names another socket (`imageServiceEndpoint`; the kubelet uses the
    /// runtime endpoint when it is empty). A separate image endpoint is checked with an
    /// `ImageFsInfo` call, as the kubelet's image client validates its connection
    /// (`k8s.io/cri-client` v0.35.0 `pkg/remote_image.go` `validateServiceConnection`);
    /// failing that is [`RuntimeError::ImageService`].
    pub async fn connect_with_image_endpoint(
        endpoint: &str,
        image_endpoint: Option<&str>,
        options: &ClientOptions,
    ) -> Result<Self, RuntimeError> {
        let path = socket_path(endpoint)?;
        let endpoint_url = format!("unix://{}", path.display());
        let channel = connect_retrying(&path, &endpoint_url, options.connect_timeout).await?;
        let mut runtime = RuntimeServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let image_path = match image_endpoint.filter(|e| !e.is_empty()) {
            Some(e) => Some(socket_path(e)?).filter(|p| *p != path),
            None => None,
        };
        let (image_channel, image_endpoint_url) = match &image_path {
            Some(p) => {
                let url = format!("unix://{}", p.display());
                let ch = connect_retrying(p, &url, options.connect_timeout)
                    .await
                    .map_err(|e| match e {
                        RuntimeError::Unreachable { endpoint, reason } => {
                            RuntimeError::ImageService { endpoint, reason }
                        }
                        other => other,
                    })?;
                (ch, url)
            }
            None => (channel, endpoint_url.clone()),
        };
        let mut image = ImageServiceClient::new(image_channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        // The kubelet's connection context (runtimeRequestTimeout) covers the Version call.
        let deadline = call_deadline("Version", options.request_timeout, 0);
        let request = bounded_request(
            cri::VersionRequest {
                version: KUBE_RUNTIME_API_VERSION.to_owned(),
            },
            deadline,
        );
        let answer = with_deadline(deadline, runtime.version(request))
            .await
            .map_err(|status| match status.code() {
                tonic::Code::Unimplemented => RuntimeError::WrongVersion {
                    endpoint: endpoint_url.clone(),
                    reason: status.message().to_owned(),
                },
                _ => RuntimeError::Unreachable {
                    endpoint: endpoint_url.clone(),
                    reason: status.to_string(),
                },
            })?
            .into_inner();
        if answer.runtime_api_version != "v1" {
            return Err(RuntimeError::WrongVersion {
                endpoint: endpoint_url,
                reason: format!("runtime API version {:?}", answer.runtime_api_version),
            });
        }
        if image_path.is_some() {
            let deadline = call_deadline("ImageFsInfo", options.request_timeout, 0);
            let request = bounded_request(cri::ImageFsInfoRequest {}, deadline);
            with_deadline(deadline, image.image_fs_info(request))
                .await
                .map_err(|status| RuntimeError::ImageService {
                    endpoint: image_endpoint_url.clone(),
                    reason: status.to_string(),
                })?;
        }
        let version = RuntimeVersion {
            runtime_name: answer.runtime_name,
            runtime_version: answer.runtime_version,
            runtime_api_version: answer.runtime_api_version,
        };
        Ok(Self {
            endpoint: endpoint_url,
            image_endpoint: image_endpoint_url,
            socket: path,
            runtime,
            image,
            version,
            request_timeout: options.request_timeout,
        })
    }

    /// Runs one call under the kubelet's deadline for it ([`call_deadline`]): the deadline
    /// goes to the runtime as `grpc-timeout` and bounds the wait here.
    async fn call<Req, Resp, F, Fut>(
        &self,
        name: &'static str,
        extra_seconds: i64,
        message: Req,
        send: F,
    ) -> Result<Resp, RuntimeError>
    where
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let deadline = call_deadline(name, self.request_timeout, extra_seconds);
        with_deadline(deadline, send(bounded_request(message, deadline)))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| RuntimeError::call(name, s))
    }

    /// The endpoint as `unix:///path`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The image service's endpoint as `unix:///path` (the runtime's unless a separate one
    /// was given).
    pub fn image_endpoint(&self) -> &str {
        &self.image_endpoint
    }

    /// `runtimeRequestTimeout`, the base of every call's deadline.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The same connections with another `runtimeRequestTimeout` for the calls made through
    /// the returned client.
    #[must_use]
    pub fn with_request_timeout(&self, request_timeout: Duration) -> Self {
        Self {
            request_timeout,
            ..self.clone()
        }
    }

    /// The runtime's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A new connection to the same socket, for long-lived streams (kept apart from the
    /// calls so a stream never shares their connection's flow control).
    pub(crate) async fn stream_channel(&self) -> Result<Channel, RuntimeError> {
        connect_once(&self.socket)
            .await
            .map_err(|reason| RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason,
            })
    }

    /// What the runtime said about itself.
    pub fn version(&self) -> &RuntimeVersion {
        &self.version
    }

    /// The runtime service stub, for calls this wrapper does not cover (the caller sets their
    /// deadlines, see [`call_deadline`]).
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// `Status`: the runtime's conditions (`RuntimeReady`, `NetworkReady`).
    pub async fn status(&self) -> Result<Vec<cri::RuntimeCondition>, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::StatusRequest { verbose: false };
        let resp = self
            .call(
                "Status",
                0,
                req,
                move |r| async move { stub.status(r).await },
            )
            .await?;
        Ok(resp.status.map(|s| s.conditions).unwrap_or_default())
    }

    /// `Status`, reduced to what the kubelet's `updateRuntimeUp` feeds the Ready condition:
    /// `None` when the runtime is ready, else its `RuntimeReady` condition as the kubelet
    /// prints it ([`runtime_not_ready`]).
    ///
    /// # Errors
    /// The `Status` call failed: the runtime did not answer (the caller keeps the last
    /// answer's time, so the node turns NotReady once it is too old).
    pub async fn runtime_not_ready(&self) -> Result<Option<String>, RuntimeError> {
        Ok(runtime_not_ready(&self.status().await?))
    }

    /// `RunPodSandbox`.
    pub async fn run_pod_sandbox(
        &self,
        config: cri::PodSandboxConfig,
    ) -> Result<String, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let resp = self
            .call("RunPodSandbox", 0, req, move |r| async move {
                stub.run_pod_sandbox(r).await
            })
            .await?;
        Ok(resp.pod_sandbox_id)
    }

    /// `StopPodSandbox` (idempotent; force-stops remaining containers).
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.call("StopPodSandbox", 0, req, move |r| async move {
            stub.stop_pod_sandbox(r).await
        })
        .await?;
        Ok(())
    }

    /// `RemovePodSandbox` (idempotent; force-removes remaining containers).
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.call("RemovePodSandbox", 0, req, move |r| async move {
            stub.remove_pod_sandbox(r).await
        })
        .await?;
        Ok(())
    }

    /// `PodSandboxStatus`: the sandbox's state and network (its IPs, from the runtime's
    /// CNI result).
    pub async fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> Result<cri::PodSandboxStatus, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        let resp = self
            .call("PodSandboxStatus", 0, req, move |r| async move {
                stub.pod_sandbox_status(r).await
            })
            .await?;
        resp.status.ok_or_else(|| {
            RuntimeError::call(
                "PodSandboxStatus",
                tonic::Status::internal(format!(
                    "the runtime answered without a status for sandbox {id}"
                )),
            )
        })
    }

    /// `UpdateRuntimeConfig` with the node's pod CIDR (`spec.podCIDR`), as the kubelet does
    /// when the Node's CIDR is first seen or changes (`updatePodCIDR`).
    pub async fn update_pod_cidr(&self, pod_cidr: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig {
                network_config: Some(cri::NetworkConfig {
                    pod_cidr: pod_cidr.to_owned(),
                }),
            }),
        };
        self.call("UpdateRuntimeConfig", 0, req, move |r| async move {
            stub.update_runtime_config(r).await
        })
        .await?;
        Ok(())
    }

    /// `ListPodSandbox` with a label selector.
    pub async fn list_pod_sandboxes(
        &self,
        label_selector: std::collections::HashMap<String, String>,
    ) -> Result<Vec<cri::PodSandbox>, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                id: String::new(),
                state: None,
                label_selector,
            }),
        };
        let resp = self
            .call("ListPodSandbox", 0, req, move |r| async move {
                stub.list_pod_sandbox(r).await
            })
            .await?;
        Ok(resp.items)
    }

    /// `CreateContainer`.
    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let resp = self
            .call("CreateContainer", 0, req, move |r| async move {
                stub.create_container(r).await
            })
            .await?;
        Ok(resp.container_id)
    }

    /// `StartContainer`.
    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("StartContainer", 0, req, move |r| async move {
            stub.start_container(r).await
        })
        .await?;
        Ok(())
    }

    /// `StopContainer` with a grace period in seconds (then SIGKILL); the call may take the
    /// request timeout plus the grace period.
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: grace_seconds,
        };
        self.call("StopContainer", grace_seconds, req, move |r| async move {
            stub.stop_container(r).await
        })
        .await?;
        Ok(())
    }

    /// `ExecSync`: runs `cmd` in the running container `id` and waits for it, at most
    /// `timeout_seconds` (0: no limit but the call's own); returns its exit code and output.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_seconds: i64,
    ) -> Result<cri::ExecSyncResponse, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd,
            timeout: timeout_seconds,
        };
        let resp = self
            .call("ExecSync", timeout_seconds, req, move |r| async move {
                stub.exec_sync(r).await
            })
            .await?;
        Ok(resp)
    }

    /// `RemoveContainer`.
    pub async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("RemoveContainer", 0, req, move |r| async move {
            stub.remove_container(r).await
        })
        .await?;
        Ok(())
    }

    /// `ListContainers` with a label selector (and optionally one sandbox).
    pub async fn list_containers(
        &self,
        sandbox_id: Option<&str>,
        label_selector: std::collections::HashMap<String, String>,
    ) -> Result<Vec<cri::Container>, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                id: String::new(),
                state: None,
                pod_sandbox_id: sandbox_id.unwrap_or_default().to_owned(),
                label_selector,
            }),
        };
        let resp = self
            .call("ListContainers", 0, req, move |r| async move {
                stub.list_containers(r).await
            })
            .await?;
        Ok(resp.containers)
    }

    /// `ContainerStatus`.
    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        let resp = self
            .call("ContainerStatus", 0, req, move |r| async move {
                stub.container_status(r).await
            })
            .await?;
        resp.status.ok_or_else(|| {
            RuntimeError::call(
                "ContainerStatus",
                tonic::Status::not_found("no status in answer"),
            )
        })
    }

    /// `CheckpointContainer` (`timeout` in seconds; 0 = the runtime's default) under the
    /// request timeout. The kubelet's checkpoint API computes its own deadline
    /// (`node-checkpoint`'s service calls the stub directly).
    pub async fn checkpoint_container(
        &self,
        id: &str,
        location: &str,
        timeout: i64,
    ) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::CheckpointContainerRequest {
            container_id: id.to_owned(),
            location: location.to_owned(),
            timeout,
        };
        self.call("CheckpointContainer", 0, req, move |r| async move {
            stub.checkpoint_container(r).await
        })
        .await?;
        Ok(())
    }

    /// `Exec`: asks the runtime's streaming server for a single-use URL that runs `cmd` in
    /// the container with the given streams (the kubelet's `GetExec`). The caller proxies the
    /// client's upgraded connection to it.
    pub async fn exec_url(
        &self,
        id: &str,
        cmd: Vec<String>,
        streams: StreamFlags,
    ) -> Result<String, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ExecRequest {
            container_id: id.to_owned(),
            cmd,
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let resp = self
            .call("Exec", 0, req, move |r| async move { stub.exec(r).await })
            .await?;
        Ok(resp.url)
    }

    /// `Attach`: a single-use streaming URL attached to the container's main process.
    pub async fn attach_url(&self, id: &str, streams: StreamFlags) -> Result<String, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::AttachRequest {
            container_id: id.to_owned(),
            stdin: streams.stdin,
            tty: streams.tty,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let resp = self
            .call(
                "Attach",
                0,
                req,
                move |r| async move { stub.attach(r).await },
            )
            .await?;
        Ok(resp.url)
    }

    /// `PortForward`: a single-use streaming URL forwarding into the sandbox's network
    /// namespace (`ports` may be empty: SPDY clients name the port per stream).
    pub async fn port_forward_url(
        &self,
        sandbox_id: &str,
        ports: Vec<i32>,
    ) -> Result<String, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::PortForwardRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            port: ports,
        };
        let resp = self
            .call("PortForward", 0, req, move |r| async move {
                stub.port_forward(r).await
            })
            .await?;
        Ok(resp.url)
    }

    /// `ReopenContainerLog`: the runtime closes the container's log file and opens its path
    /// anew (after the kubelet renamed it for rotation, or when it went missing).
    pub async fn reopen_container_log(&self, id: &str) -> Result<(), RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ReopenContainerLogRequest {
            container_id: id.to_owned(),
        };
        self.call("ReopenContainerLog", 0, req, move |r| async move {
            stub.reopen_container_log(r).await
        })
        .await?;
        Ok(())
    }

    /// `ListContainerStats` of every container (or those of one sandbox).
    pub async fn list_container_stats(
        &self,
        sandbox_id: Option<&str>,
    ) -> Result<Vec<cri::ContainerStats>, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ListContainerStatsRequest {
            filter: Some(cri::ContainerStatsFilter {
                pod_sandbox_id: sandbox_id.unwrap_or_default().to_owned(),
                ..cri::ContainerStatsFilter::default()
            }),
        };
        let resp = self
            .call("ListContainerStats", 0, req, move |r| async move {
                stub.list_container_stats(r).await
            })
            .await?;
        Ok(resp.stats)
    }

    /// `ListPodSandboxStats` of every ready sandbox.
    pub async fn list_pod_sandbox_stats(&self) -> Result<Vec<cri::PodSandboxStats>, RuntimeError> {
        let mut stub = self.runtime.clone();
        let req = cri::ListPodSandboxStatsRequest { filter: None };
        let resp = self
            .call("ListPodSandboxStats", 0, req, move |r| async move {
                stub.list_pod_sandbox_stats(r).await
            })
            .await?;
        Ok(resp.stats)
    }

    /// `ImageFsInfo`: the image and container filesystems the runtime reports.
    pub async fn image_fs_info(&self) -> Result<cri::ImageFsInfoResponse, RuntimeError> {
        let mut stub = self.image.clone();
        self.call(
            "ImageFsInfo",
            0,
            cri::ImageFsInfoRequest {},
            move |r| async move { stub.image_fs_info(r).await },
        )
        .await
    }

    /// Whether the image is present (`ImageStatus`).
    pub async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        let mut stub = self.image.clone();
        let req = cri::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let resp = self
            .call("ImageStatus", 0, req, move |r| async move {
                stub.image_status(r).await
            })
            .await?;
        Ok(resp.image.is_some())
    }

    /// `PullImage` (no deadline, as the kubelet's: a large image may take long); returns the
    /// image reference.
    pub async fn pull_image(&self, image: &str) -> Result<String, RuntimeError> {
        let mut stub = self.image.clone();
        let req = cri::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: None,
        };
        let resp = self
            .call("PullImage", 0, req, move |r| async move {
                stub.pull_image(r).await
            })
            .await?;
        Ok(resp.image_ref)
    }
}

/// An `ImageSpec` for a plain image reference.
pub fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.to_owned(),
        user_specified_image: image.to_owned(),
        ..Default::default()
    }
}

/// Dials `path`, retrying with back-off while the runtime starts (socket missing, connection
/// refused) for up to `connect_timeout`.
async fn connect_retrying(
    path: &Path,
    endpoint_url: &str,
    connect_timeout: Duration,
) -> Result<Channel, RuntimeError> {
    let deadline = Instant::now() + connect_timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        match connect_once(path).await {
            Ok(channel) => return Ok(channel),
            Err(reason) if Instant::now() + delay < deadline => {
                tracing::debug!(endpoint = %endpoint_url, %reason, "container runtime not ready, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(reason) => {
                return Err(RuntimeError::Unreachable {
                    endpoint: endpoint_url.to_owned(),
                    reason,
                });
            }
        }
    }
}

/// A request carrying `deadline` as its `grpc-timeout`, so the runtime gives up when the
/// caller does (a Go context deadline travels the same way).
fn bounded_request<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(d) = deadline {
        // At most MAX_DEADLINE (call_deadline caps), well inside what tonic can encode.
        request.set_timeout(d.min(MAX_DEADLINE));
    }
    request
}

/// Waits for `call` for at most `deadline`; running out is `DEADLINE_EXCEEDED`, as a Go
/// context deadline is for the kubelet.
async fn with_deadline<T>(
    deadline: Option<Duration>,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let Some(d) = deadline else {
        return call.await;
    };
    let exceeded = || {
        tonic::Status::deadline_exceeded(format!(
            "context deadline exceeded (no answer within {d:?})"
        ))
    };
    match tokio::time::timeout(d, call).await {
        // tonic's channel enforces the request's grpc-timeout itself and reports it as
        // CANCELLED "Timeout expired"; it is the deadline all the same.
        Ok(Err(status))
            if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" =>
        {
            Err(exceeded())
        }
        Ok(result) => result,
        Err(_) => Err(exceeded()),
    }
}

async fn connect_once(path: &Path) -> Result<Channel, String> {
    // Fail fast with a precise reason before handing the path to the connector.
    match tokio::fs::metadata(path).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("socket {} does not exist", path.display()));
        }
        Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
    }
    let path = path.to_path_buf();
    // The authority is a placeholder (the kubelet uses "localhost"); the connector ignores it.
    // No channel-wide timeout: each call carries its own deadline (CriClient::call).
    let endpoint = Endpoint::try_from("http://localhost").map_err(|e| e.to_string())?;
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        })
}

/// The runtime's `RuntimeReady` condition when it is false, in the kubelet's words
/// (`RuntimeReady=false reason:... message:...`, pkg/kubelet/kubelet.go `updateRuntimeUp`);
/// `None` when the runtime reports itself ready. A missing condition counts as ready here:
/// the kubelet treats it as not ready, but containerd 1.6 always sends it, and the agent's
/// Ready condition then still follows whether the runtime answers at all. `NetworkReady` is
/// not consulted: the agent runs host-network pods only (README, differences from the
/// kubelet).
#[must_use]
pub fn runtime_not_ready(conditions: &[cri::RuntimeCondition]) -> Option<String> {
    conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady" && !c.status)
        .map(|c| {
            format!(
                "{}=false reason:{} message:{}",
                c.r#type, c.reason, c.message
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(120);

    /// The kubelet's table (`k8s.io/cri-client` v0.35.0 `pkg/remote_runtime.go`,
    /// `pkg/remote_image.go`).
    #[test]
    fn call_deadlines_follow_the_kubelets_cri_client() {
        for call in [
            "Version",
            "Status",
            "StopPodSandbox",
            "RemovePodSandbox",
            "ListPodSandbox",
            "CreateContainer",
            "StartContainer",
            "RemoveContainer",
            "ListContainers",
            "ContainerStatus",
            "ImageStatus",
            "ImageFsInfo",
            "CheckpointContainer",
        ] {
            assert_eq!(call_deadline(call, T, 0), Some(T), "{call}");
            // Extra seconds only count where the kubelet adds them.
            assert_eq!(call_deadline(call, T, 600), Some(T), "{call}");
        }
        assert_eq!(
            call_deadline("RunPodSandbox", T, 0),
            Some(Duration::from_secs(240))
        );
        assert_eq!(
            call_deadline("StopContainer", T, 600),
            Some(Duration::from_secs(720))
        );
        assert_eq!(call_deadline("StopContainer", T, -5), Some(T));
        assert_eq!(
            call_deadline("ExecSync", T, 10),
            Some(Duration::from_secs(130))
        );
        assert_eq!(call_deadline("ExecSync", T, 0), None);
        assert_eq!(call_deadline("PullImage", T, 0), None);
        assert_eq!(call_deadline("GetContainerEvents", T, 0), None);
    }

    /// A hostile grace period (`terminationGracePeriodSeconds: 9223372036854775807`) or
    /// request timeout never overflows and stays encodable as `grpc-timeout`.
    #[test]
    fn huge_deadlines_are_capped() {
        assert_eq!(
            call_deadline("StopContainer", T, i64::MAX),
            Some(MAX_DEADLINE)
        );
        assert_eq!(
            call_deadline("RunPodSandbox", Duration::MAX, 0),
            Some(MAX_DEADLINE)
        );
        assert_eq!(
            call_deadline("Status", Duration::MAX, 0),
            Some(MAX_DEADLINE)
        );
        // tonic accepts the cap (it panics beyond 99,999,999 hours).
        let r = bounded_request((), Some(Duration::MAX));
        assert!(r.metadata().get("grpc-timeout").is_some());
    }

    #[test]
    fn runtime_not_ready_reads_the_runtime_ready_condition_only() {
        let c = |t: &str, status: bool| cri::RuntimeCondition {
            r#type: t.to_owned(),
            status,
            reason: "R".to_owned(),
            message: "m".to_owned(),
        };
        assert_eq!(
            runtime_not_ready(&[c("RuntimeReady", true), c("NetworkReady", false)]),
            None
        );
        assert_eq!(
            runtime_not_ready(&[c("NetworkReady", true), c("RuntimeReady", false)]).as_deref(),
            Some("RuntimeReady=false reason:R message:m")
        );
    }
}
