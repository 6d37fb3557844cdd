"""adc.tls.clienthello: server names out of real ClientHellos (made by the stdlib ssl module), and refusals."""
from __future__ import annotations

import ssl

import pytest

from adc.tls.clienthello import NEED_MORE, NotClientHello, SniTable, parse


def hello(sni=None, **opts) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in opts.items():
        setattr(ctx, k, v)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outb.read()


def split_records(data: bytes, size: int) -> bytes:
    """The same handshake re-framed in records of at most `size` bytes (legal, and some clients do it)."""
    hs = data[5:]
    out = b""
    for i in range(0, len(hs), size):
        frag = hs[i:i + size]
        out += b"\x16\x03\x01" + len(frag).to_bytes(2, "big") + frag
    return out


def test_server_name_of_a_real_client_hello():
    assert parse(hello("a.example.org")) == "a.example.org"


def test_server_name_is_lower_case():
    assert parse(hello("Shop.Example.ORG")) == "shop.example.org"


def test_no_server_name():
    assert parse(hello(None)) is None


def test_every_prefix_needs_more():
    data = hello("a.example.org")
    for n in (1, 4, 5, 6, 40, len(data) - 1):
        assert parse(data[:n]) is NEED_MORE, n


def test_client_hello_split_over_records():
    data = split_records(hello("split.example.org"), 100)
    assert parse(data) == "split.example.org"
    assert parse(data[:150]) is NEED_MORE


@pytest.mark.parametrize("desc, data", [
    ("plain HTTP", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("a TLS alert record, not a handshake", b"\x15\x03\x03\x00\x02\x02\x28"),
    ("a handshake that is not a ClientHello", b"\x16\x03\x03\x00\x08\x02\x00\x00\x04\x03\x03\x00\x00"),
    ("a zero-length record", b"\x16\x03\x01\x00\x00"),
])
def test_not_a_client_hello(desc, data):
    with pytest.raises(NotClientHello):
        parse(data)


def test_truncated_extension_lengths_are_refused_not_crashing():
    data = bytearray(hello("a.example.org"))
    # claim a huge extensions block inside a record of the right length
    body_start = 5 + 4
    p = body_start + 2 + 32
    p += 1 + data[p]
    p += 2 + int.from_bytes(data[p:p + 2], "big")
    p += 1 + data[p]
    data[p:p + 2] = (0xFFFF).to_bytes(2, "big")
    with pytest.raises(NotClientHello):
        parse(bytes(data))


def test_sni_table_exact_then_wildcard_then_default():
    t = SniTable([("a.example.org", "a"), ("*.example.org", "wild"), ("A.EXAMPLE.ORG", "ignored")], "def")
    assert t.pool("a.example.org") == "a"
    assert t.pool("b.example.org") == "wild"
    assert t.pool("x.b.example.org") == "def"
    assert t.pool("example.org") == "def"
    assert t.pool(None) == "def"
