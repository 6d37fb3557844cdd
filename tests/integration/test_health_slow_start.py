"""Slow start at L7 end to end: a member that comes back ramps its share of new requests over slow_start.

A real adcd with an http VIP over two members that count what they serve. One
member goes out (operator maint, or its monitor) and comes back; a bounded
sequential load of GETs runs on, and the returning member's share of the
requests, as its own counter sees them, is asserted per second after its return.
"""
from __future__ import annotations

import socketserver
import threading
import time

import pytest

from harness import Adcd, fresh_ip, http_get, members, wait_for
from test_health_operator import serve, stop

SLOW_START = 4.0


class CountingHttp:
    """An HTTP/1.1 keep-alive member that says its name and notes the time of every request it serves.

    `status` is what it answers to requests other than /healthz; `healthy` what /healthz gets.
    """

    def __init__(self, ip: str, port: int, name: str):
        self.served: list[float] = []
        self.status = 200
        self.healthy = True
        lock = threading.Lock()
        member = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        if b"/healthz" in line:
                            status = 200 if member.healthy else 503
                        else:
                            status = member.status
                            with lock:
                                member.served.append(time.monotonic())
                        body = name.encode() + b"\n"
                        self.wfile.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
                except OSError:
                    pass

        self.server = serve(ip, port, Handler)

    def count(self, start: float, end: float) -> int:
        return sum(1 for t in list(self.served) if start <= t < end)

    def close(self) -> None:
        stop(self.server)


def run_load(ip: str, port: int, seconds: float, max_requests: int = 20000) -> list[int]:
    """Sequential GETs for `seconds` (bounded in count too); the statuses clients saw."""
    statuses = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(statuses) < max_requests:
        statuses.append(http_get(ip, port, timeout=5)[0])
    return statuses


@pytest.mark.parametrize("how", ["maint", "monitor"])
def test_a_returning_member_ramps_its_share_over_slow_start(tmp_path, how):
    ip = fresh_ip()
    a, b = CountingHttp(ip, 9001, "alpha"), CountingHttp(ip, 9002, "beta")
    d = Adcd(tmp_path, f"""
monitors:
  - {{name: hz, type: http, path: /healthz, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}
pools:
  - name: web
    monitor: hz
    slow_start: {SLOW_START:g}s
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - {{name: web, address: {ip}, port: 8080, protocol: http, default_pool: web}}
""")
    key = f"{ip}:9002"
    try:
        # members present at start do not ramp: half each at once
        t = time.monotonic()
        assert set(run_load(ip, 8080, 0.5)) == {200}
        assert 0.4 < b.count(t, t + 1) / (a.count(t, t + 1) + b.count(t, t + 1)) < 0.6
        if how == "maint":
            assert d.ctl("member", "maint", "web", key).returncode == 0
        else:
            b.healthy = False
            wait_for(lambda: members(d, "web")[key]["health"] == "down", 3, "monitor takes beta down")
        t = time.monotonic()
        run_load(ip, 8080, 0.3)
        assert b.count(t + 0.1, t + 0.3) == 0
        if how == "maint":
            r = d.ctl("member", "enable", "web", key)
            assert r.returncode == 0, r.stderr
        else:
            b.healthy = True
            wait_for(lambda: members(d, "web")[key]["health"] == "up", 3, "monitor brings beta up")
        t0 = time.monotonic()
        statuses = run_load(ip, 8080, SLOW_START + 1.5)
        assert set(statuses) == {200}
        assert f"member web/{key}: {'admin=enabled' if how == 'maint' else 'health=up'}; " \
               f"slow start, full share in 4s" in d.log()

        def share(start: float, end: float) -> float:
            nb, na = b.count(t0 + start, t0 + end), a.count(t0 + start, t0 + end)
            assert na + nb > 50, (na, nb)          # enough requests to mean something
            return nb / (na + nb)

        first, middle, after = share(0, 1), share(2, 3), share(SLOW_START + 0.3, SLOW_START + 1.3)
        assert first < 0.3, (first, middle, after)
        assert first < middle < after, (first, middle, after)
        assert 0.4 < after < 0.6, (first, middle, after)
    finally:
        d.stop()
        a.close()
        b.close()
