"""A pool's circuit breaker through the real adcd: L7 answers 503 at once over a limit, L4 refuses, both counted.

The slow member is the test's own HTTP server: it holds every request until
the test lets it go and records each path it saw, so "the member never saw
the excess" is a fact, not a guess from timings.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Adcd, Backends, echo, fresh_ip, http_get, wait_for

L7_CONFIG = """\
pools:
  - name: web
    circuit_breaker: {{max_requests: 3}}
    members:
      - {{address: {ip}, port: 9201}}
vips:
  - name: web
    address: {ip}
    port: 8080
    protocol: http
    default_pool: web
    http:
      error_pages: {{503: busy.html}}
"""

PENDING_CONFIG = """\
pools:
  - name: web
    connect_timeout: 2s
    retries: 0
    circuit_breaker: {{max_pending: 2}}
    members:
      - {{address: {ip}, port: 9202}}
vips:
  - name: web
    address: {ip}
    port: 8080
    protocol: http
    default_pool: web
"""

L4_CONFIG = """\
pools:
  - name: echo
    circuit_breaker: {{max_connections: 2}}
    members:
      - {{address: {ip}, port: 9101}}
      - {{address: {ip}, port: 9102}}
vips:
  - name: echo
    address: {ip}
    port: 7000
    protocol: tcp
    default_pool: echo
"""


class SlowMember:
    """An HTTP member that holds each request until release() and records the paths it saw."""

    def __init__(self, ip: str, port: int):
        self.seen: list[str] = []
        self.gate = threading.Event()
        member = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                member.seen.append(self.path)
                member.gate.wait(15)          # bounded: a stuck test ends
                body = b"slow " + self.path.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer((ip, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()




def pool_refused(d: Adcd, pool: str) -> tuple[int, int]:
    """The pool's refused count as `adcctl pool show -o json` and GET /api/v1/stats report it."""
    r = d.ctl("pool", "show", pool, "-o", "json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    if isinstance(shown, list):
        shown = shown[0]
    return shown["stats"]["refused"], d.api("GET", "/stats")["pools"][pool]["refused"]


def get_in_thread(ip: str, port: int, path: str, results: dict) -> threading.Thread:
    def run():
        try:
            results[path] = http_get(ip, port, path, timeout=20)[0]
        except OSError as e:
            results[path] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_requests_over_max_requests_get_503_at_once_and_the_member_never_sees_them(tmp_path):
    ip = fresh_ip()
    member = SlowMember(ip, 9201)
    (tmp_path / "busy.html").write_text("<h1>busy, try again</h1>\n")
    d = Adcd(tmp_path, L7_CONFIG.format(ip=ip), workers=1)   # limits are per worker
    try:
        held: dict = {}
        threads = [get_in_thread(ip, 8080, f"/held/{i}", held) for i in range(3)]
        wait_for(lambda: len(member.seen) == 3, 10, "the member holds 3 requests")
        # the pool has max_requests 3 in flight: the next ones are answered by adc, now
        for j in range(4):
            status, body = http_get(ip, 8080, f"/extra/{j}", timeout=5)
            assert (status, body) == (503, b"<h1>busy, try again</h1>\n")   # the VIP's 503 page
        assert sorted(member.seen) == ["/held/0", "/held/1", "/held/2"]
        member.release()
        for t in threads:
            t.join(20)
        assert held == {f"/held/{i}": 200 for i in range(3)}
        # below the limit again: requests reach the member as before
        assert http_get(ip, 8080, "/after") == (200, b"slow /after")
        assert member.seen[-1] == "/after"
        assert pool_refused(d, "web") == (4, 4)
        stats = d.api("GET", "/stats")
        assert stats["vips"]["web"]["refused"] == 4
        assert stats["pools"]["web"]["requests"] == 4       # the 3 held and /after, not the refused
        wait_for(lambda: "pool 'web' circuit open: 3 requests in flight (max_requests 3)" in d.log(), 10,
                 "the circuit-open log line")
        # at most once a second per pool: 4 refusals well within a second or two give 1 or 2 lines
        assert 1 <= d.log().count("pool 'web' circuit open") <= 2
    finally:
        d.stop()
        member.stop()


def test_requests_over_max_pending_connects_get_503_at_once(tmp_path):
    ip = fresh_ip()
    # a member whose accept queue is full: connects to it stay in progress (SYNs dropped)
    lsn = socket.socket()
    lsn.bind((ip, 9202))
    lsn.listen(0)
    filler = socket.create_connection((ip, 9202), timeout=2)     # takes the one place in the queue
    d = Adcd(tmp_path, PENDING_CONFIG.format(ip=ip), workers=1)
    try:
        waiting: dict = {}
        threads = [get_in_thread(ip, 8080, f"/wait/{i}", waiting) for i in range(2)]
        time.sleep(0.5)            # both connects are under way (the member's kernel drops their SYNs)
        status, _ = http_get(ip, 8080, "/over", timeout=5)
        assert status == 503 and "/over" not in waiting
        for t in threads:
            t.join(20)
        # the two that waited end at the pool's connect_timeout (2s), not refused
        assert waiting == {"/wait/0": 504, "/wait/1": 504}
        assert pool_refused(d, "web") == (1, 1)
        assert "pool 'web' circuit open: 2 connects pending (max_pending 2)" in d.log()
    finally:
        d.stop()
        filler.close()
        lsn.close()




def refused(s: socket.socket) -> bool:
    """The connection was closed by adc without a byte (reset or EOF)."""
    s.settimeout(5)
    try:
        s.sendall(b"x")
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


@pytest.mark.parametrize("l4", ["fast", "asyncio"])
def test_tcp_connections_over_the_pool_max_connections_are_refused_and_counted(tmp_path, l4):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, tcp_echo=[9101, 9102])
    d = Adcd(tmp_path, L4_CONFIG.format(ip=ip), workers=1, env={"ADC_L4": l4})   # the engine, or asyncio
    try:
        wait_for(lambda: not d.api("GET", "/conns"), 10, "the readiness probe's connection gone")
        before = pool_refused(d, "echo")
        a = socket.create_connection((ip, 7000), timeout=5)
        b = socket.create_connection((ip, 7000), timeout=5)
        assert echo(a, b"a") == b"a" and echo(b, b"b") == b"b"
        # two connections across both members fill the pool's limit: the third is refused
        c = socket.create_connection((ip, 7000), timeout=5)
        assert refused(c)
        c.close()
        wait_for(lambda: pool_refused(d, "echo")[0] - before[0] == 1, 10, "the refusal counted")
        assert pool_refused(d, "echo")[1] - before[1] == 1
        assert d.api("GET", "/stats")["vips"]["echo"]["refused"] == 1
        # below the limit nothing changes: a freed place serves the next client
        a.close()
        wait_for(lambda: len(d.api("GET", "/conns")) == 1, 10, "a place freed")
        e = socket.create_connection((ip, 7000), timeout=5)
        assert echo(e, b"again") == b"again"
        assert echo(b, b"still") == b"still"
        e.close()
        b.close()
        assert pool_refused(d, "echo")[0] - before[0] == 1
    finally:
        d.stop()
        be.stop()


def test_an_apply_raises_the_limit_for_the_requests_already_in_flight(tmp_path):
    ip = fresh_ip()
    member = SlowMember(ip, 9201)
    (tmp_path / "busy.html").write_text("busy\n")
    d = Adcd(tmp_path, L7_CONFIG.format(ip=ip), workers=1)
    try:
        held: dict = {}
        threads = [get_in_thread(ip, 8080, f"/held/{i}", held) for i in range(3)]
        wait_for(lambda: len(member.seen) == 3, 10, "the member holds 3 requests")
        assert http_get(ip, 8080, "/over", timeout=5)[0] == 503
        raised = tmp_path / "raised.yaml"
        raised.write_text(L7_CONFIG.format(ip=ip).replace("max_requests: 3", "max_requests: 4"))
        r = d.ctl("apply", "-f", str(raised))
        assert r.returncode == 0, r.stderr
        # the 3 still in flight count against the new limit: one more gets through, the next does not
        threads.append(get_in_thread(ip, 8080, "/fourth", held))
        wait_for(lambda: "/fourth" in member.seen, 10, "the fourth request reaches the member")
        assert http_get(ip, 8080, "/fifth", timeout=5)[0] == 503
        assert "/over" not in member.seen and "/fifth" not in member.seen
        member.release()
        for t in threads:
            t.join(20)
        assert set(held.values()) == {200} and len(held) == 4
        assert pool_refused(d, "web") == (2, 2)
    finally:
        d.stop()
        member.stop()
