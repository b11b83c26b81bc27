//! `SeccompResolver::open_localhost` on real files: symlinks, FIFOs, directories, oversized
//! and growing files, paths escaping the root, and the canonical path handed to the runtime.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use node_seccomp::{
    ActionName, CriProfileType, Error, LocalhostProfile, MAX_PROFILE_BYTES, Profile,
    SeccompProfile, SeccompResolver,
};

const GOOD: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
    {"names": ["read", "write", "exit_group", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]}"#;

/// A kubelet root in a temporary directory: `<tmp>/kubelet/seccomp/profiles/ok.json`, plus
/// `<tmp>/outside/` with a profile of its own.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let f = Fixture { dir };
        std::fs::create_dir_all(f.seccomp().join("profiles")).unwrap();
        std::fs::create_dir_all(f.outside()).unwrap();
        std::fs::write(f.seccomp().join("profiles/ok.json"), GOOD).unwrap();
        std::fs::write(f.outside().join("x.json"), GOOD).unwrap();
        f
    }
    fn tmp(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }
    fn root_dir(&self) -> PathBuf {
        self.tmp().join("kubelet")
    }
    fn seccomp(&self) -> PathBuf {
        self.root_dir().join("seccomp")
    }
    fn outside(&self) -> PathBuf {
        self.tmp().join("outside")
    }
    fn resolver(&self) -> SeccompResolver {
        SeccompResolver::new(self.root_dir(), false)
    }
    /// The CRI ref the kubelet builds for `localhostProfile: rel`.
    fn cri_ref(&self, rel: &str) -> PathBuf {
        let cri = self
            .resolver()
            .container_profile(None, Some(&SeccompProfile::localhost(rel)))
            .unwrap();
        assert_eq!(cri.profile_type, CriProfileType::Localhost);
        PathBuf::from(cri.localhost_ref)
    }
    fn open(&self, rel: &str) -> node_seccomp::Result<LocalhostProfile> {
        self.resolver().open_localhost(&self.cri_ref(rel))
    }
}

fn refused_kind(r: node_seccomp::Result<LocalhostProfile>) -> (PathBuf, &'static str, String) {
    match r {
        Err(e @ Error::ProfileNotRegular { .. }) => {
            let msg = e.to_string();
            let Error::ProfileNotRegular { path, kind } = e else {
                unreachable!()
            };
            (path, kind, msg)
        }
        other => panic!("expected ProfileNotRegular, got {other:?}"),
    }
}

fn path_reason(r: node_seccomp::Result<LocalhostProfile>) -> String {
    match r {
        Err(Error::LocalhostPath { reason, .. }) => reason,
        other => panic!("expected LocalhostPath, got {other:?}"),
    }
}

#[test]
fn good_profile_is_parsed_validated_and_its_canonical_path_returned() {
    let f = Fixture::new();
    let l = f.open("profiles/ok.json").unwrap();
    let canonical = f.seccomp().join("profiles/ok.json");
    assert_eq!(l.path, canonical);
    assert_eq!(l.profile.default_action, ActionName::Errno);
    assert_eq!(l.report.unknown_syscalls, vec!["frobnicate"]);
    let cri = l.security_profile();
    assert_eq!(cri.profile_type, CriProfileType::Localhost);
    assert_eq!(cri.localhost_ref, canonical.to_str().unwrap());
    // `a/./b` and `a//b` are accepted by the API server and stay inside.
    assert_eq!(f.open("profiles/./ok.json").unwrap().path, canonical);
    assert_eq!(f.open("profiles//ok.json").unwrap().path, canonical);
    // load_localhost keeps working and returns the same profile.
    let p = f
        .resolver()
        .load_localhost(&f.cri_ref("profiles/ok.json"))
        .unwrap();
    assert_eq!(p, l.profile);
}

#[test]
fn symlinked_directories_are_resolved_to_the_path_handed_to_the_runtime() {
    let f = Fixture::new();
    // The kubelet root reached through a symlink (e.g. /var/lib/kubelet -> /data/kubelet).
    let link_root = f.tmp().join("kubelet-link");
    std::os::unix::fs::symlink(f.root_dir(), &link_root).unwrap();
    let r = SeccompResolver::new(&link_root, false);
    let as_written = link_root.join("seccomp/profiles/ok.json");
    let l = r.open_localhost(&as_written).unwrap();
    assert_eq!(l.path, f.seccomp().join("profiles/ok.json"));
    assert_ne!(l.path, as_written);
    // A symlinked directory inside the root that points inside.
    std::os::unix::fs::symlink(f.seccomp().join("profiles"), f.seccomp().join("alias")).unwrap();
    let l = f.open("alias/ok.json").unwrap();
    assert_eq!(l.path, f.seccomp().join("profiles/ok.json"));
}

#[test]
fn a_symlink_as_final_component_is_refused_naming_the_path() {
    let f = Fixture::new();
    // Even one pointing inside the root: the runtime would read the file again through it.
    std::os::unix::fs::symlink(
        f.seccomp().join("profiles/ok.json"),
        f.seccomp().join("inside.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(f.outside().join("x.json"), f.seccomp().join("escape.json"))
        .unwrap();
    for name in ["inside.json", "escape.json"] {
        let (path, kind, msg) = refused_kind(f.open(name));
        assert_eq!(path, f.seccomp().join(name));
        assert_eq!(kind, "a symbolic link");
        assert!(
            msg.contains(&format!("{:?}", f.seccomp().join(name))),
            "{msg}"
        );
        assert!(msg.contains("is a symbolic link"), "{msg}");
    }
}

#[test]
fn a_fifo_is_refused_promptly() {
    let f = Fixture::new();
    let fifo = f.seccomp().join("fifo.json");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cri_ref = f.cri_ref("fifo.json");
    let r = f.resolver();
    let fifo2 = fifo.clone();
    let (tx, rx) = mpsc::channel();
    // Nobody ever opens the FIFO for writing: a blocking open or read would never return.
    std::thread::spawn(move || {
        let localhost = r.open_localhost(&cri_ref);
        let operator = Profile::from_file(&fifo2);
        let _ = tx.send((localhost, operator));
    });
    let (localhost, operator) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("reading a FIFO profile blocked for 30 s");
    let (path, kind, _) = refused_kind(localhost);
    assert_eq!((path, kind), (fifo.clone(), "a FIFO"));
    match operator {
        Err(Error::ProfileNotRegular { path, kind }) => assert_eq!((path, kind), (fifo, "a FIFO")),
        other => panic!("Profile::from_file on a FIFO: {other:?}"),
    }
}

#[test]
fn a_directory_is_refused() {
    let f = Fixture::new();
    std::fs::create_dir(f.seccomp().join("dir.json")).unwrap();
    let (path, kind, _) = refused_kind(f.open("dir.json"));
    assert_eq!((path, kind), (f.seccomp().join("dir.json"), "a directory"));
}

#[test]
fn oversized_files_are_refused_with_path_and_size() {
    let f = Fixture::new();
    // Exactly the limit: valid JSON padded with whitespace is read.
    let limit = usize::try_from(MAX_PROFILE_BYTES).unwrap();
    let mut at_limit = GOOD.as_bytes().to_vec();
    at_limit.resize(limit, b' ');
    std::fs::write(f.seccomp().join("limit.json"), &at_limit).unwrap();
    assert!(f.open("limit.json").is_ok());
    // One byte more is refused before reading, naming the path and the size.
    at_limit.push(b' ');
    let big = f.seccomp().join("big.json");
    std::fs::write(&big, &at_limit).unwrap();
    let e = f.open("big.json").unwrap_err();
    let msg = e.to_string();
    match e {
        Error::ProfileTooLarge { path, size, limit } => {
            assert_eq!(path, big);
            assert_eq!(size, MAX_PROFILE_BYTES + 1);
            assert_eq!(limit, MAX_PROFILE_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert!(msg.contains(&format!("{big:?}")), "{msg}");
    assert!(
        msg.contains(&format!("is {} bytes", MAX_PROFILE_BYTES + 1)),
        "{msg}"
    );
    // The operator path has the same cap.
    assert!(matches!(
        Profile::from_file(&big),
        Err(Error::ProfileTooLarge { .. })
    ));
    assert!(matches!(
        node_seccomp::DockerProfile::from_file(&big),
        Err(Error::ProfileTooLarge { .. })
    ));
}

/// `/proc/kallsyms` is a regular file whose `fstat` size is 0 but which yields megabytes: what a
/// file growing after the `fstat` looks like to the reader.
const GROWING: &str = "/proc/kallsyms";

fn growing_file_available() -> bool {
    let Ok(meta) = std::fs::metadata(GROWING) else {
        eprintln!("SKIP: {GROWING} missing");
        return false;
    };
    let big = std::fs::read(GROWING).map(|b| b.len() as u64).unwrap_or(0) > MAX_PROFILE_BYTES;
    if meta.len() != 0 || !big {
        eprintln!("SKIP: {GROWING} does not claim 0 bytes while holding more than the limit");
        return false;
    }
    true
}

#[test]
fn a_file_larger_than_its_fstat_size_is_read_only_up_to_the_limit() {
    if !growing_file_available() {
        return;
    }
    match Profile::from_file(Path::new(GROWING)) {
        Err(Error::ProfileTooLarge { path, size, limit }) => {
            assert_eq!(path, Path::new(GROWING));
            assert_eq!(limit, MAX_PROFILE_BYTES);
            assert_eq!(
                size,
                MAX_PROFILE_BYTES + 1,
                "read stopped one byte past the limit"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Unmounts a bind mount when dropped.
struct BindMount(CString);

impl Drop for BindMount {
    fn drop(&mut self) {
        // SAFETY: a valid NUL-terminated path; MNT_DETACH takes no other memory.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_localhost_file_larger_than_its_fstat_size_is_read_only_up_to_the_limit() {
    if !growing_file_available() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: bind-mounting {GROWING} into the profile root needs root");
        return;
    }
    let f = Fixture::new();
    let target = f.seccomp().join("grows.json");
    std::fs::write(&target, "").unwrap();
    let src = CString::new(GROWING).unwrap();
    let dst = CString::new(target.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated paths; MS_BIND ignores the fstype and data arguments.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "bind mount: {}", std::io::Error::last_os_error());
    let _guard = BindMount(dst);
    match f.open("grows.json") {
        Err(Error::ProfileTooLarge { path, size, limit }) => {
            assert_eq!(path, target);
            assert_eq!(limit, MAX_PROFILE_BYTES);
            assert_eq!(size, MAX_PROFILE_BYTES + 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn paths_leaving_the_root_are_refused() {
    let f = Fixture::new();
    let r = f.resolver();
    // `..` anywhere, with the API server's wording (not even a `..` that would stay inside).
    for bad in [
        f.seccomp().join("../seccomp/profiles/ok.json"),
        f.seccomp().join("profiles/../../outside/x.json"),
        f.seccomp().join("../../outside/x.json"),
    ] {
        assert_eq!(
            path_reason(r.open_localhost(&bad)),
            "must not contain '..'",
            "{bad:?}"
        );
    }
    // An absolute ref elsewhere.
    let reason = path_reason(r.open_localhost(&f.outside().join("x.json")));
    assert!(
        reason.contains("outside the seccomp profile root"),
        "{reason}"
    );
    // A symlinked directory inside the root pointing outside it.
    std::os::unix::fs::symlink(f.outside(), f.seccomp().join("out")).unwrap();
    let reason = path_reason(f.open("out/x.json"));
    assert!(
        reason.contains(&format!(
            "resolves to {}",
            f.outside().join("x.json").display()
        )),
        "{reason}"
    );
    // The root itself, relative and empty refs.
    let reason = path_reason(r.open_localhost(&f.seccomp()));
    assert!(reason.contains("outside"), "{reason}");
    assert!(path_reason(r.open_localhost(Path::new("profiles/ok.json"))).contains("absolute"));
    assert_eq!(
        path_reason(r.open_localhost(Path::new(""))),
        "must not be empty"
    );
}

#[test]
fn missing_invalid_and_malformed_profiles() {
    let f = Fixture::new();
    let missing = f.cri_ref("missing.json");
    let e = f.open("missing.json").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot load seccomp profile {missing:?}")
    );
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "No such file or directory (os error 2)"
    );
    // A missing directory is the same runtime-style error.
    assert!(matches!(
        f.open("nodir/x.json"),
        Err(Error::ProfileFile { .. })
    ));
    // Parsed but refused by validation: the error names the file, the cause is the
    // runtime-style message with the JSON path.
    let bad = f.seccomp().join("notify.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).unwrap();
    let e = f.open("notify.json").unwrap_err();
    assert_eq!(e.to_string(), format!("seccomp profile {bad:?} is refused"));
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "$.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"
    );
    // Not JSON (and not UTF-8): the parse error names the resolved file.
    let garbage = f.seccomp().join("garbage.json");
    std::fs::write(&garbage, b"{\"defaultAction\": \"\xff\"}").unwrap();
    match f.open("garbage.json") {
        Err(Error::Json { origin, .. }) => assert_eq!(origin, garbage.display().to_string()),
        other => panic!("{other:?}"),
    }
}
