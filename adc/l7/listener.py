"""adc.l7.listener: the L7 data path of one http VIP in one worker (adc.runtime.Listener).

The per-connection work lives in adc.l7.proxy (see docs/l7.md); this module
serves the supervisor's socket with it and answers the worker's calls.
"""

import importlib.machinery
import importlib.util
import logging
import os
import socket
import sys

from adc.config.plan import VipPlan
from adc.runtime import Listener


def _load_proxy():
    """adc.l7.proxy compiled, when its build is at least as new as proxy.py; else the source.

    A stale build (proxy.py edited since `make build`) is never run: the source is.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(here, "proxy.py")
    from adc.l7 import http1
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        so = os.path.join(here, "proxy" + suffix)
        if os.path.exists(so):
            # the build types its heads as _scan's C structs: it needs http1 to have taken the
            # C parser, which it does not when _scan's build is older than http1.py
            if os.path.getmtime(so) >= os.path.getmtime(src) and http1.Kit is not http1.KitPy:
                import adc.l7.proxy as mod
                return mod
            break
    # an operator must know: the source is several times slower than the build
    logging.getLogger("adc.l7").warning(
        "adc/l7/proxy.py has no current compiled build: serving HTTP from the source, "
        "which costs more CPU per request (run `make build`)")
    spec = importlib.util.spec_from_file_location("adc.l7.proxy", src)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["adc.l7.proxy"] = mod
    spec.loader.exec_module(mod)
    return mod


proxy = _load_proxy()
_clock = proxy.Kit()
ClientConn = proxy.ClientConn
UpstreamConn = proxy.UpstreamConn
UpstreamCache = proxy.UpstreamCache
TimerHeap = proxy.TimerHeap
VipState = proxy.VipState
Exchange = proxy.Exchange
S_HEAD, S_REQ, S_TUNNEL, S_CLOSED = proxy.S_HEAD, proxy.S_REQ, proxy.S_TUNNEL, proxy.S_CLOSED


class HttpListener(Listener):
    """The L7 data path of one http VIP in one worker."""

    def __init__(self, ctx, vip: VipPlan, sock: socket.socket):
        super().__init__(ctx, vip, sock)
        self.state = VipState(vip)
        self.conns_set: set = set()
        h = self.state.http
        self.upstreams = UpstreamCache(ctx.loop, h.max_idle_per_member, h.member_idle_timeout)
        self.timers = TimerHeap(ctx.loop)
        self.server = None
        self.draining = False
        self.last_error = None
        self.tls = None
        self.tls_server = None      # adc.tls._conn.TlsServer when TLS is terminated in C
        if vip.protocol == "https" and vip.tls is not None:
            from adc.tls.server import ServerTls      # built here: bad certificates fail the prepare
            self.tls = ServerTls(vip.tls, vip.name, ctx.loop)

    async def start(self) -> None:
        # serve a duplicate of the fd: closing our server must leave the supervisor's socket open
        dup = socket.socket(fileno=os.dup(self.sock.fileno()))
        dup.setblocking(False)
        tls = self.tls
        factory = lambda: ClientConn(self)      # noqa: E731
        if tls is not None:
            # TLS in C (adc.tls._conn) around ClientConn; None: uvloop's ssl, the fallback
            c = tls.c_server(factory, self.state.header_timeout or 60.0)
            if c is not None:
                self.tls_server = c
                c.counters = self.ctx.counters
                c.slot = self.state.slot
                self.server = await self.ctx.loop.create_server(c, sock=dup, backlog=4096)
                return
        self.server = await self.ctx.loop.create_server(
            factory, sock=dup, backlog=4096, ssl=tls.context if tls is not None else None,
            ssl_handshake_timeout=self.state.header_timeout if tls is not None else None)

    def update(self, vip: VipPlan) -> None:
        self.vip = vip
        self.state = VipState(vip)
        if self.tls_server is not None:
            self.tls_server.slot = self.state.slot
        if self.tls is not None and vip.tls is not None:
            self.tls.apply(vip.tls)      # new handshakes get the new certificates; open ones keep theirs
        self.upstreams.max_idle = self.state.http.max_idle_per_member
        self.upstreams.idle_timeout = self.state.http.member_idle_timeout

    def stop_accepting(self) -> None:
        self.draining = True
        if self.server is not None:
            self.server.close()
            self.server = None
        for c in list(self.conns_set):
            if c.state == S_HEAD and not c.buf:
                c.state = S_CLOSED
                c.transport.close()

    def close_all(self) -> None:
        for c in list(self.conns_set):
            if c.transport is not None:
                c.transport.abort()
        self.upstreams.close_all()
        self.timers.close()

    def active(self) -> int:
        return len(self.conns_set)

    def conns(self) -> list:
        from adc.control.messages import ConnInfo
        now = _clock.now()      # the clock ClientConn stamps m_accept with
        out = []
        for c in self.conns_set:
            m = c.member
            out.append(ConnInfo(
                id=f"{self.ctx.slot}-h{c.id}", vip=self.state.name, protocol="http",
                client=f"{c.client_ip.decode()}:{c.client_port}",
                member=m.key if m is not None else "",
                state={S_HEAD: "idle" if not c.buf else "head", S_REQ: "request",
                       S_TUNNEL: "tunnel", S_CLOSED: "closed"}[c.state],
                age=max(0.0, now - c.m_accept), bytes_in=c.bytes_in, bytes_out=c.bytes_out))
        return out

    def kill(self, conn_id: str) -> bool:
        for c in self.conns_set:
            if f"{self.ctx.slot}-h{c.id}" == conn_id:
                c.transport.abort()
                return True
        return False
