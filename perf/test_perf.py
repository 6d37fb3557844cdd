"""Tests of the harness's parsing and reporting (no proxies started): python -m pytest perf/test_perf.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402

WRK_CLOSE = """Running 2s test @ http://127.0.0.1:23110/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  20.00ms   80.00%
    Req/Sec     8.90k   500.00     9.50k    70.00%
  Latency Distribution
     50%    2.95ms
     75%    3.50ms
     90%    4.10ms
     99%  850.00us
  17800 requests in 2.00s, 4.00MB read
  Socket errors: connect 0, read 17800, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:   8900.00
Transfer/sec:      2.00MB
"""


def test_wrk_output_gives_requests_latency_and_errors_but_not_peer_closes():
    r = scenarios.parse_wrk(WRK_CLOSE)
    assert r["ops"] == 17800
    assert r["p50_ms"] == 2.95
    assert abs(r["p99_ms"] - 0.85) < 1e-9
    assert r["errors"] == 5  # 2 timeouts + 3 non-2xx; the 17800 "read" errors are Connection: close


def test_latency_units_convert_to_milliseconds():
    assert scenarios._to_ms("850.00us") == 0.85
    assert scenarios._to_ms("1.50s") == 1500.0


def _run(cpu, bound="load", noisy=False):
    return {"ops": 1000, "cpu_us_per_unit": cpu, "rate": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0,
            "proxy_util": 0.5, "load_util": 0.9, "load_core_busy": 0.95, "bound": bound, "noisy": noisy}


def test_aggregate_takes_median_min_max_and_the_usual_bottleneck():
    a = bench.aggregate([_run(10), _run(30, "proxy"), _run(20), {"error": "timeout"}])
    assert a["status"] == "ok" and a["reps"] == 3
    assert a["cpu_us_per_unit"] == {"median": 20, "min": 10, "max": 30}
    assert a["bound"] == "load"


def test_aggregate_of_only_failures_is_failed_with_the_last_reason():
    assert bench.aggregate([{"error": "a"}, {"error": "b"}]) == {
        "status": "failed", "reason": "b", "runs": [{"error": "a"}, {"error": "b"}]}
    assert bench.aggregate([]) == {"status": "not run"}


def _results():
    sc = {}
    for name, adc, hap, ngx in (("tcp-newconn", 12.0, 10.0, 8.0), ("tls-ecdsa", 500.0, 400.0, 450.0)):
        sc[name] = {"title": name, "unit": "x", "rate_label": "x/s", "proxies": {
            "adc": bench.aggregate([_run(adc)]), "haproxy": bench.aggregate([_run(hap)]),
            "nginx": bench.aggregate([_run(ngx)])}}
    mem = {"mem-l4": {"title": "l4", "proxies": {
        "adc": {"status": "ok", "delta_mib": 15.0, "kib_per_conn": 1.5, "connections": 10000,
                "rss_before_mib": 1, "rss_after_mib": 16},
        "haproxy": {"status": "ok", "delta_mib": 30.0, "kib_per_conn": 3.0, "connections": 10000,
                    "rss_before_mib": 1, "rss_after_mib": 31},
        "nginx": {"status": "failed", "reason": "boom\nsecond line"}}}}
    return {"scenarios": sc, "memory": mem, "mode": "quick", "reps": 1, "duration_s": 2.0, "date": "d",
            "proxy_core": 0, "load_core": 1}


def test_ratios_are_adc_over_the_other_proxy():
    r = _results()
    report.add_ratios(r)
    assert r["scenarios"]["tcp-newconn"]["ratios"]["cpu_us_per_unit:adc/haproxy"] == 1.2
    assert r["scenarios"]["tcp-newconn"]["ratios"]["cpu_us_per_unit:adc/nginx"] == 1.5
    assert r["memory"]["mem-l4"]["ratios"] == {"adc/haproxy": 0.5, "adc/nginx": None}


def test_targets_are_checked_in_their_own_terms():
    r = _results()
    report.add_ratios(r)
    t = {x["target"]: x for x in r["targets"]}
    assert t["proxy CPU per new TCP connection <= 1.2x HAProxy"]["met"] is True
    ecdsa = t["ECDSA full handshakes per CPU-second >= 0.8x HAProxy"]  # 400/500 = 0.80x
    assert ecdsa["measured"] == "0.80x" and ecdsa["met"] is True
    assert t["10,000 idle TCP connections add <= 20 MiB"]["met"] is True


def test_a_failure_reason_stays_on_one_table_row():
    r = _results()
    report.add_ratios(r)
    text = report.table_text(r)
    assert "FAILED: boom second line |" in text
