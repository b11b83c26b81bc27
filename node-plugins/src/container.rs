//! Hands a device plugin's `ContainerAllocateResponse` to node-runtime's CRI container config.

use node_runtime::cri;

use crate::proto::deviceplugin::{CdiDevice, ContainerAllocateResponse, DeviceSpec};

/// Merges the plugin's envs (replacing a variable of the same name), mounts, device nodes,
/// annotations and CDI devices into `config`, in a stable order (envs sorted by key).
pub fn apply_to_container_config(
    response: &ContainerAllocateResponse,
    config: &mut cri::ContainerConfig,
) {
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
    config
        .devices
        .extend(response.devices.iter().map(|d: &DeviceSpec| cri::Device {
            container_path: d.container_path.clone(),
            host_path: d.host_path.clone(),
            permissions: d.permissions.clone(),
        }));
    config.cdi_devices.extend(
        response
            .cdi_devices
            .iter()
            .map(|c: &CdiDevice| cri::CdiDevice {
                name: c.name.clone(),
            }),
    );
}

#[cfg(test)]
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
        apply_to_container_config(&response, &mut config);
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
        assert_eq!(config.devices[0].host_path, "/dev/null");
        assert_eq!(config.devices[0].container_path, "/dev/fake0");
        assert_eq!(config.devices[0].permissions, "rw");
        assert_eq!(config.cdi_devices[0].name, "example.com/fake=fake-0");
    }
}
