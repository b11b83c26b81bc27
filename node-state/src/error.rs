//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong reading, verifying or writing kubelet state.
///
/// Errors name the file (and, for decoding problems, the JSON field) they are about. Where the
/// kubelet has a well-known message ("checkpoint is corrupted", "checkpoint is not found",
/// policy mismatches, the lock-file errors) the text is worded the same way so that operators
/// can search for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A checkpoint key failed the file store's validation (pattern or 250-character limit).
    #[error("invalid key: {key:?}")]
    InvalidKey {
        /// The rejected key.
        key: String,
    },

    /// The checkpoint file does not exist.
    #[error("{path}: checkpoint is not found")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },

    /// A directory of the root dir layout could not be created or written
    /// ([`crate::layout::Layout::create`]), in the kubelet's words.
    #[error("{what}: {path}")]
    Layout {
        /// The kubelet's wording, e.g. `error creating root directory`.
        what: &'static str,
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// The file is larger than a state file may be ([`crate::store::MAX_STATE_FILE_BYTES`]).
    #[error("{path}: larger than the {limit} bytes a state file may have")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: u64,
    },

    /// The stored checksum does not match the one computed over the file's data.
    ///
    /// `expected` is the value stored in the file, `actual` the value computed from its data.
    #[error("{path}: checkpoint is corrupted: expected {expected}, actual {actual}")]
    Corrupted {
        /// The corrupted file.
        path: PathBuf,
        /// The checksum stored in the file.
        expected: u64,
        /// The checksum computed over the file's data.
        actual: u64,
    },

    /// The file is not valid JSON.
    #[error("{path}: invalid JSON")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// The JSON is well-formed but a field does not have the shape the kubelet expects.
    #[error("{path}: field {field}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Dotted path of the offending field (`$` for the document itself).
        field: String,
        /// What was expected and what was found.
        message: String,
    },

    /// A value could not be encoded (a state that the kubelet's format cannot represent).
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it cannot be.
        message: String,
    },

    /// An I/O operation on a file or directory failed.
    #[error("{path}: {op}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`"reading"`, `"renaming temp file"`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The configured CPU or memory manager policy differs from the checkpoint's.
    ///
    /// `prefix` is `""` for the CPU manager and `"[memorymanager] "` for the memory manager, as in
    /// the kubelet's messages.
    #[error(
        "{prefix}configured policy {configured:?} differs from state checkpoint policy {checkpoint:?}"
    )]
    PolicyMismatch {
        /// Message prefix naming the manager, as the kubelet words it.
        prefix: &'static str,
        /// The policy the agent is configured with.
        configured: String,
        /// The policy recorded in the checkpoint.
        checkpoint: String,
    },

    /// A cpuset string could not be parsed (Go `cpuset.Parse` semantics).
    #[error("could not parse {what}: {message}")]
    CpuSet {
        /// Which set, worded like the kubelet: `default cpu set "1.3"` or
        /// `cpuset "asd" for container "c" in pod "p"`.
        what: String,
        /// The rejected string.
        value: String,
        /// The parser's complaint, worded like Go's (`strconv.Atoi: parsing "1.3": invalid syntax`).
        message: String,
    },

    /// Restoring a resource manager's state failed; the kubelet refuses to start in that case.
    #[error(
        "could not restore state from checkpoint, please drain this node and delete the {manager} checkpoint file {path:?} before restarting Kubelet"
    )]
    Restore {
        /// `CPU manager` or `memory manager`.
        manager: &'static str,
        /// The checkpoint file.
        path: PathBuf,
        /// Why the restore failed.
        #[source]
        source: Box<Error>,
    },

    /// A checkpoint format version this crate (and the kubelet) does not read.
    #[error("{path}: unsupported checkpoint version {version:?}: {expected}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: String,
        /// What is supported.
        expected: &'static str,
    },

    /// The state file kind could not be told from the file name.
    #[error("{path}: cannot tell the state file kind from its name (expected one of: {known})")]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// The known kinds, comma separated.
        known: String,
    },

    /// A state file kind name was not recognised.
    #[error("unknown state file kind {name:?} (expected one of: {known})")]
    UnknownKindName {
        /// The name given.
        name: String,
        /// The known kinds, comma separated.
        known: String,
    },

    /// The kind of file has no checksum (graceful shutdown state, image pull records).
    #[error("{kind} files carry no checksum")]
    NoChecksum {
        /// The kind's file name.
        kind: &'static str,
    },

    /// `--exit-on-lock-contention` was given without `--lock-file`.
    #[error("cannot exit on lock file contention: no lock file specified")]
    NoLockFile,

    /// Taking the lock failed for a reason other than contention.
    #[error("unable to acquire file lock on {path:?}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Try mode: another process holds the lock.
    #[error("unable to acquire file lock on {path:?}: held by another process")]
    LockContended {
        /// The lock file.
        path: PathBuf,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for [`Error::Corrupted`].
    pub fn is_corrupted(&self) -> bool {
        matches!(self, Error::Corrupted { .. })
    }
}
