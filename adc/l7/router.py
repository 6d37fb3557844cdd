"""adc.l7.router: routes compiled at apply time into match functions and actions; first match wins.

Match semantics (each given condition must hold):
  host         exact (case-insensitive, port ignored) or `*.example.com`: any name
               ending in `.example.com` with at least one more label
  path         the path (before `?`), exactly
  path_prefix  the path starts with it
  path_regex   re.search on the path (anchor with ^ when meant)
  methods      the method is one of them
  headers      name -> None: present; "~regex": re.search on the value; else equal
  query        name -> None: present; "~regex"; else equal to the (undecoded) value

Actions (one per route): pool; split (smooth weighted round robin over pools, so
a 90/10 split is exact over every 10 requests of a worker); redirect; respond
(a fixed response). A route with none of them sends to the VIP's default pool.
Edits: rewrite (strip a path prefix, then a regex replace on the path) and
header operations (remove, then set, then add), VIP-wide first, then the route's.
"""
from __future__ import annotations

import re
from typing import Callable, Optional
from urllib.parse import unquote_to_bytes

from adc.config.plan import HeaderOpsPlan, RoutePlan

A_POOL, A_SPLIT, A_REDIRECT, A_RESPOND = range(4)


class HeaderOps:
    """remove, then set (replace), then add; names compared case-insensitively."""
    __slots__ = ("remove", "add", "host")

    def __init__(self, *plans: Optional[HeaderOpsPlan]):
        remove = set()
        add = []
        host = None
        for p in plans:
            if p is None:
                continue
            for n in p.remove:
                remove.add(n.lower().encode())
            for n, v in p.set:
                if n.lower() == "host":
                    host = v.encode()
                    continue
                remove.add(n.lower().encode())
                add = [a for a in add if a[0].lower() != n.lower().encode()]
                add.append((n.encode(), v.encode()))
            for n, v in p.add:
                add.append((n.encode(), v.encode()))
        self.remove = frozenset(remove)
        self.add = tuple(add)
        self.host = host

    def __bool__(self) -> bool:
        return bool(self.remove or self.add or self.host)

    def apply(self, fields: list) -> list:
        rm = self.remove
        if rm:
            fields = [f for f in fields if f[0].lower() not in rm]
        if self.add:
            fields = fields + list(self.add)
        return fields


class Split:
    """Smooth weighted round robin over (pool, weight): exact proportions, evenly interleaved."""

    def __init__(self, pools: list):
        self.names = [p for p, w in pools if w > 0]
        self.weights = [w for p, w in pools if w > 0]
        self.total = sum(self.weights)
        self.current = [0] * len(self.names)

    def pick(self) -> Optional[str]:
        if not self.names:
            return None
        cur = self.current
        best = 0
        for i, w in enumerate(self.weights):
            cur[i] += w
            if cur[i] > cur[best]:
                best = i
        cur[best] -= self.total
        return self.names[best]


def _value_test(want: Optional[str]) -> Callable[[Optional[bytes]], bool]:
    if want is None:
        return lambda v: v is not None
    if want.startswith("~"):
        rx = re.compile(want[1:].strip().encode())
        return lambda v: v is not None and rx.search(v) is not None
    w = want.encode()
    return lambda v: v == w


def parse_query(q: Optional[bytes]) -> dict:
    out: dict = {}
    if not q:
        return out
    for part in q.split(b"&"):
        if not part:
            continue
        k, _, v = part.partition(b"=")
        k = unquote_to_bytes(k.replace(b"+", b" "))
        out.setdefault(k, unquote_to_bytes(v.replace(b"+", b" ")))
    return out


class CompiledRoute:
    __slots__ = ("plan", "name", "tests", "action", "pool", "split", "redirect", "fixed", "fixed_close",
                 "strip_prefix", "rx", "rx_repl", "req_ops", "resp_ops", "persistence")

    def __init__(self, plan: RoutePlan, vip_req_ops=None, vip_resp_ops=None):
        self.plan = plan
        self.name = plan.name
        self.pool = plan.pool
        self.split = None
        self.redirect = plan.redirect
        self.fixed = self.fixed_close = None
        if plan.split:
            self.action = A_SPLIT
            self.split = Split(plan.split)
        elif plan.redirect is not None:
            self.action = A_REDIRECT
        elif plan.respond is not None:
            self.action = A_RESPOND
            f = plan.respond
            self.fixed = (f.status, f.body.encode(), [(k.encode(), v.encode()) for k, v in f.headers],
                          f.content_type.encode())
        else:
            self.action = A_POOL
        rw = plan.rewrite
        self.strip_prefix = rw.strip_prefix.encode() if rw is not None and rw.strip_prefix else None
        self.rx = re.compile(rw.path_regex.encode()) if rw is not None and rw.path_regex else None
        self.rx_repl = rw.path_replace.encode() if rw is not None else b""
        ops = HeaderOps(vip_req_ops, plan.request_headers)
        self.req_ops = ops if ops else None
        ops = HeaderOps(vip_resp_ops, plan.response_headers)
        self.resp_ops = ops if ops else None
        self.persistence = plan.persistence
        tests = []
        if plan.host:
            h = plan.host.lower()
            if h.startswith("*."):
                suffix = h[1:].encode()
                tests.append(lambda r, s=suffix: r.host.endswith(s) and len(r.host) > len(s))
            else:
                hb = h.encode()
                tests.append(lambda r, hb=hb: r.host == hb)
        if plan.methods:
            ms = frozenset(m.upper().encode() for m in plan.methods)
            tests.append(lambda r, ms=ms: r.method in ms)
        if plan.path is not None:
            p = plan.path.encode()
            tests.append(lambda r, p=p: r.path == p)
        if plan.path_prefix is not None:
            p = plan.path_prefix.encode()
            tests.append(lambda r, p=p: r.path.startswith(p))
        if plan.path_regex is not None:
            rx = re.compile(plan.path_regex.encode())
            tests.append(lambda r, rx=rx: rx.search(r.path) is not None)
        if plan.headers:
            for name, want in plan.headers.items():
                t = _value_test(want)
                n = name.lower().encode()
                if n == b"host":
                    tests.append(lambda r, t=t: t(r.authority))
                else:
                    tests.append(lambda r, n=n, t=t: t(r.field(n)))
        if plan.query:
            for name, want in plan.query.items():
                t = _value_test(want)
                n = name.encode()
                tests.append(lambda r, n=n, t=t: t(parse_query(r.query).get(n)))
        self.tests = tuple(tests)

    def pool_name(self) -> Optional[str]:
        return self.split.pick() if self.split is not None else self.pool

    def rewrite(self, req) -> None:
        """Rewrite req.path / req.target in place (strip prefix, then regex replace)."""
        path = req.path
        sp = self.strip_prefix
        if sp is not None and path.startswith(sp):
            path = path[len(sp):]
            if path[:1] != b"/":
                path = b"/" + path
        if self.rx is not None:
            path = self.rx.sub(self.rx_repl, path, count=1)
            if path[:1] != b"/":
                path = b"/" + path
        req.path = path
        req.target = path if req.query is None else path + b"?" + req.query

    def location(self, req, scheme: bytes) -> bytes:
        """The Location of a redirect route for req."""
        d = self.redirect
        sch = d.scheme.encode() if d.scheme else scheme
        if d.host:
            host = d.host.encode()
        else:
            host = req.authority
            if d.port or sch != scheme:
                # a new scheme or port: drop the port the client used
                host = req.host
        if d.port and not (sch == b"http" and d.port == 80 or sch == b"https" and d.port == 443):
            host = b"%b:%d" % (host, d.port)
        if d.path is not None:
            path = d.path.encode()
        elif d.prefix is not None and self.plan.path_prefix and req.path.startswith(self.plan.path_prefix.encode()):
            path = d.prefix.encode() + req.path[len(self.plan.path_prefix):]
        else:
            path = req.path
        if d.keep_query and req.query is not None:
            path = path + b"?" + req.query
        return b"%b://%b%b" % (sch, host, path)

    def matches(self, req) -> bool:
        for t in self.tests:
            if not t(req):
                return False
        return True


class Router:
    """The routes of one VIP. match(req) -> the first CompiledRoute that matches, or None."""

    def __init__(self, routes: list, vip_req_ops=None, vip_resp_ops=None):
        self.routes = [CompiledRoute(r, vip_req_ops, vip_resp_ops) for r in routes]

    def match(self, req) -> Optional[CompiledRoute]:
        for r in self.routes:
            for t in r.tests:
                if not t(req):
                    break
            else:
                return r
        return None
