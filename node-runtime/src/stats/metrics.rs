//! `/metrics/resource`: the kubelet's resource metrics in the Prometheus text format 0.0.4,
//! byte for byte as the kubelet's registry writes them.
//!
//! The kubelet's collector sends node, then per-pod container and pod samples; its registry
//! (client_golang's `Gather`) then groups them into families sorted by name, orders each
//! family's samples by their label values (labels sorted by name: `container`, `namespace`,
//! `pod`), and writes a family only when it has samples. Help texts carry the stability
//! level as component-base prints it (`[STABLE] ...`, `[ALPHA] ...`). Values are Go's
//! shortest `%g` (`1.2537856e+07`), timestamps whole milliseconds of the sample times. The
//! deprecated `scrape_error` is hidden in 1.35 and not written; `resource_scrape_error` is 1
//! when the summary could not be made.

use std::fmt::Write as _;

use super::types::{ContainerStats, PodStats, Summary, Time};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Desc {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

const NODE_CPU: Desc = Desc {
    name: "node_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    kind: Kind::Counter,
};
const NODE_MEMORY: Desc = Desc {
    name: "node_memory_working_set_bytes",
    help: "[STABLE] Current working set of the node in bytes",
    kind: Kind::Gauge,
};
const NODE_SWAP: Desc = Desc {
    name: "node_swap_usage_bytes",
    help: "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
    kind: Kind::Gauge,
};
const CONTAINER_CPU: Desc = Desc {
    name: "container_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    kind: Kind::Counter,
};
const CONTAINER_MEMORY: Desc = Desc {
    name: "container_memory_working_set_bytes",
    help: "[STABLE] Current working set of the container in bytes",
    kind: Kind::Gauge,
};
const CONTAINER_SWAP: Desc = Desc {
    name: "container_swap_usage_bytes",
    help: "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
    kind: Kind::Gauge,
};
const CONTAINER_SWAP_LIMIT: Desc = Desc {
    name: "container_swap_limit_bytes",
    help: "[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems",
    kind: Kind::Gauge,
};
const CONTAINER_START: Desc = Desc {
    name: "container_start_time_seconds",
    help: "[STABLE] Start time of the container since unix epoch in seconds",
    kind: Kind::Gauge,
};
const POD_CPU: Desc = Desc {
    name: "pod_cpu_usage_seconds_total",
    help: "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    kind: Kind::Counter,
};
const POD_MEMORY: Desc = Desc {
    name: "pod_memory_working_set_bytes",
    help: "[STABLE] Current working set of the pod in bytes",
    kind: Kind::Gauge,
};
const POD_SWAP: Desc = Desc {
    name: "pod_swap_usage_bytes",
    help: "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
    kind: Kind::Gauge,
};
const SCRAPE_ERROR: Desc = Desc {
    name: "resource_scrape_error",
    help: "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
    kind: Kind::Gauge,
};

/// One sample: label values in label-name order, the value, the optional timestamp.
struct Sample {
    labels: Vec<(&'static str, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// Samples gathered per family.
#[derive(Default)]
struct Gathered {
    families: Vec<(&'static Desc, Vec<Sample>)>,
}

impl Gathered {
    fn push(&mut self, desc: &'static Desc, sample: Sample) {
        match self.families.iter_mut().find(|(d, _)| d.name == desc.name) {
            Some((_, samples)) => samples.push(sample),
            None => self.families.push((desc, vec![sample])),
        }
    }

    fn render(mut self) -> String {
        self.families.sort_by(|a, b| a.0.name.cmp(b.0.name));
        let mut out = String::new();
        for (desc, mut samples) in self.families {
            samples.sort_by(|a, b| {
                let va = a.labels.iter().map(|(_, v)| v);
                let vb = b.labels.iter().map(|(_, v)| v);
                va.cmp(vb).then(a.timestamp_ms.cmp(&b.timestamp_ms))
            });
            // The registry refuses a second sample with the same labels: keep the first.
            samples.dedup_by(|b, a| a.labels == b.labels);
            let kind = match desc.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", desc.name, escape_help(desc.help));
            let _ = writeln!(out, "# TYPE {} {kind}", desc.name);
            for s in samples {
                out.push_str(desc.name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (name, value)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
                    }
                    out.push('}');
                }
                out.push(' ');
                out.push_str(&go_float(s.value));
                if let Some(ts) = s.timestamp_ms {
                    let _ = write!(out, " {ts}");
                }
                out.push('\n');
            }
        }
        out
    }
}

fn container_labels(pod: &PodStats, c: &ContainerStats) -> Vec<(&'static str, String)> {
    vec![
        ("container", c.name.clone()),
        ("namespace", pod.pod_ref.namespace.clone()),
        ("pod", pod.pod_ref.name.clone()),
    ]
}

fn pod_labels(pod: &PodStats) -> Vec<(&'static str, String)> {
    vec![
        ("namespace", pod.pod_ref.namespace.clone()),
        ("pod", pod.pod_ref.name.clone()),
    ]
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn at(time: Time) -> Option<i64> {
    Some(time.millis())
}

/// The `/metrics/resource` body for a summary (`Ok`, made with only CPU and memory or in
/// full), or for a failed one (`None`: only `resource_scrape_error 1`).
#[must_use]
pub fn render_resource_metrics(summary: Option<&Summary>) -> String {
    let mut g = Gathered::default();
    let Some(summary) = summary else {
        g.push(
            &SCRAPE_ERROR,
            Sample {
                labels: Vec::new(),
                value: 1.0,
                timestamp_ms: None,
            },
        );
        return g.render();
    };
    let node = &summary.node;
    if let Some(cpu) = &node.cpu
        && let Some(v) = cpu.usage_core_nano_seconds
    {
        g.push(&NODE_CPU, unlabelled(seconds(v), cpu.time));
    }
    if let Some(mem) = &node.memory
        && let Some(v) = mem.working_set_bytes
    {
        g.push(&NODE_MEMORY, unlabelled(v as f64, mem.time));
    }
    if let Some(swap) = &node.swap
        && let Some(v) = swap.swap_usage_bytes
    {
        // The kubelet stamps the node's swap with the memory sample's time.
        let time = node.memory.as_ref().map_or(swap.time, |m| m.time);
        g.push(&NODE_SWAP, unlabelled(v as f64, time));
    }
    for pod in &summary.pods {
        for c in &pod.containers {
            if c.start_time.nanos().div_euclid(1_000_000_000) > 0 {
                g.push(
                    &CONTAINER_START,
                    Sample {
                        labels: container_labels(pod, c),
                        value: c.start_time.seconds_f64(),
                        timestamp_ms: None,
                    },
                );
            }
            if let Some(cpu) = &c.cpu
                && let Some(v) = cpu.usage_core_nano_seconds
            {
                g.push(
                    &CONTAINER_CPU,
                    labelled(container_labels(pod, c), seconds(v), cpu.time),
                );
            }
            if let Some(mem) = &c.memory
                && let Some(v) = mem.working_set_bytes
            {
                g.push(
                    &CONTAINER_MEMORY,
                    labelled(container_labels(pod, c), v as f64, mem.time),
                );
            }
            if let Some(swap) = &c.swap {
                if let Some(v) = swap.swap_usage_bytes {
                    g.push(
                        &CONTAINER_SWAP,
                        labelled(container_labels(pod, c), v as f64, swap.time),
                    );
                }
                if let Some(avail) = swap.swap_available_bytes {
                    let limit = avail as f64 + swap.swap_usage_bytes.unwrap_or(0) as f64;
                    g.push(
                        &CONTAINER_SWAP_LIMIT,
                        labelled(container_labels(pod, c), limit, swap.time),
                    );
                }
            }
        }
        if let Some(cpu) = &pod.cpu
            && let Some(v) = cpu.usage_core_nano_seconds
        {
            g.push(&POD_CPU, labelled(pod_labels(pod), seconds(v), cpu.time));
        }
        if let Some(mem) = &pod.memory
            && let Some(v) = mem.working_set_bytes
        {
            g.push(&POD_MEMORY, labelled(pod_labels(pod), v as f64, mem.time));
        }
        if let Some(swap) = &pod.swap
            && let Some(v) = swap.swap_usage_bytes
        {
            g.push(&POD_SWAP, labelled(pod_labels(pod), v as f64, swap.time));
        }
    }
    g.push(
        &SCRAPE_ERROR,
        Sample {
            labels: Vec::new(),
            value: 0.0,
            timestamp_ms: None,
        },
    );
    g.render()
}

fn unlabelled(value: f64, time: Time) -> Sample {
    Sample {
        labels: Vec::new(),
        value,
        timestamp_ms: at(time),
    }
}

fn labelled(labels: Vec<(&'static str, String)>, value: f64, time: Time) -> Sample {
    Sample {
        labels,
        value,
        timestamp_ms: at(time),
    }
}

/// A label value in the text format: `\`, `"` and newline escaped.
#[must_use]
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text in the text format: `\` and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it, which the Prometheus
/// text encoder uses: the shortest digits that read back to `f`, in `%e` form
/// (`1.2537856e+07`, two exponent digits at least) when the decimal exponent is below -4 or
/// at least 6, else plain (`123456.5`, `0.0001`); `+Inf`, `-Inf`, `NaN`.
#[must_use]
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d[.ddd]e[-]x`.
    let sci = format!("{:e}", f.abs());
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    // Plain: place the decimal point `exp + 1` digits in.
    let point = exp + 1;
    let body = if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("0.{zeros}{digits}")
    } else {
        let point = point.unsigned_abs() as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::types::*;

    #[test]
    fn floats_as_go_writes_them() {
        for (f, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1.048838048, "1.048838048"),
            (12_537_856.0, "1.2537856e+07"),
            (1e6, "1e+06"),
            (999_999.0, "999999"),
            (999_999.5, "999999.5"),
            (123_456.7, "123456.7"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1.6606358166374042e9, "1.6606358166374042e+09"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-2.5e-7, "-2.5e-07"),
            (100.0, "100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("plain-é"), "plain-é");
    }

    #[test]
    fn a_failed_summary_is_only_the_scrape_error() {
        assert_eq!(
            render_resource_metrics(None),
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 1
"
        );
    }

    fn container(name: &str, cpu_ns: u64, ws: u64, start: i64) -> ContainerStats {
        ContainerStats {
            name: name.into(),
            start_time: Time(start),
            cpu: Some(CPUStats {
                time: Time(1_700_000_000_123_456_789),
                usage_core_nano_seconds: Some(cpu_ns),
                ..CPUStats::default()
            }),
            memory: Some(MemoryStats {
                time: Time(1_700_000_000_223_456_789),
                working_set_bytes: Some(ws),
                ..MemoryStats::default()
            }),
            ..ContainerStats::default()
        }
    }

    #[test]
    fn families_sorted_samples_ordered_by_labels_nil_sources_left_out() {
        let pod = |name: &str, ns: &str, containers: Vec<ContainerStats>| PodStats {
            pod_ref: PodReference {
                name: name.into(),
                namespace: ns.into(),
                uid: "u".into(),
            },
            containers,
            cpu: Some(CPUStats {
                time: Time(1_700_000_001_000_000_000),
                usage_core_nano_seconds: Some(2_500_000_000),
                ..CPUStats::default()
            }),
            memory: None,
            ..PodStats::default()
        };
        let summary = Summary {
            node: NodeStats {
                node_name: "n".into(),
                cpu: Some(CPUStats {
                    time: Time(1_700_000_000_999_999_999),
                    usage_core_nano_seconds: Some(50_126_899_234_825),
                    ..CPUStats::default()
                }),
                memory: Some(MemoryStats {
                    time: Time(1_700_000_000_500_000_000),
                    working_set_bytes: Some(2_021_269_504),
                    ..MemoryStats::default()
                }),
                swap: Some(SwapStats {
                    time: Time(1),
                    swap_usage_bytes: Some(0),
                    swap_available_bytes: Some(0),
                }),
                ..NodeStats::default()
            },
            pods: vec![
                pod(
                    "web\"1",
                    "zeta",
                    vec![container(
                        "b",
                        1_000_000_000,
                        4096,
                        1_699_999_000_500_000_000,
                    )],
                ),
                pod(
                    "api",
                    "alpha",
                    vec![
                        container("z", 1, 1_000_000, 0),
                        ContainerStats {
                            name: "a".into(),
                            ..ContainerStats::default()
                        },
                    ],
                ),
            ],
        };
        let text = render_resource_metrics(Some(&summary));
        assert_eq!(
            text,
            r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="b",namespace="zeta",pod="web\"1"} 1 1700000000123
container_cpu_usage_seconds_total{container="z",namespace="alpha",pod="api"} 1e-09 1700000000123
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="b",namespace="zeta",pod="web\"1"} 4096 1700000000223
container_memory_working_set_bytes{container="z",namespace="alpha",pod="api"} 1e+06 1700000000223
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="b",namespace="zeta",pod="web\"1"} 1.6999990005e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 50126.899234825 1700000000999
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2.021269504e+09 1700000000500
# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems
# TYPE node_swap_usage_bytes gauge
node_swap_usage_bytes 0 1700000000500
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="alpha",pod="api"} 2.5 1700000001000
pod_cpu_usage_seconds_total{namespace="zeta",pod="web\"1"} 2.5 1700000001000
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
"#
        );
    }

    #[test]
    fn container_swap_limit_is_available_plus_usage() {
        let summary = Summary {
            pods: vec![PodStats {
                pod_ref: PodReference {
                    name: "p".into(),
                    namespace: "ns".into(),
                    uid: "u".into(),
                },
                containers: vec![ContainerStats {
                    name: "c".into(),
                    swap: Some(SwapStats {
                        time: Time(2_000_000),
                        swap_available_bytes: Some(10),
                        swap_usage_bytes: Some(5),
                    }),
                    ..ContainerStats::default()
                }],
                ..PodStats::default()
            }],
            ..Summary::default()
        };
        let text = render_resource_metrics(Some(&summary));
        assert!(
            text.contains(
                "container_swap_limit_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 15 2\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "container_swap_usage_bytes{container=\"c\",namespace=\"ns\",pod=\"p\"} 5 2\n"
        ));
        assert!(
            !text.contains("container_start_time_seconds"),
            "start time 0 is skipped"
        );
    }
}
