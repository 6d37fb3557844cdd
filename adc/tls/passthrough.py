"""adc.tls.passthrough: SNI passthrough on tcp VIPs: the pool is chosen by the ClientHello's server name.

TLS is not terminated: the first bytes are read until the ClientHello is
whole, its server name picks the pool (vip.sni_routes, exact then wildcard,
else default_pool), and from then on the connection is the plain TCP relay
of adc.l4.tcp, the buffered bytes first. A client that sends no ClientHello
within the header timeout is closed; bytes that are not TLS go to the
default pool (or are refused without one).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket

import msgspec

from adc.l4.tcp import ERRORS, TIMEOUTS, TcpConn, TcpListener
from adc.tls.clienthello import NEED_MORE, NotClientHello, SniTable, parse

logger = logging.getLogger("adc.tls")

HELLO_TIMEOUT = 10.0


class SniConn(TcpConn):
    def connection_made(self, transport):
        self.hello_done = asyncio.Event()
        self.sni = None
        super().connection_made(transport)     # pauses reading and starts _connect

    def data_received(self, data):
        super().data_received(data)
        if self.up is None and not self.hello_done.is_set():
            self.hello_done.set()

    async def _connect(self):
        lst = self.lst
        table = lst.table_for(self.vip)
        buf = b""
        self.client_t.resume_reading()
        loop = lst.ctx.loop
        deadline = loop.time() + HELLO_TIMEOUT
        host = None
        while True:
            buf = b"".join(self.pending)
            try:
                got = parse(buf) if buf else NEED_MORE
            except NotClientHello as e:
                logger.info("vip %s: client %s:%s sent no TLS ClientHello (%s): default pool",
                            self.vip.name, *self.client, e)
                break
            if got is not NEED_MORE:
                host = got
                break
            if self.closed or self.client_eof:
                return self.close()
            left = deadline - loop.time()
            if left <= 0:
                lst.ctx.counters.inc(self.vip.slot, TIMEOUTS)
                logger.info("vip %s: client %s:%s: no ClientHello within %.0fs, closed",
                            self.vip.name, *self.client, HELLO_TIMEOUT)
                return self.close(abort=True)
            self.hello_done.clear()
            try:
                await asyncio.wait_for(self.hello_done.wait(), left)
            except asyncio.TimeoutError:
                pass
        if self.closed:
            return
        self.client_t.pause_reading()
        self.sni = host
        pool = table.pool(host)
        if pool is None:
            lst.ctx.counters.inc(self.vip.slot, ERRORS)
            logger.warning("vip %s: client %s:%s: server name %r matches no sni_routes and there is no "
                           "default_pool: closed", self.vip.name, *self.client, host)
            return self.close(abort=True)
        if pool != self.vip.default_pool:
            # the relay connects to vip.default_pool: this connection's copy names the chosen one
            self.vip = msgspec.structs.replace(self.vip, default_pool=pool)
        await super()._connect()


class SniListener(TcpListener):
    """A tcp VIP with sni_routes."""

    def __init__(self, ctx, vip, sock):
        super().__init__(ctx, vip, sock)
        self._tables: dict[int, tuple[object, SniTable]] = {}

    def table_for(self, vip) -> SniTable:
        hit = self._tables.get(id(vip))
        if hit is None or hit[0] is not vip:
            if len(self._tables) > 8:
                self._tables.clear()
            hit = (vip, SniTable(list(vip.sni_routes), vip.default_pool))
            self._tables[id(vip)] = hit
        return hit[1]

    async def start(self) -> None:
        lsock = socket.socket(fileno=os.dup(self.sock.fileno()))
        self.server = await self.ctx.loop.create_server(
            lambda: SniConn(self, next(self._ids)), sock=lsock, backlog=4096)
        self._idle_task = self.ctx.loop.create_task(self._expire_idle())
