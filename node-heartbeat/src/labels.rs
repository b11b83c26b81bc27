//! The labels a kubelet sets on its Node, and `--node-labels` validation with the kubelet's
//! prefix rules.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// `kubernetes.io/hostname`.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// `kubernetes.io/os`.
pub const LABEL_OS: &str = "kubernetes.io/os";
/// `kubernetes.io/arch`.
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
/// `beta.kubernetes.io/os` (still set by the kubelet).
pub const LABEL_OS_BETA: &str = "beta.kubernetes.io/os";
/// `beta.kubernetes.io/arch` (still set by the kubelet).
pub const LABEL_ARCH_BETA: &str = "beta.kubernetes.io/arch";

/// Labels outside the kubelet namespaces that a kubelet may still set on itself
/// (`well_known_labels.go`), sorted as the kubelet prints them.
pub const KUBELET_LABELS: [&str; 11] = [
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// Label namespaces (and their subdomains) a kubelet may use freely.
pub const KUBELET_LABEL_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The Go `GOOS` value for this build (`linux`).
pub fn go_os() -> &'static str {
    std::env::consts::OS
}

/// The Go `GOARCH` name for this build's architecture (`x86_64` is `amd64`, `aarch64` is `arm64`).
pub fn go_arch() -> &'static str {
    go_arch_of(std::env::consts::ARCH)
}

/// Maps a Rust architecture name to Go's `GOARCH`.
pub fn go_arch_of(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    }
}

fn namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(ns: &str, base: &str) -> bool {
    ns == base
        || ns
            .strip_suffix(base)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// True when `key` is in `kubernetes.io`, `k8s.io` or a subdomain of either.
pub fn is_kubernetes_label(key: &str) -> bool {
    let ns = namespace(key);
    in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io")
}

/// True when a kubelet may set `key` on its own Node (allowed set or allowed namespaces).
pub fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = namespace(key);
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|allowed| in_namespace(ns, allowed))
}

fn is_name_part(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if s.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !is_alnum_dash_dot_underscore(s) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    Ok(())
}

fn is_alnum_dash_dot_underscore(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if alnum(f) && alnum(l) => b
            .iter()
            .all(|&c| alnum(c) || c == b'-' || c == b'_' || c == b'.'),
        _ => false,
    }
}

pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            match (b.first(), b.last()) {
                (Some(&f), Some(&l)) if ok(f) && ok(l) => b.iter().all(|&c| ok(c) || c == b'-'),
                _ => false,
            }
        })
}

/// Validates a label key as a Kubernetes qualified name (`[prefix/]name`).
pub fn validate_qualified_name(key: &str) -> std::result::Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        if !is_dns1123_subdomain(p) {
            return Err("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
        }
        if name.contains('/') {
            return Err("a qualified name must consist of a name part and at most one '/'".into());
        }
    }
    is_name_part(name)
}

/// Validates a label value (empty, or up to 63 alphanumerics with `-_.` inside).
pub fn validate_label_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !is_alnum_dash_dot_underscore(value) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// Validates `--node-labels` as `ValidateKubeletFlags` does: unknown `kubernetes.io`/`k8s.io`
/// keys first (the kubelet refuses to start), then key/value syntax (`invalid node labels: ...`).
pub fn validate_node_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    let mut unknown = BTreeSet::new();
    let mut invalid: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (k, v) in labels {
        if is_kubernetes_label(k) && !is_kubelet_label(k) {
            unknown.insert(k.as_str());
        }
        if let Err(e) = validate_qualified_name(k) {
            invalid.entry(k).or_default().push(e);
        }
        if let Err(e) = validate_label_value(v) {
            invalid.entry(v).or_default().push(e);
        }
    }
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.into_iter().collect();
        return Err(Error::NodeLabels {
            message: format!(
                "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [{}]\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix ({}) or be in the specifically allowed set ({})",
                list.join(" "),
                KUBELET_LABEL_NAMESPACES.join(", "),
                KUBELET_LABELS.join(", ")
            ),
        });
    }
    if !invalid.is_empty() {
        let parts: Vec<String> = invalid
            .iter()
            .map(|(k, errs)| format!("'{k}' - {}", errs.join(", ")))
            .collect();
        return Err(Error::NodeLabels {
            message: format!("invalid node labels: {}", parts.join("; ")),
        });
    }
    Ok(())
}

/// The labels of `initialNode`: hostname, os and arch (stable and beta), then `--node-labels`
/// on top (they override the defaults, as in the kubelet).
pub fn default_labels(
    hostname: &str,
    node_labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_HOSTNAME.to_owned(), hostname.to_owned());
    labels.insert(LABEL_OS.to_owned(), go_os().to_owned());
    labels.insert(LABEL_ARCH.to_owned(), go_arch().to_owned());
    labels.insert(LABEL_OS_BETA.to_owned(), go_os().to_owned());
    labels.insert(LABEL_ARCH_BETA.to_owned(), go_arch().to_owned());
    for (k, v) in node_labels {
        if labels.get(k).is_some_and(|old| old != v) {
            tracing::info!(label = %k, "the node label will overwrite default setting");
        }
        labels.insert(k.clone(), v.clone());
    }
    labels
}

/// Forces `kubernetes.io/os` and `kubernetes.io/arch` as every status sync does; returns true if
/// anything was missing or wrong (which counts as a change).
pub fn ensure_os_arch_labels(labels: &mut BTreeMap<String, String>) -> bool {
    let mut changed = false;
    for (k, v) in [(LABEL_OS, go_os()), (LABEL_ARCH, go_arch())] {
        if labels.get(k).map(String::as_str) != Some(v) {
            labels.insert(k.to_owned(), v.to_owned());
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn allowed_prefixes_and_set() {
        for ok in [
            "node.kubernetes.io/pool",
            "foo.node.kubernetes.io/x",
            "kubelet.kubernetes.io/a",
            "topology.kubernetes.io/zone",
            "example.com/team",
            "plain",
        ] {
            validate_node_labels(&map(&[(ok, "v")])).unwrap();
        }
    }

    #[test]
    fn node_role_is_refused_with_kubelet_message() {
        let err = validate_node_labels(&map(&[
            ("node-role.kubernetes.io/worker", ""),
            ("k8s.io/x", "y"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [k8s.io/x node-role.kubernetes.io/worker]\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, node.kubernetes.io) or be in the specifically allowed set (beta.kubernetes.io/arch, beta.kubernetes.io/instance-type"), "{err}");
        // Not a subdomain match: "evilnode.kubernetes.io" is not under node.kubernetes.io.
        assert!(validate_node_labels(&map(&[("evilnode.kubernetes.io/x", "y")])).is_err());
    }

    #[test]
    fn invalid_syntax() {
        let err = validate_node_labels(&map(&[("bad key!", "ok"), ("good", "-bad")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid node labels: "), "{err}");
        assert!(err.contains("'bad key!' - name part must consist"), "{err}");
        assert!(err.contains("'-bad' - a valid label must be"), "{err}");
        assert!(validate_label_value(&"a".repeat(64)).is_err());
        assert!(validate_qualified_name("Example.com/x").is_err());
        assert!(validate_qualified_name("a/b/c").is_err());
    }

    #[test]
    fn defaults_and_override() {
        let l = default_labels(
            "node-1",
            &map(&[
                ("kubernetes.io/hostname", "alias"),
                ("node.kubernetes.io/pool", "a"),
            ]),
        );
        assert_eq!(l[LABEL_HOSTNAME], "alias");
        assert_eq!(l[LABEL_OS], "linux");
        assert_eq!(l[LABEL_ARCH], go_arch());
        assert_eq!(l[LABEL_ARCH_BETA], go_arch());
        assert_eq!(l.len(), 6);
        assert_eq!(go_arch_of("x86_64"), "amd64");
        assert_eq!(go_arch_of("aarch64"), "arm64");
        let mut m = map(&[(LABEL_OS, "windows")]);
        assert!(ensure_os_arch_labels(&mut m));
        assert!(!ensure_os_arch_labels(&mut m));
    }
}
