//! The checkpoint service: resolve the pod and container, name the archive, call the CRI with
//! the kubelet's timeout rules, and leave a root-only archive that never replaced another.
//!
//! **Collisions.** The kubelet names archives with a whole-second RFC 3339 timestamp, so two
//! requests for one container in the same second get the same path, and containerd and CRI-O
//! then overwrite the first archive in place. Here the runtime writes into a private
//! temporary file in the checkpoints directory; the finished archive is fsynced and then
//! renamed to its final name with `RENAME_NOREPLACE` (a hard link where the filesystem lacks
//! the flag), which fails instead of replacing an existing file. The first request in a
//! second gets the kubelet's exact name; a later one in the same second gets the same name
//! with nine fractional digits (`...T21:43:06.123456789Z.tar`), still an RFC 3339 timestamp,
//! so tools that parse the kubelet's names keep working and no archive is ever overwritten
//! or truncated.
//!
//! **Timeouts.** `?timeout=` is parsed as the kubelet parses it (Go's query rules, last value
//! wins, `strconv.ParseInt`), and the kubelet's CRI client turns it into a Go
//! `time.Duration` of seconds, so values above [`MAX_TIMEOUT_SECONDS`] (more than `i64::MAX`
//! nanoseconds) have no meaning there; they are refused with the kubelet's 404 for an
//! unparsable timeout. Every deadline handed to tonic (the `grpc-timeout` header, whose
//! encoder panics beyond 99,999,999 hours) and to tokio timers is at most [`MAX_DEADLINE`].
//!
//! **Blocking work.** Publishing an archive (fsync of a file that may hold gigabytes of memory
//! pages, the rename, retention) runs on tokio's blocking pool, never on the thread that serves
//! requests.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use node_runtime::{ClientOptions, CriClient, PodRegistry, cri};

use crate::error::{CheckpointError, go_code_name};
use crate::names::{
    archive_file_name, is_dns_label, is_dns_subdomain, rfc3339_nanos, rfc3339_seconds,
};
use crate::retention::Retention;

/// The kubelet's default `runtimeRequestTimeout` (2 minutes).
pub const DEFAULT_RUNTIME_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest `?timeout=` (seconds) that is a Go `time.Duration`: `i64::MAX` nanoseconds
/// is 9,223,372,036.85 s. Larger values are refused like unparsable ones (HTTP 404).
pub const MAX_TIMEOUT_SECONDS: i64 = i64::MAX / 1_000_000_000;
/// The longest CRI deadline ever used (about 292 years): [`MAX_TIMEOUT_SECONDS`] seconds, the
/// CRI client's own cap ([`node_runtime::MAX_DEADLINE`]). tonic encodes it as a valid
/// `grpc-timeout` and tokio timers take it.
pub const MAX_DEADLINE: Duration = node_runtime::MAX_DEADLINE;
/// Prefix of the runtime's in-progress files inside the checkpoints directory.
pub const TEMP_PREFIX: &str = ".checkpoint-tmp-";

/// How the service is set up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckpointConfig {
    /// The kubelet's `--root-dir` (default `/var/lib/kubelet`); archives go to
    /// `<root_dir>/checkpoints`.
    pub root_dir: PathBuf,
    /// The `ContainerCheckpoint` feature gate (beta, on by default since 1.30). Off: no
    /// directory is created and the HTTP route does not exist.
    pub enabled: bool,
    /// The node name. The service itself does not use it: authorization attributes (whose
    /// `name` is the node name) come from the server in front.
    pub node_name: String,
    /// `runtimeRequestTimeout`: the least CRI deadline (the kubelet uses
    /// `max(timeout, runtimeRequestTimeout)`).
    pub runtime_request_timeout: Duration,
    /// Optional retention of old archives (off by default, like the kubelet).
    pub retention: Retention,
}

impl CheckpointConfig {
    /// The kubelet's defaults for `root_dir` and `node_name`: gate on, 2 minute request
    /// timeout, no retention.
    pub fn new(root_dir: impl Into<PathBuf>, node_name: impl Into<String>) -> Self {
        Self {
            root_dir: root_dir.into(),
            enabled: true,
            node_name: node_name.into(),
            runtime_request_timeout: DEFAULT_RUNTIME_REQUEST_TIMEOUT,
            retention: Retention::default(),
        }
    }

    /// Sets [`enabled`](Self::enabled).
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets [`runtime_request_timeout`](Self::runtime_request_timeout).
    #[must_use]
    pub fn with_runtime_request_timeout(mut self, runtime_request_timeout: Duration) -> Self {
        self.runtime_request_timeout = runtime_request_timeout;
        self
    }

    /// Sets [`retention`](Self::retention).
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// `<root_dir>/checkpoints`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root_dir.join("checkpoints")
    }
}

/// A container the request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// Runtime ID of the container's latest instance, if one exists.
    pub container_id: Option<String>,
}

/// The checkpoint service. Cheap to share behind an `Arc`; requests run concurrently.
#[derive(Debug)]
pub struct CheckpointService {
    config: CheckpointConfig,
    dir: PathBuf,
    client: Option<CriClient>,
    registry: PodRegistry,
    counter: AtomicU64,
}

impl CheckpointService {
    /// Sets the service up. With the gate on this creates `<root_dir>/checkpoints` with mode
    /// 0700 (tightening an existing directory to 0700, refusing a symlink) and removes the
    /// temporary files a previous run left behind. With the gate off it touches nothing.
    ///
    /// `client` may be the agent's own: the service gives each `CheckpointContainer` call the
    /// kubelet's deadline (`max(timeout, runtimeRequestTimeout)`) itself.
    pub fn new(
        config: CheckpointConfig,
        client: CriClient,
        registry: PodRegistry,
    ) -> Result<Self, CheckpointError> {
        let dir = config.checkpoints_dir();
        if config.enabled {
            prepare_dir(&dir)?;
        }
        Ok(Self {
            dir,
            client: Some(client),
            registry,
            counter: AtomicU64::new(0),
            config,
        })
    }

    /// Connects a CRI client to `endpoint` (the runtime's `Version` under the configured
    /// `runtime_request_timeout`), then sets up like [`CheckpointService::new`].
    pub async fn connect(
        config: CheckpointConfig,
        endpoint: &str,
        registry: PodRegistry,
    ) -> Result<Self, CheckpointError> {
        let options = ClientOptions::default().with_request_timeout(config.runtime_request_timeout);
        let client = CriClient::connect(endpoint, &options)
            .await
            .map_err(|source| CheckpointError::Connect { source })?;
        Self::new(config, client, registry)
    }

    /// A service with the gate off and no runtime: every request fails with
    /// [`CheckpointError::Disabled`] and the router has no route.
    pub fn disabled(config: CheckpointConfig, registry: PodRegistry) -> Self {
        Self {
            dir: config.checkpoints_dir(),
            client: None,
            registry,
            counter: AtomicU64::new(0),
            config: CheckpointConfig {
                enabled: false,
                ..config
            },
        }
    }

    /// Whether the `ContainerCheckpoint` gate is on.
    pub fn enabled(&self) -> bool {
        self.config.enabled && self.client.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// `<root_dir>/checkpoints`.
    pub fn checkpoints_dir(&self) -> &Path {
        &self.dir
    }

    /// Finds the container: the pod by namespace/name, then the container by name among every
    /// container the registry lists for it (init and regular today: static pods cannot have
    /// ephemeral containers; any kind the registry adds later is found the same way). Names
    /// that are not valid Kubernetes names are treated as unknown and never looked up.
    pub fn resolve(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Target, CheckpointError> {
        let pod_missing = || CheckpointError::PodNotFound {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
        };
        if !is_dns_label(namespace) || !is_dns_subdomain(pod) {
            return Err(pod_missing());
        }
        let info = self.registry.get(namespace, pod).ok_or_else(pod_missing)?;
        let missing = || CheckpointError::ContainerNotFound {
            container: container.to_owned(),
        };
        if !is_dns_label(container) {
            return Err(missing());
        }
        let c = info.container(container).ok_or_else(missing)?;
        Ok(Target {
            namespace: info.namespace.clone(),
            pod: info.name.clone(),
            container: c.name.clone(),
            container_id: c.container_id.clone(),
        })
    }

    /// Resolves and checkpoints `namespace/pod/container`; returns the archive path.
    /// `timeout` is in seconds; `None` or 0 means the runtime request timeout.
    pub async fn checkpoint(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        timeout: Option<i64>,
    ) -> Result<PathBuf, CheckpointError> {
        let target = self.resolve(namespace, pod, container)?;
        self.checkpoint_target(&target, timeout).await
    }

    /// Checkpoints an already resolved container; returns the archive path.
    pub async fn checkpoint_target(
        &self,
        target: &Target,
        timeout: Option<i64>,
    ) -> Result<PathBuf, CheckpointError> {
        let (Some(client), true) = (&self.client, self.config.enabled) else {
            return Err(CheckpointError::Disabled);
        };
        let deadline = effective_deadline(timeout, self.config.runtime_request_timeout)?;
        let container_id =
            target
                .container_id
                .clone()
                .ok_or_else(|| CheckpointError::NoInstance {
                    container: target.container.clone(),
                })?;
        // Defence in depth: the registry's names are validated by the API server and by
        // resolve(), but the file name must never carry a separator whatever the caller did.
        for s in [&target.namespace, &target.pod, &target.container] {
            if s.contains(['/', '\0']) || s == ".." || s == "." {
                return Err(CheckpointError::PodNotFound {
                    namespace: target.namespace.clone(),
                    pod: target.pod.clone(),
                });
            }
        }
        let now = jiff::Zoned::now();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}-{n}.tar", std::process::id()));
        remove_if_present(&temp)?;
        let called = self
            .call_runtime(client, &container_id, &temp, deadline)
            .await;
        let dir = self.dir.clone();
        let target = target.clone();
        let retention = self.config.retention;
        blocking("publishing the archive", move || {
            let result = called.and_then(|()| publish(&dir, &temp, &target, &now));
            // Whatever happened, the temporary name must not survive (on success publish()
            // has already moved it to its final name). A runtime that keeps writing after a deadline
            // may recreate it; such leftovers are removed at the next start, never reported
            // as archives, and ignored by retention.
            let cleanup = remove_if_present(&temp);
            let path = result?;
            cleanup?;
            if retention.is_enabled()
                && let Err(err) = retention.enforce(&dir, &path)
            {
                tracing::warn!(error = %node_util::error_chain(&err), "checkpoint retention");
            }
            Ok(path)
        })
        .await
    }

    async fn call_runtime(
        &self,
        client: &CriClient,
        container_id: &str,
        location: &Path,
        deadline: Duration,
    ) -> Result<(), CheckpointError> {
        // Never more than MAX_DEADLINE, whatever the caller computed: tonic's grpc-timeout
        // encoder panics on durations it cannot write in 8 digits of hours.
        let deadline = deadline.min(MAX_DEADLINE);
        let mut request = tonic::Request::new(cri::CheckpointContainerRequest {
            container_id: container_id.to_owned(),
            location: location.to_string_lossy().into_owned(),
            timeout: i64::try_from(deadline.as_secs()).unwrap_or(MAX_TIMEOUT_SECONDS),
        });
        // Tell the runtime the deadline too (grpc-timeout), like a Go context would.
        request.set_timeout(deadline);
        let mut stub = client.runtime();
        match tokio::time::timeout(deadline, stub.checkpoint_container(request)).await {
            Err(_) => Err(CheckpointError::DeadlineExceeded {
                seconds: deadline.as_secs(),
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status))
                if status.code() == tonic::Code::Cancelled
                    && status.message().contains("Timeout expired") =>
            {
                Err(CheckpointError::DeadlineExceeded {
                    seconds: deadline.as_secs(),
                })
            }
            Ok(Err(status)) => Err(CheckpointError::Runtime {
                code: go_code_name(status.code()),
                message: status.message().to_owned(),
            }),
        }
    }
}

/// Makes the runtime's file root-only and gives it its final name without replacing
/// anything.
fn publish(
    dir: &Path,
    temp: &Path,
    target: &Target,
    now: &jiff::Zoned,
) -> Result<PathBuf, CheckpointError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(temp)
    {
        Ok(f) => f,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::libc::ELOOP) =>
        {
            return Err(CheckpointError::NoArchive {
                path: temp.to_owned(),
            });
        }
        Err(e) => return Err(CheckpointError::io("opening archive", temp, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| CheckpointError::io("inspecting archive", temp, e))?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(CheckpointError::NoArchive {
            path: temp.to_owned(),
        });
    }
    // Root-only whatever the runtime left: owner = this agent (root in production).
    std::os::unix::fs::fchown(
        &file,
        Some(nix::unistd::geteuid().as_raw()),
        Some(nix::unistd::getegid().as_raw()),
    )
    .map_err(|e| CheckpointError::io("changing owner of archive", temp, e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CheckpointError::io("changing mode of archive", temp, e))?;
    file.sync_all()
        .map_err(|e| CheckpointError::io("syncing archive", temp, e))?;

    drop(file);

    // Crash safety. The archive's data and inode (owner, mode) are durable from the fsync
    // above, before its final name exists in any form, so whatever a crash leaves, the final
    // name never points at data that was not on disk yet. The name then appears in one
    // directory operation that fails instead of replacing (renameat2 RENAME_NOREPLACE, or a
    // hard link), and the directory is fsynced before the path is returned, so a reported
    // archive keeps its name and content across a crash. A crash before that fsync leaves the
    // temporary name, the final one, or (with the link fallback) both on one inode: the
    // temporary name is removed at the next start, an unreported final name is a complete
    // archive. One metadata operation and one directory fsync is the least a durable,
    // non-replacing publish of a file written elsewhere takes: the name change has to come
    // after the data is durable, so it needs a journal commit of its own.
    let dir_file = std::fs::File::open(dir)
        .map_err(|e| CheckpointError::io("opening checkpoint directory", dir, e))?;
    let temp_name = temp.file_name().ok_or_else(|| CheckpointError::NoArchive {
        path: temp.to_owned(),
    })?;
    let base = archive_file_name(
        &target.pod,
        &target.namespace,
        &target.container,
        &rfc3339_seconds(now),
    );
    let first = dir.join(&base);
    let mut nanos = now.subsec_nanosecond().unsigned_abs();
    let mut candidate = base;
    for _ in 0..1_000_000 {
        match name_without_replacing(&dir_file, temp_name, candidate.as_ref()) {
            Ok(()) => {
                dir_file
                    .sync_all()
                    .map_err(|e| CheckpointError::io("syncing checkpoint directory", dir, e))?;
                return Ok(dir.join(candidate));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                candidate = archive_file_name(
                    &target.pod,
                    &target.namespace,
                    &target.container,
                    &rfc3339_nanos(now, nanos),
                );
                nanos = (nanos + 1) % 1_000_000_000;
            }
            Err(e) => {
                return Err(CheckpointError::io(
                    "naming archive",
                    dir.join(&candidate),
                    e,
                ));
            }
        }
    }
    Err(CheckpointError::NameExhausted { path: first })
}

/// Moves `from` to `to` inside `dir`, failing with `AlreadyExists` instead of replacing an
/// existing `to`: `renameat2(RENAME_NOREPLACE)`, one directory operation. Where the kernel or
/// the filesystem does not offer it (`EINVAL`, `ENOSYS`; and on targets without the call) it
/// hard-links `from` to `to` instead, which never replaces either; the caller's clean-up then
/// unlinks `from`.
fn name_without_replacing(
    dir: &std::fs::File,
    from: &std::ffi::OsStr,
    to: &std::ffi::OsStr,
) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{RenameFlags, renameat2};
        match renameat2(dir, from, dir, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_without_replacing(dir, from, to)
}

/// The fallback of [`name_without_replacing`]: a hard link, which fails with `EEXIST`
/// instead of replacing; `from` stays for the caller to unlink.
fn link_without_replacing(
    dir: &std::fs::File,
    from: &std::ffi::OsStr,
    to: &std::ffi::OsStr,
) -> std::io::Result<()> {
    nix::unistd::linkat(dir, from, dir, to, nix::fcntl::AtFlags::empty())?;
    Ok(())
}

/// Runs blocking filesystem work on tokio's blocking pool ([`node_util::run_blocking`]).
async fn blocking<T: Send + 'static>(
    action: &'static str,
    work: impl FnOnce() -> Result<T, CheckpointError> + Send + 'static,
) -> Result<T, CheckpointError> {
    node_util::run_blocking(action, work).await
}

impl From<node_util::BlockingFailed> for CheckpointError {
    fn from(e: node_util::BlockingFailed) -> Self {
        CheckpointError::Internal {
            action: e.action,
            reason: e.reason,
        }
    }
}

/// The kubelet's CRI deadline: `max(timeout, runtimeRequestTimeout)`, at most
/// [`MAX_DEADLINE`]; a negative timeout is refused like the kubelet's CRI client does
/// (`k8s.io/cri-client` `CheckpointContainer`).
pub fn effective_deadline(
    timeout: Option<i64>,
    runtime_request_timeout: Duration,
) -> Result<Duration, CheckpointError> {
    let requested = match timeout {
        Some(t) if t < 0 => return Err(CheckpointError::NegativeTimeout { timeout: t }),
        Some(t) => Duration::from_secs(t.unsigned_abs()),
        None => Duration::ZERO,
    };
    Ok(requested.max(runtime_request_timeout).min(MAX_DEADLINE))
}

/// Parses `?timeout=` the way the kubelet does: Go's `URL.Query()` (pairs split on `&`, a pair
/// containing `;` or with a bad `%` escape is skipped, `+` is a space), the **last** `timeout`
/// value wins, and it must be a base-10 int64 with an optional sign (`strconv.ParseInt`) of
/// at most [`MAX_TIMEOUT_SECONDS`]. Anything else is [`CheckpointError::InvalidTimeout`]
/// (HTTP 404). No parameter: `None`. Negative values parse; the CRI call refuses them (500).
pub fn parse_timeout_query(query: Option<&str>) -> Result<Option<i64>, CheckpointError> {
    let Some(raw) = query.and_then(|q| last_query_value(q, "timeout")) else {
        return Ok(None);
    };
    let invalid = || CheckpointError::InvalidTimeout {
        value: String::from_utf8_lossy(&raw).into_owned(),
    };
    let value = std::str::from_utf8(&raw)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(invalid)?;
    if value > MAX_TIMEOUT_SECONDS {
        return Err(invalid());
    }
    Ok(Some(value))
}

/// The last value of `name` in `query`, decoded as Go's `url.ParseQuery` decodes it (Go 1.17
/// and later; `net/url/url.go`): pairs are split on `&`, a pair containing `;` is skipped, a
/// pair without `=` has an empty value, keys and values are unescaped with `+` as a space and
/// a malformed `%` escape skips the pair.
fn last_query_value(query: &str, name: &str) -> Option<Vec<u8>> {
    let mut last = None;
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = query_unescape(key) else {
            continue;
        };
        let Some(value) = query_unescape(value) else {
            continue;
        };
        if key == name.as_bytes() {
            last = Some(value);
        }
    }
    last
}

/// Go's `url.QueryUnescape`: `%XX` with two hex digits is a byte, `+` is a space, anything
/// else is itself; `None` for a `%` without two hex digits.
fn query_unescape(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn prepare_dir(dir: &Path) -> Result<(), CheckpointError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(CheckpointError::io(
                "error creating checkpoint directory",
                dir,
                std::io::Error::other("exists and is not a directory"),
            ));
        }
        Ok(m) => {
            if m.mode() & 0o777 != 0o700 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| CheckpointError::io("error creating checkpoint directory", dir, e),
                )?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CheckpointError::io("error creating checkpoint directory", dir, e))?;
            // The umask may have taken bits away but never adds any; make it exact.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| CheckpointError::io("error creating checkpoint directory", dir, e))?;
        }
        Err(e) => {
            return Err(CheckpointError::io(
                "error creating checkpoint directory",
                dir,
                e,
            ));
        }
    }
    // A previous run may have died while a runtime was writing.
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CheckpointError::io("reading checkpoint directory", dir, e))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), CheckpointError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CheckpointError::io("removing", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_larger_of_timeout_and_request_timeout() {
        let d = Duration::from_secs(120);
        assert_eq!(effective_deadline(None, d).unwrap(), d);
        assert_eq!(effective_deadline(Some(0), d).unwrap(), d);
        assert_eq!(effective_deadline(Some(5), d).unwrap(), d);
        assert_eq!(
            effective_deadline(Some(600), d).unwrap(),
            Duration::from_secs(600)
        );
        for t in [-1, i64::MIN] {
            assert!(matches!(
                effective_deadline(Some(t), d),
                Err(CheckpointError::NegativeTimeout { timeout }) if timeout == t
            ));
        }
    }

    #[test]
    fn deadlines_are_clamped_to_what_tonic_and_tokio_take() {
        let d = Duration::from_secs(120);
        assert_eq!(MAX_TIMEOUT_SECONDS, 9_223_372_036);
        assert_eq!(
            effective_deadline(Some(MAX_TIMEOUT_SECONDS), d).unwrap(),
            MAX_DEADLINE
        );
        // Whatever reaches it directly (a caller of CheckpointService::checkpoint, a huge
        // runtimeRequestTimeout) is clamped too.
        assert_eq!(effective_deadline(Some(i64::MAX), d).unwrap(), MAX_DEADLINE);
        assert_eq!(
            effective_deadline(None, Duration::MAX).unwrap(),
            MAX_DEADLINE
        );
        // Why the clamp matters: tonic's grpc-timeout encoder panics on a duration it cannot
        // write as at most 8 digits of hours (the panic behind `?timeout=400000000000`).
        let too_long = std::panic::catch_unwind(|| {
            let mut request = tonic::Request::new(());
            request.set_timeout(Duration::from_secs(400_000_000_000));
        });
        assert!(too_long.is_err());
        // The clamped deadline is a valid grpc-timeout and a valid tokio timer.
        let mut request = tonic::Request::new(());
        request.set_timeout(MAX_DEADLINE);
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "2562047H");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let sleeping = tokio::time::timeout(MAX_DEADLINE, std::future::pending::<()>());
            assert!(
                tokio::time::timeout(Duration::from_millis(10), sleeping)
                    .await
                    .is_err()
            );
        });
    }

    #[test]
    fn timeout_range_matches_a_go_duration_of_seconds() {
        let ok = |q: &str| parse_timeout_query(Some(q)).unwrap();
        let refused = |q: &str| {
            assert!(
                matches!(
                    parse_timeout_query(Some(q)),
                    Err(CheckpointError::InvalidTimeout { .. })
                ),
                "{q}"
            );
        };
        assert_eq!(ok("timeout=9223372036"), Some(9_223_372_036));
        refused("timeout=9223372037");
        refused("timeout=400000000000");
        refused("timeout=9223372036854775807");
        refused("timeout=9223372036854775808");
        // Negative values of any size parse (the CRI call refuses them: 500).
        assert_eq!(ok("timeout=-9223372037"), Some(-9_223_372_037));
        assert_eq!(ok("timeout=-9223372036854775808"), Some(i64::MIN));
        refused("timeout=-9223372036854775809");
        // The last value decides, in both directions.
        assert_eq!(ok("timeout=400000000000&timeout=5"), Some(5));
        refused("timeout=5&timeout=400000000000");
    }

    #[test]
    fn query_pairs_follow_go() {
        let ok = |q: &str| parse_timeout_query(Some(q)).unwrap();
        // Pairs with ';' or a broken escape are skipped, not errors.
        assert_eq!(ok("timeout=1;x=2"), None);
        assert_eq!(ok("timeout=7&timeout=1;x"), Some(7));
        assert_eq!(ok("timeout=%zz"), None);
        assert_eq!(ok("timeout=5&timeout=%4"), Some(5));
        assert_eq!(ok("time%6Fut=12"), Some(12));
        // A key without '=' has an empty value: present, and not a number.
        assert!(parse_timeout_query(Some("timeout")).is_err());
        // '+' is a space, so "+5" sent unescaped is " 5": not a number.
        assert!(parse_timeout_query(Some("timeout=+5")).is_err());
        assert_eq!(ok("timeout=%2B5"), Some(5));
        // Invalid UTF-8 after unescaping is not a number either.
        assert!(parse_timeout_query(Some("timeout=%ff")).is_err());
        assert_eq!(ok("&&timeout=3&&"), Some(3));
    }

    #[test]
    fn timeout_query_parses_like_the_kubelet() {
        assert_eq!(parse_timeout_query(None).unwrap(), None);
        assert_eq!(parse_timeout_query(Some("")).unwrap(), None);
        assert_eq!(parse_timeout_query(Some("x=1")).unwrap(), None);
        assert_eq!(parse_timeout_query(Some("timeout=30")).unwrap(), Some(30));
        assert_eq!(parse_timeout_query(Some("timeout=%2B7")).unwrap(), Some(7));
        assert_eq!(
            parse_timeout_query(Some("timeout=1&timeout=9")).unwrap(),
            Some(9)
        );
        assert_eq!(parse_timeout_query(Some("timeout=-3")).unwrap(), Some(-3));
        for bad in [
            "timeout=",
            "timeout=abc",
            "timeout=1.5",
            "timeout=9&timeout=x",
            "timeout=99999999999999999999",
            "timeout=%201",
            "timeout=10s",
            "timeout=1_000",
            "timeout=0x10",
        ] {
            assert!(
                matches!(
                    parse_timeout_query(Some(bad)),
                    Err(CheckpointError::InvalidTimeout { .. })
                ),
                "{bad}"
            );
        }
    }

    /// Both ways of naming an archive move it to a free name and refuse a taken one, leaving
    /// both files as they were.
    #[test]
    fn naming_never_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
        let name = |n: &str| std::ffi::OsString::from(n);
        std::fs::write(tmp.path().join("taken.tar"), b"old").unwrap();

        std::fs::write(tmp.path().join(".tmp-a"), b"a").unwrap();
        let e = name_without_replacing(&dir, &name(".tmp-a"), &name("taken.tar")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            (read("taken.tar"), read(".tmp-a")),
            (b"old".to_vec(), b"a".to_vec())
        );
        name_without_replacing(&dir, &name(".tmp-a"), &name("free.tar")).unwrap();
        assert_eq!(read("free.tar"), b"a");
        // renameat2 on this filesystem (the link fallback would leave the old name).
        assert!(!tmp.path().join(".tmp-a").exists());

        std::fs::write(tmp.path().join(".tmp-b"), b"b").unwrap();
        let e = link_without_replacing(&dir, &name(".tmp-b"), &name("taken.tar")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(read("taken.tar"), b"old");
        link_without_replacing(&dir, &name(".tmp-b"), &name("linked.tar")).unwrap();
        assert_eq!(
            (read("linked.tar"), read(".tmp-b")),
            (b"b".to_vec(), b"b".to_vec())
        );

        // A name that is a symlink is taken too: never followed, never replaced.
        std::os::unix::fs::symlink("/nonexistent", tmp.path().join("dangling.tar")).unwrap();
        std::fs::write(tmp.path().join(".tmp-c"), b"c").unwrap();
        for f in [name_without_replacing, link_without_replacing] {
            let e = f(&dir, &name(".tmp-c"), &name("dangling.tar")).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        }
        assert!(tmp.path().join("dangling.tar").is_symlink());
    }

    #[test]
    fn directory_is_created_0700_and_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root/checkpoints");
        prepare_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join(format!("{TEMP_PREFIX}1-0.tar")), b"partial").unwrap();
        std::fs::write(dir.join("checkpoint-a_b-c-x.tar"), b"kept").unwrap();
        prepare_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["checkpoint-a_b-c-x.tar"]);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(prepare_dir(&link).is_err());
    }
}
