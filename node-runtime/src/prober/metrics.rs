//! The kubelet's probe metrics, served on `/metrics/probes` (`pkg/kubelet/prober/prober_manager.go`
//! `ProberResults`, `ProberDuration`; counted in `worker.go` `doProbe`):
//!
//! - `prober_probe_total` (counter, ALPHA) by `probe_type` (`Liveness`, `Readiness`,
//!   `Startup`), `result` (`successful`, `failed`, `unknown`), `container`, `pod`,
//!   `namespace`, `pod_uid`: one per probe run; a run that errored counts nowhere (its result
//!   is thrown away);
//! - `prober_probe_duration_seconds` (histogram, ALPHA, the default buckets) by `probe_type`,
//!   `container`, `pod`, `namespace`: the time of each successful run.
//!
//! A worker's series go away when the worker does, as the kubelet deletes them. Rendered in
//! the Prometheus text format 0.0.4 ([`ProbeMetrics::render`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::spec::ProbeKind;

/// Prometheus' default histogram buckets (`prometheus.DefBuckets`), in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a probe run ended, as the `result` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunResult {
    /// `successful` (a warning counts as success).
    Successful,
    /// `failed`.
    Failed,
    /// `unknown`.
    Unknown,
}

impl RunResult {
    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// Which worker a series belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeSeries {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The container's name.
    pub container: String,
    /// The probe.
    pub kind: ProbeKind,
}

#[derive(Debug, Default, Clone)]
struct Counts {
    runs: BTreeMap<RunResult, u64>,
    /// Per bucket of [`DEFAULT_BUCKETS`] (not cumulative), then the total and the sum.
    buckets: [u64; DEFAULT_BUCKETS.len()],
    observed: u64,
    sum: f64,
}

/// The probe metrics of one prober; clones share the same counts.
#[derive(Debug, Clone, Default)]
pub struct ProbeMetrics {
    series: Arc<Mutex<BTreeMap<ProbeSeries, Counts>>>,
}

fn kind_label(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Liveness => "Liveness",
        ProbeKind::Readiness => "Readiness",
        ProbeKind::Startup => "Startup",
    }
}

use crate::stats::metrics::{escape_label_value, go_float as number};

impl ProbeMetrics {
    /// Counts one probe run; `took` is observed in the histogram for a successful run.
    pub fn observe(&self, series: &ProbeSeries, result: RunResult, took: Duration) {
        let mut map = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = map.entry(series.clone()).or_default();
        let n = counts.runs.entry(result).or_default();
        *n = n.saturating_add(1);
        if result == RunResult::Successful {
            let secs = took.as_secs_f64();
            if let Some(i) = DEFAULT_BUCKETS.iter().position(|b| secs <= *b) {
                counts.buckets[i] = counts.buckets[i].saturating_add(1);
            }
            counts.observed = counts.observed.saturating_add(1);
            counts.sum += secs;
        }
    }

    /// Drops a worker's series (it stopped).
    pub fn remove(&self, series: &ProbeSeries) {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(series);
    }

    /// Number of series (workers with at least one counted run).
    #[must_use]
    pub fn len(&self) -> usize {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no run was counted (or every worker is gone).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text format 0.0.4 body: families sorted by name, label names sorted, as the
    /// kubelet's registry writes them.
    #[must_use]
    pub fn render(&self) -> String {
        let map = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        if map.values().any(|c| c.observed > 0) {
            out.push_str(
                "# HELP prober_probe_duration_seconds [ALPHA] Duration in seconds for a probe response.\n\
                 # TYPE prober_probe_duration_seconds histogram\n",
            );
            for (s, c) in map.iter().filter(|(_, c)| c.observed > 0) {
                let labels = format!(
                    "container=\"{}\",namespace=\"{}\",pod=\"{}\",probe_type=\"{}\"",
                    escape_label_value(&s.container),
                    escape_label_value(&s.namespace),
                    escape_label_value(&s.pod),
                    kind_label(s.kind)
                );
                let mut cumulative = 0u64;
                for (bound, n) in DEFAULT_BUCKETS.iter().zip(c.buckets) {
                    cumulative = cumulative.saturating_add(n);
                    let _ = writeln!(
                        out,
                        "prober_probe_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                        number(*bound)
                    );
                }
                let _ = writeln!(
                    out,
                    "prober_probe_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    c.observed
                );
                let _ = writeln!(
                    out,
                    "prober_probe_duration_seconds_sum{{{labels}}} {}",
                    number(c.sum)
                );
                let _ = writeln!(
                    out,
                    "prober_probe_duration_seconds_count{{{labels}}} {}",
                    c.observed
                );
            }
        }
        if !map.is_empty() {
            out.push_str(
                "# HELP prober_probe_total [ALPHA] Cumulative number of a liveness, readiness or startup probe for a container by result.\n\
                 # TYPE prober_probe_total counter\n",
            );
            for (s, c) in &map {
                for (result, n) in &c.runs {
                    let _ = writeln!(
                        out,
                        "prober_probe_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\",pod_uid=\"{}\",probe_type=\"{}\",result=\"{}\"}} {n}",
                        escape_label_value(&s.container),
                        escape_label_value(&s.namespace),
                        escape_label_value(&s.pod),
                        escape_label_value(&s.pod_uid),
                        kind_label(s.kind),
                        result.label()
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(kind: ProbeKind) -> ProbeSeries {
        ProbeSeries {
            namespace: "default".into(),
            pod: "web \"1\"".into(),
            pod_uid: "u-1".into(),
            container: "app".into(),
            kind,
        }
    }

    #[test]
    fn runs_are_counted_by_result_and_successes_timed() {
        let m = ProbeMetrics::default();
        assert_eq!(m.render(), "");
        let r = series(ProbeKind::Readiness);
        m.observe(&r, RunResult::Successful, Duration::from_millis(3));
        m.observe(&r, RunResult::Successful, Duration::from_millis(30));
        m.observe(&r, RunResult::Failed, Duration::from_secs(1));
        m.observe(
            &series(ProbeKind::Liveness),
            RunResult::Failed,
            Duration::ZERO,
        );
        let text = m.render();
        let labels = "container=\"app\",namespace=\"default\",pod=\"web \\\"1\\\"\",probe_type=\"Readiness\"";
        for line in [
            "# TYPE prober_probe_duration_seconds histogram".to_owned(),
            format!("prober_probe_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"),
            format!("prober_probe_duration_seconds_bucket{{{labels},le=\"0.025\"}} 1"),
            format!("prober_probe_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2"),
            format!("prober_probe_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"),
            format!("prober_probe_duration_seconds_count{{{labels}}} 2"),
            "# TYPE prober_probe_total counter".to_owned(),
            "prober_probe_total{container=\"app\",namespace=\"default\",pod=\"web \\\"1\\\"\",pod_uid=\"u-1\",probe_type=\"Readiness\",result=\"successful\"} 2".to_owned(),
            "prober_probe_total{container=\"app\",namespace=\"default\",pod=\"web \\\"1\\\"\",pod_uid=\"u-1\",probe_type=\"Readiness\",result=\"failed\"} 1".to_owned(),
            "prober_probe_total{container=\"app\",namespace=\"default\",pod=\"web \\\"1\\\"\",pod_uid=\"u-1\",probe_type=\"Liveness\",result=\"failed\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        // The liveness worker had no success: no histogram series for it.
        assert!(!text.contains("probe_type=\"Liveness\"}"), "{text}");
        m.remove(&r);
        assert!(!m.render().contains("Readiness"));
        assert_eq!(m.len(), 1);
    }
}
