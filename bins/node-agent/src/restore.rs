//! State restore at startup, as the kubelet's resource managers do it: the CPU and memory
//! manager checkpoints are verified against the configured policy (a corrupted file or a policy
//! change is fatal, with the kubelet's "please drain this node" advice) or written fresh, stale
//! temp files are removed, and the previous graceful shutdown is read back.

use std::path::Path;

use node_config::KubeletConfiguration;
use node_state::cpu_manager::CPU_MANAGER_STATE_FILE;
use node_state::memory_manager::MEMORY_MANAGER_STATE_FILE;
use node_state::shutdown::GRACEFUL_NODE_SHUTDOWN_STATE_FILE;
use node_state::{CpuManagerState, CpuSet, FileStore, GracefulShutdownState, MemoryManagerState};

use crate::error::AgentError;

/// What the restore found.
#[derive(Debug, Clone)]
pub struct Restored {
    /// `cpu_manager_state` existed and matched the policy (false: written fresh).
    pub cpu_state_reused: bool,
    /// `memory_manager_state` existed and matched the policy (false: written fresh).
    pub memory_state_reused: bool,
    /// The last graceful node shutdown recorded (zero when none).
    pub previous_shutdown: GracefulShutdownState,
}

/// Restores or initialises the state files under `root`.
pub fn restore(root: &Path, cfg: &KubeletConfiguration) -> Result<Restored, AgentError> {
    let store = FileStore::open(root).map_err(AgentError::State)?;
    let removed = store.cleanup_stale_temps().map_err(AgentError::State)?;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed temp files left by an interrupted state write"
        );
    }

    let cpu_policy = &cfg.cpu_manager_policy;
    let cpu_path = root.join(CPU_MANAGER_STATE_FILE);
    let cpu_state_reused = match CpuManagerState::restore(&cpu_path, cpu_policy) {
        Ok(_) => true,
        Err(e) if e.is_not_found() => {
            // The kubelet's "none" policy starts from an empty default set and checkpoints it.
            let fresh = CpuManagerState::new(cpu_policy.clone(), &CpuSet::default());
            store
                .save(CPU_MANAGER_STATE_FILE, &fresh)
                .map_err(AgentError::State)?;
            false
        }
        Err(e) => return Err(AgentError::State(e)),
    };

    let memory_policy = &cfg.memory_manager_policy;
    let memory_state_reused = match store.load::<MemoryManagerState>(MEMORY_MANAGER_STATE_FILE) {
        Ok(state) => {
            state
                .validate(memory_policy)
                .map_err(|e| restore_error("memory manager", root, MEMORY_MANAGER_STATE_FILE, e))?;
            true
        }
        Err(e) if e.is_not_found() => {
            let fresh = MemoryManagerState::new(memory_policy.clone());
            store
                .save(MEMORY_MANAGER_STATE_FILE, &fresh)
                .map_err(AgentError::State)?;
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
        GracefulShutdownState::load(&root.join(GRACEFUL_NODE_SHUTDOWN_STATE_FILE))
            .map_err(AgentError::State)?;
    Ok(Restored {
        cpu_state_reused,
        memory_state_reused,
        previous_shutdown,
    })
}

fn restore_error(
    manager: &'static str,
    root: &Path,
    file: &str,
    e: node_state::Error,
) -> AgentError {
    AgentError::State(node_state::Error::Restore {
        manager,
        path: root.join(file),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KubeletConfiguration {
        KubeletConfiguration {
            cpu_manager_policy: "none".into(),
            memory_manager_policy: "None".into(),
            ..Default::default()
        }
    }

    #[test]
    fn fresh_root_gets_checkpoints_and_a_restart_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = restore(dir.path(), &config()).unwrap();
        assert!(!first.cpu_state_reused && !first.memory_state_reused);
        let cpu = std::fs::read_to_string(dir.path().join("cpu_manager_state")).unwrap();
        assert!(cpu.contains("\"policyName\":\"none\""), "{cpu}");
        let second = restore(dir.path(), &config()).unwrap();
        assert!(second.cpu_state_reused && second.memory_state_reused);
    }

    #[test]
    fn corrupted_or_mismatched_checkpoints_are_fatal() {
        let dir = tempfile::tempdir().unwrap();
        restore(dir.path(), &config()).unwrap();
        let static_policy = KubeletConfiguration {
            cpu_manager_policy: "static".into(),
            ..config()
        };
        // The operator sees the whole chain (main prints it).
        let err = node_plugins::error_chain(&restore(dir.path(), &static_policy).unwrap_err());
        assert!(err.contains("static") && err.contains("none"), "{err}");
        assert!(err.contains("drain"), "{err}");

        let path = dir.path().join("memory_manager_state");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("None", "Static")).unwrap();
        let err = node_plugins::error_chain(&restore(dir.path(), &config()).unwrap_err());
        assert!(err.contains("corrupted"), "{err}");
    }
}
