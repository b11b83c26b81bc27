#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the repository's own fixtures and
test vectors (examples/configs, examples/manifests, node-kernel/tests/fixtures,
node-seccomp/tests/fixtures, the state-file vectors of node-state/tests/arbitrary_input.rs)
plus small hand-written inputs. Run from anywhere: python3 fuzz/make_seeds.py

Multi-file inputs join their parts with a line holding only `%%%%` (fuzz/src/lib.rs)."""

import gzip
import io
import os
import re
import shutil
import struct
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
SEP = b"\n%%%%\n"


def rd(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def seeds(target, items):
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in items:
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def join(*parts):
    return SEP.join(p.encode() if isinstance(p, str) else p for p in parts)


HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"

# --- node-config -------------------------------------------------------------------------
seeds("config_load", [
    ("kubeadm", join("", rd("examples/configs/kubelet.yaml"))),
    ("kubeadm-dropins", join("", rd("examples/configs/kubelet.yaml"),
                             rd("examples/configs/kubelet.conf.d/10-reserved.conf"),
                             rd("examples/configs/kubelet.conf.d/20-dns.conf"))),
    ("agent-standalone", join("", rd("examples/agent/standalone.yaml"))),
    ("agent-cluster", join("", rd("examples/agent/cluster.yaml"))),
    ("flags", join("--max-pods=50\n--feature-gates=NodeSwap=true\n--node-labels=a=b",
                   HEAD + "port: 20250\n")),
    ("json", join("", '{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration",'
                      '"syncFrequency":"1m30s","evictionHard":{"memory.available":"5%"}}')),
    ("reserved", join("", HEAD + "systemReserved:\n  memory: 1Gi\n  cpu: 500m\nreservedMemory:\n"
                      "- numaNode: 0\n  limits:\n    memory: 1100Mi\nlogging:\n  flushFrequency: 5000000000\n",
                      HEAD + "maxPods: null\nclusterDNS: [10.96.0.10]\n")),
])
seeds("config_values", [
    ("dur", "1h2m0.5s"), ("dur-neg", "-1.5s"), ("dur-us", "300\u00b5s"),
    ("q-bin", "100Mi"), ("q-milli", "500m"), ("q-exp", "1e3"), ("q-big", "1e38"),
    ("q-json", "2.5"), ("regression-dur-i128", "47261439850130342147690917.9h"),
    ("regression-q-nan", "0e400"), ("flags", "--max-pods=50\n--feature-gates=NodeSwap=true,KubeletTracing=false\n"
                                 "--eviction-hard=memory.available<100Mi\n--system-reserved=cpu=1,memory=1Gi"),
])

# --- node-state (the vectors of node-state/tests/arbitrary_input.rs) ------------------------
src = rd("node-state/tests/arbitrary_input.rs").decode()
vectors = re.findall(r'r#"(\{.*?\})"#', src, re.S)
seeds("state_files", [(f"vector-{i}", v) for i, v in enumerate(vectors)] +
      [("cpuset", "0-3,8,10-11")])

# --- node-seccomp ------------------------------------------------------------------------
prof_src = rd("node-seccomp/tests/profiles.rs").decode() + rd("node-seccomp/src/lib.rs").decode()
profiles = [p for p in re.findall(r'r#"(\{.*?\})"#', prof_src, re.S) if "defaultAction" in p]
oci = [p for p in profiles if "archMap" not in p and "includes" not in p]
docker = [p for p in profiles if "archMap" in p or "includes" in p]
seeds("seccomp_profile", [("seed-example", rd("node-seccomp/tests/fixtures/seed-example.json"))] +
      [(f"test-{i}", p) for i, p in enumerate(oci)] +
      [("localhost-path", "profiles/audit.json"),
       ("mix-strace", rd("node-seccomp/tests/fixtures/mixes/containerd.txt")),
       ("mix-json", '{"futex": 900, "epoll_pwait": 90, "read": 10}')])
seeds("seccomp_docker", [(f"test-{i}", p) for i, p in enumerate(docker)] + [
    ("small-docker", '{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"archMap":[{"architecture":'
                     '"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[{"names":'
                     '["read","write"],"action":"SCMP_ACT_ALLOW"},{"names":["clone"],"action":'
                     '"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}],'
                     '"excludes":{"caps":["CAP_SYS_ADMIN"],"arches":["s390x"]}},{"names":["ptrace"],'
                     '"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}]}'),
])


def insn(code, jt, jf, k):
    return struct.pack("<HBBI", code, jt, jf, k)


seeds("seccomp_bpf", [
    ("allow", insn(0x06, 0, 0, 0x7FFF0000)),
    ("arch-check", insn(0x20, 0, 0, 4) + insn(0x15, 1, 0, 0xC000003E) + insn(0x06, 0, 0, 0)
     + insn(0x20, 0, 0, 0) + insn(0x15, 0, 1, 59) + insn(0x06, 0, 0, 0x00050001)
     + insn(0x06, 0, 0, 0x7FFF0000)),
    ("alu-mem", insn(0x00, 0, 0, 7) + insn(0x02, 0, 0, 3) + insn(0x61, 0, 0, 3) + insn(0x07, 0, 0, 0)
     + insn(0x24, 0, 0, 2) + insn(0x35, 0, 1, 10) + insn(0x06, 0, 0, 0x7FFF0000) + insn(0x16, 0, 0, 0)),
])

# --- node-runtime ------------------------------------------------------------------------
seeds("pod_manifest", [
    ("hello", rd("examples/manifests/hello.yaml")),
    ("minimal", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: kube-system\nspec:\n"
                "  hostNetwork: true\n  containers:\n  - name: app\n    image: busybox\n"
                "    command: [\"/bin/sh\", \"-c\", \"sleep 3600\"]\n"),
    ("volumes", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vols\nspec:\n  volumes:\n  - name: d\n"
                "    emptyDir: {}\n  - name: h\n    hostPath:\n      path: /var/log\n  containers:\n"
                "  - name: a\n    image: busybox\n    volumeMounts:\n    - name: d\n      mountPath: /d\n"
                "      subPath: x/y\n    securityContext:\n      seccompProfile:\n        type: Localhost\n"
                "        localhostProfile: profiles/a.json\n"),
    ("json", '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","uid":"1234"},"spec":'
             '{"containers":[{"name":"c","image":"i","resources":{"limits":{"memory":"64Mi"}}}]}}'),
])

# --- node-checkpoint ---------------------------------------------------------------------
CRIU_COMMON_MAGIC = 0x54564319
PAGEMAP_MAGIC = 0x56084025


def criu_entry(payload):
    return struct.pack("<I", len(payload)) + payload


def archive(fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        def add(name, data, mode=0o600):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = 1700000000
            tar.addfile(ti, io.BytesIO(data))
        add("config.dump", b'{"id":"abc123","name":"app","rootfsImageName":"busybox:latest",'
                           b'"runtime":"io.containerd.runc.v2","createdTime":"2026-03-13T21:43:06Z",'
                           b'"checkpointedTime":"2026-03-13T21:44:00Z"}')
        add("spec.dump", b'{"annotations":{"io.container.manager":"cri-o","io.kubernetes.pod.name":"web",'
                         b'"io.kubernetes.pod.namespace":"default","io.kubernetes.cri-o.Metadata":'
                         b'"{\\"name\\":\\"app\\"}"}}')
        add("checkpoint/inventory.img", struct.pack("<II", CRIU_COMMON_MAGIC, 0x58311116)
            + criu_entry(b"\x08\x02"))
        add("checkpoint/pagemap-1.img", struct.pack("<II", CRIU_COMMON_MAGIC, PAGEMAP_MAGIC)
            + criu_entry(b"\x08\x01") + criu_entry(b"\x08\x80\x80\x04\x10\x01"))
        add("checkpoint/pages-1.img", b"\0" * 100 + b"secret value" + b"\0" * 400)
        add("rootfs-diff.tar", b"\0" * 1024)
    return buf.getvalue()


seeds("checkpoint_archive", [("cri-o-gnu", archive(tarfile.GNU_FORMAT)),
                             ("cri-o-pax", archive(tarfile.PAX_FORMAT))])

# --- node-kernel -------------------------------------------------------------------------
KFILES = ["proc/sys/kernel/osrelease", "proc/mounts", "proc/cgroups", "proc/cmdline", "proc/swaps",
          "proc/meminfo", "proc/pressure/cpu", "boot-config", "proc/sys/user/max_user_namespaces",
          "sys/fs/cgroup/cgroup.controllers", "sys/fs/cgroup/unified/cgroup.controllers",
          "proc/sys/kernel/ostype"]
probe = []
kernel_text = []
fx = "node-kernel/tests/fixtures"
for host in sorted(os.listdir(os.path.join(ROOT, fx))):
    base = os.path.join(ROOT, fx, host)
    parts = []
    for rel in KFILES:
        if rel == "boot-config":
            boot = os.path.join(base, "boot")
            names = sorted(os.listdir(boot)) if os.path.isdir(boot) else []
            parts.append(rd(os.path.join(fx, host, "boot", names[0])) if names else b"")
            continue
        p = os.path.join(base, rel)
        parts.append(rd(os.path.join(fx, host, rel)) if os.path.isfile(p) else b"")
    probe.append((host, join(*parts)))
    for rel in ["proc/mounts", "proc/cmdline", "proc/swaps", "proc/meminfo", "proc/sys/kernel/osrelease"]:
        if os.path.isfile(os.path.join(base, rel)):
            kernel_text.append((f"{host}-{rel.replace('/', '_')}", rd(os.path.join(fx, host, rel))))
seeds("kernel_probe", probe)
kernel_text += [
    ("mounts-escapes", "tmpfs /run/my\\040dir tmpfs rw,nosuid 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"),
    ("regression-mounts-777", "tmpfs /a\\777b tmpfs rw 0 0\n"),
    ("config-gz", gzip.compress(b"CONFIG_PSI=y\nCONFIG_USER_NS=m\n# CONFIG_X is not set\n", mtime=0)),
    ("nft", "nftables v1.0.6 (Lester Gooch #5)"),
    ("sysctls", "net.core.somaxconn\nkernel.shm*\nnet/ipv4/ip_local_port_range\nkernel.msgmax"),
    ("release", "5.15.153.1-microsoft-standard-WSL2"),
]
seeds("kernel_text", kernel_text)

# --- node-heartbeat ----------------------------------------------------------------------
cpuinfo = "".join(f"processor\t: {i}\nmodel name\t: Test CPU\n\n" for i in range(4))
seeds("heartbeat_facts", [
    ("fixture", join(cpuinfo,
                     "MemTotal:        8388608 kB\nMemFree:   100 kB\nMemAvailable:    4194304 kB\n",
                     "2048 512\n1048576 0",
                     'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
                     "4194304\n", "0.10 0.20 0.30 2/345 9999\n",
                     "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
                     "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n",
                     "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                     "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n",
                     "system memory 1Gi\nsystem cpu 500m\nkube ephemeral-storage 1Gi\n"
                     "eviction memory.available 100Mi\neviction nodefs.available 10%")),
    ("regression-overflows", join(cpuinfo, "MemTotal: 8388608 kB\n",
                                  "18014398509481983 18446744073709551615\n2048 18446744073709551615",
                                  "", "4194304\n", "0.10 0.20 0.30 2/345 9999\n", "", "",
                                  "system memory 1e38\nkube memory 1e38\neviction memory.available 8Ei")),
])

# --- kubeconfig --------------------------------------------------------------------------
seeds("kubeconfig", [
    ("regression-utf16-odd", b"\xff\xfe "),
    ("token", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
              "    certificate-authority: pki/ca.crt\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
              "    user: u\n    namespace: kube-system\ncurrent-context: x\nusers:\n- name: u\n  user:\n"
              "    token: abc\n"),
    ("exec-multi", "apiVersion: v1\nkind: Config\nusers:\n- name: e\n  user:\n    exec:\n"
                   "      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/cred\n"
                   "      args: [get]\n      env:\n      - name: A\n        value: b\n"
                   "---\nclusters:\n- name: d\n  cluster:\n    server: http://[::1]:8080\n"
                   "    insecure-skip-tls-verify: true\n    proxy-url: socks5://127.0.0.1:1080\n"),
])

# --- node-plugins: protobuf messages, encoded by hand -------------------------------------


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fld(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def mapentry(num, k, v):
    return fld(num, fld(1, k) + fld(2, v))


device = fld(1, "dev-0") + fld(2, "Healthy") + fld(3, fld(1, fld(1, 0)))
seeds("device_plugin_messages", [
    ("register", b"\x00" + fld(1, "v1beta1") + fld(2, "fake.sock") + fld(3, "example.com/fake")
     + fld(4, fld(1, 1) + fld(2, 1))),
    ("register-escape", b"\x00" + fld(1, "v1beta1") + fld(2, "../../run/x.sock") + fld(3, "example.com/fake")),
    ("list-and-watch", b"\x01" + fld(1, device) + fld(1, fld(1, "dev-1") + fld(2, "Unhealthy"))),
    ("allocate-response", b"\x02" + fld(1, mapentry(1, "FAKE", "dev-0")
                                      + fld(2, fld(1, "/c") + fld(2, "/h") + fld(3, 1))
                                      + fld(3, fld(1, "/dev/x") + fld(2, "/dev/null") + fld(3, "rw"))
                                      + mapentry(4, "a", "b") + fld(5, fld(1, "vendor.com/c=d")))),
    ("container-allocate", b"\x03" + mapentry(1, "PATH", "/x") + mapentry(1, "B", "c")),
    ("preferred", b"\x04" + fld(1, fld(1, "dev-0") + fld(1, "dev-1"))),
    ("options", b"\x05" + fld(1, 1) + fld(2, 1)),
    ("plugin-info", b"\x09" + fld(1, "DevicePlugin") + fld(2, "example.com/fake") + fld(3, "/p.sock")
     + fld(4, "v1beta1")),
    ("resource-name", b"\x0bexample.com/gpu"),
])
container = fld(1, "app") + fld(2, fld(1, "example.com/fake") + fld(2, "dev-0")
                                + fld(3, fld(1, fld(1, 0)))) + fld(3, 2) + fld(3, 3) \
    + fld(4, fld(1, "memory") + fld(2, 1 << 30))
pod = fld(1, "web") + fld(2, "default") + fld(3, container)
seeds("pod_resources_messages", [
    ("get", b"\x00" + fld(1, "web") + fld(2, "default")),
    ("get-response", b"\x01" + fld(1, pod)),
    ("list", b"\x02" + fld(1, pod) + fld(1, fld(1, "other"))),
    ("allocatable", b"\x03" + fld(1, fld(1, "example.com/fake") + fld(2, "dev-0")) + fld(2, 0) + fld(2, 1)),
    ("v1alpha1", b"\x04" + fld(1, fld(1, "p") + fld(2, "ns") + fld(3, fld(1, "c")
                                                               + fld(2, fld(1, "r") + fld(2, "d"))))),
])
# Inputs that crashed node-seccomp before its hardening (fixed): regression seeds.
for target, items in {
    "seccomp_bpf": [("ld-abs-offset-overflow", insn(0x20, 0, 0, 0xFFFFFFFC))],
    "seccomp_profile": [
        ("arg-index-6.json", '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],'
                             '"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}'),
        ("arg-index-max.json", '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],'
                               '"action":"SCMP_ACT_ALLOW","args":[{"index":4294967295,"value":1,'
                               '"op":"SCMP_CMP_EQ"}]}]}'),
    ],
}.items():
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in items:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
print("seed corpora written under", OUT)

# --- dictionaries (fuzz/dict/<target>.dict, passed with -dict= by scripts/fuzz.sh) -----------
DICT = os.path.join(ROOT, "fuzz", "dict")
shutil.rmtree(DICT, ignore_errors=True)
os.makedirs(DICT)


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def write_dict(target, tokens):
    lines = []
    for t in sorted(set(tokens)):
        esc = ""
        for ch in t:
            o = ord(ch)
            if ch in '\\"':
                esc += "\\" + ch
            elif 0x20 <= o <= 0x7E:
                esc += ch
            elif o <= 0xFF:
                esc += "\\x%02x" % o
            else:
                esc += "".join("\\x%02x" % b for b in ch.encode())
        lines.append(f'"{esc}"')
    with open(os.path.join(DICT, target + ".dict"), "w") as f:
        f.write("\n".join(lines) + "\n")


types = rd("node-config/src/types.rs").decode()
keys = set()
pending = None
for line in types.splitlines():
    m = re.search(r'rename\s*=\s*"([^"]+)"', line)
    if m and "rename_all" not in line:
        pending = m.group(1)
    m = re.match(r"\s*pub (r#)?([a-z_0-9]+): ", line)
    if m:
        keys.add(pending or camel(m.group(2)))
        pending = None
yaml_tokens = [": ", "\n- ", "{}", "[]", "null", "true", "false", "~", "---\n", "'", "\"", "&a ", "*a",
               "!!str ", "|\n", ">\n", "  ", "0x", "1e38", ".inf", "-"]
write_dict("config_load", [k + ": " for k in keys] + yaml_tokens +
           ["apiVersion: kubelet.config.k8s.io/v1beta1\n", "kind: KubeletConfiguration\n", "%%%%",
            "Mi", "Gi", "Ki", "Ei", "m", "h", "s", "ms", "ns", "memory.available", "nodefs.available",
            "--max-pods=", "--feature-gates=", "--config=", "--node-ip="])
write_dict("kubeconfig", [k + ": " for k in [
    "apiVersion", "kind", "clusters", "cluster", "server", "certificate-authority",
    "certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name", "proxy-url",
    "contexts", "context", "user", "namespace", "current-context", "users", "token", "token-file",
    "client-certificate", "client-key", "client-certificate-data", "client-key-data", "username",
    "password", "exec", "command", "args", "env", "auth-provider", "config", "name", "preferences",
    "extensions", "extension", "impersonate", "impersonate-groups", "disable-compression",
    "interactiveMode", "provideClusterInfo"]] + yaml_tokens + ["\xff\xfe", "\xfe\xff", "\xef\xbb\xbf"])
write_dict("pod_manifest", [k + ": " for k in [
    "apiVersion", "kind", "metadata", "name", "namespace", "uid", "labels", "annotations", "spec",
    "containers", "initContainers", "image", "command", "args", "env", "value", "valueFrom",
    "volumeMounts", "mountPath", "subPath", "subPathExpr", "readOnly", "volumes", "emptyDir",
    "hostPath", "path", "type", "configMap", "secret", "projected", "securityContext",
    "seccompProfile", "localhostProfile", "privileged", "runAsUser", "sysctls", "hostNetwork",
    "hostPID", "hostIPC", "resources", "limits", "requests", "ports", "containerPort", "hostPort",
    "protocol", "restartPolicy", "terminationGracePeriodSeconds", "priority", "nodeName",
    "dnsPolicy", "ephemeralContainers", "readinessProbe", "livenessProbe", "exec", "httpGet"]]
    + yaml_tokens + ["v1", "Pod", "Localhost", "RuntimeDefault", "../", "/etc", "memory", "cpu"])
write_dict("seccomp_profile", [
    "defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata",
    "syscalls", "names", "action", "errnoRet", "args", "index", "value", "valueTwo", "op",
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_CMP_NE", "SCMP_CMP_LT",
    "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
    "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
    "SCMP_ARCH_NATIVE", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "read", "write",
    "openat", "clone", "personality", "../", "/"])
write_dict("seccomp_docker", [
    "archMap", "architecture", "subArchitectures", "includes", "excludes", "caps", "arches",
    "minKernel", "comment", "name", "names", "errno", "defaultErrno", "defaultAction", "syscalls",
    "action", "args", "index", "value", "op", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_CMP_MASKED_EQ",
    "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "amd64", "arm64", "386", "CAP_SYS_ADMIN", "EPERM", "ENOSYS"])
write_dict("heartbeat_facts", ["processor\t: ", "MemTotal:", "MemAvailable:", " kB", "PRETTY_NAME=",
                               "%%%%", "system ", "kube ", "eviction ", "memory ", "cpu ",
                               "ephemeral-storage ", "memory.available ", "nodefs.available ",
                               "hugepages-", "1e38", "Ei", "%", "00000000"])
write_dict("kernel_probe", ["%%%%", "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n",
                            "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n", "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n",
                            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "CONFIG_PSI=y\n",
                            "CONFIG_PSI_DEFAULT_DISABLED=y\n", "psi=0", "psi=1", "SwapTotal:", "MemTotal:",
                            " kB", "\\040", "#subsys_name", "memory", "freezer", "cpu io memory pids",
                            "\x1f\x8b"])
print("dictionaries written under", DICT)
