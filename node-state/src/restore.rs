//! State restore at startup, as the kubelet's resource managers do it: the CPU and memory
//! manager checkpoints are verified against the configured policy (a corrupted file or a policy
//! change is fatal, with the kubelet's "please drain this node" advice) or written fresh, stale
//! temp files are removed, and the previous graceful shutdown is read back.
//!
//! ```
//! let root = tempfile::tempdir()?;
//! let first = node_state::restore::restore(root.path(), "none", "None")?;
//! assert!(!first.cpu_state_reused);
//! let again = node_state::restore::restore(root.path(), "none", "None")?;
//! assert!(again.cpu_state_reused && again.memory_state_reused);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use crate::cpu_manager::CPU_MANAGER_STATE_FILE;
use crate::error::{Error, Result};
use crate::memory_manager::MEMORY_MANAGER_STATE_FILE;
use crate::shutdown::GRACEFUL_NODE_SHUTDOWN_STATE_FILE;
use crate::{CpuManagerState, CpuSet, FileStore, GracefulShutdownState, MemoryManagerState};

/// What the restore found.
#[derive(Debug, Clone)]
pub struct Restored {
    /// `cpu_manager_state` existed and matched the policy (false: written fresh).
    pub cpu_state_reused: bool,
    /// `memory_manager_state` existed and matched the policy (false: written fresh).
    pub memory_state_reused: bool,
    /// The last graceful node shutdown recorded (zero when none).
    pub previous_shutdown: GracefulShutdownState,
    /// Temp files of interrupted state writes that were removed.
    pub removed_temps: usize,
}

/// Restores or initialises the state files under `root` (`--root-dir`) for the configured
/// `cpuManagerPolicy` and `memoryManagerPolicy`.
///
/// # Errors
/// The store's errors; [`Error::Restore`] for a corrupted memory manager checkpoint or one
/// written under another policy (the CPU manager's own restore errors say the same).
pub fn restore(root: &Path, cpu_policy: &str, memory_policy: &str) -> Result<Restored> {
    let store = FileStore::open(root)?;
    let removed_temps = store.cleanup_stale_temps()?;

    let cpu_path = root.join(CPU_MANAGER_STATE_FILE);
    let cpu_state_reused = match CpuManagerState::restore(&cpu_path, cpu_policy) {
        Ok(_) => true,
        Err(e) if e.is_not_found() => {
            // The kubelet's "none" policy starts from an empty default set and checkpoints it.
            let fresh = CpuManagerState::new(cpu_policy.to_owned(), &CpuSet::default());
            store.save(CPU_MANAGER_STATE_FILE, &fresh)?;
            false
        }
        Err(e) => return Err(e),
    };

    let memory_state_reused = match store.load::<MemoryManagerState>(MEMORY_MANAGER_STATE_FILE) {
        Ok(state) => {
            state
                .validate(memory_policy)
                .map_err(|e| restore_error("memory manager", root, MEMORY_MANAGER_STATE_FILE, e))?;
            true
        }
        Err(e) if e.is_not_found() => {
            let fresh = MemoryManagerState::new(memory_policy.to_owned());
            store.save(MEMORY_MANAGER_STATE_FILE, &fresh)?;
            false
        }
        Err(e) => {
            return Err(restore_error(
                "memory manager",
                root,
                MEMORY_MANAGER_STATE_FILE,
                e,
            ));
        }
    };

    let previous_shutdown =
        GracefulShutdownState::load(&root.join(GRACEFUL_NODE_SHUTDOWN_STATE_FILE))?;
    Ok(Restored {
        cpu_state_reused,
        memory_state_reused,
        previous_shutdown,
        removed_temps,
    })
}

fn restore_error(manager: &'static str, root: &Path, file: &str, e: Error) -> Error {
    Error::Restore {
        manager,
        path: root.join(file),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use node_util::error_chain as chain;

    #[test]
    fn fresh_root_gets_checkpoints_and_a_restart_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = restore(dir.path(), "none", "None").unwrap();
        assert!(!first.cpu_state_reused && !first.memory_state_reused);
        let cpu = std::fs::read_to_string(dir.path().join("cpu_manager_state")).unwrap();
        assert!(cpu.contains("\"policyName\":\"none\""), "{cpu}");
        let second = restore(dir.path(), "none", "None").unwrap();
        assert!(second.cpu_state_reused && second.memory_state_reused);
    }

    #[test]
    fn corrupted_or_mismatched_checkpoints_are_fatal() {
        let dir = tempfile::tempdir().unwrap();
        restore(dir.path(), "none", "None").unwrap();
        // The operator sees the whole chain (an agent's main prints it).
        let err = chain(&restore(dir.path(), "static", "None").unwrap_err());
        assert!(err.contains("static") && err.contains("none"), "{err}");
        assert!(err.contains("drain"), "{err}");

        let path = dir.path().join("memory_manager_state");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("None", "Static")).unwrap();
        let err = chain(&restore(dir.path(), "none", "None").unwrap_err());
        assert!(err.contains("corrupted"), "{err}");
    }
}
