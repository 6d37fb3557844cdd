"""adc.l4.tcp: TCP forwarding on asyncio transports, the portable path beside the Cython splice engine.

Each client connection gets one upstream connection to a member chosen by
its pool; bytes are relayed both ways with flow control (a side whose peer's
write buffer is full stops reading), and an EOF on one side becomes a
shutdown(SHUT_WR) on the other, so half-closed protocols keep working.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from typing import Optional

from adc.fields import BYTES_IN, BYTES_OUT, CONN_ACTIVE, CONN_TOTAL, ERRORS, REFUSED, TIMEOUTS
from adc.control.messages import ConnInfo
from adc.l4.proxy_protocol import header as proxy_header
from adc.lb import flow_key
from adc.runtime import Listener, MemberRuntime

logger = logging.getLogger("adc.l4.tcp")



class _Upstream(asyncio.Protocol):
    __slots__ = ("conn", "t")

    def __init__(self, conn: "TcpConn"):
        self.conn = conn
        self.t = None

    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.conn.from_member(data)

    def eof_received(self):
        return self.conn.member_eof()

    def connection_lost(self, exc):
        self.conn.member_lost()

    def pause_writing(self):
        self.conn.client_t.pause_reading()

    def resume_writing(self):
        if not self.conn.closed:
            self.conn.client_t.resume_reading()


class TcpConn(asyncio.Protocol):
    """The client side of one proxied connection, and the owner of its upstream."""

    def __init__(self, lst: "TcpListener", cid: int):
        self.lst = lst
        self.id = cid
        self.vip = lst.vip                # the plan this connection was accepted with
        self.client_t = None
        self.up: Optional[_Upstream] = None
        self.member: Optional[MemberRuntime] = None
        self.client = ("", 0)
        self.pending: list[bytes] = []
        self.state = "connecting"
        self.started = time.monotonic()
        self.last = self.started
        self.bytes_in = 0
        self.bytes_out = 0
        self.client_eof = False
        self.member_eof_seen = False
        self.closed = False

    # ----------------------------------------------------------- client side
    def connection_made(self, transport):
        self.client_t = transport
        self.client = transport.get_extra_info("peername")[:2]
        self.local = transport.get_extra_info("sockname")[:2]
        c = self.lst.ctx.counters
        vslot = self.vip.slot
        c.inc(vslot, CONN_TOTAL)
        limit = self.vip.max_connections
        if limit is not None and len(self.lst.table) >= limit:
            c.inc(vslot, REFUSED)
            transport.abort()
            self.closed = True
            return
        self.lst.table[self.id] = self
        c.inc(vslot, CONN_ACTIVE)
        transport.pause_reading()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lst.ctx.loop.create_task(self._connect())

    async def _connect(self):
        ctx = self.lst.ctx
        pool = ctx.pools.get(self.vip.default_pool or "")
        if pool is None:
            return self._fail("no pool")
        cb = pool.breaker
        if cb is not None and cb.max_connections is not None \
                and sum(m.active for m in pool.members) >= cb.max_connections:
            # the pool's circuit breaker, as the engine applies it (adc/_fastpath/tcp.pyx)
            ctx.counters.inc(pool.slot, REFUSED)
            ctx.counters.inc(self.vip.slot, REFUSED)
            self.close()
            return
        key = flow_key(self.client[0], self.client[1], pool.plan.hash_key, self.local[0], self.local[1])
        tried: list[MemberRuntime] = []
        for _ in range(pool.plan.retries + 1):
            member = pool.pick(key, tried)
            if member is None:
                break
            tried.append(member)
            member.active += 1
            self.member = member      # the member may speak before this coroutine resumes
            try:
                _t, up = await asyncio.wait_for(
                    ctx.loop.create_connection(lambda: _Upstream(self), member.address, member.port),
                    pool.plan.connect_timeout)
            except (OSError, asyncio.TimeoutError) as e:
                self.member = None
                member.active -= 1
                ctx.counters.inc(member.slot, ERRORS)
                why = "timeout" if isinstance(e, asyncio.TimeoutError) else (e.strerror or str(e))
                logger.warning("vip %s: member %s/%s connect failed: %s", self.vip.name, pool.name, member.key, why)
                continue
            if self.closed:
                up.t.close()
                return
            self.up = up
            ctx.counters.inc(member.slot, CONN_TOTAL)
            ctx.counters.inc(member.slot, CONN_ACTIVE)
            self.state = "established"
            if pool.plan.proxy_protocol:
                up.t.write(proxy_header(pool.plan.proxy_protocol, self.client, self.local))
            for chunk in self.pending:
                up.t.write(chunk)
            self.pending.clear()
            self.client_t.resume_reading()
            return
        self._fail("no member available" if not tried else f"{len(tried)} member(s) failed")

    def _fail(self, why: str) -> None:
        logger.warning("vip %s: client %s:%s refused: %s", self.vip.name, *self.client, why)
        self.lst.ctx.counters.inc(self.vip.slot, ERRORS)
        self.close()

    def data_received(self, data):
        n = len(data)
        self.bytes_in += n
        self.last = time.monotonic()
        c = self.lst.ctx.counters
        c.inc(self.vip.slot, BYTES_IN, n)
        if self.up is None:
            self.pending.append(data)
            return
        c.inc(self.member.slot, BYTES_IN, n)
        self.up.t.write(data)

    def eof_received(self):
        self.client_eof = True
        if self.up is not None and self.up.t.can_write_eof():
            self.up.t.write_eof()
        if self.member_eof_seen:
            self.close()
            return False
        return True   # keep the write side open: the member may still answer

    def connection_lost(self, exc):
        self.close()

    def pause_writing(self):
        if self.up is not None:
            self.up.t.pause_reading()

    def resume_writing(self):
        if self.up is not None and not self.closed:
            self.up.t.resume_reading()

    # ----------------------------------------------------------- member side
    def from_member(self, data):
        n = len(data)
        self.bytes_out += n
        self.last = time.monotonic()
        c = self.lst.ctx.counters
        c.inc(self.vip.slot, BYTES_OUT, n)
        c.inc(self.member.slot, BYTES_OUT, n)
        self.client_t.write(data)

    def member_eof(self):
        self.member_eof_seen = True
        if self.client_t.can_write_eof():
            self.client_t.write_eof()
        if self.client_eof:
            self.close()
            return False
        return True

    def member_lost(self):
        self.close()

    # ----------------------------------------------------------------- end
    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.state = "closed"
        c = self.lst.ctx.counters
        if self.lst.table.pop(self.id, None) is not None:
            c.dec(self.vip.slot, CONN_ACTIVE)
        if self.member is not None:
            self.member.active -= 1
            if self.up is not None:
                c.dec(self.member.slot, CONN_ACTIVE)
        for t in (self.client_t, self.up.t if self.up else None):
            if t is not None:
                t.abort() if abort else t.close()

    def info(self) -> ConnInfo:
        m = self.member
        return ConnInfo(id=f"{self.lst.ctx.slot}-{self.id}", vip=self.vip.name, protocol="tcp",
                        client=f"{self.client[0]}:{self.client[1]}",
                        member=f"{m.pool}/{m.key}" if m else "-", state=self.state,
                        age=round(time.monotonic() - self.started, 3),
                        bytes_in=self.bytes_in, bytes_out=self.bytes_out)


class TcpListener(Listener):
    def __init__(self, ctx, vip, sock):
        super().__init__(ctx, vip, sock)
        self.server = None
        self.table: dict[int, TcpConn] = {}
        self._ids = itertools.count(1)
        self._idle_task = None

    async def start(self) -> None:
        # the server closes its socket on stop: give it a copy, the supervisor keeps the original
        lsock = socket.socket(fileno=os.dup(self.sock.fileno()))
        self.server = await self.ctx.loop.create_server(
            lambda: TcpConn(self, next(self._ids)), sock=lsock, backlog=4096)
        self._idle_task = self.ctx.loop.create_task(self._expire_idle())

    async def _expire_idle(self) -> None:
        # a once-a-second sweep is enough for timeouts counted in seconds
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for conn in list(self.table.values()):
                limit = conn.vip.idle_timeout
                if limit and now - conn.last > limit:
                    self.ctx.counters.inc(conn.vip.slot, TIMEOUTS)
                    logger.info("vip %s: client %s:%s idle for %.0fs, closed", conn.vip.name,
                                *conn.client, now - conn.last)
                    conn.close(abort=True)

    def stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def close_all(self) -> None:
        for conn in list(self.table.values()):
            conn.close(abort=True)
        if self._idle_task is not None and not self.table and self.server is None:
            self._idle_task.cancel()

    def active(self) -> int:
        return len(self.table)

    def conns(self) -> list:
        return [c.info() for c in self.table.values()]

    def kill(self, conn_id: str) -> bool:
        for c in list(self.table.values()):
            if f"{self.ctx.slot}-{c.id}" == conn_id:
                c.close(abort=True)
                return True
        return False
