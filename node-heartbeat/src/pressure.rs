//! Eviction thresholds (`evictionHard`) and the memory/disk/PID pressure they signal, observed
//! on a configurable root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::machine::{FsStats, PidStats, meminfo_field};

/// Eviction signals the kubelet knows (`evictionHard` keys).
pub const SIGNALS: [&str; 9] = [
    "memory.available",
    "allocatableMemory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "containerfs.available",
    "containerfs.inodesFree",
    "pid.available",
];

/// A threshold value: an absolute quantity or a fraction of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    /// Bytes, inodes or PIDs.
    Quantity(i128),
    /// A fraction of capacity (`10%` is 0.1).
    Percentage(f32),
}

impl ThresholdValue {
    /// The threshold in absolute units for a given capacity.
    pub fn resolve(&self, capacity: u64) -> i128 {
        match self {
            ThresholdValue::Quantity(q) => *q,
            #[expect(
                clippy::cast_possible_truncation,
                reason = "the kubelet's truncation; `p` is in 0..=1, so at most a u64 capacity, \
                          which fits in i128"
            )]
            ThresholdValue::Percentage(p) => (capacity as f64 * f64::from(*p)) as i128,
        }
    }
}

/// Parsed hard eviction thresholds (operator is always "less than").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvictionThresholds {
    thresholds: BTreeMap<String, ThresholdValue>,
}

impl EvictionThresholds {
    /// Parses an `evictionHard` map such as `{"memory.available": "100Mi", "nodefs.available": "10%"}`.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Self> {
        let mut thresholds = BTreeMap::new();
        for (k, v) in map {
            let err = |reason: &str| Error::EvictionThreshold {
                key: k.clone(),
                value: v.clone(),
                reason: reason.to_owned(),
            };
            if !SIGNALS.contains(&k.as_str()) {
                return Err(err("unsupported eviction signal"));
            }
            let value = if let Some(p) = v.strip_suffix('%') {
                let p: f32 = p
                    .trim()
                    .parse()
                    .map_err(|_| err("expected a percentage like 10%"))?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(err("percentage must be between 0% and 100%"));
                }
                ThresholdValue::Percentage(p / 100.0)
            } else {
                let q = node_config::Quantity::parse(v)
                    .map_err(|_| err("expected a quantity like 100Mi or a percentage"))?;
                if q.value() < 0.0 {
                    return Err(err("must be non-negative"));
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "a quantity is finite and at most 2^63: it fits in i128"
                )]
                ThresholdValue::Quantity(q.value().ceil() as i128)
            };
            thresholds.insert(k.clone(), value);
        }
        Ok(EvictionThresholds { thresholds })
    }

    /// The threshold for a signal.
    pub fn get(&self, signal: &str) -> Option<&ThresholdValue> {
        self.thresholds.get(signal)
    }
}

/// One observation of a signal: what is available out of what capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Available amount.
    pub available: u64,
    /// Capacity (for percentage thresholds).
    pub capacity: u64,
}

/// The observed signals at one point in time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// Signal name -> observation.
    pub signals: BTreeMap<String, Observation>,
}

/// Where the pressure signals are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalSources {
    /// Root of `/proc` (the node's `/`, or a fixture).
    pub root: PathBuf,
    /// The kubelet root dir's filesystem (`nodefs`), e.g. `/var/lib/kubelet`.
    pub nodefs: PathBuf,
    /// The runtime's image filesystem (`imagefs`); `None` when it shares nodefs.
    pub imagefs: Option<PathBuf>,
}

impl SignalSources {
    /// Observes memory (`MemAvailable` of `MemTotal`; the kubelet uses capacity minus the root
    /// cgroup working set, which MemAvailable approximates without cgroup access), nodefs and
    /// imagefs bytes and inodes (`statvfs`), and PIDs (`pid_max` minus existing processes).
    pub fn observe(&self) -> Result<Observations> {
        let mut signals = BTreeMap::new();
        let total = meminfo_field(&self.root, "MemTotal")?;
        let avail = meminfo_field(&self.root, "MemAvailable")?;
        signals.insert(
            "memory.available".to_owned(),
            Observation {
                available: avail,
                capacity: total,
            },
        );
        let nodefs = FsStats::of(&self.nodefs)?;
        let imagefs = match &self.imagefs {
            Some(p) => FsStats::of(p)?,
            None => nodefs,
        };
        for (prefix, fs) in [
            ("nodefs", nodefs),
            ("imagefs", imagefs),
            ("containerfs", imagefs),
        ] {
            signals.insert(
                format!("{prefix}.available"),
                Observation {
                    available: fs.available_bytes,
                    capacity: fs.capacity_bytes,
                },
            );
            signals.insert(
                format!("{prefix}.inodesFree"),
                Observation {
                    available: fs.inodes_free,
                    capacity: fs.inodes,
                },
            );
        }
        let pids = PidStats::read(&self.root)?;
        signals.insert(
            "pid.available".to_owned(),
            Observation {
                available: pids.max.saturating_sub(pids.running),
                capacity: pids.max,
            },
        );
        Ok(Observations { signals })
    }
}

/// Which pressure conditions hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// `memory.available` below its threshold.
    pub memory: bool,
    /// Any nodefs/imagefs/containerfs threshold met.
    pub disk: bool,
    /// `pid.available` below its threshold.
    pub pid: bool,
}

/// The signals met by `obs` under `thresholds`.
pub fn thresholds_met(thresholds: &EvictionThresholds, obs: &Observations) -> Vec<String> {
    let mut met = Vec::new();
    for (signal, th) in &thresholds.thresholds {
        if let Some(o) = obs.signals.get(signal)
            && i128::from(o.available) < th.resolve(o.capacity)
        {
            met.push(signal.clone());
        }
    }
    met
}

fn pressure_of(met: &[String]) -> Pressure {
    Pressure {
        memory: met
            .iter()
            .any(|s| s.starts_with("memory.") || s.starts_with("allocatableMemory.")),
        disk: met.iter().any(|s| {
            s.starts_with("nodefs.") || s.starts_with("imagefs.") || s.starts_with("containerfs.")
        }),
        pid: met.iter().any(|s| s.starts_with("pid.")),
    }
}

/// Tracks pressure over time: a condition stays on for `evictionPressureTransitionPeriod`
/// (5 min by default) after its threshold was last met, as the eviction manager does.
#[derive(Debug, Clone)]
pub struct PressureTracker {
    thresholds: EvictionThresholds,
    transition_period: Duration,
    last_memory: Option<Instant>,
    last_disk: Option<Instant>,
    last_pid: Option<Instant>,
}

impl PressureTracker {
    /// A tracker for the given thresholds and transition period.
    pub fn new(thresholds: EvictionThresholds, transition_period: Duration) -> Self {
        PressureTracker {
            thresholds,
            transition_period,
            last_memory: None,
            last_disk: None,
            last_pid: None,
        }
    }

    /// Feeds one observation taken at `now`; returns the pressure to report.
    pub fn observe(&mut self, obs: &Observations, now: Instant) -> Pressure {
        let seen = pressure_of(&thresholds_met(&self.thresholds, obs));
        let period = self.transition_period;
        let step = |flag: bool, last: &mut Option<Instant>| {
            if flag {
                *last = Some(now);
            }
            last.is_some_and(|t| now.saturating_duration_since(t) < period || flag)
        };
        Pressure {
            memory: step(seen.memory, &mut self.last_memory),
            disk: step(seen.disk, &mut self.last_disk),
            pid: step(seen.pid, &mut self.last_pid),
        }
    }
}

/// Observes `sources` from `root`; a helper for callers that only have paths.
pub fn observe_root(root: &Path, nodefs: &Path) -> Result<Observations> {
    SignalSources {
        root: root.to_path_buf(),
        nodefs: nodefs.to_path_buf(),
        imagefs: None,
    }
    .observe()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(mem: u64, pid_avail: u64) -> Observations {
        let mut signals = BTreeMap::new();
        signals.insert(
            "memory.available".into(),
            Observation {
                available: mem,
                capacity: 8 << 30,
            },
        );
        signals.insert(
            "nodefs.available".into(),
            Observation {
                available: 50 << 30,
                capacity: 100 << 30,
            },
        );
        signals.insert(
            "nodefs.inodesFree".into(),
            Observation {
                available: 1000,
                capacity: 1_000_000,
            },
        );
        signals.insert(
            "pid.available".into(),
            Observation {
                available: pid_avail,
                capacity: 32768,
            },
        );
        Observations { signals }
    }

    #[test]
    fn parse_and_meet() {
        let th = EvictionThresholds::parse(&node_config::default_eviction_hard()).unwrap();
        assert_eq!(
            th.get("memory.available"),
            Some(&ThresholdValue::Quantity(100 << 20))
        );
        assert_eq!(
            th.get("nodefs.available"),
            Some(&ThresholdValue::Percentage(0.1))
        );
        // inodesFree 1000 of 1M < 5% -> disk pressure; memory fine.
        let met = thresholds_met(&th, &obs(1 << 30, 30000));
        assert_eq!(met, vec!["nodefs.inodesFree".to_owned()]);
        let bad = EvictionThresholds::parse(&[("memory.free".to_owned(), "1Gi".to_owned())].into())
            .unwrap_err();
        assert!(
            bad.to_string().contains("unsupported eviction signal"),
            "{bad}"
        );
        let bad =
            EvictionThresholds::parse(&[("memory.available".to_owned(), "150%".to_owned())].into())
                .unwrap_err();
        assert!(
            bad.to_string().contains("memory.available=\"150%\""),
            "{bad}"
        );
    }

    #[test]
    fn transition_period_holds_pressure() {
        let th = EvictionThresholds::parse(
            &[
                ("memory.available".to_owned(), "1Gi".to_owned()),
                ("pid.available".to_owned(), "1000".to_owned()),
            ]
            .into(),
        )
        .unwrap();
        let mut t = PressureTracker::new(th, Duration::from_secs(300));
        let t0 = Instant::now();
        let p = t.observe(&obs(512 << 20, 500), t0);
        assert_eq!(
            p,
            Pressure {
                memory: true,
                disk: false,
                pid: true
            }
        );
        let p = t.observe(&obs(4 << 30, 30000), t0 + Duration::from_secs(299));
        assert_eq!(
            p,
            Pressure {
                memory: true,
                disk: false,
                pid: true
            }
        );
        let p = t.observe(&obs(4 << 30, 30000), t0 + Duration::from_secs(300));
        assert_eq!(p, Pressure::default());
    }

    #[test]
    fn observes_fixture_and_real_root() {
        let dir = tempfile::tempdir().unwrap();
        crate::machine::tests::fixture_root(dir.path());
        let o = observe_root(dir.path(), dir.path()).unwrap();
        assert_eq!(
            o.signals["memory.available"],
            Observation {
                available: 4 << 30,
                capacity: 8 << 30
            }
        );
        assert_eq!(o.signals["pid.available"].available, 4194304 - 345);
        assert!(o.signals["nodefs.available"].capacity > 0);
        let real = observe_root(Path::new("/"), Path::new("/")).unwrap();
        let m = real.signals["memory.available"];
        assert!(m.available <= m.capacity && m.capacity > 0);
    }
}
