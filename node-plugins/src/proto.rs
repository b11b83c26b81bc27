//! Generated gRPC types and stubs, one module per proto package (our own protos under
//! `proto/`, with the kubelet's package names and field numbers).
//!
//! prost renames the upstream fields `available_deviceIDs`, `must_include_deviceIDs` and
//! `deviceIDs` to `available_device_i_ds`, `must_include_device_i_ds` and `device_i_ds`.

/// Device plugin API `v1beta1` (`/v1beta1.Registration/*`, `/v1beta1.DevicePlugin/*`).
pub mod deviceplugin {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("v1beta1");
}

/// Plugin registration API (`/pluginregistration.Registration/*`), served by plugins in
/// `plugins_registry`.
pub mod pluginregistration {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("pluginregistration");
}

/// Pod Resources API `v1` (`/v1.PodResourcesLister/*`).
pub mod podresources {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("v1");
}

/// Pod Resources API `v1alpha1` (`/v1alpha1.PodResourcesLister/List`).
pub mod podresources_v1alpha1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("v1alpha1");
}
