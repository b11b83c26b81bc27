#!/usr/bin/env python3
"""A device plugin and a pod-resources client written with Python grpcio, run against the real
node agent by bins/node-agent/tests/grpc_clients.rs.

grpcio (>= 1.57) sends the percent-encoded socket path as the HTTP/2 :authority over a Unix
socket (for example "tmp%2Fx%2Fkubelet.sock"), which is not a URI authority. The channels here
keep that default on purpose: nothing sets grpc.default_authority except the one call that
sends the raw socket path instead (what grpc-java and grpcurl send).

Stubs are generated at run time from the repository's .proto files with grpc_tools.protoc into
a temporary directory. Progress goes to stdout, one line per step, for the Rust test to read:
  REGISTERED <resource>
  ALLOCATABLE <resource> <device id>,...
  LIST <number of pods>
  LIST_RAW_AUTHORITY <number of pods>
  POD <namespace>/<name> <resource> <device id>,...   (with --pod: after the test starts it
                                                      and the agent called Allocate)
  GET <namespace>/<name> <resource> <device id>,...
  ALLOCATE <device id>,...                            (whenever the agent calls Allocate)
  DONE
Any failure ends the run with a traceback on stderr and a non-zero exit status.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from grpc_tools import protoc


def generate_stubs(proto_root, out_dir):
    """Copies the two .proto files (both are named api.proto upstream) under distinct names and
    compiles them; returns the imported modules."""
    sources = {
        "deviceplugin_v1beta1": os.path.join(proto_root, "deviceplugin", "v1beta1", "api.proto"),
        "podresources_v1": os.path.join(proto_root, "podresources", "v1", "api.proto"),
    }
    for name, path in sources.items():
        shutil.copyfile(path, os.path.join(out_dir, name + ".proto"))
        # grpc_tools' own include directory holds the well-known types.
        well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        status = protoc.main(
            [
                "grpc_tools.protoc",
                "-I" + out_dir,
                "-I" + well_known,
                "--python_out=" + out_dir,
                "--grpc_python_out=" + out_dir,
                os.path.join(out_dir, name + ".proto"),
            ]
        )
        if status != 0:
            raise RuntimeError("grpc_tools.protoc failed on %s (status %d)" % (path, status))
    sys.path.insert(0, out_dir)
    import deviceplugin_v1beta1_pb2 as dp
    import deviceplugin_v1beta1_pb2_grpc as dp_grpc
    import podresources_v1_pb2 as pr
    import podresources_v1_pb2_grpc as pr_grpc

    return dp, dp_grpc, pr, pr_grpc


def say(line):
    print(line, flush=True)


def make_plugin(dp, dp_grpc, device_ids, stopping, allocated):
    class Plugin(dp_grpc.DevicePluginServicer):
        def GetDevicePluginOptions(self, request, context):
            return dp.DevicePluginOptions()

        def ListAndWatch(self, request, context):
            yield dp.ListAndWatchResponse(
                devices=[dp.Device(ID=i, health="Healthy") for i in device_ids]
            )
            # The stream stays open (the agent treats its end as the plugin going away) until
            # the agent hangs up or this process stops.
            while context.is_active() and not stopping.wait(0.2):
                pass

        def GetPreferredAllocation(self, request, context):
            return dp.PreferredAllocationResponse(
                container_responses=[
                    dp.ContainerPreferredAllocationResponse(
                        deviceIDs=list(r.available_deviceIDs)[: r.allocation_size]
                    )
                    for r in request.container_requests
                ]
            )

        def Allocate(self, request, context):
            responses = []
            for r in request.container_requests:
                ids = list(r.devices_ids)
                say("ALLOCATE " + ",".join(sorted(ids)))
                allocated.set()
                responses.append(
                    dp.ContainerAllocateResponse(envs={"PYFOO_DEVICES": ",".join(ids)})
                )
            return dp.AllocateResponse(container_responses=responses)

        def PreStartContainer(self, request, context):
            return dp.PreStartContainerResponse()

    return Plugin()


def devices_of(container_devices, resource):
    ids = []
    for d in container_devices:
        if d.resource_name == resource:
            ids.extend(d.device_ids)
    return sorted(ids)


def wait_for(what, deadline, probe):
    """Calls probe() until it returns something truthy; fails with `what` at the deadline."""
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proto-root", required=True)
    ap.add_argument("--device-plugins-dir", required=True)
    ap.add_argument("--pod-resources-socket", required=True)
    ap.add_argument("--resource", required=True)
    ap.add_argument("--devices", type=int, default=3)
    ap.add_argument("--pod", help="wait for this pod (default namespace) to hold a device")
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout

    stubs_dir = tempfile.mkdtemp(prefix="grpc-stubs-")
    stopping = threading.Event()
    allocated = threading.Event()
    server = None
    try:
        dp, dp_grpc, pr, pr_grpc = generate_stubs(args.proto_root, stubs_dir)
        prefix = args.resource.rsplit("/", 1)[-1]
        device_ids = ["%s-%d" % (prefix, i) for i in range(args.devices)]

        # (a) The device plugin: its own socket in the device-plugins directory.
        endpoint = prefix + ".sock"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        dp_grpc.add_DevicePluginServicer_to_server(
            make_plugin(dp, dp_grpc, device_ids, stopping, allocated), server
        )
        server.add_insecure_port("unix:" + os.path.join(args.device_plugins_dir, endpoint))
        server.start()

        kubelet_sock = os.path.join(args.device_plugins_dir, "kubelet.sock")
        with grpc.insecure_channel("unix:" + kubelet_sock) as channel:
            dp_grpc.RegistrationStub(channel).Register(
                dp.RegisterRequest(
                    version="v1beta1",
                    endpoint=endpoint,
                    resource_name=args.resource,
                    options=dp.DevicePluginOptions(),
                ),
                timeout=max(1.0, deadline - time.monotonic()),
                wait_for_ready=True,
            )
        say("REGISTERED " + args.resource)

        # (b) The pod-resources API.
        with grpc.insecure_channel("unix:" + args.pod_resources_socket) as channel:
            lister = pr_grpc.PodResourcesListerStub(channel)

            def allocatable():
                got = lister.GetAllocatableResources(
                    pr.AllocatableResourcesRequest(), timeout=10, wait_for_ready=True
                )
                ids = devices_of(got.devices, args.resource)
                return ids if ids == sorted(device_ids) else None

            ids = wait_for("the plugin's devices to become allocatable", deadline, allocatable)
            say("ALLOCATABLE %s %s" % (args.resource, ",".join(ids)))

            listed = lister.List(pr.ListPodResourcesRequest(), timeout=10)
            say("LIST %d" % len(listed.pod_resources))

            if args.pod:

                def pod_devices():
                    # Only once the agent has called Allocate, so that this process (and its
                    # plugin server) does not end while that call is still under way.
                    if not allocated.is_set():
                        return None
                    for p in lister.List(pr.ListPodResourcesRequest(), timeout=10).pod_resources:
                        if p.name == args.pod and p.namespace == args.namespace:
                            ids = []
                            for c in p.containers:
                                ids.extend(devices_of(c.devices, args.resource))
                            return sorted(ids)
                    return None

                ids = wait_for("pod %s in List with a device" % args.pod, deadline, pod_devices)
                say("POD %s/%s %s %s" % (args.namespace, args.pod, args.resource, ",".join(ids)))
                got = lister.Get(
                    pr.GetPodResourcesRequest(pod_name=args.pod, pod_namespace=args.namespace),
                    timeout=10,
                )
                ids = []
                for c in got.pod_resources.containers:
                    ids.extend(devices_of(c.devices, args.resource))
                say(
                    "GET %s/%s %s %s"
                    % (got.pod_resources.namespace, got.pod_resources.name, args.resource,
                       ",".join(sorted(ids)))
                )

        # The raw socket path as :authority, as grpc-java and grpcurl send it.
        raw = [("grpc.default_authority", args.pod_resources_socket)]
        with grpc.insecure_channel("unix:" + args.pod_resources_socket, options=raw) as channel:
            listed = pr_grpc.PodResourcesListerStub(channel).List(
                pr.ListPodResourcesRequest(), timeout=10
            )
            say("LIST_RAW_AUTHORITY %d" % len(listed.pod_resources))
        say("DONE")
    finally:
        stopping.set()
        if server is not None:
            server.stop(grace=None)
        shutil.rmtree(stubs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
