"""A pool's circuit breaker max_connections on the fast path, with real sockets.

The engine counts the TCP connections it holds to the pool's members (across
all of them); at the limit a new client is refused, counted `refused` on the
VIP and the pool, or with limit_action queue waits in the VIP's queue until a
member connection of the pool ends.
"""
from __future__ import annotations

import socket

from fp import Proxy, backends, closed_by_proxy, greeting, member

VIP_SLOT, POOL_SLOT = 1, 2
CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, REQUESTS, ERRORS, REFUSED, TIMEOUTS = range(8)


def start(procs, members, breaker, **vip):
    proxy = Proxy(pools=[dict(name="web", slot=POOL_SLOT, connect_timeout=1.0, members=members,
                              circuit_breaker=breaker)],
                  vips=[dict(dict(name="v", protocol="tcp", default_pool="web", slot=VIP_SLOT), **vip)])
    procs.append(proxy)
    return proxy








def counters(proxy, slot):
    return proxy.cmd(cmd="counters", slot=slot)


def test_a_client_over_the_pool_limit_is_refused_though_a_member_has_room(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(b.port) for b in bs], {"max_connections": 2})
    held = [socket.create_connection(proxy.addr("v"), timeout=5) for _ in range(2)]
    assert sorted(greeting(s) for s in held) == ["b0", "b1"]      # one on each member
    extra = socket.create_connection(proxy.addr("v"), timeout=5)
    assert closed_by_proxy(extra)
    assert counters(proxy, POOL_SLOT)[REFUSED] == 1
    assert counters(proxy, VIP_SLOT)[REFUSED] == 1
    held[0].close()
    assert proxy.wait_for(lambda: len(proxy.conns()) == 1)
    again = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(again) in ("b0", "b1")                          # a freed place serves again
    assert counters(proxy, POOL_SLOT)[REFUSED] == 1
    assert proxy.cmd(cmd="engine")["violations"] == []


def test_below_the_pool_limit_nothing_is_refused(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(b.port) for b in bs], {"max_connections": 5})
    socks = [socket.create_connection(proxy.addr("v"), timeout=5) for _ in range(5)]
    assert all(greeting(s) in ("b0", "b1") for s in socks)
    assert counters(proxy, POOL_SLOT)[REFUSED] == 0 and counters(proxy, VIP_SLOT)[REFUSED] == 0
    assert proxy.cmd(cmd="engine")["violations"] == []


def test_in_queue_mode_a_client_over_the_pool_limit_waits_for_a_member_connection_to_end(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(b.port) for b in bs], {"max_connections": 1}, limit_action="queue")
    first = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(first) in ("b0", "b1")
    waiting = socket.create_connection(proxy.addr("v"), timeout=5)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="queued", vip="v") == 1)
    assert proxy.cmd(cmd="engine")["violations"] == []
    first.close()
    assert greeting(waiting) in ("b0", "b1")
    assert counters(proxy, POOL_SLOT)[REFUSED] == 0
    assert proxy.cmd(cmd="engine")["violations"] == []
