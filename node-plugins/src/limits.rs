//! What the device manager accepts from a device plugin.
//!
//! A device plugin runs with the privileges it needs to hand out hardware, but its messages are
//! still input: a buggy or hostile plugin must not make the agent use unbounded memory, write
//! malformed entries into the CRI container config or the `kubelet_internal_checkpoint`, or
//! confuse one device with another. The kubelet itself validates nothing here (it only has
//! grpc-go's default 4 MiB receive limit); the limits below are ours and are chosen well above
//! what real plugins send, so every plugin that works with the kubelet works here.
//!
//! * `ListAndWatch` lists: entries with a bad ID are dropped (logged with the resource and the
//!   plugin's socket); a duplicate ID counts once and is unhealthy unless every copy is
//!   healthy; NUMA node IDs outside `0..=MAX_NUMA_NODE_ID` are dropped; a list longer than
//!   [`MAX_DEVICES_PER_RESOURCE`] is refused as a whole (the resource's devices turn
//!   unhealthy until an acceptable list arrives).
//! * `Allocate` answers: checked entry by entry; any bad entry refuses the whole answer (a
//!   container must not start with half of what its plugin meant to give it), the allocation
//!   fails and its devices are released.
//! * `GetPreferredAllocation` answers are a hint: unknown, unavailable or repeated IDs are
//!   ignored, and the rest of the choice is made as if there were no hint.
//!
//! Device IDs may contain `/` (NVIDIA's legacy MIG IDs look like `MIG-GPU-<uuid>/1/0`): an ID
//! is only ever compared, sent back to its plugin, written into JSON (the checkpoint) or into
//! protobuf (pod-resources); it never becomes a path component.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use crate::device::{DeviceInfo, HEALTHY};
use crate::proto::deviceplugin::{ContainerAllocateResponse, Device};

/// The largest gRPC message accepted from a plugin: grpc-go's default receive limit, which is
/// what the kubelet's plugin client runs with (it sets no other).
pub const MAX_PLUGIN_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Devices one resource may advertise. KubeVirt's plugins advertise 1000 devices, SR-IOV at
/// most 256 virtual functions per physical function; a longer list is refused.
pub const MAX_DEVICES_PER_RESOURCE: usize = 16_384;
/// Distinct extended resources served by plugins at the same time (a new resource name beyond
/// it is refused at registration; the resources of the checkpoint count until they expire).
pub const MAX_RESOURCES: usize = 256;
/// Bytes in a device ID. The API comment asks for at most 63 characters but the kubelet does
/// not enforce it, so we allow four times that.
pub const MAX_DEVICE_ID_BYTES: usize = 256;
/// The largest NUMA node ID accepted in a device's topology (Linux has at most 1024 nodes,
/// `CONFIG_NODES_SHIFT` ≤ 10).
pub const MAX_NUMA_NODE_ID: i64 = 1023;
/// Entries in each list of an `Allocate` answer: envs, mounts, device nodes, annotations and
/// CDI devices, each counted separately.
pub const MAX_ALLOCATE_ENTRIES: usize = 1024;
/// Bytes in a path of a mount or device node (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Bytes in an env name, annotation key or CDI device name.
pub const MAX_KEY_BYTES: usize = 1024;
/// Bytes in an env or annotation value.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why a device ID is refused, or `None` when it is acceptable: non-empty, at most
/// [`MAX_DEVICE_ID_BYTES`], no control characters (NUL included).
pub fn device_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("empty device ID")
    } else if id.len() > MAX_DEVICE_ID_BYTES {
        Some("device ID longer than 256 bytes")
    } else if id.chars().any(char::is_control) {
        Some("device ID with a control character")
    } else {
        None
    }
}

/// A device list reduced to what the manager keeps, with what was dropped and why.
#[derive(Debug, Default)]
pub(crate) struct CheckedList {
    pub(crate) devices: BTreeMap<String, DeviceInfo>,
    /// `(shown ID, reason)` for every entry dropped or changed.
    pub(crate) dropped: Vec<(String, &'static str)>,
}

/// Checks one `ListAndWatch` message. `Err(len)` when the list is longer than
/// [`MAX_DEVICES_PER_RESOURCE`].
pub(crate) fn check_device_list(devices: Vec<Device>) -> Result<CheckedList, usize> {
    if devices.len() > MAX_DEVICES_PER_RESOURCE {
        return Err(devices.len());
    }
    let mut out = CheckedList::default();
    for d in devices {
        if let Some(reason) = device_id_problem(&d.id) {
            out.dropped.push((shown(&d.id), reason));
            continue;
        }
        let mut nodes = BTreeSet::new();
        for node in d.topology.map(|t| t.nodes).unwrap_or_default() {
            if (0..=MAX_NUMA_NODE_ID).contains(&node.id) {
                nodes.insert(node.id);
            } else {
                out.dropped.push((
                    shown(&d.id),
                    "NUMA node ID out of range (dropped from topology)",
                ));
            }
        }
        let healthy = d.health == HEALTHY;
        match out.devices.get_mut(&d.id) {
            Some(existing) => {
                out.dropped
                    .push((shown(&d.id), "duplicate device ID (counted once)"));
                // Healthy only if every report says so; topologies are merged.
                existing.healthy &= healthy;
                let mut merged: BTreeSet<i64> = existing.numa_nodes.iter().copied().collect();
                merged.extend(nodes);
                existing.numa_nodes = merged.into_iter().collect();
            }
            None => {
                out.devices.insert(
                    d.id.clone(),
                    DeviceInfo {
                        id: d.id,
                        healthy,
                        numa_nodes: nodes.into_iter().collect(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// What is wrong with one entry of an `Allocate` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseProblem {
    /// The field, e.g. `mounts[2].host_path`.
    pub field: String,
    /// The value, shortened to 64 characters for messages.
    pub value: String,
    /// What was expected.
    pub reason: &'static str,
}

impl std::fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.field, self.value, self.reason)
    }
}

/// Checks a `ContainerAllocateResponse` before anything of it reaches a CRI config or the
/// checkpoint: list lengths, env names (non-empty, no `=`), paths (absolute, no `..`, no
/// NUL, at most [`MAX_PATH_BYTES`]), device permissions (a subset of `rwm`), annotation keys,
/// CDI device names (`vendor/class=name`) and value sizes.
pub fn check_allocate_response(
    response: &ContainerAllocateResponse,
) -> Result<(), ResponseProblem> {
    let problem = |field: String, value: &str, reason: &'static str| ResponseProblem {
        field,
        value: shown(value),
        reason,
    };
    for (field, len) in [
        ("envs", response.envs.len()),
        ("mounts", response.mounts.len()),
        ("devices", response.devices.len()),
        ("annotations", response.annotations.len()),
        ("cdi_devices", response.cdi_devices.len()),
    ] {
        if len > MAX_ALLOCATE_ENTRIES {
            return Err(problem(
                field.to_owned(),
                &len.to_string(),
                "more than 1024 entries",
            ));
        }
    }
    for (key, value) in &response.envs {
        if let Some(reason) = key_problem(key) {
            return Err(problem("envs key".to_owned(), key, reason));
        }
        if key.contains('=') {
            return Err(problem("envs key".to_owned(), key, "env name with '='"));
        }
        if let Some(reason) = value_problem(value) {
            return Err(problem(format!("envs[{key}]"), value, reason));
        }
    }
    for (i, m) in response.mounts.iter().enumerate() {
        if let Some(reason) = path_problem(&m.container_path) {
            return Err(problem(
                format!("mounts[{i}].container_path"),
                &m.container_path,
                reason,
            ));
        }
        if let Some(reason) = path_problem(&m.host_path) {
            return Err(problem(
                format!("mounts[{i}].host_path"),
                &m.host_path,
                reason,
            ));
        }
    }
    for (i, d) in response.devices.iter().enumerate() {
        if let Some(reason) = path_problem(&d.container_path) {
            return Err(problem(
                format!("devices[{i}].container_path"),
                &d.container_path,
                reason,
            ));
        }
        if let Some(reason) = path_problem(&d.host_path) {
            return Err(problem(
                format!("devices[{i}].host_path"),
                &d.host_path,
                reason,
            ));
        }
        if !permissions_ok(&d.permissions) {
            return Err(problem(
                format!("devices[{i}].permissions"),
                &d.permissions,
                "expected a combination of r, w and m",
            ));
        }
    }
    for (key, value) in &response.annotations {
        if let Some(reason) = key_problem(key) {
            return Err(problem("annotations key".to_owned(), key, reason));
        }
        if let Some(reason) = value_problem(value) {
            return Err(problem(format!("annotations[{key}]"), value, reason));
        }
    }
    for (i, c) in response.cdi_devices.iter().enumerate() {
        if let Some(reason) = cdi_name_problem(&c.name) {
            return Err(problem(format!("cdi_devices[{i}].name"), &c.name, reason));
        }
    }
    Ok(())
}

fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("empty")
    } else if key.len() > MAX_KEY_BYTES {
        Some("longer than 1024 bytes")
    } else if key.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

fn value_problem(value: &str) -> Option<&'static str> {
    if value.len() > MAX_VALUE_BYTES {
        Some("longer than 65536 bytes")
    } else if value.contains('\0') {
        Some("contains NUL")
    } else {
        None
    }
}

fn path_problem(path: &str) -> Option<&'static str> {
    if path.len() > MAX_PATH_BYTES {
        return Some("path longer than 4096 bytes");
    }
    if path.contains('\0') {
        return Some("path contains NUL");
    }
    if !path.starts_with('/') {
        return Some("expected an absolute path");
    }
    if Path::new(path)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Some("path with a '..' component");
    }
    None
}

fn permissions_ok(permissions: &str) -> bool {
    let mut seen = BTreeSet::new();
    permissions
        .chars()
        .all(|c| matches!(c, 'r' | 'w' | 'm') && seen.insert(c))
}

/// A CDI device name: `vendor/class=name` with the CDI spec's character sets
/// (vendor: alphanumerics, `-`, `_`, `.`; class: alphanumerics, `-`, `_`; name: alphanumerics,
/// `-`, `_`, `.`, `:`), each part non-empty and starting with an alphanumeric.
fn cdi_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > MAX_KEY_BYTES {
        return Some("longer than 1024 bytes");
    }
    let Some((kind, device)) = name.split_once('=') else {
        return Some("expected vendor/class=name");
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return Some("expected vendor/class=name");
    };
    let part = |s: &str, extra: &[char]| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c))
    };
    if part(vendor, &['.']) && part(class, &[]) && part(device, &['.', ':']) {
        None
    } else {
        Some("expected vendor/class=name of [A-Za-z0-9_.:-]")
    }
}

/// A value as shown in logs and errors: at most 64 characters, escaped by `{:?}` later.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        return value.to_owned();
    }
    let mut s: String = value.chars().take(MAX).collect();
    s.push_str("...");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::deviceplugin::{CdiDevice, DeviceSpec, Mount, NumaNode, TopologyInfo};

    fn device(id: &str, health: &str, nodes: &[i64]) -> Device {
        Device {
            id: id.to_owned(),
            health: health.to_owned(),
            topology: (!nodes.is_empty()).then(|| TopologyInfo {
                nodes: nodes.iter().map(|&id| NumaNode { id }).collect(),
            }),
        }
    }

    #[test]
    fn device_ids_are_checked() {
        assert_eq!(device_id_problem("GPU-fef8089b"), None);
        assert_eq!(device_id_problem("MIG-GPU-x/1/0"), None);
        assert_eq!(device_id_problem("0000:3b:02.1"), None);
        assert!(device_id_problem("").is_some());
        assert!(device_id_problem("a\0b").is_some());
        assert!(device_id_problem("a\nb").is_some());
        assert!(device_id_problem("\u{1b}[31m").is_some());
        assert_eq!(device_id_problem(&"x".repeat(256)), None);
        assert!(device_id_problem(&"x".repeat(257)).is_some());
    }

    #[test]
    fn bad_entries_are_dropped_and_duplicates_merged() {
        let checked = check_device_list(vec![
            device("ok", HEALTHY, &[0]),
            device("", HEALTHY, &[]),
            device("nul\0", HEALTHY, &[]),
            device("dup", HEALTHY, &[1]),
            device("dup", "Unhealthy", &[2, -1, 5000]),
            device("slash/ok", "weird", &[]),
        ])
        .unwrap();
        let ids: Vec<&String> = checked.devices.keys().collect();
        assert_eq!(ids, ["dup", "ok", "slash/ok"]);
        let dup = &checked.devices["dup"];
        assert!(!dup.healthy, "a conflicting duplicate is unhealthy");
        assert_eq!(dup.numa_nodes, [1, 2]);
        assert!(checked.devices["ok"].healthy);
        assert!(!checked.devices["slash/ok"].healthy);
        // Two bad IDs, one duplicate, two NUMA IDs out of range.
        assert_eq!(checked.dropped.len(), 5, "{:?}", checked.dropped);
    }

    #[test]
    fn overlong_lists_are_refused() {
        let list: Vec<Device> = (0..=MAX_DEVICES_PER_RESOURCE)
            .map(|i| device(&format!("d{i}"), HEALTHY, &[]))
            .collect();
        assert_eq!(
            check_device_list(list).unwrap_err(),
            MAX_DEVICES_PER_RESOURCE + 1
        );
    }

    fn good_response() -> ContainerAllocateResponse {
        let mut r = ContainerAllocateResponse::default();
        r.envs
            .insert("NVIDIA_VISIBLE_DEVICES".into(), "GPU-1".into());
        r.mounts.push(Mount {
            container_path: "/usr/lib/x".into(),
            host_path: "/opt/x".into(),
            read_only: true,
        });
        r.devices.push(DeviceSpec {
            container_path: "/dev/nvidia0".into(),
            host_path: "/dev/nvidia0".into(),
            permissions: "rwm".into(),
        });
        r.annotations.insert("example.com/a".into(), "1".into());
        r.cdi_devices.push(CdiDevice {
            name: "nvidia.com/gpu=GPU-1:0".into(),
        });
        r
    }

    #[test]
    fn good_responses_pass() {
        check_allocate_response(&good_response()).unwrap();
        check_allocate_response(&ContainerAllocateResponse::default()).unwrap();
    }

    #[test]
    fn bad_responses_name_the_field() {
        type Change = Box<dyn Fn(&mut ContainerAllocateResponse)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "envs key",
                Box::new(|r| {
                    r.envs.insert(String::new(), "x".into());
                }),
            ),
            (
                "envs key",
                Box::new(|r| {
                    r.envs.insert("A=B".into(), "x".into());
                }),
            ),
            (
                "envs[A]",
                Box::new(|r| {
                    r.envs.insert("A".into(), "x\0y".into());
                }),
            ),
            (
                "envs[A]",
                Box::new(|r| {
                    r.envs.insert("A".into(), "x".repeat(MAX_VALUE_BYTES + 1));
                }),
            ),
            (
                "envs",
                Box::new(|r| {
                    for i in 0..=MAX_ALLOCATE_ENTRIES {
                        r.envs.insert(format!("E{i}"), String::new());
                    }
                }),
            ),
            (
                "mounts[1].host_path",
                Box::new(|r| {
                    r.mounts.push(Mount {
                        container_path: "/x".into(),
                        host_path: "relative".into(),
                        read_only: false,
                    });
                }),
            ),
            (
                "mounts[1].container_path",
                Box::new(|r| {
                    r.mounts.push(Mount {
                        container_path: "/x/../../etc".into(),
                        host_path: "/y".into(),
                        read_only: false,
                    });
                }),
            ),
            (
                "devices[1].permissions",
                Box::new(|r| {
                    r.devices.push(DeviceSpec {
                        container_path: "/dev/x".into(),
                        host_path: "/dev/x".into(),
                        permissions: "rwx".into(),
                    });
                }),
            ),
            (
                "devices[1].permissions",
                Box::new(|r| {
                    r.devices.push(DeviceSpec {
                        container_path: "/dev/x".into(),
                        host_path: "/dev/x".into(),
                        permissions: "rr".into(),
                    });
                }),
            ),
            (
                "devices[1].host_path",
                Box::new(|r| {
                    r.devices.push(DeviceSpec {
                        container_path: "/dev/x".into(),
                        host_path: format!("/{}", "d".repeat(MAX_PATH_BYTES)),
                        permissions: "r".into(),
                    });
                }),
            ),
            (
                "annotations key",
                Box::new(|r| {
                    r.annotations.insert("a\u{7}".into(), "x".into());
                }),
            ),
            (
                "cdi_devices[1].name",
                Box::new(|r| {
                    r.cdi_devices.push(CdiDevice {
                        name: "no-equals".into(),
                    });
                }),
            ),
            (
                "cdi_devices[1].name",
                Box::new(|r| {
                    r.cdi_devices.push(CdiDevice {
                        name: "vendor.com/cl ass=x".into(),
                    });
                }),
            ),
        ];
        for (field, change) in cases {
            let mut r = good_response();
            change(&mut r);
            let problem = check_allocate_response(&r).unwrap_err();
            assert_eq!(problem.field, field, "{problem}");
            assert!(problem.value.chars().count() <= 67, "{problem}");
        }
    }
}
