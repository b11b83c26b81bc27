//! Writes a CPU manager state the way the kubelet does and restores it.
//!
//! `cargo run -p examples --example cpu_manager_state [ROOT_DIR]`
//!
//! With no argument a temporary directory stands in for `/var/lib/kubelet`. The file written is
//! byte-compatible with the kubelet's `cpu_manager_state` (same JSON, same FNV-1a checksum over
//! the Go rendering), so `nodectl state verify ROOT_DIR/cpu_manager_state` and a real kubelet
//! both accept it.
#![allow(clippy::print_stdout)] // an example prints what it did

use std::path::PathBuf;

use anyhow::Context;
use node_state::cpu_manager::{CPU_MANAGER_STATE_FILE, CpuManagerState};
use node_state::cpuset::CpuSet;
use node_state::store::FileStore;

fn main() -> anyhow::Result<()> {
    let tmp;
    let root: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary root dir")?;
            tmp.path().to_path_buf()
        }
    };
    let store = FileStore::open(&root)?;

    // A static-policy node with 8 CPUs: 0-1 reserved for the system, one guaranteed pod with
    // two containers holding exclusive CPUs, the rest shared.
    let mut state = CpuManagerState::new("static", &CpuSet::parse("0-1,6-7")?);
    let pod = "6c7a4f5e-2b1d-4e8a-9f3c-0d1e2f3a4b5c";
    state.set_container_cpus(pod, "app", &CpuSet::parse("2-3")?)?;
    state.set_container_cpus(pod, "sidecar", &CpuSet::parse("4")?)?;
    store.save(CPU_MANAGER_STATE_FILE, &state)?;

    let path = root.join(CPU_MANAGER_STATE_FILE);
    println!("wrote {}:", path.display());
    println!("{}", std::fs::read_to_string(&path)?);

    // Restore as the kubelet does at startup: verify the checksum, check the policy, parse
    // every cpuset. A different configured policy is refused with the kubelet's advice.
    let (restored, cpus) = CpuManagerState::restore(&path, "static")?;
    println!(
        "restored {:?} state, checksum {}: shared pool {}, app={}, sidecar={}",
        restored.format,
        restored.checksum,
        cpus.default_cpu_set,
        cpus.assignments[pod]["app"],
        cpus.assignments[pod]["sidecar"],
    );
    match CpuManagerState::restore(&path, "none") {
        Ok(_) => anyhow::bail!("a policy change must not restore"),
        Err(e) => println!("with policy \"none\": {:#}", anyhow::Error::from(e)),
    }
    Ok(())
}
