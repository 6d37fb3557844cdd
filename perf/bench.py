#!/usr/bin/env python3
"""perf/bench.py: adc side by side with HAProxy and NGINX, on this machine, in one run.

    python perf/bench.py --quick      # one short repetition (< 3 min), prints the table
    python perf/bench.py --full       # several repetitions; writes perf/results/<date>.json,
                                      # perf/results/<date>.png and perf/RESULTS.md

The proxy under test runs pinned to core 0 (PROXY_CORE), the backends and the
load generators to core 1 (LOAD_CORE). The figure that compares proxies is
the proxy's own CPU time (utime+stime of all its processes, /proc/PID/stat)
per unit of work; throughput and latency are reported too, with each run
marked when the load side, not the proxy, was the bottleneck.
See docs/perf.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import configs  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
from configs import HOST, Ports  # noqa: E402
from procs import Procs  # noqa: E402

PROXY_CORE = 0
LOAD_CORE = scenarios.LOAD_CORE
REPO = os.path.dirname(HERE)
PROXIES = ("adc", "haproxy", "nginx")
IDLE_CONNS = 10_000


class Interrupted(BaseException):  # not an Exception: no scenario may swallow it
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- tools
def check_tools() -> list[str]:
    missing = [t for t in ("haproxy", "nginx", "wrk", "iperf3", "taskset", "openssl", "gcc")
               if not shutil.which(t) and not os.path.exists(f"/usr/sbin/{t}")]
    if not os.path.exists(configs.STREAM_MODULE):
        missing.append("libnginx-mod-stream")
    if not os.path.exists("/usr/include/openssl/ssl.h"):
        missing.append("libssl-dev")
    return missing


def ensure_tools() -> None:
    missing = check_tools()
    if missing:
        log(f"installing what the benchmarks need: {' '.join(missing)}")
        script = os.path.join(REPO, "scripts", "install-deps")
        subprocess.run([script], check=False)
        missing = check_tools()
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; run scripts/install-deps as root")


def build_loadgen(workdir: str) -> str:
    src = os.path.join(HERE, "loadgen.c")
    out = os.path.join(HERE, "work", "loadgen")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        subprocess.run(["gcc", "-O2", "-Wall", "-o", out, src, "-lssl", "-lcrypto"], check=True)
    return out


def find_adcd() -> str | None:
    for cand in (os.path.join(os.path.dirname(sys.executable), "adcd"),
                 os.path.join(REPO, ".venv", "bin", "adcd"), shutil.which("adcd")):
        if cand and os.path.exists(cand):
            return cand
    return None


def versions() -> dict:
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception as e:  # a missing tool is reported, not fatal here
            return f"unavailable ({e})"
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        adc_version = subprocess.run([sys.executable, "-c", "import adc; print(getattr(adc, '__version__', '?'))"],
                                     capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip() or "?"
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        # the tree measured may hold work not yet committed: say so
        dirty = [line for line in subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "adc", "cli"],
            capture_output=True, text=True, timeout=5).stdout.splitlines() if line.strip()]
        if dirty:
            rev += f", {len(dirty)} files changed since"
    except Exception:
        adc_version, rev = "?", "?"
    return {
        "adc": f"{adc_version} (git {rev})",
        "haproxy": first_line(["haproxy", "-v"]),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        "iperf3": first_line(["iperf3", "-v"]),
        "openssl": first_line(["openssl", "version"]),
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------- backends
def start_backends(pr: Procs, wd: str, ports: Ports, loadgen: str, budget: float, nofile: int) -> list:
    www = configs.make_docroot(wd)
    conf = configs.nginx_backend(wd, ports, www, nofile)
    pr.start("backend-nginx", ["nginx", "-p", os.path.join(wd, "nginx-backend"), "-c", conf], LOAD_CORE)
    pr.start("backend-iperf3", ["iperf3", "-s", "-B", HOST, "-p", str(ports.be_iperf)], LOAD_CORE)
    # the echo server ends on its own when the run's time budget is over
    pr.start("backend-udpecho", [loadgen, "udpecho", HOST, str(ports.be_udp), "-d", str(int(budget))], LOAD_CORE)
    for port in ports.backend_tcp():
        if not procs.wait_tcp(HOST, port, 10):
            raise RuntimeError(f"backend on port {port} did not come up; logs in {wd}")
    return list(pr.procs)


# ----------------------------------------------------------------- proxies
_ADC_REFUSED: set = set()   # config variants adcd failed to start with in this run
_ADC_LAST_ERROR = [""]


def start_proxy(name: str, pr: Procs, wd: str, ports: Ports, certs: dict, adcd: str | None,
                nofile: int, idle_conns: int):
    """Start one proxy under test; returns (Proc, set of VIPs it could not serve, note)."""
    if name in ("haproxy", "nginx"):
        if name == "haproxy":
            cfg = configs.haproxy_proxy(wd, ports, certs, nofile, idle_conns)
            p = pr.start("haproxy", ["haproxy", "-db", "-f", cfg], PROXY_CORE)
        else:
            cfg = configs.nginx_proxy(wd, ports, certs, nofile)
            p = pr.start("nginx", ["nginx", "-p", os.path.join(wd, "nginx-proxy"), "-c", cfg], PROXY_CORE)
        # listening means started: memory read before that would be the exec's, not the proxy's
        if not procs.wait_tcp(HOST, ports.http, 15, p):
            tail = p.log_tail()
            pr.stop(p)
            raise RuntimeError(f"{name} did not start: " + (tail[-600:] or "no output"))
        return p, set(), ""
    if adcd is None:
        raise RuntimeError("adcd is not installed (pip install -e . in the venv)")
    # the full config first; if adcd refuses it, without the TLS VIPs, then without UDP too,
    # so that one unfinished feature does not hide the figures of the others
    last = ""
    for with_tls, with_udp in ((True, True), (False, True), (False, False)):
        if (with_tls, with_udp) in _ADC_REFUSED:  # refused once: no need to wait for it again
            continue
        cfg = configs.adc_proxy(wd, ports, certs, with_tls, with_udp)
        sock = os.path.join(wd, "adc", "adcd.sock")
        p = pr.start("adcd", [adcd, "--config", cfg, "--socket", sock,
                              "--state-dir", os.path.join(wd, "adc", "state"), "--workers", "1"], PROXY_CORE)
        if procs.wait_tcp(HOST, ports.http, 15, p) or procs.wait_tcp(HOST, ports.tcp_bulk, 1, p):
            skipped = set()
            note = ""
            if not with_tls:
                skipped |= {ports.https_ecdsa, ports.https_rsa}
                note = "adcd refused the config with TLS VIPs"
            if not with_udp:
                skipped |= {ports.udp}
                note = "adcd refused the config with TLS and UDP VIPs"
            return p, skipped, note
        last = p.log_tail()
        pr.stop(p)
        _ADC_REFUSED.add((with_tls, with_udp))
        _ADC_LAST_ERROR[0] = last or _ADC_LAST_ERROR[0]
    raise RuntimeError("adcd did not start: " + (last[-600:] or _ADC_LAST_ERROR[0] or "no output"))


def vip_ready(s: scenarios.Scenario, port: int, timeout: float = 5) -> bool:
    if s.proto == "tcp":
        return procs.wait_tcp(HOST, port, timeout)
    # UDP: one datagram must come back through the proxy and the echo backend
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(0.3)
        while time.monotonic() < deadline:
            try:
                u.sendto(b"probe", (HOST, port))
                u.recvfrom(64)
                return True
            except OSError:
                time.sleep(0.1)
    return False


def warm(ports: Ports) -> None:
    try:
        urllib.request.urlopen(f"http://{HOST}:{ports.http}/small", timeout=3).read()
    except Exception:
        pass


# ----------------------------------------------------------------- measuring
def _children_cpu() -> float:
    """CPU of this process's reaped children: the load generators, which subprocess.run reaps."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(s: scenarios.Scenario, proxy, backends: list, ports: Ports, duration: float, loadgen: str) -> dict:
    def backends_cpu():
        return sum(procs.cpu_seconds(b.pid) for b in backends)
    c0, t0, w0 = procs.core_times(), procs.cpu_seconds(proxy.pid), time.monotonic()
    l0 = _children_cpu() + backends_cpu()
    r = scenarios.run(s, ports, duration, loadgen)
    c1, t1, w1 = procs.core_times(), procs.cpu_seconds(proxy.pid), time.monotonic()
    l1 = _children_cpu() + backends_cpu()
    wall = w1 - w0
    cpu = t1 - t0
    ops = r["ops"]
    if ops <= 0:
        raise RuntimeError(f"no {s.unit} completed ({r.get('errors', 0)} errors)")
    if r["errors"] > ops * 0.5:
        raise RuntimeError(f"{r['errors']} errors for {ops} {s.unit}s: mostly failures")
    proxy_util = cpu / wall
    load_util = (l1 - l0) / wall  # the load generator and the backends, all on the load core
    load_busy = procs.core_busy(c0, c1, LOAD_CORE)
    proxy_core_busy = procs.core_busy(c0, c1, PROXY_CORE)
    rate = ops / wall
    run = {
        "ops": ops, "wall_s": round(wall, 3), "proxy_cpu_s": round(cpu, 3),
        "cpu_us_per_unit": cpu / ops * 1e6,
        "rate": r["gbps"] if "gbps" in r else rate,
        "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "errors": r["errors"],
        "proxy_util": round(proxy_util, 3), "load_util": round(load_util, 3),
        "load_core_busy": round(load_busy, 3), "proxy_core_busy": round(proxy_core_busy, 3),
    }
    # who was the bottleneck: the proxy's core full of the proxy, or the load core full
    # (of the load side, or of other work) while the proxy had room to spare
    if proxy_util >= 0.9:
        run["bound"] = "proxy"
    elif load_busy >= 0.9:
        run["bound"] = "load"
    else:
        run["bound"] = "neither"
    # other work on either core (the machine is shared) makes the run noisy
    run["noisy"] = proxy_core_busy - proxy_util > 0.15 or load_busy - load_util > 0.15
    return run


def _settle(proxy, limit: float = 20) -> None:
    """Wait until the proxy has gone idle (less than 2% of a core over half a second)."""
    deadline = time.monotonic() + limit
    last = procs.cpu_seconds(proxy.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = procs.cpu_seconds(proxy.pid)
        if now - last < 0.01:
            return
        last = now


def measure_memory(name: str, port: int, request, proxy, loadgen: str, pr: Procs, conns: int,
                   hold: float) -> dict:
    _settle(proxy)
    before = procs.rss_bytes(proxy.pid)
    argv = [loadgen, "idle", HOST, str(port), "-c", str(conns), "-d", str(hold)]
    if request:
        argv += ["-r", request]
    g = pr.start(f"loadgen-{name}", argv, LOAD_CORE, stdout_pipe=True)
    ready = 0
    deadline = time.monotonic() + min(hold, 25)  # opening them takes a few seconds
    try:
        line = _readline(g.popen.stdout, deadline)
        if line.startswith("ready"):
            ready = int(line.split()[1])
            # the kernel completes a client's handshake before the proxy accepts it: wait until
            # the proxy has gone idle (accepted all, connected its members) before reading RSS
            _settle(proxy)
            after = procs.rss_bytes(proxy.pid)
        else:
            raise RuntimeError(f"idle connections never all opened ({line.strip() or 'no output'})")
    finally:
        pr.stop(g)
    if ready < conns * 0.99:
        raise RuntimeError(f"only {ready} of {conns} idle connections stayed open")
    delta = after - before
    # growth at IDLE_CONNS, scaled linearly when the fd limit allowed fewer connections
    return {"connections": ready, "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20,
            "delta_mib": delta / 2**20 * IDLE_CONNS / ready, "measured_delta_mib": delta / 2**20,
            "kib_per_conn": delta / 1024 / ready}


def _readline(f, deadline: float) -> str:
    import select
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([f], [], [], 0.2)
        if r:
            ch = os.read(f.fileno(), 256)
            if not ch:
                break
            buf += ch
            if b"\n" in buf:
                return buf.split(b"\n")[0].decode()
    return buf.decode()


# ----------------------------------------------------------------- run
def aggregate(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not runs:
        return {"status": "not run"}
    if not ok:
        return {"status": "failed", "reason": runs[-1]["error"] if runs else "not run", "runs": runs}
    out = {"status": "ok", "runs": runs, "reps": len(ok)}
    for k in ("cpu_us_per_unit", "rate", "p50_ms", "p99_ms"):
        vals = [r[k] for r in ok if r.get(k) is not None]
        if vals:
            out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    bounds = [r["bound"] for r in ok]
    out["bound"] = max(set(bounds), key=bounds.count)
    out["noisy"] = any(r["noisy"] for r in ok)
    out["errors"] = sum(r["errors"] for r in ok)
    return out


def write_report(results: dict, jpath: str, results_md: bool) -> None:
    """The PNG beside the JSON; the Markdown into perf/RESULTS.md (results_md) or beside the JSON."""
    stem = os.path.splitext(jpath)[0]
    png = report.plot(results, stem + ".png")
    if results_md:
        rel = os.path.relpath(os.path.dirname(jpath), HERE)
        md = report.markdown(results, f"{rel}/{os.path.basename(png)}" if png else None,
                             f"{rel}/{os.path.basename(jpath)}")
        mdpath = os.path.join(HERE, "RESULTS.md")
    else:
        md = report.markdown(results, os.path.basename(png) if png else None, os.path.basename(jpath))
        mdpath = stem + ".md"
    with open(mdpath, "w") as f:
        f.write(md)
    log(f"wrote {jpath}, {mdpath}" + (f", {png}" if png else ""))


def render(jpath: str) -> int:
    """Re-render the table, plot and Markdown of a recorded run without running anything."""
    with open(jpath) as f:
        results = json.load(f)
    report.add_ratios(results)
    with open(jpath, "w") as f:  # ratios and targets as the current report computes them
        json.dump(results, f, indent=1, sort_keys=False)
    print(report.table_text(results))
    in_results = os.path.abspath(os.path.dirname(jpath)) == os.path.join(HERE, "results")
    write_report(results, jpath, results_md=in_results)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 repetition of 2 s per scenario (< 3 min)")
    mode.add_argument("--full", action="store_true", help="5 repetitions of 8 s per scenario (default)")
    ap.add_argument("--reps", type=int, help="repetitions per scenario and proxy")
    ap.add_argument("--duration", type=float, help="seconds per run")
    ap.add_argument("--proxies", default=",".join(PROXIES), help="comma list of adc,haproxy,nginx")
    ap.add_argument("--scenarios", default="all", help="comma list of scenario names, or all")
    ap.add_argument("--no-memory", action="store_true", help="skip the 10,000 idle connections test")
    ap.add_argument("--port-base", type=int, default=23100, help="ports used: BASE+1 .. BASE+17")
    ap.add_argument("--adcd", help="the adcd to run (default: the venv's)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    ap.add_argument("--out", help="where to write results (default: perf/results for a whole --full run, perf/work otherwise)")
    ap.add_argument("--render", metavar="JSON", help="only re-render the table, plot and RESULTS.md of a recorded run")
    args = ap.parse_args()
    if args.render:
        return render(args.render)

    quick = args.quick
    # only a whole run of every proxy and scenario replaces the recorded results; a partial one
    # (a subset, other repetitions) goes to perf/work so it cannot overwrite them by accident
    partial = (args.reps is not None or args.duration is not None or args.scenarios != "all"
               or set(args.proxies.split(",")) != set(PROXIES) or args.no_memory)
    reps = args.reps or (1 if quick else 5)
    duration = args.duration or (2.0 if quick else 8.0)
    wanted = set(args.proxies.split(","))
    selected = [s for s in scenarios.SCENARIOS if args.scenarios == "all" or s.name in args.scenarios.split(",")]
    memory = [] if args.no_memory else [m for m in scenarios.MEMORY
                                         if args.scenarios == "all" or m[0] in args.scenarios.split(",")]
    proxies = [p for p in PROXIES if p in wanted]
    ports = Ports(args.port_base)

    if (os.cpu_count() or 1) < 2:
        sys.exit("bench: needs 2 cores (proxy on core 0, load and backends on core 1)")
    ensure_tools()
    busy = [p for p in ports.backend_tcp() + ports.vip_tcp() if not procs.port_free(HOST, p)]
    if busy:
        sys.exit(f"bench: ports in use: {busy}; pick others with --port-base")
    # 10,000 idle connections through an L4 proxy take 20,000 descriptors in it
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # an L7 proxy holds one descriptor per idle client connection, an L4 proxy two (client and
    # member); keep room for listeners and pipes
    idle = {"mem-l7": min(IDLE_CONNS, nofile - 1000), "mem-l4": min(IDLE_CONNS, (nofile - 2000) // 2)}
    idle_conns = max(idle.values())
    short = {k: v for k, v in idle.items() if v < IDLE_CONNS}
    if short:
        log(f"open-files limit is {nofile} and cannot be raised here: "
            + ", ".join(f"{k} holds {v} idle connections" for k, v in short.items())
            + f" and scales the growth to {IDLE_CONNS}")

    wd = tempfile.mkdtemp(prefix="adc-bench-")
    os.chmod(wd, 0o755)  # NGINX workers run unprivileged and serve files from here
    pr = Procs(wd)

    def on_signal(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    started = dt.datetime.now(dt.timezone.utc)
    results = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if quick else "full",
        "reps": reps, "duration_s": duration,
        "proxy_core": PROXY_CORE, "load_core": LOAD_CORE,
        "versions": versions(),
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
        "scenarios": {s.name: {"title": s.title, "unit": s.unit, "rate_label": s.rate_label, "proxies": {}}
                      for s in selected},
        "memory": {m[0]: {"title": m[1], "proxies": {}} for m in memory},
        "notes": [],
        "idle_connections": idle,
    }
    for k, v in short.items():
        results["notes"].append(f"the open-files limit here ({nofile}, not raisable in this container) allowed "
                                f"{v} idle connections in {k}; its memory growth is scaled to {IDLE_CONNS}")
    raw = {s.name: {p: [] for p in proxies if p in s.proxies} for s in selected}
    mem_raw = {m[0]: {p: [] for p in proxies} for m in memory}
    interrupted = False
    try:
        loadgen = build_loadgen(wd)
        certs = configs.make_certs(wd)
        adcd = args.adcd or find_adcd()
        budget = reps * len(proxies) * (len(selected) * (duration + 8) + 120) + 300
        backends = start_backends(pr, wd, ports, loadgen, budget, nofile)
        log(f"workdir {wd}; {reps} x {duration:g} s per scenario; proxies {', '.join(proxies)}")
        for rep in range(reps):
            for name in proxies:  # proxies interleaved, so slow drift on the machine hits all alike
                def launch():
                    """The proxy, or None after recording why it did not start."""
                    try:
                        proxy, skipped, note = start_proxy(name, pr, wd, ports, certs, adcd, nofile, idle_conns)
                    except Exception as e:
                        log(f"{name}: failed to start: {e}")
                        return None, {"error": f"proxy did not start: {' '.join(str(e).split())}"}
                    if note and note not in results["notes"]:
                        results["notes"].append(note)
                    warm(ports)
                    return proxy, skipped

                if rep == 0:  # memory once per proxy, each test on a fresh process
                    for mname, title, port_of, request in memory:
                        proxy, skipped = launch()
                        if proxy is None:
                            mem_raw[mname][name].append(skipped)
                            continue
                        try:
                            r = measure_memory(mname, port_of(ports), request, proxy, loadgen, pr,
                                               idle[mname], hold=60)
                            log(f"{name:8} {mname:15} +{r['delta_mib']:.1f} MiB for {r['connections']} "
                                f"connections ({r['kib_per_conn']:.2f} KiB each)")
                        except Exception as e:
                            r = {"error": str(e)}
                            log(f"{name:8} {mname:15} FAILED: {e}")
                        finally:
                            pr.stop(proxy)
                        mem_raw[mname][name].append(r)
                if not any(name in raw[s.name] for s in selected):
                    continue
                proxy, skipped = launch()
                if proxy is None:
                    for s in selected:
                        if name in raw[s.name]:
                            raw[s.name][name].append(skipped)
                    continue
                try:
                    for s in selected:
                        if name not in s.proxies:
                            continue
                        port = s.port(ports)
                        if not proxy.alive():
                            raw[s.name][name].append({"error": "proxy exited: " + proxy.log_tail()[-300:]})
                            continue
                        if port in skipped or not vip_ready(s, port):
                            raw[s.name][name].append({"error": f"VIP {HOST}:{port} not serving"})
                            log(f"{name:8} {s.name:15} FAILED: VIP not serving")
                            continue
                        try:
                            r = measure(s, proxy, backends, ports, duration, loadgen)
                            log(f"{name:8} {s.name:15} {r['cpu_us_per_unit']:9.2f} us/{s.unit:10} "
                                f"{r['rate']:10.1f} {s.rate_label:11} util {r['proxy_util']:.2f} "
                                f"load side {r['load_util']:.2f} load core {r['load_core_busy']:.2f} {r['bound']}-bound"
                                + (" noisy" if r["noisy"] else ""))
                        except Exception as e:
                            r = {"error": str(e)[:500]}
                            log(f"{name:8} {s.name:15} FAILED: {e}")
                        raw[s.name][name].append(r)
                finally:
                    pr.stop(proxy)
    except Interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        interrupted = True
        log("interrupted: stopping everything")
    finally:
        pr.stop_all()

    for s in selected:
        for p, runs in raw[s.name].items():
            results["scenarios"][s.name]["proxies"][p] = aggregate(runs)
        for p in PROXIES:
            if p not in s.proxies:
                results["scenarios"][s.name]["proxies"][p] = {"status": "n/a", "reason": f"{p} does not proxy UDP"}
    for m in memory:
        for p, runs in mem_raw[m[0]].items():
            ok = [r for r in runs if "error" not in r]
            results["memory"][m[0]]["proxies"][p] = (
                {"status": "ok", **ok[0]} if ok else {"status": "not run"} if not runs else
                {"status": "failed", "reason": runs[-1]["error"]})
    results["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    results["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["interrupted"] = interrupted
    report.add_ratios(results)
    noisy = [f"{n}/{p}" for n, sc in results["scenarios"].items() for p, e in sc["proxies"].items() if e.get("noisy")]
    load = max(float(results["loadavg_before"][0]), float(results["loadavg_after"][0]))
    if noisy or load > 0.5:
        results["caveat"] = (f"the machine was not quiet (load average up to {load:.2f} from other work; "
                             f"{len(noisy)} scenario/proxy pairs had other work on the proxy's core): "
                             "figures are noisy; rerun on a quiet machine before drawing conclusions.")

    print(report.table_text(results))
    if interrupted or partial:  # a partial run never replaces the recorded results
        quick = True
    outdir = args.out or (os.path.join(HERE, "results") if not quick else os.path.join(HERE, "work"))
    os.makedirs(outdir, exist_ok=True)
    stem = started.strftime("%Y-%m-%d") if not quick else "quick-" + started.strftime("%Y-%m-%d")
    jpath = os.path.join(outdir, stem + ".json")
    with open(jpath, "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
    write_report(results, jpath, results_md=not quick and args.out is None)
    if args.keep:
        log(f"kept {wd}")
    else:
        shutil.rmtree(wd, ignore_errors=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
