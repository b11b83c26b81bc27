//! Termination messages (`terminationMessagePath`, `terminationMessagePolicy`), the kubelet's
//! way (`pkg/kubelet/kuberuntime/kuberuntime_container.go` `getTerminationMessage`,
//! `readLastStringFromContainerLogs`; `kuberuntime_labels.go` for the annotations):
//!
//! * each container instance gets a fresh, empty, world-writable file under
//!   `<pod dir>/containers/<container>/`, bind-mounted at its `terminationMessagePath`
//!   (default `/dev/termination-log`);
//! * when the instance has exited, the file's last 4096 bytes are its `terminated.message`
//!   (after the runtime's own message and `": "`); with `FallbackToLogsOnError`, an empty file
//!   and a non-zero exit, the last 80 lines (at most 2048 bytes) of its log are used instead.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod};

use crate::cri;
use crate::error::RuntimeError;
use crate::safe_fs::{create_dirs, io_error};

/// The annotation carrying a container's `terminationMessagePath`.
pub const ANNOTATION_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// The annotation carrying a container's `terminationMessagePolicy`.
pub const ANNOTATION_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
/// The API default `terminationMessagePath`.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// The most of a termination message file that is read (`MaxContainerTerminationMessageLength`).
pub const MAX_MESSAGE: u64 = 4096;
/// Lines of the log used by `FallbackToLogsOnError`.
pub const MAX_LOG_LINES: usize = 80;
/// Bytes of the log used by `FallbackToLogsOnError`.
pub const MAX_LOG_BYTES: usize = 2048;
/// The most of a log file's end read to find its last lines.
const LOG_WINDOW: u64 = 256 << 10;

/// Creates the termination message file of a new instance of `container` in `pod_dir`
/// (`containers/<container>/<unique name>`, mode 0666, never through a symlink) and returns
/// its path.
///
/// # Errors
/// The directory or the file cannot be created.
pub fn create_file(pod_dir: &Path, container: &str, attempt: u32) -> Result<PathBuf, RuntimeError> {
    let dir = create_dirs(
        pod_dir,
        &[
            ("pod containers directory", "containers"),
            ("container name", container),
        ],
        0o750,
        0o750,
    )?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{attempt}-{nanos:x}");
    let path = dir.path.join(&name);
    let fd = openat(
        dir.fd.as_fd(),
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )
    .map_err(|e| io_error("create termination message file", &path, e))?;
    fchmod(&fd, Mode::from_bits_truncate(0o666))
        .map_err(|e| io_error("set the mode of", &path, e))?;
    Ok(path)
}

/// The termination message of an exited instance from its CRI status: the runtime's
/// `message`, then `": "` and what the container left (its file, or its log's end with
/// `FallbackToLogsOnError`). The path and policy come from the instance's annotations.
pub fn message(status: &cri::ContainerStatus) -> String {
    let path = status
        .annotations
        .get(ANNOTATION_PATH)
        .map_or("", String::as_str);
    let fallback = status
        .annotations
        .get(ANNOTATION_POLICY)
        .is_some_and(|p| p == "FallbackToLogsOnError")
        && status.exit_code != 0
        && status.reason != "ContainerCannotRun";
    let (mut text, check_logs) = if path.is_empty() {
        (String::new(), fallback)
    } else {
        match status.mounts.iter().find(|m| m.container_path == path) {
            None => (String::new(), fallback),
            Some(m) => match read_tail(Path::new(&m.host_path), MAX_MESSAGE) {
                Ok(data) => {
                    let empty = data.is_empty();
                    (
                        String::from_utf8_lossy(&data).into_owned(),
                        fallback && empty,
                    )
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
                Err(e) => (
                    format!("Error on reading termination log {}: {e}", m.host_path),
                    false,
                ),
            },
        }
    };
    if check_logs && !status.log_path.is_empty() {
        text = log_tail(Path::new(&status.log_path));
    }
    let mut out = status.message.clone();
    if !text.is_empty() {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The last `max` bytes of a regular file, never following a final symlink.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let len = meta.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut data = Vec::new();
    file.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// The last 80 lines (at most 2048 bytes) of a CRI log file's messages
/// (`<time> <stream> <P|F> <message>`; partial lines joined).
pub fn log_tail(path: &Path) -> String {
    let Ok(data) = read_tail(path, LOG_WINDOW) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&data);
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for raw in text.lines() {
        let mut parts = raw.splitn(4, ' ');
        let (Some(_time), Some(_stream), Some(tag), msg) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        partial.push_str(msg.unwrap_or_default());
        if tag != "P" {
            lines.push(std::mem::take(&mut partial) + "\n");
        }
    }
    let start = lines.len().saturating_sub(MAX_LOG_LINES);
    let mut out = lines[start..].concat();
    if out.len() > MAX_LOG_BYTES {
        let mut cut = MAX_LOG_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn status(dir: &Path, file: Option<&str>, policy: &str, exit: i32) -> cri::ContainerStatus {
        let host = dir.join("msg");
        if let Some(content) = file {
            std::fs::write(&host, content).unwrap();
        }
        cri::ContainerStatus {
            exit_code: exit,
            log_path: dir.join("0.log").display().to_string(),
            annotations: HashMap::from([
                (ANNOTATION_PATH.to_owned(), DEFAULT_PATH.to_owned()),
                (ANNOTATION_POLICY.to_owned(), policy.to_owned()),
            ]),
            mounts: vec![cri::Mount {
                container_path: DEFAULT_PATH.to_owned(),
                host_path: host.display().to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_file_is_the_message_and_logs_are_the_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("0.log"),
            "2026-01-01T00:00:00Z stdout F first\n2026-01-01T00:00:00Z stderr P par\n2026-01-01T00:00:00Z stderr F tial\n",
        )
        .unwrap();
        let s = status(tmp.path(), Some("bye"), "File", 1);
        assert_eq!(message(&s), "bye");
        let s = status(tmp.path(), Some(""), "FallbackToLogsOnError", 1);
        assert_eq!(message(&s), "first\npartial\n");
        // Exit 0: no fallback.
        let s = status(tmp.path(), Some(""), "FallbackToLogsOnError", 0);
        assert_eq!(message(&s), "");
        let mut s = status(tmp.path(), Some("x".repeat(5000).as_str()), "File", 1);
        s.message = "OOMKilled".into();
        let m = message(&s);
        assert!(m.starts_with("OOMKilled: xxx"));
        assert_eq!(m.len(), "OOMKilled: ".len() + 4096);
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("secret"), "host secret").unwrap();
        let s = status(tmp.path(), None, "File", 1);
        std::os::unix::fs::symlink(tmp.path().join("secret"), tmp.path().join("msg")).unwrap();
        let m = message(&s);
        assert!(!m.contains("host secret"), "{m}");
        assert!(m.starts_with("Error on reading termination log"), "{m}");
    }

    #[test]
    fn log_tail_keeps_80_lines_and_2048_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let log: String = (0..200)
            .map(|i| format!("2026-01-01T00:00:00Z stdout F line {i}\n"))
            .collect();
        std::fs::write(tmp.path().join("l"), log).unwrap();
        let t = log_tail(&tmp.path().join("l"));
        assert!(t.starts_with("line 120\n"), "{t}");
        assert!(t.len() <= MAX_LOG_BYTES);
    }

    #[test]
    fn files_are_created_fresh_and_writable_by_anyone() {
        let tmp = tempfile::tempdir().unwrap();
        let a = create_file(tmp.path(), "app", 0).unwrap();
        let b = create_file(tmp.path(), "app", 1).unwrap();
        assert_ne!(a, b);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o666
        );
        assert!(create_file(tmp.path(), "../x", 0).is_err());
    }
}
