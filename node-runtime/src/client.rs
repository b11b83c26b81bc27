//! A CRI `runtime.v1` client over a Unix socket, configured like the kubelet's (16 MiB
//! messages, a per-request timeout), that waits for a runtime that is still starting.

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

/// How to reach the runtime.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long to keep retrying while the socket is missing or refuses connections.
    pub connect_timeout: Duration,
    /// Timeout of each request (`runtimeRequestTimeout`, default 2m).
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
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

/// A connected CRI client (runtime and image services on one endpoint).
#[derive(Debug, Clone)]
pub struct CriClient {
    endpoint: String,
    socket: PathBuf,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
    version: RuntimeVersion,
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
        let path = socket_path(endpoint)?;
        let endpoint_url = format!("unix://{}", path.display());
        let deadline = Instant::now() + options.connect_timeout;
        let mut delay = Duration::from_millis(50);
        let channel = loop {
            match connect_once(&path, Some(options.request_timeout)).await {
                Ok(channel) => break channel,
                Err(reason) if Instant::now() + delay < deadline => {
                    tracing::debug!(endpoint = %endpoint_url, %reason, "container runtime not ready, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(reason) => {
                    return Err(RuntimeError::Unreachable {
                        endpoint: endpoint_url,
                        reason,
                    });
                }
            }
        };
        let mut runtime = RuntimeServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let image = ImageServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let answer = runtime
            .version(cri::VersionRequest {
                version: KUBE_RUNTIME_API_VERSION.to_owned(),
            })
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
        let version = RuntimeVersion {
            runtime_name: answer.runtime_name,
            runtime_version: answer.runtime_version,
            runtime_api_version: answer.runtime_api_version,
        };
        Ok(Self {
            endpoint: endpoint_url,
            socket: path,
            runtime,
            image,
            version,
        })
    }

    /// The endpoint as `unix:///path`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The runtime's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A new connection to the same socket without a per-request timeout, for long-lived
    /// streams (a timeout would cut a stream whose first message is long in coming).
    pub(crate) async fn stream_channel(&self) -> Result<Channel, RuntimeError> {
        connect_once(&self.socket, None)
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

    /// The runtime service stub, for calls this wrapper does not cover.
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// `Status`: the runtime's conditions (`RuntimeReady`, `NetworkReady`).
    pub async fn status(&self) -> Result<Vec<cri::RuntimeCondition>, RuntimeError> {
        let resp = self
            .runtime
            .clone()
            .status(cri::StatusRequest { verbose: false })
            .await;
        let resp = resp
            .map_err(|s| RuntimeError::call("Status", s))?
            .into_inner();
        Ok(resp.status.map(|s| s.conditions).unwrap_or_default())
    }

    /// `RunPodSandbox`.
    pub async fn run_pod_sandbox(
        &self,
        config: cri::PodSandboxConfig,
    ) -> Result<String, RuntimeError> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let resp = self.runtime.clone().run_pod_sandbox(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("RunPodSandbox", s))?
            .into_inner()
            .pod_sandbox_id)
    }

    /// `StopPodSandbox` (idempotent; force-stops remaining containers).
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(req)
            .await
            .map_err(|s| RuntimeError::call("StopPodSandbox", s))?;
        Ok(())
    }

    /// `RemovePodSandbox` (idempotent; force-removes remaining containers).
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(req)
            .await
            .map_err(|s| RuntimeError::call("RemovePodSandbox", s))?;
        Ok(())
    }

    /// `ListPodSandbox` with a label selector.
    pub async fn list_pod_sandboxes(
        &self,
        label_selector: std::collections::HashMap<String, String>,
    ) -> Result<Vec<cri::PodSandbox>, RuntimeError> {
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                id: String::new(),
                state: None,
                label_selector,
            }),
        };
        let resp = self.runtime.clone().list_pod_sandbox(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("ListPodSandbox", s))?
            .into_inner()
            .items)
    }

    /// `CreateContainer`.
    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, RuntimeError> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let resp = self.runtime.clone().create_container(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("CreateContainer", s))?
            .into_inner()
            .container_id)
    }

    /// `StartContainer`.
    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let req = cri::StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .start_container(req)
            .await
            .map_err(|s| RuntimeError::call("StartContainer", s))?;
        Ok(())
    }

    /// `StopContainer` with a grace period in seconds (then SIGKILL).
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), RuntimeError> {
        let req = cri::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: grace_seconds,
        };
        self.runtime
            .clone()
            .stop_container(req)
            .await
            .map_err(|s| RuntimeError::call("StopContainer", s))?;
        Ok(())
    }

    /// `RemoveContainer`.
    pub async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .remove_container(req)
            .await
            .map_err(|s| RuntimeError::call("RemoveContainer", s))?;
        Ok(())
    }

    /// `ListContainers` with a label selector (and optionally one sandbox).
    pub async fn list_containers(
        &self,
        sandbox_id: Option<&str>,
        label_selector: std::collections::HashMap<String, String>,
    ) -> Result<Vec<cri::Container>, RuntimeError> {
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                id: String::new(),
                state: None,
                pod_sandbox_id: sandbox_id.unwrap_or_default().to_owned(),
                label_selector,
            }),
        };
        let resp = self.runtime.clone().list_containers(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("ListContainers", s))?
            .into_inner()
            .containers)
    }

    /// `ContainerStatus`.
    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, RuntimeError> {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        let resp = self.runtime.clone().container_status(req).await;
        let resp = resp
            .map_err(|s| RuntimeError::call("ContainerStatus", s))?
            .into_inner();
        resp.status.ok_or_else(|| {
            RuntimeError::call(
                "ContainerStatus",
                tonic::Status::not_found("no status in answer"),
            )
        })
    }

    /// `CheckpointContainer` (`timeout` in seconds; 0 = the runtime's default).
    pub async fn checkpoint_container(
        &self,
        id: &str,
        location: &str,
        timeout: i64,
    ) -> Result<(), RuntimeError> {
        let req = cri::CheckpointContainerRequest {
            container_id: id.to_owned(),
            location: location.to_owned(),
            timeout,
        };
        self.runtime
            .clone()
            .checkpoint_container(req)
            .await
            .map_err(|s| RuntimeError::call("CheckpointContainer", s))?;
        Ok(())
    }

    /// Whether the image is present (`ImageStatus`).
    pub async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        let req = cri::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let resp = self.image.clone().image_status(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("ImageStatus", s))?
            .into_inner()
            .image
            .is_some())
    }

    /// `PullImage`; returns the image reference.
    pub async fn pull_image(&self, image: &str) -> Result<String, RuntimeError> {
        let req = cri::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: None,
        };
        let resp = self.image.clone().pull_image(req).await;
        Ok(resp
            .map_err(|s| RuntimeError::call("PullImage", s))?
            .into_inner()
            .image_ref)
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

async fn connect_once(path: &Path, timeout: Option<Duration>) -> Result<Channel, String> {
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
    let mut endpoint = Endpoint::try_from("http://localhost").map_err(|e| e.to_string())?;
    if let Some(timeout) = timeout {
        endpoint = endpoint.timeout(timeout);
    }
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
