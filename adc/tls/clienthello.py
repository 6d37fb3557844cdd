"""adc.tls.clienthello: the server name of a TLS ClientHello, read from the first bytes of a connection (sans-IO).

Used by SNI passthrough: nothing is decrypted or changed, the bytes are
forwarded as they came. The ClientHello may span several TLS records; it is
reassembled up to MAX_HELLO bytes.

    RFC 8446 5.1 record:     type(1)=22 version(2) length(2) fragment
    RFC 8446 4.  handshake:  type(1)=1 length(3) body
    ClientHello body:        version(2) random(32) session_id<1> cipher_suites<2>
                             compression<1> extensions<2>
    RFC 6066 3. server_name: extension 0: list<2> of {type(1)=0 host_name<2>}
"""
from __future__ import annotations

from typing import Optional

MAX_HELLO = 16384 + 5 * 4        # a ClientHello over this is not one we route
NEED_MORE = object()             # parse() result: not enough bytes yet


class NotClientHello(ValueError):
    """The bytes are not the start of a TLS ClientHello (plain TCP, HTTP, garbage)."""


def _handshake_bytes(data: bytes):
    """The concatenated handshake fragments of the leading records, and whether a record is incomplete."""
    out = bytearray()
    i = 0
    while i + 5 <= len(data):
        if data[i] != 22:
            if i == 0:
                raise NotClientHello(f"first byte {data[0]:#04x} is not a TLS handshake record")
            break
        if data[i + 1] != 3:
            raise NotClientHello("not a TLS record version")
        n = int.from_bytes(data[i + 3:i + 5], "big")
        if n == 0 or n > 16384 + 256:
            raise NotClientHello("bad TLS record length")
        if i + 5 + n > len(data):
            out += data[i + 5:]
            return bytes(out), True
        out += data[i + 5:i + 5 + n]
        i += 5 + n
    if i == 0 and len(data) >= 1 and data[0] != 22:
        raise NotClientHello(f"first byte {data[0]:#04x} is not a TLS handshake record")
    return bytes(out), i < len(data) or i == 0


def parse(data: bytes):
    """NEED_MORE, or the server name (lower case str) or None when the ClientHello carries none.

    Raises NotClientHello when the bytes cannot be a ClientHello.
    """
    hs, _partial = _handshake_bytes(data)
    if len(hs) < 4:
        if len(data) > MAX_HELLO:
            raise NotClientHello("no ClientHello in the first bytes")
        return NEED_MORE
    if hs[0] != 1:
        raise NotClientHello(f"handshake type {hs[0]} is not ClientHello")
    n = int.from_bytes(hs[1:4], "big")
    if n > MAX_HELLO:
        raise NotClientHello("ClientHello too long")
    if len(hs) < 4 + n:
        if len(data) > MAX_HELLO + 64:
            raise NotClientHello("ClientHello too long")
        return NEED_MORE
    return server_name(hs[4:4 + n])


def server_name(body: bytes) -> Optional[str]:
    """The host_name of the server_name extension of a ClientHello body, or None."""
    try:
        p = 2 + 32
        p += 1 + body[p]                                     # session id
        p += 2 + int.from_bytes(body[p:p + 2], "big")        # cipher suites
        p += 1 + body[p]                                     # compression methods
        if p + 2 > len(body):
            return None                                      # no extensions at all (SSL 3 style)
        end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        if end > len(body):
            raise NotClientHello("extensions overrun the ClientHello")
        while p + 4 <= end:
            etype = int.from_bytes(body[p:p + 2], "big")
            elen = int.from_bytes(body[p + 2:p + 4], "big")
            p += 4
            if p + elen > end:
                raise NotClientHello("an extension overruns the ClientHello")
            if etype == 0:
                q, qend = p + 2, p + 2 + int.from_bytes(body[p:p + 2], "big")
                while q + 3 <= min(qend, p + elen):
                    ntype = body[q]
                    nlen = int.from_bytes(body[q + 1:q + 3], "big")
                    name = body[q + 3:q + 3 + nlen]
                    if ntype == 0:
                        try:
                            host = name.decode("ascii")
                        except UnicodeDecodeError:
                            raise NotClientHello("server name is not ASCII") from None
                        return host.rstrip(".").lower() or None
                    q += 3 + nlen
                return None
            p += elen
        return None
    except IndexError:
        raise NotClientHello("truncated ClientHello") from None


class SniTable:
    """server name -> pool: exact names first, then one-label wildcards (*.example.org), else the default."""

    def __init__(self, routes: list[tuple[str, str]], default: Optional[str]):
        self.exact: dict[str, str] = {}
        self.wild: dict[str, str] = {}
        for name, pool in routes:
            n = name.rstrip(".").lower()
            if n.startswith("*."):
                self.wild.setdefault(n[2:], pool)
            else:
                self.exact.setdefault(n, pool)
        self.default = default

    def pool(self, host: Optional[str]) -> Optional[str]:
        if host:
            p = self.exact.get(host)
            if p is not None:
                return p
            dot = host.find(".")
            if dot > 0:
                p = self.wild.get(host[dot + 1:])
                if p is not None:
                    return p
        return self.default
