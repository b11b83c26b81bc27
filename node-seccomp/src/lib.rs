//! # node-seccomp
//!
//! Seccomp for a kubelet-compatible node agent, in pure Rust:
//!
//! * [`Profile`]: the OCI `LinuxSeccomp` model with a strict parser whose errors name the JSON
//!   path; [`DockerProfile`] resolves Docker/containers-common files (`archMap`,
//!   `includes`/`excludes`) for an explicit [`DockerContext`] instead of silently dropping
//!   their conditions.
//! * [`validate`]: what runc and crun refuse, with their wording; unknown syscalls are listed.
//! * [`SeccompResolver`]: the kubelet's resolution (container > pod > `seccompDefault` >
//!   Unconfined; sandbox RuntimeDefault), the CRI [`SecurityProfile`], and Localhost profiles
//!   confined to `<root-dir>/seccomp`: [`SeccompResolver::open_localhost`] opens one without
//!   following a final symlink, reads at most [`MAX_PROFILE_BYTES`] of a regular file,
//!   validates it and returns the resolved path the runtime must be handed.
//! * [`compile`]: a BPF compiler for x86_64 (with the x86 and x32 ABIs) and aarch64, with
//!   syscall tables generated from the kernel headers. It refuses what [`validate`] refuses;
//!   [`CompileOptions::for_profile`] always includes the node's native architecture, as
//!   libseccomp does. [`interp::run`] runs a filter and counts executed instructions;
//!   [`loader::load`] installs one. [`SyscallMix`] reads a workload's syscall counts (an
//!   `strace -c` table or JSON `{name: count}`); [`CompileOptions::with_weights`] shapes the
//!   search tree for it and [`weighted_mean`] measures a filter under it.
//!
//! ```
//! use node_seccomp::{Action, Arch, CompileOptions, Profile, compile, interp, validate};
//!
//! let profile = Profile::from_json(r#"{
//!     "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
//!     "syscalls": [
//!         {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
//!         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
//!          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
//!     ]}"#)?;
//! let report = validate(&profile)?;
//! assert!(report.unknown_syscalls.is_empty());
//!
//! let program = compile(&profile, &CompileOptions::arches(&[Arch::X86_64]))?;
//! let run = |nr, arg0| interp::run(&program, &node_seccomp::seccomp_data(Arch::X86_64, nr, [arg0, 0, 0, 0, 0, 0])?);
//! assert_eq!(run(0, 0)?.action, Action::Allow); // read
//! assert_eq!(run(135, 8)?.action, Action::Allow); // personality(8)
//! assert_eq!(run(135, 9)?.action, Action::Errno(38));
//! assert_eq!(run(110, 0)?.action, Action::Errno(38)); // getppid
//! # Ok::<(), node_seccomp::Error>(())
//! ```
//!
//! A Localhost profile, as the runtime opens it before creating a container:
//!
//! ```
//! use std::path::Path;
//! use node_seccomp::{CriProfileType, Error, SeccompProfile, SeccompResolver};
//!
//! # let dir = tempfile::tempdir()?;
//! # let root_dir = dir.path();
//! # std::fs::create_dir_all(root_dir.join("seccomp/profiles"))?;
//! # std::fs::write(root_dir.join("seccomp/profiles/audit.json"), r#"{"defaultAction": "SCMP_ACT_LOG"}"#)?;
//! // `root_dir` is the kubelet's --root-dir; profiles live in `<root_dir>/seccomp`.
//! let resolver = SeccompResolver::new(root_dir, false);
//! let pod_field = SeccompProfile::localhost("profiles/audit.json");
//! let cri = resolver.container_profile(None, Some(&pod_field))?;
//! assert_eq!(cri.profile_type, CriProfileType::Localhost);
//!
//! // Open it once (no symlink followed at the end, a regular file, bounded size), parse and
//! // validate the bytes read, and hand the runtime the resolved path that was checked.
//! let opened = resolver.open_localhost(Path::new(&cri.localhost_ref))?;
//! assert!(opened.report.unknown_syscalls.is_empty());
//! assert!(opened.path.starts_with(std::fs::canonicalize(resolver.profile_root())?));
//! let cri = opened.security_profile();
//! assert_eq!(Path::new(&cri.localhost_ref), opened.path);
//!
//! // A ref that leaves the root is refused with the API server's wording.
//! let escape = resolver.profile_root().join("../../etc/seccomp.json");
//! match resolver.open_localhost(&escape) {
//!     Err(Error::LocalhostPath { reason, .. }) => assert_eq!(reason, "must not contain '..'"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod action;
mod analysis;
mod arch;
pub mod bpf;
mod compile;
mod docker;
mod error;
mod file;
pub mod interp;
mod json;
mod kubelet;
pub mod loader;
mod mix;
mod profile;
pub mod syscalls;
mod validate;

pub use action::{Action, ActionName, EPERM, MAX_ERRNO};
pub use analysis::{ArchStats, Explanation, Stats, explain, seccomp_data, stats};
pub use arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Arch, X32_SYSCALL_BIT};
pub use bpf::{Insn, Program};
pub use compile::{CompileOptions, MAX_INSNS, MIX_FLOOR, compile};
pub use docker::{DockerContext, DockerProfile, parse_kernel};
pub use error::{Error, Result};
pub use file::MAX_PROFILE_BYTES;
pub use kubelet::{
    ContainerKind, ContainerSeccomp, CriProfileType, LocalhostProfile, SeccompProfile,
    SeccompProfileType, SeccompResolver, SecurityProfile,
};
pub use loader::Filter;
pub use mix::{MAX_MIX_BYTES, SyscallMix, WeightedCost, weighted_mean};
pub use profile::{ArgCondition, Flag, Operator, Profile, SyscallRule};
pub use validate::{ValidationReport, validate};
