//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in node-seccomp.
///
/// Variants carry the context a user needs to fix the input: the file, the JSON path of the
/// offending field, the value and what was expected. Underlying causes (I/O, JSON syntax) are in
/// [`std::error::Error::source`], not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is not valid JSON.
    #[error("{origin}: not valid JSON")]
    Json {
        /// Where the profile came from (a path or `<memory>`).
        origin: String,
        /// The JSON syntax error.
        #[source]
        source: serde_json::Error,
    },

    /// A field has the wrong shape, an unknown key or an unknown enum value.
    #[error("{origin}: {path}: {message}")]
    Field {
        /// Where the profile came from.
        origin: String,
        /// JSON path of the field, e.g. `$.syscalls[3].args[0].op`.
        path: String,
        /// What is wrong and what was expected.
        message: String,
    },

    /// The profile uses Docker/containers-common keys that a plain OCI runtime would silently
    /// drop (and with them the conditions they carry).
    #[error(
        "{origin}: {path}: `{key}` is a Docker/containers-common profile key that a plain OCI \
         parser silently drops (turning arch-, capability- and kernel-gated rules into \
         unconditional ones); resolve the profile for an explicit context with \
         `DockerProfile::resolve` (nodectl: --docker [--arch A] [--cap CAP] [--kernel X.Y])"
    )]
    DockerFormat {
        /// Where the profile came from.
        origin: String,
        /// JSON path of the key.
        path: String,
        /// The Docker-only key.
        key: String,
    },

    /// The profile parses but a runtime (runc/crun) would refuse it.
    #[error("{path}: {message}")]
    Invalid {
        /// JSON path of the offending field.
        path: String,
        /// The runtime-style message.
        message: String,
    },

    /// Resolving a Docker-format profile needs context that was not given.
    #[error("{path}: {message}")]
    DockerContext {
        /// JSON path of the rule that needs it.
        path: String,
        /// What is missing.
        message: String,
    },

    /// A pod or container seccomp setting the kubelet refuses (`CreateContainerConfigError`).
    #[error("{message}")]
    Resolution {
        /// The kubelet-style message.
        message: String,
    },

    /// A Localhost profile path that would leave `<root-dir>/seccomp`, or is empty or absolute.
    #[error("localhostProfile {value:?}: {reason}")]
    LocalhostPath {
        /// The `localhostProfile` value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A Localhost profile file could not be read (`CreateContainerError` in the kubelet).
    #[error("cannot load seccomp profile {path:?}")]
    ProfileFile {
        /// Absolute path of the profile.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A profile file that is not a regular file (a symbolic link as the final component of a
    /// Localhost path, a directory, a FIFO, a device, a socket).
    #[error(
        "seccomp profile {path:?} is {kind}; a profile must be a regular file (a symbolic link \
         as the last component of a Localhost profile is not followed)"
    )]
    ProfileNotRegular {
        /// The path that was looked at (for Localhost profiles: the resolved path).
        path: PathBuf,
        /// What it is instead (`a symbolic link`, `a FIFO`, `a directory`, ...).
        kind: &'static str,
    },

    /// A profile file larger than [`crate::MAX_PROFILE_BYTES`].
    #[error("seccomp profile {path:?} is {size} bytes; at most {limit} bytes are read")]
    ProfileTooLarge {
        /// The path of the file.
        path: PathBuf,
        /// Its size (as `fstat` reported it, or as far as it was read when it grew).
        size: u64,
        /// The limit, [`crate::MAX_PROFILE_BYTES`].
        limit: u64,
    },

    /// The file opened for a Localhost profile is not the one that was checked (a directory
    /// or the file itself was replaced in between), or could not be verified.
    #[error("seccomp profile {path:?} could not be opened safely: {reason}")]
    ProfileChanged {
        /// The resolved path that was checked.
        path: PathBuf,
        /// What was found.
        reason: String,
    },

    /// A profile file parsed but a runtime would refuse it; the validation error is the source.
    #[error("seccomp profile {path:?} is refused")]
    ProfileRejected {
        /// The path of the file.
        path: PathBuf,
        /// The validation error ([`Error::Invalid`]).
        #[source]
        source: Box<Error>,
    },

    /// A syscall mix (`strace -c` table or JSON counts) that cannot be used.
    #[error("{origin}: {message}")]
    Mix {
        /// Where the mix came from (a path or `<memory>`).
        origin: String,
        /// What is wrong (with the line for `strace -c` tables) and what was expected.
        message: String,
    },

    /// A syscall mix file could not be read.
    #[error("cannot read syscall mix {path:?}")]
    MixFile {
        /// The path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// [`crate::CompileOptions`] that cannot produce a usable filter.
    #[error("compile options: {field}: {message}")]
    CompileOptions {
        /// The option (`arches`, `bad_arch_action`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },

    /// The compiler does not support this architecture.
    #[error(
        "architecture {arch} is not supported by the compiler (supported: x86_64, x86, x32, aarch64)"
    )]
    UnsupportedArch {
        /// The OCI architecture name.
        arch: String,
    },

    /// The generated program exceeds the kernel's BPF_MAXINSNS.
    #[error(
        "the filter for {arches} needs {}{len} BPF instructions; the kernel accepts at most 4096",
        if *stopped { "more than " } else { "" }
    )]
    ProgramTooLarge {
        /// Instruction count of the program, or, when `stopped`, the count reached when the
        /// compiler gave up.
        len: usize,
        /// The architectures compiled.
        arches: String,
        /// Whether generation stopped early (far beyond the limit, so that a hostile profile
        /// cannot make the compiler build an arbitrarily large program first).
        stopped: bool,
    },

    /// A BPF program is malformed (interpreter or raw input).
    #[error("BPF program: {message}")]
    Bpf {
        /// What is wrong, with the instruction index.
        message: String,
    },

    /// Loading a filter into the kernel failed.
    #[error("{operation} failed")]
    Load {
        /// The syscall that failed.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
