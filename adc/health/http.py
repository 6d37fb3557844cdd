"""adc.health.http: HTTP and HTTPS monitors: one request, the status line against a list, the body against a regex."""
from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from typing import Optional

from adc.config.schema import Monitor

from .probe import MAX_READ, Outcome, Reader, Target, exchange, tls_args

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_CLEN = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.I)
_CLOSE = re.compile(rb"\r\nconnection:[^\r\n]*close", re.I)


def client_context(verify: bool) -> ssl.SSLContext:
    """One context per setting, made once: building a context costs more than a check."""
    ctx = _CONTEXTS.get(verify)
    if ctx is None:
        if verify:
            ctx = ssl.create_default_context()
        else:
            # no CA store: OpenSSL still builds the chain against a loaded store when it is told
            # not to verify, which costs a third of a handshake's CPU for nothing
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _CONTEXTS[verify] = ctx
    return ctx


_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def expected_statuses(spec) -> frozenset:
    """[200, "3xx", "400-404"] -> the set of statuses that pass."""
    out = set()
    for item in spec:
        if isinstance(item, int):
            out.add(item)
        elif item.endswith("xx"):
            base = int(item[0]) * 100
            out.update(range(base, base + 100))
        else:
            lo, hi = (int(x) for x in item.split("-"))
            out.update(range(lo, hi + 1))
    return frozenset(out)


def server_name(mon: Monitor) -> Optional[str]:
    """SNI: the monitor's sni, else its Host header; never an IP address (RFC 6066 forbids it)."""
    name = mon.sni or (mon.host.split(":")[0] if mon.host else None)
    if not name:
        return None
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        return name


class HttpProbe:
    """method path HTTP/1.1 with Host and the monitor's headers; Connection: close, or, with
    reuse_connection, one kept-alive connection per member (a new one only when the member closes it)."""

    def __init__(self, mon: Monitor):
        self.mon = mon
        self.tls = mon.type == "https"
        self.ctx = client_context(mon.verify) if self.tls else None
        self.sni = server_name(mon) if self.tls else None
        self.expect_status = expected_statuses(mon.expect_status)
        self.body = re.compile(mon.expect_body.encode()) if mon.expect_body else None
        self._requests: dict[Target, bytes] = {}
        self.reuse = bool(getattr(mon, "reuse_connection", False))
        self._idle: dict[Target, tuple] = {}     # target -> (transport, Reader) kept between checks

    def request(self, target: Target) -> bytes:
        req = self._requests.get(target)
        if req is None:
            mon = self.mon
            host = mon.host or (f"[{target.address}]" if ":" in target.address else target.address)
            if not mon.host and target.port not in ((443,) if self.tls else (80,)):
                host = f"{host}:{target.port}"
            lines = [f"{mon.method} {mon.path} HTTP/1.1", f"Host: {host}"]
            names = {k.lower() for k in mon.headers}
            if "user-agent" not in names:
                lines.append("User-Agent: adc-health")
            lines += [f"{k}: {v}" for k, v in mon.headers.items() if k.lower() not in ("host", "connection")]
            if not self.reuse:
                lines.append("Connection: close")
            req = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            if len(self._requests) < 4096:
                self._requests[target] = req
        return req

    async def __call__(self, target: Target) -> Outcome:
        want_body = self.body is not None and self.mon.method.upper() != "HEAD"
        if self.reuse:
            reply, closed = await self._kept(target)
        else:
            reply, closed, _ = await exchange(target, self.request(target), _complete if want_body else _head_line,
                                              ssl_ctx=self.ctx, server_hostname=self._sni(target))
        m = _STATUS.match(reply)
        if m is None:
            if not reply:
                return Outcome(False, "closed without a response" if closed else "no response")
            return Outcome(False, "not an HTTP response")
        status = int(m.group(1))
        if status not in self.expect_status:
            return Outcome(False, f"HTTP {status}")
        if self.body is not None:
            end = reply.find(b"\r\n\r\n")
            body = reply[end + 4:] if end >= 0 else b""
            if not self.body.search(body):
                return Outcome(False, f"HTTP {status}, body did not match {self.mon.expect_body!r}")
        return Outcome(True, f"HTTP {status}")


    def _sni(self, target: Target) -> Optional[str]:
        return self.sni or (target.address if self.mon.verify else None)

    async def _kept(self, target: Target) -> tuple[bytes, bool]:
        """One exchange on the member's kept connection; a new connection when there is none or
        the member closed the idle one (then once more, at once, within the same timeout)."""
        loop = asyncio.get_running_loop()
        head = self.mon.method.upper() == "HEAD"
        done = _framed_head if head else _framed
        for _ in range(2):
            conn = self._idle.pop(target, None)
            if conn is not None and (conn[0].is_closing() or conn[1].eof):
                conn[0].abort()
                conn = None
            if conn is None:
                transport, proto = await loop.create_connection(
                    lambda: Reader(loop, done), target.address, target.port, **tls_args(self.ctx, self._sni(target)))
                fresh = True
            else:
                transport, proto = conn
                proto.rearm(loop, done)
                fresh = False
            keep = False
            try:
                transport.write(self.request(target))
                try:
                    await proto.fut
                except OSError:
                    if fresh or proto.buf:
                        raise
                    continue          # the member had closed the idle connection
                reply = bytes(proto.buf)
                if not reply and proto.eof and not fresh:
                    continue
                keep = not proto.eof and _reusable(reply, head)
                return reply, proto.eof
            finally:
                if keep:
                    self._idle[target] = (transport, proto)
                else:
                    transport.abort()
        raise ConnectionResetError("member closed the connection")

    def close(self) -> None:
        for transport, _ in self._idle.values():
            transport.abort()
        self._idle.clear()


def _body_length(buf, head: bool) -> Optional[int]:
    """Bytes of the whole response when its framing says (headers end, Content-Length, no body); else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    m = _STATUS.match(buf)
    status = int(m.group(1)) if m else 0
    if head or status in (204, 304) or 100 <= status < 200:
        return end + 4
    cl = _CLEN.search(buf, 0, end + 2)
    if cl is not None:
        return end + 4 + int(cl.group(1))
    return None


def _framed(buf: bytearray) -> bool:
    n = _body_length(buf, False)
    if n is not None:
        return len(buf) >= n
    end = buf.find(b"\r\n\r\n")
    return end >= 0 and _CHUNKED.search(buf, 0, end + 2) is not None and buf.endswith(b"0\r\n\r\n")


def _framed_head(buf: bytearray) -> bool:
    return b"\r\n\r\n" in buf


def _reusable(reply: bytes, head: bool) -> bool:
    """The response was read exactly to its end and the member did not ask to close."""
    end = reply.find(b"\r\n\r\n")
    if end < 0 or not reply.startswith(b"HTTP/1.1 ") or _CLOSE.search(reply, 0, end + 2):
        return False
    n = _body_length(reply, head)
    if n is not None:
        return len(reply) == n
    return _CHUNKED.search(reply, 0, end + 2) is not None and reply.endswith(b"0\r\n\r\n")


def _head_line(buf: bytearray) -> bool:
    return b"\r\n" in buf


def _complete(buf: bytearray) -> bool:
    """Headers and, when Content-Length says how long it is, the whole body (else read to close)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = _CLEN.search(buf, 0, end + 2)
    return m is not None and len(buf) - end - 4 >= min(int(m.group(1)), MAX_READ)
