//! The volumes whose content comes from the API server or the pod itself (configMap, secret,
//! downwardAPI, projected) and memory-backed emptyDirs: the objects a pod references are
//! fetched through an [`ObjectSource`] ([`fetch`]), each volume's files are built by
//! [`crate::projection`] and written by the kubelet's [`AtomicWriter`] on every pass (so an
//! object's change reaches the mounted files through the `..data` swap); secret, downwardAPI
//! and projected volumes and `emptyDir.medium: Memory` live on a tmpfs, unmounted before the
//! pod directory is removed ([`unmount_memory_volumes`]).
//!
//! Layout as the kubelet's: `<pod dir>/volumes/kubernetes.io~{configmap,secret,downward-api,
//! projected,empty-dir}/<volume name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use nix::mount::{MntFlags, MsFlags};

use crate::atomic_writer::AtomicWriter;
use crate::error::RuntimeError;
use crate::objects::{ObjectSource, TokenRequest};
use crate::safe_fs::{create_dirs, io_error, open_dir_under, stat_fd};

/// The kubelet's volume plugin directory names.
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
/// See [`CONFIG_MAP_PLUGIN`].
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
/// See [`CONFIG_MAP_PLUGIN`].
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
/// See [`CONFIG_MAP_PLUGIN`].
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";
/// Plugins whose volumes may be tmpfs mounts.
const MEMORY_PLUGINS: &[&str] = &[
    SECRET_PLUGIN,
    DOWNWARD_API_PLUGIN,
    PROJECTED_PLUGIN,
    crate::volumes::EMPTY_DIR_PLUGIN,
];
/// The most volumes per plugin looked at when unmounting.
const MAX_VOLUMES: usize = 10_000;

/// The API objects and node facts a pod's volumes and environment are built from.
#[derive(Debug, Clone, Default)]
pub struct PodObjects {
    /// The configMaps the pod references that exist, by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// The secrets the pod references that exist, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The services whose variables its containers get.
    pub services: Vec<Service>,
    /// Service-account tokens by (volume name, projected source index).
    pub tokens: BTreeMap<(String, usize), String>,
    /// The node's allocatable resources (default limits for `resourceFieldRef`).
    pub node_allocatable: BTreeMap<String, Quantity>,
}

/// What a pod references on the API server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// ConfigMap names.
    pub config_maps: BTreeSet<String>,
    /// Secret names.
    pub secrets: BTreeSet<String>,
    /// `(volume name, source index, audience, expirationSeconds)` of each projected token.
    pub tokens: Vec<(String, usize, String, i64)>,
}

impl References {
    /// Whether the pod references any API object.
    pub fn is_empty(&self) -> bool {
        self.config_maps.is_empty() && self.secrets.is_empty() && self.tokens.is_empty()
    }
}

/// The objects `pod` references from its volumes and its containers' `env`/`envFrom`.
pub fn references(pod: &Pod) -> References {
    let mut refs = References::default();
    let Some(spec) = pod.spec.as_ref() else {
        return refs;
    };
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            refs.secrets.insert(name);
        }
        if let Some(p) = &v.projected {
            for (i, source) in p.sources.iter().flatten().enumerate() {
                if let Some(cm) = &source.config_map {
                    refs.config_maps.insert(cm.name.clone());
                }
                if let Some(s) = &source.secret {
                    refs.secrets.insert(s.name.clone());
                }
                if let Some(t) = &source.service_account_token {
                    refs.tokens.push((
                        v.name.clone(),
                        i,
                        t.audience.clone().unwrap_or_default(),
                        t.expiration_seconds.unwrap_or(3600),
                    ));
                }
            }
        }
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for from in c.env_from.iter().flatten() {
            if let Some(cm) = &from.config_map_ref {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(s) = &from.secret_ref {
                refs.secrets.insert(s.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            if let Some(k) = &from.config_map_key_ref {
                refs.config_maps.insert(k.name.clone());
            }
            if let Some(k) = &from.secret_key_ref {
                refs.secrets.insert(k.name.clone());
            }
        }
    }
    refs
}

fn fetch_error(pod: &str, message: String) -> RuntimeError {
    RuntimeError::VolumeSetup {
        pod: pod.to_owned(),
        message,
    }
}

/// Fetches what `pod` references from `source` (a missing object is left out: the volume or
/// variable decides whether that is an error, by its `optional`). Without a source, a pod that
/// references an API object cannot start.
///
/// # Errors
/// The source failed (the API server is unreachable, a token request was refused), or there
/// is no source for a pod that needs one.
pub async fn fetch(
    source: Option<&dyn ObjectSource>,
    pod: &Pod,
    full_name: &str,
) -> Result<PodObjects, RuntimeError> {
    let refs = references(pod);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = PodObjects::default();
    let Some(source) = source else {
        if refs.is_empty() {
            return Ok(out);
        }
        return Err(fetch_error(
            full_name,
            "the pod references configMaps, secrets or service-account tokens, which need an API server (--kubeconfig)".to_owned(),
        ));
    };
    for name in &refs.config_maps {
        if let Some(cm) = source
            .config_map(namespace, name)
            .await
            .map_err(|e| fetch_error(full_name, e))?
        {
            out.config_maps.insert(name.clone(), cm);
        }
    }
    for name in &refs.secrets {
        if let Some(s) = source
            .secret(namespace, name)
            .await
            .map_err(|e| fetch_error(full_name, e))?
        {
            out.secrets.insert(name.clone(), s);
        }
    }
    let spec = pod.spec.as_ref();
    let service_account = spec
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    for (volume, index, audience, expiration) in refs.tokens {
        let request = TokenRequest {
            namespace: namespace.to_owned(),
            service_account: service_account.clone(),
            audiences: if audience.is_empty() {
                Vec::new()
            } else {
                vec![audience]
            },
            expiration_seconds: expiration,
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        let token = source.token(&request).await.map_err(|e| {
            fetch_error(
                full_name,
                format!("MountVolume.SetUp failed for volume {volume:?} : {e}"),
            )
        })?;
        out.tokens.insert((volume, index), token.token);
    }
    out.services = source
        .services(namespace)
        .await
        .map_err(|e| fetch_error(full_name, e))?;
    Ok(out)
}

/// The plugin directory of `volume` when it is one of this module's, and whether it lives on
/// a tmpfs.
pub fn plugin_of(volume: &Volume) -> Option<(&'static str, bool)> {
    if volume.config_map.is_some() {
        Some((CONFIG_MAP_PLUGIN, false))
    } else if volume.secret.is_some() {
        Some((SECRET_PLUGIN, true))
    } else if volume.downward_api.is_some() {
        Some((DOWNWARD_API_PLUGIN, true))
    } else if volume.projected.is_some() {
        Some((PROJECTED_PLUGIN, true))
    } else if volume.empty_dir.as_ref().and_then(|e| e.medium.as_deref()) == Some("Memory") {
        Some((crate::volumes::EMPTY_DIR_PLUGIN, true))
    } else {
        None
    }
}

/// The tmpfs options of a memory-backed volume: tmpfs's own root mode (1777, as the kubelet
/// mounts it), with `size=<sizeLimit>` when the emptyDir sets one.
///
/// # Errors
/// A `sizeLimit` that is not a valid quantity.
pub fn tmpfs_options(volume: &Volume) -> Result<String, String> {
    let mut options = String::new();
    if let Some(limit) = volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_ref())
    {
        let bytes = node_config::Quantity::parse(&limit.0)
            .map_err(|e| format!("emptyDir sizeLimit {:?}: {e}", limit.0))?
            .value();
        if bytes.is_finite() && bytes >= 1.0 {
            // Whole bytes, rounded up (the kernel rounds up to pages).
            options.push_str(&format!("size={:.0}", bytes.ceil()));
        } else {
            return Err(format!(
                "emptyDir sizeLimit {:?} must be a positive size",
                limit.0
            ));
        }
    }
    Ok(options)
}

/// Sets up `volume` (one of [`plugin_of`]'s) under `pod_dir` and, for the API-backed kinds,
/// writes its files from `objects`; returns its path. Idempotent: run on every pass, it only
/// swaps in new files when their content changed.
///
/// # Errors
/// The kubelet's volume setup message (`MountVolume.SetUp failed for volume "x" : ...`).
pub fn setup(
    pod_dir: &Path,
    volume: &Volume,
    pod: &Pod,
    objects: &PodObjects,
) -> Result<PathBuf, String> {
    let Some((plugin, memory)) = plugin_of(volume) else {
        return Err(format!("volume {:?} is not a projection", volume.name));
    };
    let components = [
        ("pod volumes directory", "volumes"),
        ("volume plugin directory", plugin),
        ("volume name", volume.name.as_str()),
    ];
    let dir = create_dirs(
        pod_dir,
        &components,
        crate::volumes::POD_DATA_DIR_MODE,
        // The kubelet's wrapped emptyDir: 0777 (a tmpfs on top has its own 1777).
        crate::volumes::EMPTY_DIR_MODE,
    )
    .map_err(|e| e.with_cause())?;
    let mut fd = dir.fd;
    if memory {
        let parent = open_dir_under(pod_dir, &components[..2])
            .map_err(|e| e.with_cause())?
            .ok_or_else(|| format!("{} vanished", dir.path.display()))?;
        let here = stat_fd(fd.as_fd()).map_err(|e| e.to_string())?;
        let above = stat_fd(parent.0.as_fd()).map_err(|e| e.to_string())?;
        if !here.other_mount_than(&above) {
            let options = tmpfs_options(volume)?;
            nix::mount::mount(
                Some("tmpfs"),
                &dir.path,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                (!options.is_empty()).then_some(options.as_str()),
            )
            .map_err(|e| format!("mounting a tmpfs on {}: {e}", dir.path.display()))?;
        }
        // The mount's root, not the directory under it.
        fd = crate::safe_fs::open_child_dir(parent.0.as_fd(), OsStr::new(&volume.name), &dir.path)
            .map_err(|e| e.with_cause())?
            .ok_or_else(|| format!("{} vanished", dir.path.display()))?;
    }
    if plugin == crate::volumes::EMPTY_DIR_PLUGIN {
        return Ok(dir.path);
    }
    let mut tokens: Vec<Option<&str>> = Vec::new();
    for ((name, index), token) in &objects.tokens {
        if *name == volume.name {
            if tokens.len() <= *index {
                tokens.resize(index + 1, None);
            }
            tokens[*index] = Some(token.as_str());
        }
    }
    let security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let fs_group = security
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok());
    let inputs = crate::projection::ProjectionInputs {
        config_maps: &objects.config_maps,
        secrets: &objects.secrets,
        node_allocatable: &objects.node_allocatable,
        service_account_tokens: &tokens,
        fs_user: security
            .and_then(|s| s.run_as_user)
            .and_then(|u| u32::try_from(u).ok()),
        fs_group,
    };
    let mut payload = match crate::projection::volume_payload(volume, pod, &inputs) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(e),
        None => return Err(format!("volume {:?} is not a projection", volume.name)),
    };
    if let Some(gid) = fs_group {
        crate::projection::with_fs_group(&mut payload, gid);
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let writer = AtomicWriter::from_fd(
        fd,
        dir.path.clone(),
        format!("pod {namespace}/{name} volume {}", volume.name),
    );
    writer.write(&payload).map_err(|e| e.with_cause())?;
    Ok(dir.path)
}

/// Unmounts the tmpfs of every memory-backed volume of the pod (`<pod dir>/volumes/<plugin>/*`
/// that is a mount point), lazily when busy, so the pod directory can be removed. Symlinks are
/// never followed. Carries on after an error and returns the first one.
///
/// # Errors
/// A volume directory could not be opened or unmounted.
pub fn unmount_memory_volumes(pod_dir: &Path) -> Result<(), RuntimeError> {
    let mut first = None;
    for plugin in MEMORY_PLUGINS {
        let components = [
            ("pod volumes directory", "volumes"),
            ("volume plugin directory", *plugin),
        ];
        let Some((dir, path)) = open_dir_under(pod_dir, &components)? else {
            continue;
        };
        let above = stat_fd(dir.as_fd()).map_err(|e| io_error("stat", &path, e))?;
        for name in crate::safe_fs::read_names(dir.as_fd(), &path, MAX_VOLUMES)? {
            let volume_path = path.join(&name);
            let Ok(Some(child)) = crate::safe_fs::open_child_dir(dir.as_fd(), &name, &volume_path)
            else {
                continue;
            };
            let Ok(meta) = stat_fd(child.as_fd()) else {
                continue;
            };
            drop(child);
            if meta.other_mount_than(&above)
                && let Err(e) = nix::mount::umount2(&volume_path, MntFlags::MNT_DETACH)
            {
                tracing::warn!(path = %volume_path.display(), error = %e, "unmounting a pod volume");
                first.get_or_insert(io_error("unmount", &volume_path, e));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn references_cover_volumes_projections_and_env() {
        let p = pod(serde_json::json!({
            "volumes": [
                {"name": "a", "configMap": {"name": "cm1"}},
                {"name": "b", "secret": {"secretName": "s1"}},
                {"name": "c", "projected": {"sources": [
                    {"configMap": {"name": "cm2"}},
                    {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 7200}},
                    {"secret": {"name": "s2"}},
                    {"serviceAccountToken": {"path": "t2"}}
                ]}},
                {"name": "d", "emptyDir": {}}
            ],
            "containers": [{"name": "x", "image": "i",
                "envFrom": [{"configMapRef": {"name": "cm3"}}, {"secretRef": {"name": "s3"}}],
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm4", "key": "k"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s4", "key": "k"}}},
                        {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]
        }));
        let r = references(&p);
        assert_eq!(
            r.config_maps.iter().map(String::as_str).collect::<Vec<_>>(),
            ["cm1", "cm2", "cm3", "cm4"]
        );
        assert_eq!(
            r.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
            ["s1", "s2", "s3", "s4"]
        );
        assert_eq!(
            r.tokens,
            [
                ("c".to_owned(), 1, "vault".to_owned(), 7200),
                ("c".to_owned(), 3, String::new(), 3600)
            ]
        );
        assert!(references(&pod(serde_json::json!({"containers": []}))).is_empty());
    }

    #[tokio::test]
    async fn without_a_source_only_pods_without_references_go_on() {
        let plain = pod(serde_json::json!({"containers": []}));
        assert!(fetch(None, &plain, "ns/p").await.is_ok());
        let needs = pod(
            serde_json::json!({"volumes": [{"name": "a", "configMap": {"name": "cm"}}], "containers": []}),
        );
        let err = fetch(None, &needs, "ns/p").await.unwrap_err().to_string();
        assert!(err.contains("need an API server"), "{err}");
    }

    #[test]
    fn memory_volumes_are_tmpfs_written_atomically_and_unmounted_before_removal() {
        if !crate::safe_fs::tests::have_root("memory_volumes_are_tmpfs") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let paths = crate::NodePaths {
            root_dir: tmp.path().join("root"),
            pod_logs_dir: tmp.path().join("logs"),
        };
        let pod_dir = paths.create_pod_dir("u").unwrap();
        let p = pod(serde_json::json!({
            "volumes": [
                {"name": "s", "secret": {"secretName": "creds", "defaultMode": 256}},
                {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "c", "configMap": {"name": "conf"}}
            ],
            "containers": []
        }));
        let mut objects = PodObjects::default();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "creds"}, "data": {"password": "aHVudGVyMg=="}
        }))
        .unwrap();
        objects.secrets.insert("creds".into(), secret);
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "conf"}, "data": {"a.conf": "one"}
        }))
        .unwrap();
        objects.config_maps.insert("conf".into(), cm.clone());
        let volumes = p.spec.as_ref().unwrap().volumes.clone().unwrap();
        let secret_dir = setup(&pod_dir, &volumes[0], &p, &objects).unwrap();
        let mem_dir = setup(&pod_dir, &volumes[1], &p, &objects).unwrap();
        let cm_dir = setup(&pod_dir, &volumes[2], &p, &objects).unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let tmpfs_at = |d: &Path| {
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.get(1) == Some(&d.to_str().unwrap()) && f.get(2) == Some(&"tmpfs")
            })
        };
        assert!(tmpfs_at(&secret_dir) && tmpfs_at(&mem_dir) && !tmpfs_at(&cm_dir));
        assert!(mounts.contains("size=1024k"), "{mounts}");
        assert_eq!(
            std::fs::read_to_string(secret_dir.join("password")).unwrap(),
            "hunter2"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(secret_dir.join("..data/password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        // An update swaps the data in; a second setup mounts nothing more.
        let mut changed = cm;
        changed.data = Some([("a.conf".to_owned(), "two".to_owned())].into());
        objects.config_maps.insert("conf".into(), changed);
        setup(&pod_dir, &volumes[2], &p, &objects).unwrap();
        setup(&pod_dir, &volumes[0], &p, &objects).unwrap();
        assert_eq!(
            std::fs::read_to_string(cm_dir.join("a.conf")).unwrap(),
            "two"
        );
        let mounts_now = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert_eq!(
            mounts_now.matches(secret_dir.to_str().unwrap()).count(),
            1,
            "mounted once"
        );
        paths.remove_pod_dir("u").unwrap();
        assert!(!pod_dir.exists());
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(!mounts.contains(tmp.path().to_str().unwrap()), "{mounts}");
    }

    #[test]
    fn plugins_and_tmpfs_options() {
        let v = |j: serde_json::Value| -> Volume { serde_json::from_value(j).unwrap() };
        assert_eq!(
            plugin_of(&v(
                serde_json::json!({"name": "a", "configMap": {"name": "c"}})
            )),
            Some((CONFIG_MAP_PLUGIN, false))
        );
        assert_eq!(
            plugin_of(&v(serde_json::json!({"name": "a", "secret": {}}))),
            Some((SECRET_PLUGIN, true))
        );
        assert_eq!(
            plugin_of(&v(serde_json::json!({"name": "a", "emptyDir": {}}))),
            None
        );
        let mem = v(
            serde_json::json!({"name": "a", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}),
        );
        assert_eq!(
            plugin_of(&mem),
            Some((crate::volumes::EMPTY_DIR_PLUGIN, true))
        );
        assert_eq!(tmpfs_options(&mem).unwrap(), "size=67108864");
        let bad = v(
            serde_json::json!({"name": "a", "emptyDir": {"medium": "Memory", "sizeLimit": "-1"}}),
        );
        assert!(tmpfs_options(&bad).is_err());
    }
}
