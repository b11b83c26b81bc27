//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong serving a checkpoint request or reading an archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The `ContainerCheckpoint` feature gate is off.
    #[error("the ContainerCheckpoint feature gate is disabled")]
    Disabled,
    /// No such pod (or the namespace/name is not a valid Kubernetes name). HTTP 404.
    #[error("pod does not exist")]
    PodNotFound {
        /// The namespace as requested.
        namespace: String,
        /// The pod name as requested.
        pod: String,
    },
    /// The pod has no container of that name. HTTP 404.
    #[error("container {container} does not exist")]
    ContainerNotFound {
        /// The container name as requested.
        container: String,
    },
    /// `?timeout=` is not a base-10 int64, or more seconds than a Go `time.Duration` holds
    /// ([`crate::service::MAX_TIMEOUT_SECONDS`]). HTTP 404, as the kubelet answers.
    #[error("cannot parse value of timeout parameter")]
    InvalidTimeout {
        /// The value as sent.
        value: String,
    },
    /// A negative timeout (the kubelet's CRI client refuses it). HTTP 500.
    #[error("CheckpointContainer requires the timeout value to be > 0")]
    NegativeTimeout {
        /// The value as sent.
        timeout: i64,
    },
    /// The container exists in the pod but has no runtime instance. HTTP 500.
    #[error("container {container} not found")]
    NoInstance {
        /// The container name.
        container: String,
    },
    /// The runtime answered the CRI call with an error, worded like the kubelet's gRPC
    /// client (`rpc error: code = Unimplemented desc = ...`). HTTP 500.
    #[error("rpc error: code = {code} desc = {message}")]
    Runtime {
        /// gRPC code name as Go spells it (`Unimplemented`, `DeadlineExceeded`, ...).
        code: &'static str,
        /// The runtime's message.
        message: String,
    },
    /// The runtime did not answer within the deadline. HTTP 500.
    #[error("rpc error: code = DeadlineExceeded desc = context deadline exceeded")]
    DeadlineExceeded {
        /// The deadline that passed, in seconds.
        seconds: u64,
    },
    /// The runtime said it succeeded but left no archive (or not a regular file) behind.
    #[error("runtime reported success but wrote no archive at {path}")]
    NoArchive {
        /// Where the runtime was asked to write.
        path: PathBuf,
    },
    /// No free archive name was found (more than a million archives for one container in
    /// one second).
    #[error("no free archive name for {path}")]
    NameExhausted {
        /// The first name tried.
        path: PathBuf,
    },
    /// Filesystem work on the checkpoints directory or an archive failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Work on the blocking pool did not finish (it panicked or the runtime is shutting
    /// down). HTTP 500.
    #[error("{action}: the task {reason}")]
    Internal {
        /// What was being done.
        action: &'static str,
        /// `panicked` or `was cancelled`.
        reason: &'static str,
    },
    /// A connection to the runtime could not be made.
    #[error("container runtime")]
    Connect {
        /// The cause.
        #[source]
        source: node_runtime::RuntimeError,
    },
    /// The file is not a container checkpoint archive (missing members).
    #[error("{path} is not a container checkpoint archive: {reason}")]
    NotCheckpoint {
        /// The archive.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The tar stream is truncated or corrupt.
    #[error("{path} is truncated or not a tar archive: {reason}")]
    BadTar {
        /// The archive.
        path: PathBuf,
        /// Where and what.
        reason: String,
    },
}

impl CheckpointError {
    /// The HTTP status the kubelet answers with for this error: 404 for an unknown pod or
    /// container and an unparsable timeout, 500 for everything else.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::PodNotFound { .. }
            | Self::ContainerNotFound { .. }
            | Self::InvalidTimeout { .. }
            | Self::Disabled => http::StatusCode::NOT_FOUND,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The name Go's gRPC gives a status code (`codes.Code.String()`), so messages read exactly
/// like the kubelet's (`rpc error: code = Unimplemented desc = ...`).
pub fn go_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
