//! The kubelet's `IsExtendedResourceName` check for device-plugin resource names.

/// Prefix of native resources (`kubernetes.io/...`), which plugins may not advertise.
const NATIVE_PREFIX: &str = "kubernetes.io/";
/// Prefix the quota system puts in front of resource names (`requests.`).
const REQUESTS_PREFIX: &str = "requests.";

/// Whether `name` is an extended resource name the kubelet accepts from a device plugin:
/// domain-qualified (`vendor.com/thing`), not in the `kubernetes.io/` namespace, not starting
/// with `requests.`, and still a valid qualified name once `requests.` is put in front of it
/// (DNS-1123 subdomain prefix of at most 253 characters, name part of at most 63 characters
/// of `[A-Za-z0-9_.-]` starting and ending with an alphanumeric).
///
/// ```
/// use node_plugins::is_extended_resource_name;
/// assert!(is_extended_resource_name("example.com/fake"));
/// assert!(!is_extended_resource_name("fake"));
/// assert!(!is_extended_resource_name("kubernetes.io/gpu"));
/// ```
pub fn is_extended_resource_name(name: &str) -> bool {
    // Native: no domain, or in the kubernetes.io namespace.
    if !name.contains('/') || name.contains(NATIVE_PREFIX) || name.starts_with(REQUESTS_PREFIX) {
        return false;
    }
    is_qualified_name(&format!("{REQUESTS_PREFIX}{name}"))
}

fn is_qualified_name(value: &str) -> bool {
    let mut parts = value.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, None) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return false,
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || !is_dns1123_subdomain(prefix))
    {
        return false;
    }
    is_qualified_name_part(name)
}

fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    name.len() <= 63
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns1123_label_like)
}

/// One dot-separated piece of a subdomain: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label_like(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    ok(first) && ok(last) && bytes.iter().all(|b| ok(b) || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::is_extended_resource_name as ok;

    #[test]
    fn accepts_domain_qualified_names() {
        assert!(ok("example.com/fake"));
        assert!(ok("nvidia.com/gpu"));
        assert!(ok("intel.com/sriov_net-A.1"));
        assert!(ok("a/b"));
    }

    #[test]
    fn rejects_what_the_kubelet_rejects() {
        for bad in [
            "",
            "fake",
            "cpu",
            "kubernetes.io/gpu",
            "foo.kubernetes.io/gpu",
            "requests.example.com/x",
            "example.com/",
            "/fake",
            "Example.com/fake",
            "example.com/fa/ke",
            "example.com/-fake",
            "example.com/fake-",
            "example.com/fa ke",
            "exa_mple.com/fake",
        ] {
            assert!(!ok(bad), "{bad:?} must be rejected");
        }
        assert!(!ok(&format!("example.com/{}", "a".repeat(64))));
        assert!(ok(&format!("example.com/{}", "a".repeat(63))));
        assert!(!ok(&format!("{}.com/a", "a".repeat(250))));
    }
}
