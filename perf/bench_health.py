#!/usr/bin/env python3
"""perf/bench_health.py: CPU the health checker needs to keep 1,000 members at a 1 s interval.

    python perf/bench_health.py                      # tcp, http and udp monitors, 1000 members, 20 s each
    python perf/bench_health.py --kinds http --members 2000 --seconds 30

The checker runs in this process on uvloop, exactly as in the supervisor
(adc.health.checker.HealthChecker, fed an adc Config). The members are one
backend process (a child, so its CPU is not counted) listening on N ports of
a loopback address. The figure is this process's CPU time (user + system,
getrusage) over the measured window divided by the window: the share of one
core the checker uses. The goal (issue 6) is at most 25 % for 1,000 members
at 1 s. Checks per second and failures are printed so a run where the
backend could not keep up is visible.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

HOST = "127.88.0.1"
BASE_PORT = 12000          # below the ephemeral range, so no outgoing connection takes one
GOAL = 0.25

BACKEND = r'''
import asyncio, socket, sys, uvloop
host, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

class Http(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
    def data_received(self, d):
        if b"\r\n\r\n" in d:
            self.t.write(RESP)
            self.t.close()

class Echo(asyncio.DatagramProtocol):
    def connection_made(self, t):
        self.t = t
    def datagram_received(self, d, a):
        self.t.sendto(d, a)

async def main():
    loop = asyncio.get_running_loop()
    for p in range(base, base + n):
        await loop.create_server(Http, host, p, backlog=64, reuse_address=True)
        await loop.create_datagram_endpoint(Echo, local_addr=(host, p))
    print("ready", flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
'''


def monitor(kind: str) -> dict:
    m = {"name": "bench", "type": kind, "interval": "1s", "timeout": "500ms", "rise": 2, "fall": 2,
         "jitter": "100ms"}
    if kind == "http":
        m["path"] = "/healthz"
    if kind == "udp":
        m.update(send="ping", expect="ping")
    return m


async def measure(kind: str, members: int, seconds: float, warmup: float) -> dict:
    from adc.config.schema import Config
    from adc.health.checker import HealthChecker

    cfg = Config.model_validate({
        "monitors": [monitor(kind)],
        "pools": [{"name": "bench", "monitor": "bench",
                   "members": [{"address": HOST, "port": BASE_PORT + i} for i in range(members)]}],
    })
    downs = []
    hc = HealthChecker(lambda p, k, h: downs.append(k) if h == "down" else None)
    hc.configure(cfg)
    await asyncio.sleep(warmup)
    c0 = sum(c.checks for c in hc.checks.values())
    f0 = sum(c.failures for c in hc.checks.values())
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(seconds)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    c1 = sum(c.checks for c in hc.checks.values())
    f1 = sum(c.failures for c in hc.checks.values())
    details = {}
    for c in hc.checks.values():
        for h in c.history:
            if not h["ok"]:
                details[h["detail"]] = details.get(h["detail"], 0) + 1
    await hc.stop()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = t1 - t0
    return {"kind": kind, "members": members, "wall_s": round(wall, 2), "cpu_s": round(cpu, 3),
            "core_share": cpu / wall, "checks_per_s": (c1 - c0) / wall, "failures": f1 - f0,
            "failure_details": details, "marked_down": len(set(downs))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--kinds", default="tcp,http,udp")
    args = ap.parse_args(argv)

    import uvloop
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.members + 256)), hard))
    backend = subprocess.Popen([sys.executable, "-c", BACKEND, HOST, str(BASE_PORT), str(args.members)],
                               stdout=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: resource.setrlimit(
                                   resource.RLIMIT_NOFILE, (min(hard, 4 * args.members + 256), hard)))
    try:
        if backend.stdout.readline().strip() != "ready":
            print("backend did not start", file=sys.stderr)
            return 1
        results = []
        for kind in args.kinds.split(","):
            r = uvloop.run(measure(kind.strip(), args.members, args.seconds, args.warmup))
            results.append(r)
        print(f"health checker CPU, {args.members} members at 1s interval, {args.seconds:.0f}s window "
              f"(goal: at most {GOAL:.0%} of one core)")
        print(f"{'kind':6} {'core share':>10} {'checks/s':>9} {'failures':>9}  verdict")
        worst = 0.0
        for r in results:
            worst = max(worst, r["core_share"])
            verdict = "ok" if r["core_share"] <= GOAL else "OVER GOAL"
            print(f"{r['kind']:6} {r['core_share']:>10.1%} {r['checks_per_s']:>9.0f} {r['failures']:>9}  {verdict}"
                  + (f"  {r['failure_details']}" if r["failures"] else ""))
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
              "(a busy machine inflates the figures)")
        return 0 if worst <= GOAL else 1
    finally:
        backend.kill()
        backend.wait()


if __name__ == "__main__":
    sys.exit(main())
