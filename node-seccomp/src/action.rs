//! Seccomp actions: the OCI names and the kernel's `SECCOMP_RET_*` values.

use std::fmt;

/// `EPERM`, the errno runtimes use when `errnoRet` is not given.
pub const EPERM: u16 = 1;

/// The largest errno the kernel passes through (`MAX_ERRNO`).
pub const MAX_ERRNO: u32 = 4095;

macro_rules! action_names {
    ($($variant:ident => $name:literal,)*) => {
        /// An action name as written in a profile (`SCMP_ACT_*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActionName {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl ActionName {
            /// Every action name the runtime spec knows.
            pub const ALL: &'static [ActionName] = &[$(ActionName::$variant,)*];

            /// The OCI spelling.
            pub fn oci_name(self) -> &'static str {
                match self {
                    $(ActionName::$variant => $name,)*
                }
            }

            /// Parses the OCI spelling.
            pub fn from_name(name: &str) -> Option<ActionName> {
                ActionName::ALL.iter().copied().find(|a| a.oci_name() == name)
            }
        }
    };
}

action_names! {
    Kill => "SCMP_ACT_KILL",
    KillThread => "SCMP_ACT_KILL_THREAD",
    KillProcess => "SCMP_ACT_KILL_PROCESS",
    Trap => "SCMP_ACT_TRAP",
    Errno => "SCMP_ACT_ERRNO",
    Trace => "SCMP_ACT_TRACE",
    Allow => "SCMP_ACT_ALLOW",
    Log => "SCMP_ACT_LOG",
    Notify => "SCMP_ACT_NOTIFY",
}

impl ActionName {
    /// Whether `errnoRet` means something for this action (ERRNO and TRACE, as crun checks).
    pub fn takes_errno(self) -> bool {
        matches!(self, ActionName::Errno | ActionName::Trace)
    }

    /// The action with its data, as runc builds it: `errnoRet` for ERRNO and TRACE (EPERM when
    /// absent), nothing for the others.
    pub fn with_errno(self, errno_ret: Option<u32>) -> Action {
        // Validation rejects values that do not fit; the mask keeps this total anyway.
        let data = errno_ret.map_or(EPERM, |e| (e & 0xffff) as u16);
        match self {
            ActionName::Kill | ActionName::KillThread => Action::KillThread,
            ActionName::KillProcess => Action::KillProcess,
            ActionName::Trap => Action::Trap,
            ActionName::Errno => Action::Errno(data),
            ActionName::Trace => Action::Trace(data),
            ActionName::Allow => Action::Allow,
            ActionName::Log => Action::Log,
            ActionName::Notify => Action::Notify,
        }
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
    }
}

/// A resolved action with its data: what a filter returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "action", content = "data")]
pub enum Action {
    /// `SECCOMP_RET_KILL_PROCESS`.
    KillProcess,
    /// `SECCOMP_RET_KILL_THREAD` (`SCMP_ACT_KILL`).
    KillThread,
    /// `SECCOMP_RET_TRAP`: SIGSYS.
    Trap,
    /// `SECCOMP_RET_ERRNO` with the errno.
    Errno(u16),
    /// `SECCOMP_RET_USER_NOTIF`.
    Notify,
    /// `SECCOMP_RET_TRACE` with the message for the tracer.
    Trace(u16),
    /// `SECCOMP_RET_LOG`.
    Log,
    /// `SECCOMP_RET_ALLOW`.
    Allow,
}

impl Action {
    /// The 32-bit value a filter returns for this action.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0x0000_0000,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::Notify => 0x7fc0_0000,
            Action::Trace(m) => 0x7ff0_0000 | u32::from(m),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }

    /// Decodes a filter's return value the way the kernel does (`SECCOMP_RET_ACTION_FULL` and
    /// `SECCOMP_RET_DATA`). Unknown action bits mean KILL_PROCESS, as in the kernel.
    pub fn from_ret(ret: u32) -> Action {
        let data = (ret & 0xffff) as u16;
        match ret & 0xffff_0000 {
            0x0000_0000 => Action::KillThread,
            0x0003_0000 => Action::Trap,
            0x0005_0000 => Action::Errno(data),
            0x7fc0_0000 => Action::Notify,
            0x7ff0_0000 => Action::Trace(data),
            0x7ffc_0000 => Action::Log,
            0x7fff_0000 => Action::Allow,
            _ => Action::KillProcess,
        }
    }

    /// Kernel precedence when several filters (or overlapping rules) apply: lower is stronger
    /// (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW).
    pub fn precedence(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::KillThread => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::Notify => 4,
            Action::Trace(_) => 5,
            Action::Log => 6,
            Action::Allow => 7,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => f.write_str("KILL_PROCESS"),
            Action::KillThread => f.write_str("KILL_THREAD"),
            Action::Trap => f.write_str("TRAP"),
            Action::Errno(e) => write!(f, "ERRNO({e})"),
            Action::Notify => f.write_str("NOTIFY"),
            Action::Trace(m) => write!(f, "TRACE({m})"),
            Action::Log => f.write_str("LOG"),
            Action::Allow => f.write_str("ALLOW"),
        }
    }
}
