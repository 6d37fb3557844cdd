"""The proxy end to end: real backends, real clients (http.client, curl, raw sockets)."""
from __future__ import annotations

import http.client
import json
import socket
import struct
import subprocess

import pytest

from adc.config.plan import HttpPlan, RoutePlan
from l7harness import Backend, Proxy, RawMember, free_port, pool, raw_exchange, vip


def get(port, path="/", method="GET", headers=None, body=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r, data


def hdr(echo: dict, name: str):
    for k, v in echo["headers"]:
        if k.lower() == name.lower():
            return v
    return None


@pytest.fixture
def two():
    with Backend("a") as a, Backend("b") as b:
        yield a, b


def test_get_reaches_member_with_forwarding_headers(two):
    a, b = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        r, data = get(p.port, "/hello?x=1", headers={"Host": "shop.example.com"})
        assert r.status == 200
        echo = json.loads(data)
        assert echo["server"] == "a"
        assert echo["path"] == "/hello?x=1"
        assert hdr(echo, "X-Forwarded-For") == "127.0.0.1"
        assert hdr(echo, "X-Forwarded-Proto") == "http"
        assert hdr(echo, "X-Forwarded-Host") == "shop.example.com"
        assert hdr(echo, "Host") == "shop.example.com"


def test_existing_x_forwarded_for_is_appended_to(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        _, data = get(p.port, headers={"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"})
        echo = json.loads(data)
        assert hdr(echo, "X-Forwarded-For") == "10.1.2.3, 127.0.0.1"
        assert hdr(echo, "X-Forwarded-Proto") == "http"


def test_keepalive_client_and_pooled_member_connection(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        ports = set()
        for i in range(5):
            r, data = get(p.port, f"/n{i}", conn=c)
            assert r.status == 200
            ports.add(json.loads(data)["port"])
        c.close()
        assert len(ports) == 1, "the member connection is reused"
        assert p.counter(1, "conn_total") == 1
        assert p.counter(1, "requests") == 5
        assert p.counter(100, "requests") == 5
        assert p.wait_idle()
        assert p.counter(1, "conn_active") == 0
        assert p.counter(100, "conn_active") == 0


def test_round_robin_spreads_requests(two):
    a, b = two
    with Proxy(vip(), [pool("p", [a.port, b.port])]) as p:
        servers = [json.loads(get(p.port)[1])["server"] for _ in range(10)]
        assert servers.count("a") == 5 and servers.count("b") == 5


def test_routes_first_match_wins_in_order(two):
    a, b = two
    routes = [
        RoutePlan(name="api-host", pool="b", host="api.example.com"),
        RoutePlan(name="wild", pool="b", host="*.internal.example.com"),
        RoutePlan(name="exact", pool="b", path="/exact"),
        RoutePlan(name="prefix", pool="b", path_prefix="/static/"),
        RoutePlan(name="regex", pool="b", path_regex=r"^/v[0-9]+/items$"),
        RoutePlan(name="method", pool="b", methods=["DELETE"]),
        RoutePlan(name="header", pool="b", headers={"X-Canary": "yes"}),
        RoutePlan(name="header-present", pool="b", headers={"X-Debug": None}),
        RoutePlan(name="header-re", pool="b", headers={"User-Agent": "~^curl/"}),
        RoutePlan(name="query", pool="b", query={"beta": "1"}),
    ]
    with Proxy(vip(routes=routes, default_pool="a"), [pool("a", [a.port], 2), pool("b", [b.port], 3)]) as p:
        def who(path="/", method="GET", headers=None):
            r, data = get(p.port, path, method=method, headers=headers)
            assert r.status == 200
            return json.loads(data)["server"] if method != "HEAD" else None
        assert who(headers={"Host": "api.example.com"}) == "b"
        assert who(headers={"Host": "API.example.com:8080"}) == "b"
        assert who(headers={"Host": "x.internal.example.com"}) == "b"
        assert who(headers={"Host": "internal.example.com"}) == "a"
        assert who("/exact") == "b"
        assert who("/exact/no") == "a"
        assert who("/static/app.js") == "b"
        assert who("/static") == "a"
        assert who("/v2/items") == "b"
        assert who("/v2/items/1") == "a"
        assert who("/", "DELETE") == "b"
        assert who(headers={"X-Canary": "yes"}) == "b"
        assert who(headers={"X-Canary": "no"}) == "a"
        assert who(headers={"X-Debug": ""}) == "b"
        assert who(headers={"User-Agent": "curl/8"}) == "b"
        assert who("/?a=2&beta=1") == "b"
        assert who("/?beta=2") == "a"


def test_no_route_and_no_default_pool_is_404(two):
    a, _ = two
    routes = [RoutePlan(name="only", pool="p", path="/only")]
    with Proxy(vip(routes=routes, default_pool=None), [pool("p", [a.port])]) as p:
        assert get(p.port, "/only")[0].status == 200
        assert get(p.port, "/other")[0].status == 404


def test_post_body_content_length_and_chunked_reach_member(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        r, data = get(p.port, "/up", "POST", body=b"hello world")
        echo = json.loads(data)
        assert echo["body"] == "hello world"
        assert hdr(echo, "Content-Length") == "11"
        # curl sends a chunked body; the member receives it chunked, re-framed
        out = subprocess.run(["curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                              f"http://127.0.0.1:{p.port}/chunked"], input=b"x" * 100000,
                             capture_output=True, timeout=10)
        echo = json.loads(out.stdout)
        assert echo["body"] == "x" * 100000
        assert hdr(echo, "Transfer-Encoding") == "chunked"


@pytest.mark.parametrize("chunked", [False, True])
def test_large_download_streams_intact(two, chunked):
    a, _ = two
    n = 20 * 1024 * 1024
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              f"http://127.0.0.1:{p.port}/bytes/{n}?chunked={int(chunked)}"],
                             capture_output=True, timeout=30)
        assert out.stdout.decode() == f"200 {n}"
        assert p.counter(100, "bytes_out") >= n


def test_head_request_gets_headers_only(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        r, data = get(p.port, "/", "HEAD", conn=c)
        assert r.status == 200 and data == b""
        r, data = get(p.port, "/", "GET", conn=c)
        assert json.loads(data)["method"] == "GET"


def test_all_members_in_maint_is_503(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port], admin="maint")]) as p:
        r, data = get(p.port)
        assert r.status == 503
        assert p.counter(1, "errors") == 1


def test_connect_refused_retries_on_another_member(two):
    a, _ = two
    dead = free_port()
    with Proxy(vip(), [pool("p", [dead, a.port])]) as p:
        for _ in range(4):
            r, data = get(p.port)
            assert r.status == 200
            assert json.loads(data)["server"] == "a"
        assert p.counter(100, "errors") >= 1


def test_every_member_refusing_is_502():
    with Proxy(vip(), [pool("p", [free_port(), free_port()])]) as p:
        r, _ = get(p.port)
        assert r.status == 502


class AcceptsThenCloses(RawMember):
    """A member that accepts each connection and at once closes it, or resets it (SO_LINGER 0),
    before reading a byte: a member killed just after the kernel completed the handshake."""
    threaded = False
    backlog = 1024

    def __init__(self, reset: bool):
        self.reset = reset
        super().__init__()

    def serve(self, c):
        if self.reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_member_closing_right_after_accept_is_retried_elsewhere(reset):
    """A member that closes however soon after the handshake (killed under load, as in
    tests/integration/test_health_operator.py) costs the client nothing where the VIP retries
    connect and 502: closed before the request went out, it is a failed connect; after, an empty
    response. Never a request left waiting for a response that cannot come (the client's 5 s
    timeout is well under the proxy's 60 s response timeout)."""
    with AcceptsThenCloses(reset) as bad, Backend("a") as a, \
            Proxy(vip(http=HttpPlan(retry_on=["connect", "502", "503"])),
                  [pool("p", [bad.port, a.port], retries=2)]) as p:
        for _ in range(100):
            r, data = get(p.port)
            assert r.status == 200
            assert json.loads(data)["server"] == "a"


def test_pipelined_requests_answered_in_order(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        out = raw_exchange(p.port, reqs + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        paths = [json.loads(part[part.index(b"{"):].split(b"HTTP/1.1")[0])["path"]
                 for part in out.split(b"HTTP/1.1 200")[1:]]
        assert paths == ["/p0", "/p1", "/p2", "/p3", "/p4", "/last"]


def test_member_closing_keepalive_is_followed(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        for path in ("/close", "/", "/close", "/"):
            r, data = get(p.port, path, conn=c)
            assert r.status == 200
            assert r.getheader("Connection") != "close", "the member's close is not the client's"


def test_http10_client_gets_connection_close(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        out = raw_exchange(p.port, b"GET / HTTP/1.0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in out.lower()


def test_client_sees_member_status_codes(two):
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        for code in (201, 204, 404, 500):
            assert get(p.port, f"/status/{code}")[0].status == code


def test_empty_lines_before_a_request_are_skipped_but_a_stray_cr_is_refused(two):
    # RFC 9112 2.2: whole CRLFs before a request line are ignored, also when a CRLF is split across
    # reads; a lone CR is not an empty line and gets a 400
    import socket
    import time
    a, _ = two
    with Proxy(vip(), [pool("p", [a.port])]) as p:
        for pieces, status in (([b"\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"], b"200"),
                               ([b"\r\n\r", b"\nGET /split HTTP/1.1\r\nHost: x\r\n\r\n"], b"200"),
                               ([b"\r\n\rGET /cr HTTP/1.1\r\nHost: x\r\n\r\n"], b"400")):
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
                for piece in pieces:
                    s.sendall(piece)
                    time.sleep(0.05)
                assert s.recv(65536).split(b" ", 2)[1] == status, pieces
        assert [r[1] for r in a.requests] == ["/ok", "/split"]
