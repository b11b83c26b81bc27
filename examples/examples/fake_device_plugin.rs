//! A device plugin advertising N fake devices of `example.com/fake` to a kubelet (or to
//! node-agent), health toggled by a file. Copy `node_plugins::fake_plugin` to write your own.
//!
//! ```text
//! cargo run -p examples --example fake_device_plugin -- \
//!     --kubelet-socket /var/lib/kubelet/device-plugins/kubelet.sock --devices 4 \
//!     --health-file /tmp/fake-health
//! echo fake-1 > /tmp/fake-health   # fake-1 turns Unhealthy: allocatable drops by one
//! rm /tmp/fake-health              # all healthy again
//! ```
//! It serves `DevicePlugin` on `<device-plugins dir>/fake.sock`, registers with `v1beta1`,
//! and registers again whenever the kubelet re-creates `kubelet.sock`.

use anyhow::Context;
use node_plugins::fake_plugin::{FakePluginConfig, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = FakePluginConfig::from_args(std::env::args().skip(1))
        .map_err(anyhow::Error::msg)
        .context("usage: fake_device_plugin --kubelet-socket PATH [--devices N] [--health-file PATH] [--resource NAME]")?;
    run(config)
        .await
        .map_err(|e| anyhow::anyhow!(node_util::error_chain(&e)))
}
