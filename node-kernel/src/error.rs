//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `node-kernel`.
///
/// Each variant names what it was looking at (file, field, value) and what was expected; an
/// underlying I/O or decode error is kept in [`std::error::Error::source`] and not repeated in
/// the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hard node requirement failed at startup ([`crate::check_startup`]), in the kubelet's
    /// words.
    #[error("{message}")]
    Requirement {
        /// The kubelet's message.
        message: String,
    },
    /// A file under the probed root could not be read.
    #[error("reading {path}")]
    Read {
        /// The full path (root included).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file (or what it decompresses to) is larger than the crate reads.
    #[error("{path}: {what} is larger than the {limit} bytes read at most")]
    TooLarge {
        /// The full path (root included).
        path: PathBuf,
        /// `file`, or `decompressed content` for a compressed file.
        what: &'static str,
        /// The cap, in bytes.
        limit: u64,
    },
    /// A file was read but a field in it did not have the expected shape.
    #[error("{path}: field {field}: invalid value {value:?}: expected {expected}")]
    Parse {
        /// The full path (root included).
        path: PathBuf,
        /// The field (line key, column name) that was wrong.
        field: String,
        /// The offending value.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// A kernel release string has no leading `X.Y[.Z...]`.
    #[error("kernel release {value:?}: {reason}")]
    KernelVersion {
        /// The release string as given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An `allowedUnsafeSysctls` entry is not a valid sysctl pattern or not namespaced.
    #[error("allowedUnsafeSysctls entry {pattern:?}: {reason}")]
    SysctlPattern {
        /// The entry as given.
        pattern: String,
        /// Why it was rejected (the kubelet's wording).
        reason: String,
    },
    /// `failSwapOn` is true and the node has swap enabled (the kubelet's startup error).
    #[error(
        "failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"
    )]
    SwapOn {
        /// The active swap devices from `/proc/swaps`.
        devices: Vec<String>,
    },
    /// A swap configuration the kubelet would refuse (unknown behaviour, LimitedSwap on v1, ...).
    #[error("memorySwap.swapBehavior {behavior:?}: {reason}")]
    SwapConfig {
        /// The configured swap behaviour.
        behavior: String,
        /// Why it is refused.
        reason: String,
    },
    /// The LimitedSwap limit cannot be computed; the kubelet then falls back to NoSwap.
    #[error("cannot calculate swap allocation amount: {reason}")]
    SwapLimit {
        /// The kubelet's wording (`total node memory is 0`, `container request ... is larger ...`).
        reason: String,
    },
    /// A kernel config file could not be decompressed.
    #[error("decompressing {path}")]
    Decompress {
        /// The compressed file (e.g. `/proc/config.gz`).
        path: PathBuf,
        /// The decoder error.
        #[source]
        source: std::io::Error,
    },
    /// A live-kernel probe (syscall, test mount) failed in an unexpected way.
    #[error("live probe {probe}")]
    Live {
        /// Which probe.
        probe: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for `Result<T, node_kernel::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
