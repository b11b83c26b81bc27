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

# 2. Build every target once, then run the tests (unit, integration, doc).
echo "== cargo build"
cargo build --workspace --all-targets --locked
echo "== cargo test"
cargo test --workspace --locked
