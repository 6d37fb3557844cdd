"""Limits with a queue and per-VIP TCP options on the fast path, with real sockets.

max_connections of a VIP or of its members: over the limit a client is refused
(limit_action: refuse) or waits, accepted but not connected to any member,
until a slot frees (limit_action: queue), at most max_queue clients for at
most queue_timeout. tcp_nodelay and tcp_keepalive reach both the client's and
the member's socket.
"""
from __future__ import annotations

import socket
import time

from fp import Backend, Proxy, closed_by_proxy, greeting, member, recv_exactly

VIP_SLOT, POOL_SLOT = 1, 2
CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, REQUESTS, ERRORS, REFUSED, TIMEOUTS = range(8)


def start(procs, members, **vip):
    proxy = Proxy(pools=[dict(name="web", slot=POOL_SLOT, connect_timeout=1.0, members=members)],
                  vips=[dict(dict(name="v", protocol="tcp", default_pool="web", slot=VIP_SLOT), **vip)])
    procs.append(proxy)
    return proxy


def backend(procs, name="b0"):
    b = Backend("tcp", name, greet=True)
    procs.append(b)
    return b




def silent(s, wait=0.3):
    """Nothing arrives within `wait` seconds, and the connection is still open."""
    s.settimeout(wait)
    try:
        s.recv(1)
    except socket.timeout:
        return True
    finally:
        s.settimeout(5)
    return False




def states(proxy):
    return sorted(c["state"] for c in proxy.conns())


def counters(proxy, slot=VIP_SLOT):
    return proxy.cmd(cmd="counters", slot=slot)


def test_a_client_over_the_vip_limit_waits_and_is_served_when_a_slot_frees(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port)], max_connections=2, limit_action="queue")
    first = [socket.create_connection(proxy.addr("v"), timeout=5) for _ in range(2)]
    assert [greeting(s) for s in first] == ["b0", "b0"]
    waiting = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    assert silent(waiting)                           # accepted, but no member has seen it
    assert states(proxy) == ["established", "established", "queued"]
    (q,) = [c for c in proxy.conns() if c["state"] == "queued"]
    assert q["member"] == "-"
    first[0].close()
    assert greeting(waiting) == "b0"
    waiting.sendall(b"late but served")
    assert recv_exactly(waiting, 15) == b"late but served"
    c = counters(proxy)
    assert c[REFUSED] == 0 and c[TIMEOUTS] == 0 and c[CONN_TOTAL] == 3
    assert proxy.cmd(cmd="engine")["violations"] == []


def test_a_client_over_the_member_limit_waits_and_what_it_sent_meanwhile_arrives(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port, max_connections=1, slot=10)], limit_action="queue")
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    w = socket.create_connection(proxy.addr("v"), timeout=5)
    w.sendall(b"queued words")                       # sent while it waits: kept in its socket
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    assert silent(w)
    assert proxy.cmd(cmd="engine")["member_active"] == {f"web/{b.key}": 1}
    a.close()
    assert greeting(w) == "b0"
    assert recv_exactly(w, 12) == b"queued words"
    assert counters(proxy, 10)[CONN_TOTAL] == 2
    assert counters(proxy)[REFUSED] == 0


def test_queued_clients_are_served_in_the_order_they_came(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port)], max_connections=1, limit_action="queue")
    served = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(served) == "b0"
    queue = []
    for i in range(3):
        queue.append(socket.create_connection(proxy.addr("v"), timeout=5))
        assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == i + 1)
    for i, s in enumerate(queue):
        served.close()
        assert greeting(s) == "b0"
        assert all(silent(o, 0.1) for o in queue[i + 1:])   # the others still wait
        served = s


def test_the_queue_timeout_closes_a_waiting_client_and_counts_it(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port)], max_connections=1, limit_action="queue", queue_timeout=0.5)
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    t0 = time.monotonic()
    w = socket.create_connection(proxy.addr("v"), timeout=5)
    assert closed_by_proxy(w)
    assert 0.4 <= time.monotonic() - t0 < 4
    c = counters(proxy)
    assert c[TIMEOUTS] == 1 and c[REFUSED] == 0
    assert proxy.cmd(cmd="queued", vip="v") == 0
    a.sendall(b"still fine")                          # the served client never noticed
    assert recv_exactly(a, 10) == b"still fine"
    assert proxy.cmd(cmd="engine")["violations"] == []


def test_a_full_queue_refuses_the_next_client(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port)], max_connections=1, limit_action="queue", max_queue=1)
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    w = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    extra = socket.create_connection(proxy.addr("v"), timeout=5)
    assert closed_by_proxy(extra)
    assert counters(proxy)[REFUSED] == 1
    a.close()
    assert greeting(w) == "b0"


def test_a_client_that_leaves_the_queue_frees_its_place(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port)], max_connections=1, limit_action="queue", max_queue=1)
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    gone = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    gone.close()                                      # gives up without sending a byte
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 0)
    w = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    assert counters(proxy)[REFUSED] == 0
    a.close()
    assert greeting(w) == "b0"
    assert proxy.cmd(cmd="engine")["violations"] == []


def test_a_queued_client_whose_members_all_go_down_is_refused(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port, max_connections=1)], limit_action="queue")
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    w = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    proxy.cmd(cmd="state", pool="web", key=b.key, health="down")
    assert closed_by_proxy(w)                          # no member could ever take it: not left to time out
    assert counters(proxy)[REFUSED] == 1 and counters(proxy)[TIMEOUTS] == 0


def test_refuse_mode_closes_the_client_over_a_member_limit(procs):
    b = backend(procs)
    proxy = start(procs, [member(b.port, max_connections=1)])
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(a) == "b0"
    extra = socket.create_connection(proxy.addr("v"), timeout=5)
    assert closed_by_proxy(extra)
    assert proxy.cmd(cmd="queued", vip="v") == 0
    assert counters(proxy)[REFUSED] == 1
    assert counters(proxy, POOL_SLOT)[REFUSED] == 1


def test_many_clients_through_a_small_queue_all_get_their_bytes(procs):
    b = Backend("tcp", "b0", greet=False)
    procs.append(b)
    proxy = start(procs, [member(b.port, max_connections=3)], max_connections=5, limit_action="queue",
                  max_queue=100)
    socks = [socket.create_connection(proxy.addr("v"), timeout=10) for _ in range(40)]
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 37)
    for i, s in enumerate(socks):
        s.sendall(b"client %02d" % i)
        s.shutdown(socket.SHUT_WR)                     # a half-closed client keeps its place
    for i, s in enumerate(socks):
        assert recv_exactly(s, 9) == b"client %02d" % i
        assert s.recv(1) == b""
        s.close()
    assert proxy.wait_for(lambda: proxy.conns() == [])
    eng = proxy.cmd(cmd="engine")
    assert eng["violations"] == [] and eng["queued"] == 0
    assert counters(proxy)[REFUSED] == 0 and counters(proxy)[CONN_TOTAL] == 40


def _by_side(opts, vip_port, member_port, client_port):
    client_side = [o for o in opts if o["local"] == vip_port and o["peer"] == client_port]
    member_side = [o for o in opts if o["peer"] == member_port]
    return client_side, member_side


def test_tcp_nodelay_and_keepalive_reach_the_client_and_member_sockets(procs):
    b = backend(procs)
    proxy = Proxy(pools=[dict(name="web", members=[member(b.port)])],
                  vips=[dict(name="ka", protocol="tcp", default_pool="web",
                             tcp_keepalive=dict(idle=7, interval=3, count=4)),
                        dict(name="plain", protocol="tcp", default_pool="web", tcp_nodelay=False)])
    procs.append(proxy)
    for vip, want in (("ka", dict(nodelay=1, keepalive=1, idle=7, interval=3, count=4)),
                      ("plain", dict(nodelay=0, keepalive=0))):
        c = socket.create_connection(proxy.addr(vip), timeout=5)
        assert greeting(c) == "b0"
        (conn,) = proxy.conns()
        assert conn["vip"] == vip
        client_side, member_side = _by_side(proxy.cmd(cmd="sockopts"), proxy.ports[vip], b.port,
                                            c.getsockname()[1])
        assert len(client_side) == 1 and len(member_side) == 1
        for side in (client_side[0], member_side[0]):
            assert {k: side[k] for k in want} == want
        c.close()
        assert proxy.wait_for(lambda: proxy.conns() == [])


def test_keepalive_timer_is_running_on_the_member_connection(procs):
    """Seen from outside the proxy: the kernel's table shows a keepalive timer (tr 2) within idle."""
    b = backend(procs)
    proxy = start(procs, [member(b.port)], tcp_keepalive=dict(idle=9))
    c = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(c) == "b0"
    timers = proc_net_tcp_timers(remote_port=b.port)
    assert len(timers) == 1
    tr, when = timers[0]
    assert tr == 2 and 0 < when <= 9 * 100            # clock ticks (USER_HZ)


def proc_net_tcp_timers(remote_port=None, local_port=None):
    """(timer kind, ticks left) of established loopback TCP sockets matching the ports (/proc/net/tcp)."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, st, timer = fields[1], fields[2], fields[3], fields[5]
            if st != "01":
                continue
            if remote_port is not None and int(remote.split(":")[1], 16) != remote_port:
                continue
            if local_port is not None and int(local.split(":")[1], 16) != local_port:
                continue
            tr, when = timer.split(":")
            out.append((int(tr, 16), int(when, 16)))
    return out
