//! The kubelet's seccomp resolution: which profile a container runs with, what goes to the CRI,
//! and where Localhost profiles live.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::profile::Profile;

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

    /// Reads the profile a Localhost `SecurityProfile` points at, as the runtime would, after
    /// checking on the node that symlinks do not lead outside `<root-dir>/seccomp`. A missing
    /// file gives the runtime-style `cannot load seccomp profile "<path>"` error
    /// (`CreateContainerError` in the kubelet).
    pub fn load_localhost(&self, localhost_ref: &Path) -> Result<Profile> {
        let file_err = |source: std::io::Error| Error::ProfileFile {
            path: localhost_ref.to_path_buf(),
            source,
        };
        let root = std::fs::canonicalize(self.profile_root()).map_err(file_err)?;
        let real = std::fs::canonicalize(localhost_ref).map_err(file_err)?;
        if !real.starts_with(&root) {
            return Err(Error::LocalhostPath {
                value: localhost_ref.display().to_string(),
                reason: format!("resolves to {} outside {}", real.display(), root.display()),
            });
        }
        Profile::from_file(&real).map_err(|e| match e {
            Error::ProfileFile { source, .. } => file_err(source),
            other => other,
        })
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
