"""The C parser's kept block: field lines rewritten as `name: value` CRLF can be longer than
they came (a line without a space after its colon gains one); the block must hold them all."""
from __future__ import annotations

import subprocess
import sys

# in a process of its own: a write past the scratch buffer shows as a malloc abort there
# (heap corruption in the test runner would surface later, somewhere else)
CODE = r'''
from adc.l7 import _scan
lim = _scan.Limits(request_line=8192, header_bytes=1 << 20, header_count=1 << 20)
for n in (40, 8000, 60000):       # each head larger than any before: the scratch buffer grows
    r = _scan.parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * n + b"\r\n", lim)
    assert r.kept == b"a: \r\n" * n, n
    assert r.field(b"a") == b"" and r.field(b"b") is None
    resp = _scan.parse_response_head(b"HTTP/1.1 200 OK\r\n" + b"a:b\r\n" * n + b"\r\n", b"GET", lim)
    assert resp.kept == b"a: b\r\n" * n, n
    assert resp.fields[:1] == [(b"a", b"b")] and len(resp.fields) == n
print("ok")
'''


def test_lines_without_a_space_after_the_colon_fit_the_kept_block():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_field_reads_the_kept_block_without_building_the_list():
    from adc.l7 import _scan
    r = _scan.parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent:  curl/8 \r\n"
                                 b"X-A: 1\r\nx-a: 2\r\n\r\n")
    assert r.field(b"user-agent") == b"curl/8" and r.field(b"x-a") == b"1" and r.field(b"host") is None
    assert r.kept is not None                   # still the block: nothing built the list
    assert r.fields == [(b"User-Agent", b"curl/8"), (b"X-A", b"1"), (b"x-a", b"2")]
    assert r.kept is None and r.field(b"x-a") == b"1"


def test_a_response_head_parsed_in_place_is_the_head_parsed_alone():
    from adc.l7 import _scan, http1
    head = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
    buf = head + b"hello" + b"HTTP/1.1 404 Nope\r\n\r\n"
    for parse in (_scan.parse_response_head, http1.parse_response_head_py):
        alone, inplace = parse(head, b"GET"), parse(buf, b"GET", http1.DEFAULT_LIMITS, len(head))
        assert (inplace.status, inplace.content_length, inplace.keep_alive, inplace.fields) == \
               (alone.status, alone.content_length, alone.keep_alive, alone.fields) == (200, 5, True, [(b"Server", b"x")])
