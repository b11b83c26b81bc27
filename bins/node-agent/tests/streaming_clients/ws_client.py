"""A WebSocket client of the kubelet's streaming routes, built on websocket-client (a real
WebSocket implementation, installed by scripts/test.sh), speaking the Kubernetes channel
protocols over it: `v4.channel.k8s.io` for exec/attach (one leading byte per message names the
stream: 0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize) and `v4.channel.k8s.io` for
port-forward (per port a data channel 2*i and an error channel 2*i+1; the server's first
message on each carries the port, little-endian).

Usage: ws_client.py MODE URL [ARG]; prints one JSON object with what it saw.
  exec URL       send "hello\n" on stdin, read stdout/stderr/status to the end
  tty URL        send a resize, then "stty size" lines until the size shows, then "exit 7"
  attach URL     send "hi\n", read until "echo:hi" appears
  forward URL P  send an HTTP/1.0 GET for P over the forwarded port, read the answer
"""

import json
import ssl
import sys
import time

import websocket

DEADLINE = 60.0


def connect(url, protocol="v4.channel.k8s.io"):
    ws = websocket.create_connection(
        url,
        subprotocols=[protocol],
        sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
        timeout=DEADLINE,
    )
    return ws


def frames(ws, until):
    """Reads binary messages until `until(seen)` holds or the socket closes."""
    seen = {"stdout": b"", "stderr": b"", "status": b"", "other": []}
    names = {1: "stdout", 2: "stderr", 3: "status"}
    end = time.time() + DEADLINE
    while time.time() < end and not until(seen):
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        if not data:
            continue
        name = names.get(data[0])
        if name:
            seen[name] += data[1:]
        else:
            seen["other"].append(data.hex())
    return seen


def text(seen, protocol):
    return {
        "protocol": protocol,
        "stdout": seen["stdout"].decode(errors="replace"),
        "stderr": seen["stderr"].decode(errors="replace"),
        "status": seen["status"].decode(errors="replace"),
    }


def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "exec":
        ws = connect(url)
        ws.send_binary(b"\x00hello\n")
        seen = frames(ws, lambda s: bool(s["status"]))
        print(json.dumps(text(seen, ws.getsubprotocol())))
    elif mode == "tty":
        ws = connect(url)
        ws.send_binary(b"\x04" + json.dumps({"Width": 123, "Height": 45}).encode())
        found = False
        end = time.time() + DEADLINE
        out = b""
        while time.time() < end and not found:
            ws.send_binary(b"\x00stty size\n")
            seen = frames(ws, lambda s: b"45 123" in s["stdout"] or len(s["stdout"]) > 0)
            out += seen["stdout"]
            found = b"45 123" in out
        ws.send_binary(b"\x00exit 7\n")
        seen = frames(ws, lambda s: bool(s["status"]))
        result = text(seen, ws.getsubprotocol())
        result["stdout"] = (out + seen["stdout"]).decode(errors="replace")
        print(json.dumps(result))
    elif mode == "attach":
        ws = connect(url)
        ws.send_binary(b"\x00hi\n")
        seen = frames(ws, lambda s: b"echo:hi" in s["stdout"])
        print(json.dumps(text(seen, ws.getsubprotocol())))
    elif mode == "forward":
        path = sys.argv[3]
        ws = connect(url)
        ports = {}
        # The server opens each channel with the port number.
        while len(ports) < 2:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            ports[data[0]] = int.from_bytes(data[1:3], "little")
        request = "GET /%s HTTP/1.0\r\nHost: pod\r\n\r\n" % path
        ws.send_binary(b"\x00" + request.encode())
        body = b""
        errors = b""
        end = time.time() + DEADLINE
        while time.time() < end:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE or not data:
                break
            if data[0] == 0:
                body += data[1:]
            elif data[0] == 1:
                errors += data[1:]
        print(json.dumps({
            "protocol": ws.getsubprotocol(),
            "ports": {str(k): v for k, v in ports.items()},
            "data": body.decode(errors="replace"),
            "error": errors.decode(errors="replace"),
        }))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
