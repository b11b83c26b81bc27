//! `allocated_pods_state` and `actuated_pods_state`: the in-place pod resize records.
//!
//! `{"data":"<json>","checksum":N}` with `checksum = fnv32a("(string)" + data)` (the kubelet's
//! `checksum.New` of a Go string). `data` is `{"entries":{podUID:{"ContainerResources":{...}}}}`.
//! A 1.36 development format adds `"version":"v2"` and a base64 `podList` inside `data`; it is
//! read (verified, entries decoded, `podList` kept opaque) but not written.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::checksum::string_checksum;
use crate::error::{Error, Result};
use crate::gojson::{self, Cx, get, join, ser};
use crate::store::StateFile;
use crate::{GoMap, GoSlice};

/// File name of the allocated resources record.
pub const ALLOCATED_PODS_STATE_FILE: &str = "allocated_pods_state";
/// File name of the actuated resources record.
pub const ACTUATED_PODS_STATE_FILE: &str = "actuated_pods_state";

/// A claim reference inside resource requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceClaimRef {
    /// Claim name in the pod spec.
    pub name: String,
    /// Request within the claim.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// `v1.ResourceRequirements` with quantities kept as their text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceRequirements {
    /// Limits (`cpu: "1"`, `memory: "1Gi"`).
    #[serde(skip_serializing_if = "ser::is_empty_map")]
    pub limits: GoMap<String, String>,
    /// Requests.
    #[serde(skip_serializing_if = "ser::is_empty_map")]
    pub requests: GoMap<String, String>,
    /// Dynamic resource claims.
    #[serde(skip_serializing_if = "ser::is_empty_vec")]
    pub claims: GoSlice<ResourceClaimRef>,
}

/// Resources recorded for one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodResourceInfo {
    /// Container name to its resources.
    #[serde(rename = "ContainerResources")]
    pub container_resources: GoMap<String, ResourceRequirements>,
    /// Pod-level resources (newer kubelets).
    #[serde(rename = "PodLevelResources", skip_serializing_if = "Option::is_none")]
    pub pod_level_resources: Option<ResourceRequirements>,
    /// Fields of newer kubelets this crate does not model, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The content of `allocated_pods_state` / `actuated_pods_state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AllocationState {
    /// `""` for the released format, `"v2"` for the 1.36 development format.
    pub version: String,
    /// Pod UID to its resources.
    pub entries: GoMap<String, PodResourceInfo>,
    /// v2 only: the base64 protobuf pod list, kept opaque.
    #[serde(rename = "podList", skip_serializing_if = "Option::is_none")]
    pub pod_list: Option<String>,
    /// The checksum read from the file (0 for a state built in memory).
    pub checksum: u64,
}

impl AllocationState {
    /// The `data` string this crate writes (released format).
    pub fn data(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Data<'a> {
            #[serde(skip_serializing_if = "ser::is_empty_map")]
            entries: &'a GoMap<String, PodResourceInfo>,
        }
        gojson::to_string(
            &Data {
                entries: &self.entries,
            },
            "allocation state data",
        )
    }

    /// The checksum this crate would store: `fnv32a("(string)" + data)`.
    pub fn compute_checksum(&self) -> Result<u64> {
        Ok(string_checksum(&self.data()?))
    }

    /// Parses the outer document: version, raw `data`, stored checksum.
    pub fn parse_outer(bytes: &[u8], path: &Path) -> Result<(String, String, u64)> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let version = get(obj, "version").map_or(Ok(String::new()), |v| cx.string(v, "version"))?;
        let data = get(obj, "data").map_or(Ok(String::new()), |v| cx.string(v, "data"))?;
        let checksum = get(obj, "checksum").map_or(Ok(0), |v| cx.u64(v, "checksum"))?;
        if !version.is_empty() && version != "v2" {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
                expected: "this kubelet reads legacy (unversioned) and \"v2\" checkpoints",
            });
        }
        Ok((version, data, checksum))
    }

    /// Decodes a `data` string.
    pub fn parse_data(version: String, data: &str, checksum: u64, path: &Path) -> Result<Self> {
        let cx = Cx::new(path);
        let v = cx.parse_embedded("data", data)?;
        let empty = serde_json::Map::new();
        let obj = cx.object(&v, "data")?.unwrap_or(&empty);
        let entries = match get(obj, "entries") {
            None => None,
            Some(v) => cx.map(v, "data.entries", |p, f| pod_info(&cx, p, f))?,
        };
        let pod_list = match (version.as_str(), get(obj, "podList")) {
            ("v2", Some(v)) => Some(cx.string(v, "data.podList")?),
            _ => None,
        };
        Ok(AllocationState {
            version,
            entries,
            pod_list,
            checksum,
        })
    }
}

fn requirements(cx: &Cx<'_>, v: &Value, field: &str) -> Result<ResourceRequirements> {
    let Some(o) = cx.object(v, field)? else {
        return Ok(ResourceRequirements::default());
    };
    let quantities = |name: &str| -> Result<GoMap<String, String>> {
        match get(o, name) {
            None => Ok(None),
            Some(v) => cx.map(v, &join(field, name), |q, f| match q {
                // resource.Quantity accepts bare numbers too; keep their text.
                Value::Number(n) => Ok(n.to_string()),
                other => cx.string(other, f),
            }),
        }
    };
    Ok(ResourceRequirements {
        limits: quantities("limits")?,
        requests: quantities("requests")?,
        claims: match get(o, "claims") {
            None => None,
            Some(v) => cx.slice(v, &join(field, "claims"), |c, f| {
                let Some(c) = cx.object(c, f)? else {
                    return Ok(ResourceClaimRef::default());
                };
                let s =
                    |n: &str| get(c, n).map_or(Ok(String::new()), |v| cx.string(v, &join(f, n)));
                Ok(ResourceClaimRef {
                    name: s("name")?,
                    request: s("request")?,
                })
            })?,
        },
    })
}

fn pod_info(cx: &Cx<'_>, v: &Value, field: &str) -> Result<PodResourceInfo> {
    let Some(o) = cx.object(v, field)? else {
        return Ok(PodResourceInfo::default());
    };
    let mut info = PodResourceInfo::default();
    for (k, v) in o {
        if k.eq_ignore_ascii_case("ContainerResources") {
            info.container_resources = cx.map(v, &join(field, k), |r, f| requirements(cx, r, f))?;
        } else if k.eq_ignore_ascii_case("PodLevelResources") {
            info.pod_level_resources = match v {
                Value::Null => None,
                _ => Some(requirements(cx, v, &join(field, k))?),
            };
        } else {
            info.other.insert(k.clone(), v.clone());
        }
    }
    Ok(info)
}

impl StateFile for AllocationState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let (version, data, stored) = Self::parse_outer(bytes, path)?;
        let actual = string_checksum(&data);
        if actual != stored {
            return Err(Error::Corrupted {
                path: path.to_path_buf(),
                expected: stored,
                actual,
            });
        }
        Self::parse_data(version, &data, stored, path)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        if !self.version.is_empty() {
            return Err(Error::Encode {
                what: "allocation state",
                message: format!(
                    "writing version {:?} is not supported (the v2 format is not final upstream); clear `version` to write the released format",
                    self.version
                ),
            });
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            data: &'a str,
            checksum: u64,
        }
        let data = self.data()?;
        gojson::to_vec(
            &Wire {
                data: &data,
                checksum: string_checksum(&data),
            },
            "allocation state",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADED: &str = r#"{"data":"{\"entries\":{\"pod1\":{\"ContainerResources\":{\"container1\":{\"requests\":{\"cpu\":\"1Ki\",\"memory\":\"1Ki\"}}}}}}","checksum":1178570812}"#;

    fn p() -> &'static Path {
        Path::new("allocated_pods_state")
    }

    #[test]
    fn vector_verifies_and_round_trips() {
        let s = AllocationState::decode(UPGRADED.as_bytes(), p()).unwrap();
        let pod = &s.entries.as_ref().unwrap()["pod1"];
        let c = &pod.container_resources.as_ref().unwrap()["container1"];
        assert_eq!(c.requests.as_ref().unwrap()["memory"], "1Ki");
        assert_eq!(s.encode().unwrap(), UPGRADED.as_bytes());
    }

    #[test]
    fn empty_state() {
        let s = AllocationState::default();
        assert_eq!(s.data().unwrap(), "{}");
        assert_eq!(s.compute_checksum().unwrap(), 694_314_937);
        assert_eq!(
            s.encode().unwrap(),
            br#"{"data":"{}","checksum":694314937}"#
        );
    }

    #[test]
    fn flipped_bytes_are_corrupted() {
        let bad = UPGRADED.replacen("1Ki", "2Ki", 1);
        assert!(
            AllocationState::decode(bad.as_bytes(), p())
                .unwrap_err()
                .is_corrupted()
        );
        let bad = UPGRADED.replacen("1178570812", "1178570813", 1);
        assert!(
            AllocationState::decode(bad.as_bytes(), p())
                .unwrap_err()
                .is_corrupted()
        );
    }

    #[test]
    fn unknown_version_rejected_with_kubelet_wording() {
        let err =
            AllocationState::decode(br#"{"version":"v3","data":"{}","checksum":694314937}"#, p())
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"allocated_pods_state: unsupported checkpoint version "v3": this kubelet reads legacy (unversioned) and "v2" checkpoints"#
        );
        let data = r#"{"podList":"AAAA","entries":{}}"#;
        let file =
            serde_json::json!({"version": "v2", "data": data, "checksum": string_checksum(data)})
                .to_string();
        let s = AllocationState::decode(file.as_bytes(), p()).unwrap();
        assert_eq!(s.pod_list.as_deref(), Some("AAAA"));
        assert!(s.encode().is_err());
    }
}
