#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine (run as root, or with sudo available):
#   bash scripts/test.sh
# Installs what the tests need (scripts/apt-packages.txt), then builds once and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# 1. System packages the tests need, one per line in scripts/apt-packages.txt.
mapfile -t packages < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. A private containerd for the runtime tests (scripts/containerd.sh): containerd, runc and
#    busybox-static from the distribution, its own root, state and socket under a temporary
#    directory, two locally built images imported (no registry). The tests read NODE_TEST_CRI_ENDPOINT,
#    NODE_TEST_IMAGE and NODE_TEST_PAUSE_IMAGE. Set NODE_TEST_CRI_ENDPOINT yourself to use another
#    runtime instead. Leftovers of killed runs are removed first; this run's instance is stopped (its
#    containers killed, mounts and directory removed) on exit, whether the tests pass or not.
if [ -z "${NODE_TEST_CRI_ENDPOINT:-}" ]; then
  echo "== containerd"
  $SUDO bash scripts/containerd.sh install
  $SUDO bash scripts/containerd.sh gc
  cri_dir=$(mktemp -d /tmp/node-test-cri.XXXXXX)
  trap '$SUDO bash scripts/containerd.sh stop "$cri_dir"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  $SUDO env CONTAINERD_OWNER_PID=$$ bash scripts/containerd.sh start "$cri_dir"
  eval "$(bash scripts/containerd.sh env "$cri_dir")"
fi

# 3. Python grpcio and grpcio-tools from PyPI in a virtualenv under target/, for the tests that
#    talk to the agent's gRPC sockets with a real non-Rust gRPC client
#    (bins/node-agent/tests/grpc_clients.rs). Installed once; later runs only check the import.
venv="$PWD/target/test-venv"
#    Also websocket-client (the WebSocket client of the exec/attach/port-forward tests) and
#    prometheus_client (its text parser reads /metrics/resource in the stats tests).
if ! "$venv/bin/python3" -c 'import grpc, grpc_tools, websocket, prometheus_client' 2>/dev/null; then
  echo "== python grpcio, websocket-client, prometheus_client"
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check grpcio grpcio-tools \
    websocket-client prometheus_client
fi
export NODE_TEST_PYTHON="$venv/bin/python3"

# 4. No test double in a shipped binary: the normal (non-dev) dependency trees of node-agent and
#    nodectl must enable none of the test-double features (node-runtime and node-checkpoint's
#    `test-support`, node-heartbeat's `test-server`); dev-dependencies turn them on for tests only.
#    README "Architecture" has the `nm` check of a release binary.
echo "== no test doubles in the binaries"
for bin in node-agent nodectl; do
  if cargo tree --locked -p "$bin" -e no-dev -f '{p} {f}' | grep -E 'test-support|test-server'; then
    echo "$bin links a test double (above)" >&2
    exit 1
  fi
done

# 5. Build every target once, then run the tests (unit, integration, doc).
echo "== cargo build"
cargo build --workspace --all-targets --locked
echo "== cargo test"
cargo test --workspace --locked

# 6. The embedding proof (examples/embedder; README "Embedding the crates"): a crate outside the
#    workspace, with its own Cargo.lock, that uses the library crates the way a user's agent
#    does. Its test runs its binary against this run's containerd and node-heartbeat's test API
#    server. It builds into the workspace's target dir: the registry crates whose features and
#    dependencies match the workspace build's are reused (about 240 of 300 units; path crates,
#    the patched h2 and whatever depends on them are built again): 40 s instead of 73 s with a
#    target dir of its own, measured on 2 cores right after the workspace build.
echo "== embedder"
cargo test --manifest-path examples/embedder/Cargo.toml --locked --target-dir "${CARGO_TARGET_DIR:-$PWD/target}"
