//! `cpu_manager_state`: the CPU manager's checkpoint (formats V1, V2 and V3).
//!
//! | format | `entries` | extra | zero checksum accepted |
//! |---|---|---|---|
//! | V1 (kubelet <= 1.17) | `{containerID: cpuset}` | | yes |
//! | V2 (1.18 to current releases) | `{podUID: {container: cpuset}}` | | yes |
//! | V3 (PodLevelResourceManagers) | as V2 | `podEntries: {podUID: {"cpuSet": cpuset}}` | no |
//!
//! All three hash under the legacy Go type name `*state.CPUManagerCheckpoint`. Reading tries V3,
//! then V2, then V1, like a kubelet with the pod-level gate on; the first format whose shape fits
//! and whose checksum verifies wins.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::GoMap;
use crate::checksum::go_checksum;
use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::gojson::{self, Cx, get, join};
use crate::spew::{GoField, GoRender, GoValue};
use crate::store::StateFile;

/// File name under the kubelet root directory.
pub const CPU_MANAGER_STATE_FILE: &str = "cpu_manager_state";

/// Go type name hashed for every format (`CPUManagerCheckpointV1/V2/V3` are renamed to it).
const GO_TYPE: &str = "*state.CPUManagerCheckpoint";

/// Which on-disk format a CPU manager checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CpuCheckpointFormat {
    /// Entries keyed by container ID (kubelet <= 1.17).
    V1,
    /// Entries keyed by pod UID, then container name.
    V2,
    /// V2 plus pod-level `podEntries`.
    V3,
}

/// The `entries` field, whose shape depends on the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CpuEntries {
    /// V1: container ID to cpuset string. `None` is a nil map.
    ByContainerId(GoMap<String, String>),
    /// V2/V3: pod UID to container name to cpuset string.
    ByPod(GoMap<String, GoMap<String, String>>),
}

/// A pod-level assignment (V3 `podEntries` value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodCpuEntry {
    /// The pod's CPUs.
    #[serde(rename = "cpuSet")]
    pub cpu_set: CpuSet,
}

/// The content of `cpu_manager_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuManagerState {
    /// The on-disk format.
    pub format: CpuCheckpointFormat,
    /// The CPU manager policy (`none`, `static`).
    #[serde(rename = "policyName")]
    pub policy_name: String,
    /// The shared pool, in list format (kept verbatim: the kubelet hashes the string).
    #[serde(rename = "defaultCpuSet")]
    pub default_cpu_set: String,
    /// Exclusive container assignments.
    pub entries: CpuEntries,
    /// Pod-level assignments (V3 only; `None` is a nil map).
    #[serde(rename = "podEntries")]
    pub pod_entries: GoMap<String, PodCpuEntry>,
    /// The checksum read from the file (0 for a state built in memory).
    pub checksum: u64,
}

/// What a successful restore hands the CPU manager: every cpuset parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredCpuState {
    /// The shared pool.
    pub default_cpu_set: CpuSet,
    /// Pod UID to container name to CPUs (V2/V3).
    pub assignments: BTreeMap<String, BTreeMap<String, CpuSet>>,
    /// Container ID to CPUs (V1 files; the kubelet maps IDs to pods with the runtime's list).
    pub container_id_assignments: BTreeMap<String, CpuSet>,
    /// Pod-level CPUs (V3).
    pub pod_assignments: BTreeMap<String, CpuSet>,
}

impl CpuManagerState {
    /// An empty V2 state, as a kubelet without checkpoint writes on first start.
    pub fn new(policy_name: impl Into<String>, default_cpu_set: &CpuSet) -> Self {
        CpuManagerState {
            format: CpuCheckpointFormat::V2,
            policy_name: policy_name.into(),
            default_cpu_set: default_cpu_set.to_string(),
            entries: CpuEntries::ByPod(Some(BTreeMap::new())),
            pod_entries: None,
            checksum: 0,
        }
    }

    /// Records a container's exclusive CPUs (V2/V3 states).
    pub fn set_container_cpus(
        &mut self,
        pod_uid: &str,
        container: &str,
        cpus: &CpuSet,
    ) -> Result<()> {
        match &mut self.entries {
            CpuEntries::ByPod(map) => {
                map.get_or_insert_with(BTreeMap::new)
                    .entry(pod_uid.to_owned())
                    .or_insert_with(|| Some(BTreeMap::new()))
                    .get_or_insert_with(BTreeMap::new)
                    .insert(container.to_owned(), cpus.to_string());
                Ok(())
            }
            CpuEntries::ByContainerId(_) => Err(Error::Encode {
                what: "cpu_manager_state",
                message: "V1 states are keyed by container ID; migrate to V2 first".into(),
            }),
        }
    }

    /// Records a pod's CPUs; the state becomes V3.
    pub fn set_pod_cpus(&mut self, pod_uid: &str, cpus: &CpuSet) {
        self.format = CpuCheckpointFormat::V3;
        if let CpuEntries::ByContainerId(_) = self.entries {
            self.entries = CpuEntries::ByPod(Some(BTreeMap::new()));
        }
        self.pod_entries.get_or_insert_with(BTreeMap::new).insert(
            pod_uid.to_owned(),
            PodCpuEntry {
                cpu_set: cpus.clone(),
            },
        );
    }

    /// The cpuset string recorded for a container (V2/V3).
    pub fn container_cpus(&self, pod_uid: &str, container: &str) -> Option<&str> {
        match &self.entries {
            CpuEntries::ByPod(Some(map)) => map
                .get(pod_uid)?
                .as_ref()?
                .get(container)
                .map(String::as_str),
            _ => None,
        }
    }

    /// The checksum the kubelet computes for this content.
    pub fn compute_checksum(&self) -> u64 {
        go_checksum(self)
    }

    /// Parses the file without verifying its checksum, choosing the format from the JSON
    /// shape (`podEntries` present: V3; nested entries: V2; flat entries: V1).
    pub fn parse_unverified(bytes: &[u8], path: &Path) -> Result<Self> {
        let candidates = Self::candidates(bytes, path)?;
        let Candidates {
            v3,
            v2,
            v1,
            has_pod_entries,
        } = candidates;
        let pick = if has_pod_entries {
            v3.or(v2).or(v1)
        } else {
            v2.or(v1).or(v3)
        };
        pick.ok_or_else(|| Error::Decode {
            path: path.to_path_buf(),
            field: "entries".into(),
            message: "neither {podUID: {container: cpuset}} nor {containerID: cpuset}".into(),
        })?
    }

    /// Checks the kubelet's restore rules: the policy must match the configured one and every
    /// cpuset must parse. Errors are worded like the kubelet's.
    pub fn validate(&self, configured_policy: &str) -> Result<RestoredCpuState> {
        if self.policy_name != configured_policy {
            return Err(Error::PolicyMismatch {
                prefix: "",
                configured: configured_policy.to_owned(),
                checkpoint: self.policy_name.clone(),
            });
        }
        let mut out = RestoredCpuState {
            default_cpu_set: CpuSet::parse_go(&self.default_cpu_set).map_err(|message| {
                Error::CpuSet {
                    what: format!("default cpu set {:?}", self.default_cpu_set),
                    value: self.default_cpu_set.clone(),
                    message,
                }
            })?,
            ..Default::default()
        };
        match &self.entries {
            CpuEntries::ByPod(map) => {
                for (pod, containers) in map.iter().flatten() {
                    let slot = out.assignments.entry(pod.clone()).or_default();
                    for (container, cpus) in containers.iter().flatten() {
                        let set = CpuSet::parse_go(cpus).map_err(|message| Error::CpuSet {
                            what: format!(
                                "cpuset {cpus:?} for container {container:?} in pod {pod:?}"
                            ),
                            value: cpus.clone(),
                            message,
                        })?;
                        slot.insert(container.clone(), set);
                    }
                }
            }
            CpuEntries::ByContainerId(map) => {
                for (id, cpus) in map.iter().flatten() {
                    let set = CpuSet::parse_go(cpus).map_err(|message| Error::CpuSet {
                        what: format!("cpuset {cpus:?} for container {id:?}"),
                        value: cpus.clone(),
                        message,
                    })?;
                    out.container_id_assignments.insert(id.clone(), set);
                }
            }
        }
        for (pod, entry) in self.pod_entries.iter().flatten() {
            out.pod_assignments
                .insert(pod.clone(), entry.cpu_set.clone());
        }
        Ok(out)
    }

    /// Loads `<root>/cpu_manager_state` the way the kubelet restores it: decode, verify,
    /// validate against the configured policy. Failures are wrapped in [`Error::Restore`] with
    /// the kubelet's "please drain this node" advice. A missing file is [`Error::NotFound`].
    pub fn restore(path: &Path, configured_policy: &str) -> Result<(Self, RestoredCpuState)> {
        let bytes = crate::store::read_state_file(path)?;
        let wrap = |e: Error| Error::Restore {
            manager: "CPU manager",
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let state = Self::decode(&bytes, path).map_err(wrap)?;
        let restored = state.validate(configured_policy).map_err(wrap)?;
        Ok((state, restored))
    }

    fn candidates(bytes: &[u8], path: &Path) -> Result<Candidates> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let field = |name| get(obj, name);
        let policy_name =
            field("policyName").map_or(Ok(String::new()), |v| cx.string(v, "policyName"))?;
        let default_cpu_set =
            field("defaultCpuSet").map_or(Ok(String::new()), |v| cx.string(v, "defaultCpuSet"))?;
        let checksum = field("checksum").map_or(Ok(0), |v| cx.u64(v, "checksum"))?;

        // The kubelet's constructors pre-fill `entries` (and `podEntries`) with empty maps, so an
        // absent key hashes as `map[]` while an explicit null hashes as `<nil>`.
        let entries_v = field("entries");
        let nested = match entries_v {
            None => Ok(Some(BTreeMap::new())),
            Some(v) => cx.map(v, "entries", |pod, f| {
                cx.map(pod, f, |c, f| cx.string(c, f))
            }),
        };
        let flat = match entries_v {
            None => Ok(Some(BTreeMap::new())),
            Some(v) => cx.map(v, "entries", |c, f| cx.string(c, f)),
        };
        let pod_entries_v = field("podEntries");
        let pods = match pod_entries_v {
            None => Ok(Some(BTreeMap::new())),
            Some(v) => cx.map(v, "podEntries", |e, f| pod_entry(&cx, e, f)),
        };
        let make = |format, entries, pod_entries| CpuManagerState {
            format,
            policy_name: policy_name.clone(),
            default_cpu_set: default_cpu_set.clone(),
            entries,
            pod_entries,
            checksum,
        };
        let v3 = match (&nested, pods) {
            (Ok(n), Ok(p)) => Some(Ok(make(
                CpuCheckpointFormat::V3,
                CpuEntries::ByPod(n.clone()),
                p,
            ))),
            (Ok(_), Err(e)) if pod_entries_v.is_some() => Some(Err(e)),
            _ => None,
        };
        let v2 = match &nested {
            Ok(n) => Some(Ok(make(
                CpuCheckpointFormat::V2,
                CpuEntries::ByPod(n.clone()),
                None,
            ))),
            Err(_) => None,
        };
        let v1 = match flat {
            Ok(f) => Some(Ok(make(
                CpuCheckpointFormat::V1,
                CpuEntries::ByContainerId(f),
                None,
            ))),
            Err(_) => None,
        };
        // Nothing fits: report the current (V2) format's complaint.
        if v3.is_none() && v2.is_none() && v1.is_none() {
            return Err(match nested {
                Err(e) => e,
                Ok(_) => cx.err("entries", "unexpected shape"),
            });
        }
        Ok(Candidates {
            v3,
            v2,
            v1,
            has_pod_entries: pod_entries_v.is_some(),
        })
    }

    fn wire(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Wire<'a, E: Serialize> {
            #[serde(rename = "policyName")]
            policy_name: &'a str,
            #[serde(rename = "defaultCpuSet")]
            default_cpu_set: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            entries: Option<&'a E>,
            #[serde(rename = "podEntries", skip_serializing_if = "Option::is_none")]
            pod_entries: Option<BTreeMap<&'a str, PodEntryWire>>,
            checksum: u64,
        }
        #[derive(Serialize)]
        struct PodEntryWire {
            #[serde(rename = "cpuSet", skip_serializing_if = "String::is_empty")]
            cpu_set: String,
        }
        let checksum = self.compute_checksum();
        let pod_entries = match (self.format, &self.pod_entries) {
            (CpuCheckpointFormat::V3, Some(m)) if !m.is_empty() => Some(
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str(),
                            PodEntryWire {
                                cpu_set: v.cpu_set.to_string(),
                            },
                        )
                    })
                    .collect(),
            ),
            _ => None,
        };
        match (&self.entries, self.format) {
            (CpuEntries::ByContainerId(m), CpuCheckpointFormat::V1) => gojson::to_vec(
                &Wire {
                    policy_name: &self.policy_name,
                    default_cpu_set: &self.default_cpu_set,
                    entries: m.as_ref().filter(|m| !m.is_empty()),
                    pod_entries: None,
                    checksum,
                },
                "cpu_manager_state",
            ),
            (CpuEntries::ByPod(m), CpuCheckpointFormat::V2 | CpuCheckpointFormat::V3) => {
                gojson::to_vec(
                    &Wire {
                        policy_name: &self.policy_name,
                        default_cpu_set: &self.default_cpu_set,
                        entries: m.as_ref().filter(|m| !m.is_empty()),
                        pod_entries,
                        checksum,
                    },
                    "cpu_manager_state",
                )
            }
            _ => Err(Error::Encode {
                what: "cpu_manager_state",
                message: format!(
                    "{:?} entries do not fit format {:?}",
                    self.entries_kind(),
                    self.format
                ),
            }),
        }
    }

    fn entries_kind(&self) -> &'static str {
        match self.entries {
            CpuEntries::ByContainerId(_) => "container-ID keyed (V1)",
            CpuEntries::ByPod(_) => "pod keyed (V2/V3)",
        }
    }
}

struct Candidates {
    v3: Option<Result<CpuManagerState>>,
    v2: Option<Result<CpuManagerState>>,
    v1: Option<Result<CpuManagerState>>,
    has_pod_entries: bool,
}

/// A V3 pod entry: `{"cpuSet": "..."}` parsed with `cpuset.Parse` (`null` reads as empty).
fn pod_entry(cx: &Cx<'_>, v: &Value, field: &str) -> Result<PodCpuEntry> {
    let Some(obj) = cx.object(v, field)? else {
        return Ok(PodCpuEntry::default());
    };
    let f = join(field, "cpuSet");
    let s = get(obj, "cpuSet").map_or(Ok(String::new()), |v| cx.string(v, &f))?;
    let cpu_set = CpuSet::parse_go(&s).map_err(|m| cx.err(&f, m))?;
    Ok(PodCpuEntry { cpu_set })
}

impl GoRender for CpuManagerState {
    fn go_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(GO_TYPE)
    }

    fn go_value(&self) -> GoValue {
        let entries = match &self.entries {
            CpuEntries::ByContainerId(m) => GoField::new(
                "Entries",
                "map[string]string",
                GoValue::string_map(m.as_ref()),
            ),
            CpuEntries::ByPod(m) => GoField::new(
                "Entries",
                "map[string]map[string]string",
                GoValue::map_from(m.as_ref(), GoValue::string, |c| {
                    GoValue::string_map(c.as_ref())
                }),
            ),
        };
        let mut fields = vec![
            GoField::new("PolicyName", "string", GoValue::from(&self.policy_name)),
            GoField::new(
                "DefaultCPUSet",
                "string",
                GoValue::from(&self.default_cpu_set),
            ),
            entries,
        ];
        if self.format == CpuCheckpointFormat::V3 {
            fields.push(GoField::new(
                "PodEntries",
                "state.PodCPUAssignments",
                GoValue::map_from(self.pod_entries.as_ref(), GoValue::string, |e| {
                    GoValue::Struct(vec![GoField::new(
                        "CPUSet",
                        "cpuset.CPUSet",
                        e.cpu_set.go_value(),
                    )])
                }),
            ));
        }
        // The checksum field is zeroed before hashing.
        fields.push(GoField::new(
            "Checksum",
            "checksum.Checksum",
            GoValue::Uint(0),
        ));
        GoValue::ptr(GoValue::Struct(fields))
    }
}

impl StateFile for CpuManagerState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let Candidates {
            v3,
            v2,
            v1,
            has_pod_entries,
        } = Self::candidates(bytes, path)?;
        let mut first_corrupt: Option<Error> = None;
        let mut first_err: Option<Error> = None;
        for candidate in [v3, v2, v1].into_iter().flatten() {
            let state = match candidate {
                Ok(s) => s,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let actual = state.compute_checksum();
            // V1 and V2 accept a zero checksum ("compatibility with old file backend").
            let zero_ok = state.checksum == 0 && state.format != CpuCheckpointFormat::V3;
            if actual == state.checksum || zero_ok {
                return Ok(state);
            }
            // Report the mismatch of the format the file most looks like.
            let primary = if has_pod_entries {
                state.format == CpuCheckpointFormat::V3
            } else {
                state.format != CpuCheckpointFormat::V3
            };
            if primary && first_corrupt.is_none() {
                first_corrupt = Some(Error::Corrupted {
                    path: path.to_path_buf(),
                    expected: state.checksum,
                    actual,
                });
            }
        }
        Err(first_corrupt
            .or(first_err)
            .unwrap_or_else(|| Error::Decode {
                path: path.to_path_buf(),
                field: "$".into(),
                message: "no checkpoint format fits".into(),
            }))
    }

    fn encode(&self) -> Result<Vec<u8>> {
        self.wire()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spew::render_value;

    fn p() -> &'static Path {
        Path::new("cpu_manager_state")
    }

    fn decode(s: &str) -> Result<CpuManagerState> {
        CpuManagerState::decode(s.as_bytes(), p())
    }

    /// Every cpu_manager_state vector of state.md 12.1 that is a whole file.
    const FILE_VECTORS: &[(&str, CpuCheckpointFormat)] = &[
        (
            r#"{"policyName":"none","defaultCPUSet":"4-6","entries":{},"checksum":354655845}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"none","defaultCPUSet":"1-3","entries":{"pod":{"container1":"4-6","container2":"1-3"}},"checksum":3610638499}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"other","defaultCPUSet":"1-3","entries":{},"checksum":1394507217}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"none","defaultCPUSet":"1.3","entries":{},"checksum":3021697696}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"none","defaultCPUSet":"1-3","entries":{"pod":{"container1":"4-6","container2":"asd"}},"checksum":962272150}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"none","defaultCPUSet":"1-3","checksum":1694838852}"#,
            CpuCheckpointFormat::V1,
        ),
        (
            r#"{"policyName":"none","defaultCPUSet":"1-3","entries":{"containerID1":"4-6","containerID2":"1-3"},"checksum":3680390589}"#,
            CpuCheckpointFormat::V1,
        ),
        (
            r#"{"policyName":"static","defaultCPUSet":"7-9","entries":{"containerID1":"4-6","containerID2":"1-3"},"checksum":2026311253}"#,
            CpuCheckpointFormat::V1,
        ),
        (
            r#"{"policyName":"none","defaultCpuSet":"","checksum":1353318690}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"static","defaultCpuSet":"0,2-12,14-23","entries":{"235148fe-393f-47a8-a17d-bd55bc1a836b":{"cgroup1-0":"1,13"}},"checksum":1552716370}"#,
            CpuCheckpointFormat::V2,
        ),
        (
            r#"{"policyName":"none","defaultCpuSet":"","checksum":3242152201}"#,
            CpuCheckpointFormat::V1,
        ),
        (
            r#"{"policyName":"static","defaultCPUSet":"1-2","entries":{"pod1":{"container1":"5-6","container2":"3-4"}},"podEntries":{"pod2":{"cpuSet":"7-9"}},"checksum":766259872}"#,
            CpuCheckpointFormat::V3,
        ),
    ];

    #[test]
    fn every_file_vector_verifies_with_expected_format() {
        for (text, format) in FILE_VECTORS {
            let state = decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(state.format, *format, "{text}");
            assert_eq!(state.compute_checksum(), state.checksum, "{text}");
        }
    }

    #[test]
    fn flipped_bytes_are_corrupted() {
        for (text, _) in FILE_VECTORS {
            // Flip a byte in the data: change the policy name's first letter.
            let bad_data = text.replacen("\"policyName\":\"", "\"policyName\":\"X", 1);
            let err = decode(&bad_data).unwrap_err();
            assert!(err.is_corrupted(), "{bad_data}: {err}");
            // Flip a digit of the checksum.
            let pos = text.rfind(':').unwrap() + 1;
            let mut bytes = text.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'9' {
                b'1'
            } else {
                bytes[pos] + 1
            };
            let err = CpuManagerState::decode(&bytes, p()).unwrap_err();
            match err {
                Error::Corrupted {
                    expected, actual, ..
                } => assert_ne!(expected, actual),
                other => panic!("{text}: {other}"),
            }
        }
    }

    #[test]
    fn hashed_strings_match_reference() {
        let v2 =
            decode(r#"{"policyName":"none","defaultCpuSet":"","checksum":1353318690}"#).unwrap();
        assert_eq!(
            render_value(&v2),
            "(*state.CPUManagerCheckpoint){PolicyName:(string)none DefaultCPUSet:(string) Entries:(map[string]map[string]string)map[] Checksum:(checksum.Checksum)0}"
        );
        let v1 =
            decode(r#"{"policyName":"none","defaultCPUSet":"1-3","checksum":1694838852}"#).unwrap();
        assert_eq!(
            render_value(&v1),
            "(*state.CPUManagerCheckpoint){PolicyName:(string)none DefaultCPUSet:(string)1-3 Entries:(map[string]string)map[] Checksum:(checksum.Checksum)0}"
        );
        let v3 = decode(FILE_VECTORS[11].0).unwrap();
        assert_eq!(
            render_value(&v3),
            "(*state.CPUManagerCheckpoint){PolicyName:(string)static DefaultCPUSet:(string)1-2 Entries:(map[string]map[string]string)map[pod1:map[container1:5-6 container2:3-4]] PodEntries:(state.PodCPUAssignments)map[pod2:{CPUSet:(cpuset.CPUSet){elems:(map[int]struct {})map[7:{} 8:{} 9:{}]}}] Checksum:(checksum.Checksum)0}"
        );
        // Under the V3 type name the same object hashes differently (state.md 12.1).
        let renamed = render_value(&v3).replace("CPUManagerCheckpoint", "CPUManagerCheckpointV3");
        assert_eq!(
            u64::from(crate::checksum::fnv32a(renamed.as_bytes())),
            2_284_712_151
        );
    }

    #[test]
    fn v3_vectors_without_files() {
        let mut s = CpuManagerState::new("none", &CpuSet::parse("7-9").unwrap());
        s.format = CpuCheckpointFormat::V3;
        s.pod_entries = Some(BTreeMap::new());
        assert_eq!(s.compute_checksum(), 98_002_435);
        let mut s = CpuManagerState::new("static", &CpuSet::parse("1-3").unwrap());
        s.set_container_cpus("pod", "container1", &CpuSet::parse("4-6").unwrap())
            .unwrap();
        s.set_container_cpus("pod", "container2", &CpuSet::parse("7-9").unwrap())
            .unwrap();
        s.format = CpuCheckpointFormat::V3;
        s.pod_entries = Some(BTreeMap::new());
        assert_eq!(s.compute_checksum(), 1_659_543_133);
    }

    #[test]
    fn nil_entries_differ_from_empty() {
        let nil = decode(
            r#"{"policyName":"none","defaultCpuSet":"","entries":null,"checksum":3278619453}"#,
        )
        .unwrap();
        assert_eq!(nil.entries, CpuEntries::ByPod(None));
        let empty = decode(
            r#"{"policyName":"none","defaultCpuSet":"","entries":{},"checksum":1353318690}"#,
        )
        .unwrap();
        assert_eq!(empty.compute_checksum(), 1_353_318_690);
    }

    #[test]
    fn zero_checksum_accepted_for_v1_v2_only() {
        let s = decode(r#"{"policyName":"none","defaultCpuSet":"1","checksum":0}"#).unwrap();
        assert_eq!(s.format, CpuCheckpointFormat::V2);
        // V3 has no zero-checksum escape; like the kubelet we fall back to V2, which ignores
        // `podEntries` as an unknown field and accepts the zero.
        let s = decode(r#"{"policyName":"none","defaultCpuSet":"1","podEntries":{"p":{"cpuSet":"1"}},"checksum":0}"#)
            .unwrap();
        assert_eq!(s.format, CpuCheckpointFormat::V2);
        assert_eq!(s.pod_entries, None);
    }

    #[test]
    fn encode_round_trips_each_format() {
        let mut s = CpuManagerState::new("static", &CpuSet::parse("0-1,4").unwrap());
        s.set_container_cpus("pod-a", "c<1>", &CpuSet::parse("2-3").unwrap())
            .unwrap();
        let bytes = s.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"policyName":"static","defaultCpuSet":"0-1,4","entries":{"pod-a":{"c\u003c1\u003e":"2-3"}},"checksum":"#), "{text}");
        let back = CpuManagerState::decode(&bytes, p()).unwrap();
        assert_eq!(back.format, CpuCheckpointFormat::V2);
        assert_eq!(back.container_cpus("pod-a", "c<1>"), Some("2-3"));

        s.set_pod_cpus("pod-a", &CpuSet::parse("2-3").unwrap());
        let back = CpuManagerState::decode(&s.encode().unwrap(), p()).unwrap();
        assert_eq!(back.format, CpuCheckpointFormat::V3);

        let v1 = decode(FILE_VECTORS[6].0).unwrap();
        assert_eq!(v1.encode().unwrap(), br#"{"policyName":"none","defaultCpuSet":"1-3","entries":{"containerID1":"4-6","containerID2":"1-3"},"checksum":3680390589}"#);
    }

    #[test]
    fn restore_errors_worded_like_kubelet() {
        let other = decode(FILE_VECTORS[2].0).unwrap();
        assert_eq!(
            other.validate("none").unwrap_err().to_string(),
            r#"configured policy "none" differs from state checkpoint policy "other""#
        );
        let bad = decode(FILE_VECTORS[3].0).unwrap();
        assert_eq!(
            bad.validate("none").unwrap_err().to_string(),
            r#"could not parse default cpu set "1.3": strconv.Atoi: parsing "1.3": invalid syntax"#
        );
        let bad = decode(FILE_VECTORS[4].0).unwrap();
        assert_eq!(
            bad.validate("none").unwrap_err().to_string(),
            r#"could not parse cpuset "asd" for container "container2" in pod "pod": strconv.Atoi: parsing "asd": invalid syntax"#
        );
        let ok = decode(FILE_VECTORS[1].0).unwrap().validate("none").unwrap();
        assert_eq!(ok.assignments["pod"]["container1"].to_string(), "4-6");
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = decode(r#"{"policyName":5}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cpu_manager_state: field policyName: expected a string, found a number"
        );
        let err = decode(r#"{"entries":{"pod":[1]}}"#).unwrap_err();
        assert!(err.to_string().contains("entries.pod"), "{err}");
        assert!(matches!(decode("{"), Err(Error::Json { .. })));
    }
}
