//! `GET /metrics`: Prometheus text exposition (format 0.0.4) with the kubelet's metric names
//! where a kubelet metric means the same thing, `node_agent_*` where it does not, and the
//! standard `process_*` metrics read from `/proc/self`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use node_runtime::{ContainerState, PodInfo, PodPhase};

/// Counters and gauges the agent's loops update.
#[derive(Debug, Default)]
pub struct Metrics {
    started_pods: AtomicU64,
    started_containers: AtomicU64,
    sync_errors: AtomicU64,
    listing_errors: AtomicU64,
    sync_passes: AtomicU64,
    sync_nanos: AtomicU64,
    startup_millis: AtomicU64,
    shutdown_start: AtomicU64,
    shutdown_end: AtomicU64,
}

impl Metrics {
    /// Records one pod sync pass.
    pub fn record_sync(&self, report: &node_runtime::SyncReport, took: Duration) {
        self.started_pods
            .fetch_add(report.sandboxes_created.len() as u64, Ordering::Relaxed);
        self.started_containers
            .fetch_add(report.containers_started.len() as u64, Ordering::Relaxed);
        self.sync_errors
            .fetch_add(report.errors.len() as u64, Ordering::Relaxed);
        if report.listing_error.is_some() {
            self.listing_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.sync_passes.fetch_add(1, Ordering::Relaxed);
        self.sync_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records how long startup took until READY.
    pub fn record_startup(&self, took: Duration) {
        self.startup_millis.store(
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records the last graceful shutdown's start and end (Unix seconds; 0 = none).
    pub fn record_shutdown(&self, start: u64, end: u64) {
        self.shutdown_start.store(start, Ordering::Relaxed);
        self.shutdown_end.store(end, Ordering::Relaxed);
    }

    /// The exposition text for the current state.
    pub fn render(&self, node_name: &str, pods: &[PodInfo]) -> String {
        let mut out = String::with_capacity(4096);
        gauge(
            &mut out,
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            &[(format!("node=\"{}\"", escape(node_name)), 1.0)],
        );
        let running_pods = pods
            .iter()
            .filter(|p| p.sandbox_id.is_some() && p.phase != PodPhase::Succeeded)
            .count();
        gauge(
            &mut out,
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            &[(String::new(), running_pods as f64)],
        );
        let mut by_state = [
            ("created", 0u64),
            ("running", 0),
            ("exited", 0),
            ("unknown", 0),
        ];
        for c in pods.iter().flat_map(|p| &p.containers) {
            let slot = match &c.state {
                ContainerState::Running { .. } => 1,
                ContainerState::Terminated { .. } => 2,
                ContainerState::Waiting { .. } if c.container_id.is_some() => 0,
                ContainerState::Waiting { .. } => continue,
            };
            by_state[slot].1 += 1;
        }
        let samples: Vec<(String, f64)> = by_state
            .iter()
            .map(|(s, n)| (format!("container_state=\"{s}\""), *n as f64))
            .collect();
        gauge(
            &mut out,
            "kubelet_running_containers",
            "Number of containers currently running",
            &samples,
        );
        counter(
            &mut out,
            "kubelet_started_pods_total",
            "Cumulative number of pods started",
            self.started_pods.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "kubelet_started_containers_total",
            "Cumulative number of containers started",
            self.started_containers.load(Ordering::Relaxed) as f64,
        );
        let startup = self.startup_millis.load(Ordering::Relaxed);
        if startup > 0 {
            gauge(
                &mut out,
                "kubelet_node_startup_duration_seconds",
                "Duration in seconds of node startup in total.",
                &[(String::new(), startup as f64 / 1000.0)],
            );
        }
        let (start, end) = (
            self.shutdown_start.load(Ordering::Relaxed),
            self.shutdown_end.load(Ordering::Relaxed),
        );
        if start > 0 {
            gauge(
                &mut out,
                "kubelet_graceful_shutdown_start_time_seconds",
                "Last graceful shutdown start time since unix epoch in seconds",
                &[(String::new(), start as f64)],
            );
            gauge(
                &mut out,
                "kubelet_graceful_shutdown_end_time_seconds",
                "Last graceful shutdown end time since unix epoch in seconds",
                &[(String::new(), end as f64)],
            );
        }
        counter(
            &mut out,
            "node_agent_static_pod_listing_errors_total",
            "Manifest scans that could not list staticPodPath (an error other than a missing path); the pods of the last good listing were kept",
            self.listing_errors.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "node_agent_pod_sync_passes_total",
            "Pod sync passes run (the kubelet's sync loop iterations)",
            self.sync_passes.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "node_agent_pod_sync_errors_total",
            "Errors reported by pod sync passes",
            self.sync_errors.load(Ordering::Relaxed) as f64,
        );
        counter(
            &mut out,
            "node_agent_pod_sync_duration_seconds_total",
            "Time spent in pod sync passes",
            self.sync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        );
        process_metrics(&mut out);
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    header(out, name, help, "gauge");
    for (labels, value) in samples {
        sample(out, name, labels, *value);
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, help, "counter");
    sample(out, name, "", value);
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus client libraries' standard process metrics, from `/proc/self`.
fn process_metrics(out: &mut String) {
    // Clock ticks per second (USER_HZ) and the page size, with Linux's usual values as the
    // fallback when sysconf cannot say.
    let sysconf = |var, fallback: f64| {
        nix::unistd::sysconf(var)
            .ok()
            .flatten()
            .map_or(fallback, |v| v as f64)
    };
    let ticks = sysconf(nix::unistd::SysconfVar::CLK_TCK, 100.0);
    let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE, 4096.0);
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start at state (field 3).
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            // utime = field 14, stime = 15, starttime = 22, vsize = 23, rss = 24 (1-based);
            // `f[0]` is field 3.
            if let (Some(utime), Some(stime)) = (num(11), num(12)) {
                counter(
                    out,
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    (utime + stime) / ticks,
                );
            }
            if let Some(vsize) = num(20) {
                gauge(
                    out,
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    &[(String::new(), vsize)],
                );
            }
            if let Some(rss) = num(21) {
                gauge(
                    out,
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    &[(String::new(), rss * page)],
                );
            }
            if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                gauge(
                    out,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    &[(String::new(), boot + start / ticks)],
                );
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            &[(String::new(), dir.count() as f64)],
        );
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime = stat.lines().find_map(|l| l.strip_prefix("btime "))?;
    btime.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use node_runtime::{ContainerInfo, ContainerKind};

    use super::*;

    #[test]
    fn exposition_has_kubelet_names_and_process_metrics() {
        let m = Metrics::default();
        let report = node_runtime::SyncReport {
            sandboxes_created: vec!["default/a".into()],
            containers_started: vec!["default/a/c".into()],
            ..Default::default()
        };
        m.record_sync(&report, Duration::from_millis(5));
        let pod = PodInfo {
            namespace: "default".into(),
            name: "a-node".into(),
            uid: "u".into(),
            manifest: PathBuf::from("/x.yaml"),
            sandbox_id: Some("s".into()),
            phase: PodPhase::Running,
            reason: None,
            message: None,
            conditions: vec![],
            containers: vec![ContainerInfo {
                name: "c".into(),
                kind: ContainerKind::Regular,
                container_id: Some("id".into()),
                image: "busybox".into(),
                state: ContainerState::Running { started_at: 1 },
                restart_count: 0,
                ready: true,
                log_path: None,
            }],
        };
        let text = m.render("node\"1", &[pod]);
        assert!(
            text.contains("kubelet_node_name{node=\"node\\\"1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"running\"} 1\n"));
        assert!(text.contains("kubelet_started_pods_total 1\n"));
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
        assert!(text.contains("process_cpu_seconds_total "));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit_once(' ').unwrap().1;
            value.parse::<f64>().unwrap();
        }
    }
}
