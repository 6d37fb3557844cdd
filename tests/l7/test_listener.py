"""The Listener contract the worker relies on: update, stop_accepting, close_all, active, conns, kill."""
from __future__ import annotations

import http.client
import socket
import time

from adc.config.plan import FixedResponsePlan, RoutePlan
from adc.l7.listener import HttpListener
from l7harness import FastBackend, Proxy, pool, raw_exchange, vip


def get(conn, path="/"):
    conn.request("GET", path)
    r = conn.getresponse()
    return r, r.read()


def test_update_applies_to_new_connections_and_open_ones_keep_their_plan():
    with FastBackend("A") as a, FastBackend("B") as b:
        with Proxy(vip(default_pool="a"), [pool("a", [a.port], 2), pool("b", [b.port], 3)]) as p:
            old = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            assert get(old)[1] == b"A"
            p.call(p.listener.update, vip(default_pool="b"))
            new = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            assert get(new)[1] == b"B"
            assert get(old)[1] == b"A", "an open connection finishes on the plan it started with"


def test_pools_are_looked_up_per_request():
    with FastBackend("A") as a, FastBackend("B") as b:
        with Proxy(vip(default_pool="p"), [pool("p", [a.port])]) as p:
            c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            assert get(c)[1] == b"A"
            p.set_pools([pool("p", [b.port])])
            assert get(c)[1] == b"B"


def test_stop_accepting_leaves_the_socket_open_and_closes_idle_connections():
    with FastBackend("A") as a:
        with Proxy(vip(), [pool("p", [a.port])]) as p:
            idle = socket.create_connection(("127.0.0.1", p.port))
            idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
            assert p.call(p.listener.active) == 1
            p.call(p.listener.stop_accepting)
            idle.settimeout(2)
            got = b""
            while True:
                d = idle.recv(4096)
                if not d:
                    break
                got += d
            assert got.startswith(b"HTTP/1.1 200")
            assert p.wait_idle()
            # the supervisor's socket is still open and listening: a new listener serves it
            assert p.sock.fileno() >= 0
            lst2 = HttpListener(p.ctx, vip(), p.sock)
            p.loop.call_soon_threadsafe(lambda: p.loop.create_task(lst2.start()))
            time.sleep(0.2)
            out = raw_exchange(p.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200")
            p.call(lst2.stop_accepting)


def test_conns_lists_and_kill_ends_a_connection():
    routes = [RoutePlan(name="r", respond=FixedResponsePlan(body="hi"))]
    with Proxy(vip(routes=routes), []) as p:
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(4096)
        infos = p.call(p.listener.conns)
        assert len(infos) == 1
        ci = infos[0]
        assert ci.vip == "web" and ci.protocol == "http" and ci.state == "idle"
        assert ci.client == f"127.0.0.1:{s.getsockname()[1]}" and ci.bytes_out > 0
        assert p.call(p.listener.kill, ci.id)
        s.settimeout(2)
        assert s.recv(4096) == b""
        assert p.wait_idle()
        assert p.counter(1, "conn_active") == 0


def test_close_all_ends_everything():
    with FastBackend("A") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        socks = [socket.create_connection(("127.0.0.1", p.port)) for _ in range(5)]
        time.sleep(0.2)
        assert p.call(p.listener.active) == 5
        p.call(p.listener.close_all)
        for s in socks:
            s.settimeout(2)
            try:
                assert s.recv(10) == b""
            except ConnectionResetError:
                pass
        assert p.wait_idle()
