//! `device-plugins/kubelet_internal_checkpoint`: the device manager's checkpoint.
//!
//! `{"Data":{"PodDeviceEntries":[...],"RegisteredDevices":{...}},"Checksum":N,"BootID":"..."}`.
//! The checksum is FNV-1a over the spew rendering of the *value* `Data`
//! (`(checkpoint.checkpointData){...}`); `BootID` sits outside it so that adding it did not
//! invalidate older files. Third-party GPU tooling parses this file too.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::checksum::go_checksum;
use crate::error::{Error, Result};
use crate::gojson::{self, Cx, get, join, ser};
use crate::spew::{GoField, GoRender, GoValue};
use crate::store::StateFile;
use crate::{GoMap, GoSlice};

/// File name inside the device-plugin directory.
pub const DEVICE_MANAGER_CHECKPOINT_FILE: &str = "kubelet_internal_checkpoint";

/// The directory the kubelet hard-codes for device plugins and this checkpoint; it does not
/// follow `--root-dir`.
pub const DEVICE_PLUGINS_DIR: &str = "/var/lib/kubelet/device-plugins";

/// Devices of one container, per NUMA node (`-1` when the device reports no topology).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodDevicesEntry {
    /// The pod.
    #[serde(rename = "PodUID")]
    pub pod_uid: String,
    /// The container.
    pub container_name: String,
    /// The extended resource (`nvidia.com/gpu`).
    pub resource_name: String,
    /// NUMA node to device IDs.
    #[serde(rename = "DeviceIDs", serialize_with = "ser::int_keyed")]
    pub device_ids: GoMap<i64, GoSlice<String>>,
    /// The plugin's `ContainerAllocateResponse`, protobuf-encoded.
    #[serde(serialize_with = "ser::go_bytes")]
    pub alloc_resp: GoSlice<u8>,
}

/// The content of `kubelet_internal_checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceManagerState {
    /// Allocations.
    #[serde(rename = "PodDeviceEntries")]
    pub pod_device_entries: GoSlice<PodDevicesEntry>,
    /// Resource name to the healthy device IDs at write time.
    #[serde(rename = "RegisteredDevices")]
    pub registered_devices: GoMap<String, GoSlice<String>>,
    /// The checksum read from the file (0 for a state built in memory).
    #[serde(rename = "Checksum")]
    pub checksum: u64,
    /// Kernel boot ID at write time (empty for files from older kubelets).
    #[serde(rename = "BootID")]
    pub boot_id: String,
}

impl Default for DeviceManagerState {
    /// What the kubelet starts from before reading: empty, non-nil entries and devices.
    fn default() -> Self {
        DeviceManagerState {
            pod_device_entries: Some(Vec::new()),
            registered_devices: Some(BTreeMap::new()),
            checksum: 0,
            boot_id: String::new(),
        }
    }
}

impl DeviceManagerState {
    /// The checksum the kubelet computes for this content.
    pub fn compute_checksum(&self) -> u64 {
        go_checksum(self)
    }

    /// Parses without verifying the checksum.
    pub fn parse_unverified(bytes: &[u8], path: &Path) -> Result<Self> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let mut out = DeviceManagerState::default();
        if let Some(data) = get(obj, "Data") {
            // A null `Data` leaves the struct as constructed.
            if let Some(d) = cx.object(data, "Data")? {
                if let Some(v) = get(d, "PodDeviceEntries") {
                    out.pod_device_entries =
                        cx.slice(v, "Data.PodDeviceEntries", |e, f| entry(&cx, e, f))?;
                }
                if let Some(v) = get(d, "RegisteredDevices") {
                    out.registered_devices = cx.map(v, "Data.RegisteredDevices", |ids, f| {
                        cx.slice(ids, f, |s, f| cx.string(s, f))
                    })?;
                }
            }
        }
        out.checksum = get(obj, "Checksum").map_or(Ok(0), |v| cx.u64(v, "Checksum"))?;
        out.boot_id = get(obj, "BootID").map_or(Ok(String::new()), |v| cx.string(v, "BootID"))?;
        Ok(out)
    }
}

fn entry(cx: &Cx<'_>, v: &Value, field: &str) -> Result<PodDevicesEntry> {
    let Some(o) = cx.object(v, field)? else {
        return Ok(PodDevicesEntry::default());
    };
    let s =
        |name: &str| get(o, name).map_or(Ok(String::new()), |v| cx.string(v, &join(field, name)));
    Ok(PodDevicesEntry {
        pod_uid: s("PodUID")?,
        container_name: s("ContainerName")?,
        resource_name: s("ResourceName")?,
        device_ids: match get(o, "DeviceIDs") {
            None => None,
            Some(v) => cx.int_map(v, &join(field, "DeviceIDs"), |ids, f| {
                cx.slice(ids, f, |s, f| cx.string(s, f))
            })?,
        },
        alloc_resp: match get(o, "AllocResp") {
            None => None,
            Some(v) => cx.bytes(v, &join(field, "AllocResp"))?,
        },
    })
}

impl GoRender for DeviceManagerState {
    fn go_type(&self) -> Cow<'static, str> {
        // The value (not a pointer) is hashed.
        Cow::Borrowed("checkpoint.checkpointData")
    }

    fn go_value(&self) -> GoValue {
        let entries = GoValue::slice_from(self.pod_device_entries.as_deref(), |e| {
            GoValue::Struct(vec![
                GoField::new("PodUID", "string", GoValue::from(&e.pod_uid)),
                GoField::new("ContainerName", "string", GoValue::from(&e.container_name)),
                GoField::new("ResourceName", "string", GoValue::from(&e.resource_name)),
                GoField::new(
                    "DeviceIDs",
                    "checkpoint.DevicesPerNUMA",
                    GoValue::map_from(
                        e.device_ids.as_ref(),
                        |k| GoValue::Int(*k),
                        |ids| GoValue::string_slice(ids.as_deref()),
                    ),
                ),
                GoField::new(
                    "AllocResp",
                    "[]uint8",
                    GoValue::bytes(e.alloc_resp.as_deref()),
                ),
            ])
        });
        GoValue::Struct(vec![
            GoField::new("PodDeviceEntries", "[]checkpoint.PodDevicesEntry", entries),
            GoField::new(
                "RegisteredDevices",
                "map[string][]string",
                GoValue::map_from(self.registered_devices.as_ref(), GoValue::string, |ids| {
                    GoValue::string_slice(ids.as_deref())
                }),
            ),
        ])
    }
}

impl StateFile for DeviceManagerState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let state = Self::parse_unverified(bytes, path)?;
        let actual = state.compute_checksum();
        if actual != state.checksum {
            return Err(Error::Corrupted {
                path: path.to_path_buf(),
                expected: state.checksum,
                actual,
            });
        }
        Ok(state)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Data<'a> {
            #[serde(rename = "PodDeviceEntries")]
            pod_device_entries: &'a GoSlice<PodDevicesEntry>,
            #[serde(rename = "RegisteredDevices")]
            registered_devices: &'a GoMap<String, GoSlice<String>>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            data: Data<'a>,
            checksum: u64,
            #[serde(rename = "BootID", skip_serializing_if = "str::is_empty")]
            boot_id: &'a str,
        }
        gojson::to_vec(
            &Wire {
                data: Data {
                    pod_device_entries: &self.pod_device_entries,
                    registered_devices: &self.registered_devices,
                },
                checksum: self.compute_checksum(),
                boot_id: &self.boot_id,
            },
            "kubelet_internal_checkpoint",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spew::render_value;

    const GPU: &str = r#"{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{"nvidia.com/gpu":["GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0"]}},"Checksum":3952659280}"#;
    const TEGRA: &str = r#"{"Data":{"PodDeviceEntries":[{"PodUID":"bf52b2cd-b611-4e79-86b1-280b283185c3","ContainerName":"check","ResourceName":"nvidia.com/gpu","DeviceIDs":{"-1":["tegra"]},"AllocResp":"Ch8KFk5WSURJQV9WSVNJQkxFX0RFVklDRVMSBXRlZ3Jh"}],"RegisteredDevices":{"nvidia.com/gpu":["tegra"]}},"Checksum":3660592824}"#;

    fn p() -> &'static Path {
        Path::new("kubelet_internal_checkpoint")
    }

    #[test]
    fn real_node_vectors_verify_and_round_trip() {
        let gpu = DeviceManagerState::decode(GPU.as_bytes(), p()).unwrap();
        assert_eq!(
            render_value(&gpu),
            "(checkpoint.checkpointData){PodDeviceEntries:([]checkpoint.PodDevicesEntry)<nil> RegisteredDevices:(map[string][]string)map[nvidia.com/gpu:[GPU-0650a168-e770-3ea8-8ac3-8a1d419763e0]]}"
        );
        let tegra = DeviceManagerState::decode(TEGRA.as_bytes(), p()).unwrap();
        let rendered = render_value(&tegra);
        assert!(rendered.contains("DeviceIDs:(checkpoint.DevicesPerNUMA)map[-1:[tegra]] AllocResp:([]uint8)[10 31 10 22 78"), "{rendered}");
        assert_eq!(gpu.encode().unwrap(), GPU.as_bytes());
        assert_eq!(tegra.encode().unwrap(), TEGRA.as_bytes());
    }

    #[test]
    fn boot_id_is_outside_the_hash() {
        let with_boot = GPU.replace(
            "}},\"Checksum\":3952659280}",
            "}},\"Checksum\":3952659280,\"BootID\":\"abc\"}",
        );
        let s = DeviceManagerState::decode(with_boot.as_bytes(), p()).unwrap();
        assert_eq!(s.boot_id, "abc");
        assert_eq!(s.encode().unwrap(), with_boot.as_bytes());
    }

    #[test]
    fn flipped_bytes_are_corrupted() {
        for text in [GPU, TEGRA] {
            let bad = text.replacen("nvidia.com/gpu", "nvidia.com/gpv", 1);
            assert!(
                DeviceManagerState::decode(bad.as_bytes(), p())
                    .unwrap_err()
                    .is_corrupted()
            );
            let bad = text.replacen("\"Checksum\":3", "\"Checksum\":4", 1);
            assert!(
                DeviceManagerState::decode(bad.as_bytes(), p())
                    .unwrap_err()
                    .is_corrupted()
            );
        }
        // No zero-checksum escape for this file.
        let zero = GPU.replace("3952659280", "0");
        assert!(
            DeviceManagerState::decode(zero.as_bytes(), p())
                .unwrap_err()
                .is_corrupted()
        );
    }

    #[test]
    fn numa_keys_written_in_go_order() {
        let s = DeviceManagerState {
            pod_device_entries: Some(vec![PodDevicesEntry {
                pod_uid: "p".into(),
                container_name: "c".into(),
                resource_name: "r".into(),
                device_ids: Some(BTreeMap::from([
                    (2, Some(vec!["a".into()])),
                    (10, Some(vec!["b".into()])),
                    (-1, None),
                ])),
                alloc_resp: Some(vec![]),
            }]),
            ..Default::default()
        };
        let text = String::from_utf8(s.encode().unwrap()).unwrap();
        assert!(
            text.contains(r#""DeviceIDs":{"-1":null,"10":["b"],"2":["a"]},"AllocResp":"""#),
            "{text}"
        );
        DeviceManagerState::decode(text.as_bytes(), p()).unwrap();
    }
}
