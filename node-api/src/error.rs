//! The crate's one error enum.

/// What a pod route can fail with; each maps to the kubelet's status code and text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request parsed but is invalid (422).
    #[error("{0}")]
    Invalid(String),
    /// No such pod or container (404).
    #[error("{0}")]
    NotFound(String),
    /// A runtime call failed.
    #[error(transparent)]
    Runtime(#[from] node_runtime::RuntimeError),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}
