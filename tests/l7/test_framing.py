"""Strict framing: what the client is answered, and what the member receives (raw sockets both sides)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from adc.config.plan import HttpPlan
from l7harness import Proxy, RawBackend, pool, raw_exchange, vip


@dataclass
class Case:
    what: str
    request: bytes
    status: int = 400


H = b"Host: example.com\r\n"

REJECTED = [
    Case("Content-Length with Transfer-Encoding (CL.TE smuggling)",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
    Case("Transfer-Encoding with Content-Length (TE.CL order)",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
    Case("duplicate Content-Length, same value",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
    Case("duplicate Content-Length, different values",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    Case("Content-Length list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc"),
    Case("Content-Length with a sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc"),
    Case("Content-Length in hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc"),
    Case("negative Content-Length", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n"),
    Case("empty Content-Length", b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n"),
    Case("Transfer-Encoding chunked not last",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    Case("Transfer-Encoding without chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n"),
    Case("Transfer-Encoding chunked twice",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Case("Transfer-Encoding xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    Case("Transfer-Encoding with a vertical tab",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"),
    Case("Transfer-Encoding in HTTP/1.0",
         b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Case("bare LF line endings", b"GET / HTTP/1.1\nHost: example.com\n\n"),
    Case("bare LF ending one field", b"GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n"),
    Case("bare CR inside a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n"),
    Case("bare CR ending a field", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\r\n\r\n"),
    Case("NUL in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n"),
    Case("control byte in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n"),
    Case("DEL in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n"),
    Case("obsolete line folding", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n"),
    Case("folded Transfer-Encoding",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    Case("space before the colon", b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n"),
    Case("tab before the colon", b"GET / HTTP/1.1\r\n" + H + b"Content-Length\t: 0\r\n\r\n"),
    Case("space in a field name", b"GET / HTTP/1.1\r\n" + H + b"X A: 1\r\n\r\n"),
    Case("separator in a field name", b"GET / HTTP/1.1\r\n" + H + b"X(A): 1\r\n\r\n"),
    Case("empty field name", b"GET / HTTP/1.1\r\n" + H + b": 1\r\n\r\n"),
    Case("no colon", b"GET / HTTP/1.1\r\n" + H + b"X-A\r\n\r\n"),
    Case("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"),
    Case("duplicate Host", b"GET / HTTP/1.1\r\n" + H + H + b"\r\n"),
    Case("malformed Host", b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n"),
    Case("Host with userinfo", b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n"),
    Case("double space in request line", b"GET  / HTTP/1.1\r\n" + H + b"\r\n"),
    Case("trailing space in request line", b"GET / HTTP/1.1 \r\n" + H + b"\r\n"),
    Case("lowercase version", b"GET / http/1.1\r\n" + H + b"\r\n"),
    Case("NUL in target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n"),
    Case("HTTP/2.0 over HTTP/1 framing", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    Case("target neither origin nor absolute form", b"GET example.com/x HTTP/1.1\r\n" + H + b"\r\n"),
    Case("absolute-form with userinfo", b"GET http://u@example.com/ HTTP/1.1\r\n" + H + b"\r\n"),
    Case("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\n" + H + b"\r\n", 405),
    Case("Expect other than 100-continue", b"GET / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\n\r\n", 417),
    Case("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
]

# the head is valid, so it is forwarded as it streams; the bad chunk stops everything after it
BAD_CHUNKS = [
    Case("chunk size not hex", b"zz\r\nabc\r\n0\r\n\r\n"),
    Case("negative chunk size", b"-1\r\nabc\r\n0\r\n\r\n"),
    Case("chunk size with leading space", b" 3\r\nabc\r\n0\r\n\r\n"),
    Case("chunk size of 17 digits", b"00000000000000003\r\nabc\r\n0\r\n\r\n"),
    Case("chunk size line with bare LF", b"3\nabc\r\n0\r\n\r\n"),
    Case("chunk data longer than its size", b"3\r\nabcd\r\n0\r\n\r\n"),
    Case("malformed chunk extension", b"3;=x\r\nabc\r\n0\r\n\r\n"),
    Case("chunk extension with a bare quote", b"3;a=\"b\r\nabc\r\n0\r\n\r\n"),
    Case("bad trailer field", b"3\r\nabc\r\n0\r\nX A: b\r\n\r\n"),
]

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"


@pytest.fixture(scope="module")
def member():
    with RawBackend() as b:
        yield b


@pytest.fixture(scope="module")
def proxy(member):
    with Proxy(vip(http=HttpPlan(max_body_size=1000, max_request_line=200, max_header_size=1024,
                                 max_header_count=20)),
               [pool("p", [member.port])]) as p:
        yield p


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer[9:12])


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c.what)
def test_ambiguous_request_is_refused_and_never_forwarded(proxy, member, case):
    before = member.all_received
    answer = raw_exchange(proxy.port, case.request + SMUGGLED)
    assert _status(answer) == case.status
    assert b"connection: close" in answer.lower()
    assert answer.count(b"HTTP/1.1 ") == 1, "the connection is closed after the refusal"
    time.sleep(0.05)
    assert member.all_received == before, "nothing reached the member"


@pytest.mark.parametrize("case", BAD_CHUNKS, ids=lambda c: c.what)
def test_malformed_chunk_stops_the_request(proxy, member, case):
    n = member.mark()
    head = b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    answer = raw_exchange(proxy.port, head + case.request + SMUGGLED)
    assert _status(answer) == 400
    assert answer.count(b"HTTP/1.1 ") == 1
    time.sleep(0.05)
    got = member.since(n)
    assert b"/smuggled" not in got
    assert b"0\r\n\r\n" not in got, "the member never saw the request complete"


def test_request_line_limit_is_414(proxy, member):
    before = member.all_received
    answer = raw_exchange(proxy.port, b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert _status(answer) == 414
    # still arriving, already too long: refused without waiting for the rest
    answer = raw_exchange(proxy.port, b"GET /" + b"a" * 300)
    assert _status(answer) == 414
    assert member.all_received == before


def test_header_block_limit_is_431(proxy, member):
    before = member.all_received
    answer = raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 2000 + b"\r\n\r\n")
    assert _status(answer) == 431
    many = b"".join(b"X-%d: v\r\n" % i for i in range(30))
    answer = raw_exchange(proxy.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n")
    assert _status(answer) == 431
    assert member.all_received == before


def test_body_limit_is_413(proxy, member):
    before = member.all_received
    answer = raw_exchange(proxy.port, b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1001\r\n\r\n" + b"x" * 1001)
    assert _status(answer) == 413
    assert member.all_received == before
    # chunked: the limit is found while streaming; the member never gets a complete body
    n = member.mark()
    body = b"3e8\r\n" + b"x" * 1000 + b"\r\n" + b"1\r\nx\r\n0\r\n\r\n"
    answer = raw_exchange(proxy.port, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert _status(answer) == 413
    assert b"0\r\n\r\n" not in member.since(n)


def test_member_receives_a_canonical_request(proxy, member):
    n = member.mark()
    answer = raw_exchange(proxy.port, b"GET /a?b=c HTTP/1.1\r\nhOsT:   Example.COM  \r\nX-Trim:\t v \t\r\n"
                          b"Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n")
    assert _status(answer) == 200
    assert re.fullmatch(
        rb"GET /a\?b=c HTTP/1\.1\r\nhost: Example\.COM\r\nX-Trim: v\r\n"
        rb"x-forwarded-for: 127\.0\.0\.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: Example\.COM\r\n"
        rb"X-Request-ID: [0-9a-f]{13,}\r\n\r\n", member.since(n)), member.since(n)


def test_chunked_request_is_rechunked_canonically(proxy, member):
    n = member.mark()
    body = b"3;ext=1;q=\"x y\"\r\nabc\r\n00002\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    answer = raw_exchange(proxy.port, b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n" + body)
    assert _status(answer) == 200
    got = member.since(n)
    head, _, sent = got.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    # chunk boundaries may merge; the decoded body and the canonical framing are what count
    assert sent.endswith(b"0\r\n\r\n") and b"ext" not in sent and b"X-Trailer" not in sent
    from adc.l7.http1 import ChunkedReader
    payload, rest = ChunkedReader().feed(sent)
    assert payload == b"abcde" and rest == b""


def test_absolute_form_routes_by_its_host_and_rewrites_host(proxy, member):
    n = member.mark()
    answer = raw_exchange(proxy.port, b"GET http://Other.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored.example\r\n"
                          b"Connection: close\r\n\r\n")
    assert _status(answer) == 200
    got = member.since(n)
    assert got.startswith(b"GET /p?q=1 HTTP/1.1\r\nhost: Other.example:8080\r\n")
    assert b"ignored" not in got


def test_leading_empty_lines_are_ignored(proxy, member):
    answer = raw_exchange(proxy.port, b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert _status(answer) == 200


# -------------------------------------------------------------- the member's side
BAD_RESPONSES = [
    Case("Content-Length with Transfer-Encoding",
         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Case("duplicate Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
    Case("malformed Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok"),
    Case("bare LF", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    Case("obsolete folding", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok"),
    Case("NUL in a value", b"HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 2\r\n\r\nok"),
    Case("malformed status line", b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"),
    Case("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    Case("chunked not last", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("case", BAD_RESPONSES, ids=lambda c: c.what)
def test_ambiguous_response_is_502_and_member_connection_closed(case):
    with RawBackend(case.request) as m, Proxy(vip(), [pool("p", [m.port])]) as p:
        answer = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=2)
        assert _status(answer) == 502
        assert p.counter(100, "errors") == 1
        assert p.call(lambda: sum(len(v) for v in p.listener.upstreams.idle.values())) == 0


def test_malformed_response_chunk_cuts_the_client_connection():
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"
    with RawBackend(resp) as m, Proxy(vip(), [pool("p", [m.port])]) as p:
        answer = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=2)
        # in one read with its head, nothing was sent yet: a clean 502; later, a cut connection
        if answer.startswith(b"HTTP/1.1 200"):
            assert not answer.endswith(b"0\r\n\r\n"), "the client can tell the body is incomplete"
        else:
            assert answer.startswith(b"HTTP/1.1 502")
        assert p.counter(100, "errors") == 1


def test_response_until_close_is_rechunked_for_keepalive_clients():
    with RawBackend(b"HTTP/1.1 200 OK\r\n\r\nstreamed body", close_after=True) as m, \
            Proxy(vip(), [pool("p", [m.port])]) as p:
        answer = raw_exchange(p.port, b"GET / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\n" + H
                              + b"Connection: close\r\n\r\n", timeout=3)
        assert answer.count(b"HTTP/1.1 200") == 2
        assert b"transfer-encoding: chunked" in answer
        assert answer.count(b"d\r\nstreamed body\r\n0\r\n\r\n") == 2


@pytest.mark.parametrize("scanner", ["c", "python"])  # C fast path and the Python reference
# cases refused before their head is complete are the proxy's, tested above: not the core's
@pytest.mark.parametrize("case", [c for c in REJECTED if b"\r\n\r\n" in c.request], ids=lambda c: c.what)
def test_core_refuses_each_case_with_both_scanners(monkeypatch, case, scanner):
    from adc.l7 import http1
    parse = http1.parse_request_head
    if scanner == "python":
        monkeypatch.setattr(http1, "scan_fields", http1.scan_fields_py)
        parse = http1.parse_request_head_py
    end = case.request.find(b"\r\n\r\n")
    with pytest.raises(http1.ClientProtocolError) as e:
        parse(case.request[:end + 4])
    assert e.value.status == case.status


def test_transfer_codings_before_chunked_are_kept_both_ways():
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    with RawBackend(resp) as m, Proxy(vip(), [pool("p", [m.port])]) as p:
        n = m.mark()
        answer = raw_exchange(p.port, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n"
                              b"Connection: close\r\n\r\n2\r\nxy\r\n0\r\n\r\n", timeout=2)
        assert b"transfer-encoding: gzip, chunked\r\n" in answer
        assert answer.endswith(b"3\r\nabc\r\n0\r\n\r\n")
        assert b"transfer-encoding: gzip, chunked\r\n" in m.since(n)
