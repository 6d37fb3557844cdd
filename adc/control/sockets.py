"""adc.control.sockets: the listening sockets the supervisor owns, one per VIP per worker slot."""
from __future__ import annotations

import errno
import socket

# Linux value; the socket module lacks the name on some builds
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
LISTEN_BACKLOG = 4096


class BindError(Exception):
    """A VIP's address:port could not be bound (in use, or not permitted)."""


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def open_listener(key: str) -> socket.socket:
    """One listening socket for `key` ("tcp:ADDR:PORT" / "udp:ADDR:PORT").

    SO_REUSEPORT lets every worker slot have its own socket (and accept queue)
    on the same address; IP_FREEBIND lets a VIP be bound before its address is
    up on the host (HA takeover adds it later).
    """
    transport, rest = key.split(":", 1)
    address, port = rest.rsplit(":", 1)
    fam = _family(address)
    typ = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    s = socket.socket(fam, typ)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IP_FREEBIND, 1)
        s.bind((address, int(port)))
        if typ == socket.SOCK_STREAM:
            s.listen(LISTEN_BACKLOG)
        s.setblocking(False)
    except OSError as e:
        s.close()
        raise BindError(f"cannot bind {transport} {address}:{port}: {e.strerror or e}") from None
    return s


def probe_free(key: str) -> None:
    """Refuse an address another process serves.

    SO_REUSEPORT would let us bind beside another HAProxy or adcd run by the
    same user, and the kernel would then split traffic between us: a bind
    without it tells. (TCP keeps SO_REUSEADDR, so TIME_WAIT does not count.)
    """
    transport, rest = key.split(":", 1)
    address, port = rest.rsplit(":", 1)
    typ = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(_family(address), typ) as s:
        try:
            if typ == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IP if _family(address) == socket.AF_INET else socket.IPPROTO_IPV6,
                         IP_FREEBIND, 1)
            s.bind((address, int(port)))
        except OSError as e:
            raise BindError(f"cannot bind {transport} {address}:{port}: {e.strerror or e}"
                            f" (another process serves it)" if e.errno == errno.EADDRINUSE else
                            f"cannot bind {transport} {address}:{port}: {e.strerror or e}") from None


class ListenerSet:
    """Every listening socket, keyed by listener key, a list with one socket per worker slot."""

    def __init__(self, nslots: int):
        self.nslots = nslots
        self.by_key: dict[str, list[socket.socket]] = {}

    def ensure(self, keys: set[str]) -> list[str]:
        """Open what is missing; all or nothing. Returns the keys it opened."""
        opened: list[str] = []
        try:
            for key in sorted(keys - self.by_key.keys()):
                probe_free(key)
                socks = []
                try:
                    for _ in range(self.nslots):
                        socks.append(open_listener(key))
                except BindError:
                    for s in socks:
                        s.close()
                    raise
                self.by_key[key] = socks
                opened.append(key)
        except BindError:
            self.close(opened)
            raise
        return opened

    def close(self, keys) -> None:
        for key in list(keys):
            for s in self.by_key.pop(key, []):
                s.close()

    def fds_for(self, slot: int, keys) -> tuple[list[str], list[int]]:
        ks = [k for k in keys if k in self.by_key]
        return ks, [self.by_key[k][slot].fileno() for k in ks]
