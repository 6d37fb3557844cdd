"""Helpers for fast-path tests: start the worker-shaped proxy process and backend processes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


class Proc:
    def __init__(self, argv):
        self.p = subprocess.Popen([sys.executable] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=_env(), cwd=REPO)
        self.first = self.p.stdout.readline()
        if not self.first:
            raise RuntimeError(f"{argv[0]} did not start")

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Backend(Proc):
    def __init__(self, kind, name, greet=False):
        super().__init__([os.path.join(HERE, "backend.py"), kind, name] + (["--greet"] if greet else []))
        self.name = name
        self.port = int(self.first)
        self.key = f"127.0.0.1:{self.port}"


def member(port, **kw):
    return dict(key=f"127.0.0.1:{port}", address="127.0.0.1", port=port, **kw)


def closed_port():
    """A loopback port with nobody listening: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proxy(Proc):
    def __init__(self, pools, vips, address="127.0.0.1"):
        super().__init__([os.path.join(HERE, "lbproc.py"),
                          json.dumps({"pools": pools, "vips": vips, "address": address})])
        self.ports = json.loads(self.first)["ports"]
        self.address = address

    def addr(self, vip):
        return (self.address, self.ports[vip])

    def cmd(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())["ok"]

    def conns(self):
        return self.cmd(cmd="conns")

    def wait_for(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.02)
        return pred()


def recv_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(1 << 20, n - len(buf)))
        if not d:
            break
        buf += d
    return bytes(buf)


def recv_all(s):
    buf = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            return bytes(buf)
        buf += d


def backends(procs, n, greet=True):
    """n TCP backends named b0..b(n-1); each greets a new connection with its name unless greet=False."""
    out = [Backend("tcp", f"b{i}", greet=greet) for i in range(n)]
    procs.extend(out)
    return out


def greeting(s):
    """The name a greeting backend sent first: which member the proxy chose."""
    line = b""
    while not line.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        line += d
    return line.decode().strip()


def closed_by_proxy(s):
    try:
        return s.recv(10) == b""
    except ConnectionResetError:
        return True
