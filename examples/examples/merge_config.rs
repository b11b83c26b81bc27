//! Merge a kubeadm-style base config with a drop-in directory and a command-line flag, the way
//! the kubelet does, and show where each effective value came from.
//!
//! Run: `cargo run -p examples --example merge_config [BASE] [DROPIN_DIR]`
//! (defaults: the sample files under `examples/configs/`).

#![allow(clippy::print_stdout)] // an example prints its findings

use std::path::PathBuf;

use node_config::{FlagOverrides, Loader};

fn main() -> anyhow::Result<()> {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut args = std::env::args_os().skip(1);
    let base = args
        .next()
        .map_or_else(|| samples.join("kubelet.yaml"), PathBuf::from);
    let dropins = args
        .next()
        .map_or_else(|| samples.join("kubelet.conf.d"), PathBuf::from);

    // Flags win over drop-ins, which win over the file, which wins over defaults.
    let flags = FlagOverrides::parse_args(["--node-status-update-frequency=20s"])?;
    let loaded = Loader::new()
        .config_file(&base)
        .config_dir(&dropins)
        .flags(flags)
        .load()?;

    println!("applied, in order:");
    for source in &loaded.sources {
        println!("  {}", source.display());
    }
    for warning in &loaded.warnings {
        println!("warning: {warning}");
    }
    let c = &loaded.config;
    println!(
        "clusterDNS                 {:?}   (20-dns.conf replaced the base list)",
        c.cluster_dns
    );
    println!("maxPods                    {}   (20-dns.conf)", c.max_pods);
    println!(
        "systemReserved             {:?}   (10-reserved.conf)",
        c.system_reserved
    );
    println!(
        "cgroupDriver               {}   (base file)",
        c.cgroup_driver
    );
    println!(
        "nodeStatusUpdateFrequency  {}   (flag)",
        c.node_status_update_frequency
    );
    println!(
        "nodeStatusReportFrequency  {}   (defaulted before flags apply, as in the kubelet)",
        c.node_status_report_frequency
    );
    println!(
        "featureGates               {:?}   (merged per key)",
        c.feature_gates
    );
    println!(
        "nodeLeaseDurationSeconds   {}   (v1beta1 default)",
        c.node_lease_duration_seconds
    );
    Ok(())
}
