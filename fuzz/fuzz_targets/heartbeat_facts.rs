//! node-heartbeat: node facts read from a fixture root (`/proc/cpuinfo`, `/proc/meminfo`,
//! hugepage pools under `/sys/kernel/mm/hugepages/hugepages-<size>kB`, machine and boot IDs,
//! os-release, `pid_max`, `/proc/loadavg`, the route tables), then capacity and allocatable
//! with `systemReserved`, `kubeReserved` and `evictionHard` from the input, and the eviction
//! signals.
//!
//! Input: parts separated by `%%%%` lines: cpuinfo, meminfo, hugepage pools (`<size> <pages>`
//! per line: the size is the directory name's number), os-release, pid_max, loadavg, route,
//! ipv6_route, reservations (`system|kube|eviction <key> <value>` per line).
//! Invariant: allocatable is never negative.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use node_fuzz::{file_name_ok, fresh_dir, part, parts, text, write};
use node_heartbeat::{
    CapacityConfig, EvictionThresholds, MachineFacts, PidStats, Reservations, allocatable,
    capacity, default_route_interface_v4, default_route_interface_v6, observe_root, thresholds_met,
    to_quantities,
};

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("heartbeat");
    let p = parts(data, 9);
    write(&dir, "proc/cpuinfo", part(&p, 0));
    write(&dir, "proc/meminfo", part(&p, 1));
    for line in text(part(&p, 2)).lines().take(8) {
        let (size, pages) = line.split_once(' ').unwrap_or((line, "1"));
        let name = format!("hugepages-{size}kB");
        if file_name_ok(&name) {
            write(
                &dir,
                &format!("sys/kernel/mm/hugepages/{name}/nr_hugepages"),
                pages.as_bytes(),
            );
        }
    }
    write(&dir, "etc/os-release", part(&p, 3));
    write(
        &dir,
        "etc/machine-id",
        b"0123456789abcdef0123456789abcdef\n",
    );
    write(
        &dir,
        "proc/sys/kernel/random/boot_id",
        b"b5b0f2a4-2e3c-4d2f-9a59-7d0f1f5c8c11\n",
    );
    write(&dir, "proc/sys/kernel/osrelease", b"6.18.0-fuzz\n");
    write(&dir, "proc/sys/kernel/pid_max", part(&p, 4));
    write(&dir, "proc/loadavg", part(&p, 5));
    write(&dir, "proc/net/route", part(&p, 6));
    write(&dir, "proc/net/ipv6_route", part(&p, 7));
    let _ = default_route_interface_v4(&dir);
    let _ = default_route_interface_v6(&dir);
    let _ = PidStats::read(&dir);
    if let Ok(obs) = observe_root(&dir, &dir) {
        let hard = BTreeMap::from([
            ("memory.available".to_owned(), "100Mi".to_owned()),
            ("pid.available".to_owned(), "10%".to_owned()),
        ]);
        if let Ok(th) = EvictionThresholds::parse(&hard) {
            let _ = thresholds_met(&th, &obs);
        }
    }
    let Ok(facts) = MachineFacts::read(&dir) else {
        return;
    };
    let mut system = BTreeMap::new();
    let mut kube = BTreeMap::new();
    let mut eviction = BTreeMap::new();
    for line in text(part(&p, 8)).lines().take(16) {
        let mut f = line.splitn(3, ' ');
        let (Some(map), Some(key), Some(value)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let target = match map {
            "system" => &mut system,
            "kube" => &mut kube,
            _ => &mut eviction,
        };
        target.insert(key.to_owned(), value.to_owned());
    }
    let Ok(eviction_hard) = EvictionThresholds::parse(&eviction) else {
        return;
    };
    let cfg = CapacityConfig::default()
        .with_ephemeral_storage_bytes(100 << 30)
        .with_pods_per_core(10);
    let cap = capacity(&facts, &cfg);
    let _ = to_quantities(&cap);
    let r = Reservations::default()
        .with_system(system)
        .with_kube(kube)
        .with_eviction_hard(eviction_hard);
    if let Ok(alloc) = allocatable(&cap, &r) {
        for (k, v) in &alloc {
            assert!(*v >= 0, "allocatable {k} = {v}");
        }
        let _ = to_quantities(&alloc);
    }
});
