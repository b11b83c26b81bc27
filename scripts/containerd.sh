#!/usr/bin/env bash
# A private containerd for the integration tests (run as root, or with sudo available).
#
#   bash scripts/containerd.sh install        # apt-get containerd, runc, busybox-static and the CNI
#                                             # plugins (containernetworking-plugins) when missing
#   bash scripts/containerd.sh start DIR      # containerd with root, state and socket under DIR,
#                                             # plus two local images imported into namespace k8s.io
#                                             # and a pod network of its own (bridge + host-local +
#                                             # portmap, a /24 and a bridge named after DIR)
#   bash scripts/containerd.sh env DIR        # prints the NODE_TEST_* exports for the tests
#   bash scripts/containerd.sh status DIR     # exit 0 when the instance under DIR answers
#   bash scripts/containerd.sh stop DIR       # kills every container, stops containerd, removes DIR
#   bash scripts/containerd.sh gc             # stops leftovers of killed runs (/tmp/node-test-cri.*)
#
# Nothing here touches a system containerd (/run/containerd/containerd.sock, /var/lib/containerd).
# One thing cannot be moved: containerd 1.6 puts its shim sockets in /run/containerd/s/<sha256>,
# named after our own socket path, so they never collide with a system instance; `stop` removes ours.
#
# Facts this relies on (shared/reference/environment.md):
# * the CRI plugin needs `restrict_oom_score_adj = true` here, or every sandbox fails with runc's
#   "can't get final child's PID from pipe: EOF";
# * no registry is reachable: the images are built locally (an OCI archive holding the distribution's
#   static busybox) and imported, and `sandbox_image` points at one of them;
# * CNI: Debian's containernetworking-plugins put the plugins in /usr/lib/cni; each instance gets its
#   own conflist (a bridge named after DIR, a /24 picked from DIR's hash in 10.128.0.0/9, host-local
#   IPAM state under DIR), so parallel runs never share addresses; `stop` deletes the bridge and
#   the portmap NAT chains that point into the /24 (left when containers die without CNI DEL). Without
#   the plugins, sandboxes must use the node's network namespace (and leave `hostname` empty).
set -euo pipefail

# The image names the tests use. Both are built from the same single layer.
readonly TEST_IMAGE="docker.io/library/busybox:local"
readonly PAUSE_IMAGE="docker.io/library/pause:local"
readonly CRI_NAMESPACE="k8s.io"
# Parent of the temporary directories scripts/test.sh creates; `gc` only looks there.
readonly GC_GLOB="/tmp/node-test-cri.*"
# Written into every DIR we create; `stop` refuses to delete a directory without it.
readonly MARKER="node-test-containerd"
# Debian's containernetworking-plugins.
readonly CNI_PLUGINS="/usr/lib/cni"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

die() { echo "containerd.sh: $*" >&2; exit 1; }
log() { echo "containerd.sh: $*" >&2; }

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- install ---------------------------------------------------------------------------------------

cmd_install() {
  local missing=() p
  for p in containerd runc busybox-static containernetworking-plugins iptables iproute2; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  command -v python3 >/dev/null || missing+=(python3)
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- helpers ---------------------------------------------------------------------------------------

# Absolute path, without requiring the directory to exist.
abspath() { realpath -m -- "$1"; }

sock_of() { echo "$1/containerd.sock"; }

ctr_() { # ctr_ DIR ARGS... : ctr against the private instance, namespace k8s.io
  local dir=$1; shift
  ctr --address "$(sock_of "$dir")" --namespace "$CRI_NAMESPACE" "$@"
}

# PID of the containerd serving DIR, only if that process really is it (the pid file may be stale
# and its PID reused by something else after a reboot or a killed run).
live_pid() {
  local dir=$1 pid
  [ -f "$dir/containerd.pid" ] || return 1
  pid=$(cat "$dir/containerd.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *"--config $dir/config.toml "* ]] || return 1
  echo "$pid"
}

# A process that has exited but waits to be reaped (a zombie) counts as gone: containerd is started
# in the background of a shell that has exited, so init reaps it, on its own schedule.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != "Z" ]
}

answers() { # the socket accepts a Version call
  timeout 5 ctr --address "$(sock_of "$1")" version >/dev/null 2>&1
}

# Overlay mounts work on the filesystem holding DIR (ext4 here; not on top of another overlay).
overlay_works() {
  local t=$1/.overlay-probe rc=1
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
    umount "$t/merged" && rc=0
  fi
  rm -rf "$t"
  return "$rc"
}

write_config() {
  local dir=$1 snapshotter=$2
  # stream_server_port = "0": a random port, so two instances (or a system containerd) never clash
  # on the default 10010. The runc state root is under DIR too, so `stop` can clean up with runc
  # itself even when containerd is already gone.
  cat >"$dir/config.toml" <<EOF
# $MARKER: private containerd for the node-agent tests, written by scripts/containerd.sh
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$dir/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    restrict_oom_score_adj = true
    # Pod-network sandboxes get a netns bind mount; keep it under DIR (default: /run/netns on the
    # host, where a failed sandbox would leave it behind).
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "$snapshotter"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "$dir/runc"
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$(cni_bin_dir "$dir")"
      conf_dir = "$dir/cni/net.d"
EOF
}

# Where the CNI plugins are: Debian's package, else DIR/cni/bin (empty: no pod network).
cni_bin_dir() {
  if [ -x "$CNI_PLUGINS/bridge" ] && [ -x "$CNI_PLUGINS/host-local" ] && [ -x "$CNI_PLUGINS/portmap" ]; then
    echo "$CNI_PLUGINS"
  else
    echo "$1/cni/bin"
  fi
}

# The pod network of the instance under DIR: `<bridge> <subnet>`, both derived from DIR's path, so
# two instances (parallel test runs) get different ones; a collision of the /24 (1 in 32768) would
# only make one run's pod network fail.
cni_network_of() {
  local h
  h=$(printf '%s' "$1" | sha256sum | cut -c1-8)
  local n=$((16#$h))
  echo "ntb${h} 10.$((128 + (n >> 8) % 128)).$((n % 256)).0/24"
}

# Writes DIR/cni/net.d/10-node-test.conflist (cniVersion 0.4.0: bridge with a gateway and host-local
# IPAM, then portmap for hostPorts) when the plugins are installed.
write_cni_config() {
  local dir=$1 bridge subnet
  [ "$(cni_bin_dir "$dir")" = "$CNI_PLUGINS" ] || { log "no CNI plugins in $CNI_PLUGINS: sandboxes need hostNetwork"; return 0; }
  read -r bridge subnet < <(cni_network_of "$dir")
  echo "$bridge $subnet" >"$dir/cni/network"
  cat >"$dir/cni/net.d/10-node-test.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "node-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
EOF
}

# --- the local OCI images --------------------------------------------------------------------------

# Writes DIR/images/local-images.tar: an OCI image layout (oci-layout, index.json, blobs/sha256/...)
# holding two images that share one layer: /bin/busybox from busybox-static, a /bin link for each of
# its applets, /etc/passwd and /etc/group with root and nobody, and the usual empty directories.
# Everything (tar headers, JSON) is written with fixed times and sorted keys: same busybox, same
# digests.
build_images() {
  local dir=$1 arch
  arch=$(dpkg --print-architecture)
  mkdir -p "$dir/images"
  /bin/busybox --list >"$dir/images/applets.txt"
  python3 - "$dir/images" "$arch" "$TEST_IMAGE" "$PAUSE_IMAGE" <<'PY'
import hashlib, io, json, sys, tarfile

out, arch, test_image, pause_image = sys.argv[1:5]
# Debian architecture names that differ from Go/OCI ones.
goarch = {"armhf": "arm", "armel": "arm", "i386": "386", "ppc64el": "ppc64le"}.get(arch, arch)
variant = {"armhf": "v7", "armel": "v5", "arm64": "v8"}.get(arch)
EPOCH = 0

def info(name, kind, mode, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = EPOCH, 0, 0, "root", "root"
    return ti

def layer_bytes():
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    applets = sorted({a.strip() for a in open(f"{out}/applets.txt") if a.strip()} - {"busybox"})
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnobody:x:65534:\n",
    }
    entries = []  # (name, tarinfo, data)
    for d, mode in [("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o555),
                    ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
                    ("var", 0o755), ("var/tmp", 0o1777)]:
        entries.append((d, info(d, tarfile.DIRTYPE, mode), None))
    entries.append(("bin/busybox", info("bin/busybox", tarfile.REGTYPE, 0o755, len(busybox)), busybox))
    for a in applets:
        entries.append((f"bin/{a}", info(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox"), None))
    entries.append(("usr/bin/env", info("usr/bin/env", tarfile.SYMTYPE, 0o777, link="/bin/busybox"), None))
    for name, data in files.items():
        entries.append((name, info(name, tarfile.REGTYPE, 0o644, len(data)), data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, ti, data in sorted(entries, key=lambda e: e[0]):
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()

blobs = {}
def blob(data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}

def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

layer = layer_bytes()
layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
platform = {"architecture": goarch, "os": "linux"}
if variant:
    platform["variant"] = variant
path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

def image(name, cmd):
    config = dict(platform)
    config.update({
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [path_env], "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "scripts/containerd.sh: busybox-static and its applet links"}],
    })
    config_desc = blob(canon(config), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    desc = blob(canon(manifest), "application/vnd.oci.image.manifest.v1+json")
    desc["platform"] = platform
    desc["annotations"] = {"io.containerd.image.name": name,
                           "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    return desc

# The sandbox ("pause") image only has to stay alive until it is killed: sleep as long as possible.
manifests = [image(test_image, ["/bin/sh"]),
             image(pause_image, ["/bin/busybox", "sleep", "2147483647"])]
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}

def add(tar, name, data, mode=0o644):
    tar.addfile(info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

with tarfile.open(f"{out}/local-images.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
    for d in ["blobs", "blobs/sha256"]:
        tar.addfile(info(d, tarfile.DIRTYPE, 0o755))
    for digest in sorted(blobs):
        add(tar, "blobs/sha256/" + digest.split(":", 1)[1], blobs[digest])
    add(tar, "index.json", canon(index))
    add(tar, "oci-layout", canon({"imageLayoutVersion": "1.0.0"}))
print(layer_desc["digest"])
PY
}

import_images() {
  local dir=$1 snapshotter=$2 out
  if ! out=$(ctr_ "$dir" images import --snapshotter "$snapshotter" "$dir/images/local-images.tar" 2>&1); then
    die "importing $dir/images/local-images.tar failed: $out"
  fi
  local img have
  have=$(ctr_ "$dir" images ls -q) # not piped into grep -q: its early exit fails the pipe (pipefail)
  for img in "$TEST_IMAGE" "$PAUSE_IMAGE"; do
    grep -qxF "$img" <<<"$have" || die "image $img missing after import: $out"
  done
}

# --- start -----------------------------------------------------------------------------------------

cmd_start() {
  [ $# -eq 1 ] || usage
  local dir pid snapshotter t0
  dir=$(abspath "$1")
  t0=$(date +%s%N)
  command -v containerd >/dev/null || die "containerd is not installed (run: $0 install)"
  command -v runc >/dev/null || die "runc is not installed (run: $0 install)"
  [ -x /bin/busybox ] || die "/bin/busybox is missing (run: $0 install)"
  # A unix socket path is limited to 107 bytes; leave room for containerd's ".ttrpc" suffix.
  [ "${#dir}" -le 80 ] || die "directory path too long for a unix socket: $dir"

  if pid=$(live_pid "$dir") && answers "$dir"; then
    log "containerd already running under $dir (pid $pid)"
    return 0
  fi
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    # Leftover of a killed run in the same directory: clean it up fully, then start afresh.
    if [ -f "$dir/config.toml" ] && grep -q "$MARKER" "$dir/config.toml"; then
      log "cleaning up a stale instance under $dir"
      cmd_stop "$dir"
    else
      die "$dir exists and is not empty; refusing to use it"
    fi
  fi
  mkdir -p "$dir"/{root,state,opt,runc,cni/bin,cni/net.d,images}
  chmod 0711 "$dir"
  # The process whose exit makes this instance garbage (see `gc`): the caller, unless told.
  echo "${CONTAINERD_OWNER_PID:-$PPID}" >"$dir/owner.pid"

  # CONTAINERD_SNAPSHOTTER=native|overlayfs forces one (e.g. to try the fallback); by default overlayfs
  # when an overlay mount works under DIR.
  snapshotter=${CONTAINERD_SNAPSHOTTER:-overlayfs}
  if [ -z "${CONTAINERD_SNAPSHOTTER:-}" ] && ! overlay_works "$dir"; then
    log "overlay mounts do not work under $dir; using the native snapshotter"
    snapshotter=native
  fi
  echo "$snapshotter" >"$dir/snapshotter"
  write_config "$dir" "$snapshotter"
  write_cni_config "$dir"
  build_images "$dir" >/dev/null &
  local build_pid=$!

  # setsid: Ctrl-C on the terminal reaches the tests, not containerd, so `stop` still finds it up.
  setsid containerd --config "$dir/config.toml" </dev/null >>"$dir/containerd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/containerd.pid"
  for _ in $(seq 1 200); do
    if answers "$dir"; then break; fi
    alive "$pid" || { tail -n 20 "$dir/containerd.log" >&2; die "containerd exited during start (log: $dir/containerd.log)"; }
    sleep 0.05
  done
  answers "$dir" || { tail -n 20 "$dir/containerd.log" >&2; die "containerd did not answer on $(sock_of "$dir") within 10 s"; }
  # The CRI plugin loads after the socket is up and may fail on its own (bad config, no snapshotter).
  local cri
  cri=$(ctr --address "$(sock_of "$dir")" plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" {print $NF}')
  [ "$cri" = "ok" ] || { tail -n 20 "$dir/containerd.log" >&2; die "containerd's CRI plugin is not running (status '${cri:-absent}'; log: $dir/containerd.log)"; }

  wait "$build_pid" || die "building the local OCI images failed"
  import_images "$dir" "$snapshotter"
  log "containerd $(containerd --version | awk '{print $3}') up on unix://$(sock_of "$dir") (pid $pid, $snapshotter) with $TEST_IMAGE and $PAUSE_IMAGE in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

# --- stop ------------------------------------------------------------------------------------------

# Host mounts under DIR, deepest first (overlay rootfs, sandbox /dev/shm, ...).
mounts_under() {
  local dir=$1
  awk -v d="$dir/" '{ p = $5; gsub(/\\040/, " ", p); if (index(p, d) == 1) print p }' /proc/self/mountinfo \
    | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# PIDs of the shims serving containers of this instance: their command line names our socket.
shim_pids() {
  local sock=$1 f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [ "$pid" = "$$" ] && continue
    # Processes may exit while we look: a vanished /proc entry is not an error.
    local argv=() arg
    { mapfile -d '' -t argv <"$f"; } 2>/dev/null || continue
    [[ "${argv[0]:-}" == *containerd-shim* ]] || continue
    for arg in "${argv[@]}"; do
      if [ "$arg" = "$sock" ]; then echo "$pid"; break; fi
    done
  done
  return 0
}

# Deletes the portmap plugin's per-pod NAT chains (CNI-DN-*) that send traffic to addresses
# starting with PREFIX (our /24, e.g. `10.230.98.`), with the jumps to them.
remove_portmap_rules() {
  local prefix=$1 chain rule
  command -v iptables >/dev/null || return 0
  for chain in $(iptables -w -t nat -S 2>/dev/null \
      | awk -v p="--to-destination $prefix" '$1 == "-A" && $2 ~ /^CNI-DN-/ && index($0, p) { print $2 }' | sort -u); do
    while read -r rule; do
      # iptables -S quotes its output for a shell (comments hold quoted pod IDs).
      [ -n "$rule" ] && eval "iptables -w -t nat ${rule/#-A/-D}" 2>/dev/null || true
    done < <(iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -- "-j $chain\$" || true)
    iptables -w -t nat -F "$chain" 2>/dev/null || true
    iptables -w -t nat -X "$chain" 2>/dev/null || true
  done
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir sock pid ns id
  dir=$(abspath "$1")
  sock=$(sock_of "$dir")
  [ -d "$dir" ] || return 0
  if ! { [ -f "$dir/config.toml" ] && grep -q "$MARKER" "$dir/config.toml"; }; then
    die "$dir was not created by $0 (no $MARKER config.toml); refusing to remove it"
  fi

  # 1. Through containerd: kill every task (pod sandboxes are tasks too), delete tasks and containers.
  if pid=$(live_pid "$dir") && answers "$dir"; then
    for ns in $(ctr --address "$sock" namespaces ls -q 2>/dev/null); do
      for id in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        timeout 10 ctr --address "$sock" -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
      done
      for id in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        timeout 10 ctr --address "$sock" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
      done
      for id in $(ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null); do
        timeout 10 ctr --address "$sock" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
      done
    done
  fi

  # 2. containerd itself: TERM, then KILL after 10 s.
  if pid=$(live_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      log "containerd (pid $pid) ignored SIGTERM for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    fi
  fi

  # 3. Whatever survived (containerd was killed before step 1 could run): runc's own state under
  #    DIR/runc/<namespace> lists the containers; then the shims that served them.
  local root
  if command -v runc >/dev/null; then
    for root in "$dir"/runc/*/; do
      [ -d "$root" ] || continue
      for id in $(runc --root "$root" list -q 2>/dev/null); do
        runc --root "$root" kill --all "$id" KILL >/dev/null 2>&1 || true
        runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  for pid in $(shim_pids "$sock"); do kill -KILL "$pid" 2>/dev/null || true; done
  # Shim sockets: /run/containerd/s/sha256("<our socket>/<namespace>/<id>") (containerd 1.6).
  local task_dir
  for task_dir in "$dir"/state/io.containerd.runtime.v2.task/*/*/; do
    [ -d "$task_dir" ] || continue
    id=$(basename "$task_dir"); ns=$(basename "$(dirname "$task_dir")")
    rm -f "/run/containerd/s/$(printf '%s' "$sock/$ns/$id" | sha256sum | cut -d' ' -f1)"
  done

  # 4. Mounts left on the host (rootfs overlays, sandbox shm), then the directory. --one-file-system:
  #    never descend into a mount that refused to go away.
  local m
  while read -r m; do
    [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"; }
  done < <(mounts_under "$dir")
  # 5. The instance's pod-network bridge (its pods' veths went with their namespaces), and the
  #    hostPort rules of its pods that CNI DEL never removed (containers killed through ctr).
  local bridge subnet
  if [ -f "$dir/cni/network" ] && read -r bridge subnet <"$dir/cni/network" && [[ "$bridge" =~ ^ntb[0-9a-f]{8}$ ]]; then
    ip link del "$bridge" 2>/dev/null || true
    [[ "$subnet" =~ ^10\.[0-9]+\.[0-9]+\.0/24$ ]] && remove_portmap_rules "${subnet%0/24}"
  fi
  rm -rf --one-file-system "$dir"
}

# --- gc --------------------------------------------------------------------------------------------

# Stops instances whose owner (the test script that started them) is gone: a run killed with
# SIGKILL, or a crashed CI job, leaves containerd and its containers running.
cmd_gc() {
  local dir owner
  for dir in $GC_GLOB; do
    [ -d "$dir" ] || continue
    owner=$(cat "$dir/owner.pid" 2>/dev/null || true)
    if [[ "$owner" =~ ^[0-9]+$ ]] && alive "$owner"; then continue; fi
    if [ -f "$dir/config.toml" ] && grep -q "$MARKER" "$dir/config.toml"; then
      log "removing the leftover instance $dir"
      cmd_stop "$dir" || true
    fi
  done
}

# --- env / status ----------------------------------------------------------------------------------

cmd_env() {
  [ $# -eq 1 ] || usage
  local dir
  dir=$(abspath "$1")
  echo "export NODE_TEST_CRI_ENDPOINT=unix://$(sock_of "$dir")"
  echo "export NODE_TEST_IMAGE=$TEST_IMAGE"
  echo "export NODE_TEST_PAUSE_IMAGE=$PAUSE_IMAGE"
  echo "export NODE_TEST_CONTAINERD_DIR=$dir"
  # The pod network's subnet, when the instance has one (tests of pod networking skip without it).
  local bridge subnet
  if [ -f "$dir/cni/network" ] && read -r bridge subnet <"$dir/cni/network"; then
    echo "export NODE_TEST_POD_SUBNET=$subnet"
  fi
}

cmd_status() {
  [ $# -eq 1 ] || usage
  local dir pid
  dir=$(abspath "$1")
  if ! pid=$(live_pid "$dir") || ! answers "$dir"; then echo "not running: $dir"; return 1; fi
  echo "running: pid $pid, unix://$(sock_of "$dir"), snapshotter $(cat "$dir/snapshotter")"
}

[ $# -ge 1 ] || usage
sub=$1; shift
case "$sub" in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  gc) cmd_gc "$@" ;;
  env) cmd_env "$@" ;;
  status) cmd_status "$@" ;;
  *) usage ;;
esac
