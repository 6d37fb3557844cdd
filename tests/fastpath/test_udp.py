"""The UDP fast path end to end: flows per client, replies from the VIP address, idle expiry, one-shot, bound."""
from __future__ import annotations

import socket

from fp import Backend, Proxy, member

VIP_SLOT = 1
CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, REQUESTS, ERRORS, REFUSED, TIMEOUTS = range(8)


def start(procs, nb=2, **vip):
    bs = [Backend("udp", f"u{i}") for i in range(nb)]
    procs.extend(bs)
    proxy = Proxy(pools=[dict(name="dns", algorithm="round_robin", slot=2,
                              members=[member(b.port, slot=10 + i) for i, b in enumerate(bs)])],
                  vips=[dict(name="u", protocol="udp", default_pool="dns", slot=VIP_SLOT, **vip)])
    procs.append(proxy)
    return proxy, bs


def client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def test_10000_datagrams_from_several_clients_each_come_back_to_their_sender(procs):
    proxy, _ = start(procs)
    vip = proxy.addr("u")
    clients = [client() for _ in range(5)]
    per = 2000
    window = 50          # bounded load: at most 50 datagrams in flight per client
    for base in range(0, per, window):
        for i, s in enumerate(clients):
            for j in range(base, base + window):
                s.sendto(f"c{i}-{j}".encode(), vip)
        for i, s in enumerate(clients):
            got = set()
            for _ in range(window):
                data, src = s.recvfrom(2048)
                assert src == vip                   # the reply leaves from the VIP's address
                assert data.startswith(f"c{i}-".encode())
                got.add(data)
            assert got == {f"c{i}-{j}".encode() for j in range(base, base + window)}
    flows = proxy.conns()
    assert len(flows) == 5
    assert proxy.cmd(cmd="engine")["violations"] == []
    assert {f["client"] for f in flows} == {"127.0.0.1:%d" % s.getsockname()[1] for s in clients}
    assert all(f["protocol"] == "udp" and f["bytes_in"] == f["bytes_out"] for f in flows)
    c = proxy.cmd(cmd="counters", slot=VIP_SLOT)
    assert c[CONN_TOTAL] == 5 and c[REFUSED] == 0


def test_zero_length_and_maximum_size_datagrams_are_forwarded_intact(procs):
    proxy, _ = start(procs, nb=1)
    s = client()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    for payload in (b"", bytes(range(256)) * 255 + b"x" * 227):     # 0 and 65,507 bytes
        s.sendto(payload, proxy.addr("u"))
        data, _ = s.recvfrom(70000)
        assert data == payload


def test_a_flow_sticks_to_its_member_and_idle_flows_expire(procs):
    proxy, _ = start(procs, idle_timeout=0.5)
    s = client()
    for _ in range(3):
        s.sendto(b"q", proxy.addr("u"))
        s.recvfrom(100)
    (f,) = proxy.conns()
    assert proxy.wait_for(lambda: proxy.conns() == [], timeout=5)
    s.sendto(b"q", proxy.addr("u"))
    s.recvfrom(100)
    (g,) = proxy.conns()
    assert g["id"] != f["id"]


def test_one_shot_flows_end_after_the_reply(procs):
    proxy, _ = start(procs, udp_one_shot=True)
    s = client()
    for i in range(20):
        s.sendto(b"query %d" % i, proxy.addr("u"))
        assert s.recvfrom(100)[0] == b"query %d" % i
    assert proxy.wait_for(lambda: proxy.conns() == [])
    c = proxy.cmd(cmd="counters", slot=VIP_SLOT)
    assert c[CONN_TOTAL] == 20 and c[CONN_ACTIVE] == 0


def test_the_flow_table_bound_is_respected_and_counted(procs):
    proxy, _ = start(procs, udp_flow_limit=3)
    cs = [client() for _ in range(5)]
    for s in cs:
        s.sendto(b"hello", proxy.addr("u"))
    answered = 0
    for s in cs:
        s.settimeout(0.5)
        try:
            s.recvfrom(100)
            answered += 1
        except TimeoutError:
            pass
    assert answered == 3
    assert len(proxy.conns()) == 3
    assert proxy.cmd(cmd="counters", slot=VIP_SLOT)[REFUSED] == 2


def test_ipv6_flows_are_echoed_to_the_right_client(procs):
    echo = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        echo.bind(("::1", 0))
    except OSError:
        import pytest
        pytest.skip("no IPv6 loopback")
    port = echo.getsockname()[1]
    proxy = Proxy(pools=[dict(name="dns", members=[dict(key=f"[::1]:{port}", address="::1", port=port)])],
                  vips=[dict(name="u", protocol="udp", default_pool="dns", slot=VIP_SLOT)], address="::1")
    procs.append(proxy)
    clients = []
    for i in range(3):
        c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        c.bind(("::1", 0))
        c.settimeout(5)
        c.sendto(b"six %d" % i, proxy.addr("u"))
        clients.append(c)
    echo.settimeout(5)
    for _ in range(3):
        data, addr = echo.recvfrom(100)
        echo.sendto(data, addr)
    for i, c in enumerate(clients):
        data, src = c.recvfrom(100)
        assert data == b"six %d" % i and src[:2] == ("::1", proxy.ports["u"])
    assert len(proxy.conns()) == 3
    assert proxy.cmd(cmd="engine")["violations"] == []
