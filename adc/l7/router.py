"""adc.l7.router: routes compiled at apply time into match functions; first match wins, in declared order.

Match semantics (each given condition must hold):
  host         exact (case-insensitive, port ignored) or `*.example.com`: any name
               ending in `.example.com` with at least one more label
  path         the path (before `?`), exactly
  path_prefix  the path starts with it
  path_regex   re.search on the path (anchor with ^ when meant)
  methods      the method is one of them
  headers      name -> None: present; "~regex": re.search on the value; else equal
  query        name -> None: present; "~regex"; else equal to the (undecoded) value
"""
from __future__ import annotations

import re
from typing import Callable, Optional
from urllib.parse import unquote_to_bytes

from adc.config.plan import RoutePlan


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
    __slots__ = ("plan", "name", "tests")

    def __init__(self, plan: RoutePlan):
        self.plan = plan
        self.name = plan.name
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

    def matches(self, req) -> bool:
        for t in self.tests:
            if not t(req):
                return False
        return True


class Router:
    """The routes of one VIP. match(req) -> the first CompiledRoute that matches, or None."""

    def __init__(self, routes: list):
        self.routes = [CompiledRoute(r) for r in routes]

    def match(self, req) -> Optional[CompiledRoute]:
        for r in self.routes:
            for t in r.tests:
                if not t(req):
                    break
            else:
                return r
        return None
