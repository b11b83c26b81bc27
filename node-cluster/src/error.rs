//! The crate's error type.

/// What went wrong talking to the API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An API request failed (transport, TLS, or an error status).
    #[error("{action}")]
    Api {
        /// What was being done, e.g. `listing the pods of node n1`.
        action: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server answered something this client cannot use.
    #[error("{action}: {reason}")]
    Protocol {
        /// What was being done.
        action: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A configuration value this crate does not know.
    #[error("{field}: unknown value {value:?} (expected {expected})")]
    InvalidValue {
        /// The configuration field, e.g. `configMapAndSecretChangeDetectionStrategy`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

impl Error {
    pub(crate) fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            action: action.into(),
            source: Box::new(source),
        }
    }

    /// The HTTP status of an API error answer (`404`, `409`, `410`, ...), if it was one.
    #[must_use]
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            Error::Protocol { .. } | Error::InvalidValue { .. } => None,
        }
    }

    /// Whether this is the API server's "too large resource version" answer
    /// ([`too_large_resource_version`]): the cursor is ahead of the server (an etcd restored
    /// from a backup), so a new list is needed.
    #[must_use]
    pub fn is_too_large_resource_version(&self) -> bool {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => too_large_resource_version(status),
                _ => false,
            },
            Error::Protocol { .. } | Error::InvalidValue { .. } => false,
        }
    }
}

/// client-go's `IsTooLargeResourceVersion`: a `Timeout` (504) status whose causes include
/// `ResourceVersionTooLarge`, or whose message says `Too large resource version`.
#[must_use]
pub fn too_large_resource_version(status: &kube::core::Status) -> bool {
    let cause = status.details.as_ref().is_some_and(|d| {
        d.causes
            .iter()
            .any(|c| c.reason == "ResourceVersionTooLarge")
    });
    (status.code == 504 || status.reason == "Timeout")
        && (cause || status.message.contains("Too large resource version"))
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
