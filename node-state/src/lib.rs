//! Kubelet state files, read, verified and written the way the kubelet does.
//!
//! The kubelet keeps resource-manager checkpoints, the device-manager checkpoint, in-place
//! resize records, the graceful-shutdown record and image pull records under its root
//! directory, and a lock file next to them. This crate reads each of them, verifies them with
//! the kubelet's own checksums and writes them back atomically, so an agent can take a node over
//! from a kubelet (and back) and `nodectl` can diagnose real nodes.
//!
//! * [`store::FileStore`]: the checkpoint file store (key validation, 0600 files, temp file +
//!   fsync + rename + directory fsync, stale temp cleanup, dot-files never listed);
//! * [`spew`] and [`checksum`]: a model of Go values rendered exactly like the kubelet's hasher
//!   (go-spew `%#v`) plus FNV-1a 32 and CRC-32;
//! * one module per file: [`cpu_manager`], [`memory_manager`], [`dra`], [`device_manager`],
//!   [`allocation`], [`shutdown`], [`image_records`]; [`kind`] detects a file's kind from its
//!   name and decodes any of them;
//! * [`lock`]: `--lock-file` (`flock`) and `--exit-on-lock-contention` (inotify).
//!
//! ```
//! use node_state::cpu_manager::{CpuManagerState, CPU_MANAGER_STATE_FILE};
//! use node_state::cpuset::CpuSet;
//! use node_state::store::FileStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let store = FileStore::open(root.path())?;
//!
//! let mut state = CpuManagerState::new("static", &CpuSet::parse("0-1")?);
//! state.set_container_cpus("pod-uid", "app", &CpuSet::parse("2-3")?)?;
//! store.save(CPU_MANAGER_STATE_FILE, &state)?;
//!
//! // The file verifies with the kubelet's checksum and restores under the same policy.
//! let (restored, cpus) = CpuManagerState::restore(&store.dir().join(CPU_MANAGER_STATE_FILE), "static")?;
//! assert_eq!(restored.container_cpus("pod-uid", "app"), Some("2-3"));
//! assert_eq!(cpus.default_cpu_set.to_string(), "0-1");
//!
//! // A kubelet-written file from a real node verifies too.
//! let real = br#"{"policyName":"none","defaultCpuSet":"","checksum":1353318690}"#;
//! std::fs::write(store.dir().join(CPU_MANAGER_STATE_FILE), real)?;
//! let state: CpuManagerState = store.load(CPU_MANAGER_STATE_FILE)?;
//! assert_eq!(state.policy_name, "none");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::collections::BTreeMap;

pub mod allocation;
pub mod checksum;
pub mod cpu_manager;
pub mod cpuset;
pub mod device_manager;
pub mod dra;
mod error;
mod gojson;
pub mod gotime;
pub mod image_records;
pub mod kind;
pub mod layout;
pub mod lock;
pub mod memory_manager;
pub mod restore;
pub mod shutdown;
pub mod spew;
pub mod store;

pub use allocation::AllocationState;
pub use cpu_manager::{CpuCheckpointFormat, CpuManagerState};
pub use cpuset::CpuSet;
pub use device_manager::DeviceManagerState;
pub use dra::DraState;
pub use error::{Error, Result};
pub use image_records::{ImagePullIntent, ImagePulledRecord, PullRecords};
pub use kind::{StateDocument, StateKind, checksum_for, checksum_of_file};
pub use lock::{
    ContentionEvent, ContentionWatch, LockFile, check_lock_flags, watch_for_contention,
};
pub use memory_manager::MemoryManagerState;
pub use shutdown::GracefulShutdownState;
pub use store::{FileStore, StateFile};

/// A Go map: `None` is Go's nil map, which the kubelet's hash tells apart from an empty one.
pub type GoMap<K, V> = Option<BTreeMap<K, V>>;
/// A Go slice: `None` is Go's nil slice.
pub type GoSlice<T> = Option<Vec<T>>;
