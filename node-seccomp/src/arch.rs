//! Architectures: the OCI names, their audit values and which the compiler supports.

use std::fmt;

/// `AUDIT_ARCH_X86_64`: also the audit value of x32 (told apart by [`X32_SYSCALL_BIT`]).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `__X32_SYSCALL_BIT`: set in the syscall number of every x32 syscall.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

macro_rules! arches {
    ($($variant:ident => $name:literal,)*) => {
        /// An OCI `architectures` entry (`SCMP_ARCH_*`), as listed by the runtime spec.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Arch {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Arch {
            /// Every architecture name the spec knows.
            pub const ALL: &'static [Arch] = &[$(Arch::$variant,)*];

            /// The OCI name (`SCMP_ARCH_X86_64`, ...).
            pub fn oci_name(self) -> &'static str {
                match self {
                    $(Arch::$variant => $name,)*
                }
            }
        }
    };
}

arches! {
    Native => "SCMP_ARCH_NATIVE",
    X86 => "SCMP_ARCH_X86",
    X86_64 => "SCMP_ARCH_X86_64",
    X32 => "SCMP_ARCH_X32",
    Arm => "SCMP_ARCH_ARM",
    Aarch64 => "SCMP_ARCH_AARCH64",
    Mips => "SCMP_ARCH_MIPS",
    Mips64 => "SCMP_ARCH_MIPS64",
    Mips64N32 => "SCMP_ARCH_MIPS64N32",
    Mipsel => "SCMP_ARCH_MIPSEL",
    Mipsel64 => "SCMP_ARCH_MIPSEL64",
    Mipsel64N32 => "SCMP_ARCH_MIPSEL64N32",
    Ppc => "SCMP_ARCH_PPC",
    Ppc64 => "SCMP_ARCH_PPC64",
    Ppc64Le => "SCMP_ARCH_PPC64LE",
    S390 => "SCMP_ARCH_S390",
    S390X => "SCMP_ARCH_S390X",
    Parisc => "SCMP_ARCH_PARISC",
    Parisc64 => "SCMP_ARCH_PARISC64",
    Riscv64 => "SCMP_ARCH_RISCV64",
    Loongarch64 => "SCMP_ARCH_LOONGARCH64",
    M68k => "SCMP_ARCH_M68K",
    Sh => "SCMP_ARCH_SH",
    Sheb => "SCMP_ARCH_SHEB",
}

impl Arch {
    /// Parses an OCI name; also accepts the short forms `x86_64`, `x86`, `x32`, `aarch64` used on
    /// the command line.
    pub fn from_name(name: &str) -> Option<Arch> {
        if let Some(a) = Arch::ALL.iter().copied().find(|a| a.oci_name() == name) {
            return Some(a);
        }
        let short = name.to_ascii_lowercase();
        Arch::ALL.iter().copied().find(|a| a.short_name() == short)
    }

    /// Lower-case name without the prefix (`x86_64`).
    pub fn short_name(self) -> String {
        self.oci_name()
            .trim_start_matches("SCMP_ARCH_")
            .to_ascii_lowercase()
    }

    /// The architecture this program runs on, as the compiler knows it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else {
            None
        }
    }

    /// Resolves `SCMP_ARCH_NATIVE` to the build architecture; other values are returned as is.
    pub fn resolve_native(self) -> Option<Arch> {
        match self {
            Arch::Native => Arch::native(),
            other => Some(other),
        }
    }

    /// `seccomp_data.arch` for this ABI, for the architectures the compiler supports.
    pub fn audit_arch(self) -> Option<u32> {
        match self {
            Arch::X86_64 | Arch::X32 => Some(AUDIT_ARCH_X86_64),
            Arch::X86 => Some(AUDIT_ARCH_I386),
            Arch::Aarch64 => Some(AUDIT_ARCH_AARCH64),
            _ => None,
        }
    }

    /// Whether the BPF compiler can target this architecture.
    pub fn is_supported(self) -> bool {
        self.audit_arch().is_some()
    }

    /// Whether libseccomp treats this ABI's arguments as 32 bits wide and compares only their
    /// low word (it does so for x32 too, whose pointers and longs are 32-bit).
    pub fn is_32bit(self) -> bool {
        matches!(
            self,
            Arch::X86
                | Arch::X32
                | Arch::Arm
                | Arch::Mips
                | Arch::Mipsel
                | Arch::Ppc
                | Arch::S390
                | Arch::Parisc
        )
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
    }
}
