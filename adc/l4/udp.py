"""adc.l4.udp: UDP forwarding by flows, the portable path beside the Cython engine.

A flow is keyed by the client's address and owns a socket connected to its
member, so replies come back on that socket and are sent to the client from
the VIP's own socket (hence from the VIP address). Flows end when idle, or
after the first reply in one-shot mode (DNS). The table is bounded: a new
client past the bound is dropped and counted as refused.
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
from adc.lb import flow_key
from adc.runtime import Listener, MemberRuntime

logger = logging.getLogger("adc.l4.udp")

DEFAULT_IDLE = 30.0
MAX_DGRAM = 65535
BATCH = 64     # datagrams read per wakeup, so one busy socket cannot starve the loop


class Flow:
    __slots__ = ("id", "client", "member", "sock", "vip", "started", "last", "bytes_in", "bytes_out")

    def __init__(self, fid: int, client: tuple, member: MemberRuntime, sock: socket.socket, vip):
        self.id = fid
        self.client = client
        self.member = member
        self.sock = sock
        self.vip = vip
        self.started = self.last = time.monotonic()
        self.bytes_in = 0
        self.bytes_out = 0


class UdpListener(Listener):
    def __init__(self, ctx, vip, sock):
        super().__init__(ctx, vip, sock)
        self.flows: dict[tuple, Flow] = {}
        self._ids = itertools.count(1)
        self._vsock: Optional[socket.socket] = None
        self._sweeper = None

    async def start(self) -> None:
        self._vsock = socket.socket(fileno=os.dup(self.sock.fileno()))
        self._vsock.setblocking(False)
        self.ctx.loop.add_reader(self._vsock.fileno(), self._on_vip)
        self._sweeper = self.ctx.loop.create_task(self._expire_idle())

    # ------------------------------------------------------------ client -> member
    def _on_vip(self) -> None:
        vs = self._vsock
        c = self.ctx.counters
        for _ in range(BATCH):
            try:
                data, client = vs.recvfrom(MAX_DGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                logger.debug("vip %s: recvfrom: %s", self.vip.name, e)
                return
            flow = self.flows.get(client)
            if flow is None:
                flow = self._new_flow(client)
                if flow is None:
                    continue
            n = len(data)
            flow.last = time.monotonic()
            flow.bytes_in += n
            c.inc(flow.vip.slot, BYTES_IN, n)
            c.inc(flow.member.slot, BYTES_IN, n)
            try:
                flow.sock.send(data)
            except (BlockingIOError, InterruptedError):
                c.inc(flow.vip.slot, ERRORS)        # member socket buffer full: UDP drops
            except OSError as e:
                # ECONNREFUSED from an earlier ICMP: the member port is closed
                c.inc(flow.member.slot, ERRORS)
                logger.info("vip %s: member %s/%s: %s", self.vip.name, flow.member.pool, flow.member.key,
                            e.strerror or e)
                self._end(flow)

    def _new_flow(self, client: tuple) -> Optional[Flow]:
        vip = self.vip
        c = self.ctx.counters
        if len(self.flows) >= vip.udp_flow_limit:
            c.inc(vip.slot, REFUSED)
            return None
        pool = self.ctx.pools.get(vip.default_pool or "")
        member = pool.pick(flow_key(client[0], client[1], pool.plan.hash_key, vip.address, vip.port,
                                    "udp")) if pool else None
        if member is None:
            c.inc(vip.slot, ERRORS)
            return None
        fam = socket.AF_INET6 if ":" in member.address else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setblocking(False)
        try:
            s.connect((member.address, member.port))
        except OSError as e:
            s.close()
            c.inc(member.slot, ERRORS)
            logger.warning("vip %s: member %s/%s: %s", vip.name, member.pool, member.key, e.strerror or e)
            return None
        flow = Flow(next(self._ids), client, member, s, vip)
        self.flows[client] = flow
        member.active += 1
        c.inc(vip.slot, CONN_TOTAL)
        c.inc(vip.slot, CONN_ACTIVE)
        c.inc(member.slot, CONN_TOTAL)
        c.inc(member.slot, CONN_ACTIVE)
        self.ctx.loop.add_reader(s.fileno(), self._on_member, flow)
        return flow

    # ------------------------------------------------------------ member -> client
    def _on_member(self, flow: Flow) -> None:
        c = self.ctx.counters
        for _ in range(BATCH):
            try:
                data = flow.sock.recv(MAX_DGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                c.inc(flow.member.slot, ERRORS)
                logger.info("vip %s: member %s/%s: %s", flow.vip.name, flow.member.pool, flow.member.key,
                            e.strerror or e)
                self._end(flow)
                return
            n = len(data)
            flow.last = time.monotonic()
            flow.bytes_out += n
            c.inc(flow.vip.slot, BYTES_OUT, n)
            c.inc(flow.member.slot, BYTES_OUT, n)
            if self._vsock is not None:
                try:
                    self._vsock.sendto(data, flow.client)
                except OSError:
                    c.inc(flow.vip.slot, ERRORS)
            if flow.vip.udp_one_shot:
                self._end(flow)
                return

    def _end(self, flow: Flow) -> None:
        if self.flows.pop(flow.client, None) is None:
            return
        try:
            self.ctx.loop.remove_reader(flow.sock.fileno())
        except (ValueError, OSError):
            pass
        flow.sock.close()
        flow.member.active -= 1
        c = self.ctx.counters
        c.dec(flow.vip.slot, CONN_ACTIVE)
        c.dec(flow.member.slot, CONN_ACTIVE)

    async def _expire_idle(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for flow in list(self.flows.values()):
                if now - flow.last > (flow.vip.idle_timeout or DEFAULT_IDLE):
                    self.ctx.counters.inc(flow.vip.slot, TIMEOUTS)
                    self._end(flow)

    # ------------------------------------------------------------ listener
    def stop_accepting(self) -> None:
        # UDP has no accept: stop reading the VIP socket; replies of live flows still go out
        if self._vsock is not None:
            try:
                self.ctx.loop.remove_reader(self._vsock.fileno())
            except (ValueError, OSError):
                pass

    def close_all(self) -> None:
        for flow in list(self.flows.values()):
            self._end(flow)
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._vsock is not None:
            self.stop_accepting()
            self._vsock.close()
            self._vsock = None

    def active(self) -> int:
        return len(self.flows)

    def conns(self) -> list:
        now = time.monotonic()
        return [ConnInfo(id=f"{self.ctx.slot}-u{f.id}", vip=f.vip.name, protocol="udp",
                         client=f"{f.client[0]}:{f.client[1]}", member=f"{f.member.pool}/{f.member.key}",
                         state="flow", age=round(now - f.started, 3), bytes_in=f.bytes_in,
                         bytes_out=f.bytes_out) for f in self.flows.values()]

    def kill(self, conn_id: str) -> bool:
        for f in list(self.flows.values()):
            if f"{self.ctx.slot}-u{f.id}" == conn_id:
                self._end(f)
                return True
        return False
