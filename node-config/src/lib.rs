//! `node-config`: the kubelet's `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`) as a
//! library, loaded exactly as a Kubernetes 1.35 kubelet loads it.
//!
//! * [`KubeletConfiguration`]: every v1beta1 field, typed (Go durations, quantities, nested
//!   structs), written back in the kubelet's field order.
//! * [`Loader`]: `--config` (strict decoding, falling back to lenient decoding with every
//!   ignored key as a warning), `--config-dir` drop-ins (`.conf` files in byte-wise lexical
//!   order, recursively, merged as RFC 7386 JSON merge patches), then command-line flags
//!   ([`FlagOverrides`]), with v1beta1 defaults ([`set_defaults`]) and one validation of the
//!   result that reports every problem.
//! * [`gates`]: every feature gate a 1.35 kubelet accepts, with defaults and stages.
//!
//! ```
//! use node_config::{Loader, FlagOverrides};
//! # let dir = tempfile::tempdir()?;
//! # let base = dir.path().join("kubelet.yaml");
//! std::fs::write(&base, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 20250\n")?;
//! let dropins = dir.path().join("kubelet.conf.d");
//! std::fs::create_dir(&dropins)?;
//! std::fs::write(
//!     dropins.join("10-dns.conf"),
//!     "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS: [10.96.0.10]\n",
//! )?;
//!
//! let loaded = Loader::new()
//!     .config_file(&base)
//!     .config_dir(&dropins)
//!     .flags(FlagOverrides::parse_args(["--max-pods=50"])?)
//!     .load()?;
//! assert_eq!(loaded.config.port, 20250); // from the file
//! assert_eq!(loaded.config.cluster_dns, ["10.96.0.10"]); // from the drop-in
//! assert_eq!(loaded.config.max_pods, 50); // from the flag
//! assert_eq!(loaded.config.node_lease_duration_seconds, 40); // default
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

#[cfg(feature = "clap")]
mod cli;
mod decode;
mod defaults;
mod duration;
mod error;
mod flags;
pub mod gates;
mod loader;
mod quantity;
pub mod support;
mod types;
mod validate;

#[cfg(feature = "clap")]
pub use cli::KubeletFlagArgs;
pub use decode::Strictness;
pub use defaults::{
    DEFAULT_CONTAINER_RUNTIME_ENDPOINT, DEFAULT_POD_LOGS_DIR, DEFAULT_PORT, DEFAULT_RESOLV_CONF,
    DEFAULT_VOLUME_PLUGIN_DIR, apply_legacy_flag_defaults, default_eviction_hard, set_defaults,
};
pub use duration::{Duration, ParseDurationError, TimeOrMetaDuration};
/// The crate's error type, returned through [`Result`] (loading, decoding, merging and
/// validating a configuration). Also exported as [`ConfigError`], its older name. Parsing one
/// value has its own small errors: [`ParseDurationError`], [`ParseQuantityError`], [`GateError`].
#[doc(inline)]
pub use error::ConfigError as Error;
/// The older name of [`Error`] (the same type), kept so existing code compiles; new code
/// names `Error`.
pub use error::ConfigError;
pub use error::{Position, Violation};
pub use flags::{
    DEFAULT_CERT_DIR, DEFAULT_ROOT_DIR, FlagKind, FlagOverrides, FlagSpec, FlagTarget,
    KUBELET_FLAGS, KubeletFlags, flag_spec,
};
pub use gates::{FeatureGates, GateError, GateSpec, Stage};
pub use loader::{DROP_IN_EXTENSION, LoadedConfig, Loader, MAX_CONFIG_FILE_BYTES, list_drop_ins};
pub use quantity::{ParseQuantityError, Quantity};
pub use types::*;
pub use validate::validate;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Kubernetes version whose kubelet this toolkit implements, as a string literal, for
/// `concat!` (binaries' `--version` texts). [`KUBERNETES_VERSION`] is the same as a constant.
#[macro_export]
macro_rules! kubernetes_version {
    () => {
        "v1.35.0"
    };
}

/// The Kubernetes version whose kubelet this toolkit implements (the config, gates, API types
/// and behaviour are 1.35's). Reported as the Node's `status.nodeInfo.kubeletVersion`, which
/// clusters and version-skew checks read as the Kubernetes version the node speaks (the kubelet
/// reports its `gitVersion` there: `pkg/kubelet/nodestatus/setters.go` `VersionInfo`).
pub const KUBERNETES_VERSION: &str = kubernetes_version!();

/// Serializes a configuration as YAML in the kubelet's field order.
pub fn to_yaml(config: &KubeletConfiguration) -> Result<String, serde_saphyr::ser_error::Error> {
    serde_saphyr::to_string(config)
}
