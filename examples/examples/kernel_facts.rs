//! Probe a node (the live system, or a tree laid out like `/`), then answer three questions
//! the way the kubelet would: which kernel features are really there (a probe beats the version
//! number), would a pod's sysctls be admitted, and how much swap would each container get under
//! LimitedSwap.
//!
//! Run: `cargo run -p examples --example kernel_facts [ROOT]` (default `/`), e.g. with one of
//! the fixture trees: `cargo run -p examples --example kernel_facts node-kernel/tests/fixtures/rhel8-psi-backport`.

#![allow(clippy::print_stdout)] // an example prints its findings

use node_kernel::{
    CgroupVersion, ContainerResources, EvalOptions, HostRoot, PodSwapInput, ProbeOptions,
    SwapBehavior, SwapPolicy, SysctlPolicy, evaluate_all, probe,
};

fn main() -> anyhow::Result<()> {
    let root = std::env::args()
        .nth(1)
        .map_or_else(HostRoot::live, HostRoot::new);
    let facts = probe(&root, ProbeOptions::default());

    println!(
        "root {} ({})",
        root.path().display(),
        if root.is_live() {
            "live"
        } else {
            "fixture tree"
        }
    );
    println!(
        "kernel {} -> version {}",
        facts.kernel.release.as_deref().unwrap_or("?"),
        facts
            .kernel
            .version
            .as_ref()
            .map_or("unparsable".to_string(), ToString::to_string)
    );
    let cgroup = facts
        .cgroup
        .version
        .map_or("unknown".to_string(), |v| format!("v{}", v.number()));
    println!(
        "cgroup {cgroup}, controllers {:?}",
        facts.cgroup.controllers
    );
    println!(
        "PSI: {} by {:?}: {}",
        facts.psi.verdict.state(),
        facts.psi.verdict.decided_by,
        facts.psi.verdict.reason
    );

    println!("\nfeatures:");
    for f in evaluate_all(&facts, EvalOptions::from_env()) {
        println!(
            "  {:40} {:11} {:?}: {}",
            f.name,
            f.verdict.state(),
            f.verdict.decided_by,
            f.verdict.reason
        );
    }

    // Sysctls: the safe set for this kernel plus one operator pattern.
    let policy = SysctlPolicy::new(facts.kernel.version.as_ref(), &["net.core.*".to_string()])?;
    println!("\nsysctls (allowedUnsafeSysctls: [net.core.*]):");
    for (sysctl, host_network) in [
        ("net.ipv4.tcp_rmem", false),
        ("net.core.somaxconn", false),
        ("net.core.somaxconn", true),
        ("vm.swappiness", false),
    ] {
        let verdict = match policy.admit(&[sysctl], host_network, false) {
            Ok(()) => "admitted".to_string(),
            Err(r) => format!("{}: {}", r.reason, r.message),
        };
        println!(
            "  {sysctl:24} hostNetwork={host_network:5} {:?} -> {verdict}",
            policy.classify(sysctl)
        );
    }

    // LimitedSwap on this node (or on an 16 GiB / 8 GiB example node when this one has no swap
    // or is not on cgroup v2, since LimitedSwap is refused there).
    const GI: u64 = 1 << 30;
    let (mem, swap, cgroup) = match (&facts.swap, facts.cgroup.version) {
        (Ok(s), Some(CgroupVersion::V2)) if s.enabled => (
            s.mem_total_bytes.unwrap_or(0),
            s.total_bytes,
            CgroupVersion::V2,
        ),
        _ => {
            println!(
                "\nthis node cannot use LimitedSwap; showing an example node with 16 GiB RAM and 8 GiB swap"
            );
            (16 * GI, 8 * GI, CgroupVersion::V2)
        }
    };
    let swap_policy = SwapPolicy::new(SwapBehavior::LimitedSwap, cgroup, true, mem, swap)?;
    let pod = PodSwapInput {
        containers: vec![
            ContainerResources {
                memory_request: Some(2 * GI),
                memory_limit: Some(4 * GI),
                ..Default::default()
            },
            ContainerResources {
                memory_request: Some(GI),
                memory_limit: Some(GI),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    println!("\nBurstable pod, QoS {:?}:", pod.qos());
    for i in 0..pod.containers.len() {
        if let Some(d) = swap_policy.container(&pod, i) {
            println!("  container {i}: {:?} ({})", d.setting, d.reason);
        }
    }
    println!(
        "  pod swap limit: {} bytes",
        swap_policy.pod_limit_bytes(&pod)
    );
    Ok(())
}
