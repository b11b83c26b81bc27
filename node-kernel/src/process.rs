//! The Prometheus client libraries' standard process metrics (`process_cpu_seconds_total`,
//! `process_virtual_memory_bytes`, `process_resident_memory_bytes`,
//! `process_start_time_seconds`, `process_open_fds`), read from `/proc/self` below a
//! [`HostRoot`] at each scrape, as a `prometheus_client` collector.
//!
//! ```
//! let mut registry = prometheus_client::registry::Registry::default();
//! registry.register_collector(Box::new(node_kernel::ProcessCollector::new(node_kernel::HostRoot::live())));
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("process_resident_memory_bytes "));
//! # Ok::<(), std::fmt::Error>(())
//! ```

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::root::HostRoot;

/// Process metrics of the calling process. A file that cannot be read leaves its metrics out
/// of the scrape.
#[derive(Debug, Clone)]
pub struct ProcessCollector {
    root: HostRoot,
}

impl ProcessCollector {
    /// Reads `<root>/proc/self/{stat,fd}` and `<root>/proc/stat`.
    pub fn new(root: HostRoot) -> Self {
        Self { root }
    }
}

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
struct ProcessFacts {
    cpu_seconds: Option<f64>,
    virtual_bytes: Option<f64>,
    resident_bytes: Option<f64>,
    start_time: Option<f64>,
    open_fds: Option<f64>,
}

/// Parses `/proc/self/stat` (and `btime` of `/proc/stat`) with `ticks` per second (USER_HZ)
/// and `page` bytes per page.
fn parse_stat(stat: &str, proc_stat: Option<&str>, ticks: f64, page: f64) -> ProcessFacts {
    let mut facts = ProcessFacts::default();
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return facts;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime = field 14, stime = 15, starttime = 22, vsize = 23, rss = 24 (1-based); `f[0]` is
    // field 3.
    if let (Some(utime), Some(stime)) = (num(11), num(12)) {
        facts.cpu_seconds = Some((utime + stime) / ticks);
    }
    facts.virtual_bytes = num(20);
    facts.resident_bytes = num(21).map(|rss| rss * page);
    let boot = proc_stat
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")))
        .and_then(|b| b.trim().parse::<f64>().ok());
    if let (Some(start), Some(boot)) = (num(19), boot) {
        facts.start_time = Some(boot + start / ticks);
    }
    facts
}

impl ProcessCollector {
    /// `/proc/self/stat` and `/proc/stat` as read now.
    fn facts(&self) -> ProcessFacts {
        // Clock ticks per second and the page size, with Linux's usual values as the fallback
        // when sysconf cannot say.
        let sysconf = |var, fallback: f64| {
            nix::unistd::sysconf(var)
                .ok()
                .flatten()
                .map_or(fallback, |v| v as f64)
        };
        let ticks = sysconf(nix::unistd::SysconfVar::CLK_TCK, 100.0);
        let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE, 4096.0);
        match self.root.read("proc/self/stat") {
            Ok(stat) => parse_stat(
                &stat,
                self.root.read("proc/stat").ok().as_deref(),
                ticks,
                page,
            ),
            Err(_) => ProcessFacts::default(),
        }
    }

    /// The process's start time, Unix seconds (`process_start_time_seconds`), when readable.
    #[must_use]
    pub fn start_time(&self) -> Option<f64> {
        self.facts().start_time
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut facts = self.facts();
        if let Ok(dir) = std::fs::read_dir(self.root.join("proc/self/fd")) {
            facts.open_fds = Some(dir.count() as f64);
        }
        if let Some(v) = facts.cpu_seconds {
            let counter = ConstCounter::new(v);
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(m)?;
        }
        for (name, help, value) in [
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                facts.virtual_bytes,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                facts.resident_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                facts.start_time,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                facts.open_fds,
            ),
        ] {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v);
                let m = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(m)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces() {
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 8192000 300 18446744073709551615";
        let facts = parse_stat(stat, Some("cpu 1 2 3\nbtime 1700000000\n"), 100.0, 4096.0);
        assert_eq!(facts.cpu_seconds, Some(3.0));
        assert_eq!(facts.virtual_bytes, Some(8_192_000.0));
        assert_eq!(facts.resident_bytes, Some(300.0 * 4096.0));
        assert_eq!(facts.start_time, Some(1_700_000_010.0));
        assert_eq!(
            parse_stat("garbage", None, 100.0, 4096.0),
            ProcessFacts::default()
        );
    }

    #[test]
    fn a_missing_proc_leaves_the_metrics_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector::new(HostRoot::new(dir.path()))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("process_"), "{text}");
    }
}
