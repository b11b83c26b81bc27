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
/// has passed (a plugin may still be starting its server). Never blocks past `timeout`, and
/// fails at once when `path` exists but is not a socket (a FIFO or a regular file is never
/// opened) or when the error cannot go away by waiting (a path too long for a socket
/// address, a permission error). Symbolic links are followed, as grpc-go's dial does.
pub async fn connect(path: &Path, timeout: Duration) -> Result<Channel> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        check_socket(path)?;
        let attempt = tokio::time::timeout_at(deadline, connect_once(path.to_path_buf())).await;
        match attempt {
            Ok(Ok(channel)) => return Ok(channel),
            Ok(Err(source)) => {
                if !retryable(&source) || tokio::time::Instant::now() + RETRY_INTERVAL >= deadline {
                    return Err(PluginError::Connect {
                        path: path.to_path_buf(),
                        source,
                    });
                }
                tokio::time::sleep(RETRY_INTERVAL).await;
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

/// Pause between dial attempts.
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// `Ok` when `path` is a socket or does not exist (yet); `stat` only, nothing is opened.
fn check_socket(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            if t.is_socket() {
                return Ok(());
            }
            let kind = if t.is_fifo() {
                "FIFO"
            } else if t.is_dir() {
                "directory"
            } else if t.is_file() {
                "regular file"
            } else if t.is_char_device() {
                "character device"
            } else if t.is_block_device() {
                "block device"
            } else {
                "non-socket file"
            };
            Err(PluginError::NotASocket {
                path: path.to_path_buf(),
                kind,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PluginError::Socket {
            action: "inspecting",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether waiting may help: the socket is missing, refuses (no listener yet) or its backlog
/// is full. Errors without an I/O cause (a failed HTTP/2 handshake) are retried too.
fn retryable(err: &tonic::transport::Error) -> bool {
    use std::io::ErrorKind;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::NotFound
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::WouldBlock
                    | ErrorKind::Interrupted
            );
        }
        source = e.source();
    }
    true
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
