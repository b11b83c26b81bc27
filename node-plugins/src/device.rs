//! One device as a plugin reports it, shared by the message checks ([`crate::limits`]) and the
//! device manager.

/// `Device.health` of a usable device.
pub const HEALTHY: &str = "Healthy";
/// `Device.health` of a device that must not be allocated.
pub const UNHEALTHY: &str = "Unhealthy";

/// One device as the plugin last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `Device.ID`.
    pub id: String,
    /// `Device.health == "Healthy"` (and the plugin still connected).
    pub healthy: bool,
    /// NUMA nodes from `Device.topology`.
    pub numa_nodes: Vec<i64>,
}
