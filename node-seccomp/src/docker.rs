//! Docker / containers-common profiles (`archMap`, per-rule `includes`/`excludes`, `name`,
//! `errno` strings) resolved for an explicit context, the way moby and containers/common do it.
//!
//! A plain OCI parser reads these files without error and drops the conditions, turning every
//! capability-, arch- or kernel-gated rule into an unconditional one. This loader resolves each
//! condition against a [`DockerContext`] instead, and errors when the context lacks something a
//! rule needs (a kernel version for `minKernel`).

use std::path::Path;

use serde_json::Value;

use crate::action::ActionName;
use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::json::{Ctx, opt};
use crate::profile::{
    Flag, Profile, SyscallRule, parse_action, parse_arch, parse_args, parse_flags,
};

/// What a Docker-format profile is resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerContext {
    /// The native architecture: selects the `archMap` entry and is matched against
    /// `includes.arches`/`excludes.arches` by its Go name (`amd64`, `arm64`, `386`).
    pub arch: Arch,
    /// The container's bounding capabilities (`CAP_SYS_ADMIN`, ...).
    pub capabilities: Vec<String>,
    /// The kernel version `(major, minor)`, needed only by rules with `minKernel`.
    pub kernel: Option<(u32, u32)>,
}

impl DockerContext {
    /// `arch` alone: no capabilities, kernel unknown.
    pub fn new(arch: Arch) -> DockerContext {
        DockerContext {
            arch,
            capabilities: Vec::new(),
            kernel: None,
        }
    }

    /// Docker's default capability set, for the given architecture, kernel unknown.
    pub fn docker_defaults(arch: Arch) -> DockerContext {
        let caps = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        DockerContext {
            arch,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            kernel: None,
        }
    }

    /// Sets [`capabilities`](Self::capabilities).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Vec<String>) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the kernel version `(major, minor)` ([`kernel`](Self::kernel)).
    #[must_use]
    pub fn with_kernel(mut self, kernel: (u32, u32)) -> Self {
        self.kernel = Some(kernel);
        self
    }
}

/// The Go architecture name moby compares `includes.arches` with (`runtime.GOARCH`).
fn go_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 | Arch::X32 => "amd64",
        Arch::X86 => "386",
        Arch::Aarch64 => "arm64",
        Arch::Arm => "arm",
        Arch::Ppc64Le => "ppc64le",
        Arch::Ppc64 => "ppc64",
        Arch::S390X => "s390x",
        Arch::Mips64 => "mips64",
        Arch::Mipsel64 => "mips64le",
        Arch::Riscv64 => "riscv64",
        Arch::Loongarch64 => "loong64",
        _ => "",
    }
}

/// An `includes`/`excludes` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filter {
    arches: Vec<String>,
    caps: Vec<String>,
    min_kernel: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DockerRule {
    path: String,
    rule: SyscallRule,
    includes: Filter,
    excludes: Filter,
}

/// A parsed Docker-format profile, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProfile {
    default_action: ActionName,
    default_errno_ret: Option<u32>,
    architectures: Vec<Arch>,
    arch_map: Vec<(Arch, Vec<Arch>)>,
    flags: Option<Vec<Flag>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    rules: Vec<DockerRule>,
}

/// Resolves an errno name (`ENOSYS`) as containers/common does for `defaultErrno`/`errno`.
fn errno_by_name(name: &str) -> Option<u32> {
    let table: &[(&str, i32)] = &[
        ("EPERM", libc::EPERM),
        ("ENOENT", libc::ENOENT),
        ("ESRCH", libc::ESRCH),
        ("EINTR", libc::EINTR),
        ("EIO", libc::EIO),
        ("ENXIO", libc::ENXIO),
        ("E2BIG", libc::E2BIG),
        ("ENOEXEC", libc::ENOEXEC),
        ("EBADF", libc::EBADF),
        ("ECHILD", libc::ECHILD),
        ("EAGAIN", libc::EAGAIN),
        ("ENOMEM", libc::ENOMEM),
        ("EACCES", libc::EACCES),
        ("EFAULT", libc::EFAULT),
        ("EBUSY", libc::EBUSY),
        ("EEXIST", libc::EEXIST),
        ("EXDEV", libc::EXDEV),
        ("ENODEV", libc::ENODEV),
        ("ENOTDIR", libc::ENOTDIR),
        ("EISDIR", libc::EISDIR),
        ("EINVAL", libc::EINVAL),
        ("ENFILE", libc::ENFILE),
        ("EMFILE", libc::EMFILE),
        ("ENOTTY", libc::ENOTTY),
        ("EFBIG", libc::EFBIG),
        ("ENOSPC", libc::ENOSPC),
        ("ESPIPE", libc::ESPIPE),
        ("EROFS", libc::EROFS),
        ("EMLINK", libc::EMLINK),
        ("EPIPE", libc::EPIPE),
        ("EDOM", libc::EDOM),
        ("ERANGE", libc::ERANGE),
        ("ENOSYS", libc::ENOSYS),
        ("ENOTSUP", libc::ENOTSUP),
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
        ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
        ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ];
    table
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| u32::try_from(*v).ok())
}

fn parse_filter(ctx: &Ctx<'_>, v: Option<&Value>, path: &str) -> Result<Filter> {
    let Some(v) = v else {
        return Ok(Filter::default());
    };
    let m = ctx.object(v, path)?;
    ctx.check_keys(m, path, &["arches", "caps", "minKernel"], &[])?;
    let arches = opt(m, "arches")
        .map(|x| ctx.strings(x, &format!("{path}.arches")))
        .transpose()?
        .unwrap_or_default();
    let caps = opt(m, "caps")
        .map(|x| ctx.strings(x, &format!("{path}.caps")))
        .transpose()?
        .unwrap_or_default();
    let min_kernel = match opt(m, "minKernel") {
        None => None,
        Some(x) => {
            let p = format!("{path}.minKernel");
            let s = ctx.string(x, &p)?;
            Some(parse_kernel(s).ok_or_else(|| {
                ctx.err(
                    &p,
                    format!("invalid kernel version {s:?}, expected MAJOR.MINOR"),
                )
            })?)
        }
    };
    Ok(Filter {
        arches,
        caps,
        min_kernel,
    })
}

/// Parses `MAJOR.MINOR` (a trailing `.PATCH` or suffix is ignored, as moby does).
pub fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor_text.parse().ok()?))
}

fn errno_field(
    ctx: &Ctx<'_>,
    map: &serde_json::Map<String, Value>,
    num_key: &str,
    name_key: &str,
    path: &str,
) -> Result<Option<u32>> {
    let num = opt(map, num_key)
        .map(|x| ctx.u32(x, &format!("{path}.{num_key}")))
        .transpose()?;
    let named = match opt(map, name_key) {
        None => None,
        Some(x) => {
            let p = format!("{path}.{name_key}");
            let s = ctx.string(x, &p)?;
            Some(errno_by_name(s).ok_or_else(|| ctx.err(&p, format!("unknown errno name {s:?}")))?)
        }
    };
    match (num, named) {
        (Some(a), Some(b)) if a != b => Err(ctx.err(
            path,
            format!("`{num_key}` {a} and `{name_key}` (= {b}) disagree"),
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

impl DockerProfile {
    /// Parses a Docker/containers-common profile (plain OCI files are accepted too).
    pub fn from_json(text: &str) -> Result<DockerProfile> {
        parse(
            &Ctx {
                origin: "<profile>",
            },
            text.as_bytes(),
        )
    }

    /// Reads and parses a Docker-format profile file, with the checks of
    /// [`Profile::from_file`] (regular file, at most [`crate::MAX_PROFILE_BYTES`]).
    pub fn from_file(path: &Path) -> Result<DockerProfile> {
        let bytes = crate::file::read_profile_file(path)?;
        parse(
            &Ctx {
                origin: &path.display().to_string(),
            },
            &bytes,
        )
    }

    /// Resolves every condition for `ctx` into a plain OCI profile: the `archMap` entry of the
    /// native arch gives `architectures`; a rule is kept only when its excludes do not match
    /// and its includes all do (every listed capability, the native arch, the kernel version).
    pub fn resolve(&self, ctx: &DockerContext) -> Result<Profile> {
        let mut architectures = self.architectures.clone();
        for (arch, subs) in &self.arch_map {
            if *arch == ctx.arch {
                architectures.push(*arch);
                architectures.extend(subs.iter().copied());
            }
        }
        let goarch = go_arch(ctx.arch);
        let has_cap = |c: &String| ctx.capabilities.iter().any(|have| have == c);
        let kernel_at_least = |min: (u32, u32), path: &str| -> Result<bool> {
            let k = ctx.kernel.ok_or_else(|| Error::DockerContext {
                path: path.to_string(),
                message: format!(
                    "rule needs kernel >= {}.{} but no kernel version was given",
                    min.0, min.1
                ),
            })?;
            Ok(k >= min)
        };
        let mut syscalls = Vec::new();
        for r in &self.rules {
            if r.excludes.arches.iter().any(|a| a == goarch) {
                continue;
            }
            if r.excludes.caps.iter().any(has_cap) {
                continue;
            }
            if let Some(min) = r.excludes.min_kernel
                && kernel_at_least(min, &format!("{}.excludes.minKernel", r.path))?
            {
                continue;
            }
            if !r.includes.arches.is_empty() && !r.includes.arches.iter().any(|a| a == goarch) {
                continue;
            }
            if !r.includes.caps.iter().all(has_cap) {
                continue;
            }
            if let Some(min) = r.includes.min_kernel
                && !kernel_at_least(min, &format!("{}.includes.minKernel", r.path))?
            {
                continue;
            }
            syscalls.push(r.rule.clone());
        }
        Ok(Profile {
            default_action: self.default_action,
            default_errno_ret: self.default_errno_ret,
            architectures,
            flags: self.flags.clone(),
            listener_path: self.listener_path.clone(),
            listener_metadata: self.listener_metadata.clone(),
            syscalls,
        })
    }
}

fn parse(ctx: &Ctx<'_>, bytes: &[u8]) -> Result<DockerProfile> {
    let root = ctx.parse(bytes)?;
    let top = ctx.object(&root, "$")?;
    ctx.check_keys(
        top,
        "$",
        &[
            "defaultAction",
            "defaultErrnoRet",
            "defaultErrno",
            "architectures",
            "archMap",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "syscalls",
        ],
        &[],
    )?;
    let default_action = parse_action(
        ctx,
        top.get("defaultAction")
            .ok_or_else(|| ctx.err("$", "missing required field `defaultAction`"))?,
        "$.defaultAction",
    )?;
    let default_errno_ret = errno_field(ctx, top, "defaultErrnoRet", "defaultErrno", "$")?;
    let mut architectures = Vec::new();
    if let Some(v) = opt(top, "architectures") {
        for (i, a) in ctx.array(v, "$.architectures")?.iter().enumerate() {
            architectures.push(parse_arch(ctx, a, &format!("$.architectures[{i}]"))?);
        }
    }
    let mut arch_map = Vec::new();
    if let Some(v) = opt(top, "archMap") {
        if !architectures.is_empty() {
            return Err(ctx.err(
                "$.archMap",
                "'architectures' and 'archMap' were both specified, use either",
            ));
        }
        for (i, e) in ctx.array(v, "$.archMap")?.iter().enumerate() {
            let p = format!("$.archMap[{i}]");
            let m = ctx.object(e, &p)?;
            ctx.check_keys(m, &p, &["architecture", "subArchitectures"], &[])?;
            let arch = parse_arch(
                ctx,
                m.get("architecture")
                    .ok_or_else(|| ctx.err(&p, "missing required field `architecture`"))?,
                &format!("{p}.architecture"),
            )?;
            let mut subs = Vec::new();
            if let Some(s) = opt(m, "subArchitectures") {
                for (j, a) in ctx
                    .array(s, &format!("{p}.subArchitectures"))?
                    .iter()
                    .enumerate()
                {
                    subs.push(parse_arch(ctx, a, &format!("{p}.subArchitectures[{j}]"))?);
                }
            }
            arch_map.push((arch, subs));
        }
    }
    let flags = opt(top, "flags")
        .map(|v| parse_flags(ctx, v, "$.flags"))
        .transpose()?;
    let listener_path = opt(top, "listenerPath")
        .map(|v| ctx.string(v, "$.listenerPath").map(str::to_string))
        .transpose()?;
    let listener_metadata = opt(top, "listenerMetadata")
        .map(|v| ctx.string(v, "$.listenerMetadata").map(str::to_string))
        .transpose()?;
    let mut rules = Vec::new();
    if let Some(v) = opt(top, "syscalls") {
        for (i, r) in ctx.array(v, "$.syscalls")?.iter().enumerate() {
            let p = format!("$.syscalls[{i}]");
            let m = ctx.object(r, &p)?;
            ctx.check_keys(
                m,
                &p,
                &[
                    "names", "name", "action", "errnoRet", "errno", "args", "comment", "includes",
                    "excludes",
                ],
                &[],
            )?;
            let mut names = opt(m, "names")
                .map(|x| ctx.strings(x, &format!("{p}.names")))
                .transpose()?
                .unwrap_or_default();
            if let Some(n) = opt(m, "name") {
                let single = ctx.string(n, &format!("{p}.name"))?;
                if !names.is_empty() {
                    return Err(ctx.err(&p, "'name' and 'names' were both specified, use either"));
                }
                names.push(single.to_string());
            }
            let action = parse_action(
                ctx,
                m.get("action")
                    .ok_or_else(|| ctx.err(&p, "missing required field `action`"))?,
                &format!("{p}.action"),
            )?;
            let errno_ret = errno_field(ctx, m, "errnoRet", "errno", &p)?;
            let args = opt(m, "args")
                .map(|x| parse_args(ctx, x, &format!("{p}.args")))
                .transpose()?
                .unwrap_or_default();
            if let Some(c) = opt(m, "comment") {
                ctx.string(c, &format!("{p}.comment"))?;
            }
            let includes = parse_filter(ctx, opt(m, "includes"), &format!("{p}.includes"))?;
            let excludes = parse_filter(ctx, opt(m, "excludes"), &format!("{p}.excludes"))?;
            rules.push(DockerRule {
                path: p,
                rule: SyscallRule {
                    names,
                    action,
                    errno_ret,
                    args,
                },
                includes,
                excludes,
            });
        }
    }
    Ok(DockerProfile {
        default_action,
        default_errno_ret,
        architectures,
        arch_map,
        flags,
        listener_path,
        listener_metadata,
        rules,
    })
}
