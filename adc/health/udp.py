"""adc.health.udp: UDP monitors: send a datagram, expect a reply (matching a pattern when one is given).

UDP has no connection, so "no reply within the timeout" is the usual failure;
an ICMP port unreachable (nothing bound on the port) fails the check at once.
"""
from __future__ import annotations

import asyncio
import re
from typing import Callable, Optional

from adc.config.schema import Monitor, format_duration

from .probe import Outcome, Target, shorten


class Datagram(asyncio.DatagramProtocol):
    """Waits for the first datagram `accept` takes (a connected socket only hears from its member)."""

    __slots__ = ("fut", "accept", "transport", "seen")

    def __init__(self, loop: asyncio.AbstractEventLoop, accept: Optional[Callable[[bytes], bool]]):
        self.fut = loop.create_future()
        self.accept = accept
        self.transport = None
        self.seen: Optional[bytes] = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.seen = data
        if not self.fut.done() and (self.accept is None or self.accept(data)):
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)

    def connection_lost(self, exc) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc or ConnectionError("socket closed"))


class NoReply(Exception):
    """Nothing acceptable came back within the timeout; `seen` is the last datagram that did, if any."""

    def __init__(self, seen: Optional[bytes]):
        super().__init__("no reply")
        self.seen = seen


async def ask(target: Target, payload: bytes, timeout: float,
              accept: Optional[Callable[[bytes], bool]] = None) -> bytes:
    """Send payload from a fresh connected socket, return the first accepted reply, or raise NoReply."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: Datagram(loop, accept),
                                                           remote_addr=(target.address, target.port))
    fut = proto.fut
    timer = loop.call_later(timeout, lambda: fut.done() or fut.set_exception(NoReply(proto.seen)))
    try:
        transport.sendto(payload)
        return await fut
    finally:
        timer.cancel()
        transport.close()


class UdpProbe:
    own_timeout = True     # says "no reply" itself, and what did come back

    def __init__(self, mon: Monitor):
        # an empty datagram is never sent by asyncio transports; without `send`, one newline
        self.payload = (mon.send or "\n").encode()
        self.timeout = mon.timeout
        self.expect = re.compile(mon.expect.encode()) if mon.expect else None
        self.expect_text = mon.expect

    async def __call__(self, target: Target) -> Outcome:
        pat = self.expect
        try:
            reply = await ask(target, self.payload, self.timeout,
                              (lambda d: pat.search(d) is not None) if pat else None)
        except ConnectionRefusedError:
            return Outcome(False, "port unreachable")
        except NoReply as e:
            if e.seen is not None:
                return Outcome(False, f"reply {shorten(e.seen)} did not match {self.expect_text!r}")
            return Outcome(False, f"no reply within {format_duration(self.timeout)}")
        if pat is None:
            return Outcome(True, f"reply of {len(reply)} bytes")
        return Outcome(True, f"reply matched {self.expect_text!r}")
