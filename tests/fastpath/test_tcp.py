"""The TCP fast path end to end: a worker-shaped process with FastTcpListener, real backends on loopback."""
from __future__ import annotations

import hashlib
import os
import selectors
import socket
import threading
import time

from fp import Proxy, backends, closed_port, greeting, member, recv_all, recv_exactly

VIP_SLOT, POOL_SLOT = 1, 2
CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, REQUESTS, ERRORS, REFUSED, TIMEOUTS = range(8)


def start(procs, members, algorithm="round_robin", vip_extra=None, pool_extra=None):
    proxy = Proxy(
        pools=[dict(dict(name="web", algorithm=algorithm, slot=POOL_SLOT, connect_timeout=1.0,
                         members=members), **(pool_extra or {}))],
        vips=[dict(name="v", protocol="tcp", default_pool="web", slot=VIP_SLOT, **(vip_extra or {}))])
    procs.append(proxy)
    return proxy






def test_100_mb_each_way_arrive_intact(procs):
    (b,) = backends(procs, 1, greet=False)
    proxy = start(procs, [member(b.port, slot=10)])
    size = 100 << 20
    block = os.urandom(1 << 20)
    sent = hashlib.sha256()
    got = hashlib.sha256()
    s = socket.create_connection(proxy.addr("v"), timeout=30)

    def send():
        for i in range(size // len(block)):
            chunk = block[i % 7:] + block[:i % 7]   # no two blocks alike
            sent.update(chunk)
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    n = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got.update(d)
        n += len(d)
    t.join()
    s.close()
    assert n == size
    assert got.hexdigest() == sent.hexdigest()
    c = proxy.cmd(cmd="counters", slot=VIP_SLOT)
    assert c[BYTES_IN] == size and c[BYTES_OUT] == size
    assert proxy.cmd(cmd="counters", slot=10)[BYTES_IN] == size


def test_client_half_close_still_receives_the_whole_response(procs):
    (b,) = backends(procs, 1, greet=False)
    proxy = start(procs, [member(b.port)])
    payload = os.urandom(3 << 20)
    s = socket.create_connection(proxy.addr("v"), timeout=10)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)      # the echo backend answers the rest only once it sees our EOF
    assert recv_all(s) == payload
    s.close()
    assert proxy.wait_for(lambda: proxy.conns() == [])


def test_1000_concurrent_connections_each_get_their_own_bytes(procs):
    bs = backends(procs, 2, greet=False)
    proxy = start(procs, [member(b.port) for b in bs])
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(1000):
        s = socket.create_connection(proxy.addr("v"), timeout=10)
        socks.append(s)
    assert proxy.wait_for(lambda: proxy.cmd(cmd="active", vip="v") == 1000)
    want = {}
    for i, s in enumerate(socks):
        msg = f"conn {i} says hello\n".encode()
        s.sendall(msg)
        want[s] = msg
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    got = {s: b"" for s in socks}
    deadline = time.monotonic() + 20
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            s = key.fileobj
            got[s] += s.recv(4096)
            if len(got[s]) >= len(want[s]):
                sel.unregister(s)
                pending.discard(s)
    assert not pending
    assert all(got[s] == want[s] for s in socks)
    assert proxy.cmd(cmd="engine")["violations"] == []
    for s in socks:
        s.close()
    assert proxy.wait_for(lambda: proxy.cmd(cmd="active", vip="v") == 0, timeout=10)


def test_a_refused_member_is_retried_on_another(procs):
    (b,) = backends(procs, 1)
    dead = closed_port()
    proxy = start(procs, [member(dead, slot=11), member(b.port, slot=12)])
    for _ in range(4):      # round robin offers the dead member every other time
        s = socket.create_connection(proxy.addr("v"), timeout=5)
        assert greeting(s) == "b0"
        s.close()
    assert proxy.cmd(cmd="counters", slot=11)[ERRORS] >= 2
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[REFUSED] == 0


def test_every_member_refusing_closes_the_client_and_counts_refused(procs):
    proxy = start(procs, [member(closed_port()), member(closed_port())])
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    try:
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    assert proxy.wait_for(lambda: proxy.cmd(cmd="counters", slot=VIP_SLOT)[REFUSED] == 1)


def test_the_idle_timeout_closes_a_silent_connection(procs):
    (b,) = backends(procs, 1)
    proxy = start(procs, [member(b.port)], vip_extra=dict(idle_timeout=1.0))
    s = socket.create_connection(proxy.addr("v"), timeout=10)
    assert greeting(s) == "b0"
    t0 = time.monotonic()
    s.sendall(b"ping")
    assert recv_exactly(s, 4) == b"ping"
    assert s.recv(10) == b""             # closed by the proxy, not by us
    took = time.monotonic() - t0
    assert 0.9 <= took < 5
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[TIMEOUTS] == 1


def test_conntrack_entries_appear_and_disappear(procs):
    (b,) = backends(procs, 1)
    proxy = start(procs, [member(b.port)])
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    greeting(s)
    s.sendall(b"x" * 100)
    recv_exactly(s, 100)
    conns = proxy.conns()
    assert len(conns) == 1
    c = conns[0]
    assert c["client"] == "127.0.0.1:%d" % s.getsockname()[1]
    assert c["vip"] == "v" and c["protocol"] == "tcp" and c["state"] == "established"
    assert c["member"] == f"web/{b.key}"
    assert c["bytes_in"] == 100 and c["bytes_out"] == 103
    s.close()
    assert proxy.wait_for(lambda: proxy.conns() == [])


def test_kill_ends_a_connection(procs):
    (b,) = backends(procs, 1)
    proxy = start(procs, [member(b.port)])
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    greeting(s)
    (c,) = proxy.conns()
    assert proxy.cmd(cmd="kill", id=c["id"]) is True
    assert s.recv(10) == b""
    assert proxy.conns() == []
    assert proxy.cmd(cmd="kill", id=c["id"]) is False


def test_drained_member_keeps_existing_flows_and_gets_no_new_ones(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(b.port) for b in bs])
    s0 = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(s0) == "b0"
    proxy.cmd(cmd="state", pool="web", key=bs[0].key, admin="drain")
    for _ in range(4):
        s = socket.create_connection(proxy.addr("v"), timeout=5)
        assert greeting(s) == "b1"
        s.close()
    s0.sendall(b"still here")
    assert recv_exactly(s0, 10) == b"still here"
    s0.close()


def test_max_connections_per_vip_refuses_the_extra_client(procs):
    (b,) = backends(procs, 1)
    proxy = start(procs, [member(b.port)], vip_extra=dict(max_connections=2))
    keep = [socket.create_connection(proxy.addr("v"), timeout=5) for _ in range(2)]
    for s in keep:
        assert greeting(s) == "b0"
    extra = socket.create_connection(proxy.addr("v"), timeout=5)
    try:
        assert extra.recv(10) == b""
    except ConnectionResetError:
        pass
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[REFUSED] == 1


def test_max_connections_per_member_sends_the_next_client_elsewhere(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(bs[0].port, max_connections=1), member(bs[1].port)],
                  algorithm="least_connections")
    a = socket.create_connection(proxy.addr("v"), timeout=5)
    first = greeting(a)
    names = [greeting(socket.create_connection(proxy.addr("v"), timeout=5)) for _ in range(1)]
    assert first == "b0" and names == ["b1"]


def test_backup_member_serves_only_when_no_primary_is_up(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(bs[0].port), member(bs[1].port, backup=True)])
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(s) == "b0"
    proxy.cmd(cmd="state", pool="web", key=bs[0].key, health="down")
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    assert greeting(s) == "b1"


def test_proxy_protocol_v1_and_v2_headers_reach_the_member(procs):
    for version in ("v1", "v2"):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        proxy = start(procs, [member(srv.getsockname()[1])], pool_extra=dict(proxy_protocol=version))
        c = socket.create_connection(proxy.addr("v"), timeout=5)
        c.sendall(b"hi")
        srv.settimeout(5)
        m, _ = srv.accept()
        m.settimeout(5)
        cport = c.getsockname()[1]
        vport = proxy.ports["v"]
        if version == "v1":
            want = f"PROXY TCP4 127.0.0.1 127.0.0.1 {cport} {vport}\r\n".encode() + b"hi"
        else:
            want = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([127, 0, 0, 1, 127, 0, 0, 1])
                    + cport.to_bytes(2, "big") + vport.to_bytes(2, "big") + b"hi")
        assert recv_exactly(m, len(want)) == want
        m.close()
        c.close()
        srv.close()


def test_maglev_pool_sends_a_client_to_the_same_member_every_time(procs):
    bs = backends(procs, 3)
    proxy = start(procs, [member(b.port) for b in bs], algorithm="maglev")
    names = set()
    for _ in range(5):
        s = socket.create_connection(proxy.addr("v"), timeout=5)
        names.add(greeting(s))
        s.close()
    assert len(names) == 1


def test_slow_start_ramps_a_member_that_comes_back_up(procs):
    bs = backends(procs, 2)
    proxy = start(procs, [member(b.port, weight=10) for b in bs], algorithm="weighted_round_robin",
                  pool_extra=dict(slow_start=20.0))
    proxy.cmd(cmd="state", pool="web", key=bs[1].key, health="down")
    proxy.cmd(cmd="state", pool="web", key=bs[1].key, health="up")
    names = []
    for _ in range(22):
        s = socket.create_connection(proxy.addr("v"), timeout=5)
        names.append(greeting(s))
        s.close()
    # in its first 2 s back, b1 runs at a tenth of its weight: 1 flow in 11
    assert 1 <= names.count("b1") <= 4


def test_a_client_reset_mid_transfer_ends_the_connection_on_both_sides(procs):
    (b,) = backends(procs, 1, greet=False)
    proxy = start(procs, [member(b.port, slot=10)])
    s = socket.create_connection(proxy.addr("v"), timeout=5)
    s.sendall(os.urandom(1 << 20))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()                                   # RST, with echoed bytes unread
    assert proxy.wait_for(lambda: proxy.conns() == [])
    assert proxy.wait_for(lambda: proxy.cmd(cmd="counters", slot=10)[CONN_ACTIVE] == 0)
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[CONN_ACTIVE] == 0


def test_a_member_that_closes_first_still_receives_what_the_client_sends_after(procs):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)
    proxy = start(procs, [member(srv.getsockname()[1])])
    c = socket.create_connection(proxy.addr("v"), timeout=5)
    m, _ = srv.accept()
    m.settimeout(5)
    m.sendall(b"bye")
    m.shutdown(socket.SHUT_WR)                  # the member's half-close reaches the client ...
    assert recv_all(c) == b"bye"
    c.sendall(b"late words")                    # ... and the other direction still flows
    c.shutdown(socket.SHUT_WR)
    assert recv_all(m) == b"late words"
    m.close()
    c.close()
    srv.close()
    assert proxy.wait_for(lambda: proxy.conns() == [])


def test_a_client_that_does_not_read_holds_back_the_member_and_loses_nothing(procs):
    (b,) = backends(procs, 1, greet=False)
    proxy = start(procs, [member(b.port)])
    s = socket.create_connection(proxy.addr("v"), timeout=10)
    s.setblocking(False)
    block = os.urandom(256 << 10)
    sent = 0
    digest = hashlib.sha256()
    stalled_since = None
    while True:                                 # write until the whole chain is full
        try:
            n = s.send(block)
            digest.update(block[:n])
            sent += n
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 0.5:
                break
            time.sleep(0.01)
        assert sent < (256 << 20), "nothing pushes back"
    # bounded: socket buffers and two pipes, not an unbounded queue in the proxy
    (c,) = proxy.conns()
    assert c["bytes_in"] - c["bytes_out"] < (32 << 20)
    s.setblocking(True)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    assert len(got) == sent
    assert hashlib.sha256(got).digest() == digest.digest()


def test_ipv6_vip_and_member_with_proxy_v1_tcp6(procs):
    srv = socket.socket(socket.AF_INET6)
    try:
        srv.bind(("::1", 0))
    except OSError:
        import pytest
        pytest.skip("no IPv6 loopback")
    srv.listen(1)
    srv.settimeout(5)
    port = srv.getsockname()[1]
    proxy = Proxy(pools=[dict(name="web", proxy_protocol="v1",
                              members=[dict(key=f"[::1]:{port}", address="::1", port=port)])],
                  vips=[dict(name="v", protocol="tcp", default_pool="web", slot=VIP_SLOT)], address="::1")
    procs.append(proxy)
    c = socket.create_connection(proxy.addr("v"), timeout=5)
    c.sendall(b"six")
    m, _ = srv.accept()
    want = f"PROXY TCP6 ::1 ::1 {c.getsockname()[1]} {proxy.ports['v']}\r\n".encode() + b"six"
    m.settimeout(5)
    assert recv_exactly(m, len(want)) == want
    (info,) = proxy.conns()
    assert info["client"] == f"[::1]:{c.getsockname()[1]}"
    m.close()
    c.close()
    srv.close()


def test_a_member_that_never_answers_times_out_and_the_flow_goes_to_another(procs):
    (b,) = backends(procs, 1)
    # a member whose accept queue is full: the kernel drops further SYNs, the connect hangs
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(stuck.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    proxy = start(procs, [member(stuck.getsockname()[1], slot=11), member(b.port, slot=12)],
                  pool_extra=dict(connect_timeout=0.5))
    t0 = time.monotonic()
    s = socket.create_connection(proxy.addr("v"), timeout=10)
    assert greeting(s) == "b0"
    assert time.monotonic() - t0 >= 0.4          # it waited for the first member's timeout ...
    assert proxy.cmd(cmd="counters", slot=11)[TIMEOUTS] == 1    # ... and counted it there
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[REFUSED] == 0
    s.close()
    for f in fillers:
        f.close()
    stuck.close()


def test_after_a_mix_of_endings_nothing_is_left_open_or_counted(procs):
    import random
    rnd = random.Random(4)
    bs = backends(procs, 3, greet=False)
    proxy = start(procs, [member(b.port, slot=20 + i) for i, b in enumerate(bs)],
                  algorithm="least_connections")
    socks = [socket.create_connection(proxy.addr("v"), timeout=5) for _ in range(300)]
    assert proxy.wait_for(lambda: len(proxy.conns()) == 300)
    kill = []
    for i, s in enumerate(socks):
        how = rnd.choice(["echo", "reset", "half", "close", "kill"])
        if how == "echo":
            s.sendall(b"abc")
            assert recv_exactly(s, 3) == b"abc"
            s.close()
        elif how == "reset":
            s.sendall(os.urandom(rnd.randrange(1, 200_000)))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        elif how == "half":
            data = os.urandom(rnd.randrange(1, 300_000))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            assert recv_all(s) == data
            s.close()
        elif how == "close":
            s.close()
        else:
            kill.append((s, s.getsockname()[1]))
    by_port = {int(c["client"].rsplit(":", 1)[1]): c["id"] for c in proxy.conns()}
    for s, port in kill:
        assert proxy.cmd(cmd="kill", id=by_port[port])
        s.close()
    assert proxy.wait_for(lambda: proxy.conns() == [], timeout=10)
    eng = proxy.cmd(cmd="engine")
    assert eng["violations"] == []
    assert eng["conns"] == 0 and set(eng["member_active"].values()) == {0}
    for slot in [VIP_SLOT] + [20, 21, 22]:
        assert proxy.cmd(cmd="counters", slot=slot)[CONN_ACTIVE] == 0
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[CONN_TOTAL] == 300
