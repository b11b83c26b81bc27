//! `node-checkpoint`: the kubelet's checkpoint API and a checkpoint archive inspector.
//!
//! * [`CheckpointService`]: resolves `namespace/pod/container` through `node-runtime`'s
//!   [`PodRegistry`](node_runtime::PodRegistry), names the archive like the kubelet
//!   (`<root-dir>/checkpoints/checkpoint-<pod>_<namespace>-<container>-<RFC 3339>.tar`), calls
//!   CRI `CheckpointContainer` with the kubelet's deadline (`max(timeout,
//!   runtimeRequestTimeout)`), and leaves a 0600 archive in a 0700 directory that never
//!   replaced another one (see [`service`] for the collision rule).
//! * [`router`]: `POST /checkpoint/{namespace}/{pod}/{container}[?timeout=N]` for the agent's
//!   axum server, with the kubelet's status codes and texts. Plain routing: the server in
//!   front (`node_server::secured`) authenticates every request and authorizes this route as
//!   verb `create` on `nodes/checkpoint`. Gate off: no route.
//! * [`Retention`]: optional limits on the archives kept (off by default).
//! * [`inspect_file`]: what `checkpointctl show` prints, the member list, per-process memory
//!   sizes and a memory search, streaming in constant memory.
//!
//! ```
//! use node_checkpoint::{archive_file_name, effective_deadline, parse_timeout_query};
//! use std::time::Duration;
//!
//! assert_eq!(
//!     archive_file_name("web", "default", "app", "2026-03-13T21:43:06Z"),
//!     "checkpoint-web_default-app-2026-03-13T21:43:06Z.tar"
//! );
//! // The kubelet never waits less than runtimeRequestTimeout (2 minutes by default).
//! let timeout = parse_timeout_query(Some("timeout=30")).unwrap();
//! assert_eq!(effective_deadline(timeout, Duration::from_secs(120)).unwrap(), Duration::from_secs(120));
//! // More seconds than a Go time.Duration holds: refused like an unparsable value (HTTP 404).
//! assert!(parse_timeout_query(Some("timeout=400000000000")).is_err());
//! ```
#![deny(missing_docs)]

mod error;
pub mod http;
pub mod inspect;
pub mod names;
mod retention;
pub mod service;
#[cfg(feature = "test-support")]
pub mod test_support;

/// The crate's error type, returned through [`Result`]. Also exported as [`CheckpointError`], its
/// older name.
#[doc(inline)]
pub use error::CheckpointError as Error;
/// The older name of [`Error`] (the same type), kept so existing code compiles; new code
/// names `Error`.
pub use error::CheckpointError;
pub use error::go_code_name;
pub use http::{ROUTE, error_response, router};
pub use inspect::{
    InspectOptions, Inspection, Match, Member, ProcessMemory, Search, inspect_file, inspect_reader,
};
pub use names::{archive_file_name, is_dns_label, is_dns_subdomain, pod_full_name};
pub use retention::Retention;
pub use service::{
    CheckpointConfig, CheckpointService, DEFAULT_RUNTIME_REQUEST_TIMEOUT, MAX_DEADLINE,
    MAX_TIMEOUT_SECONDS, Target, effective_deadline, parse_timeout_query,
};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
