//! A hook into container creation, for components that must change a container's CRI config
//! before the runtime sees it: the device manager (node-plugins) adds the devices, environment,
//! mounts and annotations its plugins allocated, as the kubelet does between admission and
//! `CreateContainer`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::cri;

/// What a hook sees of a container about to be created.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRequest<'a> {
    /// Pod namespace.
    pub pod_namespace: &'a str,
    /// Pod name.
    pub pod_name: &'a str,
    /// Pod UID.
    pub pod_uid: &'a str,
    /// Container name.
    pub container_name: &'a str,
    /// `resources.limits` as written (resource name -> quantity), e.g. `example.com/fake: 1`.
    pub limits: &'a BTreeMap<String, String>,
}

/// The future a hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Called by [`PodManager`](crate::PodManager) around containers it creates and pods it removes.
pub trait ContainerHook: Send + Sync + std::fmt::Debug {
    /// Changes `config` before `CreateContainer`. An error keeps the container from being
    /// created (reported as the container's `CreateContainerError`) and is retried next pass.
    fn before_create<'a>(
        &'a self,
        request: ContainerRequest<'a>,
        config: &'a mut cri::ContainerConfig,
    ) -> HookFuture<'a>;

    /// The pod with `pod_uid` was stopped and removed: release what was held for it. Called
    /// on tokio's blocking pool, so it may block (write and fsync a checkpoint), but it holds
    /// the sync pass up until it returns.
    fn pod_removed(&self, pod_uid: &str) {
        let _ = pod_uid;
    }
}
