//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while setting up or running the kubelet's HTTPS server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file could not be read, written or created.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`reading`, `writing`, `creating directory`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A generated file (the self-signed serving certificate or its key) could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The durable write's error.
        #[source]
        source: node_state::Error,
    },
    /// A PEM file held no usable certificate or key, or a certificate did not parse.
    #[error("{path}: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A configuration field has a value this server cannot use.
    #[error("{field}: {reason}")]
    Config {
        /// The `KubeletConfiguration` field (e.g. `tlsMinVersion`).
        field: &'static str,
        /// What was found and what was expected.
        reason: String,
    },
    /// Generating the self-signed serving certificate failed.
    #[error("generating the self-signed serving certificate for {hostname:?}")]
    Generate {
        /// The host the certificate was for.
        hostname: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused the configuration (bad key, no usable cipher suite, ...).
    #[error("building the TLS configuration: {context}")]
    Tls {
        /// What was being built.
        context: String,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA bundle.
    #[error("building the client certificate verifier from {path}")]
    ClientVerifier {
        /// The CA bundle.
        path: PathBuf,
        /// rustls' error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// Accepting on the listener failed fatally.
    #[error("serving on {addr}")]
    Serve {
        /// The listener's address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ServerError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_pem(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ServerError::BadPem {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
