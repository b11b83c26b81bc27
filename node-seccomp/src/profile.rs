//! The OCI `LinuxSeccomp` model and its strict parser.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::action::ActionName;
use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::json::{Ctx, opt};

/// Keys of Docker/containers-common profiles that a plain OCI parser would silently drop.
pub(crate) const DOCKER_TOP_KEYS: &[&str] = &["archMap", "defaultErrno"];
/// Rule-level Docker keys.
pub(crate) const DOCKER_RULE_KEYS: &[&str] = &["includes", "excludes", "name", "comment", "errno"];

/// An argument comparison operator (`SCMP_CMP_*`); the discriminants are libseccomp's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `SCMP_CMP_NE`
    NotEqual = 1,
    /// `SCMP_CMP_LT`
    LessThan = 2,
    /// `SCMP_CMP_LE`
    LessOrEqual = 3,
    /// `SCMP_CMP_EQ`
    Equal = 4,
    /// `SCMP_CMP_GE`
    GreaterOrEqual = 5,
    /// `SCMP_CMP_GT`
    GreaterThan = 6,
    /// `SCMP_CMP_MASKED_EQ`: `(arg & value) == (valueTwo & value)` (libseccomp masks both).
    MaskedEqual = 7,
}

impl Operator {
    /// Every operator.
    pub const ALL: &'static [Operator] = &[
        Operator::NotEqual,
        Operator::LessThan,
        Operator::LessOrEqual,
        Operator::Equal,
        Operator::GreaterOrEqual,
        Operator::GreaterThan,
        Operator::MaskedEqual,
    ];

    /// The OCI spelling.
    pub fn oci_name(self) -> &'static str {
        match self {
            Operator::NotEqual => "SCMP_CMP_NE",
            Operator::LessThan => "SCMP_CMP_LT",
            Operator::LessOrEqual => "SCMP_CMP_LE",
            Operator::Equal => "SCMP_CMP_EQ",
            Operator::GreaterOrEqual => "SCMP_CMP_GE",
            Operator::GreaterThan => "SCMP_CMP_GT",
            Operator::MaskedEqual => "SCMP_CMP_MASKED_EQ",
        }
    }

    /// Parses the OCI spelling.
    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.iter().copied().find(|o| o.oci_name() == name)
    }

    /// Evaluates the comparison on a 64-bit argument (the reference semantics the compiler's
    /// output is tested against).
    pub fn matches(self, arg: u64, value: u64, value_two: u64) -> bool {
        match self {
            Operator::NotEqual => arg != value,
            Operator::LessThan => arg < value,
            Operator::LessOrEqual => arg <= value,
            Operator::Equal => arg == value,
            Operator::GreaterOrEqual => arg >= value,
            Operator::GreaterThan => arg > value,
            // libseccomp masks the datum too: bits of valueTwo outside the mask are ignored.
            Operator::MaskedEqual => arg & value == value_two & value,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
    }
}

/// A `flags` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `SECCOMP_FILTER_FLAG_TSYNC`
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19)
    WaitKillableRecv,
}

impl Flag {
    /// Every flag the runtime spec knows.
    pub const ALL: &'static [Flag] = &[
        Flag::Tsync,
        Flag::Log,
        Flag::SpecAllow,
        Flag::WaitKillableRecv,
    ];

    /// The OCI spelling.
    pub fn oci_name(self) -> &'static str {
        match self {
            Flag::Tsync => "SECCOMP_FILTER_FLAG_TSYNC",
            Flag::Log => "SECCOMP_FILTER_FLAG_LOG",
            Flag::SpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            Flag::WaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        }
    }

    /// The `seccomp(2)` flag bit.
    pub fn bits(self) -> u32 {
        match self {
            Flag::Tsync => 1,
            Flag::Log => 2,
            Flag::SpecAllow => 4,
            Flag::WaitKillableRecv => 32,
        }
    }
}

/// One argument condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// The syscall argument number (0-5).
    pub index: u32,
    /// The value compared with (the mask for MASKED_EQ).
    pub value: u64,
    /// The datum for MASKED_EQ; `None` when absent.
    pub value_two: Option<u64>,
    /// The operator.
    pub op: Operator,
}

impl ArgCondition {
    /// Whether a 64-bit argument satisfies this condition.
    pub fn matches(&self, arg: u64) -> bool {
        self.op
            .matches(arg, self.value, self.value_two.unwrap_or(0))
    }
}

/// One `syscalls[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    /// Syscall names the rule applies to.
    pub names: Vec<String>,
    /// The action when the rule matches.
    pub action: ActionName,
    /// `errnoRet`.
    pub errno_ret: Option<u32>,
    /// Argument conditions, ANDed (but see [`crate::compile`] for runc's duplicate-index rule).
    pub args: Vec<ArgCondition>,
}

/// The OCI `linux.seccomp` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `defaultAction`.
    pub default_action: ActionName,
    /// `defaultErrnoRet`.
    pub default_errno_ret: Option<u32>,
    /// `architectures`; empty when absent (the runtime then uses the native architecture).
    pub architectures: Vec<Arch>,
    /// `flags`; `None` when absent (runtimes then enable SPEC_ALLOW when they can).
    pub flags: Option<Vec<Flag>>,
    /// `listenerPath`.
    pub listener_path: Option<String>,
    /// `listenerMetadata`.
    pub listener_metadata: Option<String>,
    /// `syscalls`.
    pub syscalls: Vec<SyscallRule>,
}

impl Profile {
    /// A profile with a default action and nothing else.
    pub fn new(default_action: ActionName) -> Profile {
        Profile {
            default_action,
            default_errno_ret: None,
            architectures: Vec::new(),
            flags: None,
            listener_path: None,
            listener_metadata: None,
            syscalls: Vec::new(),
        }
    }

    /// Parses an OCI `LinuxSeccomp` JSON document strictly: unknown keys, wrong types and
    /// unknown action/operator/arch/flag names are errors naming the JSON path. Docker-format
    /// keys are rejected with a pointer to [`crate::DockerProfile`].
    pub fn from_json(text: &str) -> Result<Profile> {
        parse(
            &Ctx {
                origin: "<profile>",
            },
            text.as_bytes(),
        )
    }

    /// Reads and parses a profile file named by an operator; errors name the file. Symbolic
    /// links are followed; the file must be a regular file of at most
    /// [`crate::MAX_PROFILE_BYTES`] (a FIFO is refused without blocking). Localhost profiles
    /// named by pods go through [`crate::SeccompResolver::open_localhost`] instead, which also
    /// confines them to the profile root and validates them.
    pub fn from_file(path: &Path) -> Result<Profile> {
        let bytes = crate::file::read_profile_file(path)?;
        parse(
            &Ctx {
                origin: &path.display().to_string(),
            },
            &bytes,
        )
    }

    /// Serialises the profile back to OCI JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain maps, strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

pub(crate) fn parse(ctx: &Ctx<'_>, bytes: &[u8]) -> Result<Profile> {
    let root = ctx.parse(bytes)?;
    parse_value(ctx, &root)
}

pub(crate) fn parse_action(ctx: &Ctx<'_>, v: &Value, path: &str) -> Result<ActionName> {
    let s = ctx.string(v, path)?;
    ActionName::from_name(s).ok_or_else(|| {
        ctx.err(
            path,
            format!("string {s} is not a valid action for seccomp"),
        )
    })
}

pub(crate) fn parse_arch(ctx: &Ctx<'_>, v: &Value, path: &str) -> Result<Arch> {
    let s = ctx.string(v, path)?;
    Arch::ALL
        .iter()
        .copied()
        .find(|a| a.oci_name() == s)
        .ok_or_else(|| ctx.err(path, format!("string {s} is not a valid arch for seccomp")))
}

pub(crate) fn parse_flags(ctx: &Ctx<'_>, v: &Value, path: &str) -> Result<Vec<Flag>> {
    let items = ctx.array(v, path)?;
    let mut flags = Vec::new();
    for (i, f) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let s = ctx.string(f, &p)?;
        let flag = Flag::ALL
            .iter()
            .copied()
            .find(|x| x.oci_name() == s)
            .ok_or_else(|| ctx.err(&p, format!("seccomp flag {s} is not known")))?;
        flags.push(flag);
    }
    Ok(flags)
}

pub(crate) fn parse_args(ctx: &Ctx<'_>, v: &Value, path: &str) -> Result<Vec<ArgCondition>> {
    let mut args = Vec::new();
    for (j, a) in ctx.array(v, path)?.iter().enumerate() {
        let ap = format!("{path}[{j}]");
        let am = ctx.object(a, &ap)?;
        ctx.check_keys(am, &ap, &["index", "value", "valueTwo", "op"], &[])?;
        let index = ctx.u32(
            am.get("index")
                .ok_or_else(|| ctx.err(&ap, "missing required field `index`"))?,
            &format!("{ap}.index"),
        )?;
        let value = ctx.u64(
            am.get("value")
                .ok_or_else(|| ctx.err(&ap, "missing required field `value`"))?,
            &format!("{ap}.value"),
        )?;
        let value_two = opt(am, "valueTwo")
            .map(|x| ctx.u64(x, &format!("{ap}.valueTwo")))
            .transpose()?;
        let opv = am
            .get("op")
            .ok_or_else(|| ctx.err(&ap, "missing required field `op`"))?;
        let op_path = format!("{ap}.op");
        let ops = ctx.string(opv, &op_path)?;
        let op = Operator::from_name(ops).ok_or_else(|| {
            ctx.err(
                &op_path,
                format!("string {ops} is not a valid operator for seccomp"),
            )
        })?;
        args.push(ArgCondition {
            index,
            value,
            value_two,
            op,
        });
    }
    Ok(args)
}

fn parse_value(ctx: &Ctx<'_>, root: &Value) -> Result<Profile> {
    let top = ctx.object(root, "$")?;
    ctx.check_keys(
        top,
        "$",
        &[
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "syscalls",
        ],
        DOCKER_TOP_KEYS,
    )?;
    // Rule-level Docker keys are checked before anything else so that a Docker file gets the
    // pointer to the Docker loader rather than a complaint about some other field.
    if let Some(rules) = opt(top, "syscalls").and_then(Value::as_array) {
        for (i, r) in rules.iter().enumerate() {
            if let Some(m) = r.as_object()
                && let Some(key) = m.keys().find(|k| DOCKER_RULE_KEYS.contains(&k.as_str()))
            {
                return Err(Error::DockerFormat {
                    origin: ctx.origin.to_string(),
                    path: format!("$.syscalls[{i}].{key}"),
                    key: key.clone(),
                });
            }
        }
    }
    let default_action = parse_action(
        ctx,
        top.get("defaultAction")
            .ok_or_else(|| ctx.err("$", "missing required field `defaultAction`"))?,
        "$.defaultAction",
    )?;
    let default_errno_ret = opt(top, "defaultErrnoRet")
        .map(|v| ctx.u32(v, "$.defaultErrnoRet"))
        .transpose()?;
    let mut architectures = Vec::new();
    if let Some(v) = opt(top, "architectures") {
        for (i, a) in ctx.array(v, "$.architectures")?.iter().enumerate() {
            architectures.push(parse_arch(ctx, a, &format!("$.architectures[{i}]"))?);
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
    let mut syscalls = Vec::new();
    if let Some(v) = opt(top, "syscalls") {
        for (i, r) in ctx.array(v, "$.syscalls")?.iter().enumerate() {
            let p = format!("$.syscalls[{i}]");
            let m = ctx.object(r, &p)?;
            ctx.check_keys(
                m,
                &p,
                &["names", "action", "errnoRet", "args"],
                DOCKER_RULE_KEYS,
            )?;
            let names = ctx.strings(
                m.get("names")
                    .ok_or_else(|| ctx.err(&p, "missing required field `names`"))?,
                &format!("{p}.names"),
            )?;
            let action = parse_action(
                ctx,
                m.get("action")
                    .ok_or_else(|| ctx.err(&p, "missing required field `action`"))?,
                &format!("{p}.action"),
            )?;
            let errno_ret = opt(m, "errnoRet")
                .map(|x| ctx.u32(x, &format!("{p}.errnoRet")))
                .transpose()?;
            let args = opt(m, "args")
                .map(|x| parse_args(ctx, x, &format!("{p}.args")))
                .transpose()?
                .unwrap_or_default();
            syscalls.push(SyscallRule {
                names,
                action,
                errno_ret,
                args,
            });
        }
    }
    Ok(Profile {
        default_action,
        default_errno_ret,
        architectures,
        flags,
        listener_path,
        listener_metadata,
        syscalls,
    })
}

impl Serialize for ArgCondition {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("index", &self.index)?;
        m.serialize_entry("value", &self.value)?;
        if let Some(v2) = self.value_two {
            m.serialize_entry("valueTwo", &v2)?;
        }
        m.serialize_entry("op", self.op.oci_name())?;
        m.end()
    }
}

impl Serialize for SyscallRule {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("names", &self.names)?;
        m.serialize_entry("action", self.action.oci_name())?;
        if let Some(e) = self.errno_ret {
            m.serialize_entry("errnoRet", &e)?;
        }
        if !self.args.is_empty() {
            m.serialize_entry("args", &self.args)?;
        }
        m.end()
    }
}

impl Serialize for Profile {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("defaultAction", self.default_action.oci_name())?;
        if let Some(e) = self.default_errno_ret {
            m.serialize_entry("defaultErrnoRet", &e)?;
        }
        if !self.architectures.is_empty() {
            let names: Vec<&str> = self.architectures.iter().map(|a| a.oci_name()).collect();
            m.serialize_entry("architectures", &names)?;
        }
        if let Some(flags) = &self.flags {
            let names: Vec<&str> = flags.iter().map(|f| f.oci_name()).collect();
            m.serialize_entry("flags", &names)?;
        }
        if let Some(p) = &self.listener_path {
            m.serialize_entry("listenerPath", p)?;
        }
        if let Some(p) = &self.listener_metadata {
            m.serialize_entry("listenerMetadata", p)?;
        }
        if !self.syscalls.is_empty() {
            m.serialize_entry("syscalls", &self.syscalls)?;
        }
        m.end()
    }
}
