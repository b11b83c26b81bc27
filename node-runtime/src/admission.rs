//! Pod admission on the node: checks that run before a pod is planned, so a refused pod never
//! gets a sandbox. Today: sysctls, with node-kernel's allowlist (the safe set for this kernel
//! plus `allowedUnsafeSysctls`, host-namespace restrictions), as the kubelet's sysctl admit
//! handler (`pkg/kubelet/sysctl/allowlist.go` `Admit`; the status it leaves is
//! `pkg/kubelet/kubelet.go` `rejectPod`).

use k8s_openapi::api::core::v1::Pod;
use node_kernel::SysctlPolicy;

/// A pod refused at admission: the kubelet leaves it in phase `Failed` with this reason and
/// message, and starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `status.reason`, e.g. `SysctlForbidden`.
    pub reason: String,
    /// `status.message`: `Pod was rejected: <why>`.
    pub message: String,
}

/// Admits or refuses `pod`. `sysctls` is the node's allowlist; `None` refuses every sysctl
/// (no allowlist could be built).
pub fn admit(pod: &Pod, sysctls: Option<&SysctlPolicy>) -> Result<(), Rejection> {
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    let names: Vec<&str> = spec
        .security_context
        .iter()
        .flat_map(|s| s.sysctls.iter().flatten())
        .map(|s| s.name.as_str())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let host_network = spec.host_network == Some(true);
    let host_ipc = spec.host_ipc == Some(true);
    let result = match sysctls {
        Some(policy) => policy
            .admit(&names, host_network, host_ipc)
            .map_err(|r| (r.reason.to_owned(), r.message)),
        None => Err((
            node_kernel::FORBIDDEN_REASON.to_owned(),
            format!("forbidden sysctl: {:?} not allowlisted", names[0]),
        )),
    };
    result.map_err(|(reason, message)| Rejection {
        reason,
        message: format!("Pod was rejected: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(sysctls: &str, host: &str) -> Pod {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: p}}\nspec:\n  {host}\n  securityContext:\n    sysctls: {sysctls}\n  containers: [{{name: c, image: i}}]\n"
        ))
        .unwrap()
    }

    fn policy(unsafe_: &[&str]) -> SysctlPolicy {
        let kernel = node_kernel::KernelVersion::parse("6.1.0").unwrap();
        let allowed: Vec<String> = unsafe_.iter().map(|s| (*s).to_owned()).collect();
        SysctlPolicy::new(Some(&kernel), &allowed).unwrap()
    }

    #[test]
    fn safe_sysctls_pass_and_unsafe_ones_are_refused_like_the_kubelet() {
        let p = policy(&[]);
        assert_eq!(admit(&pod("[]", ""), Some(&p)), Ok(()));
        assert_eq!(
            admit(
                &pod("[{name: net.ipv4.tcp_syncookies, value: '1'}]", ""),
                Some(&p)
            ),
            Ok(())
        );
        let r = admit(&pod("[{name: kernel.msgmax, value: '1'}]", ""), Some(&p)).unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(
            r.message,
            "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
        );
    }

    #[test]
    fn allowed_unsafe_patterns_and_host_namespaces() {
        let p = policy(&["kernel.msg*", "net.core.somaxconn"]);
        assert_eq!(
            admit(&pod("[{name: kernel.msgmax, value: '1'}]", ""), Some(&p)),
            Ok(())
        );
        assert_eq!(
            admit(
                &pod("[{name: net.core.somaxconn, value: '1'}]", ""),
                Some(&p)
            ),
            Ok(())
        );
        let r = admit(
            &pod(
                "[{name: net.core.somaxconn, value: '1'}]",
                "hostNetwork: true",
            ),
            Some(&p),
        )
        .unwrap_err();
        assert_eq!(
            r.message,
            "Pod was rejected: forbidden sysctl: \"net.core.somaxconn\" not allowed with host Net enabled"
        );
        let r = admit(
            &pod("[{name: kernel.msgmax, value: '1'}]", "hostIPC: true"),
            Some(&p),
        )
        .unwrap_err();
        assert!(
            r.message.ends_with("not allowed with host IPC enabled"),
            "{}",
            r.message
        );
        // Slash-separated names are normalized first.
        let r = admit(&pod("[{name: kernel/shmmax, value: '1'}]", ""), Some(&p)).unwrap_err();
        assert!(
            r.message.contains("\"kernel.shmmax\" not allowlisted"),
            "{}",
            r.message
        );
    }

    #[test]
    fn without_an_allowlist_every_sysctl_is_refused() {
        let r = admit(
            &pod("[{name: net.ipv4.tcp_syncookies, value: '1'}]", ""),
            None,
        )
        .unwrap_err();
        assert_eq!(r.reason, "SysctlForbidden");
        assert_eq!(admit(&pod("[]", ""), None), Ok(()));
    }
}
