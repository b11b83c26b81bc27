//! Test support shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod libseccomp;
pub mod reference;

use std::path::{Path, PathBuf};

use node_seccomp::{Arch, DockerContext, DockerProfile, Profile, syscalls};

/// The containers-common default profile (Debian `golang-github-containers-common`).
pub const CONTAINERS_COMMON: &str = "/usr/share/containers/seccomp.json";

/// Whether CI requires every dependency to be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The containers-common profile resolved for `arch` with Docker's default capabilities, or
/// `None` (with a skip line) when the package is not installed outside CI.
pub fn containers_common(arch: Arch) -> Option<Profile> {
    if !Path::new(CONTAINERS_COMMON).exists() {
        assert!(
            !in_ci(),
            "{CONTAINERS_COMMON} missing: install golang-github-containers-common"
        );
        eprintln!("SKIP: {CONTAINERS_COMMON} not installed");
        return None;
    }
    let docker = DockerProfile::from_file(Path::new(CONTAINERS_COMMON)).unwrap();
    let mut ctx = DockerContext::docker_defaults(arch);
    ctx.kernel = Some((6, 1));
    Some(docker.resolve(&ctx).unwrap())
}

/// The seed's §9 example profile.
pub fn seed_example() -> Profile {
    Profile::from_file(&fixture("seed-example.json")).unwrap()
}

/// Path of a test fixture.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Whether our tables and libseccomp agree on whether `name` exists on `arch`.
pub fn same_knowledge(arch: Arch, name: &str) -> bool {
    libseccomp::knows(arch, name) == libseccomp::we_know(arch, name)
}

/// A copy of `profile` keeping only the names both libseccomp 2.5.4 and our tables agree on for
/// every arch in `arches`; returns the dropped names.
pub fn common_names(profile: &Profile, arches: &[Arch]) -> (Profile, Vec<String>) {
    let mut p = profile.clone();
    let mut dropped = Vec::new();
    for rule in &mut p.syscalls {
        rule.names.retain(|n| {
            let keep = arches.iter().all(|a| same_knowledge(*a, n));
            if !keep && !dropped.contains(n) {
                dropped.push(n.clone());
            }
            keep
        });
    }
    p.syscalls.retain(|r| !r.names.is_empty());
    (p, dropped)
}

/// Deterministic xorshift generator for argument values.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Argument values worth trying for `profile`: each rule value and its neighbours, masks,
/// word boundaries.
pub fn interesting_values(profile: &Profile) -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        u64::MAX,
        0x8000_0000_0000_0000,
    ];
    for r in &profile.syscalls {
        for a in &r.args {
            for x in [a.value, a.value_two.unwrap_or(0)] {
                v.extend([
                    x,
                    x.wrapping_sub(1),
                    x.wrapping_add(1),
                    x | 0xffff_ffff_0000_0000,
                    x & 0xffff_ffff,
                ]);
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// `count` argument vectors drawn from `values` plus random words.
pub fn arg_vectors(values: &[u64], count: usize, rng: &mut Rng) -> Vec<[u64; 6]> {
    let mut out = vec![[0; 6]];
    for _ in 0..count {
        let mut args = [0u64; 6];
        for a in &mut args {
            let r = rng.next();
            *a = if r.is_multiple_of(4) {
                rng.next()
            } else {
                values[(r >> 8) as usize % values.len()]
            };
        }
        out.push(args);
    }
    out
}

/// Syscall numbers to sweep on `arch`: the table range plus numbers just past it.
pub fn sweep(arch: Arch) -> Vec<u32> {
    let r = syscalls::sweep_range(arch);
    let mut v: Vec<u32> = r.clone().collect();
    v.extend((1..=20).map(|d| r.end() + d));
    v.extend([0x3fff_ffff, 0x7fff_ffff, 0xffff_ffff]);
    if arch != Arch::X32 {
        v.extend([0x4000_0000, 0x4000_0001]);
    }
    v
}
