//! Request path segments and archive names.
//!
//! The three segments of `/checkpoint/{namespace}/{pod}/{container}` are Kubernetes object
//! names, never paths: anything that is not a valid name (`..`, `a/b` after percent-decoding,
//! absolute paths, NUL, over-long names) is answered like an unknown pod or container and
//! never reaches the registry or the filesystem.

use jiff::Zoned;

/// Longest namespace and container name (a DNS-1123 label).
pub const MAX_LABEL_LEN: usize = node_runtime::validation::DNS1123_LABEL_MAX;
/// Longest pod name (a DNS-1123 subdomain).
pub const MAX_SUBDOMAIN_LEN: usize = node_runtime::validation::DNS1123_SUBDOMAIN_MAX;

/// Namespaces and container names are DNS-1123 labels, pod names DNS-1123 subdomains: the
/// same checks node-runtime applies to the pods it runs.
pub use node_runtime::validation::{is_dns_label, is_dns_subdomain};

/// The kubelet's pod full name, `<name>_<namespace>`.
pub fn pod_full_name(pod: &str, namespace: &str) -> String {
    format!("{pod}_{namespace}")
}

/// `time.Now().Format(time.RFC3339)` in the local zone: whole seconds, `Z` for a zero
/// offset, `+hh:mm`/`-hh:mm` otherwise.
pub fn rfc3339_seconds(t: &Zoned) -> String {
    format!("{}{}", t.strftime("%Y-%m-%dT%H:%M:%S"), offset(t))
}

/// Like [`rfc3339_seconds`] with nine fractional digits (still RFC 3339), used when the
/// whole-second name is taken.
pub fn rfc3339_nanos(t: &Zoned, nanos: u32) -> String {
    format!(
        "{}.{nanos:09}{}",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        offset(t)
    )
}

fn offset(t: &Zoned) -> String {
    let secs = t.offset().seconds();
    if secs == 0 {
        return "Z".to_owned();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

/// `checkpoint-<pod>_<namespace>-<container>-<timestamp>.tar`.
pub fn archive_file_name(pod: &str, namespace: &str, container: &str, timestamp: &str) -> String {
    format!(
        "checkpoint-{}-{container}-{timestamp}.tar",
        pod_full_name(pod, namespace)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_api_server() {
        for ok in ["a", "default", "kube-system", "x1", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "/etc",
            "-a",
            "a-",
            "A",
            "a_b",
            "a%2fb",
            "a\0b",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(is_dns_subdomain("web-node-1.example"));
        for bad in ["..", ".", "a..b", ".a", "a.", "../etc", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn archive_name_matches_the_kubelet() {
        let t: Zoned = "2026-03-13T21:43:06Z[UTC]".parse().unwrap();
        assert_eq!(
            archive_file_name(
                "checkpoint-test",
                "default",
                "checkpoint-test",
                &rfc3339_seconds(&t)
            ),
            "checkpoint-checkpoint-test_default-checkpoint-test-2026-03-13T21:43:06Z.tar"
        );
        let t: Zoned = "2026-03-13T21:43:06+02:00[+02:00]".parse().unwrap();
        assert_eq!(rfc3339_seconds(&t), "2026-03-13T21:43:06+02:00");
        let t: Zoned = "2026-03-13T21:43:06-03:30[-03:30]".parse().unwrap();
        assert_eq!(rfc3339_seconds(&t), "2026-03-13T21:43:06-03:30");
        assert_eq!(rfc3339_nanos(&t, 5), "2026-03-13T21:43:06.000000005-03:30");
    }
}
