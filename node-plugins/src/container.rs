//! Hands a device plugin's `ContainerAllocateResponse` to node-runtime's CRI container config.

use node_runtime::cri;

use crate::proto::deviceplugin::{CdiDevice, ContainerAllocateResponse, DeviceSpec};

/// What [`apply_to_container_config`] could not put into the config: node-runtime's
/// `runtime.v1` subset has no `ContainerConfig.devices` (field 8) or `CDI_devices` (field 17)
/// yet, so device nodes and CDI devices are returned for the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unapplied {
    /// Device nodes (`DeviceSpec`) to add as CRI `Device`s.
    pub devices: Vec<DeviceSpec>,
    /// CDI devices to add as CRI `CDIDevice`s.
    pub cdi_devices: Vec<CdiDevice>,
}

/// Merges the plugin's envs (replacing a variable of the same name), mounts and annotations
/// into `config`, in a stable order (envs and annotations sorted by key).
pub fn apply_to_container_config(
    response: &ContainerAllocateResponse,
    config: &mut cri::ContainerConfig,
) -> Unapplied {
    let mut envs: Vec<(&String, &String)> = response.envs.iter().collect();
    envs.sort();
    for (key, value) in envs {
        config.envs.retain(|kv| &kv.key != key);
        config.envs.push(cri::KeyValue {
            key: key.clone(),
            value: value.clone(),
        });
    }
    for m in &response.mounts {
        config.mounts.push(cri::Mount {
            container_path: m.container_path.clone(),
            host_path: m.host_path.clone(),
            readonly: m.read_only,
            ..cri::Mount::default()
        });
    }
    for (key, value) in &response.annotations {
        config.annotations.insert(key.clone(), value.clone());
    }
    Unapplied {
        devices: response.devices.clone(),
        cdi_devices: response.cdi_devices.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::proto::deviceplugin::Mount;

    #[test]
    fn envs_mounts_and_annotations_reach_the_config() {
        let mut response = ContainerAllocateResponse::default();
        response.envs.insert("FAKE_DEVICES".into(), "fake-0".into());
        response.envs.insert("A".into(), "new".into());
        response
            .annotations
            .insert("example.com/x".into(), "1".into());
        response.mounts.push(Mount {
            container_path: "/dev/fake".into(),
            host_path: "/tmp/fake".into(),
            read_only: true,
        });
        response.devices.push(DeviceSpec {
            container_path: "/dev/fake0".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        });
        response.cdi_devices.push(CdiDevice {
            name: "example.com/fake=fake-0".into(),
        });
        let mut config = cri::ContainerConfig {
            envs: vec![cri::KeyValue {
                key: "A".into(),
                value: "old".into(),
            }],
            ..cri::ContainerConfig::default()
        };
        let rest = apply_to_container_config(&response, &mut config);
        let envs: Vec<(&str, &str)> = config
            .envs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(envs, [("A", "new"), ("FAKE_DEVICES", "fake-0")]);
        assert_eq!(config.mounts[0].container_path, "/dev/fake");
        assert_eq!(config.mounts[0].host_path, "/tmp/fake");
        assert!(config.mounts[0].readonly);
        assert_eq!(config.annotations["example.com/x"], "1");
        assert_eq!(rest.devices[0].host_path, "/dev/null");
        assert_eq!(rest.cdi_devices[0].name, "example.com/fake=fake-0");
    }
}
