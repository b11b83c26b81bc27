//! The agent's one error type: one variant per startup step, so a fatal error says which step
//! failed and why ("acquiring the lock file ...", "validate service connection: ..."). A
//! variant's message is its own context only; the cause stays in `source()`, and the one line
//! the operator sees is [`node_util::error_chain`] of the error.

use std::path::PathBuf;

/// A fatal error of the agent. The `Display` text is what the operator sees on stderr before
/// the process exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `--config`, `--config-dir` or a flag is wrong.
    #[error("failed to load kubelet configuration")]
    Config(#[from] node_config::ConfigError),
    /// The lock file could not be taken.
    #[error("failed to acquire the lock file {path}: {message}")]
    Lock {
        /// `--lock-file`.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Inconsistent lock flags (`--exit-on-lock-contention` without `--lock-file`).
    #[error(transparent)]
    LockFlags(node_state::Error),
    /// A hard node requirement failed (swap with failSwapOn, cgroup v1 with failCgroupV1).
    #[error("{0}")]
    Preflight(String),
    /// The root dir layout could not be created, or a state file could not be restored (a
    /// corrupted checkpoint, a policy mismatch).
    #[error(transparent)]
    State(node_state::Error),
    /// The container runtime (or the separate image service) is unreachable or speaks no CRI v1.
    #[error(
        "validate service connection: validate CRI v1 {api} API for endpoint {endpoint:?}: {message}"
    )]
    Runtime {
        /// `runtime` or `image`.
        api: &'static str,
        /// `containerRuntimeEndpoint` (or `imageServiceEndpoint`).
        endpoint: String,
        /// The CRI client's error chain.
        message: String,
    },
    /// A listener could not be bound (port in use, address not available).
    #[error("failed to listen on {what}: listen tcp {address}: bind")]
    Listen {
        /// `the kubelet API (port)` or `healthz (healthzPort)`.
        what: &'static str,
        /// `host:port`.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A server (HTTPS API, TLS setup, pod-resources, device plugins) failed to start.
    #[error("{what}: {message}")]
    Server {
        /// Which server.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The API server connection (with `--kubeconfig`) could not be set up.
    #[error("failed to set up the API server client from {path}: {message}")]
    Kubeconfig {
        /// `--kubeconfig`.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Node status inputs (machine facts) could not be read.
    #[error("failed to read the node's status inputs")]
    Status(#[source] node_heartbeat::Error),
    /// `allowedUnsafeSysctls` holds an entry the kubelet refuses (not a valid pattern, or not
    /// namespaced).
    #[error("invalid allowedUnsafeSysctls")]
    Sysctls(#[source] node_kernel::Error),
    /// The systemd watchdog is misconfigured (`configure watchdog: ...`).
    #[error("configure watchdog")]
    Watchdog(#[source] node_heartbeat::Error),
}
