"""perf/l7_instructions.py: our own L7 code's cost per request, without the kernel and the loop.

Drives one adc.l7.proxy ClientConn through N requests with in-memory
transports (one member, an nginx-like 128 B response, no access log): what
it measures is the proxy's own work per request: parsing, routing, the
member choice, building heads, counters. uvloop, libuv and the kernel are
not in it. Under callgrind the count is repeatable whatever else the
machine runs, so a change can be judged on a busy machine:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python perf/l7_instructions.py --requests 20000 --mode keepalive
    callgrind_annotate --inclusive=yes /tmp/cg.out | head -60

`--mode newconn` opens a client connection per request. The script prints
the wall time per request too (noisy; the instruction count is the figure).
Subtract a run with --requests 0 to remove the start-up.

`--tls` puts adc.tls._conn (TLS 1.3, ECDSA P-256, as the tls-keepalive
benchmark) between the client and ClientConn; the client is Python's ssl over
memory BIOs. To count the proxy's side only, collect inside its two entry
points:

    valgrind --tool=callgrind --toggle-collect='*TlsConn_*data_received*' \
        --toggle-collect='*UpstreamConn_*data_received*' ... --tls
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import uvloop  # noqa: E402

from adc._fastpath.counters import CounterRegion  # noqa: E402
from adc.config.plan import MemberPlan, PoolPlan, VipPlan  # noqa: E402
from adc.l7.listener import HttpListener, proxy  # noqa: E402
from adc.runtime import PoolRuntime  # noqa: E402

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 06:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 128\r\nConnection: keep-alive\r\n\r\n" + b"x" * 128)


class Transport:
    """What ClientConn and UpstreamConn call on a uvloop transport.

    The methods are C builtins, not Python functions: uvloop's are C, and an
    interpreted stand-in would count its own bytecode as the proxy's cost.
    """

    def __init__(self, peer=("127.0.0.1", 40000)):
        self.sent = collections.deque(maxlen=4)
        self.write = self.sent.append
        self.writelines = self.sent.extend
        self.get_extra_info = {"peername": peer}.get
        self.pause_reading = self.resume_reading = self.close = self.abort = int
        self.is_closing = bool


class Ctx:
    def __init__(self, loop, counters, pools):
        self.loop = loop
        self.counters = counters
        self.pools = pools
        self.slot = 0
        self.access_log = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--mode", choices=("keepalive", "newconn"), default="keepalive")
    ap.add_argument("--tls", action="store_true", help="terminate TLS in adc.tls._conn (keep-alive only)")
    args = ap.parse_args()

    loop = uvloop.new_event_loop()
    fd = os.memfd_create("counters")
    os.ftruncate(fd, CounterRegion.size())
    counters = CounterRegion(fd)
    os.close(fd)
    pool = PoolPlan(name="p", algorithm="round_robin", slot=0,
                    members=[MemberPlan(key="127.0.0.1:9000", address="127.0.0.1", port=9000, slot=100)])
    vip = VipPlan(name="web", protocol="http", address="127.0.0.1", port=8080, listener="tcp:127.0.0.1:8080",
                  default_pool="p", routes=[], slot=1)
    ctx = Ctx(loop, counters, {"p": PoolRuntime(pool)})
    import socket
    lst = HttpListener(ctx, vip, socket.socket())
    up = proxy.UpstreamConn(lst.upstreams, "127.0.0.1:9000")
    up.connection_made(Transport(("127.0.0.1", 9000)))
    lst.upstreams.put(up)

    if args.tls:
        return tls_main(args, lst, up, counters)
    conn = None
    t0 = time.perf_counter()
    for i in range(args.requests):
        if conn is None:
            conn = proxy.ClientConn(lst)
            conn.connection_made(Transport())
        conn.data_received(REQUEST)
        up.data_received(RESPONSE)
        if args.mode == "newconn":
            conn.connection_lost(None)
            conn = None
    dt = time.perf_counter() - t0
    if args.requests:
        assert up.transport.sent and counters.get(1, 4) == args.requests, "requests did not complete"
        print(f"{args.requests} {args.mode} requests: {dt / args.requests * 1e6:.2f} us each "
              f"(compiled proxy: {proxy.__file__.endswith('.so')})")
    return 0


def tls_main(args, lst, up, counters) -> int:
    import ssl
    import tempfile

    from adc.config.plan import TlsPlan
    from adc.tls.labca import LabCA
    from adc.tls.server import ServerTls

    with tempfile.TemporaryDirectory(prefix="adc-l7-instructions-") as d:
        cert, key = LabCA().issue(d, "web", dns=["bench.test"])
        lst.tls = ServerTls(TlsPlan(certificates=[("web", cert, key, None)]), "web", lst.ctx.loop)
        srv = lst.tls.c_server(lambda: proxy.ClientConn(lst), 60.0)     # reads the key files
    assert srv is not None, "adc.tls._conn is not available"
    raw = Transport()
    raw.sent = collections.deque()
    raw.write = raw.sent.append
    tc = srv()
    tc.connection_made(raw)

    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    into, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    cli = cctx.wrap_bio(into, out, server_hostname="bench.test")

    def to_client():
        while raw.sent:
            into.write(raw.sent.popleft())

    while True:
        try:
            cli.do_handshake()
            break
        except ssl.SSLWantReadError:
            tc.data_received(out.read())
            to_client()
    tc.data_received(out.read())       # the client's Finished
    to_client()
    t0 = time.perf_counter()
    for i in range(args.requests):
        cli.write(REQUEST)
        tc.data_received(out.read())
        up.data_received(RESPONSE)
        to_client()
        got = cli.read(65536)
        assert got.endswith(b"x" * 128), got
    dt = time.perf_counter() - t0
    if args.requests:
        assert counters.get(1, 4) == args.requests, "requests did not complete"
        print(f"{args.requests} TLS keep-alive requests: {dt / args.requests * 1e6:.2f} us each (client too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
