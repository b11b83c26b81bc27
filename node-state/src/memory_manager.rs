//! `memory_manager_state`: the memory manager's checkpoint (formats V1 and V2).
//!
//! Both hash under the legacy Go type name `*state.MemoryManagerCheckpoint`; V2 adds the
//! pod-level `podEntries` field (PodLevelResourceManagers). Reading tries V2, then V1 (which
//! accepts a zero checksum), as the kubelet does.

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

/// File name under the kubelet root directory.
pub const MEMORY_MANAGER_STATE_FILE: &str = "memory_manager_state";

const GO_TYPE: &str = "*state.MemoryManagerCheckpoint";

/// Which on-disk format a memory manager checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum MemoryCheckpointFormat {
    /// Without pod-level entries (current releases).
    V1,
    /// With `podEntries`.
    V2,
}

/// Memory accounting of one resource (`memory`, `hugepages-2Mi`) on one NUMA node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryTable {
    /// Total bytes.
    #[serde(rename = "total")]
    pub total_mem_size: u64,
    /// Bytes reserved for the system.
    #[serde(rename = "systemReserved")]
    pub system_reserved: u64,
    /// Bytes allocatable to pods.
    pub allocatable: u64,
    /// Bytes reserved by containers.
    pub reserved: u64,
    /// Bytes free.
    pub free: u64,
}

/// The state of one NUMA node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NumaNodeState {
    /// How many assignments use this node.
    #[serde(rename = "numberOfAssignments")]
    pub number_of_assignments: i64,
    /// Per-resource tables; a `None` value is a nil `*MemoryTable`.
    #[serde(rename = "memoryMap")]
    pub memory_map: GoMap<String, Option<MemoryTable>>,
    /// The NUMA nodes grouped with this one.
    pub cells: GoSlice<i64>,
}

/// A block of memory assigned to a container or pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryBlock {
    /// NUMA nodes the block is spread over.
    #[serde(rename = "numaAffinity")]
    pub numa_affinity: GoSlice<i64>,
    /// Resource name (`memory`, `hugepages-1Gi`).
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Bytes.
    pub size: u64,
}

/// A pod-level assignment (V2 `podEntries` value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodMemoryAssignment {
    /// The pod's blocks.
    #[serde(rename = "memoryBlocks")]
    pub memory_blocks: GoSlice<MemoryBlock>,
}

/// The content of `memory_manager_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryManagerState {
    /// The on-disk format.
    pub format: MemoryCheckpointFormat,
    /// The memory manager policy (`None`, `Static`).
    #[serde(rename = "policyName")]
    pub policy_name: String,
    /// NUMA node id to its state; a `None` value is a nil pointer.
    #[serde(rename = "machineState", serialize_with = "ser::int_keyed")]
    pub machine_state: GoMap<i64, Option<NumaNodeState>>,
    /// Pod UID to container name to blocks.
    pub entries: GoMap<String, GoMap<String, GoSlice<MemoryBlock>>>,
    /// Pod-level assignments (V2 only).
    #[serde(rename = "podEntries")]
    pub pod_entries: GoMap<String, PodMemoryAssignment>,
    /// The checksum read from the file (0 for a state built in memory).
    pub checksum: u64,
}

impl MemoryManagerState {
    /// An empty V1 state.
    pub fn new(policy_name: impl Into<String>) -> Self {
        MemoryManagerState {
            format: MemoryCheckpointFormat::V1,
            policy_name: policy_name.into(),
            machine_state: Some(BTreeMap::new()),
            entries: Some(BTreeMap::new()),
            pod_entries: None,
            checksum: 0,
        }
    }

    /// The checksum the kubelet computes for this content.
    pub fn compute_checksum(&self) -> u64 {
        go_checksum(self)
    }

    /// Checks the configured policy like the kubelet's restore.
    pub fn validate(&self, configured_policy: &str) -> Result<()> {
        if self.policy_name != configured_policy {
            return Err(Error::PolicyMismatch {
                prefix: "[memorymanager] ",
                configured: configured_policy.to_owned(),
                checkpoint: self.policy_name.clone(),
            });
        }
        Ok(())
    }

    /// Parses without verifying the checksum (V2 when `podEntries` is present, else V1).
    pub fn parse_unverified(bytes: &[u8], path: &Path) -> Result<Self> {
        let (state, has_pod_entries) = Self::parse_any(bytes, path)?;
        Ok(MemoryManagerState {
            format: if has_pod_entries {
                MemoryCheckpointFormat::V2
            } else {
                MemoryCheckpointFormat::V1
            },
            ..state
        })
    }

    fn parse_any(bytes: &[u8], path: &Path) -> Result<(Self, bool)> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let policy_name =
            get(obj, "policyName").map_or(Ok(String::new()), |v| cx.string(v, "policyName"))?;
        let checksum = get(obj, "checksum").map_or(Ok(0), |v| cx.u64(v, "checksum"))?;
        // Absent keys keep the constructor's empty maps; explicit nulls are nil.
        let machine_state = match get(obj, "machineState") {
            None => Some(BTreeMap::new()),
            Some(v) => cx.int_map(v, "machineState", |n, f| numa_node(&cx, n, f))?,
        };
        let entries = match get(obj, "entries") {
            None => Some(BTreeMap::new()),
            Some(v) => cx.map(v, "entries", |pod, f| {
                cx.map(pod, f, |c, f| cx.slice(c, f, |b, f| block(&cx, b, f)))
            })?,
        };
        let pod_v = get(obj, "podEntries");
        let pod_entries = match pod_v {
            None => Some(BTreeMap::new()),
            Some(v) => cx.map(v, "podEntries", |e, f| {
                let Some(o) = cx.object(e, f)? else {
                    return Ok(PodMemoryAssignment::default());
                };
                let f = join(f, "memoryBlocks");
                Ok(PodMemoryAssignment {
                    memory_blocks: match get(o, "memoryBlocks") {
                        None => None,
                        Some(v) => cx.slice(v, &f, |b, f| block(&cx, b, f))?,
                    },
                })
            })?,
        };
        Ok((
            MemoryManagerState {
                format: MemoryCheckpointFormat::V2,
                policy_name,
                machine_state,
                entries,
                pod_entries,
                checksum,
            },
            pod_v.is_some(),
        ))
    }
}

fn numa_node(cx: &Cx<'_>, v: &Value, field: &str) -> Result<Option<NumaNodeState>> {
    let Value::Object(o) = v else {
        return match v {
            Value::Null => Ok(None),
            _ => cx.object(v, field).map(|_| None),
        };
    };
    let f = |name: &str| join(field, name);
    Ok(Some(NumaNodeState {
        number_of_assignments: get(o, "numberOfAssignments")
            .map_or(Ok(0), |v| cx.i64(v, &f("numberOfAssignments")))?,
        memory_map: match get(o, "memoryMap") {
            None => None,
            Some(v) => cx.map(v, &f("memoryMap"), |t, tf| {
                let Some(t) = cx.object(t, tf)? else {
                    return Ok(None);
                };
                let n = |name: &str| get(t, name).map_or(Ok(0), |v| cx.u64(v, &join(tf, name)));
                Ok(Some(MemoryTable {
                    total_mem_size: n("total")?,
                    system_reserved: n("systemReserved")?,
                    allocatable: n("allocatable")?,
                    reserved: n("reserved")?,
                    free: n("free")?,
                }))
            })?,
        },
        cells: match get(o, "cells") {
            None => None,
            Some(v) => cx.slice(v, &f("cells"), |c, f| cx.i64(c, f))?,
        },
    }))
}

fn block(cx: &Cx<'_>, v: &Value, field: &str) -> Result<MemoryBlock> {
    let Some(o) = cx.object(v, field)? else {
        return Ok(MemoryBlock::default());
    };
    Ok(MemoryBlock {
        numa_affinity: match get(o, "numaAffinity") {
            None => None,
            Some(v) => cx.slice(v, &join(field, "numaAffinity"), |c, f| cx.i64(c, f))?,
        },
        resource_type: get(o, "type")
            .map_or(Ok(String::new()), |v| cx.string(v, &join(field, "type")))?,
        size: get(o, "size").map_or(Ok(0), |v| cx.u64(v, &join(field, "size")))?,
    })
}

fn block_value(b: &MemoryBlock) -> GoValue {
    GoValue::Struct(vec![
        GoField::new(
            "NUMAAffinity",
            "[]int",
            GoValue::slice_from(b.numa_affinity.as_deref(), |i| GoValue::Int(*i)),
        ),
        GoField::new("Type", "v1.ResourceName", GoValue::from(&b.resource_type)),
        GoField::new("Size", "uint64", GoValue::Uint(b.size)),
    ])
}

fn blocks_value(b: &GoSlice<MemoryBlock>) -> GoValue {
    GoValue::slice_from(b.as_deref(), block_value)
}

impl GoRender for MemoryManagerState {
    fn go_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(GO_TYPE)
    }

    fn go_value(&self) -> GoValue {
        let machine = GoValue::map_from(
            self.machine_state.as_ref(),
            |k| GoValue::Int(*k),
            |node| match node {
                None => GoValue::Ptr(None),
                Some(n) => GoValue::ptr(GoValue::Struct(vec![
                    GoField::new(
                        "NumberOfAssignments",
                        "int",
                        GoValue::Int(n.number_of_assignments),
                    ),
                    GoField::new(
                        "MemoryMap",
                        "map[v1.ResourceName]*state.MemoryTable",
                        GoValue::map_from(n.memory_map.as_ref(), GoValue::string, |t| match t {
                            None => GoValue::Ptr(None),
                            Some(t) => GoValue::ptr(GoValue::Struct(vec![
                                GoField::new(
                                    "TotalMemSize",
                                    "uint64",
                                    GoValue::Uint(t.total_mem_size),
                                ),
                                GoField::new(
                                    "SystemReserved",
                                    "uint64",
                                    GoValue::Uint(t.system_reserved),
                                ),
                                GoField::new("Allocatable", "uint64", GoValue::Uint(t.allocatable)),
                                GoField::new("Reserved", "uint64", GoValue::Uint(t.reserved)),
                                GoField::new("Free", "uint64", GoValue::Uint(t.free)),
                            ])),
                        }),
                    ),
                    GoField::new(
                        "Cells",
                        "[]int",
                        GoValue::slice_from(n.cells.as_deref(), |i| GoValue::Int(*i)),
                    ),
                ])),
            },
        );
        let mut fields = vec![
            GoField::new("PolicyName", "string", GoValue::from(&self.policy_name)),
            GoField::new("MachineState", "state.NUMANodeMap", machine),
            GoField::new(
                "Entries",
                "state.ContainerMemoryAssignments",
                GoValue::map_from(self.entries.as_ref(), GoValue::string, |c| {
                    GoValue::map_from(c.as_ref(), GoValue::string, blocks_value)
                }),
            ),
        ];
        if self.format == MemoryCheckpointFormat::V2 {
            fields.push(GoField::new(
                "PodEntries",
                "state.PodMemoryAssignments",
                GoValue::map_from(self.pod_entries.as_ref(), GoValue::string, |p| {
                    GoValue::Struct(vec![GoField::new(
                        "MemoryBlocks",
                        "[]state.Block",
                        blocks_value(&p.memory_blocks),
                    )])
                }),
            ));
        }
        fields.push(GoField::new(
            "Checksum",
            "checksum.Checksum",
            GoValue::Uint(0),
        ));
        GoValue::ptr(GoValue::Struct(fields))
    }
}

impl StateFile for MemoryManagerState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let (v2, has_pod_entries) = Self::parse_any(bytes, path)?;
        let v2_sum = v2.compute_checksum();
        if v2_sum == v2.checksum {
            return Ok(v2);
        }
        let v1 = MemoryManagerState {
            format: MemoryCheckpointFormat::V1,
            pod_entries: None,
            ..v2
        };
        let v1_sum = v1.compute_checksum();
        if v1.checksum == 0 || v1_sum == v1.checksum {
            return Ok(v1);
        }
        Err(Error::Corrupted {
            path: path.to_path_buf(),
            expected: v1.checksum,
            actual: if has_pod_entries { v2_sum } else { v1_sum },
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "policyName")]
            policy_name: &'a str,
            #[serde(rename = "machineState", serialize_with = "ser::int_keyed")]
            machine_state: &'a GoMap<i64, Option<NumaNodeState>>,
            #[serde(skip_serializing_if = "ser::is_empty_map")]
            entries: &'a GoMap<String, GoMap<String, GoSlice<MemoryBlock>>>,
            #[serde(rename = "podEntries", skip_serializing_if = "ser::is_empty_map")]
            pod_entries: &'a GoMap<String, PodMemoryAssignment>,
            checksum: u64,
        }
        let none = None;
        gojson::to_vec(
            &Wire {
                policy_name: &self.policy_name,
                machine_state: &self.machine_state,
                entries: &self.entries,
                pod_entries: match self.format {
                    MemoryCheckpointFormat::V2 => &self.pod_entries,
                    MemoryCheckpointFormat::V1 => &none,
                },
                checksum: self.compute_checksum(),
            },
            "memory_manager_state",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spew::render_value;

    const V1: &str = r#"{"policyName":"static","machineState":{"0":{"numberOfAssignments":0,"memoryMap":{"memory":{"total":2048,"systemReserved":512,"allocatable":1536,"reserved":512,"free":1024}},"cells":[]}},"entries":{"pod":{"container1":[{"numaAffinity":[0],"type":"memory","size":512}]}},"checksum":4215593881}"#;
    const V2: &str = r#"{"policyName":"static","machineState":{"0":{"numberOfAssignments":0,"memoryMap":{"memory":{"total":2048,"systemReserved":512,"allocatable":1536,"reserved":512,"free":1024}},"cells":[]}},"entries":{"pod":{"container1":[{"numaAffinity":[0],"type":"memory","size":512}]}},"podEntries":{"pod":{"memoryBlocks":[{"numaAffinity":[0],"type":"memory","size":512}]}},"checksum":1278640530}"#;
    /// A real node with the `None` policy (quoted in a public how-to).
    const REAL_NONE: &str = r#"{"policyName":"None","machineState":{},"checksum":4236770233}"#;

    fn p() -> &'static Path {
        Path::new("memory_manager_state")
    }

    #[test]
    fn vectors_verify() {
        let v1 = MemoryManagerState::decode(V1.as_bytes(), p()).unwrap();
        assert_eq!(v1.format, MemoryCheckpointFormat::V1);
        assert_eq!(
            render_value(&v1),
            "(*state.MemoryManagerCheckpoint){PolicyName:(string)static MachineState:(state.NUMANodeMap)map[0:<*>{NumberOfAssignments:(int)0 MemoryMap:(map[v1.ResourceName]*state.MemoryTable)map[memory:<*>{TotalMemSize:(uint64)2048 SystemReserved:(uint64)512 Allocatable:(uint64)1536 Reserved:(uint64)512 Free:(uint64)1024}] Cells:([]int)[]}] Entries:(state.ContainerMemoryAssignments)map[pod:map[container1:[{NUMAAffinity:([]int)[0] Type:(v1.ResourceName)memory Size:(uint64)512}]]] Checksum:(checksum.Checksum)0}"
        );
        let v2 = MemoryManagerState::decode(V2.as_bytes(), p()).unwrap();
        assert_eq!(v2.format, MemoryCheckpointFormat::V2);
        let none = MemoryManagerState::decode(REAL_NONE.as_bytes(), p()).unwrap();
        assert_eq!(none.format, MemoryCheckpointFormat::V1);
    }

    #[test]
    fn data_checksum_vector() {
        // 1.36-dev `dataChecksum` over the first vector's data without the checksum field.
        let data = V1.replace(r#","checksum":4215593881"#, "");
        assert_eq!(crate::checksum::string_checksum(&data), 1_849_615_440);
    }

    #[test]
    fn flipped_bytes_are_corrupted() {
        for text in [V1, V2, REAL_NONE] {
            let bad = text.replacen("\"policyName\":\"", "\"policyName\":\"X", 1);
            assert!(
                MemoryManagerState::decode(bad.as_bytes(), p())
                    .unwrap_err()
                    .is_corrupted()
            );
            let bad = text
                .replacen("\"checksum\":4", "\"checksum\":5", 1)
                .replacen("\"checksum\":1", "\"checksum\":2", 1);
            assert!(
                MemoryManagerState::decode(bad.as_bytes(), p())
                    .unwrap_err()
                    .is_corrupted(),
                "{bad}"
            );
        }
    }

    #[test]
    fn round_trip_and_policy_error() {
        for text in [V1, V2] {
            let s = MemoryManagerState::decode(text.as_bytes(), p()).unwrap();
            assert_eq!(s.encode().unwrap(), text.as_bytes());
        }
        let s = MemoryManagerState::decode(V1.as_bytes(), p()).unwrap();
        assert_eq!(
            s.validate("none").unwrap_err().to_string(),
            r#"[memorymanager] configured policy "none" differs from state checkpoint policy "static""#
        );
    }
}
