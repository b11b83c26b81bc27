//! Pod networking the kubelet's way, as pure functions: what goes into the sandbox config
//! (hostname, DNS, port mappings), the pod's IPs from the runtime's answer, and the managed
//! `/etc/hosts` file. The runtime's CNI plugins do the networking itself.
//!
//! Sources (Kubernetes 1.35): `pkg/kubelet/network/dns/dns.go` (`GetPodDNS`,
//! `getPodDNSType`, `parseResolvConf`, `formDNSConfigFitsLimits`), `pkg/kubelet/kubelet_pods.go`
//! (`GeneratePodHostNameAndDomain`, `truncatePodHostnameIfNeeded`, `managedHostsFileContent`,
//! `nodeHostsFileContent`, `makeMounts`), `pkg/kubelet/util/util.go` (`GetNodenameForKernel`),
//! `pkg/kubelet/container/helpers.go` (`MakePortMappings`) and
//! `pkg/kubelet/kuberuntime/kuberuntime_sandbox.go` (`generatePodSandboxConfig`,
//! `determinePodSandboxIPs`).

use std::collections::HashSet;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, PodSpec};

use crate::cri;

/// The most of a resolver configuration file that is read (the kubelet's 10 MiB cap).
pub const MAX_RESOLV_CONF_BYTES: u64 = 10 << 20;
/// The most nameservers a pod gets (`MaxDNSNameservers`).
pub const MAX_DNS_NAMESERVERS: usize = 3;
/// The most search domains a pod gets (`MaxDNSSearchPaths`).
pub const MAX_DNS_SEARCH_PATHS: usize = 32;
/// The longest search line, in characters (`MaxDNSSearchListChars`).
pub const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;
/// The longest search domain kept (`DNS1123SubdomainMaxLength`): glibc aborts on longer ones.
const MAX_SEARCH_DOMAIN: usize = 253;
/// The longest pod hostname (the kernel's 64-byte nodename with its terminator).
pub const MAX_HOSTNAME: usize = 63;
/// The longest FQDN used as a hostname (`setHostnameAsFQDN`).
pub const MAX_FQDN: usize = 64;
/// Where the managed hosts file is mounted in each container.
pub const ETC_HOSTS: &str = "/etc/hosts";
/// The most of the node's hosts file copied for a host-network pod.
pub const MAX_NODE_HOSTS_BYTES: u64 = 1 << 20;

/// The node's DNS settings for pods (`clusterDNS`, `clusterDomain`, `resolvConf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSettings {
    /// `clusterDNS`: the cluster's DNS servers, for `ClusterFirst` pods.
    pub cluster_dns: Vec<IpAddr>,
    /// `clusterDomain`, e.g. `cluster.local` (empty: none).
    pub cluster_domain: String,
    /// `resolvConf`: the node's resolver file the host part comes from; `None` when the
    /// configuration sets it to `""` (pods then resolve through the node's loopback).
    pub resolv_conf: Option<PathBuf>,
    /// The node's IPs: with no `resolvConf`, each gives a loopback nameserver of its family.
    pub node_ips: Vec<IpAddr>,
}

impl DnsSettings {
    /// From the kubelet configuration's `clusterDNS`, `clusterDomain` and `resolvConf`
    /// (`None`: the default `/etc/resolv.conf`; `""`: none).
    ///
    /// # Errors
    /// A `clusterDNS` entry that is not an IP address, naming it.
    pub fn from_config(
        cluster_dns: &[String],
        cluster_domain: &str,
        resolv_conf: Option<&str>,
        node_ips: Vec<IpAddr>,
    ) -> Result<Self, String> {
        let cluster_dns = cluster_dns
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("clusterDNS: {s:?} is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let resolv_conf = match resolv_conf {
            None => Some(PathBuf::from("/etc/resolv.conf")),
            Some("") => None,
            Some(p) => Some(PathBuf::from(p)),
        };
        Ok(Self {
            cluster_dns,
            cluster_domain: cluster_domain.trim_end_matches('.').to_owned(),
            resolv_conf,
            node_ips,
        })
    }
}

/// The node's resolver settings, as `parseResolvConf` reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostDns {
    /// `nameserver` lines, in order.
    pub servers: Vec<String>,
    /// The last `search` line's domains, trailing dots removed, `.` dropped.
    pub searches: Vec<String>,
    /// `options`, merged by name (a later one replaces an earlier one in place).
    pub options: Vec<String>,
}

/// Parses a resolver file the kubelet's way: `#` lines skipped, each `nameserver` adds its
/// first argument, the last `search` line wins, `options` merge by name.
pub fn parse_resolv_conf(text: &str) -> HostDns {
    let mut out = HostDns::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => {
                if let Some(server) = fields.next() {
                    out.servers.push(server.to_owned());
                }
            }
            Some("search") => {
                out.searches = fields
                    .filter(|s| *s != ".")
                    .map(|s| s.trim_end_matches('.').to_owned())
                    .collect();
            }
            Some("options") => {
                for option in fields {
                    merge_option(&mut out.options, option.to_owned());
                }
            }
            _ => {}
        }
    }
    out
}

/// Reads and parses the resolver file at `path` (at most [`MAX_RESOLV_CONF_BYTES`]).
///
/// # Errors
/// The file cannot be read, naming it.
pub fn read_resolv_conf(path: &Path) -> Result<HostDns, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "failed to open the DNS resolver file {}: {e}",
            path.display()
        )
    })?;
    let mut text = String::new();
    file.take(MAX_RESOLV_CONF_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| {
            format!(
                "failed to read the DNS resolver file {}: {e}",
                path.display()
            )
        })?;
    Ok(parse_resolv_conf(&text))
}

fn option_name(option: &str) -> &str {
    option.split(':').next().unwrap_or(option)
}

/// Adds `option`, replacing one of the same name in place.
fn merge_option(options: &mut Vec<String>, option: String) {
    match options
        .iter_mut()
        .find(|o| option_name(o) == option_name(&option))
    {
        Some(existing) => *existing = option,
        None => options.push(option),
    }
}

fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// How a pod resolves names (`getPodDNSType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodDnsType {
    /// `ClusterFirst` (not host network), `ClusterFirstWithHostNet`: the cluster's DNS.
    Cluster,
    /// `Default`, or `ClusterFirst` on the host network: the node's resolver settings.
    Host,
    /// `None`: only what `dnsConfig` says.
    None,
}

/// The pod's DNS type from its `dnsPolicy` (empty: the API default `ClusterFirst`).
pub fn pod_dns_type(spec: &PodSpec) -> PodDnsType {
    match spec.dns_policy.as_deref().unwrap_or("ClusterFirst") {
        "None" => PodDnsType::None,
        "ClusterFirstWithHostNet" => PodDnsType::Cluster,
        "Default" => PodDnsType::Host,
        "ClusterFirst" | "" if spec.host_network == Some(true) => PodDnsType::Host,
        // Validation refuses any other value; the kubelet treats one as ClusterFirst.
        _ => PodDnsType::Cluster,
    }
}

/// A warning event the DNS composition raises on the pod (`MissingClusterDNS`,
/// `DNSConfigForming`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsWarning {
    /// The event reason.
    pub reason: &'static str,
    /// The event message.
    pub message: String,
}

/// The sandbox's DNS config and the warnings raised building it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDns {
    /// What the runtime writes into the pod's `resolv.conf` (empty: the runtime copies the
    /// node's file, as containerd does).
    pub config: cri::DnsConfig,
    /// Warnings for the pod's events.
    pub warnings: Vec<DnsWarning>,
}

/// The pod's DNS config (`GetPodDNS`): from the node's resolver settings `host` (read from
/// `resolvConf`; `None` when `resolvConf` is empty), the cluster's DNS for `ClusterFirst`
/// pods, then the pod's `dnsConfig`, trimmed to the resolver's limits.
pub fn pod_dns(pod: &Pod, settings: &DnsSettings, host: Option<&HostDns>) -> PodDns {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut warnings = Vec::new();
    let host = host.cloned().unwrap_or_default();
    let mut config = cri::DnsConfig {
        servers: host.servers,
        searches: host.searches,
        options: host.options,
    };
    let mut dns_type = pod_dns_type(&spec);
    if dns_type == PodDnsType::Cluster && settings.cluster_dns.is_empty() {
        let message = "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.";
        warnings.push(DnsWarning {
            reason: "MissingClusterDNS",
            message: format!(
                "pod: \"{}_{namespace}({})\". {message}",
                pod.metadata.name.as_deref().unwrap_or_default(),
                pod.metadata.uid.as_deref().unwrap_or_default()
            ),
        });
        dns_type = PodDnsType::Host;
    }
    match dns_type {
        PodDnsType::None => config = cri::DnsConfig::default(),
        PodDnsType::Cluster => {
            config.servers = settings
                .cluster_dns
                .iter()
                .map(ToString::to_string)
                .collect();
            if !settings.cluster_domain.is_empty() {
                let domain = &settings.cluster_domain;
                let mut searches = vec![
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ];
                searches.append(&mut config.searches);
                config.searches = omit_duplicates(searches);
            }
            config.options = vec!["ndots:5".to_owned()];
        }
        PodDnsType::Host => {
            if settings.resolv_conf.is_none() {
                // No resolver file: the node's own resolver, through loopback.
                config.servers = settings
                    .node_ips
                    .iter()
                    .map(|ip| if ip.is_ipv6() { "::1" } else { "127.0.0.1" }.to_owned())
                    .collect();
                if config.servers.is_empty() {
                    config.servers.push("127.0.0.1".to_owned());
                }
                config.searches = vec![".".to_owned()];
            }
        }
    }
    if let Some(pod_config) = &spec.dns_config {
        let mut servers = std::mem::take(&mut config.servers);
        servers.extend(pod_config.nameservers.iter().flatten().cloned());
        config.servers = omit_duplicates(servers);
        let mut searches = std::mem::take(&mut config.searches);
        searches.extend(pod_config.searches.iter().flatten().cloned());
        config.searches = omit_duplicates(searches);
        for option in pod_config.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else {
                continue;
            };
            let rendered = match &option.value {
                Some(value) => format!("{name}:{value}"),
                None => name.to_owned(),
            };
            merge_option(&mut config.options, rendered);
        }
    }
    fit_limits(&mut config, &mut warnings);
    PodDns { config, warnings }
}

/// `formDNSConfigFitsLimits`: at most 3 nameservers; at most 32 search domains, none longer
/// than 253 characters, the line at most 2048 characters (cut from the end).
fn fit_limits(config: &mut cri::DnsConfig, warnings: &mut Vec<DnsWarning>) {
    if config.servers.len() > MAX_DNS_NAMESERVERS {
        config.servers.truncate(MAX_DNS_NAMESERVERS);
        warnings.push(DnsWarning {
            reason: "DNSConfigForming",
            message: format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
                config.servers.join(" ")
            ),
        });
    }
    let mut exceeded = false;
    if config.searches.len() > MAX_DNS_SEARCH_PATHS {
        config.searches.truncate(MAX_DNS_SEARCH_PATHS);
        exceeded = true;
    }
    let before = config.searches.len();
    config.searches.retain(|s| s.len() <= MAX_SEARCH_DOMAIN);
    exceeded |= config.searches.len() != before;
    let mut line_len = config.searches.iter().map(|s| s.len() + 1).sum::<usize>();
    line_len = line_len.saturating_sub(1);
    while line_len > MAX_DNS_SEARCH_LIST_CHARS {
        let Some(last) = config.searches.pop() else {
            break;
        };
        line_len = line_len.saturating_sub(last.len() + 1);
        exceeded = true;
    }
    if exceeded {
        warnings.push(DnsWarning {
            reason: "DNSConfigForming",
            message: format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                config.searches.join(" ")
            ),
        });
    }
}

/// The pod's hostname and domain (`GeneratePodHostNameAndDomain`): `spec.hostname` or the
/// pod's name, cut to 63 characters without a trailing `-` or `.`; the domain
/// `<subdomain>.<namespace>.svc.<clusterDomain>` when `spec.subdomain` is set.
///
/// # Errors
/// `spec.hostname` or `spec.subdomain` is not a DNS label, or nothing is left of the name.
pub fn pod_hostname(pod: &Pod, cluster_domain: &str) -> Result<(String, String), String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let mut hostname = name.to_owned();
    if let Some(h) = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        if !crate::validation::is_dns_label(h) {
            return Err(format!("pod Hostname {h:?} is not a valid DNS label"));
        }
        hostname = h.to_owned();
    }
    if hostname.len() > MAX_HOSTNAME {
        // Names are ASCII (validated), so byte slicing is safe; stay defensive anyway.
        let cut: String = hostname.chars().take(MAX_HOSTNAME).collect();
        hostname = cut.trim_end_matches(['-', '.']).to_owned();
        if hostname.is_empty() {
            return Err(format!("hostname for pod {name:?} was invalid"));
        }
    }
    let mut domain = String::new();
    if let Some(sub) = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        if !crate::validation::is_dns_label(sub) {
            return Err(format!("pod Subdomain {sub:?} is not a valid DNS label"));
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        domain = format!("{sub}.{namespace}.svc.{cluster_domain}");
    }
    Ok((hostname, domain))
}

/// The hostname the sandbox's kernel gets (`GetNodenameForKernel`): the FQDN when the pod
/// sets `setHostnameAsFQDN` and has a domain, else the hostname.
///
/// # Errors
/// The FQDN is longer than 64 characters (the kubelet's message).
pub fn kernel_hostname(hostname: &str, domain: &str, as_fqdn: bool) -> Result<String, String> {
    if domain.is_empty() || !as_fqdn {
        return Ok(hostname.to_owned());
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > MAX_FQDN {
        return Err(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({MAX_FQDN} characters is the max, {} characters requested)",
            fqdn.len()
        ));
    }
    Ok(fqdn)
}

/// The sandbox's port mappings (`MakePortMappings` for each regular container): every
/// declared port, the first of each `(protocol, containerPort, hostIP, hostPort)` kept; the
/// runtime's portmap plugin publishes those with a `hostPort`.
pub fn port_mappings(spec: &PodSpec) -> Vec<cri::PortMapping> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for container in &spec.containers {
        for port in container.ports.iter().flatten() {
            let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => cri::Protocol::Udp,
                "SCTP" => cri::Protocol::Sctp,
                _ => cri::Protocol::Tcp,
            };
            let host_port = port.host_port.unwrap_or(0);
            let host_ip = port.host_ip.clone().unwrap_or_default();
            if !seen.insert((protocol, port.container_port, host_ip.clone(), host_port)) {
                tracing::warn!(container = %container.name, port = port.container_port, "duplicate port mapping skipped");
                continue;
            }
            out.push(cri::PortMapping {
                protocol: protocol as i32,
                container_port: port.container_port,
                host_port,
                host_ip,
            });
        }
    }
    out
}

/// The pod's IPs from its sandbox's status (`determinePodSandboxIPs`): the primary, then the
/// additional ones; anything that is not an IP address is dropped.
pub fn sandbox_ips(status: &cri::PodSandboxStatus) -> Vec<String> {
    let Some(network) = &status.network else {
        return Vec::new();
    };
    std::iter::once(network.ip.as_str())
        .chain(network.additional_ips.iter().map(|ip| ip.ip.as_str()))
        .filter(|ip| !ip.is_empty())
        .filter_map(|ip| match ip.parse::<IpAddr>() {
            Ok(parsed) => Some(parsed.to_string()),
            Err(_) => {
                tracing::warn!(sandbox = %status.id, ip = %ip, "the runtime reported a pod IP that is not an IP address; ignored");
                None
            }
        })
        .collect()
}

/// The managed `/etc/hosts` of a pod with its own network (`managedHostsFileContent`).
pub fn managed_hosts(pod_ips: &[String], hostname: &str, domain: &str, pod: &Pod) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out.push_str(&host_aliases(pod));
    out
}

/// The `/etc/hosts` of a host-network pod (`nodeHostsFileContent`): the node's file behind
/// the kubelet's header, then the pod's `hostAliases`.
pub fn node_hosts(node_file: &str, pod: &Pod) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file (host network).\n");
    out.push_str(node_file);
    out.push_str(&host_aliases(pod));
    out
}

fn host_aliases(pod: &Pod) -> String {
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.as_ref())
        .filter(|a| !a.is_empty());
    let Some(aliases) = aliases else {
        return String::new();
    };
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        // Validated (an IP address and DNS-1123 hostnames), so no line breaks get in.
        out.push_str(&format!(
            "{}\t{}\n",
            alias.ip,
            alias.hostnames.clone().unwrap_or_default().join("\t")
        ));
    }
    out
}

/// Whether the managed hosts file is mounted into `container` (`makeMounts`): not when the
/// container mounts something at `/etc/hosts` itself.
pub fn mounts_hosts_file(container: &k8s_openapi::api::core::v1::Container) -> bool {
    !container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| Path::new(&m.mount_path) == Path::new(ETC_HOSTS))
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> crate::RuntimeError {
    crate::RuntimeError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The name of the managed hosts file in the pod directory.
pub const HOSTS_FILE: &str = "etc-hosts";

/// The content of `pod`'s managed `/etc/hosts`: the kubelet's file for a pod with its own
/// network (its IPs, hostname and domain), or the node's `/etc/hosts` (at most
/// [`MAX_NODE_HOSTS_BYTES`]) for a host-network pod; then `hostAliases`.
///
/// # Errors
/// The hostname is invalid, or the node's hosts file cannot be read.
pub fn hosts_file_content(
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
) -> Result<String, String> {
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        let mut text = String::new();
        std::fs::File::open("/etc/hosts")
            .and_then(|f| f.take(MAX_NODE_HOSTS_BYTES).read_to_string(&mut text))
            .map_err(|e| format!("failed to read the node's /etc/hosts: {e}"))?;
        return Ok(node_hosts(&text, pod));
    }
    let (hostname, domain) = pod_hostname(pod, cluster_domain)?;
    Ok(managed_hosts(pod_ips, &hostname, &domain, pod))
}

/// Writes `content` to `<pod_dir>/etc-hosts` (mode 0644) unless it already holds exactly that,
/// in place (containers already running have the file bind-mounted), never following a
/// symlink; returns its path.
///
/// # Errors
/// The pod directory is missing or the file cannot be written.
pub fn write_hosts_file(pod_dir: &Path, content: &str) -> Result<PathBuf, crate::RuntimeError> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    use std::io::Write;
    let path = pod_dir.join(HOSTS_FILE);
    let dir = crate::safe_fs::open_base(pod_dir)?
        .ok_or_else(|| crate::safe_fs::unsafe_path(pod_dir, "the pod directory does not exist"))?;
    let fd = openat(
        &dir,
        HOSTS_FILE,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| crate::safe_fs::io_error("open", &path, e))?;
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| io_err("stat", &path, e))?;
    if !meta.is_file() {
        return Err(crate::safe_fs::unsafe_path(&path, "not a regular file"));
    }
    let mut current = Vec::new();
    (&mut file)
        .take(MAX_NODE_HOSTS_BYTES * 2)
        .read_to_end(&mut current)
        .map_err(|e| io_err("read", &path, e))?;
    if current != content.as_bytes() {
        file.set_len(0)
            .and_then(|()| std::io::Seek::rewind(&mut file))
            .and_then(|()| file.write_all(content.as_bytes()))
            .map_err(|e| io_err("write", &path, e))?;
    }
    nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(0o644))
        .map_err(|e| crate::safe_fs::io_error("chmod", &path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, HostAlias, PodDNSConfig, PodDNSConfigOption,
    };

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn cluster() -> DnsSettings {
        DnsSettings::from_config(
            &["10.96.0.10".to_owned()],
            "cluster.local",
            None,
            vec!["192.0.2.2".parse().unwrap()],
        )
        .unwrap()
    }

    fn host() -> HostDns {
        parse_resolv_conf(
            "# comment\nnameserver 10.255.255.53\nnameserver 10.255.255.54\nsearch a.example. b.example .\noptions timeout:2 rotate\noptions timeout:3\n",
        )
    }

    #[test]
    fn resolv_conf_is_parsed_the_kubelets_way() {
        let h = host();
        assert_eq!(h.servers, ["10.255.255.53", "10.255.255.54"]);
        assert_eq!(h.searches, ["a.example", "b.example"]);
        assert_eq!(h.options, ["timeout:3", "rotate"]);
        // The last search line wins; a nameserver line without an address is skipped.
        let h = parse_resolv_conf("search x\nsearch y z\nnameserver\n");
        assert_eq!(h.searches, ["y", "z"]);
        assert!(h.servers.is_empty());
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_searches() {
        let d = pod_dns(
            &pod(serde_json::json!({"containers": []})),
            &cluster(),
            Some(&host()),
        );
        assert_eq!(d.config.servers, ["10.96.0.10"]);
        assert_eq!(
            d.config.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "a.example",
                "b.example"
            ]
        );
        assert_eq!(d.config.options, ["ndots:5"]);
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn cluster_first_on_the_host_network_uses_the_nodes_settings() {
        let p = pod(serde_json::json!({"hostNetwork": true, "containers": []}));
        let d = pod_dns(&p, &cluster(), Some(&host()));
        assert_eq!(d.config.servers, ["10.255.255.53", "10.255.255.54"]);
        assert_eq!(d.config.options, ["timeout:3", "rotate"]);
        let p = pod(
            serde_json::json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet", "containers": []}),
        );
        assert_eq!(
            pod_dns(&p, &cluster(), Some(&host())).config.servers,
            ["10.96.0.10"]
        );
    }

    #[test]
    fn cluster_first_without_cluster_dns_falls_back_with_a_warning() {
        let settings = DnsSettings {
            cluster_dns: Vec::new(),
            ..cluster()
        };
        let d = pod_dns(
            &pod(serde_json::json!({"containers": []})),
            &settings,
            Some(&host()),
        );
        assert_eq!(d.config.servers, ["10.255.255.53", "10.255.255.54"]);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].reason, "MissingClusterDNS");
        assert!(
            d.warnings[0].message.starts_with(
                "pod: \"web_shop(u1)\". kubelet does not have ClusterDNS IP configured"
            ),
            "{}",
            d.warnings[0].message
        );
    }

    #[test]
    fn default_without_a_resolver_file_uses_loopback() {
        let settings = DnsSettings::from_config(
            &[],
            "",
            Some(""),
            vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()],
        )
        .unwrap();
        let p = pod(serde_json::json!({"dnsPolicy": "Default", "containers": []}));
        let d = pod_dns(&p, &settings, None);
        assert_eq!(d.config.servers, ["127.0.0.1", "::1"]);
        assert_eq!(d.config.searches, ["."]);
    }

    #[test]
    fn none_takes_only_the_pods_dns_config() {
        let mut p = pod(serde_json::json!({"dnsPolicy": "None", "containers": []}));
        let d = pod_dns(&p, &cluster(), Some(&host()));
        assert_eq!(d.config, cri::DnsConfig::default());
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["my.dns.search.suffix".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        });
        let d = pod_dns(&p, &cluster(), Some(&host()));
        assert_eq!(d.config.servers, ["1.1.1.1"]);
        assert_eq!(d.config.searches, ["my.dns.search.suffix"]);
        assert_eq!(d.config.options, ["ndots:2", "edns0"]);
    }

    #[test]
    fn the_pods_dns_config_is_appended_and_wins_options() {
        let mut p = pod(serde_json::json!({"containers": []}));
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["10.96.0.10".into(), "1.1.1.1".into()]),
            searches: Some(vec!["cluster.local".into(), "extra".into()]),
            options: Some(vec![PodDNSConfigOption {
                name: Some("ndots".into()),
                value: Some("1".into()),
            }]),
        });
        let d = pod_dns(&p, &cluster(), Some(&host()));
        assert_eq!(d.config.servers, ["10.96.0.10", "1.1.1.1"]);
        assert_eq!(d.config.searches.last().map(String::as_str), Some("extra"));
        assert_eq!(d.config.options, ["ndots:1"]);
    }

    #[test]
    fn limits_trim_nameservers_and_searches_with_warnings() {
        let mut p = pod(serde_json::json!({"dnsPolicy": "None", "containers": []}));
        let long = "a".repeat(254);
        let mut searches: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        searches.insert(0, long);
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some((1..=5).map(|i| format!("10.0.0.{i}")).collect()),
            searches: Some(searches),
            options: None,
        });
        let d = pod_dns(&p, &cluster(), None);
        assert_eq!(d.config.servers, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        // 32 kept, then the 254-character one dropped.
        assert_eq!(d.config.searches.len(), 31);
        assert_eq!(d.warnings.len(), 2);
        assert!(
            d.warnings[0]
                .message
                .ends_with("10.0.0.1 10.0.0.2 10.0.0.3")
        );
        assert!(
            d.warnings[1]
                .message
                .starts_with("Search Line limits were exceeded")
        );

        // The 2048-character line limit cuts from the end.
        let mut p = pod(serde_json::json!({"dnsPolicy": "None", "containers": []}));
        let searches: Vec<String> = (0..10).map(|i| format!("{i}{}", "b".repeat(249))).collect();
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: None,
            searches: Some(searches),
            options: None,
        });
        let d = pod_dns(&p, &cluster(), None);
        assert_eq!(d.config.searches.len(), 8);
        assert!(d.config.searches.join(" ").len() <= MAX_DNS_SEARCH_LIST_CHARS);
    }

    #[test]
    fn hostnames_follow_the_kubelet() {
        let p = pod(serde_json::json!({"containers": []}));
        assert_eq!(
            pod_hostname(&p, "cluster.local").unwrap(),
            ("web".into(), String::new())
        );
        let p = pod(serde_json::json!({"hostname": "h1", "subdomain": "sub", "containers": []}));
        let (h, d) = pod_hostname(&p, "cluster.local").unwrap();
        assert_eq!(
            (h.as_str(), d.as_str()),
            ("h1", "sub.shop.svc.cluster.local")
        );
        assert_eq!(kernel_hostname(&h, &d, false).unwrap(), "h1");
        assert_eq!(
            kernel_hostname(&h, &d, true).unwrap(),
            "h1.sub.shop.svc.cluster.local"
        );
        let err = kernel_hostname(&"x".repeat(40), &d, true).unwrap_err();
        assert!(
            err.contains("is too long (64 characters is the max, 67 characters requested)"),
            "{err}"
        );
        // A long pod name is cut to 63 characters without a trailing '-' or '.'.
        let mut p = pod(serde_json::json!({"containers": []}));
        p.metadata.name = Some(format!("{}-{}", "a".repeat(62), "b".repeat(10)));
        assert_eq!(pod_hostname(&p, "").unwrap().0, "a".repeat(62));
        let p = pod(serde_json::json!({"hostname": "Bad_Name", "containers": []}));
        assert!(pod_hostname(&p, "").is_err());
    }

    #[test]
    fn port_mappings_cover_every_declared_port_once() {
        let spec = PodSpec {
            containers: vec![
                Container {
                    name: "a".into(),
                    ports: Some(vec![
                        ContainerPort {
                            container_port: 80,
                            host_port: Some(8080),
                            ..Default::default()
                        },
                        ContainerPort {
                            container_port: 53,
                            protocol: Some("UDP".into()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                },
                Container {
                    name: "b".into(),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let m = port_mappings(&spec);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].container_port, m[0].host_port), (80, 8080));
        assert_eq!(m[0].protocol, cri::Protocol::Tcp as i32);
        assert_eq!(
            (m[1].container_port, m[1].protocol),
            (53, cri::Protocol::Udp as i32)
        );
    }

    #[test]
    fn sandbox_ips_keep_order_and_drop_garbage() {
        let status = cri::PodSandboxStatus {
            network: Some(cri::PodSandboxNetworkStatus {
                ip: "10.244.0.5".into(),
                additional_ips: vec![
                    cri::PodIp {
                        ip: "fd00::5".into(),
                    },
                    cri::PodIp {
                        ip: "not-an-ip\n".into(),
                    },
                ],
            }),
            ..Default::default()
        };
        assert_eq!(sandbox_ips(&status), ["10.244.0.5", "fd00::5"]);
        assert!(sandbox_ips(&cri::PodSandboxStatus::default()).is_empty());
    }

    #[test]
    fn hosts_files_match_the_kubelets_content() {
        let mut p = pod(serde_json::json!({"containers": []}));
        let plain = managed_hosts(&["10.244.0.5".into()], "web", "", &p);
        assert!(plain.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(plain.ends_with("fe00::2\tip6-allrouters\n10.244.0.5\tweb\n"));
        p.spec.as_mut().unwrap().host_aliases = Some(vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
        }]);
        let with = managed_hosts(
            &["10.244.0.5".into()],
            "h",
            "sub.shop.svc.cluster.local",
            &p,
        );
        assert!(with.contains("10.244.0.5\th.sub.shop.svc.cluster.local\th\n"));
        assert!(
            with.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
        );
        let node = node_hosts("127.0.0.1 localhost\n", &p);
        assert!(node.starts_with(
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries"
        ));
    }
}
