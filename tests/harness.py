"""Test harness: the real adcd, real backends and real clients, each test on its own loopback address.

Every test gets a fresh 127.x.y.z, so the example's ports can stay as
written and tests never collide with each other or with a running demo.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
EXAMPLES = SHARED / "examples"
BIN = Path(sys.executable).parent
ADCD = str(BIN / "adcd")
ADCCTL = str(BIN / "adcctl")

_seq = itertools.count(random.randrange(0, 64) * 254)
_NET = 100 + os.getpid() % 128     # concurrent test processes (xdist, a second run) get apart


def fresh_ip() -> str:
    """A loopback address no other test uses (all of 127/8 answers on lo)."""
    n = next(_seq) % (256 * 254)
    return f"127.{_NET}.{n // 254}.{n % 254 + 1}"


def example(name: str, ip: str) -> str:
    """The shared example, as written, with only its addresses changed."""
    path = EXAMPLES / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: the shared examples must sit beside the repository")
    return path.read_text().replace("127.0.0.1", ip)


def wait_port(ip: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {ip}:{port} after {timeout}s")
            time.sleep(0.05)


class Proc:
    """A child process we started and stop by PID."""

    def __init__(self, argv: list[str], log: Path, env: Optional[dict] = None):
        self.log_path = log
        self._log = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        self.pid = self.p.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> Optional[int]:
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.p.wait(5)
        self._log.close()
        return self.p.returncode


class Backends(Proc):
    """HTTP backends named by port, TCP echo and UDP echo servers on one address."""

    def __init__(self, tmp: Path, ip: str, http: dict[int, str] = {}, tcp_echo=(), udp_echo=()):
        argv = [sys.executable, "-m", "adc.demo", "backends", "--host", ip]
        for port, name in http.items():
            argv += ["--http", f"{port}:{name}"]
        for p in tcp_echo:
            argv += ["--tcp-echo", str(p)]
        for p in udp_echo:
            argv += ["--udp-echo", str(p)]
        super().__init__(argv, tmp / f"backends-{ip}.log")
        for port in list(http) + list(tcp_echo):
            wait_port(ip, port)


class Adcd(Proc):
    """A real adcd on a config file of the test's, with its own socket and state dir."""

    def __init__(self, tmp: Path, config_text: str, workers: int = 2, name: str = "adc.yaml",
                 wait_vips: bool = True, extra: list[str] = (), env: Optional[dict] = None):
        self.tmp = tmp
        self.config = tmp / name
        self.config.write_text(config_text)
        self.socket = str(tmp / "adcd.sock")
        self.state_dir = tmp / "state"
        argv = [ADCD, "--config", str(self.config), "--socket", self.socket,
                "--state-dir", str(self.state_dir), "--workers", str(workers), *extra]
        self.env = env
        super().__init__(argv, tmp / "adcd.log", env=dict(os.environ, **env) if env else None)
        deadline = time.monotonic() + 20
        while True:
            if self.p.poll() is not None:
                raise RuntimeError(f"adcd exited {self.p.returncode}:\n{self.log()}")
            try:
                # the socket file appears at bind(), a moment before listen(): ask, don't stat
                api_call(self.socket, "GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"adcd did not answer on its socket:\n{self.log()}")
                time.sleep(0.05)
        if wait_vips:
            for v in self.api("GET", "/vips"):
                if v["protocol"] != "udp":
                    wait_port(v["address"], v["port"])

    # ------------------------------------------------------------ control
    def api(self, method: str, path: str, body=None, expect: int = 200):
        status, data = api_call(self.socket, method, path, body)
        if expect is not None and status != expect:
            raise AssertionError(f"{method} {path}: {status} {data}")
        return data

    def ctl(self, *args: str, input: Optional[str] = None, timeout: float = 30) -> subprocess.CompletedProcess:
        env = dict(os.environ, ADC_SOCKET=self.socket)
        return subprocess.run([ADCCTL, *args], capture_output=True, text=True, env=env, input=input,
                              timeout=timeout)

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.api("GET", "/workers") if w["alive"]]


def unix_request(sock_path: str, method: str, path: str, data: Optional[bytes] = None):
    """(status, headers, body) of one request to adcd's Unix socket."""
    class UnixConn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(sock_path)

    c = UnixConn("adcd")
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, dict(r.getheaders()), out


def api_call(sock_path: str, method: str, path: str, body=None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    status, _, out = unix_request(sock_path, method, "/api/v1" + path, data)
    return status, json.loads(out) if out else None


def http_get(ip: str, port: int, path: str = "/", timeout: float = 5.0, headers: dict = {}) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def tcp_roundtrip(ip: str, port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def udp_roundtrip(ip: str, port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (ip, port))
        data, _ = s.recvfrom(65535)
        return data


def members(d: Adcd, pool: str) -> dict[str, dict]:
    """`adcctl member list POOL -o json`, by member key."""
    r = d.ctl("member", "list", pool, "-o", "json")
    assert r.returncode == 0, r.stderr
    return {m["key"]: m for m in json.loads(r.stdout)}


def wait_for(pred, limit: float, what: str, d: Optional[Adcd] = None) -> float:
    """Poll pred until it holds; the seconds it took. Fails with `what` (and adcd's log when
    given) after `limit` seconds."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > limit:
            log = f"\n{d.log()[-3000:]}" if d is not None else ""
            raise AssertionError(f"{what}: not within {limit}s{log}")
        time.sleep(0.02)
    return time.monotonic() - t0


def echo(s: socket.socket, data: bytes) -> bytes:
    """Send data on s and read back as many bytes (fewer if the peer closes)."""
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(len(data) - len(got))
        if not chunk:
            break
        got += chunk
    return got
