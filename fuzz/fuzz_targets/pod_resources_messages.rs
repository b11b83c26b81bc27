//! node-plugins: Pod Resources API messages (`v1` and `v1alpha1`), as a monitoring client
//! receives them and as the server receives `Get` requests (answered by
//! `PodResourcesServer::get` on an empty registry).
//!
//! The first byte picks the message type. Invariant: a message that decodes re-encodes to
//! bytes that decode to the same message.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use node_fuzz::fresh_dir;
use node_plugins::proto::podresources as v1;
use node_plugins::proto::podresources_v1alpha1 as v1alpha1;
use node_plugins::{DeviceManager, DeviceManagerOptions, PodResourcesOptions, PodResourcesServer};
use node_runtime::PodRegistry;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

fn server() -> &'static PodResourcesServer {
    static SERVER: OnceLock<(tokio::runtime::Runtime, PodResourcesServer)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let server = rt.block_on(async {
                let devices = DeviceManager::new(DeviceManagerOptions::new(fresh_dir("pr")));
                PodResourcesServer::new(PodRegistry::new(), devices, PodResourcesOptions::default())
            });
            (rt, server)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            if let Some(req) = round_trip::<v1::GetPodResourcesRequest>(bytes) {
                let _ = server().get(&req.pod_namespace, &req.pod_name);
            }
        }
        1 => {
            round_trip::<v1::GetPodResourcesResponse>(bytes);
        }
        2 => {
            round_trip::<v1::ListPodResourcesResponse>(bytes);
        }
        3 => {
            round_trip::<v1::AllocatableResourcesResponse>(bytes);
        }
        4 => {
            round_trip::<v1alpha1::ListPodResourcesResponse>(bytes);
        }
        _ => {
            let s = server();
            let _ = (s.list(), s.allocatable());
        }
    }
});
