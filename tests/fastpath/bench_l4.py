"""L4 side-by-side benchmark of the fast path against HAProxy (mode tcp, splice) and NGINX stream.

Not a test: run by hand, proxies pinned to core 0, load on core 1, short bounded runs.
    .venv/bin/python tests/fastpath/bench_l4.py [--duration 5] [--only bulk,conn,udp,idle]
Prints proxy CPU seconds per unit of work and the ratios adc/haproxy and adc/nginx.
The engine runs inside a uvloop loop (tests/fastpath/lbproc.py), as in a worker.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOADGEN = os.path.join(REPO, "perf", "work", "loadgen")
H = "127.44.0.1"      # a loopback address of our own: no port clashes with other runs
P = dict(be_iperf=39001, be_close=39002, be_udp=39003, be_idle=39004,
         adc_bulk=39011, adc_conn=39012, adc_udp=39013, adc_idle=39014,
         hap_bulk=39021, hap_conn=39022, hap_idle=39024,
         ngx_bulk=39031, ngx_conn=39032, ngx_udp=39033, ngx_idle=39034)
TICK = os.sysconf("SC_CLK_TCK")
started = []
ENGINE_THREAD = False


def spawn(argv, core=None, **kw):
    if core is not None:
        argv = ["taskset", "-c", str(core)] + argv
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    started.append(p)
    return p


def tree_cpu(pid):
    """utime+stime (s) of pid and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                kids.setdefault(int(st[1]), []).append(int(d))
            except OSError:
                pass
    total, todo = 0.0, [pid]
    while todo:
        q = todo.pop()
        try:
            st = open(f"/proc/{q}/stat").read().rsplit(")", 1)[1].split()
            total += (int(st[11]) + int(st[12])) / TICK
        except OSError:
            pass
        todo += kids.get(q, [])
    return total


def tree_rss_kib(pid):
    total = 0
    for q in [pid] + [int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == pid]:
        try:
            total += next(int(l.split()[1]) for l in open(f"/proc/{q}/status") if l.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
    return total


def _ppid(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def wait_port(port, udp=False, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp:
            return
        try:
            socket.create_connection((H, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_backends():
    spawn(["iperf3", "-s", "-p", str(P["be_iperf"]), "-B", H], core=1, stdout=subprocess.DEVNULL)
    close_srv = (
        "import asyncio,uvloop\n"
        "class C(asyncio.Protocol):\n"
        "  def connection_made(s,t): t.write(b'x'); t.close()\n"
        "async def m():\n"
        f"  await asyncio.get_running_loop().create_server(C,'{H}',{P['be_close']},backlog=4096)\n"
        "  await asyncio.Event().wait()\n"
        "uvloop.run(m())\n")
    spawn([sys.executable, "-c", close_srv], core=1)
    spawn([LOADGEN, "udpecho", H, str(P["be_udp"]), "-d", "100000"], core=1, stdout=subprocess.DEVNULL)
    idle_srv = (
        "import asyncio,uvloop\n"
        "async def m():\n"
        f"  await asyncio.get_running_loop().create_server(asyncio.Protocol,'{H}',{P['be_idle']},backlog=4096)\n"
        "  await asyncio.Event().wait()\n"
        "uvloop.run(m())\n")
    spawn([sys.executable, "-c", idle_srv], core=1)
    for k in ("be_close", "be_idle"):
        wait_port(P[k])
    time.sleep(0.3)            # iperf3: never probe it, a bare connect upsets its control channel


def start_adc():
    def pool(name, port):
        return dict(name=name, members=[dict(key=f"{H}:{port}", address=H, port=port)])
    cfg = {"address": H, "pools": [pool("bulk", P["be_iperf"]), pool("conn", P["be_close"]), pool("udp", P["be_udp"]),
                     pool("idle", P["be_idle"])],
           "vips": [dict(name="bulk", protocol="tcp", port=P["adc_bulk"], default_pool="bulk"),
                    dict(name="conn", protocol="tcp", port=P["adc_conn"], default_pool="conn"),
                    dict(name="udp", protocol="udp", port=P["adc_udp"], default_pool="udp"),
                    dict(name="idle", protocol="tcp", port=P["adc_idle"], default_pool="idle")]}
    env = dict(os.environ, PYTHONPATH=REPO)
    if ENGINE_THREAD:
        env["ADC_ENGINE_THREAD"] = "1"
    p = spawn([sys.executable, os.path.join(HERE, "lbproc.py"), json.dumps(cfg)], core=0,
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    p.stdout.readline()
    return p


def start_haproxy(d):
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 9200
    maxpipes 300
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    maxconn 9200
    backlog 4096
listen bulk
    option splice-auto
    bind {H}:{P['hap_bulk']}
    server s1 {H}:{P['be_iperf']}
listen conn
    option splice-auto
    bind {H}:{P['hap_conn']}
    server s1 {H}:{P['be_close']}
listen idle
    option splice-auto
    bind {H}:{P['hap_idle']}
    server s1 {H}:{P['be_idle']}
""")
    p = spawn(["haproxy", "-db", "-f", cfg], core=0, stderr=subprocess.DEVNULL)
    wait_port(P["hap_bulk"])
    return p


def start_nginx(d):
    cfg = os.path.join(d, "nginx.conf")
    with open(cfg, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/nginx.err crit;
events {{ worker_connections 24000; }}
stream {{
    server {{ listen {H}:{P['ngx_bulk']}; proxy_pass {H}:{P['be_iperf']}; }}
    server {{ listen {H}:{P['ngx_conn']}; proxy_pass {H}:{P['be_close']}; }}
    server {{ listen {H}:{P['ngx_idle']}; proxy_pass {H}:{P['be_idle']}; }}
    server {{ listen {H}:{P['ngx_udp']} udp; proxy_pass {H}:{P['be_udp']}; proxy_timeout 30s; }}
}}
""")
    p = spawn(["nginx", "-c", cfg, "-p", d], core=0, stderr=subprocess.DEVNULL)
    wait_port(P["ngx_bulk"])
    return p


def measure(pid, fn):
    c0 = tree_cpu(pid)
    ops = fn()
    return ops, tree_cpu(pid) - c0


def bulk(port, dur):
    out = subprocess.run(["taskset", "-c", "1", "iperf3", "-c", H, "-p", str(port), "-t", str(dur), "-J"],
                         capture_output=True, text=True)
    return json.loads(out.stdout)["end"]["sum_received"]["bytes"] / (1 << 20)


def loadgen(mode, port, dur, conc, extra=()):
    out = subprocess.run(["taskset", "-c", "1", LOADGEN, mode, H, str(port), "-c", str(conc), "-d", str(dur),
                          *extra], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["ops"]


IDLE_N = 9000     # the container's hard fd limit is 20,000: a proxy holds 2 fds per connection


def idle_rss(pid, port, n=IDLE_N):
    before = tree_rss_kib(pid)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.connect((H, port))
        socks.append(s)
    time.sleep(1.0)
    after = tree_rss_kib(pid)
    for s in socks:
        s.close()
    return (after - before) / 1024 * 10000 / n     # scaled to 10,000 connections


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="bulk,conn,udp,idle")
    ap.add_argument("--engine-thread", action="store_true",
                    help="run adc's engine in a thread of its own instead of a reader in the uvloop loop")
    a = ap.parse_args()
    global ENGINE_THREAD
    ENGINE_THREAD = a.engine_thread
    only = a.only.split(",")
    d = tempfile.mkdtemp(prefix="adc-bench-l4-")
    rows = []
    try:
        start_backends()
        adc = start_adc()
        hap = start_haproxy(d)
        ngx = start_nginx(d)
        time.sleep(0.5)
        procs = {"adc": (adc.pid, "adc"), "haproxy": (hap.pid, "hap"), "nginx": (ngx.pid, "ngx")}
        if "bulk" in only:
            r = {}
            for name, (pid, pre) in procs.items():
                mib, cpu = measure(pid, lambda: bulk(P[pre + "_bulk"], a.duration))
                r[name] = (mib / cpu, mib / a.duration)
            rows.append(("tcp bulk, MiB per proxy CPU-second (higher is better)", r))
        if "conn" in only:
            r = {}
            for name, (pid, pre) in procs.items():
                n, cpu = measure(pid, lambda: loadgen("connect", P[pre + "_conn"], a.duration, 50))
                r[name] = (cpu / n * 1e6, n / a.duration)
            rows.append(("tcp new connection, proxy CPU-us per connection (lower is better)", r))
        if "udp" in only:
            r = {}
            for name, (pid, pre) in procs.items():
                if name == "haproxy":
                    continue
                n, cpu = measure(pid, lambda: 2 * loadgen("udp", P[pre + "_udp"], a.duration, 32, ["-s", "64"]))
                r[name] = (cpu / n * 1e6, n / a.duration)
            rows.append(("udp 64 B request/response, proxy CPU-us per datagram (lower is better)", r))
        if "idle" in only:
            r = {}
            for name, (pid, pre) in procs.items():
                r[name] = (idle_rss(pid, P[pre + "_idle"]), 0)
            rows.append(("idle TCP connections, proxy RSS growth in MiB per 10,000 (measured with 9,000; lower is better)", r))
    finally:
        for p in reversed(started):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in started:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
    for title, r in rows:
        print(title)
        for name, (v, rate) in r.items():
            extra = f"   (rate {rate:,.0f}/s)" if rate else ""
            print(f"  {name:8s} {v:12.2f}{extra}")
        if "haproxy" in r:
            print(f"  adc/haproxy = {r['adc'][0] / r['haproxy'][0]:.2f}")
        if "nginx" in r:
            print(f"  adc/nginx   = {r['adc'][0] / r['nginx'][0]:.2f}")


if __name__ == "__main__":
    main()
