"""perf.scenarios: what each benchmark runs, and how its load generator's output is read.

A scenario runs one bounded load (wrk, iperf3 or perf/loadgen) on the load
core against one VIP of the proxy under test and returns the units of work
done (requests, connections, handshakes, datagrams, MiB) with throughput and
latency. CPU accounting around it is the harness's job (bench.py).
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Callable

from configs import HOST, Ports
from procs import die_with_parent

LOAD_CORE = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    unit: str            # what the CPU time is divided by
    rate_label: str      # throughput unit
    port: Callable[[Ports], int]
    proto: str           # tcp | udp: how readiness is probed
    proxies: tuple = ("adc", "haproxy", "nginx")


SCENARIOS = [
    Scenario("http-keepalive", "HTTP keep-alive, 128 B responses", "request", "req/s",
             lambda p: p.http, "tcp"),
    Scenario("http-newconn", "HTTP new connection per request", "request", "req/s",
             lambda p: p.http, "tcp"),
    Scenario("http-1mib", "HTTP 1 MiB downloads", "download", "downloads/s",
             lambda p: p.http, "tcp"),
    Scenario("tcp-bulk", "TCP bulk through an L4 VIP (iperf3)", "MiB", "Gbit/s",
             lambda p: p.tcp_bulk, "tcp"),
    Scenario("tcp-newconn", "TCP new connections (L4)", "connection", "conn/s",
             lambda p: p.tcp_conn, "tcp"),
    Scenario("udp-rr", "UDP request/response, 64 B datagrams", "datagram", "datagrams/s",
             lambda p: p.udp, "udp", ("adc", "nginx")),  # HAProxy 2.6 does not proxy UDP
    Scenario("tls-ecdsa", "TLS full handshakes, ECDSA P-256", "handshake", "hs/s",
             lambda p: p.https_ecdsa, "tcp"),
    Scenario("tls-rsa", "TLS full handshakes, RSA 2048", "handshake", "hs/s",
             lambda p: p.https_rsa, "tcp"),
    Scenario("tls-keepalive", "TLS keep-alive requests (ECDSA)", "request", "req/s",
             lambda p: p.https_ecdsa, "tcp"),
]

MEMORY = [
    # name, title, port, request sent on each connection before it goes idle
    ("mem-l7", "idle HTTP keep-alive connections (L7)", lambda p: p.http_idle,
     "GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"),
    ("mem-l4", "idle TCP connections (L4)", lambda p: p.tcp_idle, None),
]


def _to_ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]


def parse_wrk(out: str) -> dict:
    res = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if not m:
        raise RuntimeError("wrk printed no request count: " + out[-400:])
    res["ops"] = int(m.group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    res["p50_ms"] = _to_ms(lat.get("50", ""))
    res["p99_ms"] = _to_ms(lat.get("99", ""))
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        # a read "error" is the peer closing the connection; with Connection: close that is normal
        errs += int(m.group(1)) + int(m.group(3)) + int(m.group(4))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
    res["errors"] = errs
    return res


def run_wrk(url: str, conns: int, duration: float, headers=()) -> dict:
    argv = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s",
            "--latency", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 30,
                         start_new_session=True, preexec_fn=die_with_parent)
    return parse_wrk(out.stdout + out.stderr)


def run_loadgen(loadgen: str, mode: str, port: int, conns: int, duration: float, extra=()) -> dict:
    argv = ["taskset", "-c", str(LOAD_CORE), loadgen, mode, HOST, str(port), "-c", str(conns),
            "-d", str(duration), *extra]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30,
                         start_new_session=True, preexec_fn=die_with_parent)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if not line.startswith("{"):
        raise RuntimeError(f"loadgen {mode} failed: {out.stderr[-400:]}")
    r = json.loads(line)
    return {"ops": r["ops"], "errors": r["errors"], "p50_ms": r["p50_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3}


def run_iperf(port: int, duration: float) -> dict:
    argv = ["taskset", "-c", str(LOAD_CORE), "iperf3", "-c", HOST, "-p", str(port),
            "-t", str(max(1, round(duration))), "-J", "--connect-timeout", "3000"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30,
                         start_new_session=True, preexec_fn=die_with_parent)
    try:
        j = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError("iperf3 printed no JSON: " + (out.stdout + out.stderr)[-400:]) from None
    if "error" in j:
        raise RuntimeError("iperf3: " + j["error"])
    recv = j["end"]["sum_received"]
    return {"ops": recv["bytes"] / (1 << 20), "errors": 0, "p50_ms": None, "p99_ms": None,
            "gbps": recv["bits_per_second"] / 1e9}


def run(s: Scenario, ports: Ports, duration: float, loadgen: str) -> dict:
    """Run scenario s once against the proxy listening on ports; returns ops and latency."""
    port = s.port(ports)
    if s.name == "http-keepalive":
        return run_wrk(f"http://{HOST}:{port}/small", 50, duration)
    if s.name == "http-newconn":
        return run_wrk(f"http://{HOST}:{port}/small", 50, duration, ["Connection: close"])
    if s.name == "http-1mib":
        return run_wrk(f"http://{HOST}:{port}/1m", 8, duration)
    if s.name == "tcp-bulk":
        return run_iperf(port, duration)
    if s.name == "tcp-newconn":
        return run_loadgen(loadgen, "connect", port, 50, duration)
    if s.name == "udp-rr":
        r = run_loadgen(loadgen, "udp", port, 32, duration, ["-s", "64"])
        r["ops"] *= 2  # each round trip is two datagrams through the proxy
        return r
    if s.name in ("tls-ecdsa", "tls-rsa"):
        return run_loadgen(loadgen, "tls", port, 32, duration)
    if s.name == "tls-keepalive":
        return run_wrk(f"https://{HOST}:{port}/small", 50, duration)
    raise KeyError(s.name)
