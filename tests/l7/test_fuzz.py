"""Hypothesis fuzzing of the HTTP core: no crash; whatever is accepted is forwarded canonically."""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adc.l7.http1 import (BackendProtocolError, ChunkedReader, ClientProtocolError, parse_request_head,
                          parse_response_head)
from l7harness import Proxy, RawBackend, pool, raw_exchange, vip

TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                min_size=1, max_size=12)
NASTY = st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b"\x7f", b":", b"\x0b", b"\xff", b""])
VALUE = st.binary(max_size=20).map(lambda b: b.translate(None, b"\r\n"))


@st.composite
def requests(draw):
    """Near-valid requests: a valid skeleton with nasty bytes spliced in at random places."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", draw(TOKEN)]))
    target = draw(st.sampled_from(["/", "/a/b?c=d", "*", "http://h.example/x", "/%00", draw(TOKEN)]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "http/1.1"]))
    lines = [f"{method} {target} {version}".encode()]
    if draw(st.booleans()):
        lines.append(b"Host: " + draw(st.sampled_from([b"example.com", b"a:80", b"[::1]:8", b"", b"a b"])))
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Host", b"Connection",
                                     b"X-A", b"Expect", draw(TOKEN).encode()]))
        value = draw(st.sampled_from([b"0", b"5", b"chunked", b"close", b"keep-alive", b"gzip, chunked",
                                      draw(VALUE)]))
        lines.append(name + b": " + value)
    raw = b"\r\n".join(lines) + b"\r\n\r\n"
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(NASTY) + raw[i:]
    return raw


def _canonical_fields_ok(req):
    for name, value in req.fields:
        assert re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name)
        assert b"\r" not in value and b"\n" not in value and b"\x00" not in value
        assert value == value.strip(b" \t")


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_request_parser_never_crashes_and_accepts_only_canonical_input(raw):
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return
    head = raw[:end + 4]
    try:
        req = parse_request_head(head)
    except ClientProtocolError as e:
        assert 400 <= e.status < 600
        return
    _canonical_fields_ok(req)
    assert not (req.chunked and req.content_length is not None)
    assert req.minor in (0, 1)
    # re-serialized, the request parses to the same thing (a fixed point)
    again = b"%b %b HTTP/1.%d\r\nHost: %b\r\n" % (req.method, req.target, req.minor, req.authority)
    again += b"".join(b"%b: %b\r\n" % f for f in req.fields)
    if req.chunked:
        again += b"Transfer-Encoding: chunked\r\n"
    elif req.content_length is not None:
        again += b"Content-Length: %d\r\n" % req.content_length
    req2 = parse_request_head(again + b"\r\n")
    assert (req2.method, req2.target, req2.fields, req2.host, req2.chunked, req2.content_length) == \
        (req.method, req.target, req.fields, req.host, req.chunked, req.content_length)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_response_parser_never_crashes_on_garbage(raw):
    try:
        parse_response_head(raw + b"\r\n\r\n", b"GET")
    except BackendProtocolError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6), st.lists(st.integers(1, 50), max_size=20),
       st.booleans())
def test_chunked_reader_gives_the_same_body_however_the_bytes_are_split(chunks, cuts, ext):
    wire = b"".join(b"%x%b\r\n%b\r\n" % (len(c), b";e=1" if ext else b"", c) for c in chunks) + b"0\r\nT: v\r\n\r\nNEXT"
    r = ChunkedReader()
    got = b""
    rest = None
    pos = 0
    for cut in cuts + [len(wire)]:
        piece = wire[pos:pos + cut]
        pos += len(piece)
        if not piece:
            continue
        payload, rest = r.feed(piece)
        got += payload
        if rest is not None:
            rest += wire[pos:]
            break
    assert got == b"".join(chunks)
    assert rest == b"NEXT"


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_chunked_reader_never_crashes_on_garbage(raw):
    try:
        ChunkedReader().feed(raw)
    except ClientProtocolError:
        pass


def test_whatever_the_proxy_accepts_reaches_the_member_canonically():
    """End to end: each fuzzed request either gets a 4xx/5xx from the proxy with nothing forwarded,
    or reaches the member as exactly the canonical serialization of what was parsed."""
    with RawBackend() as m, Proxy(vip(), [pool("p", [m.port])]) as p:
        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
        @given(requests())
        def check(raw):
            # empty lines before a request are skipped (RFC 9112 2.2), by the proxy and here: what
            # follows them is the request (a client that sends only empty lines sent no request)
            i = 0
            while raw[i:i + 2] == b"\r\n":      # whole CRLFs: a lone CR is not an empty line
                i += 2
            rest = raw[i:]
            skipped = raw[:len(raw) - len(rest)]
            end = rest.find(b"\r\n\r\n")
            if end < 0:
                return
            head = rest[:end + 4]
            mark = m.mark()
            try:
                req = parse_request_head(head)
            except ClientProtocolError:
                req = None
            if req is not None and (req.has_body or req.upgrade or req.expect_continue):
                return       # bodies and upgrades have their own tests
            answer = raw_exchange(p.port, skipped + head, timeout=2, shut=True)
            got = m.since(mark)
            if req is None:
                assert answer[9:10] in (b"4", b"5") and got == b""
                return
            assert answer.startswith(b"HTTP/1.1 200"), (head, answer)
            fwd = parse_request_head(got[:got.find(b"\r\n\r\n") + 4])
            assert fwd.method == req.method and fwd.target == req.target and fwd.authority == req.authority
            assert fwd.fields[:len(req.fields)] == req.fields
            canon = b"%b %b HTTP/1.1\r\nhost: %b\r\n" % (req.method, req.target, req.authority)
            canon += b"".join(b"%b: %b\r\n" % f for f in req.fields)
            assert got.startswith(canon)
        check()


@settings(max_examples=3000, deadline=None)
@given(st.one_of(requests(), st.binary(max_size=200).map(lambda b: b"GET / HTTP/1.1\r\n" + b + b"\r\n\r\n")))
def test_c_scanner_agrees_with_the_python_reference(raw):
    from adc.l7 import _scan, http1
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return
    head = raw[:end + 4]
    eol = head.find(b"\r\n")
    outcomes = []
    for scan in (_scan.scan_fields, http1.scan_fields_py):
        try:
            outcomes.append(scan(head, eol + 2, http1._REQ_SPECIAL))
        except ValueError:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1], head


def _outcome(f, *args):
    try:
        r = f(*args)
    except (ClientProtocolError, BackendProtocolError) as e:
        return ("refused", type(e).__name__, e.status)
    from adc.l7 import http1
    cls = http1.RequestPy if hasattr(r, "authority") else http1.ResponsePy
    return tuple(getattr(r, k, None) for k in cls.__slots__)


@settings(max_examples=4000, deadline=None)
@given(requests())
def test_c_request_parser_agrees_with_the_python_reference(raw):
    from adc.l7 import http1
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return
    head = raw[:end + 4]
    assert _outcome(http1.parse_request_head, head) == _outcome(http1.parse_request_head_py, head)


RESPONSE_LINES = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 204 No Content", b"HTTP/1.1 101 Switching",
                                  b"HTTP/1.1 304 x", b"HTTP/2.0 200 OK", b"HTTP/1.1 099 x", b"HTTP/1.1 200",
                                  b"HTTP/1.1 200 \tok\x80", b"HTTP/1.1  200 OK"])


@settings(max_examples=3000, deadline=None)
@given(RESPONSE_LINES, st.lists(st.tuples(st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"Connection",
                                                           b"Upgrade", b"X-A", b"Set-Cookie"]),
                                          st.sampled_from([b"0", b"12", b"chunked", b"gzip", b"close", b"keep-alive",
                                                           b"x, X-A", b"a\x00", b"12, 12", b" v "])), max_size=5),
       st.sampled_from([b"GET", b"HEAD"]), st.integers(0, 3), NASTY)
def test_c_response_parser_agrees_with_the_python_reference(line, fields, method, where, nasty):
    from adc.l7 import http1
    head = line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in fields) + b"\r\n"
    if where:
        i = len(head) * where // 4
        head = head[:i] + nasty + head[i:]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return
    head = head[:end + 4]
    assert _outcome(http1.parse_response_head, head, method) == \
        _outcome(http1.parse_response_head_py, head, method)
