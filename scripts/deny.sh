#!/usr/bin/env bash
# Dependency policy check (deny.toml): licenses, banned crates, sources, for the workspace and
# for the fuzz workspace (fuzz/Cargo.toml, its own Cargo.lock):
#   bash scripts/deny.sh
# Installs the pinned cargo-deny when it is missing or another version (`cargo install
# --locked`, once per machine: 3 minutes on 2 idle cores, 6 on busy ones), downloads the crates
# both lock files name from crates.io (`cargo fetch --locked`: cargo-deny reads every crate's
# manifest through `cargo metadata`, which needs them, Windows-only ones included), then checks
# with --offline: no network, and no advisory database (deny.toml says why advisories are not
# checked).
# The checks take about 2 seconds; any error fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

# 0.20.2 builds with rustc >= 1.88 and reads Cargo.lock version 4.
CARGO_DENY_VERSION=0.20.2

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "== installing cargo-deny $CARGO_DENY_VERSION"
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
fi

cargo fetch --locked
cargo fetch --locked --manifest-path fuzz/Cargo.toml

# The root run allows license-exception-not-encountered: deny.toml's libfuzzer-sys exception
# only matches in the fuzz workspace.
cargo deny --offline --locked check -A license-exception-not-encountered licenses bans sources
cargo deny --manifest-path fuzz/Cargo.toml --config deny.toml --offline --locked \
  check licenses bans sources
