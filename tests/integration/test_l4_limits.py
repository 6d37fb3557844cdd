"""A tcp VIP's limits with a queue and its TCP keepalive, through the real adcd and a real echo backend."""
from __future__ import annotations

import socket
import time

from harness import Adcd, Backends, echo, fresh_ip

CONFIG = """\
pools:
  - name: echo
    members:
      - {{address: {ip}, port: 9101, max_connections: 1}}
vips:
  - name: echo
    address: {ip}
    port: 7000
    protocol: tcp
    default_pool: echo
    limit_action: queue
    max_queue: 4
    queue_timeout: 1s
    tcp_keepalive: {{idle: 9s, interval: 2s, count: 3}}
"""




def waits(s: socket.socket, seconds: float = 0.3) -> bool:
    s.settimeout(seconds)
    try:
        s.recv(1)
        return False
    except socket.timeout:
        return True
    finally:
        s.settimeout(5)


def keepalive_timers(ip: str, port: int) -> list[tuple[int, int]]:
    """(timer kind, clock ticks left) of established sockets to ip:port, from the kernel's table."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(ip), 'big')):08X}:{port:04X}"
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[2] == want and fields[3] == "01":
                tr, when = fields[5].split(":")
                out.append((int(tr, 16), int(when, 16)))
    return out


def test_a_queued_client_is_served_when_the_member_frees_and_times_out_otherwise(tmp_path):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, tcp_echo=[9101])
    d = Adcd(tmp_path, CONFIG.format(ip=ip), workers=1)   # limits are counted per worker
    try:
        before = d.api("GET", "/stats")["vips"]["echo"]["conn_total"]   # the harness's readiness probes
        first = socket.create_connection((ip, 7000), timeout=5)
        assert echo(first, b"first") == b"first"
        # the member holds its one connection: the next client is accepted but waits
        second = socket.create_connection((ip, 7000), timeout=5)
        second.sendall(b"second")
        assert waits(second)
        states = {c["state"] for c in d.api("GET", "/conns")}
        assert states == {"established", "queued"}
        first.close()
        got = b""
        while len(got) < 6:
            got += second.recv(6)
        assert got == b"second"
        # now the second holds the member; a third waits its queue_timeout (1s) and is closed
        t0 = time.monotonic()
        third = socket.create_connection((ip, 7000), timeout=5)
        try:
            assert third.recv(1) == b""
        except ConnectionResetError:
            pass
        assert 0.8 <= time.monotonic() - t0 < 5
        stats = d.api("GET", "/stats")["vips"]["echo"]
        assert stats["timeouts"] == 1 and stats["refused"] == 0 and stats["conn_total"] - before == 3
        # keepalive reaches the member connection: the kernel runs its keepalive timer (kind 2)
        timers = keepalive_timers(ip, 9101)
        assert len(timers) == 1 and timers[0][0] == 2 and 0 < timers[0][1] <= 900
        second.close()
    finally:
        d.stop()
        be.stop()
