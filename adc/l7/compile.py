"""adc.l7.compile: the L7 part of compiling a config: schema Vip/Route -> HttpPlan and RoutePlan fields.

Runs in the supervisor (adc.config.compile calls it); error pages are read
from their files here, so a worker never opens a file to answer an error.
"""
from __future__ import annotations

import hashlib
from typing import Optional

from adc.config.plan import (FixedResponsePlan, HeaderOpsPlan, HttpPlan, PersistencePlan,
                             RedirectPlan, RewritePlan)


def _ops(o) -> Optional[HeaderOpsPlan]:
    if o is None:
        return None
    return HeaderOpsPlan(add=list(o.add.items()), set=list(o.set.items()), remove=list(o.remove))


def _persistence(p, scope: str) -> Optional[PersistencePlan]:
    if p is None:
        return None
    # without a configured secret the key is derived from the VIP name: stable across
    # workers and restarts, but guessable; docs/l7.md says to set one
    secret = p.secret if p.secret else hashlib.sha256(b"adc-persistence:" + scope.encode()).hexdigest()
    return PersistencePlan(type=p.type, cookie=p.cookie, mode=p.mode, header=p.header,
                           secret=secret, max_age=p.max_age)


def http_plan(v) -> Optional[HttpPlan]:
    """The HttpPlan of a schema Vip (None for tcp/udp VIPs)."""
    if v.protocol not in ("http", "https"):
        return None
    h = v.http
    if h is None:
        return HttpPlan()
    pages = {}
    for status, path in h.error_pages.items():
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                pages[int(status)] = f.read(1 << 20)
        except OSError as e:
            raise ValueError(f"vip '{v.name}': error page {status}: cannot read {path}: {e.strerror}") from None
    t, lim = h.timeouts, h.limits
    return HttpPlan(
        header_timeout=t.header, keepalive_timeout=t.keepalive, connect_timeout=t.connect,
        response_timeout=t.response, total_timeout=t.total, tunnel_timeout=t.tunnel,
        max_request_line=lim.request_line, max_header_size=lim.header_size,
        max_header_count=lim.header_count, max_body_size=lim.body_size,
        x_forwarded=h.x_forwarded, forwarded=h.forwarded, request_id=h.request_id,
        request_headers=_ops(h.request_headers), response_headers=_ops(h.response_headers),
        error_pages=pages, persistence=_persistence(h.persistence, v.name), retry_on=list(h.retry_on),
        max_idle_per_member=h.max_idle_per_member, member_idle_timeout=h.member_idle_timeout,
    )


def route_fields(v, r) -> dict:
    """The L7 keyword arguments of a RoutePlan for schema Route r of Vip v."""
    out: dict = {}
    if r.split is not None:
        out["split"] = [(s.pool, s.weight) for s in r.split]
    if r.redirect is not None:
        d = r.redirect
        out["redirect"] = RedirectPlan(status=d.status, scheme=d.scheme, host=d.host, port=d.port,
                                       path=d.path, prefix=d.prefix, keep_query=d.keep_query)
    if r.respond is not None:
        f = r.respond
        out["respond"] = FixedResponsePlan(status=f.status, body=f.body, content_type=f.content_type,
                                           headers=list(f.headers.items()))
    if r.rewrite is not None:
        w = r.rewrite
        out["rewrite"] = RewritePlan(strip_prefix=w.strip_prefix, path_regex=w.path_regex,
                                     path_replace=w.path_replace)
    if r.request_headers is not None:
        out["request_headers"] = _ops(r.request_headers)
    if r.response_headers is not None:
        out["response_headers"] = _ops(r.response_headers)
    if r.persistence is not None:
        out["persistence"] = _persistence(r.persistence, v.name)
    return out
