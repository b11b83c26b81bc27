//! Capacity and allocatable (the `MachineInfo` setter) and resource quantity formatting.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::{Error, Result};
use crate::machine::MachineFacts;
use crate::pressure::{EvictionThresholds, ThresholdValue};

/// Resource amounts in base units: millicores for `cpu`, bytes or counts for everything else.
pub type ResourceList = BTreeMap<String, i128>;

/// True for resources printed in binary SI (`memory`, `ephemeral-storage`, `hugepages-*`).
fn is_binary(name: &str) -> bool {
    name == "memory" || name == "ephemeral-storage" || name.starts_with("hugepages-")
}

/// Formats `bytes` the way `resource.NewQuantity(n, BinarySI)` prints it: the largest binary
/// suffix that divides exactly (`8Gi`, `16318480Ki`), else the plain number.
pub fn format_binary_si(bytes: i128) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for (shift, suffix) in [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ] {
        let unit = 1i128 << shift;
        if bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Formats millicores as the API does: `4`, or `3900m` when not whole.
pub fn format_cpu_millis(millis: i128) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The page size part of a hugepages resource name: 2 MiB is `hugepages-2Mi`.
pub fn hugepages_resource_name(page_bytes: u64) -> String {
    format!("hugepages-{}", format_binary_si(i128::from(page_bytes)))
}

/// Converts a list to API quantities.
pub fn to_quantities(list: &ResourceList) -> BTreeMap<String, Quantity> {
    list.iter()
        .map(|(k, v)| {
            let text = if k == "cpu" {
                format_cpu_millis(*v)
            } else if is_binary(k) {
                format_binary_si(*v)
            } else {
                v.to_string()
            };
            (k.clone(), Quantity(text))
        })
        .collect()
}

/// Inputs of the capacity computation besides the machine facts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapacityConfig {
    /// `maxPods` (110 by default).
    pub max_pods: i64,
    /// `podsPerCore` (0 = off).
    pub pods_per_core: i64,
    /// Size of the filesystem holding the root dir (`ephemeral-storage`), if known.
    pub ephemeral_storage_bytes: Option<u64>,
    /// Device-plugin capacity per resource: healthy plus unhealthy devices
    /// (`GetCapacity`'s `capacity`).
    pub extended: BTreeMap<String, i64>,
    /// Device-plugin allocatable per resource: healthy devices only (`GetCapacity`'s
    /// `allocatable`). It replaces `capacity - reservation` for these resources.
    pub extended_allocatable: BTreeMap<String, i64>,
    /// Device-plugin resources whose plugin went away past the grace period and has not
    /// registered again: reported with capacity and allocatable 0, key kept. See
    /// [`CapacityConfig::set_device_resources`].
    pub removed: BTreeSet<String>,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            max_pods: 110,
            pods_per_core: 0,
            ephemeral_storage_bytes: None,
            extended: BTreeMap::new(),
            extended_allocatable: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl CapacityConfig {
    /// Sets [`max_pods`](Self::max_pods).
    #[must_use]
    pub fn with_max_pods(mut self, max_pods: i64) -> Self {
        self.max_pods = max_pods;
        self
    }

    /// Sets [`pods_per_core`](Self::pods_per_core).
    #[must_use]
    pub fn with_pods_per_core(mut self, pods_per_core: i64) -> Self {
        self.pods_per_core = pods_per_core;
        self
    }

    /// Sets the size of the root dir's filesystem
    /// ([`ephemeral_storage_bytes`](Self::ephemeral_storage_bytes)).
    #[must_use]
    pub fn with_ephemeral_storage_bytes(mut self, ephemeral_storage_bytes: u64) -> Self {
        self.ephemeral_storage_bytes = Some(ephemeral_storage_bytes);
        self
    }

    /// Takes one `GetCapacity` result of the device manager: `capacity` (healthy + unhealthy
    /// devices), `allocatable` (healthy devices) and `deleted` (resources removed by that
    /// call after their grace period).
    ///
    /// The device manager reports a removed resource once; the kubelet's `MachineInfo` setter
    /// (`pkg/kubelet/nodestatus/setters.go`) sets it to 0 in that one status and the key
    /// stays at 0 afterwards only because every later status starts from the Node read
    /// back from the API server. We do the same in [`node_resources`], and also remember
    /// removed names here for the life of the process, so a removal is not lost when the
    /// status patch carrying it fails (the next one sets the 0 again) and is not undone by
    /// a stale copy of the Node. A name leaves the set when its plugin registers again
    /// (it is back in `capacity`).
    ///
    /// Negative counts are taken as 0; names that are not extended resource names (a
    /// plugin may not advertise `cpu` or `kubernetes.io/...`) are ignored.
    pub fn set_device_resources(
        &mut self,
        capacity: &BTreeMap<String, i64>,
        allocatable: &BTreeMap<String, i64>,
        deleted: &[String],
    ) {
        let keep = |m: &BTreeMap<String, i64>| -> BTreeMap<String, i64> {
            m.iter()
                .filter(|(k, _)| is_extended_resource_name(k))
                .map(|(k, v)| (k.clone(), (*v).max(0)))
                .collect()
        };
        self.extended = keep(capacity);
        self.extended_allocatable = keep(allocatable);
        for name in deleted {
            if is_extended_resource_name(name) {
                tracing::info!("Set capacity for {name} to 0 on device removal");
                self.removed.insert(name.clone());
            }
        }
        self.removed
            .retain(|name| !self.extended.contains_key(name));
    }
}

/// The node's allocatable resources for pod admission, in admission units (`cpu` in
/// millicores, bytes, counts): capacity minus reservations ([`allocatable`]) with the device
/// plugins' healthy devices as the extended resources. `None` when a reservation does not
/// parse (the status reports that error).
#[must_use]
pub fn admission_allocatable(inputs: &crate::NodeStatusInputs) -> Option<ResourceList> {
    let mut alloc = allocatable(
        &capacity(&inputs.machine, &inputs.capacity),
        &inputs.reservations,
    )
    .ok()?;
    for (name, count) in &inputs.capacity.extended_allocatable {
        alloc.insert(name.clone(), i128::from(*count));
    }
    Some(alloc)
}

/// `IsExtendedResourceName` as far as the node status needs it: domain-qualified, not in
/// the `kubernetes.io/` namespace, not starting with `requests.`. Names reaching here were
/// validated already (by the device manager at registration, or by the API server for
/// keys read back from it), so the full qualified-name syntax is not checked again.
pub fn is_extended_resource_name(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// `status.capacity` as this agent computes it: cpu, memory, hugepages-*, pods,
/// ephemeral-storage, the device-plugin resources (healthy + unhealthy devices), and 0 for
/// each removed device-plugin resource. Keys already on the API server are merged in by
/// [`node_resources`].
pub fn capacity(facts: &MachineFacts, cfg: &CapacityConfig) -> ResourceList {
    let mut cap = ResourceList::new();
    cap.insert("cpu".into(), i128::from(facts.num_cores) * 1000);
    cap.insert("memory".into(), i128::from(facts.memory_bytes));
    let pods = if cfg.pods_per_core > 0 {
        i64::from(facts.num_cores)
            .saturating_mul(cfg.pods_per_core)
            .min(cfg.max_pods)
    } else {
        cfg.max_pods
    };
    cap.insert("pods".into(), i128::from(pods));
    if let Some(bytes) = cfg.ephemeral_storage_bytes {
        cap.insert("ephemeral-storage".into(), i128::from(bytes));
    }
    for (page, pages) in &facts.hugepages {
        cap.insert(
            hugepages_resource_name(*page),
            // Two u64 factors can exceed i128 (page sizes come from directory names).
            i128::from(*page).saturating_mul(i128::from(*pages)),
        );
    }
    for (name, count) in &cfg.extended {
        if is_extended_resource_name(name) {
            cap.insert(name.clone(), i128::from(*count));
        }
    }
    // MachineInfo: a removed device-plugin resource is set to 0, not dropped, so it stays
    // recognisable as device-plugin managed (cluster-level extended resources are absent).
    for name in &cfg.removed {
        if is_extended_resource_name(name) && !cfg.extended.contains_key(name) {
            cap.insert(name.clone(), 0);
        }
    }
    cap
}

fn parse_reserved(field: &'static str, map: &BTreeMap<String, String>) -> Result<ResourceList> {
    let mut out = ResourceList::new();
    for (k, v) in map {
        let q = node_config::Quantity::parse(v).map_err(|source| Error::Quantity {
            field,
            key: k.clone(),
            value: v.clone(),
            source,
        })?;
        let base = if k == "cpu" {
            q.value() * 1000.0
        } else {
            q.value()
        };
        // Round up: a reservation of 0.5 bytes still reserves a byte.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a quantity is finite and at most 2^63 (times 1000 for cpu): it fits in i128"
        )]
        out.insert(k.clone(), base.ceil() as i128);
    }
    Ok(out)
}

/// What is held back from capacity: `systemReserved + kubeReserved + hard eviction`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Reservations {
    /// `systemReserved`.
    pub system: BTreeMap<String, String>,
    /// `kubeReserved`.
    pub kube: BTreeMap<String, String>,
    /// Hard eviction thresholds (`evictionHard`).
    pub eviction_hard: EvictionThresholds,
}

impl Reservations {
    /// Sets [`system`](Self::system).
    #[must_use]
    pub fn with_system(mut self, system: BTreeMap<String, String>) -> Self {
        self.system = system;
        self
    }

    /// Sets [`kube`](Self::kube).
    #[must_use]
    pub fn with_kube(mut self, kube: BTreeMap<String, String>) -> Self {
        self.kube = kube;
        self
    }

    /// Sets [`eviction_hard`](Self::eviction_hard).
    #[must_use]
    pub fn with_eviction_hard(mut self, eviction_hard: EvictionThresholds) -> Self {
        self.eviction_hard = eviction_hard;
        self
    }
}

/// `GetNodeAllocatableReservation`: system + kube reserved + the hard eviction reservation
/// (`memory.available` -> memory, `nodefs.available` -> ephemeral-storage; percentages of capacity).
pub fn reservation(cap: &ResourceList, r: &Reservations) -> Result<ResourceList> {
    let mut total = parse_reserved("systemReserved", &r.system)?;
    for (k, v) in parse_reserved("kubeReserved", &r.kube)? {
        let sum = total.entry(k).or_default();
        *sum = sum.saturating_add(v);
    }
    for (signal, resource) in [
        ("memory.available", "memory"),
        ("nodefs.available", "ephemeral-storage"),
    ] {
        let Some(th) = r.eviction_hard.get(signal) else {
            continue;
        };
        let amount = match th {
            ThresholdValue::Quantity(q) => *q,
            ThresholdValue::Percentage(p) => {
                let capv = cap.get(resource).copied().unwrap_or(0);
                // The kubelet multiplies as float64 and truncates.
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "the kubelet's truncation; at most a u64 capacity, which fits in i128"
                )]
                let v = (capv as f64 * f64::from(*p)) as i128;
                v
            }
        };
        let sum = total.entry(resource.to_owned()).or_default();
        *sum = sum.saturating_add(amount);
    }
    Ok(total)
}

/// `status.allocatable`: capacity minus the reservation, clamped at 0, and every hugepages
/// capacity subtracted from memory.
pub fn allocatable(cap: &ResourceList, r: &Reservations) -> Result<ResourceList> {
    let reserved = reservation(cap, r)?;
    let mut alloc = ResourceList::new();
    for (k, v) in cap {
        let left = v.saturating_sub(reserved.get(k).copied().unwrap_or(0));
        alloc.insert(k.clone(), left.max(0));
    }
    let huge: i128 = cap
        .iter()
        .filter(|(k, _)| k.starts_with("hugepages-"))
        .fold(0i128, |sum, (_, v)| sum.saturating_add(*v));
    if let Some(mem) = alloc.get_mut("memory") {
        *mem = mem.saturating_sub(huge).max(0);
    }
    Ok(alloc)
}

/// Quantities by resource name, as in `status.capacity` and `status.allocatable`.
pub type QuantityList = BTreeMap<String, Quantity>;

/// The `MachineInfo` setter's capacity and allocatable (`pkg/kubelet/nodestatus/setters.go`),
/// starting, as the kubelet does, from the capacity and allocatable of the Node last read
/// from the API server (`previous_*`):
///
/// 1. capacity: the previous map, with the machine resources, the device-plugin capacity
///    (healthy + unhealthy devices) and 0 for every removed device-plugin resource set over
///    it ([`capacity`]). Keys this agent does not compute (cluster-level extended resources
///    an administrator advertises, a device-plugin resource left at 0 by an earlier run)
///    are kept as they are;
/// 2. extended-resource keys of the previous allocatable with no key in the new capacity
///    are deleted;
/// 3. allocatable of every capacity key = capacity - reservation, clamped at 0 (and every
///    hugepages capacity subtracted from memory, [`allocatable`]); a kept key with no
///    reservation keeps the capacity's text;
/// 4. the device-plugin allocatable (healthy devices) is set over it.
///
/// Allocatable keys of the previous status that are not extended resources and have no
/// capacity key are kept, as the kubelet keeps them.
///
/// # Errors
/// A reservation that does not parse ([`reservation`]), or a kept key that needs a
/// reservation subtracted and whose quantity does not parse.
pub fn node_resources(
    previous_capacity: Option<&QuantityList>,
    previous_allocatable: Option<&QuantityList>,
    facts: &MachineFacts,
    cfg: &CapacityConfig,
    r: &Reservations,
) -> Result<(QuantityList, QuantityList)> {
    let computed = capacity(facts, cfg);
    let computed_alloc = allocatable(&computed, r)?;
    let reserved = reservation(&computed, r)?;

    // 1. Capacity.
    let mut cap = previous_capacity.cloned().unwrap_or_default();
    for (k, v) in to_quantities(&computed) {
        if is_extended_resource_name(&k) && cap.get(&k) != Some(&v) {
            tracing::debug!("Update capacity for {k} to {}", v.0);
        }
        cap.insert(k, v);
    }

    // 2. Stale extended allocatable keys.
    let mut alloc = previous_allocatable.cloned().unwrap_or_default();
    alloc.retain(|k, _| cap.contains_key(k) || !is_extended_resource_name(k));

    // 3. Capacity - reservation.
    let computed_alloc_q = to_quantities(&computed_alloc);
    for (k, v) in &cap {
        if let Some(q) = computed_alloc_q.get(k) {
            alloc.insert(k.clone(), q.clone());
            continue;
        }
        let value = match reserved.get(k) {
            None => v.clone(),
            Some(res) => {
                let parsed =
                    node_config::Quantity::parse(&v.0).map_err(|source| Error::Quantity {
                        field: "status.capacity",
                        key: k.clone(),
                        value: v.0.clone(),
                        source,
                    })?;
                let base = if k == "cpu" {
                    parsed.value() * 1000.0
                } else {
                    parsed.value()
                };
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "a quantity is finite and at most 2^63 (times 1000 for cpu): it fits \
                              in i128"
                )]
                let left = (base as i128).saturating_sub(*res).max(0);
                let one: ResourceList = [(k.clone(), left)].into();
                to_quantities(&one).remove(k).unwrap_or_else(|| v.clone())
            }
        };
        alloc.insert(k.clone(), value);
    }

    // 4. Device-plugin allocatable (healthy devices).
    for (k, v) in &cfg.extended_allocatable {
        if !is_extended_resource_name(k) || !cfg.extended.contains_key(k) {
            continue;
        }
        let q = Quantity((*v).max(0).to_string());
        if alloc.get(k) != Some(&q) {
            tracing::debug!("Update allocatable for {k} to {}", q.0);
        }
        alloc.insert(k.clone(), q);
    }
    Ok((cap, alloc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pressure::EvictionThresholds;

    fn facts() -> MachineFacts {
        MachineFacts {
            num_cores: 4,
            memory_bytes: 16_710_123_520,
            hugepages: vec![(2 << 20, 512)],
            ..Default::default()
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_binary_si(8 << 30), "8Gi");
        assert_eq!(format_binary_si(16_710_123_520), "16318480Ki");
        assert_eq!(format_binary_si(1000), "1000");
        assert_eq!(format_cpu_millis(4000), "4");
        assert_eq!(format_cpu_millis(3900), "3900m");
        assert_eq!(hugepages_resource_name(2 << 20), "hugepages-2Mi");
        assert_eq!(hugepages_resource_name(1 << 30), "hugepages-1Gi");
    }

    #[test]
    fn capacity_and_allocatable_with_defaults() {
        let cfg = CapacityConfig {
            ephemeral_storage_bytes: Some(100 << 30),
            extended: [("example.com/gpu".to_owned(), 2)].into(),
            ..Default::default()
        };
        let cap = capacity(&facts(), &cfg);
        let q = to_quantities(&cap);
        assert_eq!(q["cpu"].0, "4");
        assert_eq!(q["memory"].0, "16318480Ki");
        assert_eq!(q["pods"].0, "110");
        assert_eq!(q["hugepages-2Mi"].0, "1Gi");
        assert_eq!(q["ephemeral-storage"].0, "100Gi");
        assert_eq!(q["example.com/gpu"].0, "2");

        let r = Reservations {
            system: [
                ("cpu".to_owned(), "100m".to_owned()),
                ("memory".to_owned(), "1Gi".to_owned()),
            ]
            .into(),
            kube: [
                ("cpu".to_owned(), "0.1".to_owned()),
                ("ephemeral-storage".to_owned(), "1Gi".to_owned()),
            ]
            .into(),
            eviction_hard: EvictionThresholds::parse(&node_config::default_eviction_hard())
                .unwrap(),
        };
        let a = to_quantities(&allocatable(&cap, &r).unwrap());
        assert_eq!(a["cpu"].0, "3800m");
        // 16318480Ki - 1Gi (system) - 100Mi (eviction) - 1Gi (hugepages)
        assert_eq!(
            a["memory"].0,
            format_binary_si(16_710_123_520 - (1 << 30) - (100 << 20) - (1 << 30))
        );
        // 100Gi - 1Gi - 10% of 100Gi, where 10% is a float32 (0.100000001...) as in the kubelet,
        // so the reservation is 10737418400 bytes, 160 more than 10Gi.
        #[expect(clippy::cast_possible_truncation, reason = "10% of 100 GiB")]
        let ten_percent = ((100u64 << 30) as f64 * f64::from(0.1f32)) as i128;
        assert_eq!(ten_percent, 10_737_418_400);
        assert_eq!(
            a["ephemeral-storage"].0,
            ((100i128 << 30) - (1 << 30) - ten_percent).to_string()
        );
        assert_eq!(a["pods"].0, "110");
        assert_eq!(a["hugepages-2Mi"].0, "1Gi");
    }

    #[test]
    fn pods_per_core_and_clamp() {
        let cfg = CapacityConfig {
            pods_per_core: 10,
            ..Default::default()
        };
        assert_eq!(capacity(&facts(), &cfg)["pods"], 40);
        let cap = capacity(&facts(), &CapacityConfig::default());
        let r = Reservations {
            system: [("cpu".to_owned(), "64".to_owned())].into(),
            ..Default::default()
        };
        assert_eq!(allocatable(&cap, &r).unwrap()["cpu"], 0);
        let bad = Reservations {
            kube: [("memory".to_owned(), "lots".to_owned())].into(),
            ..Default::default()
        };
        let err = allocatable(&cap, &bad).unwrap_err().to_string();
        assert!(
            err.contains("kubeReserved[memory]") && err.contains("lots"),
            "{err}"
        );
    }

    /// Regression (fuzzing audit): `1e38` of reserved memory in both systemReserved and
    /// kubeReserved summed past i128::MAX; it is now refused by the quantity parser, with
    /// the field and the value named.
    #[test]
    fn reserved_memory_beyond_int64_is_an_error() {
        let cap = capacity(&facts(), &CapacityConfig::default());
        let r = Reservations {
            system: [("memory".to_owned(), "1e38".to_owned())].into(),
            kube: [("memory".to_owned(), "1e38".to_owned())].into(),
            ..Default::default()
        };
        let err = allocatable(&cap, &r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid quantity for systemReserved[memory]=\"1e38\""
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("out of range"), "{source}");
    }

    /// Regression (fuzzing audit): hugepage capacity is page size times pages, two u64 read
    /// from sysfs, which can exceed i128; capacity and allocatable saturate instead.
    #[test]
    fn absurd_hugepage_capacity_saturates() {
        let f = MachineFacts {
            hugepages: vec![(u64::MAX - 1023, u64::MAX), (1 << 62, u64::MAX)],
            ..facts()
        };
        let cap = capacity(&f, &CapacityConfig::default());
        assert_eq!(cap[&hugepages_resource_name(u64::MAX - 1023)], i128::MAX);
        let a = allocatable(&cap, &Reservations::default()).unwrap();
        assert_eq!(a["memory"], 0);
        assert_eq!(
            a[&hugepages_resource_name(1 << 62)],
            (1i128 << 62) * i128::from(u64::MAX)
        );
    }

    fn q(list: &[(&str, &str)]) -> QuantityList {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    fn counts(list: &[(&str, i64)]) -> BTreeMap<String, i64> {
        list.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// GetCapacity: capacity = healthy + unhealthy, allocatable = healthy only.
    #[test]
    fn unhealthy_devices_count_in_capacity_only() {
        let mut cfg = CapacityConfig::default();
        cfg.set_device_resources(
            &counts(&[("example.com/gpu", 3), ("example.com/nic", 1)]),
            &counts(&[("example.com/gpu", 2), ("example.com/nic", 0)]),
            &[],
        );
        let (cap, alloc) =
            node_resources(None, None, &facts(), &cfg, &Reservations::default()).unwrap();
        assert_eq!(cap["example.com/gpu"].0, "3");
        assert_eq!(alloc["example.com/gpu"].0, "2");
        assert_eq!(cap["example.com/nic"].0, "1");
        assert_eq!(alloc["example.com/nic"].0, "0");
        // Machine resources are untouched by the overlay.
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(alloc["cpu"].0, "4");
    }

    /// MachineInfo step 2: a removed resource is set to 0 and its key kept, in capacity and
    /// allocatable, and stays at 0 on later updates that no longer name it as deleted, until
    /// its plugin registers again.
    #[test]
    fn removed_resource_is_zero_and_kept() {
        let mut cfg = CapacityConfig::default();
        cfg.set_device_resources(
            &counts(&[("example.com/gpu", 2)]),
            &counts(&[("example.com/gpu", 2)]),
            &[],
        );
        let r = Reservations::default();
        let (cap1, alloc1) = node_resources(None, None, &facts(), &cfg, &r).unwrap();
        assert_eq!(cap1["example.com/gpu"].0, "2");

        // The grace period ran out: GetCapacity reports it deleted, once.
        cfg.set_device_resources(
            &BTreeMap::new(),
            &BTreeMap::new(),
            &["example.com/gpu".into()],
        );
        let (cap2, alloc2) =
            node_resources(Some(&cap1), Some(&alloc1), &facts(), &cfg, &r).unwrap();
        assert_eq!(cap2["example.com/gpu"].0, "0");
        assert_eq!(alloc2["example.com/gpu"].0, "0");

        // Later calls do not name it; it stays at 0, from the remembered set alone (no
        // previous status: e.g. the patch with the 0 failed and a stale Node was read) ...
        cfg.set_device_resources(&BTreeMap::new(), &BTreeMap::new(), &[]);
        let (cap3, alloc3) =
            node_resources(Some(&cap1), Some(&alloc1), &facts(), &cfg, &r).unwrap();
        assert_eq!(cap3["example.com/gpu"].0, "0");
        assert_eq!(alloc3["example.com/gpu"].0, "0");
        // ... and from the server's status alone (a restarted agent), as in the kubelet.
        let fresh = CapacityConfig::default();
        let (cap4, alloc4) =
            node_resources(Some(&cap2), Some(&alloc2), &facts(), &fresh, &r).unwrap();
        assert_eq!(cap4["example.com/gpu"].0, "0");
        assert_eq!(alloc4["example.com/gpu"].0, "0");

        // The plugin registers again: its count replaces the 0 and it leaves the set.
        cfg.set_device_resources(
            &counts(&[("example.com/gpu", 1)]),
            &counts(&[("example.com/gpu", 1)]),
            &[],
        );
        assert!(cfg.removed.is_empty());
        let (cap5, alloc5) =
            node_resources(Some(&cap3), Some(&alloc3), &facts(), &cfg, &r).unwrap();
        assert_eq!(cap5["example.com/gpu"].0, "1");
        assert_eq!(alloc5["example.com/gpu"].0, "1");
    }

    /// MachineInfo step 3: extended keys in allocatable with no capacity key are deleted;
    /// other keys of the previous allocatable are kept, as in the kubelet.
    #[test]
    fn stale_extended_allocatable_keys_are_deleted() {
        let prev_cap = q(&[("cpu", "4")]);
        let prev_alloc = q(&[
            ("cpu", "4"),
            ("example.com/gone", "3"),
            ("vendor.io/also-gone", "1"),
            ("legacy-native", "7"),
        ]);
        let (cap, alloc) = node_resources(
            Some(&prev_cap),
            Some(&prev_alloc),
            &facts(),
            &CapacityConfig::default(),
            &Reservations::default(),
        )
        .unwrap();
        assert!(!cap.contains_key("example.com/gone"));
        assert!(!alloc.contains_key("example.com/gone"));
        assert!(!alloc.contains_key("vendor.io/also-gone"));
        assert_eq!(alloc["legacy-native"].0, "7");
    }

    /// MachineInfo steps 1, 4 and 5: keys on the server this agent does not compute (a
    /// cluster-level extended resource) are kept; allocatable = capacity - reservation,
    /// clamped at 0, for every capacity key; then the device allocatable is set over it.
    #[test]
    fn allocatable_is_capacity_minus_reservation_then_devices() {
        let prev_cap = q(&[
            ("cpu", "64"),
            ("example.com/dongle", "4"),
            ("ephemeral-storage", "10Gi"),
        ]);
        // ephemeral-storage unknown to this agent: the server's value is kept, and its
        // reservation is still taken off.
        let mut cfg = CapacityConfig {
            ephemeral_storage_bytes: None,
            ..CapacityConfig::default()
        };
        cfg.set_device_resources(
            &counts(&[("example.com/gpu", 4)]),
            &counts(&[("example.com/gpu", 1)]),
            &[],
        );
        let r = Reservations {
            system: [("cpu".to_owned(), "5".to_owned())].into(),
            kube: [("ephemeral-storage".to_owned(), "12Gi".to_owned())].into(),
            ..Default::default()
        };
        let (cap, alloc) = node_resources(Some(&prev_cap), None, &facts(), &cfg, &r).unwrap();
        // Machine value replaces the server's; the reservation is clamped at 0.
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(alloc["cpu"].0, "0");
        assert_eq!(cap["example.com/dongle"].0, "4");
        assert_eq!(alloc["example.com/dongle"].0, "4");
        assert_eq!(cap["ephemeral-storage"].0, "10Gi");
        assert_eq!(alloc["ephemeral-storage"].0, "0");
        assert_eq!(cap["example.com/gpu"].0, "4");
        assert_eq!(alloc["example.com/gpu"].0, "1");

        // A kept key with a reservation and a value that does not parse is an error naming it.
        let bad = q(&[("ephemeral-storage", "lots")]);
        let err = node_resources(Some(&bad), None, &facts(), &cfg, &r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("status.capacity[ephemeral-storage]"), "{err}");
    }

    /// A plugin cannot set native resources, and negative counts are taken as 0.
    #[test]
    fn device_resources_are_extended_names_only() {
        let mut cfg = CapacityConfig::default();
        cfg.set_device_resources(
            &counts(&[
                ("cpu", 1000),
                ("kubernetes.io/gpu", 1),
                ("example.com/x", -5),
            ]),
            &counts(&[("cpu", 1000), ("memory", 1), ("example.com/x", -5)]),
            &["memory".into(), "requests.example.com/y".into()],
        );
        assert_eq!(cfg.extended, counts(&[("example.com/x", 0)]));
        assert_eq!(cfg.extended_allocatable, counts(&[("example.com/x", 0)]));
        assert!(cfg.removed.is_empty());
        let (cap, alloc) =
            node_resources(None, None, &facts(), &cfg, &Reservations::default()).unwrap();
        assert_eq!(cap["cpu"].0, "4");
        assert!(!alloc.contains_key("kubernetes.io/gpu"));
        assert!(is_extended_resource_name("example.com/gpu"));
        assert!(!is_extended_resource_name("hugepages-2Mi"));
        assert!(!is_extended_resource_name("kubernetes.io/gpu"));
        assert!(!is_extended_resource_name("requests.example.com/gpu"));
    }
}
