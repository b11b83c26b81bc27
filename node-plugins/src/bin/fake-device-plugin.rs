//! `fake-device-plugin`: the example device plugin of `node-plugins` as a process.
//!
//! ```text
//! fake-device-plugin --kubelet-socket /var/lib/kubelet/device-plugins/kubelet.sock \
//!     [--resource example.com/fake] [--devices 2] [--socket-name fake.sock] \
//!     [--health-file PATH] [--pre-start-required] [--preferred-allocation]
//! ```
//! Exits non-zero with the kubelet's message when registration is refused.

use std::process::ExitCode;

use node_plugins::fake_plugin::{FakePluginConfig, run};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match FakePluginConfig::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("fake-device-plugin: {message}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fake-device-plugin: {}", node_util::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}
