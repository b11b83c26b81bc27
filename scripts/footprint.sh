#!/usr/bin/env bash
# Measures node-agent's memory and CPU footprint, standalone, with 0 and then N static pods.
#
#   bash scripts/footprint.sh                 # as root (or through sudo); 3 to 8 minutes
#   DURATION=10 bash scripts/footprint.sh     # a quick smoke run
#
# Steps: builds node-agent (release), starts a private containerd, runs the agent with
# examples/agent/standalone.yaml plus a drop-in that points staticPodPath at an empty temporary
# directory, waits until /healthz answers, lets it settle (SETTLE s), and samples the agent and
# containerd every second for DURATION s with public tools:
#   pidstat -h -r -u -p PIDS 1 DURATION      (sysstat: RSS and %CPU per second)
#   /proc/PID/status VmRSS, VmHWM           (RSS per second; peak RSS of the process's life)
#   /proc/PID/stat utime+stime              (CPU seconds used over the window: cores = delta / s)
#   ps -o rss=,cputime= -p PID              (cross-check, at the start and end of each window)
# Then it writes PODS (default 30) busybox `sleep` pod manifests into that directory, waits until
# every one runs (crictl when installed, else the RUNNING tasks in `ctr -n k8s.io tasks ls`), settles
# and samples again. containerd, measured in the same run, is the reference; the shims (one per
# pod) are listed too. Everything is removed on exit, also on Ctrl-C.
#
# POD_KIND=probed makes them pods as users write them: their own network namespace (the private
# containerd's CNI bridge), a busybox httpd each, an httpGet readiness probe and a tcpSocket liveness
# probe (period 10 s); the agent then runs 60 probe workers. Default: POD_KIND=sleep (host network).
# POD_KIND=logging makes them write a 100-byte log line ten times a second (1 KB/s each) with
# containerLogMaxSize 64Ki and containerLogMaxFiles 3, so the agent's log rotation renames,
# compresses and reopens every pod's log about once a minute; a metrics-server-like scraper reads
# /metrics/resource and /stats/summary every 15 s during the window.
#
# Env: DURATION (s, default 60), PODS (default 30), SETTLE (s, default 10), POD_KIND (sleep|probed|logging),
#      NODE_AGENT_BIN (a binary to measure instead of building one),
#      AGENT_LOG (a file to keep the agent's log in; by default it is removed with the rest).
# Targets (from the project's design notes): node-agent < 25 MiB RSS and < 0.01 core when idle.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly repo
readonly DURATION="${DURATION:-60}"
readonly PODS="${PODS:-30}"
readonly SETTLE="${SETTLE:-10}"
readonly POD_KIND="${POD_KIND:-sleep}"
case "$POD_KIND" in sleep|probed|logging) ;; *) echo "footprint.sh: POD_KIND must be sleep, probed or logging, not '$POD_KIND'" >&2; exit 1 ;; esac
readonly TARGET_RSS_MIB=25
readonly TARGET_IDLE_CORES=0.01
readonly IMAGE="docker.io/library/busybox:local"

log() { echo "footprint.sh: $*" >&2; }
die() { echo "footprint.sh: $*" >&2; exit 1; }

for v in DURATION PODS SETTLE; do
  if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then die "$v must be a positive whole number, not '${!v}'"; fi
done

# --- build (as the calling user), then root -------------------------------------------------------

if [ -n "${NODE_AGENT_BIN:-}" ]; then
  bin=$(realpath -- "$NODE_AGENT_BIN")
  [ -x "$bin" ] || die "NODE_AGENT_BIN=$NODE_AGENT_BIN is not an executable file"
else
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup, then re-run"
  log "building node-agent (release)"
  (cd "$repo" && cargo build -q -p node-agent --release) || die "cargo build -p node-agent --release failed"
  bin="${CARGO_TARGET_DIR:-$repo/target}/release/node-agent"
  [ -x "$bin" ] || die "the build did not produce $bin"
fi
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "must run as root (sudo not found)"
  exec sudo env NODE_AGENT_BIN="$bin" DURATION="$DURATION" PODS="$PODS" SETTLE="$SETTLE" POD_KIND="$POD_KIND" \
    AGENT_LOG="${AGENT_LOG:+$(realpath -m -- "$AGENT_LOG")}" bash "$0" "$@"
fi

# --- tools ----------------------------------------------------------------------------------------

missing=()
command -v pidstat >/dev/null || missing+=(sysstat)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$repo/scripts/containerd.sh" install
for p in 10250 10248; do
  if command -v ss >/dev/null && [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
    die "port $p is in use (a kubelet or another node-agent?); stop it first"
  fi
done

# --- setup and cleanup ----------------------------------------------------------------------------

tmp=$(mktemp -d /tmp/node-agent-footprint.XXXXXX)
readonly tmp
readonly cri="$tmp/cri" root="$tmp/root" manifests="$tmp/manifests" dropins="$tmp/config.d"
readonly socket="$cri/containerd.sock"
agent_pid=""
sampler_pids=()

cleanup() {
  local rc=$? p m
  trap - EXIT INT TERM HUP
  for p in "${sampler_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  if [ -n "${AGENT_LOG:-}" ] && [ -f "$tmp/agent.log" ]; then cp "$tmp/agent.log" "$AGENT_LOG" || true; fi
  if [ -d "$cri" ]; then bash "$repo/scripts/containerd.sh" stop "$cri" || rc=1; fi
  while read -r m; do
    [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
  done < <(awk -v d="$tmp/" 'index($5, d) == 1 { print length($5) "\t" $5 }' /proc/self/mountinfo | sort -rn | cut -f2-)
  rm -rf --one-file-system "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

mkdir -p "$root" "$manifests" "$dropins"
chmod 0700 "$root"
# A drop-in, as an operator would add one: the pods come from our own directory, and their logs go
# below $tmp (removed at the end) instead of /var/log/pods.
cat >"$dropins/50-footprint.conf" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: $manifests
podLogsDir: $tmp/pod-logs
EOF
if [ "$POD_KIND" = logging ]; then
  cat >>"$dropins/50-footprint.conf" <<EOF
containerLogMaxSize: 64Ki
containerLogMaxFiles: 3
EOF
fi

CONTAINERD_OWNER_PID=$$ bash "$repo/scripts/containerd.sh" start "$cri"
containerd_pid=$(cat "$cri/containerd.pid")

setsid "$bin" --config "$repo/examples/agent/standalone.yaml" --config-dir "$dropins" \
  --root-dir "$root" --cert-dir "$root/pki" --lock-file "$root/kubelet.lock" \
  --container-runtime-endpoint "unix://$socket" </dev/null >"$tmp/agent.log" 2>&1 &
agent_pid=$!

agent_alive() {
  kill -0 "$agent_pid" 2>/dev/null || { tail -n 30 "$tmp/agent.log" >&2; die "node-agent exited (log above)"; }
}
t0=$(date +%s%N)
until [ "$(curl -s -m 2 http://127.0.0.1:10248/healthz 2>/dev/null)" = ok ]; do
  agent_alive
  [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 60 ] || { tail -n 30 "$tmp/agent.log" >&2; die "healthz did not answer within 60 s"; }
  sleep 0.1
done
log "node-agent (pid $agent_pid) healthy after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# --- measuring ------------------------------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of PID, in clock ticks
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # after "comm) ": state is field 1; utime and stime are fields 12 and 13
  awk '{ print $12 + $13 }' <<<"$stat"
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
shim_pids() {
  local f pid argv=()
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    { mapfile -d '' -t argv <"$f"; } 2>/dev/null || continue
    [[ "${argv[0]:-}" == *containerd-shim* ]] || continue
    [[ " ${argv[*]} " == *" $socket "* ]] && echo "$pid"
  done
  return 0
}

# sample LABEL: one window of DURATION s over the agent and containerd (and the shims' CPU time).
# Writes $tmp/LABEL.{pidstat,vmrss,summary}.
sample() {
  local out="$tmp/$1" a0 c0 s0 a1 c1 s1 shims p ps0 ps1
  mapfile -t shims < <(shim_pids)
  a0=$(cpu_ticks "$agent_pid"); c0=$(cpu_ticks "$containerd_pid")
  s0=0; for p in "${shims[@]}"; do s0=$(( s0 + $(cpu_ticks "$p" || echo 0) )); done
  ps0=$(ps -o rss=,cputime= -p "$agent_pid" | xargs)
  local host0 host1
  host0=$(head -n1 /proc/stat)
  LC_ALL=C pidstat -h -r -u -p "$agent_pid,$containerd_pid" 1 "$DURATION" >"$out.pidstat" 2>&1 &
  sampler_pids=("$!")
  (
    for _ in $(seq 1 "$DURATION"); do
      echo "agent $(status_kib "$agent_pid" VmRSS) containerd $(status_kib "$containerd_pid" VmRSS)"
      sleep 1
    done
  ) >"$out.vmrss" &
  sampler_pids+=("$!")
  wait "${sampler_pids[@]}" || true
  sampler_pids=()
  agent_alive
  a1=$(cpu_ticks "$agent_pid"); c1=$(cpu_ticks "$containerd_pid")
  s1=0; for p in "${shims[@]}"; do s1=$(( s1 + $(cpu_ticks "$p" || echo 0) )); done
  ps1=$(ps -o rss=,cputime= -p "$agent_pid" | xargs)
  host1=$(head -n1 /proc/stat)
  local shim_rss=0 shim_pss=0
  for p in "${shims[@]}"; do
    shim_rss=$(( shim_rss + $(status_kib "$p" VmRSS || echo 0) ))
    # PSS splits the pages the shims share (their binary) among them: the memory they really add.
    shim_pss=$(( shim_pss + $(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
  done
  {
    echo "agent_ticks $(( a1 - a0 ))"
    echo "containerd_ticks $(( c1 - c0 ))"
    echo "shims_ticks $(( s1 - s0 ))"
    echo "shims_count ${#shims[@]}"
    echo "shims_rss_kib $shim_rss"
    echo "shims_pss_kib $shim_pss"
    echo "agent_hwm_kib $(status_kib "$agent_pid" VmHWM)"
    echo "containerd_hwm_kib $(status_kib "$containerd_pid" VmHWM)"
    echo "ps_start $ps0"
    echo "ps_end $ps1"
    # How busy the whole machine was (all CPUs, all processes): 1 - (idle + iowait) / total.
    awk -v a="$host0" -v b="$host1" 'BEGIN {
      split(a, x, " "); split(b, y, " "); for (i = 2; i <= 9; i++) t += y[i] - x[i]
      idle = (y[5] - x[5]) + (y[6] - x[6]); printf "host_busy %.3f\n", (t > 0 ? 1 - idle / t : 0) }'
  } >"$out.summary"
}

# One table row per process: RSS mean/max from pidstat (MiB), VmRSS mean/max from /proc, VmHWM,
# CPU cores: pidstat's mean %CPU / 100, and the /proc tick delta / window length.
row() {
  local who=$2 pid=$3 pods=$4 out="$tmp/$1"
  awk -v pid="$pid" -v who="$who" -v pods="$pods" -v dur="$DURATION" -v hz="$clk_tck" \
      -v vmfile="$out.vmrss" -v sumfile="$out.summary" '
    /^#/ { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
    col["PID"] && $col["PID"] == pid { n++; r = $col["RSS"] / 1024; rs += r; if (r > rm) rm = r; cs += $col["%CPU"] }
    END {
      while ((getline line < vmfile) > 0) {
        split(line, f, " ")
        v = (who == "node-agent" ? f[2] : f[4]) / 1024
        if (v > 0) { vn++; vs += v; if (v > vm) vm = v }
      }
      while ((getline line < sumfile) > 0) { split(line, f, " "); s[f[1]] = f[2] }
      key = (who == "node-agent" ? "agent" : "containerd")
      printf "| %-10s | %4d | %8.1f | %7.1f | %10.1f | %9.1f | %5.1f | %11.4f | %9.4f |\n", \
        who, pods, (n ? rs / n : 0), rm, (vn ? vs / vn : 0), vm, s[key "_hwm_kib"] / 1024, \
        (n ? cs / n / 100 : 0), s[key "_ticks"] / hz / dur
    }' "$out.pidstat"
}
shim_row() {
  local pods=$2 out="$tmp/$1"
  awk -v hz="$clk_tck" -v dur="$DURATION" -v pods="$pods" '
    { s[$1] = $2 }
    END { printf "| %-10s | %4d | %8s | %7s | %10.1f | %9s | %5s | %11s | %9.4f |\n", \
      s["shims_count"] " shims", pods, "", "", s["shims_rss_kib"] / 1024, "", "", "", s["shims_ticks"] / hz / dur }' "$out.summary"
}

# --- phase 1: no pods -----------------------------------------------------------------------------

log "settling ${SETTLE} s, then sampling ${DURATION} s with 0 pods"
sleep "$SETTLE"
agent_alive
sample idle

# --- phase 2: PODS static pods --------------------------------------------------------------------

log "writing $PODS static pod manifests to $manifests"
for i in $(seq -w 1 "$PODS"); do
  if [ "$POD_KIND" = probed ]; then
    cat >"$tmp/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: sleep-$i
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleep
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    command: ["/bin/httpd", "-f", "-p", "8080", "-h", "/etc"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /passwd, port: http}
      periodSeconds: 10
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 10
    resources:
      limits:
        cpu: 10m
        memory: 16Mi
EOF
    mv "$tmp/pod.yaml" "$manifests/sleep-$i.yaml"
    continue
  fi
  # Host-network busybox pods: sleeping, or (logging) writing a 100-byte line ten times a second.
  command='["/bin/sleep", "86400"]'
  if [ "$POD_KIND" = logging ]; then
    command="[\"/bin/sh\", \"-c\", \"l=\$(printf '%090d' 0); while true; do echo \\\"pod $i \$l\\\"; usleep 100000; done\"]"
  fi
  cat >"$tmp/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: sleep-$i
  namespace: default
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleep
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    command: $command
    resources:
      limits:
        cpu: 10m
        memory: 16Mi
EOF
  mv "$tmp/pod.yaml" "$manifests/sleep-$i.yaml" # whole files only: the agent never sees half of one
done

running_containers() { # containers (not sandboxes) of our pods that are running
  if command -v crictl >/dev/null; then
    crictl --runtime-endpoint "unix://$socket" ps --state Running -q 2>/dev/null | wc -l
  else
    # Every pod is a sandbox task plus a container task; the image tells them apart.
    local running
    running=$(ctr --address "$socket" -n k8s.io tasks ls 2>/dev/null | awk '$3 == "RUNNING" { print $1 }')
    local ids
    ids=$(ctr --address "$socket" -n k8s.io containers ls 2>/dev/null | awk -v img="$IMAGE" '$2 == img { print $1 }')
    comm -12 <(sort <<<"$running") <(sort <<<"$ids") | grep -c . || true
  fi
}
t0=$(date +%s)
while :; do
  n=$(running_containers)
  [ "$n" -ge "$PODS" ] && break
  agent_alive
  if [ $(( $(date +%s) - t0 )) -ge 300 ]; then
    tail -n 30 "$tmp/agent.log" >&2
    die "only $n of $PODS pod containers running after 300 s"
  fi
  sleep 1
done
log "$PODS pods running after $(( $(date +%s) - t0 )) s; settling ${SETTLE} s, then sampling ${DURATION} s"
sleep "$SETTLE"
agent_alive
scraper=""
if [ "$POD_KIND" = logging ]; then
  # As metrics-server (resource metrics) and a monitoring stack (summary) would, every 15 s.
  (
    while :; do
      curl -sk -m 10 -o /dev/null https://127.0.0.1:10250/metrics/resource || true
      curl -sk -m 10 -o /dev/null https://127.0.0.1:10250/stats/summary || true
      sleep 15
    done
  ) &
  scraper=$!
fi
sample busy
if [ -n "$scraper" ]; then
  kill "$scraper" 2>/dev/null || true
  wait "$scraper" 2>/dev/null || true
  log "log rotation: $(find "$tmp/pod-logs" -name '*.gz' | wc -l) compressed rotated files, $(find "$tmp/pod-logs" -name '*.log.2*' ! -name '*.gz' | wc -l) uncompressed, $(find "$tmp/pod-logs" -name '*.log' | wc -l) live logs"
fi

# --- report ---------------------------------------------------------------------------------------

agent_version=$("$bin" --version 2>/dev/null | head -n1 || echo "node-agent")
cat <<EOF

node-agent footprint, $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)
agent: $agent_version ($bin); containerd $(containerd --version | awk '{ print $3 }'), $(cat "$cri/snapshotter") snapshotter
load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); window: $DURATION s per phase after ${SETTLE} s settling
command: DURATION=$DURATION PODS=$PODS SETTLE=$SETTLE POD_KIND=$POD_KIND bash scripts/footprint.sh

RSS and VmRSS in MiB sampled every second (pidstat / /proc/PID/status); VmHWM: peak RSS since start;
CPU in cores: pidstat's mean %CPU / 100, and (utime + stime) ticks over the window / its length.

| process    | pods | RSS mean | RSS max | VmRSS mean | VmRSS max | VmHWM | CPU pidstat | CPU /proc |
|------------|------|----------|---------|------------|-----------|-------|-------------|-----------|
EOF
row idle node-agent "$agent_pid" 0
row idle containerd "$containerd_pid" 0
row busy node-agent "$agent_pid" "$PODS"
row busy containerd "$containerd_pid" "$PODS"
shim_row busy "$PODS"
awk '{ s[$1] = $2 } END { printf "\nThe shims row is the sum of their VmRSS at the end of the window; their PSS sum (shared pages\nsplit among them) is %.1f MiB.\n", s["shims_pss_kib"] / 1024 }' "$tmp/busy.summary"
echo "ps -o rss=,cputime= (agent): idle window $(awk '/^ps_start/ { $1 = ""; print }' "$tmp/idle.summary" | xargs) -> $(awk '/^ps_end/ { $1 = ""; print }' "$tmp/idle.summary" | xargs); $PODS-pod window $(awk '/^ps_start/ { $1 = ""; print }' "$tmp/busy.summary" | xargs) -> $(awk '/^ps_end/ { $1 = ""; print }' "$tmp/busy.summary" | xargs)"

# Same-run ratios (agent / containerd): they hold across machines better than absolute figures.
for w in idle busy; do
  awk -v hz="$clk_tck" -v dur="$DURATION" -v w="$w" -v pods="$( [ "$w" = idle ] && echo 0 || echo "$PODS")" '
    { s[$1] = $2 }
    END {
      printf "%2d pods: node-agent / containerd: VmHWM %.2f, CPU %.2f; machine busy %.0f%% of %s CPUs during the window\n", \
        pods, s["agent_hwm_kib"] / s["containerd_hwm_kib"], \
        (s["containerd_ticks"] > 0 ? s["agent_ticks"] / s["containerd_ticks"] : 0), s["host_busy"] * 100, ncpu
    }' ncpu="$(nproc)" "$tmp/$w.summary"
done

# Targets, for the idle agent with 0 pods and with PODS: RSS (pidstat max) and CPU (/proc ticks).
for w in idle busy; do
  awk -v hz="$clk_tck" -v dur="$DURATION" -v pid="$agent_pid" -v trss="$TARGET_RSS_MIB" -v tcpu="$TARGET_IDLE_CORES" \
      -v sumfile="$tmp/$w.summary" -v pods="$( [ "$w" = idle ] && echo 0 || echo "$PODS")" '
    /^#/ { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
    col["PID"] && $col["PID"] == pid { r = $col["RSS"] / 1024; if (r > rm) rm = r }
    END {
      while ((getline line < sumfile) > 0) { split(line, f, " "); s[f[1]] = f[2] }
      cpu = s["agent_ticks"] / hz / dur
      printf "%2d pods: target idle RSS < %d MiB: %.1f MiB max, %s\n", pods, trss, rm, (rm < trss ? "met" : "NOT met")
      printf "%2d pods: target idle CPU < %.2f core: %.4f core, %s\n", pods, tcpu, cpu, (cpu < tcpu ? "met" : "NOT met")
    }' "$tmp/$w.pidstat"
done
