//! Pod validation before anything touches disk: the API server's rules for names (DNS-1123),
//! volumes, containers and subPaths, plus the node's own: every name that becomes a path
//! component (`metadata.uid`, namespace, name, volume and container names) must be exactly one
//! safe path component.
//!
//! The API server validates pods it stores (`pkg/apis/core/validation/validation.go`
//! `ValidatePodCreate`), and the kubelet runs the same validation on static pods
//! (`pkg/kubelet/config/common.go` `tryDecodeSinglePod`). A node agent must not rely on either:
//! a manifest written by hand, or a pod from a compromised or lenient API server, reaches a root
//! process that turns its names into paths. [`validate_pod`] checks the fields the agent uses,
//! and reports every problem at once in the API server's field-error form
//! (`spec.containers[0].name: Invalid value: "A": ...`).

use std::collections::HashSet;
use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Volume, VolumeMount};

/// The longest file name Linux accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// The longest DNS-1123 subdomain (object names).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The longest DNS-1123 label (namespaces, container and volume names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// The API server's limit on all annotations of an object together (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_MAX: usize = 256 * 1024;
/// The longest label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// The largest user or group ID the API server accepts (`runAsUser`, `fsGroup`, ...).
pub const ID_MAX: i64 = i32::MAX as i64;
/// The longest path the agent builds (`PATH_MAX`); a longer hostPath or mountPath is refused.
pub const PATH_MAX: usize = 4096;

const DNS_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Whether `value` is exactly one safe path component: not empty, not `.` or `..`, no `/` and
/// no NUL byte, at most [`NAME_MAX`] bytes. `field` names what is checked in the error (for
/// example `metadata.uid`).
pub fn check_path_component(field: &str, value: &str) -> Result<(), String> {
    match path_component_problem(value) {
        None => Ok(()),
        Some(reason) => Err(format!(
            "{field} {value:?} {reason}: it names a directory on the node"
        )),
    }
}

/// What makes `value` unusable as one path component, if anything.
fn path_component_problem(value: &str) -> Option<&'static str> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value == "." || value == ".." {
        "must not be '.' or '..'"
    } else if value.contains('/') {
        "must not contain '/'"
    } else if value.contains('\0') {
        "must not contain a NUL byte"
    } else if value.len() > NAME_MAX {
        "must be at most 255 bytes"
    } else {
        return None;
    };
    Some(reason)
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (namespaces,
/// container, volume and port names).
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX && is_label_shaped(s)
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters in all (object names).
/// `.`, `..` and the empty string are not subdomains (they have empty labels).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_SUBDOMAIN_MAX && s.split('.').all(is_label_shaped)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` of any length.
fn is_label_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            *first != b'-'
                && *last != b'-'
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }
        _ => false,
    }
}

/// One problem with one field, printed like the API server's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `spec.containers[0].name`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorKind,
}

/// The API server's error types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `Required value`.
    Required(String),
    /// `Invalid value: <value>: <detail>`.
    Invalid {
        /// The value as written (quoted when printed).
        value: String,
        /// Why it is refused.
        detail: String,
    },
    /// `Duplicate value: <value>`.
    Duplicate(String),
    /// `Unsupported value: <value>: supported values: ...`.
    NotSupported {
        /// The value.
        value: String,
        /// What is allowed.
        supported: &'static [&'static str],
    },
    /// `Forbidden: <detail>`.
    Forbidden(String),
    /// `Too long: may not be more than <max> bytes`.
    TooLong(usize),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FieldErrorKind::Required(detail) if detail.is_empty() => {
                write!(f, "{}: Required value", self.field)
            }
            FieldErrorKind::Required(detail) => {
                write!(f, "{}: Required value: {detail}", self.field)
            }
            FieldErrorKind::Invalid { value, detail } => {
                write!(f, "{}: Invalid value: {value:?}: {detail}", self.field)
            }
            FieldErrorKind::Duplicate(value) => {
                write!(f, "{}: Duplicate value: {value:?}", self.field)
            }
            FieldErrorKind::NotSupported { value, supported } => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                write!(
                    f,
                    "{}: Unsupported value: {value:?}: supported values: {}",
                    self.field,
                    list.join(", ")
                )
            }
            FieldErrorKind::Forbidden(detail) => write!(f, "{}: Forbidden: {detail}", self.field),
            FieldErrorKind::TooLong(max) => write!(
                f,
                "{}: Too long: may not be more than {max} bytes",
                self.field
            ),
        }
    }
}

/// Every problem found in one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    /// The API server's aggregate: one error alone, or `[a, b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

#[derive(Default)]
struct Errs(Vec<FieldError>);

impl Errs {
    fn required(&mut self, field: impl Into<String>, detail: &str) {
        self.0.push(FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required(detail.to_owned()),
        });
    }
    fn invalid(&mut self, field: impl Into<String>, value: impl fmt::Display, detail: &str) {
        self.0.push(FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid {
                value: value.to_string(),
                detail: detail.to_owned(),
            },
        });
    }
    fn duplicate(&mut self, field: impl Into<String>, value: &str) {
        self.0.push(FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate(value.to_owned()),
        });
    }
    fn unsupported(
        &mut self,
        field: impl Into<String>,
        value: &str,
        supported: &'static [&'static str],
    ) {
        self.0.push(FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported {
                value: value.to_owned(),
                supported,
            },
        });
    }
    fn forbidden(&mut self, field: impl Into<String>, detail: &str) {
        self.0.push(FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden(detail.to_owned()),
        });
    }

    fn dns_label(&mut self, field: impl Into<String>, value: &str) {
        if value.is_empty() {
            self.required(field, "");
        } else if !is_dns_label(value) {
            let detail = if value.len() > DNS1123_LABEL_MAX {
                "must be no more than 63 characters"
            } else {
                DNS_LABEL_MSG
            };
            self.invalid(field, value, detail);
        }
    }

    fn dns_subdomain(&mut self, field: impl Into<String>, value: &str) {
        if value.is_empty() {
            self.required(field, "name or generateName is required");
        } else if !is_dns_subdomain(value) {
            let detail = if value.len() > DNS1123_SUBDOMAIN_MAX {
                "must be no more than 253 characters"
            } else {
                DNS_SUBDOMAIN_MSG
            };
            self.invalid(field, value, detail);
        }
    }

    fn id(&mut self, field: impl Into<String>, value: Option<i64>) {
        if let Some(v) = value
            && !(0..=ID_MAX).contains(&v)
        {
            self.invalid(field, v, "must be between 0 and 2147483647, inclusive");
        }
    }
}

/// Validates a pod the way the API server's `ValidatePodCreate` does for every field the
/// agent uses, plus the node's own rule that `metadata.uid` is one safe path component.
/// `metadata.name` and `metadata.namespace` are checked as given; call it after defaulting
/// (a static pod's name is `<name>-<node>` and its namespace `default` by then).
pub fn validate_pod(pod: &Pod) -> Result<(), ValidationErrors> {
    let mut e = Errs::default();
    let meta = &pod.metadata;
    e.dns_subdomain("metadata.name", meta.name.as_deref().unwrap_or_default());
    e.dns_label(
        "metadata.namespace",
        meta.namespace.as_deref().unwrap_or_default(),
    );
    if let Some(uid) = meta.uid.as_deref()
        && let Some(reason) = path_component_problem(uid)
    {
        e.invalid(
            "metadata.uid",
            uid,
            &format!("{reason} (the UID names the pod's directory on the node)"),
        );
    } else if let Some(uid) = meta.uid.as_deref()
        && uid.bytes().any(|b| b.is_ascii_control() || b == b'_')
    {
        // `_` separates namespace, name and UID in the pod log directory name.
        e.invalid(
            "metadata.uid",
            uid,
            "must not contain control characters or '_'",
        );
    }
    for (key, value) in meta.labels.iter().flatten() {
        validate_qualified_name(&mut e, &format!("metadata.labels[{key}]"), key);
        validate_label_value(&mut e, &format!("metadata.labels[{key}]"), value);
    }
    let mut annotation_size = 0usize;
    for (key, value) in meta.annotations.iter().flatten() {
        validate_qualified_name(&mut e, &format!("metadata.annotations[{key}]"), key);
        annotation_size = annotation_size
            .saturating_add(key.len())
            .saturating_add(value.len());
    }
    if annotation_size > TOTAL_ANNOTATION_SIZE_MAX {
        e.0.push(FieldError {
            field: "metadata.annotations".to_owned(),
            kind: FieldErrorKind::TooLong(TOTAL_ANNOTATION_SIZE_MAX),
        });
    }
    match &pod.spec {
        None => e.required("spec", ""),
        Some(spec) => validate_spec(&mut e, spec),
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(e.0))
    }
}

fn validate_qualified_name(e: &mut Errs, field: &str, key: &str) {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        e.invalid(
            field,
            key,
            "prefix part must be a lowercase RFC 1123 subdomain",
        );
    }
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !ok {
        e.invalid(
            field,
            key,
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters",
        );
    }
}

fn validate_label_value(e: &mut Errs, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let b = value.as_bytes();
    let ok = b.len() <= LABEL_VALUE_MAX
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        e.invalid(
            field,
            value,
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters",
        );
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROPAGATIONS: &[&str] = &["None", "HostToContainer", "Bidirectional"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const SECCOMP_TYPES: &[&str] = &["RuntimeDefault", "Unconfined", "Localhost"];
const STORAGE_MEDIA: &[&str] = &["", "Memory", "HugePages"];

fn validate_spec(e: &mut Errs, spec: &PodSpec) {
    // Volumes: names are DNS labels (they become directory names), unique, one source each.
    let mut volumes: HashSet<&str> = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let field = format!("spec.volumes[{i}]");
        e.dns_label(format!("{field}.name"), &v.name);
        if !v.name.is_empty() && !volumes.insert(v.name.as_str()) {
            e.duplicate(format!("{field}.name"), &v.name);
        }
        validate_volume_source(e, &field, v);
    }
    if spec.containers.is_empty() {
        e.required("spec.containers", "");
    }
    let mut names: HashSet<&str> = HashSet::new();
    let lists = [
        ("spec.initContainers", spec.init_containers.as_deref()),
        ("spec.containers", Some(spec.containers.as_slice())),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.unwrap_or_default().iter().enumerate() {
            let field = format!("{list}[{i}]");
            e.dns_label(format!("{field}.name"), &c.name);
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                e.duplicate(format!("{field}.name"), &c.name);
            }
            validate_container(e, &field, c, &volumes);
        }
    }
    if let Some(eph) = &spec.ephemeral_containers
        && !eph.is_empty()
    {
        e.forbidden(
            "spec.ephemeralContainers",
            "ephemeral containers may only be added to a running pod through the API server",
        );
    }
    if let Some(p) = spec.restart_policy.as_deref() {
        if p.is_empty() {
            e.required("spec.restartPolicy", "");
        } else if !RESTART_POLICIES.contains(&p) {
            e.unsupported("spec.restartPolicy", p, RESTART_POLICIES);
        }
    }
    if let Some(p) = spec.dns_policy.as_deref()
        && !p.is_empty()
        && !DNS_POLICIES.contains(&p)
    {
        e.unsupported("spec.dnsPolicy", p, DNS_POLICIES);
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        e.invalid(
            "spec.terminationGracePeriodSeconds",
            g,
            "must be greater than or equal to 0",
        );
    }
    if let Some(d) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&d)
    {
        e.invalid(
            "spec.activeDeadlineSeconds",
            d,
            "must be between 1 and 2147483647, inclusive",
        );
    }
    if let Some(h) = spec.hostname.as_deref()
        && !h.is_empty()
    {
        e.dns_label("spec.hostname", h);
    }
    if let Some(s) = spec.subdomain.as_deref()
        && !s.is_empty()
    {
        e.dns_label("spec.subdomain", s);
    }
    if let Some(psc) = &spec.security_context {
        let f = "spec.securityContext";
        e.id(format!("{f}.runAsUser"), psc.run_as_user);
        e.id(format!("{f}.runAsGroup"), psc.run_as_group);
        e.id(format!("{f}.fsGroup"), psc.fs_group);
        for (i, g) in psc.supplemental_groups.iter().flatten().enumerate() {
            e.id(format!("{f}.supplementalGroups[{i}]"), Some(*g));
        }
        let mut seen: HashSet<String> = HashSet::new();
        for (i, s) in psc.sysctls.iter().flatten().enumerate() {
            let field = format!("{f}.sysctls[{i}].name");
            if s.name.is_empty() {
                e.required(field, "");
            } else if !is_valid_sysctl_name(&s.name) {
                e.invalid(
                    field,
                    &s.name,
                    "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
                );
            } else if !seen.insert(node_kernel::normalize_name(&s.name)) {
                e.duplicate(field, &s.name);
            }
        }
        validate_seccomp(
            e,
            &format!("{f}.seccompProfile"),
            psc.seccomp_profile.as_ref(),
        );
    }
}

/// A sysctl name (no wildcard): `IsValidSysctlName`.
fn is_valid_sysctl_name(name: &str) -> bool {
    !name.contains('*') && node_kernel::is_valid_sysctl_pattern(name)
}

fn validate_seccomp(
    e: &mut Errs,
    field: &str,
    p: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
) {
    let Some(p) = p else { return };
    if !SECCOMP_TYPES.contains(&p.type_.as_str()) {
        e.unsupported(format!("{field}.type"), &p.type_, SECCOMP_TYPES);
        return;
    }
    match (p.type_.as_str(), p.localhost_profile.as_deref()) {
        ("Localhost", None | Some("")) => e.required(
            format!("{field}.localhostProfile"),
            "must be set when seccomp type is Localhost",
        ),
        ("Localhost", Some(path)) => {
            validate_local_descending_path(e, &format!("{field}.localhostProfile"), path);
        }
        (_, Some(_)) => e.invalid(
            format!("{field}.localhostProfile"),
            "",
            "can only be set when seccomp type is Localhost",
        ),
        _ => {}
    }
}

/// `validateLocalDescendingPath`: relative, no `..` element (and, on the node, no NUL).
fn validate_local_descending_path(e: &mut Errs, field: &str, path: &str) {
    if path.starts_with('/') {
        e.invalid(field, path, "must be a relative path");
    }
    if path.split('/').any(|s| s == "..") {
        e.invalid(field, path, "must not contain '..'");
    }
    if path.contains('\0') {
        e.invalid(field, path, "must not contain a NUL byte");
    }
    if path.len() > PATH_MAX {
        e.invalid(field, path, "must be at most 4096 bytes");
    }
}

fn validate_volume_source(e: &mut Errs, field: &str, v: &Volume) {
    let sources = [
        ("hostPath", v.host_path.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("configMap", v.config_map.is_some()),
        ("secret", v.secret.is_some()),
        ("projected", v.projected.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("nfs", v.nfs.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("fc", v.fc.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("gitRepo", v.git_repo.is_some()),
    ];
    let set: Vec<&str> = sources
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
    match set.len() {
        0 => {
            // Older clients leave the source out for an emptyDir; the API server defaults it.
            // The agent does the same when it mounts (see `volume_kind`), so this is fine.
        }
        1 => {}
        _ => e.forbidden(
            field,
            &format!(
                "may not specify more than 1 volume type ({})",
                set.join(", ")
            ),
        ),
    }
    if let Some(hp) = &v.host_path {
        let f = format!("{field}.hostPath.path");
        if hp.path.is_empty() {
            e.required(f, "");
        } else {
            if hp.path.split('/').any(|s| s == "..") {
                e.invalid(&f, &hp.path, "must not contain '..'");
            }
            if hp.path.contains('\0') {
                e.invalid(&f, &hp.path, "must not contain a NUL byte");
            }
            if hp.path.len() > PATH_MAX {
                e.invalid(&f, &hp.path, "must be at most 4096 bytes");
            }
        }
        if let Some(t) = hp.type_.as_deref()
            && !HOST_PATH_TYPES.contains(&t)
        {
            e.unsupported(format!("{field}.hostPath.type"), t, HOST_PATH_TYPES);
        }
    }
    if let Some(ed) = &v.empty_dir {
        if let Some(m) = ed.medium.as_deref()
            && !STORAGE_MEDIA.contains(&m)
            && !m.starts_with("HugePages-")
        {
            e.unsupported(format!("{field}.emptyDir.medium"), m, STORAGE_MEDIA);
        }
        if let Some(q) = &ed.size_limit {
            validate_quantity(e, &format!("{field}.emptyDir.sizeLimit"), &q.0);
        }
    }
}

fn validate_quantity(e: &mut Errs, field: &str, text: &str) {
    match node_config::Quantity::parse(text) {
        Err(err) if err.is_out_of_range() => e.invalid(
            field,
            text,
            "must be less than 2^63 (the largest quantity a node can apply)",
        ),
        Err(_) => e.invalid(
            field,
            text,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        Ok(q) if !q.value().is_finite() || q.value() > 9.2e18 => e.invalid(
            field,
            text,
            "must be less than 2^63 (the largest quantity a node can apply)",
        ),
        Ok(q) if q.value() < 0.0 => {
            e.invalid(field, text, "must be greater than or equal to 0");
        }
        Ok(_) => {}
    }
}

fn validate_container(e: &mut Errs, field: &str, c: &Container, volumes: &HashSet<&str>) {
    match c.image.as_deref() {
        None | Some("") => e.required(format!("{field}.image"), ""),
        Some(image) if image.trim() != image => e.invalid(
            format!("{field}.image"),
            image,
            "must not have leading or trailing whitespace",
        ),
        Some(_) => {}
    }
    if let Some(p) = c.image_pull_policy.as_deref()
        && !PULL_POLICIES.contains(&p)
    {
        e.unsupported(format!("{field}.imagePullPolicy"), p, PULL_POLICIES);
    }
    for (i, env) in c.env.iter().flatten().enumerate() {
        let f = format!("{field}.env[{i}].name");
        if env.name.is_empty() {
            e.required(f, "");
        } else if !env
            .name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
        {
            e.invalid(
                f,
                &env.name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            );
        }
    }
    let mut ports: HashSet<&str> = HashSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let f = format!("{field}.ports[{i}]");
        if !(1..=65535).contains(&p.container_port) {
            e.invalid(
                format!("{f}.containerPort"),
                p.container_port,
                "must be between 1 and 65535, inclusive",
            );
        }
        if let Some(h) = p.host_port
            && !(0..=65535).contains(&h)
        {
            e.invalid(
                format!("{f}.hostPort"),
                h,
                "must be between 0 and 65535, inclusive",
            );
        }
        if let Some(proto) = p.protocol.as_deref()
            && !PROTOCOLS.contains(&proto)
        {
            e.unsupported(format!("{f}.protocol"), proto, PROTOCOLS);
        }
        if let Some(name) = p.name.as_deref() {
            let ok = !name.is_empty()
                && name.len() <= 15
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name.bytes().any(|b| b.is_ascii_lowercase())
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--");
            if !ok {
                e.invalid(
                    format!("{f}.name"),
                    name,
                    "must be an IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', at least one letter, no '--', no '-' at either end",
                );
            } else if !ports.insert(name) {
                e.duplicate(format!("{f}.name"), name);
            }
        }
    }
    if let Some(res) = &c.resources {
        for (kind, map) in [("limits", &res.limits), ("requests", &res.requests)] {
            for (name, q) in map.iter().flatten() {
                validate_quantity(e, &format!("{field}.resources.{kind}[{name}]"), &q.0);
            }
        }
        for name in ["cpu", "memory"] {
            let get = |m: &Option<std::collections::BTreeMap<String, _>>| {
                m.as_ref()
                    .and_then(|m| m.get(name))
                    .and_then(
                        |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
                            node_config::Quantity::parse(&q.0).ok()
                        },
                    )
                    .map(|q| q.value())
            };
            if let (Some(req), Some(lim)) = (get(&res.requests), get(&res.limits))
                && req > lim
            {
                e.invalid(
                    format!("{field}.resources.requests[{name}]"),
                    req,
                    &format!("must be less than or equal to {name} limit of {lim}"),
                );
            }
        }
    }
    let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
    let mut mount_paths: HashSet<&str> = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        validate_mount(
            e,
            &format!("{field}.volumeMounts[{i}]"),
            m,
            volumes,
            privileged,
        );
        if !m.mount_path.is_empty() && !mount_paths.insert(m.mount_path.as_str()) {
            e.invalid(
                format!("{field}.volumeMounts[{i}].mountPath"),
                &m.mount_path,
                "must be unique",
            );
        }
    }
    if let Some(sc) = &c.security_context {
        let f = format!("{field}.securityContext");
        e.id(format!("{f}.runAsUser"), sc.run_as_user);
        e.id(format!("{f}.runAsGroup"), sc.run_as_group);
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            e.invalid(
                f.clone(),
                "privileged: true, allowPrivilegeEscalation: false",
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        validate_seccomp(
            e,
            &format!("{f}.seccompProfile"),
            sc.seccomp_profile.as_ref(),
        );
    }
}

fn validate_mount(
    e: &mut Errs,
    field: &str,
    m: &VolumeMount,
    volumes: &HashSet<&str>,
    privileged: bool,
) {
    if m.name.is_empty() {
        e.required(format!("{field}.name"), "");
    } else if !volumes.contains(m.name.as_str()) {
        e.0.push(FieldError {
            field: format!("{field}.name"),
            kind: FieldErrorKind::Invalid {
                value: m.name.clone(),
                detail: "not found in spec.volumes".to_owned(),
            },
        });
    }
    if m.mount_path.is_empty() {
        e.required(format!("{field}.mountPath"), "");
    } else if m.mount_path.contains('\0') || m.mount_path.len() > PATH_MAX {
        e.invalid(
            format!("{field}.mountPath"),
            &m.mount_path,
            "must not contain a NUL byte and be at most 4096 bytes",
        );
    }
    let sub_path = m.sub_path.as_deref().unwrap_or_default();
    let sub_path_expr = m.sub_path_expr.as_deref().unwrap_or_default();
    if !sub_path.is_empty() {
        validate_local_descending_path(e, &format!("{field}.subPath"), sub_path);
    }
    if !sub_path_expr.is_empty() {
        if !sub_path.is_empty() {
            e.invalid(
                format!("{field}.subPathExpr"),
                sub_path_expr,
                "subPathExpr and subPath are mutually exclusive",
            );
        }
        validate_local_descending_path(e, &format!("{field}.subPathExpr"), sub_path_expr);
    }
    if let Some(p) = m.mount_propagation.as_deref() {
        if !PROPAGATIONS.contains(&p) {
            e.unsupported(format!("{field}.mountPropagation"), p, PROPAGATIONS);
        } else if p == "Bidirectional" && !privileged {
            e.forbidden(
                format!("{field}.mountPropagation"),
                "Bidirectional mount propagation is available only to privileged containers",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const GOOD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web-node1
  namespace: default
  uid: 0123abcd
  labels: {app: web, example.com/tier: front}
spec:
  volumes:
  - name: data
    emptyDir: {}
  - name: host
    hostPath: {path: /srv/data, type: DirectoryOrCreate}
  containers:
  - name: app
    image: busybox
    env: [{name: A_B, value: x}]
    ports: [{containerPort: 80, name: http}]
    resources: {requests: {cpu: 100m, memory: 1Mi}, limits: {cpu: '1', memory: 2Mi}}
    volumeMounts:
    - {name: data, mountPath: /data, subPath: a/b}
    - {name: host, mountPath: /host}
  securityContext:
    sysctls: [{name: net.ipv4.ip_local_port_range, value: '1024 65535'}]
";

    fn errors(yaml: &str) -> Vec<String> {
        match validate_pod(&pod(yaml)) {
            Ok(()) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_good_pod_passes() {
        assert_eq!(errors(GOOD), Vec::<String>::new());
    }

    #[test]
    fn path_components_are_single_and_safe() {
        for bad in ["", ".", "..", "a/b", "../../victim", "x\0y"] {
            assert!(
                check_path_component("metadata.uid", bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_path_component("metadata.uid", &"a".repeat(256)).is_err());
        assert!(check_path_component("metadata.uid", "0123-abcd").is_ok());
    }

    #[test]
    fn climbing_names_are_refused_with_their_field() {
        let cases = [
            (
                "uid: 0123abcd",
                "uid: ../../victim",
                "metadata.uid: Invalid value: \"../../victim\"",
            ),
            ("uid: 0123abcd", "uid: ..", "metadata.uid"),
            ("uid: 0123abcd", "uid: a_b", "metadata.uid"),
            (
                "namespace: default",
                "namespace: ../x",
                "metadata.namespace: Invalid value: \"../x\"",
            ),
            (
                "name: web-node1",
                "name: ../web",
                "metadata.name: Invalid value: \"../web\"",
            ),
            (
                "- name: data\n    emptyDir",
                "- name: ../data\n    emptyDir",
                "spec.volumes[0].name: Invalid value: \"../data\"",
            ),
            (
                "- name: app\n",
                "- name: a/b\n",
                "spec.containers[0].name: Invalid value: \"a/b\"",
            ),
            (
                "subPath: a/b",
                "subPath: ../../etc",
                "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../../etc\": must not contain '..'",
            ),
            ("subPath: a/b", "subPath: /etc", "must be a relative path"),
            (
                "path: /srv/data",
                "path: /srv/../etc",
                "spec.volumes[1].hostPath.path: Invalid value: \"/srv/../etc\": must not contain '..'",
            ),
        ];
        for (from, to, expected) in cases {
            let yaml = GOOD.replacen(from, to, 1);
            assert_ne!(yaml, GOOD, "{from}");
            let errs = errors(&yaml);
            assert!(
                errs.iter().any(|e| e.contains(expected)),
                "{to}: expected {expected:?} in {errs:?}"
            );
        }
    }

    #[test]
    fn names_and_values_follow_the_api_server() {
        let cases = [
            ("name: web-node1", "name: Web", "metadata.name"),
            ("namespace: default", "namespace: a.b", "metadata.namespace"),
            (
                "- name: app\n",
                "- name: data\n    image: x\n  - name: data\n",
                "spec.containers[1].name: Duplicate value: \"data\"",
            ),
            (
                "- name: host\n",
                "- name: data\n",
                "spec.volumes[1].name: Duplicate value",
            ),
            (
                "image: busybox",
                "image: ' busybox'",
                "leading or trailing whitespace",
            ),
            (
                "{name: A_B, value: x}",
                "{name: 'A=B', value: x}",
                "spec.containers[0].env[0].name",
            ),
            (
                "containerPort: 80",
                "containerPort: 70000",
                "containerPort: Invalid value: \"70000\"",
            ),
            (
                "cpu: 100m, memory: 1Mi}",
                "cpu: 100m, memory: 1e38}",
                "must be less than 2^63",
            ),
            ("memory: 2Mi}", "memory: 2Xi}", "quantities must match"),
            (
                "cpu: 100m,",
                "cpu: '2',",
                "must be less than or equal to cpu limit",
            ),
            (
                "type: DirectoryOrCreate",
                "type: Dir",
                "Unsupported value: \"Dir\"",
            ),
            (
                "{name: host, mountPath: /host}",
                "{name: nope, mountPath: /host}",
                "not found in spec.volumes",
            ),
            (
                "{name: host, mountPath: /host}",
                "{name: host, mountPath: /data}",
                "must be unique",
            ),
            (
                "{name: host, mountPath: /host}",
                "{name: host, mountPath: /host, mountPropagation: Bidirectional}",
                "only to privileged containers",
            ),
            (
                "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_local_port_range*",
                "sysctls[0].name",
            ),
            ("app: web", "app: 'we b'", "metadata.labels[app]"),
        ];
        for (from, to, expected) in cases {
            let yaml = GOOD.replacen(from, to, 1);
            assert_ne!(yaml, GOOD, "{from}");
            let errs = errors(&yaml);
            assert!(
                errs.iter().any(|e| e.contains(expected)),
                "{to}: expected {expected:?} in {errs:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml = GOOD.replacen("uid: 0123abcd", "uid: ../x", 1).replacen(
            "namespace: default",
            "namespace: ../y",
            1,
        );
        let err = validate_pod(&pod(&yaml)).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with('[')
                && text.contains("metadata.uid")
                && text.contains("metadata.namespace"),
            "{text}"
        );
    }

    #[test]
    fn missing_spec_and_containers() {
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: b}\n");
        assert_eq!(
            validate_pod(&p).unwrap_err().to_string(),
            "spec: Required value"
        );
        let p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: b}\nspec: {containers: []}\n",
        );
        assert_eq!(
            validate_pod(&p).unwrap_err().to_string(),
            "spec.containers: Required value"
        );
    }
}
