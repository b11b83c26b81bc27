//! Volumes on the real filesystem with real mounts, as root, under attack: symlinks a container
//! plants in its volume (to `/`, to a directory outside the volume, as the subPath or on the
//! way to it), a container racing the agent by swapping a directory for a symlink while the
//! subPath is being mounted, removal of trees holding symlinks and live mounts, emptyDir
//! permissions for a non-root user, and hostPath types against real special files.
//!
//! Without root the tests print a skip line; with `CI` set they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{RenameFlags, renameat2};
use node_runtime::RuntimeError;
use node_runtime::safe_fs::remove_tree_under;
use node_runtime::subpath::{clean_subpaths, prepare_subpath, subpath_target};
use node_runtime::volumes::{check_host_path, setup_empty_dir, teardown_empty_dir};

/// Whether the test may run; without root it prints a skip line, with `CI` set it fails.
fn root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root (bind mounts, setuid) and CI is set: run the tests as root");
    }
    eprintln!("skipping {test}: needs root");
    false
}

/// Mount points at or below `dir` (from `/proc/self/mountinfo`).
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .filter(|point| point == prefix || point.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Every path below `dir` with the content of regular files, sorted: to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path.clone());
                out.push((path, None));
            } else if meta.is_file() {
                let content = fs::read(&path).unwrap();
                out.push((path, Some(content)));
            } else {
                out.push((path, None));
            }
        }
    }
    out.sort();
    out
}

/// A pod directory with an emptyDir volume `data`, and a directory outside it the attacker
/// wants to reach, holding a marker.
struct Fixture {
    tmp: tempfile::TempDir,
    pod: PathBuf,
    volume: PathBuf,
    outside: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pod = tmp.path().join("pods/uid-1");
        fs::create_dir_all(&pod).unwrap();
        let volume = setup_empty_dir(&pod, "data").unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("leaf")).unwrap();
        fs::write(outside.join("which"), b"outside").unwrap();
        fs::write(outside.join("leaf/which"), b"outside").unwrap();
        Self {
            tmp,
            pod,
            volume,
            outside,
        }
    }

    fn no_mounts_left(&self) {
        assert_eq!(mounts_under(self.tmp.path()), Vec::<String>::new());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Never leave a mount behind, even when an assertion failed.
        for point in mounts_under(self.tmp.path()).iter().rev() {
            let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn assert_unsafe(result: Result<PathBuf, RuntimeError>, what: &str) -> String {
    match result {
        Err(RuntimeError::UnsafePath { path, reason }) => format!("{}: {reason}", path.display()),
        Err(other) => panic!("{what}: expected UnsafePath, got {other}"),
        Ok(target) => panic!("{what}: mounted {}", target.display()),
    }
}

#[test]
fn planted_symlinks_out_of_the_volume_are_refused_and_nothing_is_mounted() {
    if !root("planted_symlinks_out_of_the_volume_are_refused_and_nothing_is_mounted") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    symlink("/", v.join("to-root")).unwrap();
    symlink("../../../../../../../../..", v.join("to-root-relative")).unwrap();
    symlink(&f.outside, v.join("to-outside")).unwrap();
    fs::create_dir(v.join("dir")).unwrap();
    symlink("../../../../../../outside", v.join("dir/up")).unwrap();
    let before = snapshot(&f.outside);

    for sub in [
        // The symlink as the subPath itself.
        "to-root",
        "to-root-relative",
        "to-outside",
        "dir/up",
        // As an intermediate component, to something that exists outside.
        "to-root/etc",
        "to-root-relative/tmp",
        "to-outside/leaf",
        "dir/up/leaf",
        // As an intermediate component, to something missing: must not be created outside.
        "to-outside/created",
        "to-root/tmp/created-by-an-attack",
        "dir/up/created",
    ] {
        let reason = assert_unsafe(
            prepare_subpath(v, sub, &f.pod, "data", "app", 0),
            &format!("subPath {sub}"),
        );
        assert!(
            reason.contains("outside the volume") || reason.contains("out of the volume"),
            "{sub}: {reason}"
        );
        assert!(
            !subpath_target(&f.pod, "data", "app", 0).unwrap().exists(),
            "{sub}"
        );
        f.no_mounts_left();
    }
    assert_eq!(snapshot(&f.outside), before);
    assert!(!Path::new("/tmp/created-by-an-attack").exists());
    // The agent's own subpath directory being a symlink is refused too.
    fs::remove_dir_all(f.pod.join("volume-subpaths")).ok();
    symlink(&f.outside, f.pod.join("volume-subpaths")).unwrap();
    fs::create_dir(v.join("ok")).unwrap();
    let reason = assert_unsafe(
        prepare_subpath(v, "ok", &f.pod, "data", "app", 0),
        "volume-subpaths symlink",
    );
    assert!(reason.contains("symlink"), "{reason}");
    f.no_mounts_left();
    assert_eq!(snapshot(&f.outside), before);
}

#[test]
fn symlinks_that_stay_inside_the_volume_are_followed_like_the_kubelet() {
    if !root("symlinks_that_stay_inside_the_volume_are_followed_like_the_kubelet") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    // A configMap volume as the atomic writer lays it out.
    fs::create_dir(v.join("..2026_01_01_00_00_00.1")).unwrap();
    fs::write(v.join("..2026_01_01_00_00_00.1/nginx.conf"), b"conf").unwrap();
    symlink("..2026_01_01_00_00_00.1", v.join("..data")).unwrap();
    symlink("..data/nginx.conf", v.join("nginx.conf")).unwrap();
    // An absolute link into the volume's own real path.
    fs::create_dir(v.join("real")).unwrap();
    fs::write(v.join("real/which"), b"inside").unwrap();
    symlink(fs::canonicalize(v).unwrap().join("real"), v.join("abs")).unwrap();

    let file = prepare_subpath(v, "nginx.conf", &f.pod, "data", "app", 0).unwrap();
    assert!(fs::symlink_metadata(&file).unwrap().is_file());
    assert_eq!(fs::read(&file).unwrap(), b"conf");
    let dir = prepare_subpath(v, "abs", &f.pod, "data", "app", 1).unwrap();
    assert_eq!(fs::read(dir.join("which")).unwrap(), b"inside");
    // Through a link to a directory created on the way.
    let created = prepare_subpath(v, "abs/new/deeper", &f.pod, "data", "app", 2).unwrap();
    fs::write(created.join("w"), b"w").unwrap();
    assert_eq!(fs::read(v.join("real/new/deeper/w")).unwrap(), b"w");
    assert_eq!(mounts_under(f.tmp.path()).len(), 3);

    clean_subpaths(&f.pod).unwrap();
    f.no_mounts_left();
    assert!(!f.pod.join("volume-subpaths").exists());
}

/// Stops and joins the swapping thread when dropped (also when the test fails).
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    /// Keeps exchanging `dir/a` and `dir/b` atomically (`RENAME_EXCHANGE`), like a container
    /// swapping a directory of its volume for a symlink as fast as it can.
    fn start(dir: &Path, a: &str, b: &str) -> Self {
        let dir = fs::File::open(dir).unwrap();
        let (a, b) = (a.to_owned(), b.to_owned());
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, swaps) = (stop.clone(), swaps.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    renameat2(
                        dir.as_fd(),
                        a.as_str(),
                        dir.as_fd(),
                        b.as_str(),
                        RenameFlags::RENAME_EXCHANGE,
                    )
                    .unwrap();
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Self {
            stop,
            swaps,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `attempt` until it both succeeded and was refused `want` times each (or the deadline
/// passes); returns (successes, refusals).
fn race(want: u32, mut attempt: impl FnMut(u32) -> bool) -> (u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut ok, mut refused) = (0, 0);
    let mut i = 0;
    while (ok < want || refused < want) && Instant::now() < deadline {
        if attempt(i) {
            ok += 1;
        } else {
            refused += 1;
        }
        i += 1;
    }
    (ok, refused)
}

#[test]
fn racing_a_symlink_swap_of_the_subpath_never_mounts_the_outside() {
    if !root("racing_a_symlink_swap_of_the_subpath_never_mounts_the_outside") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    fs::create_dir(v.join("sub")).unwrap();
    fs::write(v.join("sub/which"), b"inside").unwrap();
    symlink(&f.outside, v.join("swap")).unwrap();
    let before = snapshot(&f.outside);

    let swapper = Swapper::start(v, "sub", "swap");
    let (ok, refused) = race(50, |_| {
        match prepare_subpath(v, "sub", &f.pod, "data", "app", 0) {
            Ok(target) => {
                // Whatever name the directory has now, the mount shows the volume's own one.
                assert_eq!(fs::read(target.join("which")).unwrap(), b"inside");
                clean_subpaths(&f.pod).unwrap();
                true
            }
            Err(RuntimeError::UnsafePath { reason, .. }) => {
                assert!(reason.contains("outside the volume"), "{reason}");
                false
            }
            Err(other) => panic!("unexpected error under the race: {other}"),
        }
    });
    let swaps = swapper.swaps.load(Ordering::Relaxed);
    drop(swapper);
    eprintln!("final component race: {ok} mounted, {refused} refused, {swaps} swaps");
    assert!(
        ok > 0 && refused > 0,
        "the race was not exercised: {ok} mounted, {refused} refused"
    );
    clean_subpaths(&f.pod).unwrap();
    f.no_mounts_left();
    assert_eq!(snapshot(&f.outside), before);
}

#[test]
fn racing_a_symlink_swap_of_an_intermediate_directory_never_escapes() {
    if !root("racing_a_symlink_swap_of_an_intermediate_directory_never_escapes") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    fs::create_dir_all(v.join("mid/leaf")).unwrap();
    fs::write(v.join("mid/leaf/which"), b"inside").unwrap();
    symlink(&f.outside, v.join("swap")).unwrap();
    // The real `mid`, whatever it is called at any moment.
    let real_mid = fs::File::open(v.join("mid")).unwrap();
    let real_mid_path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&real_mid)
    ));
    let before = snapshot(&f.outside);

    let swapper = Swapper::start(v, "mid", "swap");
    let (ok, refused) = race(50, |i| {
        // Half the attempts name an existing leaf, half one that must be created.
        let (sub, created) = if i % 2 == 0 {
            ("mid/leaf".to_owned(), None)
        } else {
            (format!("mid/new{i}"), Some(format!("new{i}")))
        };
        match prepare_subpath(v, &sub, &f.pod, "data", "app", 0) {
            Ok(target) => {
                match created {
                    None => assert_eq!(fs::read(target.join("which")).unwrap(), b"inside"),
                    Some(name) => {
                        fs::write(target.join("through"), b"x").unwrap();
                        assert_eq!(
                            fs::read(real_mid_path.join(name).join("through")).unwrap(),
                            b"x"
                        );
                    }
                }
                clean_subpaths(&f.pod).unwrap();
                true
            }
            Err(RuntimeError::UnsafePath { reason, .. }) => {
                assert!(reason.contains("outside the volume"), "{reason}");
                false
            }
            Err(other) => panic!("unexpected error under the race: {other}"),
        }
    });
    let swaps = swapper.swaps.load(Ordering::Relaxed);
    drop(swapper);
    eprintln!("intermediate race: {ok} mounted, {refused} refused, {swaps} swaps");
    assert!(
        ok > 0 && refused > 0,
        "the race was not exercised: {ok} mounted, {refused} refused"
    );
    clean_subpaths(&f.pod).unwrap();
    f.no_mounts_left();
    // Nothing was created or changed outside.
    assert_eq!(snapshot(&f.outside), before);
}

#[test]
fn removing_a_pod_tree_never_follows_symlinks_out() {
    if !root("removing_a_pod_tree_never_follows_symlinks_out") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    fs::create_dir_all(v.join("a/b")).unwrap();
    fs::write(v.join("a/b/f"), b"1").unwrap();
    symlink(&f.outside, v.join("a/to-outside")).unwrap();
    symlink("/", v.join("a/b/to-root")).unwrap();
    symlink(f.outside.join("which"), v.join("file-link")).unwrap();
    let before = snapshot(&f.outside);

    // The final component itself a symlink to an outside directory: unlinked, not followed.
    let pods = f.tmp.path().join("pods");
    symlink(&f.outside, pods.join("uid-evil")).unwrap();
    remove_tree_under(&pods, &[("metadata.uid", "uid-evil")]).unwrap();
    assert!(fs::symlink_metadata(pods.join("uid-evil")).is_err());
    assert_eq!(snapshot(&f.outside), before);

    teardown_empty_dir(&f.pod, "data").unwrap();
    remove_tree_under(&pods, &[("metadata.uid", "uid-1")]).unwrap();
    assert!(!f.pod.exists());
    assert_eq!(snapshot(&f.outside), before);
    assert!(Path::new("/etc/hostname").exists() || Path::new("/etc/passwd").exists());
}

#[test]
fn a_live_subpath_mount_blocks_removal_until_cleaned() {
    if !root("a_live_subpath_mount_blocks_removal_until_cleaned") {
        return;
    }
    let f = Fixture::new();
    let v = &f.volume;
    fs::create_dir(v.join("sub")).unwrap();
    fs::write(v.join("sub/which"), b"inside").unwrap();
    fs::write(v.join("file"), b"file").unwrap();
    let dir_target = prepare_subpath(v, "sub", &f.pod, "data", "app", 0).unwrap();
    let file_target = prepare_subpath(v, "file", &f.pod, "data", "app", 1).unwrap();
    let pods = f.tmp.path().join("pods");

    let err = remove_tree_under(&pods, &[("metadata.uid", "uid-1")]).unwrap_err();
    match err {
        RuntimeError::UnsafePath { path, reason } => {
            assert!(
                path == dir_target || path == file_target,
                "{}",
                path.display()
            );
            assert!(reason.contains("mount point"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // Nothing below the mounts was touched: the volume content is intact through them.
    assert_eq!(fs::read(dir_target.join("which")).unwrap(), b"inside");
    assert_eq!(fs::read(&file_target).unwrap(), b"file");
    assert_eq!(mounts_under(f.tmp.path()).len(), 2);

    clean_subpaths(&f.pod).unwrap();
    f.no_mounts_left();
    remove_tree_under(&pods, &[("metadata.uid", "uid-1")]).unwrap();
    assert!(!f.pod.exists());
}

#[test]
fn empty_dir_is_0777_and_writable_by_another_user() {
    if !root("empty_dir_is_0777_and_writable_by_another_user") {
        return;
    }
    let f = Fixture::new();
    let meta = fs::metadata(&f.volume).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o777);
    assert_eq!(meta.uid(), 0);

    let write_as_1000 = |dir: &Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=1000", "--regid=1000", "--clear-groups", "--"])
            .args(["sh", "-c", "echo hello > written-by-1000"])
            .current_dir(dir)
            .status()
            .expect("setpriv (util-linux) must be installed")
    };
    assert!(write_as_1000(&f.volume).success());
    let written = f.volume.join("written-by-1000");
    assert_eq!(fs::read(&written).unwrap(), b"hello\n");
    assert_eq!(fs::metadata(&written).unwrap().uid(), 1000);
    // The same in a root-owned 0755 directory fails: the process really was uid 1000.
    let closed = f.tmp.path().join("closed");
    fs::create_dir(&closed).unwrap();
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!write_as_1000(&closed).success());
    assert!(!closed.join("written-by-1000").exists());

    teardown_empty_dir(&f.pod, "data").unwrap();
    assert!(!f.volume.exists());
}

/// The first block device under `/dev` (not following symlinks), if any.
fn some_block_device() -> Option<PathBuf> {
    let mut todo = vec![PathBuf::from("/dev")];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_block_device() {
                return Some(entry.path());
            }
            if file_type.is_dir() && dir == Path::new("/dev") {
                todo.push(entry.path());
            }
        }
    }
    None
}

#[test]
fn host_path_types_against_real_special_files() {
    if !root("host_path_types_against_real_special_files") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let check = |path: &Path, kind: &str| check_host_path(path.to_str().unwrap(), Some(kind));
    let fails = |path: &Path, kind: &str, what: &str| {
        assert_eq!(
            check(path, kind).unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a {what}",
                path.display()
            ),
            "{kind} on {}",
            path.display()
        );
    };

    let socket = tmp.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    check(&socket, "Socket").unwrap();
    check(&socket, "File").unwrap(); // 1.35: anything but a directory is a "file"
    fails(&socket, "Directory", "directory");
    fails(&socket, "CharDevice", "character device");
    fails(&socket, "BlockDevice", "block device");
    // Through a symlink, as os.Stat does.
    symlink(&socket, tmp.path().join("sock-link")).unwrap();
    check(&tmp.path().join("sock-link"), "Socket").unwrap();

    let fifo = tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    fails(&fifo, "Socket", "socket file");
    fails(&fifo, "CharDevice", "character device");
    fails(&fifo, "Directory", "directory");
    check(&fifo, "File").unwrap();
    check(&fifo, "FileOrCreate").unwrap();

    let null = Path::new("/dev/null");
    check(null, "CharDevice").unwrap();
    check(null, "File").unwrap();
    fails(null, "BlockDevice", "block device");
    fails(null, "Socket", "socket file");

    match some_block_device() {
        Some(block) => {
            check(&block, "BlockDevice").unwrap();
            fails(&block, "CharDevice", "character device");
            fails(&block, "Directory", "directory");
            eprintln!("block device case ran against {}", block.display());
        }
        None => eprintln!(
            "host_path_types_against_real_special_files: /dev has no block device here; \
             skipping only the BlockDevice success case"
        ),
    }

    // A missing path fails every check that does not create.
    let missing = tmp.path().join("missing");
    for (kind, what) in [
        ("Directory", "directory"),
        ("File", "file"),
        ("Socket", "socket file"),
        ("CharDevice", "character device"),
        ("BlockDevice", "block device"),
    ] {
        fails(&missing, kind, what);
    }
    assert!(!missing.exists());
}
