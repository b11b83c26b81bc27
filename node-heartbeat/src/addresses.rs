//! Node addresses (the `NodeAddress` setter): `--node-ip`, `--hostname-override`, DNS, and the
//! default-route interface, in the kubelet's order.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use k8s_openapi::api::core::v1::NodeAddress;

use crate::error::{Error, Result};

/// What the address setter needs to know about the node and its network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressInputs {
    /// The node name (DNS lookups use it).
    pub node_name: String,
    /// The hostname: `--hostname-override` or the kernel hostname, lower-cased and trimmed.
    pub hostname: String,
    /// Whether `--hostname-override` was given (an IP there is used as the node IP).
    pub hostname_overridden: bool,
    /// `--node-ip`, parsed (may hold `0.0.0.0` or `::` to pick the family only).
    pub node_ips: Vec<IpAddr>,
    /// Addresses on local interfaces.
    pub interface_ips: Vec<IpAddr>,
    /// Addresses of the interfaces carrying the default routes (v4 then v6).
    pub default_route_ips: Vec<IpAddr>,
}

/// Normalises a hostname as the kubelet does (trimmed, lower-cased).
pub fn normalize_hostname(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The node's host name as the kubelet computes it (`GetHostname` of
/// `k8s.io/component-helpers/node/util`): `--hostname-override` when given, else the kernel's
/// host name; trimmed and lower-cased. Without a cloud provider the node name is this name.
///
/// # Errors
/// [`Error::Hostname`] when the kernel's name cannot be read; [`Error::EmptyHostname`] when
/// the name is blank (an override of only spaces included, as upstream).
pub fn hostname(hostname_override: Option<&str>) -> Result<String> {
    let name = match hostname_override.filter(|o| !o.is_empty()) {
        Some(name) => name.to_owned(),
        None => nix::unistd::gethostname()
            .map_err(|source| Error::Hostname { source })?
            .to_string_lossy()
            .into_owned(),
    };
    let name = normalize_hostname(&name);
    if name.is_empty() {
        return Err(Error::EmptyHostname);
    }
    Ok(name)
}

impl AddressInputs {
    /// The inputs for the live host: `node_ips` from `--node-ip` ([`parse_node_ips`]), the
    /// interfaces and default routes probed under `root` ([`probe_network`]).
    #[must_use]
    pub fn probe(
        root: &Path,
        node_name: &str,
        hostname: &str,
        hostname_overridden: bool,
        node_ips: Vec<IpAddr>,
    ) -> Self {
        let (interface_ips, default_route_ips) = probe_network(root);
        AddressInputs {
            node_name: node_name.to_owned(),
            hostname: hostname.to_owned(),
            hostname_overridden,
            node_ips,
            interface_ips,
            default_route_ips,
        }
    }
}

/// The IPs among `addresses` (the `InternalIP`/`ExternalIP` entries; host names are skipped),
/// e.g. for the serving certificate's IP SANs.
#[must_use]
pub fn address_ips(addresses: &[NodeAddress]) -> Vec<IpAddr> {
    addresses
        .iter()
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

/// Parses `--node-ip`: comma-separated, at most two, and two must be one of each family.
pub fn parse_node_ips(flag: &str) -> Result<Vec<IpAddr>> {
    if flag.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut ips = Vec::new();
    for part in flag.split(',') {
        let ip: IpAddr = part.trim().parse().map_err(|_| Error::NodeIp {
            ip: part.trim().to_owned(),
            reason: "is not a valid IP address".into(),
        })?;
        ips.push(ip);
    }
    let bad = |reason: &str| Error::NodeIp {
        ip: flag.to_owned(),
        reason: reason.to_owned(),
    };
    match ips.as_slice() {
        [_] => {}
        [a, b] => {
            if a.is_ipv4() == b.is_ipv4() {
                return Err(bad(
                    "must contain either a single IP or a dual-stack pair of IPs",
                ));
            }
            if a.is_unspecified() || b.is_unspecified() {
                return Err(bad("cannot include '0.0.0.0' or '::' in a dual-stack pair"));
            }
        }
        _ => {
            return Err(bad(
                "must contain either a single IP or a dual-stack pair of IPs",
            ));
        }
    }
    Ok(ips)
}

fn is_link_local_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `validateNodeIP`: not loopback, multicast, link-local or unspecified, and present locally.
pub fn validate_node_ip(ip: &IpAddr, interface_ips: &[IpAddr]) -> Result<()> {
    let reason = if ip.is_loopback() {
        Some("nodeIP can't be loopback address")
    } else if ip.is_multicast() {
        Some("nodeIP can't be a multicast address")
    } else if is_link_local_unicast(ip) {
        Some("nodeIP can't be a link-local unicast address")
    } else if ip.is_unspecified() {
        Some("nodeIP can't be an all zeros address")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::NodeIp {
            ip: ip.to_string(),
            reason: reason.to_owned(),
        });
    }
    if interface_ips.contains(ip) {
        Ok(())
    } else {
        Err(Error::NodeIp {
            ip: ip.to_string(),
            reason: "not found in the host's network interfaces".to_owned(),
        })
    }
}

/// Computes `status.addresses`. `resolve` looks the node name up in DNS (injected for tests).
pub fn node_addresses(
    inputs: &AddressInputs,
    resolve: &dyn Fn(&str) -> Vec<IpAddr>,
) -> Result<Vec<NodeAddress>> {
    let specified: Vec<IpAddr> = inputs
        .node_ips
        .iter()
        .copied()
        .filter(|ip| !ip.is_unspecified())
        .collect();
    for ip in &specified {
        validate_node_ip(ip, &inputs.interface_ips)?;
    }
    let internal = |ip: IpAddr| NodeAddress {
        type_: "InternalIP".into(),
        address: ip.to_string(),
    };
    let hostname = NodeAddress {
        type_: "Hostname".into(),
        address: inputs.hostname.clone(),
    };
    if specified.len() == 2 {
        return Ok(vec![
            internal(specified[0]),
            internal(specified[1]),
            hostname,
        ]);
    }
    // IPv4 is preferred unless the node IP (even `::`) is IPv6.
    let prefer_v4 = inputs.node_ips.first().is_none_or(IpAddr::is_ipv4);
    let preferred = |ip: &IpAddr| ip.is_ipv4() == prefer_v4;

    let mut chosen = specified.first().copied();
    if chosen.is_none() && inputs.hostname_overridden {
        chosen = inputs.hostname.parse::<IpAddr>().ok();
    }
    if chosen.is_none() {
        let mut fallback = None;
        for ip in resolve(&inputs.node_name) {
            if validate_node_ip(&ip, &inputs.interface_ips).is_ok() {
                if preferred(&ip) {
                    chosen = Some(ip);
                    break;
                }
                fallback.get_or_insert(ip);
            }
        }
        chosen = chosen.or(fallback);
    }
    if chosen.is_none() {
        chosen = inputs
            .default_route_ips
            .iter()
            .find(|ip| preferred(ip))
            .or_else(|| inputs.default_route_ips.first())
            .copied();
    }
    match chosen {
        Some(ip) => Ok(vec![internal(ip), hostname]),
        None => Err(Error::NoNodeAddress {
            node: inputs.node_name.clone(),
            reason: "no valid address from --node-ip, --hostname-override, DNS or the default-route interface".into(),
        }),
    }
}

/// Looks a name up with the system resolver.
pub fn dns_lookup(name: &str) -> Vec<IpAddr> {
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|sa| sa.ip()).collect())
        .unwrap_or_default()
}

/// Name of the interface with the IPv4 default route, from `<root>/proc/net/route`.
pub fn default_route_interface_v4(root: &Path) -> Option<String> {
    let text = crate::machine::read(root, "proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
    })
}

/// Name of the interface with the IPv6 default route, from `<root>/proc/net/ipv6_route`.
pub fn default_route_interface_v6(root: &Path) -> Option<String> {
    let text = crate::machine::read(root, "proc/net/ipv6_route").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 10
            && f[0] == "00000000000000000000000000000000"
            && f[1] == "00"
            && f[9] != "lo")
            .then(|| f[9].to_owned())
    })
}

/// Probes the live host: interface addresses (`getifaddrs`) and the default-route interfaces'
/// addresses (routes read from `root`).
pub fn probe_network(root: &Path) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut all = Vec::new();
    let mut by_iface: Vec<(String, IpAddr)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(sa) = a.address else { continue };
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            all.push(ip);
            by_iface.push((a.interface_name.clone(), ip));
        }
    }
    let mut defaults = Vec::new();
    for (iface, want_v4) in [
        (default_route_interface_v4(root), true),
        (default_route_interface_v6(root), false),
    ] {
        let Some(iface) = iface else { continue };
        defaults.extend(
            by_iface
                .iter()
                .filter(|(n, ip)| {
                    *n == iface && ip.is_ipv4() == want_v4 && validate_node_ip(ip, &all).is_ok()
                })
                .map(|(_, ip)| *ip),
        );
    }
    (all, defaults)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn inputs() -> AddressInputs {
        AddressInputs {
            node_name: "node-1".into(),
            hostname: "node-1".into(),
            hostname_overridden: false,
            node_ips: vec![],
            interface_ips: vec![
                ip("127.0.0.1"),
                ip("10.0.0.5"),
                ip("fd00::5"),
                ip("192.168.1.9"),
            ],
            default_route_ips: vec![ip("192.168.1.9"), ip("fd00::5")],
        }
    }

    fn addrs(v: &[NodeAddress]) -> Vec<(String, String)> {
        v.iter()
            .map(|a| (a.type_.clone(), a.address.clone()))
            .collect()
    }

    #[test]
    fn order_of_choice() {
        let none = |_: &str| Vec::new();
        // 4. default route interface, IPv4 preferred.
        let a = node_addresses(&inputs(), &none).unwrap();
        assert_eq!(
            addrs(&a),
            vec![
                ("InternalIP".into(), "192.168.1.9".into()),
                ("Hostname".into(), "node-1".into())
            ]
        );
        // 3. DNS beats the default route; invalid (loopback) answers are skipped.
        let dns = |_: &str| vec![ip("127.0.1.1"), ip("fd00::5"), ip("10.0.0.5")];
        let a = node_addresses(&inputs(), &dns).unwrap();
        assert_eq!(a[0].address, "10.0.0.5");
        // `--node-ip=::` flips the preference to IPv6.
        let mut i = inputs();
        i.node_ips = parse_node_ips("::").unwrap();
        assert_eq!(node_addresses(&i, &dns).unwrap()[0].address, "fd00::5");
        // 2. hostname-override that is an IP.
        let mut i = inputs();
        i.hostname = "10.9.9.9".into();
        i.hostname_overridden = true;
        assert_eq!(node_addresses(&i, &dns).unwrap()[0].address, "10.9.9.9");
        // 1. --node-ip.
        let mut i = inputs();
        i.node_ips = parse_node_ips("10.0.0.5").unwrap();
        assert_eq!(node_addresses(&i, &dns).unwrap()[0].address, "10.0.0.5");
        // Dual stack: both, then hostname.
        let mut i = inputs();
        i.node_ips = parse_node_ips("fd00::5,10.0.0.5").unwrap();
        let a = addrs(&node_addresses(&i, &none).unwrap());
        assert_eq!(
            a.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
            vec!["fd00::5", "10.0.0.5", "node-1"]
        );
    }

    #[test]
    fn rejected_ips() {
        let none = |_: &str| Vec::new();
        let mut i = inputs();
        i.node_ips = vec![ip("10.1.1.1")];
        let e = node_addresses(&i, &none).unwrap_err().to_string();
        assert_eq!(
            e,
            "node IP: \"10.1.1.1\" not found in the host's network interfaces"
        );
        i.node_ips = vec![ip("127.0.0.1")];
        assert!(
            node_addresses(&i, &none)
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
        assert!(parse_node_ips("10.0.0.1,10.0.0.2").is_err());
        assert!(parse_node_ips("10.0.0.1,::1,fd00::1").is_err());
        assert!(
            parse_node_ips("nope")
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
        let mut i = inputs();
        i.default_route_ips.clear();
        let e = node_addresses(&i, &none).unwrap_err().to_string();
        assert!(
            e.starts_with("can't get ip address of node node-1. error: "),
            "{e}"
        );
    }

    #[test]
    fn routes_from_fixture_and_live() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::write(
            dir.path().join("proc/net/route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        )
        .unwrap();
        assert_eq!(
            default_route_interface_v4(dir.path()).as_deref(),
            Some("eth0")
        );
        assert_eq!(default_route_interface_v6(dir.path()), None);
        let (all, _defaults) = probe_network(Path::new("/"));
        assert!(all.contains(&ip("127.0.0.1")));
    }

    #[test]
    fn hostname_follows_the_kubelet() {
        assert_eq!(
            hostname(Some("  Node-A.Example ")).unwrap(),
            "node-a.example"
        );
        // Only spaces is an error, as upstream; an empty override means "not given".
        assert!(matches!(hostname(Some("   ")), Err(Error::EmptyHostname)));
        let kernel = hostname(None).unwrap();
        assert_eq!(hostname(Some("")).unwrap(), kernel);
        assert_eq!(kernel, normalize_hostname(&kernel));
    }

    #[test]
    fn address_ips_skip_host_names() {
        let a = |t: &str, v: &str| NodeAddress {
            type_: t.into(),
            address: v.into(),
        };
        let ips = address_ips(&[
            a("InternalIP", "10.0.0.5"),
            a("Hostname", "node-a"),
            a("InternalIP", "fd00::5"),
        ]);
        assert_eq!(
            ips,
            [
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
    }
}
