//! Pod validation before anything touches disk: the API server's rules for names (DNS-1123),
//! volumes, containers and subPaths, plus the node's own: every name that becomes a path
//! component (`metadata.uid`, namespace, name, volume and container names) must be exactly one
//! safe path component.
//!
//! (Being written: see the hardening issue.)

/// The longest file name Linux accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Whether `value` is exactly one safe path component: not empty, not `.` or `..`, no `/` and
/// no NUL byte, at most [`NAME_MAX`] bytes. `field` names what is checked in the error (for
/// example `metadata.uid`).
pub fn check_path_component(field: &str, value: &str) -> Result<(), String> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value == "." || value == ".." {
        "must not be '.' or '..'"
    } else if value.contains('/') {
        "must not contain '/'"
    } else if value.contains('\0') {
        "must not contain a NUL byte"
    } else if value.len() > NAME_MAX {
        "must be at most 255 bytes"
    } else {
        return Ok(());
    };
    Err(format!(
        "{field} {value:?} {reason}: it names a directory on the node"
    ))
}
