//! gRPC over Unix domain sockets: binding a server socket (stale file removed, mode set) and a
//! blocking dial with the kubelet's timeouts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{PluginError, Result};

/// Removes whatever socket file is at `path`, binds a new listener and gives the socket
/// `mode` (e.g. 0o600).
pub(crate) fn bind(path: &Path, mode: u32) -> Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PluginError::Socket {
                action: "removing",
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let listener = UnixListener::bind(path).map_err(|source| PluginError::Socket {
        action: "binding",
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        PluginError::Socket {
            action: "setting the mode of",
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}

/// Dials `path` like grpc-go's blocking dial: retries until the socket accepts or `timeout`
/// has passed (a plugin may still be starting its server).
pub async fn connect(path: &Path, timeout: Duration) -> Result<Channel> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout_at(deadline, connect_once(path.to_path_buf())).await;
        match attempt {
            Ok(Ok(channel)) => return Ok(channel),
            Ok(Err(source)) => {
                if tokio::time::Instant::now() + Duration::from_millis(50) >= deadline {
                    return Err(PluginError::Connect {
                        path: path.to_path_buf(),
                        source,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => {
                return Err(PluginError::Timeout {
                    rpc: "dial",
                    target: path.display().to_string(),
                    timeout,
                });
            }
        }
    }
}

async fn connect_once(path: PathBuf) -> std::result::Result<Channel, tonic::transport::Error> {
    // The authority is a placeholder (the kubelet uses "localhost"); the connector ignores it.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
}
