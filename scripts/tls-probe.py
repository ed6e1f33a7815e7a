#!/usr/bin/env python3
"""Speaks to a tickforge TLS port with Python's own ssl module: GET /healthz
over https, then a WebSocket upgrade over TLS and a `hello` answered by
`welcome`. Prints what it saw as one JSON object (the integration test
`tls::python_ssl_and_openssl_s_client_speak_to_the_port` reads it).

    scripts/tls-probe.py HOST:PORT CA_FILE
"""
import base64
import json
import os
import socket
import ssl
import sys


def connect(host, port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((host, port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_until(sock, marker):
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    port, ca = int(port), sys.argv[2]
    report = {}

    with connect(host, port, ca) as s:
        report["version"] = s.version()
        report["alpn"] = s.selected_alpn_protocol()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        report["healthz_status"] = int(head.split(b" ")[1])
        report["healthz"] = body.decode()

    with connect(host, port, ca) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: tickforge.v1.json\r\n\r\n"
            ).encode()
        )
        data = read_until(s, b"\r\n\r\n")
        head, _, rest = data.partition(b"\r\n\r\n")
        report["upgrade_status"] = int(head.split(b" ")[1])
        # One masked text frame: hello.
        payload = b'{"type":"req","id":1,"body":{"type":"hello"}}'
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(frame)
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            rest += s.recv(4096)
        length = rest[1] & 0x7F
        report["welcome"] = rest[2 : 2 + length].decode()

    print(json.dumps(report))


if __name__ == "__main__":
    main()
