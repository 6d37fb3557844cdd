"""Timeouts of an http VIP: each expiry answered (or closed) as an operator expects, and counted."""
from __future__ import annotations

import http.client
import socket
import threading
import time


from adc.config.plan import HttpPlan
from l7harness import Backend, Proxy, RawBackend, pool, raw_exchange, vip

H = b"Host: example.com\r\n"


def _read_all(s, limit=10.0):
    s.settimeout(limit)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def test_slow_header_is_answered_408_at_the_header_timeout():
    with Backend("a") as a, Proxy(vip(http=HttpPlan(header_timeout=1.0)), [pool("p", [a.port])]) as p:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\n")
        t0 = time.monotonic()
        got = b""
        s.settimeout(0.3)
        while time.monotonic() - t0 < 5:
            try:
                s.sendall(b"X-Slow: 1\r\n")      # dribbling bytes does not extend the deadline
            except OSError:
                break
            try:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            except socket.timeout:
                pass
            except ConnectionResetError:
                # bytes we dribbled after the proxy closed were answered with a reset: the
                # connection is over (what it sent before is in `got`)
                break
        s.close()
        assert got.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - t0 < 4
        assert p.counter(1, "timeouts") == 1


def test_slowloris_1000_connections_closed_while_a_normal_client_is_served():
    n = 1000
    with Backend("a") as a, Proxy(vip(http=HttpPlan(header_timeout=2.0)), [pool("p", [a.port])]) as p:
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", p.port))
            s.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        # a byte every second from each, while a normal client keeps working
        errors = []
        done = threading.Event()

        def normal():
            c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            while not done.is_set():
                try:
                    c.request("GET", "/")
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                except Exception as e:      # noqa: BLE001 - any failure is the finding
                    errors.append(repr(e))
                    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
                time.sleep(0.05)
        t = threading.Thread(target=normal)
        t.start()
        closed = set()
        t0 = time.monotonic()
        while len(closed) < n and time.monotonic() - t0 < 15:
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.send(b"X")
                except OSError:
                    closed.add(i)
            time.sleep(1.0)
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                s.setblocking(False)
                try:
                    d = s.recv(4096)
                    if d.startswith(b"HTTP/1.1 408") or not d:
                        closed.add(i)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(i)
        done.set()
        t.join()
        for s in socks:
            s.close()
        assert len(closed) == n
        assert errors == []
        assert p.counter(1, "timeouts") >= n


def test_idle_keepalive_client_is_closed():
    with Backend("a") as a, Proxy(vip(http=HttpPlan(keepalive_timeout=0.5)), [pool("p", [a.port])]) as p:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        out = _read_all(s, 5)
        s.close()
        assert out.startswith(b"HTTP/1.1 200")   # then closed quietly, no 408 for an idle client
        # nothing after the one response (searching the bytes for "408" also hit the member's
        # echo of a random request id)
        head, _, body = out.partition(b"\r\n\r\n")
        n = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0])
        assert len(body) == n, body[n:]
        assert p.wait_idle()


def test_member_that_never_answers_is_504():
    with RawBackend(respond=lambda got: None) as m, \
            Proxy(vip(http=HttpPlan(response_timeout=0.5)), [pool("p", [m.port])]) as p:
        out = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=5)
        assert out.startswith(b"HTTP/1.1 504")
        assert p.counter(1, "timeouts") == 1
        assert p.counter(100, "timeouts") == 1


def test_connect_timeout_tries_the_next_member():
    # a listener whose accept queue is full: SYNs are dropped, connect hangs
    black = socket.socket()
    black.bind(("127.0.0.1", 0))
    black.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(black.getsockname())
        fillers.append(f)
    time.sleep(0.1)
    try:
        with Backend("a") as a, Proxy(vip(), [pool("p", [black.getsockname()[1], a.port],
                                                   connect_timeout=0.3)]) as p:
            for _ in range(2):
                r = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", timeout=5)
                assert r.startswith(b"HTTP/1.1 200")
        with Proxy(vip(), [pool("p", [black.getsockname()[1]], connect_timeout=0.3, retries=0)]) as p:
            r = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=5)
            assert r.startswith(b"HTTP/1.1 504")
            assert p.counter(100, "timeouts") == 1
    finally:
        for f in fillers:
            f.close()
        black.close()


def test_total_timeout_cuts_a_slow_exchange():
    def slow(got):
        time.sleep(0.1)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
    with RawBackend(respond=slow) as m, \
            Proxy(vip(http=HttpPlan(total_timeout=0.5)), [pool("p", [m.port])]) as p:
        out = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=5)
        assert out.startswith(b"HTTP/1.1 200")
        assert len(out.partition(b"\r\n\r\n")[2]) < 1000
        assert p.counter(1, "timeouts") == 1


def test_max_connections_per_vip_refuses_the_excess():
    with Backend("a") as a, Proxy(vip(max_connections=2), [pool("p", [a.port])]) as p:
        s1 = socket.create_connection(("127.0.0.1", p.port))
        s2 = socket.create_connection(("127.0.0.1", p.port))
        time.sleep(0.1)
        out = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        assert out.startswith(b"HTTP/1.1 503")
        assert p.counter(1, "refused") == 1
        s1.close()
        s2.close()
        time.sleep(0.1)
        assert raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
