//! The shape of every answer: available / unavailable / unknown, why, and what decided it.

use serde::Serialize;

/// What settled an answer. A definitive probe beats the kernel config, which beats the
/// version number: versions lie on distro kernels with backports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DecidedBy {
    /// A capability probe: a file the feature creates, a syscall, a test mount.
    Probe,
    /// The kernel build configuration (`CONFIG_*`), possibly with the boot command line.
    Config,
    /// The kernel version number alone.
    Version,
}

/// One feature's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `Some(true)` available, `Some(false)` unavailable, `None` unknown.
    pub available: Option<bool>,
    /// What settled it (for an unknown answer: the best evidence there was).
    pub decided_by: DecidedBy,
    /// A sentence for the operator.
    pub reason: String,
}

impl Verdict {
    /// Available.
    #[must_use]
    pub fn yes(decided_by: DecidedBy, reason: impl Into<String>) -> Self {
        Self {
            available: Some(true),
            decided_by,
            reason: reason.into(),
        }
    }

    /// Unavailable.
    #[must_use]
    pub fn no(decided_by: DecidedBy, reason: impl Into<String>) -> Self {
        Self {
            available: Some(false),
            decided_by,
            reason: reason.into(),
        }
    }

    /// Unknown.
    #[must_use]
    pub fn unknown(decided_by: DecidedBy, reason: impl Into<String>) -> Self {
        Self {
            available: None,
            decided_by,
            reason: reason.into(),
        }
    }

    /// `available`, `unavailable` or `unknown`.
    #[must_use]
    pub fn state(&self) -> &'static str {
        match self.available {
            Some(true) => "available",
            Some(false) => "unavailable",
            None => "unknown",
        }
    }
}
