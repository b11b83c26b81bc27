//! node-plugins: device plugin API `v1beta1` and plugin registration messages as they arrive
//! from a plugin (protobuf bytes through the crate's prost types), a plugin's
//! `ContainerAllocateResponse` merged into a CRI container config, and `Register` requests
//! through `DeviceManager::register` (version, resource name and endpoint checks; the dial
//! goes to an empty directory, so it fails fast).
//!
//! The first byte picks the message type. Invariants: a message that decodes re-encodes to
//! bytes that decode to the same message; after merging a response every environment
//! variable name appears once.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use node_fuzz::fresh_dir;
use node_plugins::proto::deviceplugin as dp;
use node_plugins::proto::pluginregistration as reg;
use node_plugins::{DeviceManager, DeviceManagerOptions, apply_to_container_config};
use node_runtime::cri;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

struct Env {
    rt: tokio::runtime::Runtime,
    manager: DeviceManager,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut options = DeviceManagerOptions::new(fresh_dir("device-plugins"));
        options.dial_timeout = Duration::from_millis(200);
        let manager = rt.block_on(async { DeviceManager::new(options) });
        Env { rt, manager }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 12 {
        0 => {
            if let Some(req) = round_trip::<dp::RegisterRequest>(bytes) {
                let e = env();
                let _ = e.rt.block_on(e.manager.register(req));
            }
        }
        1 => {
            round_trip::<dp::ListAndWatchResponse>(bytes);
        }
        2 => {
            round_trip::<dp::AllocateResponse>(bytes);
        }
        3 => {
            if let Some(resp) = round_trip::<dp::ContainerAllocateResponse>(bytes) {
                let mut config = cri::ContainerConfig {
                    envs: vec![cri::KeyValue {
                        key: "PATH".into(),
                        value: "/bin".into(),
                    }],
                    ..cri::ContainerConfig::default()
                };
                apply_to_container_config(&resp, &mut config);
                let mut keys: Vec<&str> = config.envs.iter().map(|kv| kv.key.as_str()).collect();
                let n = keys.len();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), n, "duplicate environment variables");
            }
        }
        4 => {
            round_trip::<dp::PreferredAllocationResponse>(bytes);
        }
        5 => {
            round_trip::<dp::DevicePluginOptions>(bytes);
        }
        6 => {
            round_trip::<dp::PreferredAllocationRequest>(bytes);
        }
        7 => {
            round_trip::<dp::AllocateRequest>(bytes);
        }
        8 => {
            round_trip::<dp::PreStartContainerRequest>(bytes);
        }
        9 => {
            round_trip::<reg::PluginInfo>(bytes);
        }
        10 => {
            round_trip::<reg::RegistrationStatus>(bytes);
        }
        _ => {
            let _ = node_plugins::is_extended_resource_name(&String::from_utf8_lossy(bytes));
        }
    }
});
