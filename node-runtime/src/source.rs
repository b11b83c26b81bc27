//! The static pod source: the manifests in `staticPodPath` (a directory, or a single file),
//! read the way the kubelet's file source reads them. Dot-files and subdirectories are skipped;
//! every bad manifest is reported with its file and reason and never affects the other pods.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::RuntimeError;
use crate::manifest::{SourcePod, read_manifest};

/// The manifests found by one scan.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid pods, keyed by UID.
    pub pods: HashMap<String, SourcePod>,
    /// One error per manifest that could not be used.
    pub errors: Vec<RuntimeError>,
    /// The static pod path could not be listed (any error but "does not exist": EACCES, EIO,
    /// EMFILE, ELOOP, ...). `pods` is then empty and means nothing: the caller keeps the pods
    /// of its last good scan, as the kubelet's file source sends no update on such an error.
    pub listing_error: Option<RuntimeError>,
}

/// What one manifest file gave last time, keyed by its path and valid while its size and
/// modification time are unchanged.
#[derive(Debug, Clone)]
struct Cached {
    len: u64,
    modified: Option<std::time::SystemTime>,
    result: Result<SourcePod, String>,
}

/// Reads static pods from a path. Unchanged files are not parsed again.
#[derive(Debug, Clone)]
pub struct StaticPodSource {
    path: PathBuf,
    node_name: String,
    cache: HashMap<PathBuf, Cached>,
    /// Which file each UID came from in the last scan: when two files claim one UID, the one
    /// that had it keeps it, so a new or edited manifest can never take a running pod over.
    owners: HashMap<String, PathBuf>,
    /// Before a first scan: the `namespace/name` that runs under each UID in the runtime, so a
    /// restarted agent gives a UID claimed by several files to the pod that had it.
    preferred: HashMap<String, String>,
}

impl StaticPodSource {
    /// A source for `path` (the `staticPodPath` setting) on node `node_name`.
    pub fn new(path: impl Into<PathBuf>, node_name: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            node_name: node_name.into(),
            cache: HashMap::new(),
            owners: HashMap::new(),
            preferred: HashMap::new(),
        }
    }

    /// Tells the source which pod (`namespace/name`) runs under each UID, for UIDs it has not
    /// seen in a scan yet: a UID several files claim goes to the file of that pod.
    pub fn prefer_owners(&mut self, owners: impl IntoIterator<Item = (String, String)>) {
        self.preferred = owners.into_iter().collect();
    }

    /// The watched path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every manifest now. A missing path yields no pods (the kubelet waits for it to
    /// appear); any other error listing the path sets [`Scan::listing_error`] and nothing
    /// else (`pkg/kubelet/config/file.go` `listConfig`); so does a `staticPodPath` naming a
    /// single file that cannot be used (the kubelet sends no update then). Pods with the same
    /// namespace/name, or the same UID, as an earlier file are rejected: one pod can never
    /// take another's sandbox and containers over.
    pub fn scan(&mut self) -> Scan {
        let mut scan = Scan::default();
        let listing_error = |source: std::io::Error| RuntimeError::Io {
            action: "listing static pod path",
            path: self.path.clone(),
            source,
        };
        let mut single_file = false;
        let files = match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return scan,
            Err(e) => {
                scan.listing_error = Some(listing_error(e));
                return scan;
            }
            Ok(m) if m.is_file() => {
                single_file = true;
                vec![self.path.clone()]
            }
            Ok(m) if m.is_dir() => match list_manifest_files(&self.path) {
                Ok(files) => files,
                Err(e) => {
                    scan.listing_error = Some(listing_error(e));
                    return scan;
                }
            },
            Ok(_) => {
                scan.listing_error = Some(listing_error(std::io::Error::other(
                    "path is not a directory or file",
                )));
                return scan;
            }
        };
        self.cache.retain(|path, _| files.contains(path));
        let mut read: Vec<(PathBuf, SourcePod)> = Vec::new();
        for file in files {
            match self.read_cached(&file) {
                Ok(pod) => read.push((file, pod)),
                Err(reason) if single_file => {
                    scan.listing_error = Some(RuntimeError::Manifest { path: file, reason });
                    return scan;
                }
                Err(reason) => scan
                    .errors
                    .push(RuntimeError::Manifest { path: file, reason }),
            }
        }
        // A UID claimed by several files stays with the file that had it last scan (else the
        // first in order); the others are refused.
        let mut uid_owner: HashMap<&str, &Path> = HashMap::new();
        for (file, pod) in &read {
            let had_it = match self.owners.get(&pod.uid) {
                Some(previous) => previous == file,
                None => self.preferred.get(&pod.uid) == Some(&pod.full_name()),
            };
            match uid_owner.get(pod.uid.as_str()) {
                Some(owner) if !had_it || *owner == file.as_path() => {}
                _ => {
                    uid_owner.insert(&pod.uid, file);
                }
            }
        }
        let uid_owner: HashMap<String, PathBuf> = uid_owner
            .into_iter()
            .map(|(uid, file)| (uid.to_owned(), file.to_path_buf()))
            .collect();
        let owner_names: HashMap<String, String> = read
            .iter()
            .filter(|(file, pod)| uid_owner.get(&pod.uid) == Some(file))
            .map(|(_, pod)| (pod.uid.clone(), pod.full_name()))
            .collect();
        let mut names: HashMap<String, PathBuf> = HashMap::new();
        for (file, pod) in read {
            if let Some(owner) = uid_owner.get(&pod.uid).filter(|o| **o != file) {
                scan.errors.push(RuntimeError::Manifest {
                    reason: format!(
                        "duplicate pod UID {} (already used by {} in {})",
                        pod.uid,
                        owner_names
                            .get(&pod.uid)
                            .map_or("another pod", String::as_str),
                        owner.display()
                    ),
                    path: file,
                });
                continue;
            }
            if let Some(first) = names.get(&pod.full_name()) {
                scan.errors.push(RuntimeError::Manifest {
                    reason: format!(
                        "duplicate pod {} (already defined by {})",
                        pod.full_name(),
                        first.display()
                    ),
                    path: file,
                });
                continue;
            }
            names.insert(pod.full_name(), file);
            scan.pods.insert(pod.uid.clone(), pod);
        }
        self.owners = scan
            .pods
            .iter()
            .filter_map(|(uid, pod)| Some((uid.clone(), pod.source.manifest()?.to_path_buf())))
            .collect();
        scan
    }

    fn read_cached(&mut self, file: &Path) -> Result<SourcePod, String> {
        let meta = match std::fs::metadata(file) {
            Ok(meta) => Some(meta),
            // A file that cannot even be inspected right now (EIO, EMFILE, ...) is not a
            // changed manifest: keep what it gave last time, and say why it was not re-read.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                if let Some(Cached {
                    result: Ok(pod), ..
                }) = self.cache.get(file)
                {
                    tracing::warn!(file = %file.display(), error = %e, "cannot inspect static pod manifest; keeping its pod");
                    return Ok(pod.clone());
                }
                None
            }
            Err(_) => None,
        };
        let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
        let modified = meta.and_then(|m| m.modified().ok());
        if let Some(c) = self.cache.get(file)
            && c.len == len
            && c.modified == modified
            && modified.is_some()
        {
            return c.result.clone();
        }
        let mut result = read_manifest(file, &self.node_name).map_err(|e| match e {
            RuntimeError::Manifest { reason, .. } => reason,
            other => other.to_string(),
        });
        if let Ok(pod) = &mut result {
            // `kubernetes.io/config.seen`: when this version (UID) was first seen; a file
            // rewritten with the same pod keeps it.
            let seen = self
                .cache
                .get(file)
                .and_then(|c| c.result.as_ref().ok())
                .filter(|old| old.uid == pod.uid)
                .and_then(crate::manifest::seen_of);
            crate::manifest::set_seen(pod, seen);
        }
        self.cache.insert(
            file.to_path_buf(),
            Cached {
                len,
                modified,
                result: result.clone(),
            },
        );
        result
    }
}

/// Regular files (or symlinks to them) in `dir`, sorted, without dot-files.
fn list_manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a link to a manifest counts, a subdirectory does not.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: NAME\nspec:\n  containers:\n  - name: app\n    image: busybox\n";

    #[test]
    fn config_seen_is_kept_while_the_pod_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, POD.replace("NAME", "a")).unwrap();
        let mut source = StaticPodSource::new(dir.path(), "n1");
        let seen = |scan: &Scan| {
            let pod = scan.pods.values().next().unwrap();
            (pod.uid.clone(), crate::manifest::seen_of(pod).unwrap())
        };
        let first = seen(&source.scan());
        // Rewritten with the same pod (new mtime): same UID, same first-seen time.
        std::fs::write(&file, POD.replace("NAME", "a")).unwrap();
        let filetime = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(filetime)
            .unwrap();
        assert_eq!(seen(&source.scan()), first);
        // Another pod: a new UID, seen anew.
        std::fs::write(
            &file,
            POD.replace("NAME", "a").replace("busybox", "busybox:2"),
        )
        .unwrap();
        let second = seen(&source.scan());
        assert_ne!(second.0, first.0);
    }

    #[test]
    fn scans_and_reports_without_disturbing_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), POD.replace("NAME", "a")).unwrap();
        std::fs::write(dir.path().join("b.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#).unwrap();
        std::fs::write(
            dir.path().join(".hidden.yaml"),
            POD.replace("NAME", "hidden"),
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "kind: Deployment\n").unwrap();
        std::fs::write(dir.path().join("dup.yaml"), POD.replace("NAME", "a")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.yaml"), POD.replace("NAME", "c")).unwrap();
        let scan = StaticPodSource::new(dir.path(), "n1").scan();
        let mut names: Vec<String> = scan.pods.values().map(SourcePod::full_name).collect();
        names.sort();
        assert_eq!(names, ["default/a-n1", "default/b-n1"]);
        assert_eq!(scan.errors.len(), 2, "{:?}", scan.errors);
        let text: Vec<String> = scan.errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("bad.yaml") && e.contains("kind Pod")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("dup.yaml") && e.contains("duplicate pod default/a-n1")),
            "{text:?}"
        );
    }

    #[test]
    fn a_second_pod_with_the_same_uid_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let with_uid = |name: &str| {
            POD.replace("NAME", name)
                .replace("metadata:\n", "metadata:\n  uid: same-uid\n")
        };
        std::fs::write(dir.path().join("a.yaml"), with_uid("a")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), with_uid("b")).unwrap();
        let scan = StaticPodSource::new(dir.path(), "n1").scan();
        assert_eq!(scan.pods.len(), 1);
        assert_eq!(scan.pods["same-uid"].name, "a-n1");
        let text = scan.errors[0].to_string();
        assert!(
            text.contains("b.yaml")
                && text.contains("duplicate pod UID same-uid (already used by default/a-n1"),
            "{text}"
        );
    }

    #[test]
    fn a_single_manifest_file_that_cannot_be_used_is_a_listing_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pod.yaml");
        for bad in ["", ":::garbage: [", "kind: Service\n"] {
            std::fs::write(&file, bad).unwrap();
            let scan = StaticPodSource::new(&file, "n").scan();
            assert!(scan.listing_error.is_some(), "{bad:?}");
            assert!(scan.pods.is_empty() && scan.errors.is_empty());
        }
        std::fs::write(&file, POD.replace("NAME", "ok")).unwrap();
        let scan = StaticPodSource::new(&file, "n").scan();
        assert_eq!(scan.pods.len(), 1);
        assert!(scan.listing_error.is_none());
    }

    #[test]
    fn missing_path_is_empty() {
        let scan = StaticPodSource::new("/nonexistent/manifests", "n").scan();
        assert!(scan.pods.is_empty() && scan.errors.is_empty() && scan.listing_error.is_none());
    }

    #[test]
    fn listing_errors_other_than_missing_are_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        // A symlink loop: stat fails with ELOOP, not ENOENT.
        let looped = dir.path().join("manifests");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let scan = StaticPodSource::new(&looped, "n").scan();
        let err = scan.listing_error.expect("ELOOP is a listing error");
        assert!(err.to_string().contains("listing static pod path"), "{err}");
        assert!(scan.pods.is_empty() && scan.errors.is_empty());
        // A FIFO is neither a directory nor a file.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let scan = StaticPodSource::new(&fifo, "n").scan();
        assert!(scan.listing_error.is_some());
    }
}
