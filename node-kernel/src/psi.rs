//! Pressure Stall Information: is it really on, whatever the version number says?
//!
//! PSI was merged in 4.20, but RHEL 8 backports it to 4.18 (disabled by default, turned on with
//! `psi=1`), and any kernel can be built with `CONFIG_PSI_DEFAULT_DISABLED=y` or booted with
//! `psi=0`. The definitive check is the one the kernel answers: `/proc/pressure/*` exists and
//! reads as `some avg10=... total=...` only when PSI is compiled in and enabled.

use serde::Serialize;

use crate::cmdline::KernelCmdline;
use crate::error::Error;
use crate::kconfig::{ConfigValue, KernelConfig};
use crate::root::HostRoot;
use crate::verdict::{DecidedBy, Verdict};
use crate::version::{KernelVersion, constants};

/// The system-wide pressure files.
pub const PRESSURE_FILES: [&str; 3] = ["cpu", "memory", "io"];

/// What reading `/proc/pressure` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PressureProbe {
    /// Every file exists and parses.
    Readable,
    /// `/proc/pressure` (or a file in it) is missing while `/proc` is there.
    Absent,
    /// A file exists but the kernel refuses the read (EOPNOTSUPP: disabled at boot on some
    /// kernels that still create the files).
    Refused(String),
    /// `/proc` itself is not there (a partial fixture): nothing can be concluded from it.
    NoProc,
    /// Something else went wrong (permissions, garbage content).
    Failed(String),
}

/// PSI facts and the verdict drawn from them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PsiFacts {
    /// The verdict (also used as the `psi` feature).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// `CONFIG_PSI`, when the config is readable.
    pub config_psi: Option<ConfigValue>,
    /// `CONFIG_PSI_DEFAULT_DISABLED`, when the config is readable.
    pub config_default_disabled: Option<ConfigValue>,
    /// `psi=` on the kernel command line.
    pub cmdline_psi: Option<bool>,
}

/// Reads `/proc/pressure/{cpu,memory,io}` under `root`.
#[must_use]
pub fn probe_pressure(root: &HostRoot) -> PressureProbe {
    if !root.is_dir("/proc") {
        return PressureProbe::NoProc;
    }
    for name in PRESSURE_FILES {
        let rel = format!("/proc/pressure/{name}");
        match root.read(&rel) {
            Ok(text) => {
                if let Err(e) = check_pressure_text(root, &rel, &text) {
                    return PressureProbe::Failed(node_util::error_chain(&e));
                }
            }
            Err(Error::Read { source, path }) => {
                return match source.kind() {
                    std::io::ErrorKind::NotFound => PressureProbe::Absent,
                    _ if source.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                        PressureProbe::Refused(format!("reading {}: {source}", path.display()))
                    }
                    _ => PressureProbe::Failed(format!("reading {}: {source}", path.display())),
                };
            }
            Err(e) => return PressureProbe::Failed(node_util::error_chain(&e)),
        }
    }
    PressureProbe::Readable
}

/// A pressure file has a `some avg10=.. avg60=.. avg300=.. total=..` line.
fn check_pressure_text(root: &HostRoot, rel: &str, text: &str) -> Result<(), Error> {
    let some = text.lines().find(|l| l.starts_with("some "));
    let ok = some.is_some_and(|l| {
        let keys: Vec<&str> = l
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .collect();
        keys == ["avg10", "avg60", "avg300", "total"]
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Parse {
            path: root.join(rel),
            field: "some".to_string(),
            value: text.lines().next().unwrap_or("").to_string(),
            expected: "a line `some avg10=N avg60=N avg300=N total=N`",
        })
    }
}

/// Draws the PSI verdict from the evidence. Pure, so every combination is unit-tested.
#[must_use]
pub fn assess_psi(
    pressure: &PressureProbe,
    config: Option<&KernelConfig>,
    cmdline: Option<&KernelCmdline>,
    version: Option<&KernelVersion>,
) -> PsiFacts {
    let config_psi = config.map(|c| c.get("PSI"));
    let config_default_disabled = config.map(|c| c.get("PSI_DEFAULT_DISABLED"));
    let cmdline_psi = cmdline.and_then(|c| c.bool_value("psi"));
    let psi_floor = KernelVersion::from_parts(constants::PSI);
    let old_kernel = version.filter(|v| !v.at_least(&psi_floor));

    // Why PSI is off, best explanation first; used when the probe says "absent".
    let explain_off = || -> String {
        if cmdline_psi == Some(false) {
            return "the kernel was booted with psi=0".to_string();
        }
        if let Some(v) = config_psi.filter(|v| !v.is_enabled()) {
            return format!("CONFIG_PSI is {} in the kernel config", v.describe());
        }
        if config_default_disabled.is_some_and(ConfigValue::is_enabled) && cmdline_psi != Some(true)
        {
            return "the kernel is built with CONFIG_PSI_DEFAULT_DISABLED=y and was not booted with psi=1".to_string();
        }
        if let Some(v) = old_kernel {
            return format!("kernel {v} predates PSI (4.20) and has no backport");
        }
        "PSI is compiled out or disabled".to_string()
    };

    let verdict = match pressure {
        PressureProbe::Readable => {
            let mut reason = "/proc/pressure/{cpu,memory,io} are readable".to_string();
            if let Some(v) = old_kernel {
                reason.push_str(&format!(
                    " although kernel {v} is older than 4.20: PSI is backported"
                ));
            }
            if cmdline_psi == Some(true) {
                reason.push_str(" (enabled with psi=1)");
            }
            Verdict::yes(DecidedBy::Probe, reason)
        }
        PressureProbe::Absent => Verdict::no(
            DecidedBy::Probe,
            format!("/proc/pressure is missing: {}", explain_off()),
        ),
        PressureProbe::Refused(detail) => {
            Verdict::no(DecidedBy::Probe, format!("{detail}: {}", explain_off()))
        }
        PressureProbe::NoProc | PressureProbe::Failed(_) => {
            let probe_note = match pressure {
                PressureProbe::Failed(d) => format!("probe failed ({d}); "),
                _ => "no /proc to probe; ".to_string(),
            };
            match (config_psi, version) {
                (Some(v), _) if !v.is_enabled() => Verdict::no(
                    DecidedBy::Config,
                    format!("{probe_note}CONFIG_PSI is {}", v.describe()),
                ),
                (Some(_), _) if cmdline_psi == Some(false) => Verdict::no(
                    DecidedBy::Config,
                    format!("{probe_note}CONFIG_PSI=y but the kernel was booted with psi=0"),
                ),
                (Some(_), _)
                    if config_default_disabled.is_some_and(ConfigValue::is_enabled)
                        && cmdline_psi != Some(true) =>
                {
                    Verdict::no(
                        DecidedBy::Config,
                        format!(
                            "{probe_note}CONFIG_PSI_DEFAULT_DISABLED=y and no psi=1 on the command line"
                        ),
                    )
                }
                (Some(_), _) => Verdict::yes(
                    DecidedBy::Config,
                    format!("{probe_note}CONFIG_PSI=y and not disabled at boot"),
                ),
                (None, Some(v)) if !v.at_least(&psi_floor) => Verdict::no(
                    DecidedBy::Version,
                    format!(
                        "{probe_note}kernel {v} is older than 4.20 and no kernel config says otherwise"
                    ),
                ),
                (None, Some(v)) => Verdict::unknown(
                    DecidedBy::Version,
                    format!(
                        "{probe_note}kernel {v} is new enough, but PSI may be compiled out or disabled at boot"
                    ),
                ),
                (None, None) => Verdict::unknown(
                    DecidedBy::Version,
                    format!(
                        "{probe_note}neither the kernel config nor the kernel version is known"
                    ),
                ),
            }
        }
    };
    PsiFacts {
        verdict,
        config_psi,
        config_default_disabled,
        cmdline_psi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> KernelConfig {
        KernelConfig::parse("/boot/config", text)
    }

    #[test]
    fn readable_pressure_beats_an_old_version() {
        let v = KernelVersion::parse("4.18.0-513.el8.x86_64").unwrap();
        let c = cfg("CONFIG_PSI=y\nCONFIG_PSI_DEFAULT_DISABLED=y\n");
        let cmd = KernelCmdline::parse("psi=1");
        let f = assess_psi(&PressureProbe::Readable, Some(&c), Some(&cmd), Some(&v));
        assert_eq!(f.verdict.available, Some(true));
        assert_eq!(f.verdict.decided_by, DecidedBy::Probe);
        assert!(
            f.verdict.reason.contains("backported"),
            "{}",
            f.verdict.reason
        );
        assert!(f.verdict.reason.contains("psi=1"), "{}", f.verdict.reason);
    }

    #[test]
    fn absent_pressure_beats_a_new_version_and_explains_why() {
        let v = KernelVersion::parse("6.8.0-45-generic").unwrap();
        let cases = [
            ("CONFIG_PSI=y\n", "psi=0", "booted with psi=0"),
            ("# CONFIG_PSI is not set\n", "", "CONFIG_PSI is not set"),
            (
                "CONFIG_PSI=y\nCONFIG_PSI_DEFAULT_DISABLED=y\n",
                "",
                "CONFIG_PSI_DEFAULT_DISABLED=y",
            ),
        ];
        for (config, cmdline, want) in cases {
            let c = cfg(config);
            let cmd = KernelCmdline::parse(cmdline);
            let f = assess_psi(&PressureProbe::Absent, Some(&c), Some(&cmd), Some(&v));
            assert_eq!(f.verdict.available, Some(false), "{config}");
            assert_eq!(f.verdict.decided_by, DecidedBy::Probe);
            assert!(f.verdict.reason.contains(want), "{}", f.verdict.reason);
        }
    }

    #[test]
    fn without_proc_config_then_version_decide() {
        let new = KernelVersion::parse("6.1").unwrap();
        let old = KernelVersion::parse("4.19").unwrap();
        let on = cfg("CONFIG_PSI=y\n");
        let dd = cfg("CONFIG_PSI=y\nCONFIG_PSI_DEFAULT_DISABLED=y\n");
        let p = PressureProbe::NoProc;
        let f = assess_psi(&p, Some(&on), None, Some(&old));
        assert_eq!(
            (f.verdict.available, f.verdict.decided_by),
            (Some(true), DecidedBy::Config)
        );
        let f = assess_psi(&p, Some(&dd), None, Some(&new));
        assert_eq!(
            (f.verdict.available, f.verdict.decided_by),
            (Some(false), DecidedBy::Config)
        );
        let psi1 = KernelCmdline::parse("psi=1");
        let f = assess_psi(&p, Some(&dd), Some(&psi1), Some(&new));
        assert_eq!(f.verdict.available, Some(true));
        let f = assess_psi(&p, None, None, Some(&old));
        assert_eq!(
            (f.verdict.available, f.verdict.decided_by),
            (Some(false), DecidedBy::Version)
        );
        let f = assess_psi(&p, None, None, Some(&new));
        assert_eq!(
            (f.verdict.available, f.verdict.decided_by),
            (None, DecidedBy::Version)
        );
        let f = assess_psi(&p, None, None, None);
        assert_eq!(f.verdict.available, None);
    }

    #[test]
    fn garbage_pressure_file_is_a_failed_probe() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/pressure")).unwrap();
        for f in PRESSURE_FILES {
            std::fs::write(dir.path().join("proc/pressure").join(f), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        }
        let root = HostRoot::new(dir.path());
        assert_eq!(probe_pressure(&root), PressureProbe::Readable);
        std::fs::write(dir.path().join("proc/pressure/io"), "garbage\n").unwrap();
        match probe_pressure(&root) {
            PressureProbe::Failed(d) => assert!(d.contains("proc/pressure/io"), "{d}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(dir.path().join("proc/pressure/io")).unwrap();
        assert_eq!(probe_pressure(&root), PressureProbe::Absent);
    }
}
