"""adc.control.messages: what supervisor and workers say to each other over their socketpair.

One msgpack-encoded message per SOCK_SEQPACKET record; listening sockets ride
along with SCM_RIGHTS in the same record as the message that names them.

Apply is two-phase: Prepare (build everything, bind nothing new in the
worker, report) -> Prepared(ok) from every worker -> Commit, or Abort if any
worker said no or timed out. A worker never half-applies a plan.
"""
from __future__ import annotations

from typing import Optional, Union

import msgspec

from adc.config.plan import Plan


class Hello(msgspec.Struct, tag=True):
    slot: int
    pid: int


class Sockets(msgspec.Struct, tag=True):
    """Listening sockets for transaction txid, ahead of its Prepare.

    The kernel passes at most 253 fds in one record (SCM_MAX_FD), so a plan
    with many VIPs sends its sockets in several of these.
    """
    txid: int
    fd_keys: list[str] = []        # listener keys of the fds attached to this record, in order


class Prepare(msgspec.Struct, tag=True):
    txid: int
    plan: Plan


class Prepared(msgspec.Struct, tag=True):
    txid: int
    ok: bool
    error: str = ""


class Commit(msgspec.Struct, tag=True):
    txid: int


class Committed(msgspec.Struct, tag=True):
    txid: int


class Abort(msgspec.Struct, tag=True):
    txid: int


class MemberState(msgspec.Struct, tag=True):
    """Runtime state of one member, outside any revision: admin (operator) or health (monitors)."""
    pool: str
    key: str
    admin: Optional[str] = None
    health: Optional[str] = None
    weight: Optional[int] = None


class Shutdown(msgspec.Struct, tag=True):
    drain_timeout: float


class ConnQuery(msgspec.Struct, tag=True):
    qid: int
    vip: Optional[str] = None
    member: Optional[str] = None


class ConnInfo(msgspec.Struct):
    id: str
    vip: str
    protocol: str
    client: str
    member: str
    state: str
    age: float
    bytes_in: int
    bytes_out: int


class ConnReply(msgspec.Struct, tag=True):
    qid: int
    conns: list[ConnInfo] = []


class ConnKill(msgspec.Struct, tag=True):
    qid: int
    id: str


class ConnKilled(msgspec.Struct, tag=True):
    qid: int
    found: bool


Message = Union[Hello, Sockets, Prepare, Prepared, Commit, Committed, Abort, MemberState, Shutdown,
                ConnQuery, ConnReply, ConnKill, ConnKilled]

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Message)


def encode(msg: Message) -> bytes:
    return _enc.encode(msg)


def decode(data: bytes) -> Message:
    return _dec.decode(data)
