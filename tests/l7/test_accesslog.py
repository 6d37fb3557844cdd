"""Access log lines, as an operator reads them in the file: haproxy, combined and json."""
from __future__ import annotations

import json
import re
import time

from adc.config.plan import AccessLogPlan, HttpPlan, RoutePlan
from adc.l7.accesslog import make_access_log
from l7harness import Backend, Proxy, RawBackend, pool, raw_exchange, vip

H = b"Host: example.com\r\n"


def _lines(path, n, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path) as f:
            lines = f.read().splitlines()
        if len(lines) >= n:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"expected {n} lines, got {lines!r}")


def test_json_log_has_route_member_status_bytes_timings_and_termination(tmp_path):
    path = tmp_path / "access.log"
    log = make_access_log(AccessLogPlan(path=str(path), format="json"))
    routes = [RoutePlan(name="api", pool="p", path_prefix="/api")]
    with Backend("a") as a, Proxy(vip(routes=routes, default_pool=None), [pool("p", [a.port])],
                                  access_log=log) as p:
        raw_exchange(p.port, b"GET /api/x?q=1 HTTP/1.1\r\n" + H + b"User-Agent: t/1\r\nConnection: close\r\n\r\n")
        raw_exchange(p.port, b"GET /nothing HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        raw_exchange(p.port, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
        lines = [json.loads(x) for x in _lines(path, 3)]
    ok, notfound, bad = lines
    assert ok["status"] == 200 and ok["route"] == "api" and ok["pool"] == "p"
    assert ok["member"] == f"127.0.0.1:{a.port}"
    assert ok["method"] == "GET" and ok["target"] == "/api/x?q=1" and ok["user_agent"] == "t/1"
    assert ok["bytes_out"] > 0 and ok["termination"] == "--"
    assert ok["t_connect_ms"] >= 0 and ok["t_response_ms"] >= ok["t_connect_ms"] and ok["t_total_ms"] >= 0
    assert notfound["status"] == 404 and notfound["member"] is None
    assert bad["status"] == 400 and bad["termination"] == "PR"


def test_haproxy_format_line(tmp_path):
    path = tmp_path / "access.log"
    log = make_access_log(AccessLogPlan(path=str(path), format="haproxy"))
    with Backend("a") as a, Proxy(vip(name="shop", default_pool="web"), [pool("web", [a.port])], access_log=log) as p:
        raw_exchange(p.port, b"GET /x HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        line = _lines(path, 1)[0]
    assert re.fullmatch(
        r"127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] shop web/127\.0\.0\.1:%d "
        r"\d+/0/\d+/\d+/\d+ 200 \d+ - - -- - \"GET /x HTTP/1\.1\"" % a.port, line), line


def test_combined_format_line(tmp_path):
    path = tmp_path / "access.log"
    log = make_access_log(AccessLogPlan(path=str(path), format="combined"))
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])], access_log=log) as p:
        raw_exchange(p.port, b"GET /x HTTP/1.1\r\n" + H + b"Referer: http://r/\r\nUser-Agent: ua 1\r\n"
                     b"Connection: close\r\n\r\n")
        line = _lines(path, 1)[0]
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /x HTTP/1\.1" 200 \d+ "http://r/" "ua 1"', line), line


def test_timeouts_and_member_errors_are_logged_with_their_termination_state(tmp_path):
    path = tmp_path / "access.log"
    log = make_access_log(AccessLogPlan(path=str(path), format="json"))
    with RawBackend(respond=lambda got: None) as m, \
            Proxy(vip(http=HttpPlan(response_timeout=0.3)), [pool("p", [m.port])], access_log=log) as p:
        raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        rec = json.loads(_lines(path, 1)[0])
    assert rec["status"] == 504 and rec["termination"] == "sH"
    with RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx") as m, \
            Proxy(vip(), [pool("p", [m.port])], access_log=log) as p:
        raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=1)
        rec = json.loads(_lines(path, 2)[1])
    assert rec["status"] == 502 and rec["termination"] == "PH"
