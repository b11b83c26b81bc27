//! Arbitrary bytes as any state file never panic and never make the store write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use node_state::store::FileStore;
use node_state::{
    AllocationState, CpuManagerState, DeviceManagerState, DraState, GracefulShutdownState,
    ImagePullIntent, ImagePulledRecord, MemoryManagerState, StateDocument, StateKind, checksum_for,
};
use proptest::prelude::*;

/// Valid files of every kind, to mutate.
const SEEDS: &[(StateKind, &str)] = &[
    (
        StateKind::CpuManager,
        r#"{"policyName":"static","defaultCPUSet":"1-2","entries":{"pod1":{"container1":"5-6","container2":"3-4"}},"podEntries":{"pod2":{"cpuSet":"7-9"}},"checksum":766259872}"#,
    ),
    (
        StateKind::CpuManager,
        r#"{"policyName":"none","defaultCPUSet":"1-3","entries":{"containerID1":"4-6","containerID2":"1-3"},"checksum":3680390589}"#,
    ),
    (
        StateKind::MemoryManager,
        r#"{"policyName":"static","machineState":{"0":{"numberOfAssignments":0,"memoryMap":{"memory":{"total":2048,"systemReserved":512,"allocatable":1536,"reserved":512,"free":1024}},"cells":[]}},"entries":{"pod":{"container1":[{"numaAffinity":[0],"type":"memory","size":512}]}},"checksum":4215593881}"#,
    ),
    (
        StateKind::DraManager,
        r#"{"Data":"{\"kind\":\"DRACheckpoint\",\"apiVersion\":\"checkpoint.dra.kubelet.k8s.io/v1\",\"Entries\":[{\"ClaimUID\":\"067798be-454e-4be4-9047-1aa06aea63f7\",\"ClaimName\":\"example\",\"Namespace\":\"default\",\"PodUIDs\":{\"139cdb46-f989-4f17-9561-ca10cfb509a6\":{}},\"DriverState\":{\"test-driver.cdi.k8s.io\":{\"Devices\":[{\"PoolName\":\"worker-1\",\"DeviceName\":\"dev-1\",\"RequestNames\":[\"test request\"],\"CDIDeviceIDs\":[\"example.com/example=cdi-example\"]}]}}}]}","Checksum":1597924435}"#,
    ),
    (
        StateKind::DeviceManager,
        r#"{"Data":{"PodDeviceEntries":[{"PodUID":"bf52b2cd-b611-4e79-86b1-280b283185c3","ContainerName":"check","ResourceName":"nvidia.com/gpu","DeviceIDs":{"-1":["tegra"]},"AllocResp":"Ch8KFk5WSURJQV9WSVNJQkxFX0RFVklDRVMSBXRlZ3Jh"}],"RegisteredDevices":{"nvidia.com/gpu":["tegra"]}},"Checksum":3660592824}"#,
    ),
    (
        StateKind::AllocatedPods,
        r#"{"data":"{\"entries\":{\"pod1\":{\"ContainerResources\":{\"container1\":{\"requests\":{\"cpu\":\"1Ki\",\"memory\":\"1Ki\"}}}}}}","checksum":1178570812}"#,
    ),
    (
        StateKind::GracefulShutdown,
        r#"{"startTime":"2024-05-01T10:00:00.25+02:00","endTime":"0001-01-01T00:00:00Z"}"#,
    ),
    (
        StateKind::ImagePullIntent,
        r#"{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1alpha1","image":"repo.repo/test/test:v1"}"#,
    ),
    (
        StateKind::ImagePulledRecord,
        r#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"testimage-anonpull","credentialMapping":{"docker.io/testing/test":{"nodePodsAccessible":true}}}"#,
    ),
];

fn exercise(bytes: &[u8]) {
    let p = Path::new("fuzzed");
    for kind in StateKind::ALL {
        let decoded = StateDocument::decode(kind, bytes, p);
        let _ = checksum_for(kind, bytes, p);
        // Whatever decodes must re-encode and decode again to the same document.
        if let Ok(doc) = decoded
            && let Ok(again) = doc.encode()
        {
            let back = StateDocument::decode(kind, &again, p)
                .unwrap_or_else(|e| panic!("{kind}: re-encoded file does not decode: {e}"));
            assert_eq!(back.encode().unwrap(), again, "{kind}: encoding not stable");
        }
    }
}

/// Content, mtime and mode of each entry.
type Entries = BTreeMap<String, (Vec<u8>, SystemTime, u32)>;

/// Names, modes and contents of every entry, and the directory's own mtime.
fn snapshot(dir: &Path) -> (Entries, SystemTime) {
    use std::os::unix::fs::PermissionsExt;
    let entries = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            (
                e.file_name().into_string().unwrap(),
                (
                    fs::read(e.path()).unwrap(),
                    md.modified().unwrap(),
                    md.permissions().mode(),
                ),
            )
        })
        .collect();
    (entries, fs::metadata(dir).unwrap().modified().unwrap())
}

fn load_all(store: &FileStore) {
    let _ = store.load::<CpuManagerState>("cpu_manager_state");
    let _ = store.load::<MemoryManagerState>("memory_manager_state");
    let _ = store.load::<DraState>("dra_manager_state");
    let _ = store.load::<DeviceManagerState>("kubelet_internal_checkpoint");
    let _ = store.load::<AllocationState>("allocated_pods_state");
    let _ = store.load::<AllocationState>("actuated_pods_state");
    let _ = store.load::<GracefulShutdownState>("graceful_node_shutdown_state");
    let _ = store.load::<ImagePullIntent>("intent");
    let _ = store.load::<ImagePulledRecord>("pulled");
    let _ = store.list();
    for name in [
        "cpu_manager_state",
        "memory_manager_state",
        "dra_manager_state",
        "kubelet_internal_checkpoint",
    ] {
        let _ = StateDocument::read(&store.dir().join(name), None);
    }
    let _ = GracefulShutdownState::load(&store.dir().join("graceful_node_shutdown_state"));
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut b = SEEDS[i].1.as_bytes().to_vec();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let at = at.index(b.len());
                match op {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        exercise(&bytes);
    }

    #[test]
    fn json_like_bytes_never_panic(s in r#"[{}\[\]":,0-9a-zA-Z\-. nul]{0,200}"#) {
        exercise(s.as_bytes());
    }

    #[test]
    fn mutated_valid_files_never_panic(bytes in mutated()) {
        exercise(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn loading_never_writes(bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mutated()]) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        for name in ["cpu_manager_state", "memory_manager_state", "dra_manager_state", "kubelet_internal_checkpoint",
                     "allocated_pods_state", "actuated_pods_state", "graceful_node_shutdown_state", "intent", "pulled"] {
            fs::write(dir.path().join(name), &bytes).unwrap();
        }
        let before = snapshot(dir.path());
        load_all(&store);
        load_all(&FileStore::open_read_only(dir.path()));
        prop_assert_eq!(snapshot(dir.path()), before);
    }
}

#[test]
fn seeds_are_valid() {
    for (kind, text) in SEEDS {
        StateDocument::decode(*kind, text.as_bytes(), Path::new("seed"))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}
