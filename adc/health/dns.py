"""adc.health.dns: DNS monitors: a real query (name, type) over UDP, expecting an rcode and optionally an answer.

The wire format (RFC 1035 section 4) is small enough to write here: one
question out; in the reply, the header, and the answers of the asked type
turned to text (A, AAAA as addresses; names as dotted names; TXT as text).
`expect` is a regular expression one answer must match in full.
"""
from __future__ import annotations

import ipaddress
import os
import re
import struct

from adc.config.schema import Monitor, format_duration

from .probe import Outcome, Target
from .udp import NoReply, ask

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
         "NAPTR": 35, "DS": 43, "DNSKEY": 48, "TLSA": 52, "SVCB": 64, "HTTPS": 65, "ANY": 255, "CAA": 257}
_NAME_TYPES = {2, 5, 12}


class DnsError(Exception):
    """The member's reply is not a DNS answer to our question (its fault, not ours)."""


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if len(raw) > 63:
                raise ValueError(f"DNS label too long: {label!r}")
            out += bytes((len(raw),)) + raw
    return bytes(out + b"\0")


def query(qid: int, name: str, qtype: int) -> bytes:
    # id, flags RD, 1 question, no answers/authority/additional
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def read_name(msg: bytes, off: int, depth: int = 0) -> tuple[str, int]:
    """(dotted name, offset after it); follows compression pointers, at most 16 deep."""
    labels = []
    while True:
        if off >= len(msg):
            raise DnsError("truncated name")
        n = msg[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0 == 0xC0:
            if depth > 16 or off + 1 >= len(msg):
                raise DnsError("bad name compression")
            ptr = ((n & 0x3F) << 8) | msg[off + 1]
            rest, _ = read_name(msg, ptr, depth + 1)
            return ".".join(labels + ([rest] if rest else [])), off + 2
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def parse(msg: bytes, qid: int) -> tuple[str, list[tuple[int, str]]]:
    """(rcode name, [(type, answer as text)])."""
    if len(msg) < 12:
        raise DnsError("reply shorter than a DNS header")
    rid, flags, qd, an, _, _ = struct.unpack_from(">HHHHHH", msg)
    if rid != qid or not flags & 0x8000:
        raise DnsError("reply is not an answer to our query")
    rcode = RCODES.get(flags & 0xF, str(flags & 0xF))
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(msg, off)
        if off + 10 > len(msg):
            raise DnsError("truncated answer")
        rtype, _, _, rdlen = struct.unpack_from(">HHIH", msg, off)
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == 1 and rdlen == 4:
            text = str(ipaddress.IPv4Address(rdata))
        elif rtype == 28 and rdlen == 16:
            text = str(ipaddress.IPv6Address(rdata))
        elif rtype in _NAME_TYPES:
            text = read_name(msg, off)[0]
        elif rtype == 16:
            parts, i = [], 0
            while i < len(rdata):
                parts.append(rdata[i + 1:i + 1 + rdata[i]].decode("utf-8", "replace"))
                i += 1 + rdata[i]
            text = "".join(parts)
        else:
            text = rdata.hex()
        answers.append((rtype, text))
        off += rdlen
    if flags & 0x0200 and rcode == "NOERROR" and not answers:
        raise DnsError("reply truncated (TC) with no answers; the check asks over UDP only")
    return rcode, answers


class DnsProbe:
    own_timeout = True

    def __init__(self, mon: Monitor):
        self.name = mon.query_name or "."
        self.qtype = TYPES.get(mon.query_type.upper(), 1)
        self.qtype_text = mon.query_type.upper()
        self.rcode = mon.expect_rcode.upper()
        self.expect = re.compile(mon.expect) if mon.expect else None
        self.expect_text = mon.expect
        self.timeout = mon.timeout

    async def __call__(self, target: Target) -> Outcome:
        qid = int.from_bytes(os.urandom(2), "big")
        want = struct.pack(">H", qid)
        try:
            reply = await ask(target, query(qid, self.name, self.qtype), self.timeout,
                              lambda d: d[:2] == want)
        except ConnectionRefusedError:
            return Outcome(False, "port unreachable")
        except NoReply:
            return Outcome(False, f"no DNS reply within {format_duration(self.timeout)}")
        try:
            rcode, answers = parse(reply, qid)
        except DnsError as e:
            return Outcome(False, f"bad DNS reply: {e}")
        what = f"{self.name} {self.qtype_text}"
        if rcode != self.rcode:
            return Outcome(False, f"DNS {rcode} for {what}")
        if self.expect is not None:
            texts = [t for typ, t in answers if self.qtype in (typ, 255)]
            if not any(self.expect.fullmatch(t) for t in texts):
                got = ", ".join(texts[:3]) or "no answer"
                return Outcome(False, f"DNS {rcode} for {what}: {got}, expected {self.expect_text!r}")
        first = next((t for typ, t in answers if typ == self.qtype), None)
        return Outcome(True, f"DNS {rcode} for {what}" + (f": {first}" if first else ""))
