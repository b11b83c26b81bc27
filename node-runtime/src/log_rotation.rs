//! Container log rotation, as the kubelet's container log manager
//! (`pkg/kubelet/logs/container_log_manager.go`).
//!
//! Every `containerLogMonitorInterval` the manager lists the runtime's containers and, for each
//! running one (at most `containerLogMaxWorkers` at a time), asks the runtime for its log path
//! (`ContainerStatus`) and looks at the file:
//!
//! * missing: the runtime is asked to reopen it (`ReopenContainerLog`);
//! * at least `containerLogMaxSize`: it is rotated. [`plan_rotation`] decides, from the names of
//!   the files next to it (`<log>.*`), what to delete (temporary files, an uncompressed file
//!   that has its `.gz` twin, then the oldest down to `containerLogMaxFiles - 2` rotated
//!   files), what to compress (every remaining uncompressed rotated file, to `<file>.gz` via
//!   `<file>.gz.tmp`, keeping its mode) and the new name of the live log
//!   (`<log>.<YYYYMMDD-hhmmss>`, local time). The live log is renamed, the runtime reopens it,
//!   and the rename is undone if it cannot. At most `containerLogMaxFiles` files remain: the
//!   live log, the newest rotation uncompressed, and `.gz` files.
//!
//! The log path comes from the runtime and the directories under the pod logs directory
//! (`podLogsDir`) belong to pods, so a path outside it is refused (logged and skipped), and
//! every file operation works on directory descriptors opened without following a symlink
//! (`openat`/`renameat`/`unlinkat` with `O_NOFOLLOW`): a planted symlink is never followed.
//! Errors are logged; they never stop the loop.
//!
//! ```no_run
//! # async fn demo(cri: node_runtime::CriClient, config: node_config::KubeletConfiguration) {
//! use node_runtime::log_rotation::{RotationPolicy, run};
//! let policy = RotationPolicy::from_config(&config).expect("validated configuration");
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let task = tokio::spawn(run(cri, policy, "/var/log/pods".into(), stop));
//! // ... later:
//! let _ = stop_tx.send(true);
//! let _ = task.await;
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use tokio::sync::watch;

use crate::client::CriClient;
use crate::cri;
use crate::error::RuntimeError;
use crate::safe_fs::{io_error, open_base, open_child_dir, read_names, unsafe_path};

/// Suffix of compressed rotated logs.
pub const COMPRESS_SUFFIX: &str = ".gz";
/// Suffix of files being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// How the rotated file's suffix is formatted (`strftime`), in local time: the kubelet's
/// `20060102-150405`.
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d-%H%M%S";
/// The most directory entries looked at next to one log.
const MAX_SIBLINGS: usize = 4096;

/// How container logs are rotated (`containerLogMaxSize`, `containerLogMaxFiles`,
/// `containerLogMaxWorkers`, `containerLogMonitorInterval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate a log once it has this many bytes; negative: never.
    pub max_size: i64,
    /// Files kept per container, the live log included (at least 2).
    pub max_files: usize,
    /// Containers looked at concurrently (at least 1).
    pub max_workers: usize,
    /// How often the logs are looked at.
    pub monitor_interval: Duration,
}

impl Default for RotationPolicy {
    /// The kubelet's defaults: 10Mi, 5 files, 1 worker, every 10 s.
    fn default() -> Self {
        Self {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
            max_workers: 1,
            monitor_interval: Duration::from_secs(10),
        }
    }
}

impl RotationPolicy {
    /// The policy a (validated) configuration sets; unset fields take the kubelet's defaults.
    ///
    /// # Errors
    /// `containerLogMaxSize` is not a quantity (validation refuses such a configuration).
    pub fn from_config(
        config: &node_config::KubeletConfiguration,
    ) -> Result<Self, node_config::ParseQuantityError> {
        let default = Self::default();
        let max_size = if config.container_log_max_size.is_empty() {
            default.max_size
        } else {
            let q = node_config::Quantity::parse(&config.container_log_max_size)?;
            // The kubelet's `Quantity.Value()`: rounded up to a whole byte.
            float_to_i64(q.value().ceil())
        };
        let count = |v: Option<i32>, d: usize, min: usize| {
            v.and_then(|n| usize::try_from(n).ok())
                .unwrap_or(d)
                .max(min)
        };
        Ok(Self {
            max_size,
            max_files: count(config.container_log_max_files, default.max_files, 2),
            max_workers: count(config.container_log_max_workers, default.max_workers, 1),
            monitor_interval: config
                .container_log_monitor_interval
                .map(|d| d.to_std())
                .filter(|d| !d.is_zero())
                .unwrap_or(default.monitor_interval),
        })
    }

    /// Whether logs are rotated at all (`containerLogMaxSize` not negative).
    pub fn enabled(&self) -> bool {
        self.max_size >= 0
    }
}

/// `value` (a whole number) as an `i64`, saturating.
#[expect(
    clippy::cast_possible_truncation,
    reason = "saturating float-to-int conversion of a value already bounded by the quantity parser"
)]
fn float_to_i64(value: f64) -> i64 {
    value as i64
}

/// What one rotation does in the log's directory, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RotationPlan {
    /// Files removed: unused ones, then the oldest rotated ones.
    pub delete: Vec<String>,
    /// Uncompressed rotated files gzipped to `<name>.gz` (then removed).
    pub compress: Vec<String>,
    /// The live log's new name.
    pub rotate_to: String,
}

/// Plans the rotation of the live log `log_name` given the names of the files next to it that
/// start with `<log_name>.` (the kubelet's `<log>.*` glob), the policy's `max_files` and the
/// suffix of this rotation (the local time as [`TIMESTAMP_FORMAT`]).
pub fn plan_rotation(
    log_name: &str,
    siblings: &[String],
    max_files: usize,
    suffix: &str,
) -> RotationPlan {
    let prefix = format!("{log_name}.");
    let mut logs: Vec<&String> = siblings.iter().filter(|n| n.starts_with(&prefix)).collect();
    logs.sort();
    logs.dedup();
    let mut plan = RotationPlan {
        rotate_to: format!("{log_name}.{suffix}"),
        ..RotationPlan::default()
    };
    // 1. Unused: temporary files, and an uncompressed file whose compressed twin exists.
    let names: HashSet<&str> = logs.iter().map(|n| n.as_str()).collect();
    let (unused, mut kept): (Vec<&String>, Vec<&String>) = logs.into_iter().partition(|n| {
        n.ends_with(TMP_SUFFIX)
            || (!n.ends_with(COMPRESS_SUFFIX)
                && names.contains(format!("{n}{COMPRESS_SUFFIX}").as_str()))
    });
    plan.delete.extend(unused.into_iter().cloned());
    // 2. The oldest (lexical order) beyond maxFiles - 2: with the live log and the one about
    //    to be rotated, at most maxFiles remain.
    let keep = max_files.saturating_sub(2);
    let excess = kept.len().saturating_sub(keep);
    plan.delete.extend(kept.drain(..excess).cloned());
    // 3. Compress the rest that is not compressed yet.
    plan.compress = kept
        .into_iter()
        .filter(|n| !n.ends_with(COMPRESS_SUFFIX))
        .cloned()
        .collect();
    plan
}

/// A container's log file, checked to lie under the pod logs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// The path as the runtime gave it.
    pub path: PathBuf,
    /// The directories between the pod logs directory and the file.
    pub dirs: Vec<String>,
    /// The file's name.
    pub name: String,
}

/// Checks that the runtime's `log_path` is a file under `pod_logs_dir` (absolute, no `.` or
/// `..`, UTF-8 names) and splits it into the directories below the base and the file name.
///
/// # Errors
/// [`RuntimeError::UnsafePath`] naming the path and why.
pub fn log_target(pod_logs_dir: &Path, log_path: &Path) -> Result<LogTarget, RuntimeError> {
    let refuse = |reason: &str| unsafe_path(log_path, reason);
    if !log_path.is_absolute() {
        return Err(refuse("the log path is not absolute"));
    }
    let rest = log_path
        .strip_prefix(pod_logs_dir)
        .map_err(|_| refuse("the log path is not under the pod logs directory"))?;
    let mut parts = Vec::new();
    for c in rest.components() {
        match c {
            Component::Normal(n) => match n.to_str() {
                Some(s) => parts.push(s.to_owned()),
                None => return Err(refuse("the log path is not UTF-8")),
            },
            _ => return Err(refuse("the log path has `.` or `..` components")),
        }
    }
    let Some(name) = parts.pop() else {
        return Err(refuse("the log path names the pod logs directory itself"));
    };
    Ok(LogTarget {
        path: log_path.to_path_buf(),
        dirs: parts,
        name,
    })
}

/// Opens the log's directory without following a symlink below the base. `Ok(None)` when a
/// directory is missing.
fn open_log_dir(base: &Path, target: &LogTarget) -> Result<Option<OwnedFd>, RuntimeError> {
    let Some(mut fd) = open_base(base)? else {
        return Ok(None);
    };
    let mut current = base.to_path_buf();
    for dir in &target.dirs {
        current.push(dir);
        match open_child_dir(fd.as_fd(), OsStr::new(dir), &current)? {
            Some(child) => fd = child,
            None => return Ok(None),
        }
    }
    Ok(Some(fd))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `Ok(None)` when missing.
fn stat_entry(dir: &OwnedFd, name: &str, path: &Path) -> Result<Option<FileStat>, RuntimeError> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_error("stat log file", path, e)),
    }
}

fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// The live log's size, `None` when it is missing; a symlink or non-regular file is refused.
fn log_size(dir: &OwnedFd, target: &LogTarget) -> Result<Option<i64>, RuntimeError> {
    match stat_entry(dir, &target.name, &target.path)? {
        None => Ok(None),
        Some(st) if is_regular(&st) => Ok(Some(st.st_size)),
        Some(_) => Err(unsafe_path(
            &target.path,
            "the log is not a regular file (a symlink is never followed)",
        )),
    }
}

/// The names next to the live log starting with `<name>.`.
fn siblings(dir: &OwnedFd, target: &LogTarget) -> Result<Vec<String>, RuntimeError> {
    let parent = target.path.parent().unwrap_or(Path::new("/"));
    let prefix = format!("{}.", target.name);
    Ok(read_names(dir.as_fd(), parent, MAX_SIBLINGS)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect())
}

/// Removes the entry `name` (never a directory; a symlink itself, not its target).
fn remove(dir: &OwnedFd, name: &str, path: &Path) -> Result<(), RuntimeError> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(io_error("remove rotated log", path, e)),
    }
}

/// Gzips the regular file `name` to `<name>.gz` through `<name>.gz.tmp` with the same mode,
/// then removes it. A symlink or other non-regular file is not read (it is removed instead).
fn compress(dir: &OwnedFd, name: &str, dir_path: &Path) -> Result<(), RuntimeError> {
    let path = dir_path.join(name);
    let src = match openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::ELOOP) => return remove(dir, name, &path),
        Err(e) => return Err(io_error("open rotated log", &path, e)),
    };
    let st = fstat(&src).map_err(|e| io_error("stat rotated log", &path, e))?;
    if !is_regular(&st) {
        return remove(dir, name, &path);
    }
    let gz = format!("{name}{COMPRESS_SUFFIX}");
    let tmp = format!("{gz}{TMP_SUFFIX}");
    let tmp_path = dir_path.join(&tmp);
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let dst = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(|e| io_error("create compressed log", &tmp_path, e))?;
    let written = (|| -> std::io::Result<()> {
        fchmod(&dst, mode)?;
        let mut input = std::fs::File::from(src);
        let mut encoder =
            flate2::write::GzEncoder::new(std::fs::File::from(dst), flate2::Compression::default());
        std::io::copy(&mut input, &mut encoder)?;
        encoder.finish()?.flush()?;
        Ok(())
    })();
    if let Err(source) = written {
        let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(RuntimeError::Io {
            action: "compress rotated log",
            path,
            source,
        });
    }
    renameat(dir, tmp.as_str(), dir, gz.as_str())
        .map_err(|e| io_error("rename compressed log", &tmp_path, e))?;
    remove(dir, name, &path)
}

/// Carries out `plan`'s deletions and compressions (not the rename).
fn clean_up(dir: &OwnedFd, target: &LogTarget, plan: &RotationPlan) -> Result<(), RuntimeError> {
    let dir_path = target.path.parent().unwrap_or(Path::new("/"));
    for name in &plan.delete {
        remove(dir, name, &dir_path.join(name))?;
    }
    for name in &plan.compress {
        compress(dir, name, dir_path)?;
    }
    Ok(())
}

/// What happened to one container's log in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Below the size limit (or the container has no log path).
    Kept,
    /// The file was missing; the runtime was asked to reopen it.
    Reopened,
    /// Rotated to this path.
    Rotated(PathBuf),
}

/// Looks at one container's log and reopens or rotates it as `policy` says; `now_suffix` is
/// the rotated file's suffix (the local time as [`TIMESTAMP_FORMAT`]).
///
/// # Errors
/// A CRI call, a refused path or a file operation failed (after an undone rename, the
/// reopen's error).
pub async fn check_container(
    cri: &CriClient,
    policy: &RotationPolicy,
    pod_logs_dir: &Path,
    id: &str,
    now_suffix: &str,
) -> Result<Outcome, RuntimeError> {
    let status = cri.container_status(id).await?;
    if status.log_path.is_empty() {
        return Ok(Outcome::Kept);
    }
    let target = log_target(pod_logs_dir, Path::new(&status.log_path))?;
    let base = pod_logs_dir.to_path_buf();
    let t = target.clone();
    let (dir, size) = crate::blocking::run("looking at a container log", move || {
        let Some(dir) = open_log_dir(&base, &t)? else {
            return Ok((None, None));
        };
        let size = log_size(&dir, &t)?;
        Ok((Some(dir), size))
    })
    .await?;
    let Some(size) = size else {
        // A missing log (someone removed it) is reopened. The kubelet stats the new (empty)
        // file at once; here the next pass looks at it, which differs only for a
        // containerLogMaxSize of 0.
        cri.reopen_container_log(id).await?;
        return Ok(Outcome::Reopened);
    };
    let Some(dir) = dir else {
        return Ok(Outcome::Kept);
    };
    if size < policy.max_size {
        return Ok(Outcome::Kept);
    }
    let t = target.clone();
    let max_files = policy.max_files;
    let suffix = now_suffix.to_owned();
    let (dir, plan) = crate::blocking::run("rotating a container log", move || {
        let names = siblings(&dir, &t)?;
        let plan = plan_rotation(&t.name, &names, max_files, &suffix);
        clean_up(&dir, &t, &plan)?;
        renameat(&dir, t.name.as_str(), &dir, plan.rotate_to.as_str())
            .map_err(|e| io_error("rename container log", &t.path, e))?;
        Ok((dir, plan))
    })
    .await?;
    let rotated = target.path.with_file_name(&plan.rotate_to);
    if let Err(e) = cri.reopen_container_log(id).await {
        let t = target.clone();
        let to = plan.rotate_to.clone();
        let undone = crate::blocking::run("undoing a log rotation", move || {
            renameat(&dir, to.as_str(), &dir, t.name.as_str())
                .map_err(|e| io_error("rename rotated log back", &t.path, e))
        })
        .await;
        if let Err(undo) = undone {
            tracing::error!(container = id, error = %undo.with_cause(), "cannot undo the rotation of a container log");
        }
        return Err(e);
    }
    Ok(Outcome::Rotated(rotated))
}

/// One pass: every running container's log, at most `policy.max_workers` at a time.
/// `refused` remembers containers whose log path was refused, so each is logged once.
pub async fn rotate_all(
    cri: &CriClient,
    policy: &RotationPolicy,
    pod_logs_dir: &Path,
    refused: &mut HashSet<String>,
) {
    let containers = match cri.list_containers(None, HashMap::new()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e.with_cause(), "log rotation: cannot list containers");
            return;
        }
    };
    let running: Vec<String> = containers
        .into_iter()
        .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
        .map(|c| c.id)
        .collect();
    refused.retain(|id| running.contains(id));
    let suffix = jiff::Zoned::now().strftime(TIMESTAMP_FORMAT).to_string();
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = running.into_iter();
    loop {
        while tasks.len() < policy.max_workers.max(1) {
            let Some(id) = queue.next() else { break };
            let (cri, policy, base, suffix) = (
                cri.clone(),
                policy.clone(),
                pod_logs_dir.to_path_buf(),
                suffix.clone(),
            );
            tasks.spawn(async move {
                let r = check_container(&cri, &policy, &base, &id, &suffix).await;
                (id, r)
            });
        }
        let Some(done) = tasks.join_next().await else {
            return;
        };
        match done {
            Ok((id, Ok(Outcome::Rotated(to)))) => {
                tracing::info!(container = %id, rotated = %to.display(), "container log rotated");
            }
            Ok((id, Ok(Outcome::Reopened))) => {
                tracing::info!(container = %id, "container log was missing; runtime asked to reopen it");
            }
            Ok((_, Ok(Outcome::Kept))) => {}
            Ok((id, Err(e @ RuntimeError::UnsafePath { .. }))) => {
                if refused.insert(id.clone()) {
                    tracing::warn!(container = %id, error = %e, "log rotation: skipping the container's log");
                }
            }
            Ok((id, Err(e))) if e.grpc_code() == Some(tonic::Code::NotFound) => {
                tracing::debug!(container = %id, error = %e.with_cause(), "log rotation: container gone");
            }
            Ok((id, Err(e))) => {
                tracing::warn!(container = %id, error = %e.with_cause(), "log rotation failed");
            }
            Err(e) => tracing::error!(error = %e, "log rotation worker failed"),
        }
    }
}

/// Rotates container logs every `policy.monitor_interval` until `stop` turns true (or its
/// sender is dropped). Returns at once when rotation is disabled.
pub async fn run(
    cri: CriClient,
    policy: RotationPolicy,
    pod_logs_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    if !policy.enabled() {
        tracing::info!("container log rotation disabled (containerLogMaxSize is negative)");
        return;
    }
    tracing::info!(
        max_size = policy.max_size,
        max_files = policy.max_files,
        workers = policy.max_workers,
        interval = ?policy.monitor_interval,
        dir = %pod_logs_dir.display(),
        "container log rotation started"
    );
    let mut ticker = tokio::time::interval(policy.monitor_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused = HashSet::new();
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        // A pass runs to its end: stopping between a rename and the runtime's reopen would
        // leave the live log missing.
        rotate_all(&cri, &policy, &pod_logs_dir, &mut refused).await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::test_support::FakeCri;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_first_rotation_only_renames() {
        let plan = plan_rotation("0.log", &[], 5, "20260102-030405");
        assert_eq!(
            plan,
            RotationPlan {
                delete: vec![],
                compress: vec![],
                rotate_to: "0.log.20260102-030405".into()
            }
        );
    }

    #[test]
    fn unused_files_go_then_the_oldest_then_the_rest_is_compressed() {
        let siblings = names(&[
            "0.log.20260101-000003",
            "0.log.20260101-000001.gz",
            "0.log.20260101-000002.gz",
            "0.log.20260101-000002",
            "0.log.20260101-000004.gz.tmp",
            "0.log.20260101-000000.gz",
            "1.log.20260101-000000",
            "0.log",
        ]);
        let plan = plan_rotation("0.log", &siblings, 4, "20260102-030405");
        assert_eq!(
            plan.delete,
            names(&[
                // Unused: the twin of a .gz and a temporary file.
                "0.log.20260101-000002",
                "0.log.20260101-000004.gz.tmp",
                // The oldest, leaving maxFiles - 2 = 2.
                "0.log.20260101-000000.gz",
                "0.log.20260101-000001.gz",
            ])
        );
        assert_eq!(plan.compress, names(&["0.log.20260101-000003"]));
        assert_eq!(plan.rotate_to, "0.log.20260102-030405");
    }

    #[test]
    fn two_files_keep_no_older_rotation() {
        let siblings = names(&["0.log.20260101-000000.gz", "0.log.20260101-000001"]);
        let plan = plan_rotation("0.log", &siblings, 2, "20260102-030405");
        assert_eq!(plan.delete, siblings);
        assert!(plan.compress.is_empty());
        let plan = plan_rotation("0.log", &siblings, 3, "20260102-030405");
        assert_eq!(plan.delete, names(&["0.log.20260101-000000.gz"]));
        assert_eq!(plan.compress, names(&["0.log.20260101-000001"]));
    }

    #[test]
    fn policy_from_configuration() {
        let mut c = node_config::KubeletConfiguration::default();
        assert_eq!(
            RotationPolicy::from_config(&c).unwrap(),
            RotationPolicy::default()
        );
        c.container_log_max_size = "1Ki".into();
        c.container_log_max_files = Some(3);
        c.container_log_max_workers = Some(4);
        c.container_log_monitor_interval = Some(node_config::Duration::from_secs(3));
        let p = RotationPolicy::from_config(&c).unwrap();
        assert_eq!(
            p,
            RotationPolicy {
                max_size: 1024,
                max_files: 3,
                max_workers: 4,
                monitor_interval: Duration::from_secs(3),
            }
        );
        assert!(p.enabled());
        c.container_log_max_size = "1.5".into();
        assert_eq!(RotationPolicy::from_config(&c).unwrap().max_size, 2);
        c.container_log_max_size = "-1".into();
        assert!(!RotationPolicy::from_config(&c).unwrap().enabled());
        c.container_log_max_size = "ten".into();
        assert!(RotationPolicy::from_config(&c).is_err());
    }

    #[test]
    fn log_paths_must_lie_under_the_pod_logs_directory() {
        let base = Path::new("/var/log/pods");
        let t = log_target(base, Path::new("/var/log/pods/ns_p_uid/app/0.log")).unwrap();
        assert_eq!(t.dirs, names(&["ns_p_uid", "app"]));
        assert_eq!(t.name, "0.log");
        for bad in [
            "/var/log/other/0.log",
            "/var/log/pods",
            "/var/log/pods/../../etc/shadow",
            "/var/log/podsx/a/0.log",
            "var/log/pods/a/0.log",
        ] {
            let e = log_target(base, Path::new(bad)).unwrap_err();
            assert!(matches!(e, RuntimeError::UnsafePath { .. }), "{bad}: {e}");
        }
    }

    /// A fake runtime with one running container logging to `<base>/ns_p_uid/app/0.log`.
    async fn setup(dir: &Path) -> (FakeCri, CriClient, PathBuf, String) {
        let fake = FakeCri::start(dir).unwrap();
        let cri = CriClient::connect(&fake.endpoint(), &crate::ClientOptions::default())
            .await
            .unwrap();
        let base = dir.join("pods");
        let log = base.join("ns_p_uid/app/0.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let (_, id) = crate::test_support::run_logging_container(&cri, &log)
            .await
            .unwrap();
        (fake, cri, base, id)
    }

    fn policy(max_files: usize) -> RotationPolicy {
        RotationPolicy {
            max_size: 1024,
            max_files,
            max_workers: 1,
            monitor_interval: Duration::from_millis(50),
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn a_full_log_is_rotated_and_older_rotations_compressed_or_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let (fake, cri, base, id) = setup(tmp.path()).await;
        let dir = base.join("ns_p_uid/app");
        let log = dir.join("0.log");

        // Below the limit: kept.
        std::fs::write(&log, vec![b'a'; 1000]).unwrap();
        let out = check_container(&cri, &policy(3), &base, &id, "20260102-000000").await;
        assert_eq!(out.unwrap(), Outcome::Kept);

        std::fs::write(&log, vec![b'b'; 2000]).unwrap();
        std::fs::write(dir.join("0.log.20260101-000000.gz"), b"old").unwrap();
        std::fs::write(dir.join("0.log.20260101-000001"), b"older rotation").unwrap();
        std::fs::set_permissions(
            dir.join("0.log.20260101-000001"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(dir.join("0.log.20260101-000001.gz.tmp"), b"half").unwrap();
        let out = check_container(&cri, &policy(3), &base, &id, "20260102-030405")
            .await
            .unwrap();
        assert_eq!(out, Outcome::Rotated(dir.join("0.log.20260102-030405")));
        assert_eq!(
            listing(&dir),
            names(&["0.log", "0.log.20260101-000001.gz", "0.log.20260102-030405"])
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "reopened afresh");
        assert_eq!(
            std::fs::read(dir.join("0.log.20260102-030405")).unwrap(),
            vec![b'b'; 2000]
        );
        let gz = dir.join("0.log.20260101-000001.gz");
        assert_eq!(gunzip(&gz), b"older rotation");
        assert_eq!(
            std::fs::metadata(&gz).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(
            fake.calls()
                .iter()
                .any(|c| c.method == "ReopenContainerLog" && c.target == id)
        );
    }

    #[tokio::test]
    async fn a_missing_log_is_reopened_and_a_failed_reopen_undoes_the_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let (fake, cri, base, id) = setup(tmp.path()).await;
        let log = base.join("ns_p_uid/app/0.log");
        let out = check_container(&cri, &policy(3), &base, &id, "20260102-030405").await;
        assert_eq!(out.unwrap(), Outcome::Reopened);
        assert!(log.exists(), "the fake runtime recreated it");

        std::fs::write(&log, vec![b'c'; 4096]).unwrap();
        fake.fail("ReopenContainerLog", Some((tonic::Code::Internal, "boom")));
        let e = check_container(&cri, &policy(3), &base, &id, "20260102-030405")
            .await
            .unwrap_err();
        assert_eq!(e.grpc_code(), Some(tonic::Code::Internal));
        assert_eq!(std::fs::read(&log).unwrap(), vec![b'c'; 4096]);
        assert_eq!(listing(log.parent().unwrap()), names(&["0.log"]));
    }

    #[tokio::test]
    async fn symlinks_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (_fake, cri, base, id) = setup(tmp.path()).await;
        let dir = base.join("ns_p_uid/app");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"keep me").unwrap();

        // A rotated "file" that is a symlink to a file elsewhere: removed, never read.
        std::fs::write(dir.join("0.log"), vec![b'd'; 2048]).unwrap();
        symlink(outside.join("secret"), dir.join("0.log.20260101-000000")).unwrap();
        let out = check_container(&cri, &policy(5), &base, &id, "20260102-030405")
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Rotated(_)));
        assert_eq!(listing(&dir), names(&["0.log", "0.log.20260102-030405"]));
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"keep me");

        // The live log a symlink: refused.
        std::fs::remove_file(dir.join("0.log")).unwrap();
        symlink(outside.join("secret"), dir.join("0.log")).unwrap();
        let e = check_container(&cri, &policy(5), &base, &id, "20260102-030406")
            .await
            .unwrap_err();
        assert!(matches!(e, RuntimeError::UnsafePath { .. }), "{e}");

        // The container's directory swapped for a symlink to elsewhere: refused.
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(outside.join("0.log"), vec![b'e'; 4096]).unwrap();
        symlink(&outside, &dir).unwrap();
        let e = check_container(&cri, &policy(5), &base, &id, "20260102-030407")
            .await
            .unwrap_err();
        assert!(matches!(e, RuntimeError::UnsafePath { .. }), "{e}");
        assert_eq!(listing(&outside), names(&["0.log", "secret"]));
    }

    #[tokio::test]
    async fn a_log_outside_the_pod_logs_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (_fake, cri, _base, id) = setup(tmp.path()).await;
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let e = check_container(&cri, &policy(5), &elsewhere, &id, "20260102-030405")
            .await
            .unwrap_err();
        assert!(matches!(e, RuntimeError::UnsafePath { .. }), "{e}");
    }

    #[tokio::test]
    async fn the_loop_rotates_until_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let (_fake, cri, base, _id) = setup(tmp.path()).await;
        let dir = base.join("ns_p_uid/app");
        std::fs::write(dir.join("0.log"), vec![b'f'; 2048]).unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(cri.clone(), policy(3), base.clone(), stop));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while listing(&dir).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "{:?}", listing(&dir));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        // Disabled: returns at once.
        let disabled = RotationPolicy {
            max_size: -1,
            ..policy(3)
        };
        let (_tx, stop) = watch::channel(false);
        tokio::time::timeout(Duration::from_secs(5), run(cri, disabled, base, stop))
            .await
            .unwrap();
    }
}
