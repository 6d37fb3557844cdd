"""Route actions and edits as a client and a member see them: split, redirect, fixed responses,
rewrites, header edits, error pages, request ids."""
from __future__ import annotations

import http.client
import json

from adc.config.plan import (FixedResponsePlan, HeaderOpsPlan, HttpPlan, RedirectPlan, RewritePlan,
                             RoutePlan)
from l7harness import Backend, FastBackend, Proxy, RawMember, pool, vip


def req(port, path="/", method="GET", headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r, body


def test_split_90_10_within_3_percent_over_10000_requests():
    with FastBackend("A") as a, FastBackend("B") as b:
        routes = [RoutePlan(name="canary", split=[("stable", 90), ("canary", 10)])]
        with Proxy(vip(routes=routes, default_pool=None),
                   [pool("stable", [a.port], 2), pool("canary", [b.port], 3)]) as p:
            c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
            got = {b"A": 0, b"B": 0}
            for _ in range(10000):
                _, body = req(p.port, conn=c)
                got[body] += 1
            c.close()
    assert abs(got[b"B"] / 10000 - 0.10) <= 0.03
    assert got[b"A"] + got[b"B"] == 10000


def test_split_with_weight_zero_sends_nothing_there():
    with FastBackend("A") as a, FastBackend("B") as b:
        routes = [RoutePlan(name="dark", split=[("stable", 1), ("canary", 0)])]
        with Proxy(vip(routes=routes, default_pool=None),
                   [pool("stable", [a.port], 2), pool("canary", [b.port], 3)]) as p:
            bodies = {req(p.port)[1] for _ in range(20)}
    assert bodies == {b"A"}


def test_redirects():
    routes = [
        RoutePlan(name="https", path_prefix="/secure", redirect=RedirectPlan(status=301, scheme="https")),
        RoutePlan(name="moved", path_prefix="/old/", redirect=RedirectPlan(status=308, prefix="/new/")),
        RoutePlan(name="elsewhere", path="/go", redirect=RedirectPlan(status=302, host="other.example",
                                                                      path="/landing", keep_query=False)),
        RoutePlan(name="port", path="/port", redirect=RedirectPlan(status=307, port=8443, scheme="https")),
    ]
    with Proxy(vip(routes=routes), []) as p:
        r, _ = req(p.port, "/secure/a?x=1", headers={"Host": "shop.example:8080"})
        assert r.status == 301 and r.getheader("Location") == "https://shop.example/secure/a?x=1"
        r, _ = req(p.port, "/old/page?q=2", "POST", headers={"Host": "shop.example"})
        assert r.status == 308 and r.getheader("Location") == "http://shop.example/new/page?q=2"
        r, _ = req(p.port, "/go?drop=1", headers={"Host": "shop.example"})
        assert r.status == 302 and r.getheader("Location") == "http://other.example/landing"
        r, _ = req(p.port, "/port", headers={"Host": "shop.example"})
        assert r.status == 307 and r.getheader("Location") == "https://shop.example:8443/port"
        assert p.counter(1, "errors") == 0


def test_fixed_response():
    routes = [RoutePlan(name="health", path="/healthz",
                        respond=FixedResponsePlan(status=200, body="ok\n", content_type="text/plain",
                                                  headers=[("Cache-Control", "no-store")])),
              RoutePlan(name="deny", path_prefix="/admin", respond=FixedResponsePlan(status=403, body="no"))]
    with Proxy(vip(routes=routes), []) as p:
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        r, body = req(p.port, "/healthz", conn=c)
        assert (r.status, body, r.getheader("Cache-Control"), r.getheader("Content-Type")) == \
            (200, b"ok\n", "no-store", "text/plain")
        r, body = req(p.port, "/admin/x", conn=c)
        assert (r.status, body) == (403, b"no")
        r, body = req(p.port, "/healthz", "HEAD", conn=c)
        assert r.status == 200 and body == b""


def test_rewrite_strip_prefix_and_regex():
    with Backend("a") as a:
        routes = [RoutePlan(name="api", pool="p", path_prefix="/api", rewrite=RewritePlan(strip_prefix="/api")),
                  RoutePlan(name="v", pool="p", path_regex="^/v1/", rewrite=RewritePlan(path_regex="^/v1/(.*)$",
                                                                                         path_replace=r"/legacy/\1"))]
        with Proxy(vip(routes=routes, default_pool=None), [pool("p", [a.port])]) as p:
            assert json.loads(req(p.port, "/api/users?id=3")[1])["path"] == "/users?id=3"
            assert json.loads(req(p.port, "/api")[1])["path"] == "/"
            assert json.loads(req(p.port, "/v1/items/9?x=y")[1])["path"] == "/legacy/items/9?x=y"


def test_request_and_response_header_edits_vip_then_route():
    with Backend("a") as a:
        vip_req = HeaderOpsPlan(set=[("X-Env", "prod")], remove=["X-Internal"])
        vip_resp = HeaderOpsPlan(add=[("X-Served-By", "adc")])
        routes = [RoutePlan(name="r", pool="p", path_prefix="/r",
                            request_headers=HeaderOpsPlan(add=[("X-Route", "r")], set=[("Host", "backend.local")]),
                            response_headers=HeaderOpsPlan(remove=["Server"], set=[("X-Frame-Options", "DENY")]))]
        plan = vip(routes=routes, http=HttpPlan(request_headers=vip_req, response_headers=vip_resp))
        with Proxy(plan, [pool("p", [a.port])]) as p:
            r, body = req(p.port, "/r", headers={"X-Internal": "secret", "X-Env": "dev"})
            echo = json.loads(body)
            h = {k.lower(): v for k, v in echo["headers"]}
            assert h["x-env"] == "prod" and "x-internal" not in h and h["x-route"] == "r"
            assert h["host"] == "backend.local"
            assert r.getheader("Server") is None and r.getheader("X-Frame-Options") == "DENY"
            assert r.getheader("X-Served-By") == "adc"
            # off the route, only the VIP's edits apply
            r, body = req(p.port, "/other", headers={"X-Internal": "secret"})
            h = {k.lower(): v for k, v in json.loads(body)["headers"]}
            assert "x-internal" not in h and "x-route" not in h
            assert r.getheader("Server") is not None and r.getheader("X-Served-By") == "adc"


def test_custom_error_page():
    page = "<html><body>We will be right back</body></html>"
    with Proxy(vip(http=HttpPlan(error_pages={503: page})), [pool("p", [1], admin="maint")]) as p:
        r, body = req(p.port)
        assert r.status == 503 and body == page.encode()
        assert r.getheader("Content-Type").startswith("text/html")


def test_request_id_generated_or_passed_through_and_traceparent_kept():
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        h = {k.lower(): v for k, v in json.loads(req(p.port)[1])["headers"]}
        h2 = {k.lower(): v for k, v in json.loads(req(p.port)[1])["headers"]}
        assert h["x-request-id"] and h["x-request-id"] != h2["x-request-id"]
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        h = {k.lower(): v for k, v in json.loads(req(p.port, headers={"X-Request-ID": "abc-1",
                                                                         "traceparent": tp})[1])["headers"]}
        assert h["x-request-id"] == "abc-1" and h["traceparent"] == tp


def test_rfc7239_forwarded_when_asked():
    with Backend("a") as a, Proxy(vip(http=HttpPlan(forwarded=True)), [pool("p", [a.port])]) as p:
        h = {k.lower(): v for k, v in json.loads(req(p.port, headers={"Host": "h.example"})[1])["headers"]}
        assert h["forwarded"] == 'for=127.0.0.1;host="h.example";proto=http'


def test_retry_idempotent_request_on_member_503():
    with Backend("a") as a, FastBackend("B") as b:
        # member a answers 503 on /status/503; the retry goes to b
        with Proxy(vip(http=HttpPlan(retry_on=["connect", "503"])), [pool("p", [a.port, b.port])]) as p:
            for _ in range(4):
                r, body = req(p.port, "/status/503")
                assert r.status == 200 and body == b"B"
            assert 503 in post_statuses(p.port, "/status/503"), "a POST is not retried"


def post_statuses(port, path, n=2):
    """The statuses of n POSTs (a new connection after one the proxy closed)."""
    statuses = set()
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", path, body=b"x")
        r = c.getresponse()
        r.read()
        statuses.add(r.status)
        c.close()
    return statuses


class HangUp(RawMember):
    """A member that reads each request and closes the connection without a byte of response."""
    threaded = False

    def __init__(self):
        self.requests = 0
        super().__init__()

    def serve(self, c):
        with c:
            if c.recv(65536):
                self.requests += 1


def test_member_closing_before_a_response_is_retried_where_502_is():
    with HangUp() as a, FastBackend("B") as b:
        with Proxy(vip(http=HttpPlan(retry_on=["connect", "502"])), [pool("p", [a.port, b.port])]) as p:
            for _ in range(4):
                r, body = req(p.port, "/")
                assert r.status == 200 and body == b"B"
            assert a.requests >= 1      # round robin sent some to the member that hangs up
            assert 502 in post_statuses(p.port, "/"), "a POST is not retried: its client gets the 502"
        # without "502" in retry_on the GET's client gets the 502 too
        with Proxy(vip(), [pool("p", [a.port, b.port])]) as p:
            assert {req(p.port, "/")[0].status for _ in range(4)} == {200, 502}


def test_member_503_passed_through_without_retry_on():
    with Backend("a") as a, Proxy(vip(), [pool("p", [a.port])]) as p:
        assert req(p.port, "/status/503")[0].status == 503
