#!/usr/bin/env bash
# Runs node-agent standalone on this machine, in the foreground, with the example static pod.
#
#   bash scripts/run-agent.sh [AGENT FLAGS...]        # as root, or through sudo
#
# What it does, each step skipped when already done (safe to re-run, also after a killed run):
#   1. installs containerd, runc, busybox-static and the CNI plugins when missing
#      (scripts/containerd.sh install);
#   2. builds node-agent (release: the binary you would deploy; NODE_AGENT_PROFILE=debug for a debug
#      build) unless NODE_AGENT_BIN names a binary to run;
#   3. starts a private containerd under ./.node-agent/cri (reused when it is already running) with
#      local busybox and pause images and a pod network of its own (CNI bridge, host-local, portmap:
#      pods without hostNetwork get an IP); nothing touches a system containerd;
#   4. runs node-agent --config examples/agent/standalone.yaml with --root-dir ./.node-agent/root
#      (state, pod directories, the self-signed serving certificate in ./.node-agent/root/pki);
#      the pod in examples/manifests/hello.yaml starts within seconds.
# Extra agent flags: the script's arguments, and NODE_AGENT_ARGS (split on spaces), e.g.
#   NODE_AGENT_ARGS="--v=4" bash scripts/run-agent.sh --hostname-override=dev1
# Stop with Ctrl-C (or SIGTERM to this script): the agent gets the signal and exits, then the pod's
# containers and the private containerd are stopped. ./.node-agent/root is kept for the next run;
# remove ./.node-agent to start from scratch.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly repo
readonly work="$repo/.node-agent"
readonly root_dir="$work/root"
readonly config="$repo/examples/agent/standalone.yaml"
readonly manifest="$repo/examples/manifests/hello.yaml"
readonly profile="${NODE_AGENT_PROFILE:-release}"
# The ports in standalone.yaml; flags in the arguments may move them (see below).
https_port=10250
healthz_port=10248

log() { echo "run-agent.sh: $*" >&2; }
die() { echo "run-agent.sh: $*" >&2; exit 1; }

case "$profile" in release | debug) ;; *) die "NODE_AGENT_PROFILE must be release or debug, not '$profile'" ;; esac

# --- the agent's flags ---------------------------------------------------------------------------

# shellcheck disable=SC2206 # NODE_AGENT_ARGS is split on spaces on purpose
extra=(${NODE_AGENT_ARGS:-} "$@")

# The node name: --hostname-override if given, else the host name, lower-cased (as the kubelet does).
node_name=$(hostname | tr '[:upper:]' '[:lower:]')
prev=""
for a in "${extra[@]}"; do
  case "$prev" in
    --hostname-override) node_name=$(tr '[:upper:]' '[:lower:]' <<<"$a") ;;
    --port) https_port=$a ;;
    --healthz-port) healthz_port=$a ;;
  esac
  case "$a" in
    --hostname-override=*) node_name=$(tr '[:upper:]' '[:lower:]' <<<"${a#*=}") ;;
    --port=*) https_port=${a#*=} ;;
    --healthz-port=*) healthz_port=${a#*=} ;;
  esac
  prev=$a
done

# --- 1. build as the calling user, then become root ----------------------------------------------

# Built before switching to root, so target/ keeps its owner. Release is the default: it is what a
# node runs and what scripts/footprint.sh measures, and both scripts then share one build.
if [ -n "${NODE_AGENT_BIN:-}" ]; then
  bin=$(realpath -- "$NODE_AGENT_BIN")
  [ -x "$bin" ] || die "NODE_AGENT_BIN=$NODE_AGENT_BIN is not an executable file"
else
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then re-run"
  log "building node-agent ($profile)"
  flag=(); [ "$profile" = release ] && flag=(--release)
  (cd "$repo" && cargo build -q -p node-agent "${flag[@]}") || die "cargo build -p node-agent ${flag[*]} failed"
  bin="${CARGO_TARGET_DIR:-$repo/target}/$profile/node-agent"
  [ -x "$bin" ] || die "the build did not produce $bin"
fi

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "node-agent runs pods and must run as root (sudo not found)"
  log "re-running as root through sudo"
  exec sudo env NODE_AGENT_BIN="$bin" NODE_AGENT_ARGS="${NODE_AGENT_ARGS:-}" bash "$0" "$@"
fi

# --- 2. checks: one agent at a time, ports free ---------------------------------------------------

mkdir -p "$work"
chmod 0700 "$work"
agent_pid_file="$work/agent.pid"
if [ -f "$agent_pid_file" ]; then
  old=$(cat "$agent_pid_file" 2>/dev/null || true)
  if [[ "$old" =~ ^[0-9]+$ ]] && [ -r "/proc/$old/cmdline" ] \
    && tr '\0' ' ' <"/proc/$old/cmdline" | grep -qF -- "--root-dir $root_dir "; then
    die "node-agent is already running from this checkout (pid $old); stop it first (kill $old)"
  fi
  rm -f "$agent_pid_file"
fi
if command -v ss >/dev/null; then
  for p in "$https_port" "$healthz_port"; do
    if [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
      die "port $p is in use (a kubelet or another node-agent?): $(ss -Hltnp "sport = :$p" 2>/dev/null | head -n1)"
    fi
  done
fi

# --- 3. containerd --------------------------------------------------------------------------------

bash "$repo/scripts/containerd.sh" install
if ! command -v curl >/dev/null; then # for the healthz check below
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null
fi
# A unix socket path has room for about 100 bytes: a deep checkout gets its containerd under /run.
cri_dir="$work/cri"
if [ "${#cri_dir}" -gt 80 ]; then
  cri_dir="/run/node-agent-cri.$(printf '%s' "$repo" | sha256sum | cut -c1-12)"
  log "$work/cri is too long a path for a socket; containerd lives in $cri_dir"
fi
readonly cri_dir
readonly socket="$cri_dir/containerd.sock"

# --- 4. the agent, and cleanup on the way out -----------------------------------------------------

agent_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$agent_pid" 2>/dev/null; then
      log "node-agent (pid $agent_pid) did not exit within 30 s of SIGTERM; killing it"
      kill -KILL "$agent_pid" 2>/dev/null || true
    fi
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -f "$agent_pid_file"
  log "stopping the pod containers and the private containerd ($cri_dir)"
  bash "$repo/scripts/containerd.sh" stop "$cri_dir" || rc=1
  # Volumes the agent mounted under its root dir (none for hello.yaml; a memory-backed emptyDir
  # would be a tmpfs), so the next run, or `rm -rf .node-agent`, finds plain directories.
  local m
  while read -r m; do
    [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"; }
  done < <(awk -v d="$root_dir/" 'index($5, d) == 1 { print length($5) "\t" $5 }' /proc/self/mountinfo | sort -rn | cut -f2-)
  log "done (agent exit status $agent_rc; state kept in $root_dir)"
  exit "$rc"
}
agent_rc="n/a"
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
CONTAINERD_OWNER_PID=$$ bash "$repo/scripts/containerd.sh" start "$cri_dir"

# One signal, forwarded once: the agent runs in its own session, so Ctrl-C on the terminal reaches
# only this script, which passes SIGTERM on (a second signal would make a kubelet-style agent exit
# without its graceful shutdown).
forward() { log "$1: stopping node-agent (pid $agent_pid)"; kill -TERM "$agent_pid" 2>/dev/null || true; }
trap 'forward SIGINT' INT
trap 'forward SIGTERM' TERM
trap 'forward SIGHUP' HUP

mkdir -p "$root_dir"
chmod 0700 "$root_dir"
args=(
  --config "$config"
  --root-dir "$root_dir"
  --cert-dir "$root_dir/pki"
  --lock-file "$root_dir/kubelet.lock"
  --container-runtime-endpoint "unix://$socket"
  "${extra[@]}"
)
log "starting: $bin ${args[*]}"
setsid "$bin" "${args[@]}" </dev/null &
agent_pid=$!
echo "$agent_pid" >"$agent_pid_file"

# Tell the user where to look once healthz answers (in the background: the agent's log goes on).
(
  for _ in $(seq 1 120); do
    kill -0 "$agent_pid" 2>/dev/null || exit 0
    if [ "$(curl -s -m 2 "http://127.0.0.1:$healthz_port/healthz" 2>/dev/null)" = ok ]; then
      pod=$(awk '/^metadata:/ { m = 1; next } m && /^  name:/ { print $2; exit }' "$manifest")
      container=$(awk '/^  containers:/ { c = 1; next } c && /- name:/ { print $NF; exit }' "$manifest")
      cat >&2 <<EOF

============================================================================================
node-agent is up (pid $agent_pid), node "$node_name", standalone, pods from examples/manifests/
  health:      curl -s http://127.0.0.1:$healthz_port/healthz
  pods:        curl -sk https://127.0.0.1:$https_port/pods
  checkpoint:  curl -sk -X POST https://127.0.0.1:$https_port/checkpoint/default/$pod-$node_name/$container
               (containerd 1.6 answers "not implemented"; archives land in $root_dir/checkpoints)
  containers:  ctr --address $socket -n k8s.io tasks ls
  pod logs:    /var/log/pods/default_$pod-${node_name}_*/$container/
  stop:        Ctrl-C here, or: kill $$
============================================================================================

EOF
      exit 0
    fi
    sleep 0.5
  done
  log "healthz did not answer on 127.0.0.1:$healthz_port within 60 s; see the log above"
) &

# `wait` returns early when a trapped signal arrives; keep waiting until the agent is gone.
while kill -0 "$agent_pid" 2>/dev/null; do
  set +e
  wait "$agent_pid"
  status=$?
  set -e
  if ! kill -0 "$agent_pid" 2>/dev/null; then agent_rc=$status; fi
done
agent_pid_done=$agent_pid
agent_pid=""
log "node-agent (pid $agent_pid_done) exited with status $agent_rc"
if [ "$agent_rc" != 0 ] && [ "$agent_rc" != 130 ] && [ "$agent_rc" != 143 ]; then
  exit "$agent_rc"
fi
