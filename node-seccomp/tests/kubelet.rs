//! The kubelet's resolution rules and the Localhost escape matrix.

use node_seccomp::{
    ContainerKind, ContainerSeccomp, CriProfileType, Error, SeccompProfile, SeccompProfileType,
    SeccompResolver,
};

fn resolver(root: &std::path::Path, fallback: bool) -> SeccompResolver {
    SeccompResolver::new(root, fallback)
}

#[test]
fn decision_table() {
    let r = resolver(std::path::Path::new("/var/lib/kubelet"), false);
    let rd = SeccompProfile::runtime_default();
    let un = SeccompProfile::unconfined();
    let lh = SeccompProfile::localhost("a/b.json");
    let t = |r: &SeccompResolver, pod: Option<&SeccompProfile>, c: Option<&SeccompProfile>| {
        r.container_profile(pod, c).unwrap()
    };
    assert_eq!(
        t(&r, Some(&un), Some(&rd)).profile_type,
        CriProfileType::RuntimeDefault
    ); // container wins
    assert_eq!(
        t(&r, Some(&rd), None).profile_type,
        CriProfileType::RuntimeDefault
    ); // pod inherited
    assert_eq!(t(&r, None, None).profile_type, CriProfileType::Unconfined);
    let fb = resolver(std::path::Path::new("/var/lib/kubelet"), true);
    assert_eq!(
        t(&fb, None, None).profile_type,
        CriProfileType::RuntimeDefault
    ); // seccompDefault
    assert_eq!(
        t(&fb, None, Some(&un)).profile_type,
        CriProfileType::Unconfined
    ); // explicit wins
    let l = t(&r, None, Some(&lh));
    assert_eq!(l.profile_type, CriProfileType::Localhost);
    assert_eq!(l.localhost_ref, "/var/lib/kubelet/seccomp/a/b.json");
    let other = SeccompProfile {
        profile_type: SeccompProfileType::from_api("Foo"),
        localhost_profile: None,
    };
    assert_eq!(
        t(&fb, None, Some(&other)).profile_type,
        CriProfileType::Unconfined
    );
    let empty = SeccompProfile {
        profile_type: SeccompProfileType::Localhost,
        localhost_profile: None,
    };
    let e = r.container_profile(None, Some(&empty)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "localhostProfile must be set if seccompProfile type is Localhost."
    );
    let s = r.sandbox_profile();
    assert_eq!(
        (s.profile_type, s.localhost_ref.as_str()),
        (CriProfileType::RuntimeDefault, "")
    );
}

#[test]
fn init_and_ephemeral_containers_inherit_the_pod_profile() {
    let r = resolver(std::path::Path::new("/var/lib/kubelet"), false);
    let pod = SeccompProfile::localhost("pod.json");
    let containers = vec![
        ContainerSeccomp {
            name: "init".into(),
            kind: ContainerKind::Init,
            profile: None,
        },
        ContainerSeccomp {
            name: "app".into(),
            kind: ContainerKind::Regular,
            profile: Some(SeccompProfile::runtime_default()),
        },
        ContainerSeccomp {
            name: "debug".into(),
            kind: ContainerKind::Ephemeral,
            profile: None,
        },
    ];
    let out = r.pod_profiles(Some(&pod), &containers);
    let refs: Vec<(String, String)> = out
        .into_iter()
        .map(|(n, _, p)| (n, p.unwrap().localhost_ref))
        .collect();
    assert_eq!(refs[0].1, "/var/lib/kubelet/seccomp/pod.json");
    assert_eq!(refs[1].1, "");
    assert_eq!(refs[2].1, "/var/lib/kubelet/seccomp/pod.json");
}

#[test]
fn localhost_escape_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kubelet");
    std::fs::create_dir_all(root.join("seccomp/profiles")).unwrap();
    std::fs::write(
        root.join("seccomp/profiles/ok.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("outside.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("outside.json"),
        root.join("seccomp/escape.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        root.join("seccomp/profiles/ok.json"),
        root.join("seccomp/inside.json"),
    )
    .unwrap();
    let r = resolver(&root, false);
    let reason = |rel: &str| match r.localhost_path(rel) {
        Err(Error::LocalhostPath { reason, .. }) => reason,
        other => panic!("{rel}: {other:?}"),
    };
    assert_eq!(reason("../x"), "must not contain '..'");
    assert_eq!(reason("a/../../x"), "must not contain '..'");
    assert_eq!(reason("/abs"), "must be a relative path");
    assert_eq!(reason(""), "must not be empty");
    // The API server accepts these and so do we; they stay inside.
    assert_eq!(r.localhost_path("a/./b").unwrap(), root.join("seccomp/a/b"));
    assert_eq!(r.localhost_path("a//b").unwrap(), root.join("seccomp/a/b"));

    let load = |rel: &str| r.load_localhost(&r.localhost_path(rel).unwrap());
    assert!(load("profiles/ok.json").is_ok());
    // A symlink as the last component is never followed, wherever it points (the runtime
    // would read the file again through it); see tests/localhost.rs for the full matrix.
    for link in ["inside.json", "escape.json"] {
        match load(link) {
            Err(Error::ProfileNotRegular { kind, .. }) => assert_eq!(kind, "a symbolic link"),
            other => panic!("{link}: {other:?}"),
        }
    }
    let missing = r.localhost_path("missing.json").unwrap();
    let e = r.load_localhost(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot load seccomp profile {:?}", missing)
    );
    assert_eq!(
        std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap(),
        "No such file or directory (os error 2)"
    );
    // The CRI ref for a Localhost container is that absolute path.
    let p = r
        .container_profile(None, Some(&SeccompProfile::localhost("missing.json")))
        .unwrap();
    assert_eq!(std::path::Path::new(&p.localhost_ref), missing);
    assert!(missing.is_absolute());
}
