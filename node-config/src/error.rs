//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

use crate::gates::GateError;

/// A position in a file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// `path` or `path:line:column`, for error messages.
pub(crate) struct At<'a>(pub &'a PathBuf, pub &'a Option<Position>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(p) => write!(f, "{}:{}:{}", self.0.display(), p.line, p.column),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// One failed validation rule of the final configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON path of the field, e.g. `authorization.mode`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Everything that can go wrong while loading a kubelet configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file or drop-in could not be read.
    #[error("failed to read kubelet config file {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A config file or drop-in is larger than the loader reads.
    #[error("kubelet config file {path:?} is larger than the {limit} bytes read at most")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The file holds nothing but whitespace or comments (fatal, as in the kubelet).
    #[error("kubelet config file {path:?} was empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is not well-formed YAML/JSON (including duplicate keys).
    #[error("{}: invalid YAML: {message}", At(path, position))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where the parser stopped.
        position: Option<Position>,
        /// The parser's message.
        message: String,
    },
    /// The document is not a mapping.
    #[error("{path:?}: expected a KubeletConfiguration object at the top level, found {found}")]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// JSON type found instead.
        found: &'static str,
    },
    /// `apiVersion` or `kind` is missing.
    #[error("failed to load kubelet config file, path: {}, no apiVersion/kind", path.display())]
    MissingTypeMeta {
        /// The file.
        path: PathBuf,
    },
    /// `apiVersion`/`kind` name something other than a v1beta1 `KubeletConfiguration`.
    #[error(
        "failed to load kubelet config file, path: {}, unknown apiVersion/kind: {api_version}, Kind={kind} (expected kubelet.config.k8s.io/v1beta1, Kind=KubeletConfiguration)",
        path.display()
    )]
    WrongTypeMeta {
        /// The file.
        path: PathBuf,
        /// `apiVersion` found.
        api_version: String,
        /// `kind` found.
        kind: String,
    },
    /// A field has the wrong type or an unparsable value.
    #[error("{}: field {field}: {message}", At(path, position))]
    Field {
        /// The file.
        path: PathBuf,
        /// Where the value is.
        position: Option<Position>,
        /// JSON path of the field, e.g. `authentication.webhook.cacheTTL`.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Unknown fields with strict decoding requested.
    #[error("{}: strict decoding error: unknown field(s) {}", path.display(), quoted(fields))]
    UnknownFields {
        /// The file.
        path: PathBuf,
        /// JSON paths of the unknown fields.
        fields: Vec<String>,
    },
    /// The drop-in directory could not be listed.
    #[error("failed to walk through kubelet dropin directory {dir:?}")]
    DropInDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The merged configuration no longer decodes (a drop-in deleted or retyped a value).
    #[error("failed to unmarshal merged JSON into kubelet configuration: field {field}: {message}")]
    Merged {
        /// JSON path of the field.
        field: String,
        /// The decoder's message.
        message: String,
    },
    /// A command-line flag has a bad value or is unknown.
    #[error("invalid argument {value:?} for \"--{flag}\" flag: {message}")]
    Flag {
        /// Flag name without dashes.
        flag: String,
        /// Value given.
        value: String,
        /// What was expected.
        message: String,
    },
    /// A flag the kubelet does not have.
    #[error("unknown flag: --{0}")]
    UnknownFlag(String),
    /// Feature gate settings were rejected (all of them are listed).
    #[error("invalid feature gates: {}", join(errors))]
    FeatureGates {
        /// Every rejected setting.
        errors: Vec<GateError>,
    },
    /// The final configuration failed validation (every violation is listed).
    #[error("invalid configuration: {}", join(violations))]
    Invalid {
        /// Every failed rule.
        violations: Vec<Violation>,
    },
}

fn quoted(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
