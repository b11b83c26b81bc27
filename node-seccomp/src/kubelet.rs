//! The kubelet's seccomp resolution: which profile a container runs with, what goes to the CRI,
//! and where Localhost profiles live.

use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::file;
use crate::json::Ctx;
use crate::profile::Profile;
use crate::validate::{ValidationReport, validate};

/// `SeccompProfile.type` of the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SeccompProfileType {
    /// `Unconfined`
    Unconfined,
    /// `RuntimeDefault`
    RuntimeDefault,
    /// `Localhost`
    Localhost,
    /// Any other string: the kubelet resolves it to Unconfined.
    Other(String),
}

impl SeccompProfileType {
    /// Parses the API string.
    pub fn from_api(s: &str) -> SeccompProfileType {
        match s {
            "Unconfined" => SeccompProfileType::Unconfined,
            "RuntimeDefault" => SeccompProfileType::RuntimeDefault,
            "Localhost" => SeccompProfileType::Localhost,
            other => SeccompProfileType::Other(other.to_string()),
        }
    }
}

/// `securityContext.seccompProfile` of a pod or container (the Kubernetes API shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompProfile {
    /// `type`
    pub profile_type: SeccompProfileType,
    /// `localhostProfile`: relative to `<root-dir>/seccomp`.
    pub localhost_profile: Option<String>,
}

impl SeccompProfile {
    /// `{type: RuntimeDefault}`
    pub fn runtime_default() -> SeccompProfile {
        SeccompProfile {
            profile_type: SeccompProfileType::RuntimeDefault,
            localhost_profile: None,
        }
    }
    /// `{type: Unconfined}`
    pub fn unconfined() -> SeccompProfile {
        SeccompProfile {
            profile_type: SeccompProfileType::Unconfined,
            localhost_profile: None,
        }
    }
    /// `{type: Localhost, localhostProfile: path}`
    pub fn localhost(path: &str) -> SeccompProfile {
        SeccompProfile {
            profile_type: SeccompProfileType::Localhost,
            localhost_profile: Some(path.to_string()),
        }
    }
}

/// Which list of the pod spec a container comes from. All three resolve the same way: the
/// container's field, else the pod's (init and ephemeral containers inherit it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContainerKind {
    /// `spec.containers`
    Regular,
    /// `spec.initContainers`
    Init,
    /// `spec.ephemeralContainers`
    Ephemeral,
}

/// CRI `SecurityProfile.ProfileType` (the proto enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CriProfileType {
    /// `RuntimeDefault = 0` (the proto3 zero value).
    RuntimeDefault = 0,
    /// `Unconfined = 1`
    Unconfined = 1,
    /// `Localhost = 2`
    Localhost = 2,
}

/// CRI `runtime.v1.SecurityProfile`: what the kubelet sends for the sandbox and each container.
/// Always send an explicit message: runtimes read a missing one as "no seccomp".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityProfile {
    /// `profile_type` (field 1).
    pub profile_type: CriProfileType,
    /// `localhost_ref` (field 2): for Localhost, the absolute path of the profile; else empty.
    pub localhost_ref: String,
}

impl SecurityProfile {
    fn of(profile_type: CriProfileType) -> SecurityProfile {
        SecurityProfile {
            profile_type,
            localhost_ref: String::new(),
        }
    }
}

/// A Localhost profile opened, read and validated by [`SeccompResolver::open_localhost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalhostProfile {
    /// The canonical path of the file that was opened and checked: below the canonical
    /// profile root, without symbolic links, valid UTF-8. This is what the runtime must be
    /// handed as the CRI `localhost_ref` (see [`LocalhostProfile::security_profile`]), not the
    /// path as written, whose directories are not what was checked.
    pub path: PathBuf,
    /// The profile parsed from the bytes read (not from a second read of the file).
    pub profile: Profile,
    /// What validation found that does not stop a runtime (unknown syscall names).
    pub report: ValidationReport,
}

impl LocalhostProfile {
    /// The CRI `SecurityProfile` to send for this profile: Localhost with
    /// [`LocalhostProfile::path`] as `localhost_ref`.
    pub fn security_profile(&self) -> SecurityProfile {
        SecurityProfile {
            profile_type: CriProfileType::Localhost,
            // `open_localhost` refuses paths that are not valid UTF-8, so this is exact.
            localhost_ref: self.path.to_string_lossy().into_owned(),
        }
    }
}

/// One container of a pod as far as seccomp is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSeccomp {
    /// Container name.
    pub name: String,
    /// Which list it is in.
    pub kind: ContainerKind,
    /// `securityContext.seccompProfile`.
    pub profile: Option<SeccompProfile>,
}

/// The kubelet's resolver, for a root directory and the `seccompDefault` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompResolver {
    root_dir: PathBuf,
    seccomp_default: bool,
}

impl SeccompResolver {
    /// `root_dir` is the kubelet's `--root-dir` (default `/var/lib/kubelet`).
    pub fn new(root_dir: impl Into<PathBuf>, seccomp_default: bool) -> SeccompResolver {
        SeccompResolver {
            root_dir: root_dir.into(),
            seccomp_default,
        }
    }

    /// `<root-dir>/seccomp`, the only place Localhost profiles are read from.
    pub fn profile_root(&self) -> PathBuf {
        self.root_dir.join("seccomp")
    }

    /// The pod sandbox always runs with RuntimeDefault (kubernetes#84623).
    pub fn sandbox_profile(&self) -> SecurityProfile {
        SecurityProfile::of(CriProfileType::RuntimeDefault)
    }

    /// The CRI profile of one container: its own field, else the pod's, else RuntimeDefault when
    /// `seccompDefault` is on, else Unconfined. An explicit Unconfined wins over the default;
    /// unknown types resolve to Unconfined. Localhost without a path is the kubelet's
    /// `CreateContainerConfigError`; a path leaving `<root-dir>/seccomp` is refused here (the
    /// API server checks this, the upstream kubelet does not).
    pub fn container_profile(
        &self,
        pod: Option<&SeccompProfile>,
        container: Option<&SeccompProfile>,
    ) -> Result<SecurityProfile> {
        let Some(p) = container.or(pod) else {
            return Ok(SecurityProfile::of(if self.seccomp_default {
                CriProfileType::RuntimeDefault
            } else {
                CriProfileType::Unconfined
            }));
        };
        match &p.profile_type {
            SeccompProfileType::RuntimeDefault => {
                Ok(SecurityProfile::of(CriProfileType::RuntimeDefault))
            }
            SeccompProfileType::Localhost => {
                let rel = p.localhost_profile.as_deref().unwrap_or("");
                if rel.is_empty() {
                    return Err(Error::Resolution {
                        message:
                            "localhostProfile must be set if seccompProfile type is Localhost."
                                .to_string(),
                    });
                }
                let path = self.localhost_path(rel)?;
                Ok(SecurityProfile {
                    profile_type: CriProfileType::Localhost,
                    localhost_ref: path.display().to_string(),
                })
            }
            SeccompProfileType::Unconfined | SeccompProfileType::Other(_) => {
                Ok(SecurityProfile::of(CriProfileType::Unconfined))
            }
        }
    }

    /// Resolves every container of a pod (regular, init, ephemeral), in order.
    pub fn pod_profiles(
        &self,
        pod: Option<&SeccompProfile>,
        containers: &[ContainerSeccomp],
    ) -> Vec<(String, ContainerKind, Result<SecurityProfile>)> {
        containers
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.kind,
                    self.container_profile(pod, c.profile.as_ref()),
                )
            })
            .collect()
    }

    /// `<root-dir>/seccomp/<rel>` as an absolute path, after the API server's checks (not
    /// empty, relative, no `..` element) and a lexical check that the result stays inside.
    pub fn localhost_path(&self, rel: &str) -> Result<PathBuf> {
        let reject = |reason: &str| Error::LocalhostPath {
            value: rel.to_string(),
            reason: reason.to_string(),
        };
        if rel.is_empty() {
            return Err(reject("must not be empty"));
        }
        if rel.starts_with('/') || Path::new(rel).is_absolute() {
            return Err(reject("must be a relative path"));
        }
        if rel.split('/').any(|seg| seg == "..") {
            return Err(reject("must not contain '..'"));
        }
        let root = absolute(&self.profile_root());
        let mut path = root.clone();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(seg) => path.push(seg),
                Component::CurDir => {}
                _ => return Err(reject("must be a descending path")),
            }
        }
        if !path.starts_with(&root) || path == root {
            return Err(reject("must name a file below the seccomp profile root"));
        }
        Ok(path)
    }

    /// Opens, reads and validates the profile a Localhost `SecurityProfile` points at
    /// (`localhost_ref`, the absolute path [`SeccompResolver::container_profile`] built).
    ///
    /// * The directories are resolved (`canonicalize` of the parent) and must lie below the
    ///   canonical `<root-dir>/seccomp`; a `..` component is refused with the API server's
    ///   wording (`must not contain '..'`), a relative or empty ref is refused, and a path
    ///   resolving outside the root (an absolute ref elsewhere, a symlinked directory pointing
    ///   out) is [`Error::LocalhostPath`].
    /// * The final component is never followed: a symbolic link there is
    ///   [`Error::ProfileNotRegular`] naming the path, and so is anything but a regular file.
    ///   It is opened once, with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a FIFO cannot block
    ///   the agent), checked with `fstat`, and the opened file is verified through
    ///   `/proc/self/fd` to be the checked path ([`Error::ProfileChanged`] if a directory was
    ///   swapped in between).
    /// * At most [`crate::MAX_PROFILE_BYTES`] are read, through a bounded reader
    ///   ([`Error::ProfileTooLarge`], also for a file that grows after the `fstat`); the bytes
    ///   read are parsed and validated ([`Error::ProfileRejected`] with the validation error as
    ///   its source).
    ///
    /// A missing file is the runtime-style `cannot load seccomp profile "<path>"`
    /// ([`Error::ProfileFile`], `CreateContainerError` in the kubelet). Hand the runtime
    /// [`LocalhostProfile::path`], the resolved path that was checked.
    pub fn open_localhost(&self, localhost_ref: &Path) -> Result<LocalhostProfile> {
        let reject = |reason: String| Error::LocalhostPath {
            value: localhost_ref.display().to_string(),
            reason,
        };
        if localhost_ref.as_os_str().is_empty() {
            return Err(reject("must not be empty".to_string()));
        }
        if !localhost_ref.is_absolute() {
            return Err(reject(
                "must be an absolute path below the seccomp profile root (the CRI localhost_ref)"
                    .to_string(),
            ));
        }
        // validatePathNoBacksteps (kubernetes pkg/apis/core/validation/validation.go), which
        // its own comment asks nodes to repeat.
        if localhost_ref
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(reject("must not contain '..'".to_string()));
        }
        let (Some(parent), Some(name)) = (localhost_ref.parent(), localhost_ref.file_name()) else {
            return Err(reject(
                "must name a file below the seccomp profile root".to_string(),
            ));
        };
        let file_err = |path: &Path, source: std::io::Error| Error::ProfileFile {
            path: path.to_path_buf(),
            source,
        };
        let root =
            std::fs::canonicalize(self.profile_root()).map_err(|e| file_err(localhost_ref, e))?;
        let dir = std::fs::canonicalize(parent).map_err(|e| file_err(localhost_ref, e))?;
        let resolved = dir.join(name);
        if !dir.starts_with(&root) {
            return Err(reject(format!(
                "resolves to {} outside the seccomp profile root {}",
                resolved.display(),
                root.display()
            )));
        }
        if resolved.to_str().is_none() {
            return Err(reject(format!(
                "resolves to {}, which is not valid UTF-8 (the CRI localhost_ref is a string)",
                resolved.display()
            )));
        }
        // Refuse what is not a regular file before opening it (opening a device can have side
        // effects); the fstat after the open is what counts.
        let meta = std::fs::symlink_metadata(&resolved).map_err(|e| file_err(&resolved, e))?;
        if !meta.file_type().is_file() {
            return Err(Error::ProfileNotRegular {
                path: resolved,
                kind: file::kind(&meta.file_type()),
            });
        }
        let mut opened = match file::open(&resolved, true) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::ProfileNotRegular {
                    path: resolved,
                    kind: "a symbolic link",
                });
            }
            Err(e) => return Err(file_err(&resolved, e)),
        };
        // The directories were resolved before the open: make sure the file opened is really
        // the one below the root (a directory swapped for a symlink in between would show here).
        let fd_link = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
        match std::fs::read_link(&fd_link) {
            Ok(actual) if actual == resolved => {}
            Ok(actual) => {
                return Err(Error::ProfileChanged {
                    path: resolved,
                    reason: format!("the file opened is {}", actual.display()),
                });
            }
            Err(e) => {
                return Err(Error::ProfileChanged {
                    path: resolved,
                    reason: format!("cannot read {}: {e}", fd_link.display()),
                });
            }
        }
        let bytes = file::read_regular(&mut opened, &resolved)?;
        drop(opened);
        let origin = resolved.display().to_string();
        let ctx = Ctx { origin: &origin };
        let profile = crate::profile::parse(&ctx, &bytes)?;
        let report = validate(&profile).map_err(|e| Error::ProfileRejected {
            path: resolved.clone(),
            source: Box::new(e),
        })?;
        Ok(LocalhostProfile {
            path: resolved,
            profile,
            report,
        })
    }

    /// The profile of [`SeccompResolver::open_localhost`], for callers that only need the
    /// profile. Prefer `open_localhost`: the runtime must be handed the resolved path it
    /// returns, not `localhost_ref`. Same checks and errors (the profile is validated too).
    pub fn load_localhost(&self, localhost_ref: &Path) -> Result<Profile> {
        self.open_localhost(localhost_ref).map(|l| l.profile)
    }
}

/// Makes `p` absolute against the current directory without touching the filesystem.
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
