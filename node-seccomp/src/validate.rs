//! Runtime-style validation: what runc and crun refuse, checked before a pod fails.

use serde::Serialize;

use crate::action::{ActionName, MAX_ERRNO};
use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::syscalls;

/// What validation found that does not stop a runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// Syscall names no supported architecture knows. runc skips them (libseccomp cannot
    /// resolve them) and crun warns; the syscalls then fall to the default action.
    pub unknown_syscalls: Vec<String>,
    /// Human-readable warnings (one per finding).
    pub warnings: Vec<String>,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

fn check_errno(action: ActionName, errno: Option<u32>, path: &str) -> Result<()> {
    let Some(e) = errno else { return Ok(()) };
    if !action.takes_errno() {
        // crun's wording; runc silently ignores the value, which the spec forbids.
        return Err(invalid(
            path,
            format!("errno value specified for action `{action}`"),
        ));
    }
    let max = if action == ActionName::Errno {
        MAX_ERRNO
    } else {
        u32::from(u16::MAX)
    };
    if e > max {
        return Err(invalid(
            path,
            format!("errno value {e} out of range for {action} (0-{max})"),
        ));
    }
    Ok(())
}

/// Validates a profile as the union of runc's and crun's checks. Returns the first error with
/// the JSON path of the field, or a report listing the unknown syscall names.
pub fn validate(profile: &Profile) -> Result<ValidationReport> {
    if profile.default_action == ActionName::Notify {
        return Err(invalid(
            "$.defaultAction",
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ));
    }
    check_errno(
        profile.default_action,
        profile.default_errno_ret,
        "$.defaultErrnoRet",
    )?;
    if profile.listener_metadata.is_some() && profile.listener_path.is_none() {
        return Err(invalid(
            "$.listenerMetadata",
            "listenerMetadata must not be set if listenerPath is not set",
        ));
    }
    if profile.listener_path.as_deref() == Some("") {
        return Err(invalid("$.listenerPath", "listenerPath must not be empty"));
    }
    let mut report = ValidationReport::default();
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let p = format!("$.syscalls[{i}]");
        if rule.names.is_empty() {
            return Err(invalid(
                format!("{p}.names"),
                "names must contain at least one entry",
            ));
        }
        for (j, name) in rule.names.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(format!("{p}.names[{j}]"), "empty syscall name"));
            }
            if rule.action == ActionName::Notify && name == "write" {
                return Err(invalid(
                    format!("{p}.names[{j}]"),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
            if !syscalls::is_known(name) && !report.unknown_syscalls.contains(name) {
                report.unknown_syscalls.push(name.clone());
            }
        }
        if rule.action == ActionName::Notify && profile.listener_path.is_none() {
            return Err(invalid(
                format!("{p}.action"),
                "seccomp listenerPath is not set (required by SCMP_ACT_NOTIFY)",
            ));
        }
        check_errno(rule.action, rule.errno_ret, &format!("{p}.errnoRet"))?;
        for (j, arg) in rule.args.iter().enumerate() {
            if arg.index > 5 {
                return Err(invalid(
                    format!("{p}.args[{j}].index"),
                    format!(
                        "error creating seccomp syscall condition for syscall {}: syscalls only have up to 6 arguments ({} given)",
                        rule.names[0],
                        u64::from(arg.index) + 1
                    ),
                ));
            }
        }
    }
    if !report.unknown_syscalls.is_empty() {
        report.warnings.push(format!(
            "unknown syscalls skipped (they fall to the default action): {}",
            report.unknown_syscalls.join(", ")
        ));
    }
    Ok(report)
}
