"""adc.config.semantic: checks that need the whole file, each with a positive and a negative case."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import pytest

from adc.config.loader import check_text
from adc.config.schema import RouteMatch
from adc.config.semantic import covers, shadowing

POOLS = """\
pools:
  - name: web
    members:
      - {address: 10.0.0.1, port: 80}
      - {address: 10.0.0.2, port: 80}
"""


@dataclass
class Case:
    desc: str
    text: str
    errors: list[str] = field(default_factory=list)


def vip(protocol: str = "http", extra: str = "    default_pool: web\n", name: str = "v", port: int = 80,
        address: str = "127.0.0.1") -> str:
    return (f"  - name: {name}\n    address: {address}\n    port: {port}\n    protocol: {protocol}\n" + extra)


CASES = [
    # ------------------------------------------------------------ references
    Case("vip default_pool names a pool that exists", POOLS + "vips:\n" + vip()),
    Case("vip default_pool names a pool that does not exist", POOLS + "vips:\n" + vip(extra="    default_pool: wbe\n"),
         ["f.yaml:11: vip 'v': default_pool: no pool named 'wbe' (did you mean 'web'?)"]),
    Case("route pool that does not exist",
         POOLS + "vips:\n" + vip(extra="    routes:\n      - {match: {path: /a}, pool: api}\n"),
         ["f.yaml:12: vip 'v' route #1: pool: no pool named 'api' (defined: web)"]),
    Case("pool monitor that exists", "monitors:\n  - {name: m, type: tcp}\n" +
         POOLS.replace("  - name: web\n", "  - name: web\n    monitor: m\n") + "vips:\n" + vip()),
    Case("pool monitor that does not exist", POOLS.replace("  - name: web\n", "  - name: web\n    monitor: m\n")
         + "vips:\n" + vip(), ["f.yaml:3: pool 'web': monitor: no monitor named 'm' (the file defines no monitors)"]),
    Case("vip tls certificate that does not exist",
         "certificates:\n  - {name: a, cert: /x.pem, key: /x.key}\n" + POOLS + "vips:\n"
         + vip("https", "    default_pool: web\n    tls: {certificates: [a, b]}\n"),
         ["f.yaml:14: vip 'v': tls.certificates: no certificate named 'b' (defined: a)"]),
    # ------------------------------------------------------------ duplicates
    Case("two pools with one name", POOLS + "  - name: web\n" + "vips:\n" + vip(),
         ["f.yaml:6: pool 'web': duplicate name: another pool 'web' is defined at line 2; pool names must be unique"]),
    Case("two monitors with one name", "monitors:\n  - {name: m, type: tcp}\n  - {name: m, type: http}\n"
         + POOLS.replace("  - name: web\n", "  - name: web\n    monitor: m\n") + "vips:\n" + vip(),
         ["f.yaml:3: monitor 'm': duplicate name: another monitor 'm' is defined at line 2; monitor names must be "
          "unique"]),
    Case("two vips with one name", POOLS + "vips:\n" + vip() + vip(port=81),
         ["f.yaml:12: vip 'v': duplicate name: another vip 'v' is defined at line 7; vip names must be unique"]),
    Case("two certificates with one name",
         "certificates:\n  - {name: a, cert: /x.pem, key: /x.key}\n  - {name: a, cert: /y.pem, key: /y.key}\n"
         + POOLS + "vips:\n" + vip("https", "    default_pool: web\n    tls: {certificates: [a]}\n"),
         ["f.yaml:3: certificate 'a': duplicate name: another certificate 'a' is defined at line 2; certificate "
          "names must be unique"]),
    Case("one member listed twice", POOLS + "      - {address: 10.0.0.1, port: 80, weight: 3}\nvips:\n" + vip(),
         ["f.yaml:6: pool 'web' member 10.0.0.1:80: listed twice (first at line 4); remove one"]),
    Case("one address on two ports is two members", POOLS + "      - {address: 10.0.0.1, port: 81}\nvips:\n" + vip()),
    Case("IPv6 member spelled two ways is one member",
         "pools:\n  - name: p\n    members:\n      - {address: '::1', port: 80}\n"
         "      - {address: '0:0::1', port: 80}\nvips:\n" + vip(extra="    default_pool: p\n"),
         ["f.yaml:5: pool 'p' member [::1]:80: listed twice (first at line 4); remove one"]),
    # ------------------------------------------------------------- listeners
    Case("http and tcp on one address:port collide", POOLS + "vips:\n" + vip() + vip("tcp", name="t"),
         ["f.yaml:14: vip 't': port: 127.0.0.1:80/tcp is already used by vip 'v' (line 7); http, https and tcp VIPs "
          "all listen on TCP; give one of them another address or port"]),
    Case("udp and tcp share address:port", POOLS + "vips:\n" + vip("tcp") + vip("udp", name="u")),
    Case("two udp vips collide", POOLS + "vips:\n" + vip("udp") + vip("udp", name="u"),
         ["f.yaml:14: vip 'u': port: 127.0.0.1:80/udp is already used by vip 'v' (line 7); give one of them another "
          "address or port"]),
    Case("same port on two addresses", POOLS + "vips:\n" + vip() + vip(name="w", address="127.0.0.2")),
    # ----------------------------------------------------------------- pools
    Case("every member has weight 0",
         "pools:\n  - name: p\n    members:\n      - {address: 10.0.0.1, port: 80, weight: 0}\n"
         "      - {address: 10.0.0.2, port: 80, weight: 0}\nvips:\n" + vip(extra="    default_pool: p\n"),
         ["f.yaml:3: pool 'p': members: every member has weight 0, so the pool can never take traffic; give at "
          "least one member a weight above 0 (use `state: drain` to stop traffic to one)"]),
    Case("one member with weight 0 is fine",
         "pools:\n  - name: p\n    members:\n      - {address: 10.0.0.1, port: 80, weight: 0}\n"
         "      - {address: 10.0.0.2, port: 80}\nvips:\n" + vip(extra="    default_pool: p\n")),
    Case("a pool without members is allowed", "pools:\n  - name: p\nvips:\n" + vip(extra="    default_pool: p\n")),
    # ------------------------------------------------------------------ vips
    Case("routes on a tcp vip", POOLS + "vips:\n" + vip("tcp", "    default_pool: web\n    routes:\n"
                                                             "      - {match: {path: /}, pool: web}\n"),
         ["f.yaml:12: vip 'v': routes: a tcp VIP forwards connections, it cannot route requests; routes need "
          "protocol http or https"]),
    Case("routes on a udp vip", POOLS + "vips:\n" + vip("udp", "    default_pool: web\n    routes:\n"
                                                             "      - {pool: web}\n"),
         ["f.yaml:12: vip 'v': routes: a udp VIP forwards connections, it cannot route requests; routes need "
          "protocol http or https"]),
    Case("tls on an http vip", "certificates:\n  - {name: a, cert: /x.pem, key: /x.key}\n" + POOLS + "vips:\n"
         + vip("http", "    default_pool: web\n    tls: {certificates: [a]}\n"),
         ["f.yaml:14: vip 'v': tls: only https VIPs terminate TLS (this one is http); set protocol: https or "
          "remove tls"]),
    Case("https vip without tls", POOLS + "vips:\n" + vip("https"),
         ["f.yaml:10: vip 'v': an https VIP needs tls with at least one certificate (tls: {certificates: [NAME]})"]),
    Case("http vip with neither default_pool nor routes", POOLS + "vips:\n" + vip(extra=""),
         ["f.yaml:7: vip 'v': an http VIP needs default_pool or routes: it has nowhere to send requests"]),
    Case("http vip with routes only", POOLS + "vips:\n" + vip(extra="    routes:\n      - {pool: web}\n")),
    Case("tcp vip without default_pool", POOLS + "vips:\n" + vip("tcp", extra=""),
         ["f.yaml:7: vip 'v': a tcp VIP needs default_pool or sni_routes: it has nowhere to send connections"]),
    Case("tcp vip with sni_routes only", POOLS + "vips:\n" + vip("tcp", extra=(
        "    sni_routes:\n      - {names: [a.example.org], pool: web}\n"))),
    Case("sni_routes to a pool that does not exist", POOLS + "vips:\n" + vip("tcp", extra=(
        "    sni_routes:\n      - {names: [a.example.org], pool: wbe}\n")),
         ["f.yaml:12: vip 'v': sni_routes: no pool named 'wbe' (did you mean 'web'?)"]),
    Case("sni_routes on an http vip", POOLS + "vips:\n" + vip("http", extra=(
        "    default_pool: web\n    sni_routes:\n      - {names: [a.example.org], pool: web}\n")),
         ["f.yaml:12: vip 'v': sni_routes: SNI passthrough routes TLS connections without terminating them, on a "
          "tcp VIP (this one is http); use routes with match.host on an https VIP instead"]),
    Case("pool monitors and monitors_required",
         "monitors:\n  - {name: a, type: tcp}\n  - {name: b, type: tcp}\n"
         "pools:\n  - name: p\n    monitor: a\n    monitors: [b, c]\n    monitors_required: 4\n"
         "    members: [{address: 10.0.0.1, port: 80}]\nvips:\n" + vip(extra="    default_pool: p\n"),
         ["f.yaml:7: pool 'p': monitors: no monitor named 'c' (defined: a, b)",
          "f.yaml:8: pool 'p': monitors_required: 4 monitors required but the pool has 3"]),
    Case("client_auth required without a ca",
         "certificates:\n  - {name: a, cert: /x.pem, key: /x.key}\n" + POOLS + "vips:\n"
         + vip("https", "    default_pool: web\n    tls: {certificates: [a], client_auth: required}\n"),
         ["f.yaml:14: vip 'v': tls.client_auth: client_auth required needs tls.ca, the CA file that signs client "
          "certificates"]),
    # ------------------------------------------------------------- L7 routes
    Case("split to a pool that does not exist", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - split: [{pool: web, weight: 90}, {pool: canary, weight: 10}]\n")),
         ["f.yaml:12: vip 'v' route #1: split: no pool named 'canary' (defined: web)"]),
    Case("split where every weight is 0", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - split: [{pool: web, weight: 0}]\n")),
         ["f.yaml:12: vip 'v' route #1: split: every pool of the split has weight 0; give at least one a weight "
          "above 0"]),
    Case("route without an action falls back on default_pool", POOLS + "vips:\n" + vip(extra=(
        "    default_pool: web\n    routes:\n      - {match: {path_prefix: /old/}, rewrite: {strip_prefix: /old}}\n"))),
    Case("route without an action and no default_pool", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {match: {path_prefix: /old/}, rewrite: {strip_prefix: /old}}\n"
        "      - {pool: web}\n")),
         ["f.yaml:12: vip 'v' route #1: the route has no pool, split, redirect or respond, and the vip has no "
          "default_pool to fall back on; give it one of them"]),
    Case("redirect route needs no pool", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {redirect: {scheme: https, status: 301}}\n"))),
    Case("http settings on a tcp vip", POOLS + "vips:\n" + vip("tcp", "    default_pool: web\n"
                                                                   "    http: {x_forwarded: false}\n"),
         ["f.yaml:12: vip 'v': http: http settings apply to http and https VIPs (this one is tcp); remove them"]),
    Case("https_redirect vip needs no pool", "vips:\n" + vip(extra="    https_redirect: {port: 8443}\n")),
    Case("https_redirect on an https vip",
         "certificates:\n  - {name: a, cert: /x.pem, key: /x.key}\n" + POOLS + "vips:\n"
         + vip("https", "    default_pool: web\n    tls: {certificates: [a]}\n    https_redirect: {}\n"),
         ["f.yaml:15: vip 'v': https_redirect: https_redirect belongs on an http VIP (this one is https); remove it"]),
    Case("routes behind https_redirect are never used", POOLS + "vips:\n" + vip(
        extra="    https_redirect: {}\n    routes:\n      - {pool: web}\n"),
         ["f.yaml:12: vip 'v': routes: never used: https_redirect answers every request with a redirect; remove "
          "the routes or https_redirect"]),
    Case("two routes of one vip with one name", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {name: a, match: {path: /a}, pool: web}\n      - {name: a, match: {path: /b}, pool: web}\n")),
         ["f.yaml:13: vip 'v' route 'a': duplicate name: route 'a' of this vip is defined at line 12; route names "
          "must be unique within a vip"]),
    Case("routes of two vips may share a name", POOLS + "vips:\n"
         + vip(extra="    routes:\n      - {name: a, pool: web}\n")
         + vip(name="w", port=81, extra="    routes:\n      - {name: a, pool: web}\n")),
    # ---------------------------------------------------------------- routes
    Case("catch-all route shadows the next", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {pool: web}\n      - {match: {path_prefix: /api/}, pool: web}\n")),
         ["f.yaml:13: vip 'v' route #2: can never match: route #1 (line 12) comes first and matches every request "
          "this one would; move this route above it, or narrow route #1"]),
    Case("shorter prefix first shadows the longer", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - name: all-api\n        match: {path_prefix: /api/}\n        pool: web\n"
        "      - name: v1\n        match: {path_prefix: /api/v1/}\n        pool: web\n")),
         ["f.yaml:15: vip 'v' route 'v1': can never match: route 'all-api' (line 12) comes first and matches every "
          "request this one would; move this route above it, or narrow route 'all-api'"]),
    Case("longer prefix first is the right order", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {match: {path_prefix: /api/v1/}, pool: web}\n"
        "      - {match: {path_prefix: /api/}, pool: web}\n"))),
    Case("same prefix on another host is not shadowed", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {match: {host: a.example, path_prefix: /}, pool: web}\n"
        "      - {match: {host: b.example, path_prefix: /}, pool: web}\n"))),
    Case("host-only route shadows a path route on that host", POOLS + "vips:\n" + vip(extra=(
        "    routes:\n      - {match: {host: A.example}, pool: web}\n"
        "      - {match: {host: a.example, path: /x}, pool: web}\n")),
         ["f.yaml:13: vip 'v' route #2: can never match: route #1 (line 12) comes first and matches every request "
          "this one would; move this route above it, or narrow route #1"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.desc)
def test_semantic_check(case: Case):
    res = check_text(case.text, "f.yaml", check_files=False)
    assert [str(e) for e in res.errors] == case.errors


MONITOR_CASES = [
    Case("dns monitor without query_name", "monitors:\n  - name: d\n    type: dns\n",
         ["f.yaml:3: monitor 'd': a dns monitor needs query_name (the name to ask the member about)"]),
    Case("dns monitor with query_name", "monitors:\n  - {name: d, type: dns, query_name: example.org}\n"),
    Case("dns monitor with an unknown record type",
         "monitors:\n  - {name: d, type: dns, query_name: x.org, query_type: AX}\n",
         ["f.yaml:2: monitor 'd': query_type: unknown DNS record type 'AX' (use one of A, AAAA, ANY, CAA, CNAME, DNSKEY, "
          "DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SRV, SVCB, TLSA, TXT)"]),
    Case("udp monitor expecting without sending", "monitors:\n  - name: u\n    type: udp\n    expect: pong\n",
         ["f.yaml:4: monitor 'u': expect: a udp monitor gets an answer only to what it sends: add send, or remove "
          "expect"]),
    Case("udp monitor that sends and expects", "monitors:\n  - {name: u, type: udp, send: ping, expect: pong}\n"),
    Case("tcp monitor expecting a banner without sending", "monitors:\n  - {name: t, type: tcp, expect: SSH-}\n"),
    Case("expect is a regular expression that must compile", "monitors:\n  - {name: t, type: tcp, expect: 'OK ('}\n",
         ["f.yaml:2: monitor 't': expect: bad regular expression: missing ), unterminated subpattern at position 3 "
          "(it is searched in the reply; escape . * ? + ( ) [ ] with \\ to match them literally)"]),
    Case("expect_body too", "monitors:\n  - {name: h, type: http, expect_body: '[ok'}\n",
         ["f.yaml:2: monitor 'h': expect_body: bad regular expression: unterminated character set at position 0 "
          "(it is searched in the reply; escape . * ? + ( ) [ ] with \\ to match them literally)"]),
]


@pytest.mark.parametrize("case", MONITOR_CASES, ids=lambda c: c.desc)
def test_monitor_check(case: Case):
    res = check_text(case.text, "f.yaml")
    assert [str(e) for e in res.errors] == case.errors


def test_empty_pool_and_unused_objects_are_warnings_not_errors():
    res = check_text("monitors:\n  - {name: m, type: tcp}\npools:\n  - name: p\n", "f.yaml")
    assert res.ok
    assert [str(w) for w in res.warnings] == [
        "f.yaml:2: monitor 'm': not used by any pool",
        "f.yaml:4: pool 'p': the pool has no members: traffic sent to it fails until some are added",
        "f.yaml:4: pool 'p': not used by any vip",
    ]
    assert all(w.severity == "warning" for w in res.warnings)


@dataclass
class Shadow:
    desc: str
    earlier: dict
    later: dict
    shadowed: bool


SHADOW = [
    Shadow("empty match covers everything", {}, {"path": "/x", "method": "GET"}, True),
    Shadow("identical matches", {"host": "a", "path_prefix": "/p"}, {"host": "a", "path_prefix": "/p"}, True),
    Shadow("prefix covers a longer prefix at a segment", {"path_prefix": "/api"}, {"path_prefix": "/api/v1"}, True),
    Shadow("prefix ending in / covers any longer prefix", {"path_prefix": "/api/"}, {"path_prefix": "/api/v"}, True),
    Shadow("prefix does not surely cover a sibling word", {"path_prefix": "/api"}, {"path_prefix": "/apix"}, False),
    Shadow("prefix covers an exact path under it", {"path_prefix": "/static/"}, {"path": "/static/a.css"}, True),
    Shadow("prefix does not cover a shorter prefix", {"path_prefix": "/api/v1/"}, {"path_prefix": "/api/"}, False),
    Shadow("exact path covers only itself", {"path": "/a"}, {"path": "/a"}, True),
    Shadow("exact path does not cover a prefix", {"path": "/a"}, {"path_prefix": "/a"}, False),
    Shadow("host route does not cover a hostless route", {"host": "a"}, {"path": "/"}, False),
    Shadow("hosts compare without case", {"host": "WWW.A.org"}, {"host": "www.a.org", "path": "/"}, True),
    Shadow("wildcard host is not assumed to cover a name", {"host": "*.a.org"}, {"host": "b.a.org"}, False),
    Shadow("method set covers its subset", {"method": ["GET", "HEAD"]}, {"method": "get"}, True),
    Shadow("method does not cover any method", {"method": "GET"}, {"path": "/"}, False),
    Shadow("method does not cover a larger set", {"method": "GET"}, {"method": ["GET", "POST"]}, False),
    Shadow("regex covers the same regex", {"path_regex": "^/u/[0-9]+$"}, {"path_regex": "^/u/[0-9]+$"}, True),
    Shadow("regex covers an exact path it matches whole", {"path_regex": "^/u/[0-9]+$"}, {"path": "/u/42"}, True),
    Shadow("regex is not assumed to cover a prefix", {"path_regex": "^/u/"}, {"path_prefix": "/u/"}, False),
    Shadow("regex does not cover a path it does not match", {"path_regex": "^/u/[0-9]+$"}, {"path": "/u/x"}, False),
    Shadow("header presence covers a header value", {"header": {"X-A": None}}, {"header": {"x-a": "1"}}, True),
    Shadow("header value does not cover presence", {"header": {"X-A": "1"}}, {"header": {"X-A": None}}, False),
    Shadow("header value does not cover another value", {"header": {"X-A": "1"}}, {"header": {"X-A": "2"}}, False),
    Shadow("query names are case-sensitive", {"query": {"a": None}}, {"query": {"A": "1"}}, False),
    Shadow("more conditions later are still covered", {"path_prefix": "/"},
           {"path_prefix": "/x", "method": "GET", "header": {"a": "b"}, "query": {"q": None}}, True),
    Shadow("more conditions earlier do not cover fewer", {"path_prefix": "/", "method": "GET"}, {"path_prefix": "/x"},
           False),
]


@pytest.mark.parametrize("case", SHADOW, ids=lambda c: c.desc)
def test_route_shadowing(case: Shadow):
    assert covers(RouteMatch(**case.earlier), RouteMatch(**case.later)) is case.shadowed


def test_shadowing_names_the_first_earlier_route():
    ms = [RouteMatch(path_prefix="/a/"), RouteMatch(), RouteMatch(path="/a/b"), RouteMatch(path="/c")]
    assert shadowing(ms) == [None, None, 0, 1]


def test_loader_error_and_semantic_errors_come_together():
    text = textwrap.dedent("""\
        pools:
          - name: web
            algorithm: fastest
            members: [{address: 10.0.0.1, port: 80}]
        vips:
          - name: v
            address: 127.0.0.1
            port: 80
            protocol: http
            default_pool: missing
        """)
    res = check_text(text, "f.yaml")
    assert [str(e) for e in res.errors] == [
        "f.yaml:3: pool 'web': algorithm: must be one of 'round_robin', 'weighted_round_robin', 'least_connections', "
        "'random_two', 'source_hash' or 'maglev' (got 'fastest')",
        "f.yaml:10: vip 'v': default_pool: no pool named 'missing' (defined: web)",
    ]


def test_error_pages_resolve_against_the_file_and_must_exist(tmp_path):
    text = POOLS + "vips:\n" + vip(extra="    default_pool: web\n    http:\n      error_pages: {503: pages/503.html}\n")
    res = check_text(text, str(tmp_path / "adc.yaml"))
    assert [str(e) for e in res.errors] == [
        f"{tmp_path}/adc.yaml:13: vip 'v': http.error_pages.503: file not found: {tmp_path}/pages/503.html"]
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "503.html").write_text("busy\n")
    res = check_text(text, str(tmp_path / "adc.yaml"))
    assert res.ok
    assert res.config.vips[0].http.error_pages == {503: str(tmp_path / "pages" / "503.html")}


L4_ONLY = [
    Case("proxy_protocol on a pool only an http VIP uses does nothing, so it is refused", "proxy_protocol: v1", ["pool 'p': proxy_protocol: applied by the L4 engine"]),
    Case("hash_key five_tuple likewise", "hash_key: five_tuple", ["pool 'p': hash_key: applied by the L4 engine"]),
]


@pytest.mark.parametrize("case", L4_ONLY, ids=lambda c: c.desc)
def test_l4_only_pool_options_on_a_pool_only_l7_uses_are_refused(tmp_path, case):
    base = ("pools:\n  - name: p\n    {opt}\n    members: [{{address: 127.0.0.1, port: 9001}}]\n"
            "vips:\n  - {{name: w, address: 127.0.0.1, port: 8080, protocol: http, default_pool: p}}\n")
    res = check_text(base.format(opt=case.text), str(tmp_path / "a.yaml"))
    assert any(case.errors[0] in str(e) for e in res.errors), res.errors
    # the same pool behind a tcp VIP too: the setting acts there, nothing to refuse
    ok = base.format(opt=case.text) + "  - {name: t, address: 127.0.0.1, port: 8081, protocol: tcp, default_pool: p}\n"
    assert check_text(ok, str(tmp_path / "b.yaml")).errors == []


def test_slow_start_acts_at_l7_but_not_with_a_hashing_algorithm(tmp_path):
    base = ("pools:\n  - name: p\n    slow_start: 30s\n{algo}    members: [{{address: 127.0.0.1, port: 9001}}]\n"
            "vips:\n  - {{name: w, address: 127.0.0.1, port: 8080, protocol: http, default_pool: p}}\n")
    res = check_text(base.format(algo=""), str(tmp_path / "a.yaml"))
    assert res.errors == [] and not [w for w in res.warnings if "slow_start" in str(w)]
    res = check_text(base.format(algo="    algorithm: maglev\n"), str(tmp_path / "b.yaml"))
    assert res.errors == []
    assert [str(w) for w in res.warnings if "slow_start" in str(w)] == [
        f"{tmp_path / 'b.yaml'}:3: pool 'p': slow_start: http/https VIPs do not slow-start maglev (each step of "
        "a ramp would move the clients hashed to the member), so it has no effect here; remove it or use "
        "another algorithm"]


def test_max_connections_on_a_udp_vip_is_refused_for_udp_flow_limit(tmp_path):
    text = ("pools:\n  - name: p\n    members: [{address: 127.0.0.1, port: 53}]\nvips:\n"
            "  - {name: d, address: 127.0.0.1, port: 53, protocol: udp, default_pool: p, max_connections: 10}\n")
    errs = [str(e) for e in check_text(text, str(tmp_path / "a.yaml")).errors]
    assert any(e.endswith("a.yaml:5: vip 'd': max_connections: a udp VIP bounds its flows with udp_flow_limit; "
                          "use that") for e in errs), errs


def test_cookie_persistence_without_a_secret_is_warned_about(tmp_path):
    text = ("pools:\n  - name: p\n    members: [{address: 127.0.0.1, port: 9001}]\nvips:\n"
            "  - name: w\n    address: 127.0.0.1\n    port: 8080\n    protocol: http\n    default_pool: p\n"
            "    http:\n      persistence: {type: cookie}\n")
    res = check_text(text, str(tmp_path / "a.yaml"))
    assert res.errors == []
    assert [str(w) for w in res.warnings if "persistence" in str(w)] == [
        f"{tmp_path / 'a.yaml'}:11: vip 'w': persistence: cookie persistence without `secret`: the cookie is "
        "signed with a key anyone can derive from the VIP name, so clients can pick their member; "
        "set one secret per fleet"]
    res = check_text(text.replace("{type: cookie}", "{type: cookie, secret: s3cret}"), str(tmp_path / "b.yaml"))
    assert not [w for w in res.warnings if "persistence" in str(w)]
