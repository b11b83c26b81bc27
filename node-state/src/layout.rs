//! The root directory layout, with the kubelet's paths, modes and error wording
//! (`pkg/kubelet/kubelet.go` `setupDataDirs`): `<root>` 0750, `pods`, `plugins`,
//! `plugins_registry`, `pod-resources` 0750, `checkpoints` 0700 when the ContainerCheckpoint
//! gate is on, the device-plugin directory, the certificate directory and the pod logs
//! directory.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let layout = node_state::layout::Layout {
//!     root: dir.path().join("kubelet"),
//!     pod_logs: dir.path().join("pods-logs"),
//!     cert_dir: dir.path().join("kubelet/pki"),
//!     checkpoints_enabled: false,
//! };
//! layout.create()?;
//! assert!(layout.pods().is_dir());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::device_manager::DEVICE_PLUGINS_DIR;
use crate::error::{Error, Result};

/// Where the agent keeps its files.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `--root-dir` (default `/var/lib/kubelet`), made absolute.
    pub root: PathBuf,
    /// `podLogsDir` (default `/var/log/pods`).
    pub pod_logs: PathBuf,
    /// `--cert-dir` (default `<root>/pki`).
    pub cert_dir: PathBuf,
    /// Whether `checkpoints/` is part of the layout (ContainerCheckpoint gate).
    pub checkpoints_enabled: bool,
}

impl Layout {
    /// The layout for these settings, every path made absolute: `root_dir` (`--root-dir`),
    /// `cert_dir` (`--cert-dir`; `None` for the default, `<root>/pki`, which follows a
    /// non-default root dir), `pod_logs_dir` (`podLogsDir`) and whether the ContainerCheckpoint
    /// gate is on.
    ///
    /// # Errors
    /// [`Error::Layout`] naming a path that cannot be made absolute.
    pub fn new(
        root_dir: &Path,
        cert_dir: Option<&Path>,
        pod_logs_dir: &Path,
        checkpoints_enabled: bool,
    ) -> Result<Self> {
        let absolute = |p: &Path| -> Result<PathBuf> {
            std::path::absolute(p).map_err(|source| Error::Layout {
                what: "error resolving directory",
                path: p.to_path_buf(),
                source,
            })
        };
        let root = absolute(root_dir)?;
        let cert_dir = match cert_dir {
            Some(dir) => absolute(dir)?,
            None => root.join("pki"),
        };
        Ok(Self {
            root,
            pod_logs: absolute(pod_logs_dir)?,
            cert_dir,
            checkpoints_enabled,
        })
    }

    /// `<root>/pods`.
    pub fn pods(&self) -> PathBuf {
        self.root.join("pods")
    }
    /// `<root>/plugins`.
    pub fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }
    /// `<root>/plugins_registry`, watched for plugin registration sockets.
    pub fn plugins_registry(&self) -> PathBuf {
        self.root.join("plugins_registry")
    }
    /// `<root>/pod-resources`, home of the pod-resources socket.
    pub fn pod_resources(&self) -> PathBuf {
        self.root.join("pod-resources")
    }
    /// `<root>/checkpoints`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// The device-plugin directory. The kubelet hard-codes `/var/lib/kubelet/device-plugins`
    /// whatever `--root-dir` says; with the default root dir we use exactly that path (device
    /// plugins dial it), with another root dir `<root>/device-plugins`, so that two agents
    /// on one host (tests, a side-by-side trial) do not take each other's socket.
    pub fn device_plugins(&self) -> PathBuf {
        let hard_coded = Path::new(DEVICE_PLUGINS_DIR);
        if Some(self.root.as_path()) == hard_coded.parent() {
            hard_coded.to_path_buf()
        } else {
            self.root.join("device-plugins")
        }
    }

    /// Creates every directory with the kubelet's mode and checks that the root directory is
    /// writable. Existing directories keep their mode (the kubelet's `MkdirAll` leaves them).
    pub fn create(&self) -> Result<()> {
        make_dir(&self.root, 0o750, "error creating root directory")?;
        check_writable(&self.root)?;
        make_dir(
            &self.pod_logs,
            0o750,
            "error creating pod logs root directory",
        )?;
        make_dir(&self.pods(), 0o750, "error creating pods directory")?;
        make_dir(&self.plugins(), 0o750, "error creating plugins directory")?;
        make_dir(
            &self.plugins_registry(),
            0o750,
            "error creating plugins registry directory",
        )?;
        make_dir(
            &self.pod_resources(),
            0o750,
            "error creating podresources directory",
        )?;
        if self.checkpoints_enabled {
            make_dir(
                &self.checkpoints(),
                0o700,
                "error creating checkpoint directory",
            )?;
        }
        make_dir(
            &self.device_plugins(),
            0o750,
            "error creating device plugins directory",
        )?;
        make_dir(
            &self.cert_dir,
            0o755,
            "error creating certificate directory",
        )?;
        Ok(())
    }
}

fn make_dir(path: &Path, mode: u32, what: &'static str) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| Error::Layout {
            what,
            path: path.to_path_buf(),
            source,
        })
}

/// A root directory we cannot write to would fail later in a confusing place (state files,
/// sockets): find out now with a probe file.
fn check_writable(root: &Path) -> Result<()> {
    let probe = root.join(format!(".node-agent-probe-{}", std::process::id()));
    let result = fs::write(&probe, b"").and_then(|()| fs::remove_file(&probe));
    result.map_err(|source| Error::Layout {
        what: "root directory is not writable",
        path: root.to_path_buf(),
        source,
    })
}

/// The mode bits of `path`.
#[cfg(test)]
fn mode_of(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {

    use super::*;

    fn layout(root: &Path) -> Layout {
        Layout {
            root: root.join("root"),
            pod_logs: root.join("logs"),
            cert_dir: root.join("root/pki"),
            checkpoints_enabled: true,
        }
    }

    #[test]
    fn creates_the_kubelet_directories_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(dir.path());
        l.create().unwrap();
        for (path, mode) in [
            (l.root.clone(), 0o750),
            (l.pods(), 0o750),
            (l.plugins(), 0o750),
            (l.plugins_registry(), 0o750),
            (l.pod_resources(), 0o750),
            (l.checkpoints(), 0o700),
            (l.device_plugins(), 0o750),
            (l.cert_dir.clone(), 0o755),
        ] {
            assert_eq!(mode_of(&path).unwrap(), mode, "{}", path.display());
        }
        // A second start leaves everything as it is.
        l.create().unwrap();
    }

    #[test]
    fn checkpoints_only_with_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout {
            checkpoints_enabled: false,
            ..layout(dir.path())
        };
        l.create().unwrap();
        assert!(!l.checkpoints().exists());
    }

    #[test]
    fn a_root_dir_below_a_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let l = Layout {
            root: dir.path().join("file/root"),
            ..layout(dir.path())
        };
        let err = l.create().unwrap_err().to_string();
        assert!(err.starts_with("error creating root directory: "), "{err}");
        assert!(err.contains("file/root"), "{err}");
    }

    #[test]
    fn relative_paths_are_made_absolute_and_the_cert_dir_follows_the_root() {
        let l = Layout::new(Path::new("kubelet"), None, Path::new("logs"), false).unwrap();
        assert!(l.root.is_absolute() && l.root.ends_with("kubelet"));
        assert_eq!(l.cert_dir, l.root.join("pki"));
        assert!(l.pod_logs.is_absolute());
        let l = Layout::new(
            Path::new("/r"),
            Some(Path::new("/etc/pki")),
            Path::new("/l"),
            true,
        )
        .unwrap();
        assert_eq!(l.cert_dir, Path::new("/etc/pki"));
        assert!(l.checkpoints_enabled);
    }

    #[test]
    fn default_root_uses_the_kubelet_device_plugin_dir() {
        let l = Layout {
            root: PathBuf::from("/var/lib/kubelet"),
            pod_logs: PathBuf::from("/var/log/pods"),
            cert_dir: PathBuf::from("/var/lib/kubelet/pki"),
            checkpoints_enabled: true,
        };
        assert_eq!(
            l.device_plugins(),
            Path::new("/var/lib/kubelet/device-plugins")
        );
    }
}
