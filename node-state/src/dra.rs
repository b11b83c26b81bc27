//! `dra_manager_state`: the DRA manager's checkpoint.
//!
//! `{"Data":"<json>","Checksum":<uint32>}` where the checksum is CRC-32/IEEE over the exact
//! bytes of `Data`, and `Data` is
//! `{"kind":"DRACheckpoint","apiVersion":"checkpoint.dra.kubelet.k8s.io/v1","Entries":[...]}`
//! with Go field names as keys.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::checksum::crc32_ieee;
use crate::error::{Error, Result};
use crate::gojson::{self, Cx, get, join};
use crate::store::StateFile;
use crate::{GoMap, GoSlice};

/// File name under the kubelet root directory.
pub const DRA_MANAGER_STATE_FILE: &str = "dra_manager_state";
/// `kind` of the checkpoint data.
pub const DRA_CHECKPOINT_KIND: &str = "DRACheckpoint";
/// `apiVersion` of the checkpoint data.
pub const DRA_CHECKPOINT_API_VERSION: &str = "checkpoint.dra.kubelet.k8s.io/v1";

/// Go's `sets.Empty`, written `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// A device a driver allocated for a claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DraDevice {
    /// The resource pool.
    pub pool_name: String,
    /// The device.
    pub device_name: String,
    /// The claim requests it satisfies.
    pub request_names: GoSlice<String>,
    /// CDI device IDs.
    #[serde(rename = "CDIDeviceIDs")]
    pub cdi_device_ids: GoSlice<String>,
}

/// One driver's part of a claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriverState {
    /// The devices.
    pub devices: GoSlice<DraDevice>,
}

/// A prepared resource claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClaimInfoState {
    /// The claim's UID.
    #[serde(rename = "ClaimUID")]
    pub claim_uid: String,
    /// The claim's name.
    pub claim_name: String,
    /// The claim's namespace.
    pub namespace: String,
    /// Pods referencing the claim (a Go set).
    #[serde(rename = "PodUIDs")]
    pub pod_uids: GoMap<String, Empty>,
    /// Per-driver state.
    pub driver_state: GoMap<String, DriverState>,
}

/// The content of `dra_manager_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DraState {
    /// `kind` inside `Data`.
    pub kind: String,
    /// `apiVersion` inside `Data`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// The claims (`None` is Go's nil list, written `null`).
    pub entries: GoSlice<ClaimInfoState>,
    /// The checksum read from the file (0 for a state built in memory).
    pub checksum: u32,
}

impl Default for DraState {
    fn default() -> Self {
        DraState {
            kind: DRA_CHECKPOINT_KIND.into(),
            api_version: DRA_CHECKPOINT_API_VERSION.into(),
            entries: None,
            checksum: 0,
        }
    }
}

impl DraState {
    /// A checkpoint holding `entries` (`NewCheckpoint`).
    pub fn new(entries: GoSlice<ClaimInfoState>) -> Self {
        DraState {
            entries,
            ..Default::default()
        }
    }

    /// The `Data` string written for this state.
    pub fn data(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Data<'a> {
            #[serde(skip_serializing_if = "str::is_empty")]
            kind: &'a str,
            #[serde(rename = "apiVersion", skip_serializing_if = "str::is_empty")]
            api_version: &'a str,
            #[serde(rename = "Entries")]
            entries: &'a GoSlice<ClaimInfoState>,
        }
        gojson::to_string(
            &Data {
                kind: &self.kind,
                api_version: &self.api_version,
                entries: &self.entries,
            },
            "dra_manager_state data",
        )
    }

    /// The checksum this crate would store: CRC-32 of [`DraState::data`].
    pub fn compute_checksum(&self) -> Result<u32> {
        Ok(crc32_ieee(self.data()?.as_bytes()))
    }

    /// Parses the outer document: returns the raw `Data` string and the stored checksum.
    pub fn parse_outer(bytes: &[u8], path: &Path) -> Result<(String, u32)> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let data = get(obj, "Data").map_or(Ok(String::new()), |v| cx.string(v, "Data"))?;
        let checksum = get(obj, "Checksum").map_or(Ok(0), |v| cx.u32(v, "Checksum"))?;
        Ok((data, checksum))
    }

    /// Decodes the `Data` string (no checksum involved).
    pub fn parse_data(data: &str, checksum: u32, path: &Path) -> Result<Self> {
        let cx = Cx::new(path);
        let v = cx.parse_embedded("Data", data)?;
        let empty = serde_json::Map::new();
        let obj = cx.object(&v, "Data")?.unwrap_or(&empty);
        let s = |name: &str| {
            get(obj, name).map_or(Ok(String::new()), |v| cx.string(v, &join("Data", name)))
        };
        Ok(DraState {
            kind: s("kind")?,
            api_version: s("apiVersion")?,
            entries: match get(obj, "Entries") {
                None => None,
                Some(v) => cx.slice(v, "Data.Entries", |c, f| claim(&cx, c, f))?,
            },
            checksum,
        })
    }
}

fn strings(
    cx: &Cx<'_>,
    o: &serde_json::Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<GoSlice<String>> {
    match get(o, name) {
        None => Ok(None),
        Some(v) => cx.slice(v, &join(field, name), |s, f| cx.string(s, f)),
    }
}

fn claim(cx: &Cx<'_>, v: &Value, field: &str) -> Result<ClaimInfoState> {
    let Some(o) = cx.object(v, field)? else {
        return Ok(ClaimInfoState::default());
    };
    let s =
        |name: &str| get(o, name).map_or(Ok(String::new()), |v| cx.string(v, &join(field, name)));
    Ok(ClaimInfoState {
        claim_uid: s("ClaimUID")?,
        claim_name: s("ClaimName")?,
        namespace: s("Namespace")?,
        pod_uids: match get(o, "PodUIDs") {
            None => None,
            Some(v) => cx.map(v, &join(field, "PodUIDs"), |e, f| {
                cx.object(e, f).map(|_| Empty)
            })?,
        },
        driver_state: match get(o, "DriverState") {
            None => None,
            Some(v) => cx.map(v, &join(field, "DriverState"), |d, f| {
                let Some(d) = cx.object(d, f)? else {
                    return Ok(DriverState::default());
                };
                Ok(DriverState {
                    devices: match get(d, "Devices") {
                        None => None,
                        Some(v) => cx.slice(v, &join(f, "Devices"), |dev, f| {
                            let Some(dev) = cx.object(dev, f)? else {
                                return Ok(DraDevice::default());
                            };
                            let s = |name: &str| {
                                get(dev, name)
                                    .map_or(Ok(String::new()), |v| cx.string(v, &join(f, name)))
                            };
                            Ok(DraDevice {
                                pool_name: s("PoolName")?,
                                device_name: s("DeviceName")?,
                                request_names: strings(cx, dev, "RequestNames", f)?,
                                cdi_device_ids: strings(cx, dev, "CDIDeviceIDs", f)?,
                            })
                        })?,
                    },
                })
            })?,
        },
    })
}

impl StateFile for DraState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let (data, stored) = Self::parse_outer(bytes, path)?;
        let actual = crc32_ieee(data.as_bytes());
        if actual != stored {
            return Err(Error::Corrupted {
                path: path.to_path_buf(),
                expected: u64::from(stored),
                actual: u64::from(actual),
            });
        }
        Self::parse_data(&data, stored, path)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            data: &'a str,
            checksum: u32,
        }
        let data = self.data()?;
        gojson::to_vec(
            &Wire {
                data: &data,
                checksum: crc32_ieee(data.as_bytes()),
            },
            "dra_manager_state",
        )
    }
}

/// Convenience: a claim with one driver's devices.
pub fn claim_with_devices(
    claim_uid: &str,
    claim_name: &str,
    namespace: &str,
    pod_uids: &[&str],
    driver: &str,
    devices: Vec<DraDevice>,
) -> ClaimInfoState {
    ClaimInfoState {
        claim_uid: claim_uid.into(),
        claim_name: claim_name.into(),
        namespace: namespace.into(),
        pod_uids: Some(pod_uids.iter().map(|u| ((*u).to_owned(), Empty)).collect()),
        driver_state: Some(BTreeMap::from([(
            driver.to_owned(),
            DriverState {
                devices: Some(devices),
            },
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("dra_manager_state")
    }

    fn device(name: &str, with_ids: bool) -> DraDevice {
        DraDevice {
            pool_name: "worker-1".into(),
            device_name: name.into(),
            request_names: with_ids.then(|| vec!["test request".into()]),
            cdi_device_ids: with_ids.then(|| vec!["example.com/example=cdi-example".into()]),
        }
    }

    const SINGLE: &str = r#"{"Data":"{\"kind\":\"DRACheckpoint\",\"apiVersion\":\"checkpoint.dra.kubelet.k8s.io/v1\",\"Entries\":[{\"ClaimUID\":\"067798be-454e-4be4-9047-1aa06aea63f7\",\"ClaimName\":\"example\",\"Namespace\":\"default\",\"PodUIDs\":{\"139cdb46-f989-4f17-9561-ca10cfb509a6\":{}},\"DriverState\":{\"test-driver.cdi.k8s.io\":{\"Devices\":[{\"PoolName\":\"worker-1\",\"DeviceName\":\"dev-1\",\"RequestNames\":[\"test request\"],\"CDIDeviceIDs\":[\"example.com/example=cdi-example\"]}]}}}]}","Checksum":1597924435}"#;

    fn claim1(devices: Vec<DraDevice>, name: &str) -> ClaimInfoState {
        claim_with_devices(
            "067798be-454e-4be4-9047-1aa06aea63f7",
            name,
            "default",
            &["139cdb46-f989-4f17-9561-ca10cfb509a6"],
            "test-driver.cdi.k8s.io",
            devices,
        )
    }

    #[test]
    fn single_claim_vector_verifies_and_round_trips() {
        let s = DraState::decode(SINGLE.as_bytes(), p()).unwrap();
        assert_eq!(s.entries.as_ref().unwrap().len(), 1);
        assert_eq!(s.encode().unwrap(), SINGLE.as_bytes());
        assert_eq!(
            DraState::new(Some(vec![claim1(vec![device("dev-1", true)], "example")]))
                .encode()
                .unwrap(),
            SINGLE.as_bytes()
        );
    }

    #[test]
    fn built_vectors() {
        let two_devices = DraState::new(Some(vec![claim1(
            vec![device("dev-1", true), device("dev-2", true)],
            "example",
        )]));
        assert_eq!(two_devices.compute_checksum().unwrap(), 1_812_303_514);
        let mut second = claim1(vec![device("dev-2", false)], "example-2");
        second.claim_uid = "4cf8db2d-06c0-7d70-1a51-e59b25b2c16c".into();
        let two_claims = DraState::new(Some(vec![
            claim1(vec![device("dev-1", true)], "example-1"),
            second,
        ]));
        assert_eq!(two_claims.compute_checksum().unwrap(), 3_633_532_417);
        let bytes = two_claims.encode().unwrap();
        DraState::decode(&bytes, p()).unwrap();
        let wrong = String::from_utf8(bytes)
            .unwrap()
            .replace("3633532417", "2930258365");
        let err = DraState::decode(wrong.as_bytes(), p()).unwrap_err();
        assert!(err.to_string().contains("checkpoint is corrupted"), "{err}");
        assert_eq!(
            DraState::new(None).compute_checksum().unwrap(),
            4_103_351_552
        );
        assert_eq!(
            DraState::new(None).data().unwrap(),
            r#"{"kind":"DRACheckpoint","apiVersion":"checkpoint.dra.kubelet.k8s.io/v1","Entries":null}"#
        );
    }

    #[test]
    fn flipped_bytes_are_corrupted() {
        let bad = SINGLE.replacen("dev-1", "dev-9", 1);
        assert!(
            DraState::decode(bad.as_bytes(), p())
                .unwrap_err()
                .is_corrupted()
        );
        let bad = SINGLE.replacen("1597924435", "1597924436", 1);
        assert!(
            DraState::decode(bad.as_bytes(), p())
                .unwrap_err()
                .is_corrupted()
        );
        assert!(matches!(
            DraState::decode(b"{", p()),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn checksum_must_fit_uint32() {
        let err = DraState::decode(br#"{"Data":"","Checksum":5000000000}"#, p()).unwrap_err();
        assert!(err.to_string().contains("overflows uint32"), "{err}");
    }
}
