//! Every state file kind, detected from file names, decoded into one [`StateDocument`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use crate::allocation::{ACTUATED_PODS_STATE_FILE, ALLOCATED_PODS_STATE_FILE, AllocationState};
use crate::cpu_manager::{CPU_MANAGER_STATE_FILE, CpuManagerState};
use crate::device_manager::{DEVICE_MANAGER_CHECKPOINT_FILE, DeviceManagerState};
use crate::dra::{DRA_MANAGER_STATE_FILE, DraState};
use crate::error::{Error, Result};
use crate::image_records::{
    ImagePullIntent, ImagePulledRecord, PULLED_DIR, PULLING_DIR, is_record_file_name,
};
use crate::memory_manager::{MEMORY_MANAGER_STATE_FILE, MemoryManagerState};
use crate::shutdown::{GRACEFUL_NODE_SHUTDOWN_STATE_FILE, GracefulShutdownState};
use crate::store::StateFile;

/// The kinds of state file the kubelet keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateKind {
    /// `cpu_manager_state`.
    CpuManager,
    /// `memory_manager_state`.
    MemoryManager,
    /// `dra_manager_state`.
    DraManager,
    /// `device-plugins/kubelet_internal_checkpoint`.
    DeviceManager,
    /// `allocated_pods_state`.
    AllocatedPods,
    /// `actuated_pods_state`.
    ActuatedPods,
    /// `graceful_node_shutdown_state`.
    GracefulShutdown,
    /// `image_manager/pulling/sha256-*`.
    ImagePullIntent,
    /// `image_manager/pulled/sha256-*`.
    ImagePulledRecord,
}

impl StateKind {
    /// Every kind.
    pub const ALL: [StateKind; 9] = [
        StateKind::CpuManager,
        StateKind::MemoryManager,
        StateKind::DraManager,
        StateKind::DeviceManager,
        StateKind::AllocatedPods,
        StateKind::ActuatedPods,
        StateKind::GracefulShutdown,
        StateKind::ImagePullIntent,
        StateKind::ImagePulledRecord,
    ];

    /// The `--kind` spelling.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::CpuManager => "cpu-manager",
            StateKind::MemoryManager => "memory-manager",
            StateKind::DraManager => "dra-manager",
            StateKind::DeviceManager => "device-manager",
            StateKind::AllocatedPods => "allocated-pods",
            StateKind::ActuatedPods => "actuated-pods",
            StateKind::GracefulShutdown => "graceful-shutdown",
            StateKind::ImagePullIntent => "image-pull-intent",
            StateKind::ImagePulledRecord => "image-pulled-record",
        }
    }

    /// The file name the kubelet uses (a pattern for image records).
    pub fn file_name(self) -> &'static str {
        match self {
            StateKind::CpuManager => CPU_MANAGER_STATE_FILE,
            StateKind::MemoryManager => MEMORY_MANAGER_STATE_FILE,
            StateKind::DraManager => DRA_MANAGER_STATE_FILE,
            StateKind::DeviceManager => DEVICE_MANAGER_CHECKPOINT_FILE,
            StateKind::AllocatedPods => ALLOCATED_PODS_STATE_FILE,
            StateKind::ActuatedPods => ACTUATED_PODS_STATE_FILE,
            StateKind::GracefulShutdown => GRACEFUL_NODE_SHUTDOWN_STATE_FILE,
            StateKind::ImagePullIntent => "image_manager/pulling/sha256-*",
            StateKind::ImagePulledRecord => "image_manager/pulled/sha256-*",
        }
    }

    fn known() -> String {
        Self::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Detects the kind from a path: the kubelet's file names, and `sha256-*` files inside
    /// `pulling/` or `pulled/` directories.
    pub fn detect(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(k) = Self::ALL.into_iter().find(|k| k.file_name() == name) {
            return Ok(k);
        }
        if is_record_file_name(name) {
            let parent = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if parent == PULLING_DIR {
                return Ok(StateKind::ImagePullIntent);
            }
            if parent == PULLED_DIR {
                return Ok(StateKind::ImagePulledRecord);
            }
        }
        Err(Error::UnknownKind {
            path: path.to_path_buf(),
            known: Self::known(),
        })
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StateKind {
    type Err = Error;

    /// Accepts the `--kind` spelling or the kubelet's file name.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s || k.file_name() == s)
            .ok_or_else(|| Error::UnknownKindName {
                name: s.to_owned(),
                known: Self::known(),
            })
    }
}

/// A decoded state file of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "content", rename_all = "kebab-case")]
pub enum StateDocument {
    /// `cpu_manager_state`.
    CpuManager(CpuManagerState),
    /// `memory_manager_state`.
    MemoryManager(MemoryManagerState),
    /// `dra_manager_state`.
    DraManager(DraState),
    /// `kubelet_internal_checkpoint`.
    DeviceManager(DeviceManagerState),
    /// `allocated_pods_state`.
    AllocatedPods(AllocationState),
    /// `actuated_pods_state`.
    ActuatedPods(AllocationState),
    /// `graceful_node_shutdown_state`.
    GracefulShutdown(GracefulShutdownState),
    /// A pull intent.
    ImagePullIntent(ImagePullIntent),
    /// A pulled record.
    ImagePulledRecord(ImagePulledRecord),
}

impl StateDocument {
    /// Decodes and verifies `bytes` as `kind`, accepting exactly what the kubelet accepts.
    pub fn decode(kind: StateKind, bytes: &[u8], path: &Path) -> Result<Self> {
        Ok(match kind {
            StateKind::CpuManager => {
                StateDocument::CpuManager(CpuManagerState::decode(bytes, path)?)
            }
            StateKind::MemoryManager => {
                StateDocument::MemoryManager(MemoryManagerState::decode(bytes, path)?)
            }
            StateKind::DraManager => StateDocument::DraManager(DraState::decode(bytes, path)?),
            StateKind::DeviceManager => {
                StateDocument::DeviceManager(DeviceManagerState::decode(bytes, path)?)
            }
            StateKind::AllocatedPods => {
                StateDocument::AllocatedPods(AllocationState::decode(bytes, path)?)
            }
            StateKind::ActuatedPods => {
                StateDocument::ActuatedPods(AllocationState::decode(bytes, path)?)
            }
            StateKind::GracefulShutdown => {
                StateDocument::GracefulShutdown(GracefulShutdownState::decode(bytes, path)?)
            }
            StateKind::ImagePullIntent => {
                StateDocument::ImagePullIntent(ImagePullIntent::decode(bytes, path)?)
            }
            StateKind::ImagePulledRecord => {
                StateDocument::ImagePulledRecord(ImagePulledRecord::decode(bytes, path)?)
            }
        })
    }

    /// Reads and decodes a file, detecting the kind from its name when `kind` is `None`.
    pub fn read(path: &Path, kind: Option<StateKind>) -> Result<Self> {
        let kind = match kind {
            Some(k) => k,
            None => StateKind::detect(path)?,
        };
        let bytes = read_file(path)?;
        Self::decode(kind, &bytes, path)
    }

    /// The kind.
    pub fn kind(&self) -> StateKind {
        match self {
            StateDocument::CpuManager(_) => StateKind::CpuManager,
            StateDocument::MemoryManager(_) => StateKind::MemoryManager,
            StateDocument::DraManager(_) => StateKind::DraManager,
            StateDocument::DeviceManager(_) => StateKind::DeviceManager,
            StateDocument::AllocatedPods(_) => StateKind::AllocatedPods,
            StateDocument::ActuatedPods(_) => StateKind::ActuatedPods,
            StateDocument::GracefulShutdown(_) => StateKind::GracefulShutdown,
            StateDocument::ImagePullIntent(_) => StateKind::ImagePullIntent,
            StateDocument::ImagePulledRecord(_) => StateKind::ImagePulledRecord,
        }
    }

    /// The checksum stored in the file, when the kind has one.
    pub fn stored_checksum(&self) -> Option<u64> {
        match self {
            StateDocument::CpuManager(s) => Some(s.checksum),
            StateDocument::MemoryManager(s) => Some(s.checksum),
            StateDocument::DraManager(s) => Some(u64::from(s.checksum)),
            StateDocument::DeviceManager(s) => Some(s.checksum),
            StateDocument::AllocatedPods(s) | StateDocument::ActuatedPods(s) => Some(s.checksum),
            _ => None,
        }
    }

    /// Encodes the document again (fresh checksum).
    pub fn encode(&self) -> Result<Vec<u8>> {
        match self {
            StateDocument::CpuManager(s) => s.encode(),
            StateDocument::MemoryManager(s) => s.encode(),
            StateDocument::DraManager(s) => s.encode(),
            StateDocument::DeviceManager(s) => s.encode(),
            StateDocument::AllocatedPods(s) | StateDocument::ActuatedPods(s) => s.encode(),
            StateDocument::GracefulShutdown(s) => s.encode(),
            StateDocument::ImagePullIntent(s) => s.encode(),
            StateDocument::ImagePulledRecord(s) => s.encode(),
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::store::read_state_file(path)
}

/// The checksum this crate would store for the data in `bytes`, without requiring the stored
/// checksum to be right (so a corrupted file's correct value can be shown). The format is
/// chosen from the JSON shape; the data itself must parse.
pub fn checksum_for(kind: StateKind, bytes: &[u8], path: &Path) -> Result<u64> {
    match kind {
        // A file that verifies keeps the format it verified as (a V1 file without entries
        // looks like V2); a corrupted one is parsed by shape.
        StateKind::CpuManager => match CpuManagerState::decode(bytes, path) {
            Ok(s) => Ok(s.compute_checksum()),
            Err(Error::Corrupted { .. }) => {
                Ok(CpuManagerState::parse_unverified(bytes, path)?.compute_checksum())
            }
            Err(e) => Err(e),
        },
        StateKind::MemoryManager => match MemoryManagerState::decode(bytes, path) {
            Ok(s) => Ok(s.compute_checksum()),
            Err(Error::Corrupted { .. }) => {
                Ok(MemoryManagerState::parse_unverified(bytes, path)?.compute_checksum())
            }
            Err(e) => Err(e),
        },
        StateKind::DeviceManager => {
            Ok(DeviceManagerState::parse_unverified(bytes, path)?.compute_checksum())
        }
        StateKind::DraManager => {
            let (data, _) = DraState::parse_outer(bytes, path)?;
            DraState::parse_data(&data, 0, path)?;
            Ok(u64::from(crate::checksum::crc32_ieee(data.as_bytes())))
        }
        StateKind::AllocatedPods | StateKind::ActuatedPods => {
            let (version, data, _) = AllocationState::parse_outer(bytes, path)?;
            AllocationState::parse_data(version, &data, 0, path)?;
            Ok(crate::checksum::string_checksum(&data))
        }
        StateKind::GracefulShutdown | StateKind::ImagePullIntent | StateKind::ImagePulledRecord => {
            Err(Error::NoChecksum {
                kind: kind.file_name(),
            })
        }
    }
}

/// Reads a file and computes [`checksum_for`] it.
pub fn checksum_of_file(path: &Path, kind: Option<StateKind>) -> Result<(StateKind, u64)> {
    let kind = match kind {
        Some(k) => k,
        None => StateKind::detect(path)?,
    };
    let bytes = read_file(path)?;
    Ok((kind, checksum_for(kind, &bytes, path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(
            StateKind::detect(Path::new("/var/lib/kubelet/cpu_manager_state")).unwrap(),
            StateKind::CpuManager
        );
        assert_eq!(
            StateKind::detect(Path::new(
                "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
            ))
            .unwrap(),
            StateKind::DeviceManager
        );
        assert_eq!(
            StateKind::detect(Path::new("/r/image_manager/pulled/sha256-abc")).unwrap(),
            StateKind::ImagePulledRecord
        );
        assert_eq!(
            StateKind::detect(Path::new("pulling/sha256-abc")).unwrap(),
            StateKind::ImagePullIntent
        );
        assert!(StateKind::detect(Path::new("pulling/sha256-abc.tmp")).is_err());
        assert!(StateKind::detect(Path::new("/etc/passwd")).is_err());
        for k in StateKind::ALL {
            assert_eq!(k.name().parse::<StateKind>().unwrap(), k);
        }
        assert_eq!(
            "cpu_manager_state".parse::<StateKind>().unwrap(),
            StateKind::CpuManager
        );
    }

    #[test]
    fn checksum_of_corrupted_file_is_the_right_value() {
        let bad = br#"{"policyName":"none","defaultCPUSet":"4-6","entries":{},"checksum":1}"#;
        let p = Path::new("cpu_manager_state");
        assert!(
            StateDocument::decode(StateKind::CpuManager, bad, p)
                .unwrap_err()
                .is_corrupted()
        );
        assert_eq!(
            checksum_for(StateKind::CpuManager, bad, p).unwrap(),
            354_655_845
        );
    }
}
