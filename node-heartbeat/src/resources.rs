//! Capacity and allocatable (the `MachineInfo` setter) and resource quantity formatting.

use std::collections::BTreeMap;

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
pub struct CapacityConfig {
    /// `maxPods` (110 by default).
    pub max_pods: i64,
    /// `podsPerCore` (0 = off).
    pub pods_per_core: i64,
    /// Size of the filesystem holding the root dir (`ephemeral-storage`), if known.
    pub ephemeral_storage_bytes: Option<u64>,
    /// Extended resources from device plugins (name -> device count); 0 keeps a removed
    /// plugin's resource visible as the kubelet does.
    pub extended: BTreeMap<String, i64>,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            max_pods: 110,
            pods_per_core: 0,
            ephemeral_storage_bytes: None,
            extended: BTreeMap::new(),
        }
    }
}

/// `status.capacity`: cpu, memory, hugepages-*, pods, ephemeral-storage, extended resources.
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
        cap.insert(name.clone(), i128::from(*count));
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
        #[allow(clippy::cast_possible_truncation)]
        out.insert(k.clone(), base.ceil() as i128);
    }
    Ok(out)
}

/// What is held back from capacity: `systemReserved + kubeReserved + hard eviction`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservations {
    /// `systemReserved`.
    pub system: BTreeMap<String, String>,
    /// `kubeReserved`.
    pub kube: BTreeMap<String, String>,
    /// Hard eviction thresholds (`evictionHard`).
    pub eviction_hard: EvictionThresholds,
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
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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
}
