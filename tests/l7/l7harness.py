"""A proxy under test: HttpListener in a uvloop thread, with a real CounterRegion and real backends."""
from __future__ import annotations

import http.server
import json
import asyncio
import os
import socket
import socketserver
import threading
import time
from typing import Optional

import uvloop

from adc._fastpath.counters import CounterRegion, Field
from adc.config.plan import MemberPlan, PoolPlan, VipPlan
from adc.l7.listener import HttpListener
from adc.runtime import PoolRuntime


class Ctx:
    def __init__(self, loop, counters, pools, access_log=None):
        self.loop = loop
        self.counters = counters
        self.pools = pools
        self.slot = 0
        self.access_log = access_log


def pool(name: str, ports, slot: int = 0, algorithm="round_robin", retries=2, connect_timeout=1.0,
         first_member_slot: Optional[int] = None, **kw) -> PoolPlan:
    base = first_member_slot if first_member_slot is not None else slot * 10 + 100
    return PoolPlan(name=name, algorithm=algorithm, retries=retries, connect_timeout=connect_timeout,
                    slot=slot, members=[MemberPlan(key=f"127.0.0.1:{p}", address="127.0.0.1", port=p,
                                                   slot=base + i, **kw)
                                        for i, p in enumerate(ports)])


def vip(name="web", default_pool="p", routes=(), slot=1, **kw) -> VipPlan:
    return VipPlan(name=name, protocol="http", address="127.0.0.1", port=0, listener="tcp:127.0.0.1:0",
                   default_pool=default_pool, routes=list(routes), slot=slot, **kw)


class Proxy:
    """Start with `with Proxy(vip, [pools]) as p:`; p.port is where clients connect."""

    def __init__(self, vip_plan: VipPlan, pools: list, access_log=None):
        self.vip_plan = vip_plan
        self.pool_plans = pools
        self.access_log = access_log
        fd = os.memfd_create("c")
        os.ftruncate(fd, CounterRegion.size())
        self.counters = CounterRegion(fd)
        os.close(fd)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.loop = uvloop.new_event_loop()
        self.ctx = Ctx(self.loop, self.counters,
                       {p.name: PoolRuntime(p) for p in pools}, access_log)
        self.listener = HttpListener(self.ctx, vip_plan, self.sock)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self):
        self.loop.run_until_complete(self.listener.start())
        self._ready.set()
        self.loop.run_forever()
        self.listener.close_all()
        # let the transports finish closing, then close the loop here: a loop left to the
        # garbage collector closes its handles' fds whenever it goes, maybe after another
        # test has been given the same fd numbers
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def __enter__(self):
        self.thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *a):
        self.call(self.listener.stop_accepting)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.sock.close()

    def call(self, fn, *args):
        """Run fn in the proxy's loop and return its result."""
        done = threading.Event()
        box = []

        def run():
            try:
                box.append(fn(*args))
            finally:
                done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(5)
        return box[0] if box else None

    def counter(self, slot: int, field: str) -> int:
        return self.call(self.counters.get, slot, int(getattr(Field, field.upper())))

    def set_pools(self, pools: list):
        def swap():
            # as a worker's Prepare then Commit
            old = self.ctx.pools
            new = {p.name: PoolRuntime(p, old.get(p.name)) for p in pools}
            for pool in new.values():
                pool.activate()
            self.ctx.pools = new
        self.call(swap)

    def wait_idle(self, timeout=5.0):
        """Until no client connection is open."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.call(self.listener.active) == 0:
                return True
            time.sleep(0.02)
        return False


# ------------------------------------------------------------------- backends
class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers JSON describing what it received: the member's view of the request.

    /status/N answers status N; /bytes/N answers N bytes (chunked when ?chunked=1);
    /close answers and closes the connection.
    """
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _serve(self):
        body = b""
        te = self.headers.get("Transfer-Encoding")
        if te and te.lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(n))
                self.rfile.readline()
            body = b"".join(parts)
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        srv.requests.append((self.command, self.path, list(self.headers.items()), body,
                             self.client_address[1]))
        path, _, q = self.path.partition("?")
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self.send_response(200)
            block = b"x" * 65536
            if "chunked=1" in q:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = n
                while left:
                    k = min(left, len(block))
                    self.wfile.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(n))
                self.end_headers()
                left = n
                while left:
                    k = min(left, len(block))
                    self.wfile.write(block[:k])
                    left -= k
            return
        out = json.dumps({
            "server": srv.name, "method": self.command, "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("latin-1"), "port": self.client_address[1],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _serve


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # server_close must not wait, without a timeout, for a handler whose client never closed (a
    # proxy that failed its test): its daemon thread ends with the process
    block_on_close = False


class Backend:
    """A real HTTP/1.1 member on loopback that records every request it gets."""

    def __init__(self, name: str):
        self.srv = _Server(("127.0.0.1", 0), EchoHandler)
        self.srv.name = name
        self.srv.requests = []
        self.port = self.srv.server_address[1]
        self.name = name
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)

    @property
    def requests(self):
        return self.srv.requests

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.srv.shutdown()
        self.srv.server_close()


class RawMember:
    """A member on a raw loopback socket: each connection it accepts goes to serve(conn), in a
    thread of its own (`threaded`) or in the accept thread. A subclass sets its own attributes
    before calling __init__, which starts accepting; close() or leaving a `with` stops it."""
    threaded = True
    backlog = 64

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(self.backlog)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.threaded:
                threading.Thread(target=self.serve, args=(c,), daemon=True).start()
            else:
                self.serve(c)

    def serve(self, c: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        close_listener(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class RawBackend(RawMember):
    """A member that records raw bytes and answers each connection with a canned response.

    `respond(conn, received_so_far) -> bytes | None` decides when to answer (None: keep reading).
    """

    def __init__(self, response: bytes = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", respond=None,
                 close_after=False):
        self.response = response
        self.respond = respond
        self.close_after = close_after
        self.received: list[bytes] = []
        self.events: list[bytes] = []       # every recv, in arrival order
        super().__init__()

    def serve(self, c):
        idx = len(self.received)
        self.received.append(b"")
        c.settimeout(10)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.received[idx] += d
                self.events.append(d)
                if self.respond is not None:
                    r = self.respond(self.received[idx])
                elif b"\r\n\r\n" in self.received[idx]:
                    r = self.response
                else:
                    r = None
                if r:
                    c.sendall(r)
                    if self.close_after:
                        return
        except OSError:
            return
        finally:
            c.close()

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> bytes:
        """What the member received after `mark` (all connections, arrival order)."""
        return b"".join(self.events[mark:])

    @property
    def all_received(self) -> bytes:
        return b"".join(self.received)


def close_listener(sock: socket.socket) -> None:
    """Close a listening socket another thread may be blocked in accept() on: shutdown wakes it
    (accept fails), where close alone would leave the thread blocked for the rest of the run."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def raw_exchange(port: int, data: bytes, timeout: float = 3.0, shut: bool = False) -> bytes:
    """Send raw bytes to the proxy and read until it closes (or the timeout): the client's view."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class FastBackend:
    """A quick asyncio member for long loops: answers every request head with `name` as the body.

    Records (method, target, head bytes) of each request. GET/HEAD only (bodies are not read).
    """

    def __init__(self, name: str):
        import asyncio
        self.name = name.encode()
        self.requests = []
        self.loop = uvloop.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        backend = self

        class P(asyncio.Protocol):
            def connection_made(self, t):
                self.t = t
                self.buf = b""

            def data_received(self, data):
                self.buf += data
                while True:
                    i = self.buf.find(b"\r\n\r\n")
                    if i < 0:
                        return
                    head = self.buf[:i + 4]
                    self.buf = self.buf[i + 4:]
                    line = head.split(b"\r\n", 1)[0].split(b" ")
                    backend.requests.append((line[0], line[1], head))
                    self.t.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(backend.name), backend.name))

        self._proto = P
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self):
        async def main():
            self.server = await self.loop.create_server(self._proto, sock=self.sock)
            self._ready.set()
        self.loop.run_until_complete(main())
        self.loop.run_forever()
        # close the server and the loop here, in the loop's thread. Left open, both the
        # server's handle and self.sock own the listening fd, and when the garbage collector
        # takes the loop and the socket (in whatever thread it runs, maybe tests later) each
        # closes that fd number: the second close hits whatever socket was given the number
        # in between (EBADF in an unrelated test). Closing the server detaches self.sock.
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.close()

    def __enter__(self):
        self.thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *a):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.sock.close()
