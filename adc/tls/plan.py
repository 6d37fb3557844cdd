"""adc.tls.plan: the TLS parts of compiling a VIP: TlsPlan, HSTS, and the http-to-https redirect."""
from __future__ import annotations

import hashlib
import os
from typing import Optional

from adc.config.plan import HeaderOpsPlan, RedirectPlan, RoutePlan, TlsPlan, VipPlan

# one per adcd (the supervisor compiles every plan): every worker derives the same ticket keys,
# and a restart starts fresh keys
_TICKET_SECRET = os.urandom(32)


def files_version(certificates, ca: Optional[str]) -> str:
    """sha256 over the files' contents: importing new files under the same paths is a change."""
    h = hashlib.sha256()
    for _name, *paths in certificates:
        for p in list(paths) + [None]:
            if p is None:
                h.update(b"\0")
                continue
            try:
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
            except OSError:
                h.update(b"missing:" + p.encode())
    if ca:
        try:
            with open(ca, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except OSError:
            h.update(b"missing:" + ca.encode())
    return h.hexdigest()


def tls_plan(t, certificates: list[tuple[str, str, str, Optional[str]]]) -> TlsPlan:
    """The TlsPlan of a schema VipTls; certificates as (name, cert, key, chain) with absolute paths."""
    return TlsPlan(
        certificates=certificates, profile=t.profile, client_auth=t.client_auth, ca=t.ca,
        min_version=t.min_version, ciphers=t.ciphers, groups=list(t.groups) if t.groups else None,
        alpn=list(t.alpn), session_tickets=t.session_tickets, ticket_rotation=t.ticket_rotation,
        ticket_secret=_TICKET_SECRET, client_headers=t.client_headers,
        version=files_version(certificates, t.ca),
    )


def hsts_value(h) -> str:
    v = f"max-age={int(h.max_age)}"
    if h.include_subdomains:
        v += "; includeSubDomains"
    if h.preload:
        v += "; preload"
    return v


def https_options(v, plan: VipPlan) -> None:
    """HSTS as a response header of the VIP; https_redirect as a first route that redirects everything."""
    if v.tls is not None and v.tls.hsts is not None and plan.http is not None:
        ops = plan.http.response_headers or HeaderOpsPlan()
        ops.set = [(k, val) for k, val in ops.set if k.lower() != "strict-transport-security"]
        ops.set.append(("Strict-Transport-Security", hsts_value(v.tls.hsts)))
        plan.http.response_headers = ops
    if getattr(v, "sni_routes", None):
        plan.sni_routes = sni_routes(v)
    r = getattr(v, "https_redirect", None)
    if r is not None:
        plan.routes.insert(0, RoutePlan(
            name="https-redirect",
            redirect=RedirectPlan(status=r.status, scheme="https", port=r.port)))


def files_changed(plan, cfg) -> bool:
    """True when a certificate, key, chain or CA file of cfg's https VIPs or TLS pools differs from the plan's.

    The config text can stay the same while a file is renewed in place
    (certbot, `adcctl cert import`); an apply must then still reach the workers.
    """
    if plan is None:
        return False
    served = {v.name: v.tls.version for v in plan.vips if v.tls is not None}
    certs = {c.name: c for c in cfg.certificates}
    for v in cfg.vips:
        if v.tls is None or v.name not in served:
            continue
        files = [(n, certs[n].cert, certs[n].key, certs[n].chain) for n in v.tls.certificates if n in certs]
        if files_version(files, v.tls.ca) != served[v.name]:
            return True
    members = {p.name: p.tls.version for p in plan.pools if p.tls is not None}
    for p in cfg.pools:
        if getattr(p, "tls", None) is not None and p.name in members:
            if upstream_tls_plan(p.tls).version != members[p.name]:
                return True
    return False


def upstream_tls_plan(t):
    """The UpstreamTlsPlan of a schema PoolTls (paths already absolute)."""
    from adc.config.plan import UpstreamTlsPlan
    h = hashlib.sha256()
    for p in (t.ca, t.cert, t.key):
        if p:
            try:
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
            except OSError:
                h.update(b"missing:" + p.encode())
    return UpstreamTlsPlan(verify=t.verify, ca=t.ca, name=t.name, sni=t.sni, cert=t.cert, key=t.key,
                           min_version=t.min_version, version=h.hexdigest())


def sni_routes(v) -> list[tuple[str, str]]:
    return [(n, r.pool) for r in v.sni_routes for n in r.names]
