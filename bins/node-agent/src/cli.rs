//! The command line: the kubelet's flags with the kubelet's names and precedence
//! (flags > `--config-dir` drop-ins > `--config` > defaults), parsed by node-config's table.

use std::path::PathBuf;

use node_config::KubeletFlagArgs;

/// `--version`: the project version and the Kubernetes version the agent implements.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Kubernetes ",
    node_config::kubernetes_version!(),
    ")"
);
const ABOUT: &str = "node-agent: a Kubernetes node agent compatible with the kubelet";

const LONG_ABOUT: &str = "\
node-agent is the primary node agent that runs on each node, as the kubelet is. It runs the
pods described by PodSpecs (static pod manifests in staticPodPath) on a CRI container runtime,
keeps their containers running and healthy, reports the node's status and lease to the API
server (with --kubeconfig) or keeps it locally (standalone), and serves the kubelet's HTTPS API
(/healthz, /pods, /configz, /metrics, /checkpoint) with x509, bearer-token and anonymous
authentication and AlwaysAllow or Webhook authorization.

Settings come from the KubeletConfiguration file (--config), the drop-ins of --config-dir
(*.conf, merged in lexical order) and the kubelet flags below; a flag wins over the drop-ins,
which win over the file. `--help` lists every kubelet flag; `-h` shows the short form.";

/// `node-agent [--config FILE] [--config-dir DIR] [kubelet flags]`.
#[derive(Debug, clap::Parser)]
#[command(name = "node-agent", version = VERSION, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The KubeletConfiguration file to load (kubelet.config.k8s.io/v1beta1). Flags override
    /// its values. Without it the kubelet's command-line defaults apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A directory of drop-in configuration files (`*.conf`, lexical order) merged over
    /// --config; flags still win.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Every kubelet flag (`--root-dir`, `--kubeconfig`, `--hostname-override`, `--node-ip`,
    /// `--node-labels`, `--cert-dir`, `--lock-file`, `--exit-on-lock-contention`,
    /// `--container-runtime-endpoint`, `--feature-gates`, `--port`, ...).
    #[command(flatten)]
    pub kubelet: KubeletFlagArgs,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn kubelet_flags_parse_with_their_names() {
        let cli = Cli::try_parse_from([
            "node-agent",
            "--config",
            "/etc/kubelet.yaml",
            "--root-dir=/tmp/root",
            "--container-runtime-endpoint",
            "unix:///run/containerd/containerd.sock",
            "--exit-on-lock-contention",
            "--lock-file=/tmp/lock",
            "--feature-gates=ContainerCheckpoint=true",
        ])
        .unwrap();
        assert_eq!(cli.config.unwrap().to_str(), Some("/etc/kubelet.yaml"));
        let names: Vec<&str> = cli.kubelet.given.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "container-runtime-endpoint",
                "exit-on-lock-contention",
                "feature-gates",
                "lock-file",
                "root-dir"
            ]
        );
        let overrides = cli.kubelet.to_overrides().unwrap();
        assert_ne!(overrides, node_config::FlagOverrides::new());
    }

    #[test]
    fn unknown_flags_and_bad_values_are_rejected() {
        let err = Cli::try_parse_from(["node-agent", "--no-such-flag"]).unwrap_err();
        assert!(err.to_string().contains("--no-such-flag"), "{err}");
        let cli = Cli::try_parse_from(["node-agent", "--port=http"]).unwrap();
        let err = cli.kubelet.to_overrides().unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn long_help_lists_the_kubelet_flags() {
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--config <FILE>",
            "--config-dir <DIR>",
            "--root-dir",
            "--kubeconfig",
            "--hostname-override",
            "--node-ip",
            "--node-labels",
            "--cert-dir",
            "--lock-file",
            "--exit-on-lock-contention",
            "--container-runtime-endpoint",
            "--feature-gates",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }

    /// The agent builds the 1.35 API types (`k8s-openapi` feature `v1_35` in Cargo.toml), so
    /// fields newer than 1.33 in a 1.35 manifest reach the agent instead of being dropped by
    /// the decoder (`hostnameOverride` 1.34, `workloadRef` 1.35, container
    /// `restartPolicyRules` 1.34). This test does not compile with older types.
    #[test]
    fn manifests_decode_with_the_1_35_api_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yaml");
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  hostnameOverride: web-1\n  containers:\n  - name: c\n    image: busybox\n    restartPolicy: Always\n    restartPolicyRules:\n    - action: Restart\n      exitCodes: {operator: In, values: [42]}\n";
        let pod = node_runtime::parse_manifest(&path, text, "node-a")
            .unwrap()
            .pod;
        let spec = pod.spec.clone().unwrap();
        assert_eq!(spec.hostname_override.as_deref(), Some("web-1"));
        let rules = spec.containers[0].restart_policy_rules.as_ref().unwrap();
        assert_eq!(rules[0].action, "Restart");
    }
}
