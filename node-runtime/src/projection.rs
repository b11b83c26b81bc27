//! Payloads of the kubelet's projected-content volumes, for [`crate::atomic_writer`]: pure
//! functions from the volume source and the objects the caller fetched to the files to write.
//!
//! * configMap (`pkg/volume/configmap` `MakePayload`), secret (`pkg/volume/secret`),
//!   downwardAPI (`pkg/volume/downwardapi` `CollectData`, `pkg/fieldpath`,
//!   `pkg/api/v1/resource` helpers) and projected (`pkg/volume/projected` `collectData`).
//! * `defaultMode` defaults to [`DEFAULT_MODE`] (0644, the API default) and a per-item `mode`
//!   overrides it; modes outside `0..=0777` are refused (the API server's rule).
//! * Errors are the kubelet's messages (the caller shows them as
//!   `MountVolume.SetUp failed for volume "<name>" : <error>`); checks the kubelet leaves to
//!   the API server or to the atomic writer name the field
//!   (`configMap.items[0].path: invalid path: must not contain '..': ../x`).
//!
//! Everything here is decided from the inputs alone: the caller fetches the objects (from the
//! API server or a cache), requests the service-account tokens and hands them over in
//! [`ProjectionInputs`].
//!
//! Differences from the kubelet: paths and keys are checked here already (the kubelet leaves
//! that to the atomic writer, with the same result: the volume fails); two sources of a
//! projected volume producing the same path is an error here (the kubelet lets the later one
//! win silently); quantities are computed exactly (the kubelet's arithmetic, rounding up),
//! pod-level resources (`spec.resources`) are not used as the default limit.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource,
    KeyToPath, Pod, ProjectedVolumeSource, ResourceFieldSelector, Secret, SecretVolumeSource,
    Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::atomic_writer::{FileProjection, clean_path, validate_path};

/// The API default of `defaultMode` for configMap, secret, downwardAPI and projected volumes.
pub const DEFAULT_MODE: u32 = 0o644;

/// Mode of a service-account token file when `fsUser` or `fsGroup` is set (the kubelet then
/// relies on the fsGroup ownership step to make it 0640).
pub const TOKEN_MODE_WITH_FS_IDS: u32 = 0o600;

/// What a volume projects: relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// What the caller fetched for a pod, by name in the pod's namespace. An object missing from
/// a map is "not found" (an optional reference then gives no files, a required one an
/// error).
#[derive(Debug, Clone, Copy)]
pub struct ProjectionInputs<'a> {
    /// ConfigMaps by name.
    pub config_maps: &'a BTreeMap<String, ConfigMap>,
    /// Secrets by name.
    pub secrets: &'a BTreeMap<String, Secret>,
    /// The node's `status.allocatable`: the default of a container's unset `limits.cpu`,
    /// `limits.memory` and `limits.ephemeral-storage` for `resourceFieldRef`.
    pub node_allocatable: &'a BTreeMap<String, Quantity>,
    /// For a projected volume: the token of `sources[i].serviceAccountToken` at index `i`
    /// (the TokenRequest's `status.token`); `None` (or a short slice) when the caller has
    /// none, which is an error for that source.
    pub service_account_tokens: &'a [Option<&'a str>],
    /// The pod's `FsUser` (the kubelet's: the common `runAsUser` of its containers), owner
    /// of service-account token files.
    pub fs_user: Option<u32>,
    /// The pod's `securityContext.fsGroup`; only decides the token file mode here (see
    /// [`with_fs_group`] for the ownership step).
    pub fs_group: Option<u32>,
}

/// The payload of `volume` when it is a configMap, secret, downwardAPI or projected volume,
/// `None` for other volume types.
pub fn volume_payload(
    volume: &Volume,
    pod: &Pod,
    inputs: &ProjectionInputs<'_>,
) -> Option<Result<Payload, String>> {
    if let Some(source) = &volume.config_map {
        return Some(config_map_payload(
            source,
            inputs.config_maps.get(&source.name),
        ));
    }
    if let Some(source) = &volume.secret {
        let name = source.secret_name.as_deref().unwrap_or_default();
        return Some(secret_payload(source, inputs.secrets.get(name)));
    }
    if let Some(source) = &volume.downward_api {
        return Some(downward_api_payload(source, pod, inputs.node_allocatable));
    }
    volume
        .projected
        .as_ref()
        .map(|source| projected_payload(source, pod, inputs))
}

/// A configMap volume's files (`configmap.MakePayload` and `SetUpAt`): without `items`
/// every `data` key then every `binaryData` key at `defaultMode`; with `items` the listed keys
/// (`data` first, then `binaryData`) at their `path` and `mode`, a missing key being
/// `configmap references non-existent config key: <key>` unless `optional`. A missing
/// configMap (`None`) gives no files when `optional`, else `configmap "<name>" not found`
/// (the message of the kubelet's default, watch-based object manager).
pub fn config_map_payload(
    source: &ConfigMapVolumeSource,
    config_map: Option<&ConfigMap>,
) -> Result<Payload, String> {
    let optional = source.optional == Some(true);
    let default_mode = mode("configMap.defaultMode", source.default_mode, DEFAULT_MODE)?;
    let Some(config_map) = config_map else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("configmap {} not found", go_quote(&source.name)))
        };
    };
    config_map_files(
        "configMap",
        &source.name,
        source.items.as_deref(),
        config_map,
        default_mode,
        optional,
    )
}

/// A secret volume's files (`secret.MakePayload` and `SetUpAt`): as
/// [`config_map_payload`] with the secret's `data` (`stringData` is never stored by the API
/// server), a missing key being `references non-existent secret key: <key>` and a missing
/// secret `secret "<name>" not found`.
pub fn secret_payload(
    source: &SecretVolumeSource,
    secret: Option<&Secret>,
) -> Result<Payload, String> {
    let optional = source.optional == Some(true);
    let default_mode = mode("secret.defaultMode", source.default_mode, DEFAULT_MODE)?;
    let name = source.secret_name.as_deref().unwrap_or_default();
    let Some(secret) = secret else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("secret {} not found", go_quote(name)))
        };
    };
    secret_files(
        "secret",
        name,
        source.items.as_deref(),
        secret,
        default_mode,
        optional,
    )
}

/// A downwardAPI volume's files (`downwardapi.CollectData`): each item's `fieldRef`
/// ([`extract_field_path`]) or `resourceFieldRef` (the named container's value with its
/// unset or zero CPU, memory and ephemeral-storage limits defaulted to `node_allocatable`,
/// [`container_resource_value`]); an item with neither is an empty file. Errors of all items
/// are collected (the kubelet's aggregate: one message, or `[a, b]`).
pub fn downward_api_payload(
    source: &DownwardAPIVolumeSource,
    pod: &Pod,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<Payload, String> {
    let default_mode = mode("downwardAPI.defaultMode", source.default_mode, DEFAULT_MODE)?;
    let mut errors = Vec::new();
    let payload = downward_api_files(
        "downwardAPI",
        source.items.as_deref().unwrap_or_default(),
        pod,
        node_allocatable,
        default_mode,
        &mut errors,
    );
    aggregate(errors).map(|()| payload)
}

/// A projected volume's files (`projected.collectData`): every source in order (secret,
/// configMap, downwardAPI, serviceAccountToken), errors collected and the loop continued.
/// A token file gets [`TOKEN_MODE_WITH_FS_IDS`] when `fs_user` or `fs_group` is set, else
/// `defaultMode`, and is owned by `fs_user`. A path produced by two sources is an error.
/// `clusterTrustBundle` and `podCertificate` sources are not supported (an error).
pub fn projected_payload(
    source: &ProjectedVolumeSource,
    pod: &Pod,
    inputs: &ProjectionInputs<'_>,
) -> Result<Payload, String> {
    let default_mode = mode("projected.defaultMode", source.default_mode, DEFAULT_MODE)?;
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    // Which source produced each (cleaned) path.
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, projection) in source.sources.iter().flatten().enumerate() {
        let field = format!("projected.sources[{i}]");
        let files = if let Some(s) = &projection.secret {
            let optional = s.optional == Some(true);
            match inputs.secrets.get(&s.name) {
                Some(secret) => secret_files(
                    &format!("{field}.secret"),
                    &s.name,
                    s.items.as_deref(),
                    secret,
                    default_mode,
                    optional,
                ),
                None if optional => Ok(Payload::new()),
                None => Err(format!("secret {} not found", go_quote(&s.name))),
            }
        } else if let Some(c) = &projection.config_map {
            let optional = c.optional == Some(true);
            match inputs.config_maps.get(&c.name) {
                Some(config_map) => config_map_files(
                    &format!("{field}.configMap"),
                    &c.name,
                    c.items.as_deref(),
                    config_map,
                    default_mode,
                    optional,
                ),
                None if optional => Ok(Payload::new()),
                None => Err(format!("configmap {} not found", go_quote(&c.name))),
            }
        } else if let Some(d) = &projection.downward_api {
            let mut item_errors = Vec::new();
            let files = downward_api_files(
                &format!("{field}.downwardAPI"),
                d.items.as_deref().unwrap_or_default(),
                pod,
                inputs.node_allocatable,
                default_mode,
                &mut item_errors,
            );
            if item_errors.is_empty() {
                Ok(files)
            } else {
                errors.extend(item_errors);
                continue;
            }
        } else if let Some(t) = &projection.service_account_token {
            token_file(&field, i, t, inputs, default_mode)
        } else if projection.cluster_trust_bundle.is_some() {
            Err(format!(
                "{field}.clusterTrustBundle: not supported by this node"
            ))
        } else if projection.pod_certificate.is_some() {
            Err(format!(
                "{field}.podCertificate: not supported by this node"
            ))
        } else {
            Ok(Payload::new())
        };
        match files {
            Ok(files) => {
                for (path, file) in files {
                    let cleaned = clean_path(&path);
                    match owner.get(&cleaned) {
                        Some(&other) if other != i => errors.push(format!(
                            "{field}: path {} conflicts with projected.sources[{other}]",
                            go_quote(&path)
                        )),
                        _ => {
                            owner.insert(cleaned, i);
                            payload.insert(path, file);
                        }
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    aggregate(errors).map(|()| payload)
}

/// The kubelet's fsGroup step (`SetVolumeOwnership` for a read-only volume) on a payload:
/// every file gets group `gid` and the group read bit of `0o440` added to its mode. The
/// directories the writer makes are 0755 already.
pub fn with_fs_group(payload: &mut Payload, gid: u32) {
    for file in payload.values_mut() {
        file.gid = Some(gid);
        file.mode |= 0o440;
    }
}

fn token_file(
    field: &str,
    index: usize,
    token: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
    inputs: &ProjectionInputs<'_>,
    default_mode: u32,
) -> Result<Payload, String> {
    check_path(&format!("{field}.serviceAccountToken.path"), &token.path)?;
    let Some(content) = inputs.service_account_tokens.get(index).copied().flatten() else {
        return Err(format!(
            "{field}.serviceAccountToken: no token was obtained for this source"
        ));
    };
    let mode = if inputs.fs_user.is_some() || inputs.fs_group.is_some() {
        TOKEN_MODE_WITH_FS_IDS
    } else {
        default_mode
    };
    Ok(Payload::from([(
        token.path.clone(),
        FileProjection {
            data: content.as_bytes().to_vec(),
            mode,
            uid: inputs.fs_user,
            gid: None,
        },
    )]))
}

/// `MakePayload` over a configMap's `data` then `binaryData`.
fn config_map_files(
    field: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    config_map: &ConfigMap,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = config_map.data.as_ref();
    let binary = config_map.binary_data.as_ref();
    let all = data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .chain(
            binary
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.0.as_slice())),
        );
    let lookup = |key: &str| {
        data.and_then(|d| d.get(key))
            .map(|v| v.as_bytes())
            .or_else(|| binary.and_then(|b| b.get(key)).map(|v| v.0.as_slice()))
    };
    key_files(
        field,
        &format!("configMap {}", go_quote(name)),
        items,
        all,
        lookup,
        default_mode,
        optional,
        |key| format!("configmap references non-existent config key: {key}"),
    )
}

/// `MakePayload` over a secret's `data`.
fn secret_files(
    field: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = secret.data.as_ref();
    let all = data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()));
    let lookup = |key: &str| data.and_then(|d| d.get(key)).map(|v| v.0.as_slice());
    key_files(
        field,
        &format!("secret {}", go_quote(name)),
        items,
        all,
        lookup,
        default_mode,
        optional,
        |key| format!("references non-existent secret key: {key}"),
    )
}

/// The shared body of configMap and secret `MakePayload`.
#[expect(
    clippy::too_many_arguments,
    reason = "one private helper shared by two callers; a struct would only rename the arguments"
)]
fn key_files<'d>(
    field: &str,
    object: &str,
    items: Option<&[KeyToPath]>,
    all: impl Iterator<Item = (&'d str, &'d [u8])>,
    lookup: impl Fn(&str) -> Option<&'d [u8]>,
    default_mode: u32,
    optional: bool,
    missing: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    match items.filter(|items| !items.is_empty()) {
        None => {
            for (key, data) in all {
                check_path(&format!("{object} key {}", go_quote(key)), key)?;
                payload.insert(key.to_owned(), FileProjection::new(data, default_mode));
            }
        }
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                let Some(data) = lookup(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(missing(&item.key));
                };
                check_path(&format!("{field}.items[{i}].path"), &item.path)?;
                let mode = mode(&format!("{field}.items[{i}].mode"), item.mode, default_mode)?;
                payload.insert(item.path.clone(), FileProjection::new(data, mode));
            }
        }
    }
    Ok(payload)
}

/// `CollectData`: errors go to `errors`, files of failed items are left out.
fn downward_api_files(
    field: &str,
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    node_allocatable: &BTreeMap<String, Quantity>,
    default_mode: u32,
    errors: &mut Vec<String>,
) -> Payload {
    let mut payload = Payload::new();
    for (i, item) in items.iter().enumerate() {
        let item_field = format!("{field}.items[{i}]");
        let mode = match check_path(&format!("{item_field}.path"), &item.path)
            .and_then(|()| mode(&format!("{item_field}.mode"), item.mode, default_mode))
        {
            Ok(mode) => mode,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let value = if let Some(field_ref) = &item.field_ref {
            extract_field_path(pod, &field_ref.field_path)
        } else if let Some(resource_ref) = &item.resource_field_ref {
            let name = resource_ref.container_name.as_deref().unwrap_or_default();
            find_container(pod, name).and_then(|c| {
                container_resource_value(resource_ref, &merge_container_limits(c, node_allocatable))
            })
        } else {
            Ok(String::new())
        };
        match value {
            Ok(value) => {
                payload.insert(clean_path(&item.path), FileProjection::new(value, mode));
            }
            Err(e) => errors.push(e),
        }
    }
    payload
}

/// The atomic writer's path check, with the field in the message.
fn check_path(field: &str, path: &str) -> Result<(), String> {
    validate_path(path)
        .and_then(|()| validate_path(&clean_path(path)))
        .map_err(|e| format!("{field}: {e}"))
}

/// A `defaultMode`/`mode`, defaulted, checked against the API's `0..=0777`.
fn mode(field: &str, mode: Option<i32>, default: u32) -> Result<u32, String> {
    match mode {
        None => Ok(default),
        Some(m) => u32::try_from(m)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                format!(
                    "{field}: Invalid value: {m}: must be a number between 0 and 0777 (octal), both inclusive"
                )
            }),
    }
}

/// `utilerrors.NewAggregate(errs)`: `Ok` when empty, the one message, or
/// `[a, b]` with duplicates dropped.
pub(crate) fn aggregate(errors: Vec<String>) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => Ok(()),
        1 => Err(seen.remove(0)),
        _ => Err(format!("[{}]", seen.join(", "))),
    }
}

// ---------------------------------------------------------------------------------------------
// pkg/fieldpath

/// The kubelet's `fieldpath.ExtractFieldPathAsString` on a pod: `metadata.name`,
/// `metadata.namespace`, `metadata.uid`, `metadata.labels` and `metadata.annotations`
/// ([`format_map`]), and `metadata.labels['<key>']` / `metadata.annotations['<key>']` (the
/// value, empty when absent; the key must be a qualified name, lower-cased first for
/// annotations). Anything else: `unsupported fieldPath: <path>`.
pub fn extract_field_path(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((path, subscript)) = split_maybe_subscripted_path(field_path) {
        let (map, key_errors) = match path {
            "metadata.annotations" => (
                meta.annotations.as_ref(),
                qualified_name_errors(&subscript.to_lowercase()),
            ),
            "metadata.labels" => (meta.labels.as_ref(), qualified_name_errors(subscript)),
            _ => {
                return Err(format!(
                    "fieldPath {} does not support subscript",
                    go_quote(field_path)
                ));
            }
        };
        if !key_errors.is_empty() {
            return Err(format!(
                "invalid key subscript in {field_path}: {}",
                key_errors.join(";")
            ));
        }
        return Ok(map
            .and_then(|m| m.get(subscript))
            .cloned()
            .unwrap_or_default());
    }
    let empty = BTreeMap::new();
    match field_path {
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref().unwrap_or(&empty))),
        "metadata.labels" => Ok(format_map(meta.labels.as_ref().unwrap_or(&empty))),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(format!("unsupported fieldPath: {field_path}")),
    }
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.annotations['a[b]c']` →
/// `("metadata.annotations", "a[b]c")`; `None` when not subscripted.
pub fn split_maybe_subscripted_path(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// `fieldpath.FormatMap`: `key="value"` lines sorted by key, values quoted like Go's `%q`,
/// no trailing newline.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` (`%q`) for a valid UTF-8 string: `"` and `\` escaped, `\a \b \f \n
/// \r \t \v`, other control bytes as `\xHH`, non-printable characters as `\uHHHH` or
/// `\UHHHHHHHH`, everything printable as is. "Printable" follows Go's `unicode.IsPrint`
/// (letters, marks, numbers, punctuation, symbols and U+0020) for every character this
/// crate can tell apart without a Unicode table: controls, spaces other than U+0020, the
/// format characters, surrogates, private-use characters and noncharacters are escaped;
/// an unassigned code point is printed as is (Go escapes it).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` (see [`go_quote`]).
fn is_go_printable(c: char) -> bool {
    let u = u32::from(c);
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let noncharacter = matches!(u, 0xFDD0..=0xFDEF) || (u & 0xFFFE) == 0xFFFE;
    !(format || private_use || noncharacter)
}

/// `validation.IsQualifiedName`'s messages (empty when valid): `[prefix/]name`, the prefix
/// a DNS-1123 subdomain, the name at most 63 characters of `[-A-Za-z0-9_.]` starting and
/// ending alphanumeric.
fn qualified_name_errors(value: &str) -> Vec<String> {
    const NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else if !crate::validation::is_dns_subdomain(prefix) {
                errors.push(
                    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                    .to_owned(),
                );
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a qualified name {NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    let bytes = name.as_bytes();
    let shaped = !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b));
    if !shaped {
        errors.push(format!("name part {NAME_MSG}"));
    }
    errors
}

// ---------------------------------------------------------------------------------------------
// pkg/api/v1/resource

/// `findContainerInPod`: the container or init container named `name`, else
/// `container <name> not found`.
pub fn find_container<'p>(pod: &'p Pod, name: &str) -> Result<&'p Container, String> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter())
        .chain(
            spec.into_iter()
                .flat_map(|s| s.init_containers.iter().flatten()),
        )
        .find(|c| c.name == name)
        .ok_or_else(|| format!("container {name} not found"))
}

/// `MergeContainerResourceLimits`: a copy of `container` whose CPU, memory and
/// ephemeral-storage limits, when unset or zero, are the node's allocatable amounts (hugepages
/// are never defaulted).
pub fn merge_container_limits(
    container: &Container,
    allocatable: &BTreeMap<String, Quantity>,
) -> Container {
    let mut merged = container.clone();
    let resources = merged.resources.get_or_insert_with(Default::default);
    let limits = resources.limits.get_or_insert_with(BTreeMap::new);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let unset = limits
            .get(name)
            .is_none_or(|q| node_config::Quantity::parse(&q.0).is_ok_and(|q| q.is_zero()));
        if unset && let Some(amount) = allocatable.get(name) {
            limits.insert(name.to_owned(), amount.clone());
        }
    }
    merged
}

/// `ExtractContainerResourceValue`: `limits.`/`requests.` `cpu` (millicores divided by
/// the divisor's), `memory`, `ephemeral-storage` and `hugepages-<size>` (bytes divided by
/// the divisor's), rounded up, as an integer. An unset amount is 0; the divisor defaults to
/// 1 (also when zero). Anything else: `unsupported container resource : <resource>`.
pub fn container_resource_value(
    selector: &ResourceFieldSelector,
    container: &Container,
) -> Result<String, String> {
    let divisor = match &selector.divisor {
        Some(q) if scaled_ceil(&q.0, 3)? != 0 => q.0.as_str(),
        _ => "1",
    };
    let resources = container.resources.as_ref();
    let (requests, limits) = (
        resources.and_then(|r| r.requests.as_ref()),
        resources.and_then(|r| r.limits.as_ref()),
    );
    let (map, name) = match selector.resource.split_once('.') {
        Some(("limits", name)) => (limits, name),
        Some(("requests", name)) => (requests, name),
        _ => return Err(unsupported_resource(&selector.resource)),
    };
    let amount = map.and_then(|m| m.get(name)).map_or("0", |q| q.0.as_str());
    let (value, divisor) = match name {
        "cpu" => (scaled_ceil(amount, 3)?, scaled_ceil(divisor, 3)?),
        "memory" | "ephemeral-storage" => (scaled_ceil(amount, 0)?, scaled_ceil(divisor, 0)?),
        n if n.starts_with("hugepages-") => (scaled_ceil(amount, 0)?, scaled_ceil(divisor, 0)?),
        _ => return Err(unsupported_resource(&selector.resource)),
    };
    // The kubelet's `int64(math.Ceil(float64(v) / float64(d)))`.
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "the kubelet's own float arithmetic, reproduced on purpose"
    )]
    let result = ((value as f64) / (divisor as f64)).ceil() as i64;
    Ok(result.to_string())
}

fn unsupported_resource(resource: &str) -> String {
    format!("unsupported container resource : {resource}")
}

/// `quantity × 10^scale` rounded away from zero, exactly (Go's `Quantity.MilliValue()` for
/// scale 3, `Value()` for 0). The text is checked with [`node_config::Quantity::parse`]
/// (syntax, at most 2^63 in magnitude), then computed on its decimal digits.
pub(crate) fn scaled_ceil(text: &str, scale: u32) -> Result<i128, String> {
    let parsed = node_config::Quantity::parse(text).map_err(|e| e.to_string())?;
    let s = parsed.as_str();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let split = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = body.split_at(split);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let out_of_range = || format!("quantity {text:?} is out of range");
    let mut exp10 =
        i64::from(scale) - i64::try_from(frac_part.len()).map_err(|_| out_of_range())?;
    let binary = match suffix {
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        "Ti" => 40,
        "Pi" => 50,
        "Ei" => 60,
        _ => 0,
    };
    exp10 += match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => 0,
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        exp => exp
            .get(1..)
            .and_then(|e| e.parse::<i64>().ok())
            .ok_or_else(out_of_range)?,
    };
    for _ in 0..binary {
        double(&mut digits);
    }
    // Leading zeros carry no value.
    let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
    let digits = &digits[first..];
    let (kept, sticky) = if exp10 >= 0 {
        if digits.is_empty() {
            return Ok(0);
        }
        let zeros = usize::try_from(exp10).map_err(|_| out_of_range())?;
        if digits.len().saturating_add(zeros) > 38 {
            return Err(out_of_range());
        }
        let mut kept = digits.to_vec();
        kept.resize(digits.len() + zeros, 0);
        (kept, false)
    } else {
        let drop = usize::try_from(-exp10).map_err(|_| out_of_range())?;
        let keep = digits.len().saturating_sub(drop);
        (
            digits[..keep].to_vec(),
            digits[keep..].iter().any(|d| *d != 0),
        )
    };
    let mut value: i128 = 0;
    for d in kept {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(d)))
            .ok_or_else(out_of_range)?;
    }
    if sticky {
        value += 1;
    }
    Ok(if negative { -value } else { value })
}

/// Doubles a big-endian decimal digit string in place.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapProjection, DownwardAPIProjection, ObjectFieldSelector, SecretProjection,
        ServiceAccountTokenProjection, VolumeProjection,
    };

    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "prod", "uid": "u-1",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"b": "two\nlines \"q\"", "a": "x\u{1}\u{e9}\u{a0}"}
            },
            "spec": {
                "containers": [
                    {"name": "app", "image": "i", "resources": {
                        "requests": {"cpu": "250m", "memory": "64Mi"},
                        "limits": {"memory": "128Mi", "hugepages-2Mi": "4Mi"}
                    }},
                    {"name": "side", "image": "i"}
                ],
                "initContainers": [{"name": "init", "image": "i", "resources": {"limits": {"cpu": "1500m"}}}]
            }
        }))
        .unwrap()
    }

    fn allocatable() -> BTreeMap<String, Quantity> {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity("3".into())),
            ("memory".to_owned(), Quantity("8Gi".into())),
            ("ephemeral-storage".to_owned(), Quantity("100G".into())),
        ])
    }

    fn config_map() -> ConfigMap {
        ConfigMap {
            data: Some(BTreeMap::from([
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
            ])),
            binary_data: Some(BTreeMap::from([(
                "bin".to_owned(),
                ByteString(vec![0, 1, 2]),
            )])),
            ..Default::default()
        }
    }

    fn secret() -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                "pw".to_owned(),
                ByteString(b"hunter2".to_vec()),
            )])),
            string_data: Some(BTreeMap::from([("ignored".to_owned(), "x".to_owned())])),
            ..Default::default()
        }
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn files(p: &Payload) -> Vec<(String, String, u32)> {
        p.iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect()
    }

    fn triple(path: &str, data: &str, mode: u32) -> (String, String, u32) {
        (path.to_owned(), data.to_owned(), mode)
    }

    #[test]
    fn config_map_without_items_takes_every_key_at_the_default_mode() {
        let source = ConfigMapVolumeSource {
            name: "cm".into(),
            default_mode: Some(0o600),
            ..Default::default()
        };
        let p = config_map_payload(&source, Some(&config_map())).unwrap();
        assert_eq!(
            files(&p),
            vec![
                triple("a", "1", 0o600),
                triple("b", "2", 0o600),
                triple("bin", "\0\u{1}\u{2}", 0o600)
            ]
        );
        let p = config_map_payload(
            &ConfigMapVolumeSource {
                name: "cm".into(),
                ..Default::default()
            },
            Some(&config_map()),
        )
        .unwrap();
        assert!(p.values().all(|f| f.mode == 0o644));
    }

    #[test]
    fn config_map_items_map_keys_to_paths_with_modes() {
        let source = ConfigMapVolumeSource {
            name: "cm".into(),
            items: Some(vec![
                item("a", "x/y/a.txt", Some(0o400)),
                item("bin", "bin", None),
            ]),
            ..Default::default()
        };
        let p = config_map_payload(&source, Some(&config_map())).unwrap();
        assert_eq!(
            files(&p),
            vec![
                triple("bin", "\0\u{1}\u{2}", 0o644),
                triple("x/y/a.txt", "1", 0o400)
            ]
        );

        let missing = ConfigMapVolumeSource {
            items: Some(vec![item("nope", "n", None), item("a", "a", None)]),
            ..source
        };
        assert_eq!(
            config_map_payload(&missing, Some(&config_map())).unwrap_err(),
            "configmap references non-existent config key: nope"
        );
        let optional = ConfigMapVolumeSource {
            optional: Some(true),
            ..missing
        };
        assert_eq!(
            files(&config_map_payload(&optional, Some(&config_map())).unwrap()),
            vec![triple("a", "1", 0o644)]
        );
    }

    #[test]
    fn missing_config_maps_and_secrets() {
        let source = ConfigMapVolumeSource {
            name: "cm".into(),
            ..Default::default()
        };
        assert_eq!(
            config_map_payload(&source, None).unwrap_err(),
            "configmap \"cm\" not found"
        );
        let optional = ConfigMapVolumeSource {
            optional: Some(true),
            items: Some(vec![item("a", "a", None)]),
            ..source
        };
        assert!(config_map_payload(&optional, None).unwrap().is_empty());

        let source = SecretVolumeSource {
            secret_name: Some("s".into()),
            ..Default::default()
        };
        assert_eq!(
            secret_payload(&source, None).unwrap_err(),
            "secret \"s\" not found"
        );
        let optional = SecretVolumeSource {
            optional: Some(true),
            ..source
        };
        assert!(secret_payload(&optional, None).unwrap().is_empty());
    }

    #[test]
    fn secrets_project_data_only() {
        let source = SecretVolumeSource {
            secret_name: Some("s".into()),
            default_mode: Some(0o400),
            ..Default::default()
        };
        assert_eq!(
            files(&secret_payload(&source, Some(&secret())).unwrap()),
            vec![triple("pw", "hunter2", 0o400)]
        );
        let source = SecretVolumeSource {
            items: Some(vec![item("ignored", "i", None)]),
            ..source
        };
        assert_eq!(
            secret_payload(&source, Some(&secret())).unwrap_err(),
            "references non-existent secret key: ignored"
        );
    }

    #[test]
    fn hostile_keys_paths_and_modes_are_refused_naming_the_field() {
        let mut cm = config_map();
        for key in ["..data", "../x", "/etc/passwd", "a/../../b"] {
            cm.data = Some(BTreeMap::from([(key.to_owned(), "x".to_owned())]));
            let err = config_map_payload(
                &ConfigMapVolumeSource {
                    name: "cm".into(),
                    ..Default::default()
                },
                Some(&cm),
            )
            .unwrap_err();
            assert!(
                err.starts_with(&format!("configMap \"cm\" key {key:?}: invalid path")),
                "{err}"
            );
        }
        for path in ["../x", "/abs", "..data", "./..data", ""] {
            let source = ConfigMapVolumeSource {
                name: "cm".into(),
                items: Some(vec![item("a", path, None)]),
                ..Default::default()
            };
            let err = config_map_payload(&source, Some(&config_map())).unwrap_err();
            assert!(
                err.starts_with("configMap.items[0].path: invalid path"),
                "{path:?}: {err}"
            );
        }
        let source = ConfigMapVolumeSource {
            name: "cm".into(),
            items: Some(vec![item("a", "a", Some(0o4755))]),
            ..Default::default()
        };
        assert_eq!(
            config_map_payload(&source, Some(&config_map())).unwrap_err(),
            "configMap.items[0].mode: Invalid value: 2541: must be a number between 0 and 0777 (octal), both inclusive"
        );
        let source = SecretVolumeSource {
            secret_name: Some("s".into()),
            default_mode: Some(-1),
            ..Default::default()
        };
        assert!(
            secret_payload(&source, Some(&secret()))
                .unwrap_err()
                .starts_with("secret.defaultMode: Invalid value: -1")
        );
    }

    fn field_item(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: field_path.into(),
            }),
            ..Default::default()
        }
    }

    fn resource_item(
        path: &str,
        container: &str,
        resource: &str,
        divisor: Option<&str>,
    ) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some(container.into()),
                resource: resource.into(),
                divisor: divisor.map(|d| Quantity(d.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn downward_api_field_refs() {
        let source = DownwardAPIVolumeSource {
            items: Some(vec![
                field_item("name", "metadata.name"),
                field_item("ns", "metadata.namespace"),
                field_item("uid", "metadata.uid"),
                field_item("labels", "metadata.labels"),
                field_item("annotations", "metadata.annotations"),
                field_item("app", "metadata.labels['app']"),
                field_item("none", "metadata.labels['missing']"),
                field_item("./dir//b", "metadata.annotations['B']"),
                DownwardAPIVolumeFile {
                    path: "empty".into(),
                    mode: Some(0o600),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let p = downward_api_payload(&source, &pod(), &allocatable()).unwrap();
        assert_eq!(
            files(&p),
            vec![
                triple(
                    "annotations",
                    "a=\"x\\x01\u{e9}\\u00a0\"\nb=\"two\\nlines \\\"q\\\"\"",
                    0o644
                ),
                triple("app", "web", 0o644),
                triple("dir/b", "", 0o644),
                triple("empty", "", 0o600),
                triple("labels", "app=\"web\"\ntier=\"front\"", 0o644),
                triple("name", "web-1", 0o644),
                triple("none", "", 0o644),
                triple("ns", "prod", 0o644),
                triple("uid", "u-1", 0o644),
            ]
        );
    }

    #[test]
    fn downward_api_errors_are_aggregated() {
        let source = DownwardAPIVolumeSource {
            items: Some(vec![
                field_item("a", "spec.nodeName"),
                field_item("b", "metadata.labels['bad key']"),
                field_item("c", "metadata.name['x']"),
                field_item("../d", "metadata.name"),
                field_item("ok", "metadata.name"),
            ]),
            ..Default::default()
        };
        let err = downward_api_payload(&source, &pod(), &allocatable()).unwrap_err();
        assert!(err.starts_with("[unsupported fieldPath: spec.nodeName, invalid key subscript in metadata.labels['bad key']: name part must consist of"), "{err}");
        assert!(err.contains(", fieldPath \"metadata.name['x']\" does not support subscript, downwardAPI.items[3].path: invalid path: must not contain '..': ../d]"), "{err}");
        let one = DownwardAPIVolumeSource {
            items: Some(vec![field_item("a", "status.podIP")]),
            ..Default::default()
        };
        assert_eq!(
            downward_api_payload(&one, &pod(), &allocatable()).unwrap_err(),
            "unsupported fieldPath: status.podIP"
        );
    }

    #[test]
    fn downward_api_resource_refs_round_up_and_default_to_allocatable() {
        let source = DownwardAPIVolumeSource {
            items: Some(vec![
                resource_item("cpu_req", "app", "requests.cpu", None),
                resource_item("cpu_req_m", "app", "requests.cpu", Some("1m")),
                resource_item("cpu_lim", "app", "limits.cpu", None),
                resource_item("mem_lim", "app", "limits.memory", None),
                resource_item("mem_lim_mi", "app", "limits.memory", Some("1Mi")),
                resource_item("mem_req_g", "app", "requests.memory", Some("1G")),
                resource_item("eph", "app", "limits.ephemeral-storage", Some("1Gi")),
                resource_item("eph_req", "app", "requests.ephemeral-storage", None),
                resource_item("huge", "app", "limits.hugepages-2Mi", Some("1Mi")),
                resource_item("side_mem", "side", "limits.memory", Some("0")),
                resource_item("init_cpu", "init", "limits.cpu", Some("1m")),
            ]),
            ..Default::default()
        };
        let p = downward_api_payload(&source, &pod(), &allocatable()).unwrap();
        let got: BTreeMap<String, String> = files(&p).into_iter().map(|(k, v, _)| (k, v)).collect();
        let want = [
            ("cpu_req", "1"),
            ("cpu_req_m", "250"),
            ("cpu_lim", "3"),
            ("mem_lim", "134217728"),
            ("mem_lim_mi", "128"),
            ("mem_req_g", "1"),
            ("eph", "94"),
            ("eph_req", "0"),
            ("huge", "4"),
            ("side_mem", "8589934592"),
            ("init_cpu", "1500"),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}");
        }
        let bad = DownwardAPIVolumeSource {
            items: Some(vec![
                resource_item("x", "ghost", "limits.cpu", None),
                resource_item("y", "app", "limits.gpu", None),
            ]),
            ..Default::default()
        };
        assert_eq!(
            downward_api_payload(&bad, &pod(), &allocatable()).unwrap_err(),
            "[container ghost not found, unsupported container resource : limits.gpu]"
        );
    }

    #[test]
    fn scaled_ceil_is_exact() {
        let cases = [
            ("250m", 3, 250),
            ("250m", 0, 1),
            ("0.1", 3, 100),
            ("4.35", 3, 4350),
            ("1.001", 3, 1001),
            ("1n", 3, 1),
            ("1n", 0, 1),
            ("0", 3, 0),
            ("1Ki", 0, 1024),
            ("1.5Gi", 0, 1_610_612_736),
            ("0.1Ki", 0, 103),
            ("1e3", 0, 1000),
            ("1E-2", 3, 10),
            ("12e-400", 0, 1),
            ("-1.5", 0, -2),
            ("8Ei", 3, 9_223_372_036_854_775_808_000),
            ("1.0000000000000000000000000001", 0, 2),
        ];
        for (text, scale, want) in cases {
            assert_eq!(
                scaled_ceil(text, scale).unwrap(),
                want,
                "{text} x10^{scale}"
            );
        }
        assert!(scaled_ceil("abc", 0).is_err());
        assert!(scaled_ceil("1e40", 0).is_err());
    }

    #[test]
    fn format_map_quotes_like_go() {
        assert_eq!(format_map(&BTreeMap::new()), "");
        assert_eq!(
            go_quote("tab\there\\ \u{7f} \u{200b} \u{1F600} \u{e000}"),
            "\"tab\\there\\\\ \\x7f \\u200b \u{1F600} \\ue000\""
        );
    }

    #[test]
    fn projected_combines_sources_and_aggregates_errors() {
        let cms = BTreeMap::from([("cm".to_owned(), config_map())]);
        let secrets = BTreeMap::from([("s".to_owned(), secret())]);
        let alloc = allocatable();
        let tokens = [None, None, None, Some("tok")];
        let inputs = ProjectionInputs {
            config_maps: &cms,
            secrets: &secrets,
            node_allocatable: &alloc,
            service_account_tokens: &tokens,
            fs_user: None,
            fs_group: None,
        };
        let source = ProjectedVolumeSource {
            default_mode: Some(0o640),
            sources: Some(vec![
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "cm".into(),
                        items: Some(vec![item("a", "cm/a", None)]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection {
                        name: "s".into(),
                        items: None,
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![field_item("name", "metadata.name")]),
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        audience: None,
                        expiration_seconds: Some(3600),
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection {
                        name: "absent".into(),
                        items: None,
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            ]),
        };
        let p = projected_payload(&source, &pod(), &inputs).unwrap();
        assert_eq!(
            files(&p),
            vec![
                triple("cm/a", "1", 0o640),
                triple("name", "web-1", 0o640),
                triple("pw", "hunter2", 0o640),
                triple("token", "tok", 0o640)
            ]
        );
        assert_eq!(p["token"].uid, None);

        let with_ids = ProjectionInputs {
            fs_user: Some(1000),
            fs_group: Some(2000),
            ..inputs
        };
        let p = projected_payload(&source, &pod(), &with_ids).unwrap();
        assert_eq!(
            (p["token"].mode, p["token"].uid, p["pw"].mode),
            (0o600, Some(1000), 0o640)
        );

        // Errors from every source, and a conflict between sources.
        let mut bad = source;
        if let Some(sources) = bad.sources.as_mut() {
            sources.push(VolumeProjection {
                secret: Some(SecretProjection {
                    name: "gone".into(),
                    items: None,
                    optional: None,
                }),
                ..Default::default()
            });
            sources.push(VolumeProjection {
                downward_api: Some(DownwardAPIProjection {
                    items: Some(vec![
                        field_item("pw", "metadata.uid"),
                        field_item("x", "metadata.nope"),
                    ]),
                }),
                ..Default::default()
            });
            sources.push(VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    path: "t2".into(),
                    audience: None,
                    expiration_seconds: None,
                }),
                ..Default::default()
            });
            sources.push(VolumeProjection {
                config_map: Some(ConfigMapProjection {
                    name: "cm".into(),
                    items: Some(vec![item("b", "pw", None)]),
                    optional: None,
                }),
                ..Default::default()
            });
        }
        let err = projected_payload(&bad, &pod(), &inputs).unwrap_err();
        assert_eq!(
            err,
            "[secret \"gone\" not found, unsupported fieldPath: metadata.nope, projected.sources[7].serviceAccountToken: no token was obtained for this source, projected.sources[8]: path \"pw\" conflicts with projected.sources[1]]"
        );
    }

    #[test]
    fn volume_payload_dispatches_and_fs_group_adds_group_read() {
        let cms = BTreeMap::from([("cm".to_owned(), config_map())]);
        let empty_secrets = BTreeMap::new();
        let alloc = allocatable();
        let inputs = ProjectionInputs {
            config_maps: &cms,
            secrets: &empty_secrets,
            node_allocatable: &alloc,
            service_account_tokens: &[],
            fs_user: None,
            fs_group: None,
        };
        let volume = Volume {
            name: "v".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "cm".into(),
                default_mode: Some(0o600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut p = volume_payload(&volume, &pod(), &inputs).unwrap().unwrap();
        assert_eq!(p.len(), 3);
        with_fs_group(&mut p, 3000);
        assert!(p.values().all(|f| f.mode == 0o640 && f.gid == Some(3000)));
        let other = Volume {
            name: "e".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        };
        assert!(volume_payload(&other, &pod(), &inputs).is_none());
        let secret = Volume {
            name: "s".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("s".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            volume_payload(&secret, &pod(), &inputs)
                .unwrap()
                .unwrap_err(),
            "secret \"s\" not found"
        );
    }
}
