"""adc.health.probe: what every check kind shares: the result type, a bounded reader, error wording.

A probe is `async def probe(target, monitor) -> Outcome`. It runs inside the
checker's timeout and never catches CancelledError; errors it does not
expect are turned into an Outcome by `describe`, so one odd member can never
stop the checker.
"""
from __future__ import annotations

import asyncio
import errno
import ssl
from typing import Callable, NamedTuple, Optional

from adc.config.schema import format_duration

MAX_READ = 65536     # a check never keeps more than this of a reply


class Target(NamedTuple):
    address: str
    port: int


class Outcome(NamedTuple):
    ok: bool
    detail: str       # what an operator reads: "HTTP 500", "connection refused", "timeout after 500ms"


class Reader(asyncio.Protocol):
    """Collects a reply until `done(buf)` says it has enough, the peer closes, or MAX_READ is reached."""

    __slots__ = ("buf", "done", "fut", "transport", "eof")   # eof: the peer closed (stays set)

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Optional[Callable[[bytearray], bool]]):
        self.buf = bytearray()
        self.done = done
        self.fut = loop.create_future()
        self.transport = None
        self.eof = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def rearm(self, loop: asyncio.AbstractEventLoop, done: Optional[Callable[[bytearray], bool]]) -> None:
        """Ready for the next exchange on the same connection (HTTP keep-alive checks)."""
        self.buf = bytearray()
        self.done = done
        self.fut = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.fut.done() and (len(self.buf) >= MAX_READ or (self.done is not None and self.done(self.buf))):
            self.fut.set_result(None)

    def eof_received(self):
        self.eof = True
        if not self.fut.done():
            self.fut.set_result(None)
        return False

    def connection_lost(self, exc) -> None:
        if not self.fut.done():
            if exc is None:
                self.eof = True
                self.fut.set_result(None)
            else:
                self.fut.set_exception(exc)


def tls_args(ssl_ctx: Optional[ssl.SSLContext], server_hostname: Optional[str]) -> dict:
    # "" sends no SNI; an IP address is matched against the certificate but never sent as SNI
    return {"ssl": ssl_ctx, "server_hostname": server_hostname or ""} if ssl_ctx is not None else {}


async def exchange(target: Target, payload: Optional[bytes], done: Optional[Callable[[bytearray], bool]],
                   ssl_ctx: Optional[ssl.SSLContext] = None, server_hostname: Optional[str] = None,
                   want_reply: bool = True) -> tuple[bytes, bool, object]:
    """Connect, send payload, read until done; return (reply, peer closed, transport extra ssl_object).

    The connection is aborted (RST), not closed: a checker that closes first would
    leave a TIME_WAIT socket per check, thousands a second with many members.
    """
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(lambda: Reader(loop, done), target.address,
                                                    target.port, **tls_args(ssl_ctx, server_hostname))
    try:
        sslobj = transport.get_extra_info("ssl_object")
        if payload:
            transport.write(payload)
        if want_reply:
            await proto.fut
        return bytes(proto.buf), proto.eof, sslobj
    finally:
        transport.abort()


def describe(exc: BaseException, timeout: float) -> str:
    """An operator's wording of why a check failed."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"timeout after {format_duration(timeout)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the member"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EHOSTUNREACH:
            return "host unreachable"
        if exc.errno == errno.ENETUNREACH:
            return "network unreachable"
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def shorten(data: bytes, n: int = 40) -> str:
    text = data[:n].decode("utf-8", "replace")
    return repr(text + ("..." if len(data) > n else ""))
