//! Turning a pod spec into CRI requests, with the kubelet's labels, annotations, log layout,
//! volume paths, resource mapping and security context.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SecurityContext};
use node_config::Quantity;
use node_kernel::{
    ContainerResources, ContainerSwap, ContainerSwapInput, PodSwapInput, QosClass,
    SYSTEM_CRITICAL_PRIORITY, SwapPolicy, SwapSetting,
};
use node_seccomp::{CriProfileType, SeccompProfile, SeccompProfileType, SeccompResolver};

use crate::cri;
use crate::error::RuntimeError;
use crate::safe_fs::{create_dir_under, join_under, remove_tree_under};

/// CRI label: pod name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// CRI label: pod namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// CRI label: pod UID (how the agent finds its sandboxes and containers again).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// CRI label: container name.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// CRI label naming the node whose agent manages the object; an agent only lists, adopts and
/// removes objects carrying its own node name, never other containers on the runtime.
pub const LABEL_MANAGED_BY: &str = "io.kubernetes.node-agent.node";
/// CRI annotation: restart count of a container.
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// CRI annotation: the pod's termination grace period in seconds.
pub const ANNOTATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// CRI annotation: `init` or `regular`.
pub const ANNOTATION_CONTAINER_KIND: &str = "io.kubernetes.node-agent.container-kind";
/// CRI annotation: a hash of the container's spec (the kubelet's annotation name); a running
/// container whose spec changed is restarted.
pub const ANNOTATION_CONTAINER_HASH: &str = "io.kubernetes.container.hash";

/// The hash of a container's spec recorded in [`ANNOTATION_CONTAINER_HASH`]: FNV-1a (64 bit)
/// over its JSON, in hex. Only compared with the agent's own earlier value.
pub fn container_hash(container: &Container) -> String {
    let bytes = serde_json::to_vec(container).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// CFS period the kubelet uses (100 ms, in microseconds).
const CFS_PERIOD_US: i64 = 100_000;
/// Minimum `cpu.shares`.
const MIN_SHARES: i64 = 2;

/// Where pod files live on the node.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// `--root-dir` (volumes under `<root>/pods/<uid>/volumes`, seccomp under `<root>/seccomp`).
    pub root_dir: PathBuf,
    /// `podLogsDir` (default `/var/log/pods`).
    pub pod_logs_dir: PathBuf,
}

impl NodePaths {
    /// `<podLogsDir>/<namespace>_<name>_<uid>`, the kubelet's pod log directory.
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.pod_logs_dir.join(format!("{namespace}_{name}_{uid}"))
    }

    /// `<root>/pods/<uid>`.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }

    /// `<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>`.
    pub fn empty_dir(&self, uid: &str, volume: &str) -> PathBuf {
        self.pod_dir(uid)
            .join("volumes")
            .join(crate::volumes::EMPTY_DIR_PLUGIN)
            .join(volume)
    }

    /// [`NodePaths::pod_dir`] with `uid` checked to be one safe path component.
    pub fn checked_pod_dir(&self, uid: &str) -> Result<PathBuf, RuntimeError> {
        join_under(&self.root_dir, &pod_dir_components(uid))
    }

    /// Creates `<root>/pods/<uid>` (0750, like the kubelet's pod directories) without following
    /// a symlink below the root dir, and returns it.
    pub fn create_pod_dir(&self, uid: &str) -> Result<PathBuf, RuntimeError> {
        create_root_dir(&self.root_dir)?;
        create_dir_under(&self.root_dir, &pod_dir_components(uid), POD_DIR_MODE)
    }

    /// Creates the pod's log directory `<podLogsDir>/<namespace>_<name>_<uid>` (0755, like the
    /// kubelet's) with its one component checked and no symlink followed, and returns it.
    pub fn create_pod_log_dir(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<PathBuf, RuntimeError> {
        create_root_dir(&self.pod_logs_dir)?;
        let component = format!("{namespace}_{name}_{uid}");
        create_dir_under(
            &self.pod_logs_dir,
            &[("pod log directory", &component)],
            POD_LOG_DIR_MODE,
        )
    }

    /// Removes the pod's log directories `<podLogsDir>/<namespace>_<name>_<uid>` (the kubelet's
    /// container GC removes the logs of pods that are gone) without following a symlink. The
    /// UID may come from the runtime, so it is checked to be one component without `_` first.
    pub fn remove_pod_log_dirs(&self, uid: &str) -> Result<(), RuntimeError> {
        crate::validation::check_path_component("pod UID", uid)
            .and_then(|()| {
                if uid.contains('_') {
                    Err(format!("pod UID {uid:?} must not contain '_'"))
                } else {
                    Ok(())
                }
            })
            .map_err(|reason| RuntimeError::UnsafePath {
                path: self.pod_logs_dir.clone(),
                reason,
            })?;
        let suffix = format!("_{uid}");
        let entries = match std::fs::read_dir(&self.pod_logs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(RuntimeError::Io {
                    action: "listing pod log directories",
                    path: self.pod_logs_dir.clone(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            if let Ok(name) = entry.file_name().into_string()
                && name.ends_with(&suffix)
                && name.len() > suffix.len()
            {
                remove_tree_under(&self.pod_logs_dir, &[("pod log directory", &name)])?;
            }
        }
        Ok(())
    }

    /// The UIDs of the pod directories under `<root>/pods` (none when it does not exist).
    pub fn pod_dir_uids(&self) -> Result<Vec<String>, RuntimeError> {
        let dir = self.root_dir.join("pods");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RuntimeError::Io {
                    action: "listing pod directories",
                    path: dir,
                    source,
                });
            }
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    /// Unmounts the pod's subPath mounts and removes `<root>/pods/<uid>` without following a
    /// symlink or crossing into another mount, then its log directories. A missing directory is
    /// success.
    pub fn remove_pod_dir(&self, uid: &str) -> Result<(), RuntimeError> {
        let dir = self.checked_pod_dir(uid)?;
        crate::subpath::clean_subpaths(&dir)?;
        crate::api_volumes::unmount_memory_volumes(&dir)?;
        remove_tree_under(&self.root_dir, &pod_dir_components(uid))?;
        self.remove_pod_log_dirs(uid)
    }
}

/// Mode of `<root>/pods/<uid>` (the kubelet's).
const POD_DIR_MODE: u32 = 0o750;
/// Mode of a pod's log directory (the kubelet's).
const POD_LOG_DIR_MODE: u32 = 0o755;

fn pod_dir_components(uid: &str) -> [(&str, &str); 2] {
    [("pods directory", "pods"), ("metadata.uid", uid)]
}

/// The configured root or log directory itself (trusted configuration) exists.
fn create_root_dir(dir: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
        action: "creating directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// A pod's volumes as set up on the node: the host path of each by name.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    /// `<root>/pods/<uid>`.
    pub pod_dir: PathBuf,
    /// Volume name -> host directory or file.
    pub paths: HashMap<String, PathBuf>,
    /// Volumes always mounted read-only (configMap, secret, downwardAPI, projected: the
    /// kubelet forces them read-only whatever the volumeMount says).
    pub read_only: std::collections::HashSet<String>,
}

/// Sets up the pod's directory and volumes before its sandbox, as the kubelet's volume
/// manager does: emptyDir directories (0777, no symlink followed), hostPath `type` checks and
/// creation. Idempotent; a failure keeps the pod in `ContainerCreating` with the kubelet's
/// `MountVolume.SetUp failed for volume "<name>" : <error>` (details logged).
pub fn prepare_volumes(
    pod: &Pod,
    id: &PodIdentity,
    paths: &NodePaths,
    objects: &crate::api_volumes::PodObjects,
) -> Result<PodVolumes, RuntimeError> {
    let pod_dir = paths.create_pod_dir(&id.uid)?;
    let mut out = HashMap::new();
    let mut read_only = std::collections::HashSet::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let failed = |error: String| RuntimeError::VolumeSetup {
            pod: id.full_name(),
            message: format!(
                "MountVolume.SetUp failed for volume {:?} : {error}",
                volume.name
            ),
        };
        let path = if let Some(hp) = &volume.host_path {
            crate::volumes::check_host_path(&hp.path, hp.type_.as_deref()).map_err(failed)?;
            PathBuf::from(&hp.path)
        } else if crate::api_volumes::plugin_of(volume).is_some() {
            // configMap, secret, downwardAPI, projected; emptyDir on tmpfs.
            crate::api_volumes::setup(&pod_dir, volume, pod, objects).map_err(failed)?
        } else if let Some(medium) = volume
            .empty_dir
            .as_ref()
            .and_then(|e| e.medium.as_deref())
            .filter(|m| !m.is_empty())
        {
            // Never silently on disk what the pod asked to keep in memory.
            return Err(failed(format!(
                "emptyDir medium {medium:?} is not supported by this agent (the node's disk, medium \"\", or \"Memory\")"
            )));
        } else if volume.empty_dir.is_some() || is_sourceless(volume) {
            // A volume without a source is an emptyDir (the API server's default).
            crate::volumes::setup_empty_dir(&pod_dir, &volume.name)
                .map_err(|e| failed(e.with_cause()))?
        } else {
            return Err(spec_err(
                id,
                format!(
                    "volume {:?}: only hostPath, emptyDir, configMap, secret, downwardAPI and projected volumes are supported",
                    volume.name
                ),
            ));
        };
        if crate::api_volumes::plugin_of(volume)
            .is_some_and(|(plugin, _)| plugin != crate::volumes::EMPTY_DIR_PLUGIN)
        {
            read_only.insert(volume.name.clone());
        }
        out.insert(volume.name.clone(), path);
    }
    Ok(PodVolumes {
        pod_dir,
        paths: out,
        read_only,
    })
}

/// Where `pod`'s volumes are (or would be) under `pod_dir`, without setting anything up: for a
/// pod that already runs when a volume can no longer be set up (its configMap deleted), so its
/// containers go on, and restart, with the files they have (the kubelet's behaviour).
pub fn volume_paths(pod: &Pod, pod_dir: &Path) -> PodVolumes {
    let mut paths = HashMap::new();
    let mut read_only = std::collections::HashSet::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = if let Some(hp) = &volume.host_path {
            Some(PathBuf::from(&hp.path))
        } else if let Some((plugin, _)) = crate::api_volumes::plugin_of(volume) {
            if plugin != crate::volumes::EMPTY_DIR_PLUGIN {
                read_only.insert(volume.name.clone());
            }
            join_under(
                pod_dir,
                &[
                    ("pod volumes directory", "volumes"),
                    ("volume plugin directory", plugin),
                    ("volume name", volume.name.as_str()),
                ],
            )
            .ok()
        } else {
            crate::volumes::empty_dir_path(pod_dir, &volume.name).ok()
        };
        if let Some(path) = path {
            paths.insert(volume.name.clone(), path);
        }
    }
    PodVolumes {
        pod_dir: pod_dir.to_path_buf(),
        paths,
        read_only,
    }
}

/// The groups a pod's processes get besides their own (the kubelet's
/// `determineEffectiveSecurityContext` and sandbox config): `fsGroup` first (so volume files
/// owned by it are readable), then `supplementalGroups`.
fn supplemental_groups(psc: Option<&k8s_openapi::api::core::v1::PodSecurityContext>) -> Vec<i64> {
    let mut groups: Vec<i64> = psc.and_then(|s| s.fs_group).into_iter().collect();
    groups.extend(
        psc.and_then(|s| s.supplemental_groups.clone())
            .unwrap_or_default(),
    );
    groups
}

fn is_sourceless(v: &k8s_openapi::api::core::v1::Volume) -> bool {
    let json = serde_json::to_value(v).unwrap_or_default();
    json.as_object()
        .is_some_and(|o| o.keys().all(|k| k == "name"))
}

/// The identity of a pod as the runtime sees it.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// The node (agent) that manages the pod.
    pub node_name: String,
}

impl PodIdentity {
    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Labels that identify the pod's sandbox.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_POD_NAME.to_owned(), self.name.clone()),
            (LABEL_POD_NAMESPACE.to_owned(), self.namespace.clone()),
            (LABEL_POD_UID.to_owned(), self.uid.clone()),
            (LABEL_MANAGED_BY.to_owned(), self.node_name.clone()),
        ])
    }
}

fn spec_err(pod: &PodIdentity, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::PodSpec {
        pod: pod.full_name(),
        reason: reason.into(),
    }
}

fn host_namespaces(spec: &PodSpec) -> cri::NamespaceOption {
    let mode = |host: Option<bool>, otherwise: cri::NamespaceMode| {
        if host == Some(true) {
            cri::NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    cri::NamespaceOption {
        network: mode(spec.host_network, cri::NamespaceMode::Pod),
        pid: mode(spec.host_pid, cri::NamespaceMode::Container),
        ipc: mode(spec.host_ipc, cri::NamespaceMode::Pod),
        target_id: String::new(),
    }
}

fn to_cri_profile(p: &node_seccomp::SecurityProfile) -> cri::SecurityProfile {
    let profile_type = match p.profile_type {
        CriProfileType::RuntimeDefault => cri::security_profile::ProfileType::RuntimeDefault,
        CriProfileType::Unconfined => cri::security_profile::ProfileType::Unconfined,
        CriProfileType::Localhost => cri::security_profile::ProfileType::Localhost,
    };
    cri::SecurityProfile {
        profile_type: profile_type as i32,
        localhost_ref: p.localhost_ref.clone(),
    }
}

fn api_seccomp(p: Option<&k8s_openapi::api::core::v1::SeccompProfile>) -> Option<SeccompProfile> {
    p.map(|p| SeccompProfile {
        profile_type: SeccompProfileType::from_api(&p.type_),
        localhost_profile: p.localhost_profile.clone(),
    })
}

/// The sandbox config for `pod`.
///
/// The hostname is the kubelet's (`spec.hostname` or the pod's name, the FQDN with
/// `setHostnameAsFQDN`, none on the host network) and every declared container port is a port
/// mapping. The DNS config is left to the caller ([`crate::network::pod_dns`]): it reads the
/// node's resolver file, so it is built only when the sandbox is created.
pub fn sandbox_config(
    pod: &Pod,
    id: &PodIdentity,
    paths: &NodePaths,
    resolver: &SeccompResolver,
    cluster_domain: &str,
) -> Result<cri::PodSandboxConfig, RuntimeError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| spec_err(id, "spec is missing"))?;
    let psc = spec.security_context.as_ref();
    let mut annotations: HashMap<String, String> = pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    annotations.insert(
        ANNOTATION_GRACE_PERIOD.to_owned(),
        grace_period(spec).to_string(),
    );
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(id.labels());
    let host_network = spec.host_network == Some(true);
    // Host-network sandboxes must not set a hostname (runc cannot without a UTS namespace).
    let hostname = if host_network {
        String::new()
    } else {
        let (hostname, domain) =
            crate::network::pod_hostname(pod, cluster_domain).map_err(|e| spec_err(id, e))?;
        crate::network::kernel_hostname(&hostname, &domain, spec.set_hostname_as_fqdn == Some(true))
            .map_err(|e| spec_err(id, e))?
    };
    Ok(cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: id.name.clone(),
            uid: id.uid.clone(),
            namespace: id.namespace.clone(),
            attempt: 0,
        }),
        hostname,
        log_directory: paths
            .pod_log_dir(&id.namespace, &id.name, &id.uid)
            .display()
            .to_string(),
        dns_config: None,
        port_mappings: crate::network::port_mappings(spec),
        labels,
        annotations,
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(host_namespaces(spec)),
                run_as_user: psc
                    .and_then(|s| s.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: psc
                    .and_then(|s| s.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                readonly_rootfs: false,
                supplemental_groups: supplemental_groups(psc),
                privileged: spec
                    .containers
                    .iter()
                    .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true)),
                seccomp: Some(to_cri_profile(&resolver.sandbox_profile())),
            }),
            sysctls: psc
                .and_then(|s| s.sysctls.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.name, s.value))
                .collect(),
            overhead: None,
            resources: None,
        }),
    })
}

/// `terminationGracePeriodSeconds` (default 30).
pub fn grace_period(spec: &PodSpec) -> i64 {
    spec.termination_grace_period_seconds.unwrap_or(30).max(0)
}

/// Whether a container is an init container or a regular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ContainerKind {
    /// `spec.initContainers`
    Init,
    /// `spec.containers`
    Regular,
}

impl ContainerKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Regular => "regular",
        }
    }
}

/// `args` with `$(VAR)` expanded from `envs` (the last definition of a name wins; unknown
/// references stay as written; `$$` is a literal `$`).
fn expand_all(args: Option<&[String]>, envs: &[cri::KeyValue]) -> Vec<String> {
    let lookup = |name: &str| {
        envs.iter()
            .rev()
            .find(|kv| kv.key == name)
            .map(|kv| kv.value.as_str())
    };
    args.unwrap_or_default()
        .iter()
        .map(|a| crate::env::expand(a, lookup))
        .collect()
}

/// What a container's environment is built from besides the pod ([`crate::env`]).
#[derive(Debug, Clone, Copy)]
pub struct ContainerEnvInputs<'a> {
    /// The API objects the pod references, the services and the node's allocatable.
    pub objects: &'a crate::api_volumes::PodObjects,
    /// The node's IPs (`status.hostIP(s)`).
    pub host_ips: &'a [String],
    /// The pod's IPs (`status.podIP(s)`).
    pub pod_ips: &'a [String],
}

/// The config for one container at restart `attempt`, mounting the pod's `volumes` (subPaths
/// bind-mounted safely below the pod directory). A Localhost seccomp profile is checked on
/// the node before the runtime sees it. With a `swap` policy, the container's swap settings
/// are added to its resources the kubelet's way ([`container_swap`]); without one nothing
/// swap-related is written.
#[allow(clippy::too_many_arguments)]
pub fn container_config(
    pod: &Pod,
    id: &PodIdentity,
    container: &Container,
    kind: ContainerKind,
    attempt: u32,
    volumes: &PodVolumes,
    resolver: &SeccompResolver,
    node_name: &str,
    swap: Option<&SwapPolicy>,
    env: &ContainerEnvInputs<'_>,
) -> Result<cri::ContainerConfig, RuntimeError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| spec_err(id, "spec is missing"))?;
    let image = container.image.clone().unwrap_or_default();
    let inputs = crate::env::EnvInputs {
        config_maps: &env.objects.config_maps,
        secrets: &env.objects.secrets,
        services: &env.objects.services,
        node_name,
        host_ips: env.host_ips,
        pod_ips: env.pod_ips,
        node_allocatable: &env.objects.node_allocatable,
    };
    let envs: Vec<cri::KeyValue> = crate::env::container_env(pod, container, &inputs)?
        .into_iter()
        .map(|(key, value)| cri::KeyValue { key, value })
        .collect();
    let mounts = container_mounts(id, container, volumes, &envs)?;
    let seccomp = resolver
        .container_profile(
            api_seccomp(
                spec.security_context
                    .as_ref()
                    .and_then(|s| s.seccomp_profile.as_ref()),
            )
            .as_ref(),
            api_seccomp(
                container
                    .security_context
                    .as_ref()
                    .and_then(|s| s.seccomp_profile.as_ref()),
            )
            .as_ref(),
        )
        .map_err(|source| RuntimeError::Seccomp {
            pod: id.full_name(),
            container: container.name.clone(),
            source: Box::new(source),
        })?;
    // A Localhost profile is opened once on the node (no final symlink, a regular file of
    // bounded size, under `<root-dir>/seccomp`) and the runtime is handed the resolved path
    // that was checked, not the one as written.
    let seccomp = if seccomp.profile_type == CriProfileType::Localhost {
        let opened = resolver
            .open_localhost(Path::new(&seccomp.localhost_ref))
            .map_err(|source| RuntimeError::Seccomp {
                pod: id.full_name(),
                container: container.name.clone(),
                source: Box::new(source),
            })?;
        for warning in &opened.report.warnings {
            tracing::warn!(pod = %id.full_name(), container = %container.name, profile = %opened.path.display(), %warning, "seccomp profile");
        }
        opened.security_profile()
    } else {
        seccomp
    };
    let mut linux_resources = resources(id, container)?;
    if let Some(policy) = swap {
        let decision = container_swap(pod, id, container, policy, &linux_resources)?;
        if let Some(error) = &decision.calc_error {
            // The kubelet logs this at error level for each container it configures.
            tracing::error!(pod = %id.full_name(), container = %container.name, %error, "cannot calculate swap allocation amount; disallowing swap");
        }
        tracing::debug!(pod = %id.full_name(), container = %container.name, setting = ?decision.setting, reason = %decision.reason, "container swap");
        apply_swap(&mut linux_resources, &decision.setting);
    }
    let mut labels = id.labels();
    labels.insert(LABEL_CONTAINER_NAME.to_owned(), container.name.clone());
    // The termination message file, mounted at terminationMessagePath (makeMounts).
    let message_path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::termination::DEFAULT_PATH.to_owned());
    let message_policy = container
        .termination_message_policy
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "File".to_owned());
    let message_file = crate::termination::create_file(&volumes.pod_dir, &container.name, attempt)?;
    let mut mounts = mounts;
    mounts.push(cri::Mount {
        container_path: message_path.clone(),
        host_path: message_file.display().to_string(),
        readonly: false,
        selinux_relabel: true,
        ..Default::default()
    });
    let annotations = HashMap::from([
        (crate::termination::ANNOTATION_PATH.to_owned(), message_path),
        (
            crate::termination::ANNOTATION_POLICY.to_owned(),
            message_policy,
        ),
        (ANNOTATION_RESTART_COUNT.to_owned(), attempt.to_string()),
        (
            ANNOTATION_GRACE_PERIOD.to_owned(),
            grace_period(spec).to_string(),
        ),
        (
            ANNOTATION_CONTAINER_KIND.to_owned(),
            kind.as_str().to_owned(),
        ),
        (
            ANNOTATION_CONTAINER_HASH.to_owned(),
            container_hash(container),
        ),
    ]);
    Ok(cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(crate::client::image_spec(&image)),
        // `$(VAR)` in the command and arguments, from the container's environment (the
        // kubelet's `ExpandContainerCommandAndArgs`).
        command: expand_all(container.command.as_deref(), &envs),
        args: expand_all(container.args.as_deref(), &envs),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts,
        labels,
        annotations,
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        devices: Vec::new(),
        cdi_devices: Vec::new(),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources),
            security_context: Some(security_context(
                spec,
                container.security_context.as_ref(),
                to_cri_profile(&seccomp),
            )),
        }),
    })
}

fn container_mounts(
    id: &PodIdentity,
    c: &Container,
    volumes: &PodVolumes,
    envs: &[cri::KeyValue],
) -> Result<Vec<cri::Mount>, RuntimeError> {
    let config_error = |message: String| RuntimeError::ContainerConfig {
        pod: id.full_name(),
        container: c.name.clone(),
        message,
        detail: String::new(),
    };
    let config_error_with =
        |message: String, detail: &RuntimeError| RuntimeError::ContainerConfig {
            pod: id.full_name(),
            container: c.name.clone(),
            message,
            detail: detail.with_cause(),
        };
    let mut mounts = Vec::new();
    for (index, m) in c.volume_mounts.iter().flatten().enumerate() {
        // `cannot find volume %q to mount into container %q` (makeMounts).
        let volume_path = volumes.paths.get(&m.name).ok_or_else(|| {
            config_error(format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, c.name
            ))
        })?;
        let sub_path = match m.sub_path_expr.as_deref() {
            Some(expr) if !expr.is_empty() => {
                expand_sub_path_expr(expr, envs).map_err(config_error)?
            }
            _ => m.sub_path.clone().unwrap_or_default(),
        };
        let host_path = if sub_path.is_empty() {
            volume_path.clone()
        } else {
            crate::subpath::validate_sub_path(&sub_path).map_err(config_error)?;
            // The kubelet's user-facing texts; details go to the log only ("so as not to leak
            // host filesystem info").
            // As the kubelet: a subPath that does not exist (by stat, which follows symlinks and
            // opens nothing) is created safely first; whatever exists is only ever opened
            // without leaving the volume by prepare_subpath.
            if std::fs::metadata(volume_path.join(&sub_path)).is_err() {
                crate::subpath::ensure_subpath_dir(volume_path, &sub_path).map_err(|e| {
                    config_error_with(
                        format!(
                            "failed to create subPath directory for volumeMount {:?} of container {:?}",
                            m.name, c.name
                        ),
                        &e,
                    )
                })?;
            }
            crate::subpath::prepare_subpath(
                volume_path,
                &sub_path,
                &volumes.pod_dir,
                &m.name,
                &c.name,
                index,
            )
            .map_err(|e| {
                config_error_with(
                    format!(
                        "failed to prepare subPath for volumeMount {:?} of container {:?}",
                        m.name, c.name
                    ),
                    &e,
                )
            })?
        };
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => cri::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => cri::MountPropagation::PropagationBidirectional,
            _ => cri::MountPropagation::PropagationPrivate,
        };
        mounts.push(cri::Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: m.read_only == Some(true) || volumes.read_only.contains(&m.name),
            selinux_relabel: false,
            propagation: propagation as i32,
        });
    }
    Ok(mounts)
}

fn quantity(
    id: &PodIdentity,
    c: &Container,
    what: &str,
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Result<f64, RuntimeError> {
    Quantity::parse(&q.0)
        .map(|q| q.value())
        .map_err(|e| spec_err(id, format!("container {} {what}: {e}", c.name)))
}

/// Requests and limits as Linux resources, the kubelet's way: CPU limit -> CFS quota over a
/// 100 ms period, CPU request -> shares (1024 per CPU, at least 2), memory limit -> bytes,
/// rounded up as the kubelet's `Quantity.Value()` (`500m` of memory is 1 byte, not 0 = no limit).
#[expect(
    clippy::cast_possible_truncation,
    reason = "a float-to-int `as` saturates, and validation keeps these quantities finite, \
              non-negative and below 2^63: no wrap-around, only the intended rounding"
)]
fn resources(
    id: &PodIdentity,
    c: &Container,
) -> Result<cri::LinuxContainerResources, RuntimeError> {
    let mut r = cri::LinuxContainerResources {
        cpu_shares: MIN_SHARES,
        ..Default::default()
    };
    let Some(res) = &c.resources else {
        return Ok(r);
    };
    let cpu_request = res
        .requests
        .as_ref()
        .and_then(|m| m.get("cpu"))
        .or_else(|| res.limits.as_ref().and_then(|m| m.get("cpu")));
    if let Some(q) = cpu_request {
        let cpus = quantity(id, c, "cpu request", q)?;
        r.cpu_shares = ((cpus * 1024.0).round() as i64).max(MIN_SHARES);
    }
    if let Some(q) = res.limits.as_ref().and_then(|m| m.get("cpu")) {
        let cpus = quantity(id, c, "cpu limit", q)?;
        r.cpu_period = CFS_PERIOD_US;
        // The kernel's minimum quota is 1 ms.
        r.cpu_quota = ((cpus * CFS_PERIOD_US as f64).round() as i64).max(1000);
    }
    if let Some(q) = res.limits.as_ref().and_then(|m| m.get("memory")) {
        r.memory_limit_in_bytes = quantity(id, c, "memory limit", q)?.ceil() as i64;
    }
    Ok(r)
}

/// The CRI `Unified` key for the cgroup v2 swap limit (the kubelet's
/// `cm.Cgroup2MaxSwapFilename`).
pub const UNIFIED_MEMORY_SWAP_MAX: &str = "memory.swap.max";

/// Writes a swap decision into the container's resources, as the kubelet's
/// `swapConfigurationHelper`: v2 -> `Unified["memory.swap.max"]`, v1 ->
/// `MemorySwapLimitInBytes`, no swap controller -> nothing.
pub fn apply_swap(r: &mut cri::LinuxContainerResources, setting: &SwapSetting) {
    match setting {
        SwapSetting::MemorySwapMax(value) => {
            r.unified
                .insert(UNIFIED_MEMORY_SWAP_MAX.to_owned(), value.clone());
        }
        SwapSetting::MemorySwapLimitInBytes(bytes) => {
            r.memory_swap_limit_in_bytes = i64::try_from(*bytes).unwrap_or(i64::MAX);
        }
        SwapSetting::Untouched => {}
    }
}

/// The swap decision for one container of `pod` (`configureContainerSwapResources`): the
/// pod's criticality and QoS class computed the kubelet's way, the container's memory request
/// (defaulted from its limit, as the API server does) and the memory limit already in its
/// Linux resources.
pub fn container_swap(
    pod: &Pod,
    id: &PodIdentity,
    container: &Container,
    policy: &SwapPolicy,
    linux: &cri::LinuxContainerResources,
) -> Result<ContainerSwap, RuntimeError> {
    let own = qos_resources(id, container)?;
    Ok(policy.decide(&ContainerSwapInput {
        critical: is_critical_pod(pod),
        qos: pod_qos(pod, id)?,
        memory_request_bytes: own.memory_request.or(own.memory_limit).unwrap_or(0),
        memory_limit_bytes: u64::try_from(linux.memory_limit_in_bytes).unwrap_or(0),
    }))
}

/// `IsCriticalPod` (`pkg/kubelet/types/pod_update.go`): a static pod (its
/// `kubernetes.io/config.source` annotation is there and is not `api`), a mirror pod (a
/// `kubernetes.io/config.mirror` annotation), or `spec.priority` >= 2,000,000,000. Every pod
/// this agent runs comes from its static pod path (source `file`), so every one is critical.
pub fn is_critical_pod(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    let source = annotations.and_then(|a| a.get(crate::manifest::ANNOTATION_CONFIG_SOURCE));
    let is_static = source.is_some_and(|s| s != "api");
    let is_mirror = annotations.is_some_and(|a| a.contains_key(ANNOTATION_CONFIG_MIRROR));
    let priority = pod.spec.as_ref().and_then(|s| s.priority);
    is_static || is_mirror || priority.is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}

/// The mirror pod annotation (`kubernetes.io/config.mirror`).
pub const ANNOTATION_CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// The pod's QoS class, `ComputePodQOS` over its init and app containers' CPU and memory
/// (`pkg/apis/core/v1/helper/qos/qos.go`). Pod-level `spec.resources` are not considered (this
/// agent does not apply them).
pub fn pod_qos(pod: &Pod, id: &PodIdentity) -> Result<QosClass, RuntimeError> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(QosClass::BestEffort);
    };
    let all = |list: &[Container]| -> Result<Vec<ContainerResources>, RuntimeError> {
        list.iter().map(|c| qos_resources(id, c)).collect()
    };
    Ok(PodSwapInput {
        init_containers: all(spec.init_containers.as_deref().unwrap_or_default())?,
        containers: all(&spec.containers)?,
        ..Default::default()
    }
    .qos())
}

/// A container's CPU (millicores) and memory (bytes) requests and limits, rounded up like
/// Go's `Quantity.MilliValue()`/`Value()`; a negative amount counts as 0.
fn qos_resources(id: &PodIdentity, c: &Container) -> Result<ContainerResources, RuntimeError> {
    let Some(res) = &c.resources else {
        return Ok(ContainerResources::default());
    };
    let get = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str,
               what: &str,
               scale: f64|
     -> Result<Option<u64>, RuntimeError> {
        match map.as_ref().and_then(|m| m.get(name)) {
            None => Ok(None),
            Some(q) => {
                let v = quantity(id, c, what, q)? * scale;
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "saturating float-to-int of a value clamped at 0: the quantity is at \
                              most 2^63"
                )]
                let rounded = v.ceil().max(0.0) as u64;
                Ok(Some(rounded))
            }
        }
    };
    Ok(ContainerResources {
        cpu_request: get(&res.requests, "cpu", "cpu request", 1000.0)?,
        cpu_limit: get(&res.limits, "cpu", "cpu limit", 1000.0)?,
        memory_request: get(&res.requests, "memory", "memory request", 1.0)?,
        memory_limit: get(&res.limits, "memory", "memory limit", 1.0)?,
    })
}

fn security_context(
    spec: &PodSpec,
    sc: Option<&SecurityContext>,
    seccomp: cri::SecurityProfile,
) -> cri::LinuxContainerSecurityContext {
    let psc = spec.security_context.as_ref();
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    cri::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| cri::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged: sc.and_then(|s| s.privileged) == Some(true),
        namespace_options: Some(host_namespaces(spec)),
        run_as_user: sc
            .and_then(|s| s.run_as_user)
            .or_else(|| psc.and_then(|s| s.run_as_user))
            .map(|value| cri::Int64Value { value }),
        run_as_group: sc
            .and_then(|s| s.run_as_group)
            .or_else(|| psc.and_then(|s| s.run_as_group))
            .map(|value| cri::Int64Value { value }),
        run_as_username: String::new(),
        readonly_rootfs: sc.and_then(|s| s.read_only_root_filesystem) == Some(true),
        supplemental_groups: supplemental_groups(psc),
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        masked_paths: Vec::new(),
        readonly_paths: Vec::new(),
        seccomp: Some(seccomp),
    }
}

/// Expands a `subPathExpr` against the container's environment, the kubelet's way
/// (`pkg/kubelet/container/helpers.go` `ExpandContainerVolumeMounts` with the `expansion`
/// syntax): `$(NAME)` is replaced by the variable's value, `$$` is a literal `$`, anything else
/// (an unterminated `$(`, a `$` before another character) stays as written. Every referenced
/// variable that is missing or empty is an error `missing value for A, B` (names sorted).
pub fn expand_sub_path_expr(expr: &str, env: &[cri::KeyValue]) -> Result<String, String> {
    let missing = std::cell::RefCell::new(Vec::<String>::new());
    // The expansion syntax is `env::expand`'s; a missing or empty variable expands to nothing
    // here and is reported.
    let out = crate::env::expand(expr, |name| {
        match env.iter().rev().find(|kv| kv.key == name) {
            Some(kv) if !kv.value.is_empty() => Some(kv.value.as_str()),
            _ => {
                let mut m = missing.borrow_mut();
                if !m.iter().any(|x| x == name) {
                    m.push(name.to_owned());
                }
                Some("")
            }
        }
    });
    let mut missing = missing.into_inner();
    if missing.is_empty() {
        Ok(out)
    } else {
        missing.sort();
        Err(format!("missing value for {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_args_expand_the_environment() {
        let envs = vec![
            cri::KeyValue {
                key: "GREETING".into(),
                value: "hi".into(),
            },
            cri::KeyValue {
                key: "GREETING".into(),
                value: "hello".into(),
            },
        ];
        let args = vec![
            "$(GREETING) world".to_owned(),
            "$$(GREETING)".to_owned(),
            "$(MISSING)".to_owned(),
        ];
        assert_eq!(
            expand_all(Some(&args), &envs),
            ["hello world", "$(GREETING)", "$(MISSING)"]
        );
        assert!(expand_all(None, &envs).is_empty());
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<cri::KeyValue> {
        pairs
            .iter()
            .map(|(k, v)| cri::KeyValue {
                key: (*k).to_owned(),
                value: (*v).to_owned(),
            })
            .collect()
    }

    fn pod_with_volumes(volumes: &str) -> (Pod, PodIdentity) {
        let pod: Pod = serde_saphyr::from_str(&format!(
            "metadata: {{name: p, namespace: default, uid: u1}}\nspec:\n  volumes: {volumes}\n  containers: [{{name: c, image: i}}]\n"
        ))
        .unwrap();
        let id = PodIdentity {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u1".into(),
            node_name: "n".into(),
        };
        (pod, id)
    }

    #[test]
    fn volumes_are_prepared_with_the_kubelets_errors() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = NodePaths {
            root_dir: dir.path().join("root"),
            pod_logs_dir: dir.path().join("logs"),
        };
        let (pod, id) = pod_with_volumes("[{name: a, emptyDir: {}}, {name: b}]");
        let v = prepare_volumes(&pod, &id, &paths, &Default::default()).unwrap();
        assert_eq!(v.pod_dir, dir.path().join("root/pods/u1"));
        for name in ["a", "b"] {
            let p = &v.paths[name];
            assert_eq!(p, &paths.empty_dir("u1", name));
            assert_eq!(
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o777
            );
        }
        let missing = dir.path().join("missing");
        let (pod, id) = pod_with_volumes(&format!(
            "[{{name: h, hostPath: {{path: {}, type: Directory}}}}]",
            missing.display()
        ));
        let e = prepare_volumes(&pod, &id, &paths, &Default::default()).unwrap_err();
        assert_eq!(e.waiting_reason(), "ContainerCreating");
        assert_eq!(
            e.waiting_message(),
            format!(
                "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {} is not a directory",
                missing.display()
            )
        );
        let (pod, id) = pod_with_volumes("[{name: m, emptyDir: {medium: HugePages}}]");
        let e = prepare_volumes(&pod, &id, &paths, &Default::default()).unwrap_err();
        assert!(
            e.waiting_message()
                .contains("medium \"HugePages\" is not supported"),
            "{e}"
        );
        // A planted symlink where the pod's volume directory goes is refused.
        let (pod, id) = pod_with_volumes("[{name: a, emptyDir: {}}]");
        let id2 = PodIdentity {
            uid: "u2".into(),
            ..id
        };
        let pod2_dir = paths.create_pod_dir("u2").unwrap();
        std::fs::create_dir_all(pod2_dir.join("volumes/kubernetes.io~empty-dir")).unwrap();
        std::os::unix::fs::symlink("/", pod2_dir.join("volumes/kubernetes.io~empty-dir/a"))
            .unwrap();
        let mut pod2 = pod;
        pod2.metadata.uid = Some("u2".into());
        assert!(prepare_volumes(&pod2, &id2, &paths, &Default::default()).is_err());
        // Removing a pod dir never follows the planted symlink.
        paths.remove_pod_dir("u2").unwrap();
        assert!(!pod2_dir.exists() && Path::new("/etc").exists());
        assert!(paths.remove_pod_dir("../x").is_err());
    }

    #[test]
    fn sub_path_expr_expands_like_the_kubelet() {
        let e = env(&[("POD", "web-1"), ("NS", "default"), ("EMPTY", "")]);
        assert_eq!(
            expand_sub_path_expr("logs/$(POD)", &e).unwrap(),
            "logs/web-1"
        );
        assert_eq!(
            expand_sub_path_expr("$(NS)/$(POD)/x", &e).unwrap(),
            "default/web-1/x"
        );
        assert_eq!(expand_sub_path_expr("a$$(POD)", &e).unwrap(), "a$(POD)");
        assert_eq!(expand_sub_path_expr("a$b$(", &e).unwrap(), "a$b$(");
        assert_eq!(
            expand_sub_path_expr("$(ZED)/$(EMPTY)/$(A)/$(ZED)", &e).unwrap_err(),
            "missing value for A, EMPTY, ZED"
        );
        // The last definition of a name wins, as in the container's environment.
        let e = env(&[("X", "one"), ("X", "two")]);
        assert_eq!(expand_sub_path_expr("$(X)", &e).unwrap(), "two");
    }

    #[test]
    fn a_fractional_memory_limit_rounds_up_instead_of_becoming_no_limit() {
        // A plain `as i64` truncated 0.5 bytes to 0, which the CRI reads as "no limit"; the
        // kubelet's `Quantity.Value()` rounds up.
        for (limit, bytes) in [("500m", 1), ("1.5", 2), ("1m", 1), ("2Mi", 2 << 20)] {
            let (pod, id) = swap_pod("", "", &format!("{{limits: {{memory: {limit}}}}}"));
            let c = &pod.spec.as_ref().unwrap().containers[0];
            let r = resources(&id, c).unwrap();
            assert_eq!(r.memory_limit_in_bytes, bytes, "{limit}");
        }
    }

    fn swap_pod(annotations: &str, priority: &str, resources: &str) -> (Pod, PodIdentity) {
        let pod: Pod = serde_saphyr::from_str(&format!(
            "metadata: {{name: p, namespace: default, uid: u1, annotations: {{{annotations}}}}}\nspec:\n  {priority}\n  containers: [{{name: c, image: i, resources: {resources}}}]\n"
        ))
        .unwrap();
        let id = PodIdentity {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u1".into(),
            node_name: "n".into(),
        };
        (pod, id)
    }

    /// The Linux resources of the pod's first container with the policy's swap settings.
    fn swapped(
        pod: &Pod,
        id: &PodIdentity,
        policy: &SwapPolicy,
    ) -> (cri::LinuxContainerResources, ContainerSwap) {
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let mut r = resources(id, c).unwrap();
        let d = container_swap(pod, id, c, policy, &r).unwrap();
        apply_swap(&mut r, &d.setting);
        (r, d)
    }

    const GI: u64 = 1 << 30;
    const BURSTABLE: &str = "{requests: {memory: 1Gi}, limits: {memory: 2Gi}}";

    #[test]
    fn swap_settings_reach_the_container_resources() {
        use node_kernel::{CgroupVersion, SwapBehavior};
        let file = "kubernetes.io/config.source: file";
        let (pod, id) = swap_pod(file, "", BURSTABLE);

        // cgroup v1 with memsw, NoSwap: memory+swap = memory.
        let v1 =
            SwapPolicy::new(SwapBehavior::NoSwap, CgroupVersion::V1, true, 16 * GI, 0).unwrap();
        let (r, d) = swapped(&pod, &id, &v1);
        assert_eq!(r.memory_limit_in_bytes, 2 << 30);
        assert_eq!(r.memory_swap_limit_in_bytes, r.memory_limit_in_bytes);
        assert!(r.unified.is_empty());
        assert!(!d.swap_allowed);
        // No memory limit: MemorySwapLimitInBytes = 0 (ignored), as the kubelet.
        let (pod0, _) = swap_pod(file, "", "{requests: {memory: 1Gi}}");
        let (r, _) = swapped(&pod0, &id, &v1);
        assert_eq!(
            (r.memory_limit_in_bytes, r.memory_swap_limit_in_bytes),
            (0, 0)
        );

        // cgroup v2, NoSwap: memory.swap.max = 0.
        let v2 = SwapPolicy::new(
            SwapBehavior::NoSwap,
            CgroupVersion::V2,
            true,
            16 * GI,
            8 * GI,
        )
        .unwrap();
        let (r, _) = swapped(&pod, &id, &v2);
        assert_eq!(
            r.unified.get(UNIFIED_MEMORY_SWAP_MAX).map(String::as_str),
            Some("0")
        );
        assert_eq!(r.memory_swap_limit_in_bytes, 0);

        // No swap controller: nothing at all, whatever the behaviour.
        for (behavior, cgroup) in [
            (SwapBehavior::NoSwap, CgroupVersion::V1),
            (SwapBehavior::NoSwap, CgroupVersion::V2),
            (SwapBehavior::LimitedSwap, CgroupVersion::V2),
        ] {
            let none = SwapPolicy::new(behavior, cgroup, false, 16 * GI, 8 * GI).unwrap();
            let (r, d) = swapped(&pod, &id, &none);
            assert!(r.unified.is_empty() && r.memory_swap_limit_in_bytes == 0);
            assert_eq!(d.setting, SwapSetting::Untouched);
        }

        // LimitedSwap on v2: only a non-critical Burstable pod gets swap, 1/16 * 8 GiB.
        let limited = SwapPolicy::new(
            SwapBehavior::LimitedSwap,
            CgroupVersion::V2,
            true,
            16 * GI,
            8 * GI,
        )
        .unwrap();
        let (api_pod, _) = swap_pod("kubernetes.io/config.source: api", "", BURSTABLE);
        let (r, d) = swapped(&api_pod, &id, &limited);
        assert!(d.swap_allowed, "{d:?}");
        assert_eq!(
            r.unified.get(UNIFIED_MEMORY_SWAP_MAX).map(String::as_str),
            Some("536870912")
        );
        // Without any source annotation the pod is not static either (GetPodSource fails).
        let (plain, _) = swap_pod("", "", BURSTABLE);
        assert!(swapped(&plain, &id, &limited).1.swap_allowed);
        // Static, mirror and system-critical priority pods are critical: memory.swap.max = 0.
        for (annotations, priority) in [
            (file, ""),
            ("kubernetes.io/config.source: http", ""),
            ("kubernetes.io/config.mirror: abc", ""),
            ("", "priority: 2000000000"),
        ] {
            let (p, _) = swap_pod(annotations, priority, BURSTABLE);
            assert!(is_critical_pod(&p), "{annotations} {priority}");
            let (r, d) = swapped(&p, &id, &limited);
            assert!(!d.swap_allowed && d.reason.contains("critical"), "{d:?}");
            assert_eq!(
                r.unified.get(UNIFIED_MEMORY_SWAP_MAX).map(String::as_str),
                Some("0")
            );
        }
        let (p, _) = swap_pod("", "priority: 1999999999", BURSTABLE);
        assert!(!is_critical_pod(&p));
        // A memory limit alone defaults the request to it: request == limit, no swap.
        let (p, _) = swap_pod("", "", "{limits: {memory: 1Gi}}");
        assert_eq!(pod_qos(&p, &id).unwrap(), QosClass::Burstable);
        let d = swapped(&p, &id, &limited).1;
        assert!(!d.swap_allowed && d.reason.contains("equals"), "{d:?}");
        // Guaranteed and BestEffort pods do not swap.
        let (p, _) = swap_pod("", "", "{limits: {memory: 1Gi, cpu: 500m}}");
        assert_eq!(pod_qos(&p, &id).unwrap(), QosClass::Guaranteed);
        assert!(!swapped(&p, &id, &limited).1.swap_allowed);
        let (p, _) = swap_pod("", "", "{}");
        assert_eq!(pod_qos(&p, &id).unwrap(), QosClass::BestEffort);
        assert!(!swapped(&p, &id, &limited).1.swap_allowed);
        // A request larger than node memory falls back to NoSwap.
        let (p, _) = swap_pod("", "", "{requests: {memory: 17Gi}, limits: {memory: 20Gi}}");
        let (r, d) = swapped(&p, &id, &limited);
        assert!(d.calc_error.is_some(), "{d:?}");
        assert_eq!(
            r.unified.get(UNIFIED_MEMORY_SWAP_MAX).map(String::as_str),
            Some("0")
        );
        // A malformed memory request is an error naming the container, not a panic.
        let (p, _) = swap_pod("", "", "{requests: {memory: lots}}");
        let c = &p.spec.as_ref().unwrap().containers[0];
        let e = container_swap(
            &p,
            &id,
            c,
            &limited,
            &cri::LinuxContainerResources::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("memory request"), "{e}");
    }
}
