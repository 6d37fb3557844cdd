"""WebSocket through the proxy (a raw tunnel after 101), and Expect: 100-continue."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess

from l7harness import Backend, Proxy, RawMember, pool, vip

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(payload: bytes, mask: bool) -> bytes:
    head = bytes([0x81])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read(sock) -> bytes:
    def exactly(n):
        out = b""
        while len(out) < n:
            d = sock.recv(n - len(out))
            if not d:
                raise EOFError
            out += d
        return out
    b0, b1 = exactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    key = exactly(4) if b1 & 0x80 else None
    data = exactly(n)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return data


class WsEchoMember(RawMember):
    """A WebSocket echo server on a raw socket: handshake, then echo each text frame."""

    def __init__(self):
        self.heads = []
        super().__init__()

    def serve(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        head = buf.split(b"\r\n\r\n")[0]
        self.heads.append(head)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        try:
            while True:
                msg = ws_read(c)
                c.sendall(ws_frame(b"echo:" + msg, mask=False))
        except (EOFError, OSError):
            c.close()


def test_websocket_echo_through_the_proxy():
    m = WsEchoMember()
    try:
        with Proxy(vip(), [pool("p", [m.port])]) as p:
            s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
            key = base64.b64encode(os.urandom(16))
            s.sendall(b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            resp = b""
            while b"\r\n\r\n" not in resp:
                resp += s.recv(4096)
            head = resp.split(b"\r\n\r\n")[0].lower()
            assert head.startswith(b"http/1.1 101")
            assert base64.b64encode(hashlib.sha1(key + GUID).digest()).lower() in head
            assert b"upgrade: websocket" in head
            for msg in (b"hello", b"x" * 70000, "ünïcode".encode()):
                s.sendall(ws_frame(msg, mask=True))
                assert ws_read(s) == b"echo:" + msg
            s.close()
            assert p.wait_idle()
        assert b"upgrade: websocket" in m.heads[0].lower()
        assert b"connection: upgrade" in m.heads[0].lower()
    finally:
        m.close()


def test_upgrade_refused_by_member_is_an_ordinary_response():
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                  b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        assert out.count(b"HTTP/1.1 200") == 2


def test_expect_100_continue_with_curl():
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        out = subprocess.run(["curl", "-sv", "-H", "Expect: 100-continue", "--data-binary", "@-",
                              f"http://127.0.0.1:{p.port}/up"], input=b"y" * 5000, capture_output=True, timeout=10)
        assert b"HTTP/1.1 100 Continue" in out.stderr
        assert json.loads(out.stdout)["body"] == "y" * 5000


def test_expect_100_continue_raw_client_waits_for_the_interim_response():
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"hello")
        rest = got.split(b"\r\n\r\n", 1)[1]
        while b"hello" not in rest:
            rest += s.recv(4096)
        assert b"HTTP/1.1 200" in rest
        s.close()
