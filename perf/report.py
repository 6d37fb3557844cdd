"""perf.report: ratios, the tables (terminal and RESULTS.md) and the PNG plot of one run's results."""
from __future__ import annotations

import subprocess
import sys

NAMES = {"adc": "adc", "haproxy": "HAProxy", "nginx": "NGINX"}
OTHERS = ("haproxy", "nginx")


def _median(entry: dict, key: str):
    if entry.get("status") != "ok" or key not in entry:
        return None
    return entry[key]["median"]


def add_ratios(results: dict) -> None:
    """adc/HAProxy and adc/NGINX of the medians: CPU per unit (lower is better for adc),
    throughput (higher is better), and for memory the growth at 10,000 idle connections."""
    for sc in results["scenarios"].values():
        p = sc["proxies"]
        sc["ratios"] = {}
        for other in OTHERS:
            for key in ("cpu_us_per_unit", "rate"):
                a, b = _median(p.get("adc", {}), key), _median(p.get(other, {}), key)
                sc["ratios"][f"{key}:adc/{other}"] = a / b if a is not None and b else None
    for m in results["memory"].values():
        p = m["proxies"]
        m["ratios"] = {}
        for other in OTHERS:
            a, b = p.get("adc", {}), p.get(other, {})
            ok = a.get("status") == "ok" and b.get("status") == "ok" and b["delta_mib"] > 0
            m["ratios"][f"adc/{other}"] = a["delta_mib"] / b["delta_mib"] if ok else None
    results["targets"] = targets(results)


def _num(v, digits=3) -> str:
    if v is None:
        return "–"
    if v == 0:
        return "0"
    mag = abs(v)
    if mag >= 100:
        return f"{v:.0f}"
    if mag >= 10:
        return f"{v:.1f}"
    if mag >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _cell(entry: dict, key: str) -> str:
    st = entry.get("status")
    if st is None or st == "not run":
        return "not run"
    if st == "n/a":
        return "n/a"
    if st != "ok":
        return "FAILED"
    if key not in entry:
        return "–"
    v = entry[key]
    if entry.get("reps", 1) > 1:
        return f"{_num(v['median'])} ({_num(v['min'])}–{_num(v['max'])})"
    return _num(v["median"])


def _one_line(v) -> str:
    return " ".join(str(v).split())[:120].replace("|", "/")


def _ratio(v) -> str:
    return "–" if v is None else f"{v:.2f}x"


def _tables(results: dict) -> list[str]:
    out = []
    out.append("Proxy CPU time per unit of work, µs (lower is better); median (min–max) over repetitions")
    out.append("")
    out.append("| scenario | per | adc | HAProxy | NGINX | adc/HAProxy | adc/NGINX |")
    out.append("|---|---|---|---|---|---|---|")
    for name, sc in results["scenarios"].items():
        p = sc["proxies"]
        r = sc.get("ratios", {})
        out.append(f"| {sc['title']} | {sc['unit']} | {_cell(p.get('adc', {}), 'cpu_us_per_unit')} | "
                   f"{_cell(p.get('haproxy', {}), 'cpu_us_per_unit')} | "
                   f"{_cell(p.get('nginx', {}), 'cpu_us_per_unit')} | "
                   f"{_ratio(r.get('cpu_us_per_unit:adc/haproxy'))} | {_ratio(r.get('cpu_us_per_unit:adc/nginx'))} |")
    out.append("")
    out.append("Throughput and latency (median); `bound`: which side was the bottleneck "
               "(load = the load core was full while the proxy was not: throughput there measures the load side; "
               "load side = load generator + backends; noisy = other work took > 15% of either core)")
    out.append("")
    out.append("| scenario | proxy | throughput | p50 ms | p99 ms | proxy CPU use | load side CPU use "
               "| load core busy | bound | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, sc in results["scenarios"].items():
        for proxy, e in sc["proxies"].items():
            if e.get("status") in ("n/a", "not run"):
                continue
            if e.get("status") != "ok":
                out.append(f"| {name} | {NAMES[proxy]} | FAILED: {_one_line(e.get('reason', ''))} "
                           "| | | | | | | |")
                continue
            ok = [x for x in e["runs"] if "error" not in x]
            util = sorted(x["proxy_util"] for x in ok)[len(ok) // 2]
            load = sorted(x["load_core_busy"] for x in ok)[len(ok) // 2]
            lutil = [x["load_util"] for x in ok if "load_util" in x]
            lutil_s = f"{sorted(lutil)[len(lutil) // 2]:.0%}" if lutil else "–"
            bound = e["bound"] + (" (noisy)" if e.get("noisy") else "")
            out.append(f"| {name} | {NAMES[proxy]} | {_cell(e, 'rate')} {sc['rate_label']} | {_cell(e, 'p50_ms')} | "
                       f"{_cell(e, 'p99_ms')} | {util:.0%} | {lutil_s} | {load:.0%} | {bound} | {e.get('errors', 0)} |")
    checks = targets(results)
    if checks:
        out.append("")
        out.append("Targets of the L4 (#4), L7 (#5) and TLS (#7) issues, from this run "
                   "(measured: adc relative to the other proxy in the target's own terms, or adc's memory)")
        out.append("")
        out.append("| issue | target | measured | met |")
        out.append("|---|---|---|---|")
        for c in checks:
            met = "–" if c["met"] is None else ("yes" if c["met"] else "NO")
            out.append(f"| {c['issue']} | {c['target']} | {c['measured']} | {met} |")
    if results["memory"]:
        out.append("")
        out.append("Resident memory of the proxy (all its processes) with idle connections open; growth at "
                   "10,000 = growth per connection x 10,000 (lower is better)")
        out.append("")
        out.append("| test | proxy | conns held | RSS before MiB | RSS with conns MiB | KiB per conn | "
                   "growth at 10,000, MiB | adc/this |")
        out.append("|---|---|---|---|---|---|---|---|")
        for name, m in results["memory"].items():
            for proxy, e in m["proxies"].items():
                ratio = m.get("ratios", {}).get(f"adc/{proxy}") if proxy != "adc" else None
                if e.get("status") == "not run":
                    continue
                if e.get("status") != "ok":
                    out.append(f"| {m['title']} | {NAMES[proxy]} | FAILED: "
                               f"{_one_line(e.get('reason', ''))} | | | | | |")
                    continue
                out.append(f"| {m['title']} | {NAMES[proxy]} | {e['connections']} | {e['rss_before_mib']:.1f} | "
                           f"{e['rss_after_mib']:.1f} | {e['kib_per_conn']:.2f} | {e['delta_mib']:.1f} | "
                           f"{_ratio(ratio)} |")
    return out


# The speed targets of the L4 (#4), L7 (#5) and TLS (#7) issues, as checks on one run's figures.
# (issue, what it asks, scenario or memory test, figure, limit): the figure must be <= limit.
# A "per-cpu-s:" figure is the inverse ratio (work per proxy CPU-second) and must be >= its limit.
TARGETS = [
    ("#4", "TCP bulk throughput per proxy CPU-second >= 0.9x HAProxy", "tcp-bulk", "per-cpu-s:haproxy", 0.9),
    ("#4", "proxy CPU per new TCP connection <= 1.2x HAProxy", "tcp-newconn", "cpu:haproxy", 1.2),
    ("#4", "proxy CPU per UDP datagram <= NGINX stream", "udp-rr", "cpu:nginx", 1.0),
    ("#4", "10,000 idle TCP connections add <= 20 MiB", "mem-l4", "mem_mib", 20.0),
    ("#5", "proxy CPU per keep-alive request <= 1.5x HAProxy", "http-keepalive", "cpu:haproxy", 1.5),
    ("#5", "proxy CPU per new-connection request <= 1.5x HAProxy", "http-newconn", "cpu:haproxy", 1.5),
    ("#5", "10,000 idle keep-alive connections <= 8 KiB each", "mem-l7", "mem_kib", 8.0),
    ("#7", "keep-alive HTTPS requests per CPU-second >= 0.7x HAProxy", "tls-keepalive", "per-cpu-s:haproxy", 0.7),
    ("#7", "ECDSA full handshakes per CPU-second >= 0.8x HAProxy", "tls-ecdsa", "per-cpu-s:haproxy", 0.8),
]


def targets(results: dict) -> list[dict]:
    out = []
    for issue, what, test, figure, limit in TARGETS:
        value = None
        kind, _, other = figure.partition(":")
        if kind in ("cpu", "per-cpu-s"):
            sc = results["scenarios"].get(test)
            if sc:
                value = sc.get("ratios", {}).get(f"cpu_us_per_unit:adc/{other}")
            if kind == "per-cpu-s" and value:
                value = 1 / value
        else:
            e = results["memory"].get(test, {}).get("proxies", {}).get("adc", {})
            if e.get("status") == "ok":
                value = e["delta_mib"] if figure == "mem_mib" else e["kib_per_conn"]
        if test not in results["scenarios"] and test not in results["memory"]:
            continue
        shown = (f"{value:.2f}x" if kind in ("cpu", "per-cpu-s") else
                 f"{value:.1f} MiB" if figure == "mem_mib" else f"{value:.2f} KiB") if value is not None else "–"
        met = None if value is None else (value >= limit if kind == "per-cpu-s" else value <= limit)
        out.append({"issue": issue, "target": what, "measured": shown, "met": met})
    return out


def table_text(results: dict) -> str:
    caveat = f"Caveat: {results['caveat']}\n\n" if results.get("caveat") else ""
    head = caveat + (f"adc vs HAProxy vs NGINX — {results['mode']} run, "
                     f"{results['reps']} x {results['duration_s']:g} s, "
            f"{results['date']}, proxy on core {results['proxy_core']}, load+backends on core {results['load_core']}")
    return "\n".join([head, ""] + _tables(results) + [""])


def markdown(results: dict, png: str | None, jname: str) -> str:
    v = results["versions"]
    lines = [
        "# adc benchmark results",
        "",
        f"Run of `perf/bench.py --{results['mode']}` on {results['date']} "
        f"({results['reps']} repetitions of {results['duration_s']:g} s per scenario and proxy). "
        f"Raw figures: [{jname}]({jname}). How to reproduce: [docs/perf.md](../docs/perf.md).",
        "",
        f"Machine: {v['cpu']}, {v['cores']} cores, Linux {v['kernel']}. "
        f"Proxy under test pinned to core {results['proxy_core']}; backends and load generators to core "
        f"{results['load_core']}. Load average before/after: {' '.join(results['loadavg_before'])} / "
        f"{' '.join(results.get('loadavg_after', []))}.",
        "",
        f"Versions: adc {v['adc']}; {v['haproxy']}; {v['nginx']}; {v['wrk']}; {v['iperf3']}; {v['openssl']}.",
        "",
    ]
    if results.get("caveat"):
        lines += [f"**Caveat:** {results['caveat']}", ""]
    if results.get("interrupted"):
        lines += ["**This run was interrupted: some figures are missing.**", ""]
    for n in results.get("notes", []):
        lines += [f"- Note: {n}"]
    if results.get("notes"):
        lines += [""]
    lines += _tables(results)
    if png:
        lines += ["", f"![adc/HAProxy and adc/NGINX ratios]({png})"]
    lines += ["", "Reading the figures: the proxy's CPU time per unit is what compares proxies on a 2-core "
              "machine, where the load generator usually saturates its core first (`bound: load`). "
              "A ratio below 1.00x means adc spent less CPU than the other proxy for the same work. "
              "`noisy` marks runs where other work took more than 15% of either core.", ""]
    return "\n".join(lines)


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        # only the benchmarks need it: install on demand into the running interpreter's env
        print("bench: installing matplotlib for the plot", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])
        if r.returncode != 0:
            return None
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(results: dict, path: str) -> str | None:
    plt = _matplotlib()
    if plt is None:
        print("bench: no matplotlib, no plot", file=sys.stderr)
        return None
    labels, vs_h, vs_n = [], [], []
    for name, sc in results["scenarios"].items():
        labels.append(name)
        vs_h.append(sc["ratios"].get("cpu_us_per_unit:adc/haproxy"))
        vs_n.append(sc["ratios"].get("cpu_us_per_unit:adc/nginx"))
    for name, m in results["memory"].items():
        labels.append(name + " (RSS)")
        vs_h.append(m["ratios"].get("adc/haproxy"))
        vs_n.append(m["ratios"].get("adc/nginx"))
    fig, ax = plt.subplots(figsize=(11, 5))
    x = range(len(labels))
    w = 0.38
    hv = [v if v is not None else 0 for v in vs_h]
    nv = [v if v is not None else 0 for v in vs_n]
    ax.bar([i - w / 2 for i in x], hv, w, label="adc / HAProxy")
    ax.bar([i + w / 2 for i in x], nv, w, label="adc / NGINX")
    for i, (a, b) in enumerate(zip(vs_h, vs_n)):
        for off, v in ((-w / 2, a), (w / 2, b)):
            ax.text(i + off, (v or 0) + 0.02, "n/a" if v is None else f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("adc ÷ other (CPU per unit; memory growth) — lower is better")
    noisy = ", NOISY: machine shared" if results.get("caveat") else ""
    ax.set_title(f"adc relative to HAProxy and NGINX, proxy on one core — {results['date']} "
                 f"({results['mode']}{noisy})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
