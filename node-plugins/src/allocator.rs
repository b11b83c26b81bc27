//! The device manager as node-runtime's container hook: before a container is created, every
//! extended resource in its limits gets devices from the plugin that advertises it (`Allocate`,
//! `PreStartContainer` when the plugin asks for it), and the plugin's answer (environment,
//! mounts, device nodes, annotations, CDI devices) goes into the CRI container config. When a
//! pod is removed, its devices are released.

use node_runtime::{ContainerHook, ContainerRequest, HookFuture, cri};

use crate::container::apply_to_container_config;
use crate::device_manager::DeviceManager;
use crate::resource_name::is_extended_resource_name;

/// Hands devices to containers; pass it to `PodManager::with_container_hook`.
#[derive(Debug, Clone)]
pub struct DeviceAllocator {
    manager: DeviceManager,
}

impl DeviceAllocator {
    /// A hook over `manager`.
    pub fn new(manager: DeviceManager) -> Self {
        Self { manager }
    }
}

impl ContainerHook for DeviceAllocator {
    fn before_create<'a>(
        &'a self,
        request: ContainerRequest<'a>,
        config: &'a mut cri::ContainerConfig,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let mut any = false;
            for (resource, quantity) in request.limits {
                if !is_extended_resource_name(resource) {
                    continue;
                }
                // Extended resources are whole numbers (the API server enforces it).
                let count: usize = quantity
                    .parse()
                    .map_err(|_| format!("resource {resource}: quantity {quantity:?} is not a whole number of devices"))?;
                if count == 0 {
                    continue;
                }
                self.manager
                    .allocate(request.pod_uid, request.container_name, resource, count)
                    .await
                    .map_err(|e| {
                        format!("UnexpectedAdmissionError: Allocate failed for {resource}: {e}")
                    })?;
                any = true;
            }
            if any {
                let response = self
                    .manager
                    .run_container_options(request.pod_uid, request.container_name)
                    .await
                    .map_err(|e| format!("device plugin options: {e}"))?;
                apply_to_container_config(&response, config);
            }
            Ok(())
        })
    }

    fn pod_removed(&self, pod_uid: &str) {
        self.manager.release_pod(pod_uid);
    }
}
