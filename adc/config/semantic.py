"""adc.config.semantic: the checks that need the whole file, each reported at the line it is about.

The schema (adc.config.schema) knows the shape of one object; this module
knows how objects fit together: names are unique and references resolve,
listeners do not collide, every VIP has somewhere to send traffic, no route
is dead because an earlier one always wins, certificate files load.

Rules of the route-shadowing check: route B is reported only when every
request B matches is certainly matched by an earlier route A, whatever the
exact semantics the router gives to host wildcards, path prefixes (plain or
segment-wise) and regular expressions (search or full match). When unsure it
stays silent: a missed warning costs less than a false error that blocks an
apply.
"""
from __future__ import annotations

import datetime
import difflib
import os
import re
import ssl
from typing import Callable, Iterable, Optional

from adc.config.errors import ConfigError
from adc.config.schema import Config, Pool, RouteMatch, Vip
from adc.lb import NO_SLOW_START

LineOf = Callable[[tuple], int]

DNS_TYPES = {"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA", "ANY", "HTTPS", "SVCB", "DS",
             "DNSKEY", "NAPTR", "TLSA"}
DNS_RCODES = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}


def pool_label(name: str) -> str:
    return f"pool {name!r}"


def vip_label(name: str) -> str:
    return f"vip {name!r}"


def route_label(vip: Vip, i: int) -> str:
    r = vip.routes[i]
    return f"vip {vip.name!r} route {r.name!r}" if r.name else f"vip {vip.name!r} route #{i + 1}"


class _Report:
    def __init__(self, file: str, line_of: LineOf):
        self.file = file
        self.line_of = line_of
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigError] = []

    def error(self, loc: tuple, where: str, reason: str) -> None:
        self.errors.append(ConfigError(self.file, self.line_of(loc), where, reason, loc=loc))

    def warn(self, loc: tuple, where: str, reason: str) -> None:
        self.warnings.append(ConfigError(self.file, self.line_of(loc), where, reason, severity="warning", loc=loc))


def check(cfg: Config, *, file: str = "<config>", line_of: Optional[LineOf] = None,
          known: Optional[dict[str, set[str]]] = None,
          check_files: bool = True) -> tuple[list[ConfigError], list[ConfigError]]:
    """Every semantic problem of cfg, as (errors, warnings).

    line_of maps a location in cfg (("pools", 0, "monitor")) to its line in
    the file. known holds names of objects that exist in the file but failed
    the schema (per section): references to them are not reported again.
    check_files=False skips opening certificate and CA files.
    """
    rep = _Report(file, line_of or (lambda loc: 0))
    known = known or {}
    names = {
        "monitors": _unique(rep, cfg.monitors, "monitors", "monitor"),
        "certificates": _unique(rep, cfg.certificates, "certificates", "certificate"),
        "pools": _unique(rep, cfg.pools, "pools", "pool"),
        "vips": _unique(rep, cfg.vips, "vips", "vip"),
    }
    for sec, extra in known.items():
        names.setdefault(sec, set()).update(extra)

    _monitors(rep, cfg)
    for i, p in enumerate(cfg.pools):
        _pool(rep, i, p, names)
    _vips(rep, cfg, names)
    _l4_only_options(rep, cfg)
    _persistence_secrets(rep, cfg)
    if check_files:
        _certificate_files(rep, cfg)
    _unused(rep, cfg, known)
    return rep.errors, rep.warnings


def _unique(rep: _Report, items: list, section: str, kind: str) -> set[str]:
    first: dict[str, int] = {}
    for i, obj in enumerate(items):
        if obj.name in first:
            j = first[obj.name]
            rep.error((section, i, "name"), f"{kind} {obj.name!r}",
                      f"duplicate name: another {kind} {obj.name!r} is defined at line "
                      f"{rep.line_of((section, j))}; {kind} names must be unique")
        else:
            first[obj.name] = i
    return set(first)


def _unknown(kind: str, name: str, defined: set[str]) -> str:
    near = difflib.get_close_matches(name, sorted(defined), n=1)
    if near:
        hint = f" (did you mean {near[0]!r}?)"
    elif defined:
        hint = f" (defined: {', '.join(sorted(defined))})"
    else:
        hint = f" (the file defines no {kind}s)"
    return f"no {kind} named {name!r}{hint}"


# ------------------------------------------------------------------- monitors
def _monitors(rep: _Report, cfg: Config) -> None:
    for i, m in enumerate(cfg.monitors):
        where = f"monitor {m.name!r}"
        if m.type == "dns":
            if not m.query_name:
                rep.error(("monitors", i, "type"), where,
                          "a dns monitor needs query_name (the name to ask the member about)")
            if m.query_type.upper() not in DNS_TYPES:
                rep.error(("monitors", i, "query_type"), f"{where}: query_type",
                          f"unknown DNS record type {m.query_type!r} (use one of {', '.join(sorted(DNS_TYPES))})")
            if m.expect_rcode.upper() not in DNS_RCODES:
                rep.error(("monitors", i, "expect_rcode"), f"{where}: expect_rcode",
                          f"unknown DNS rcode {m.expect_rcode!r} (use one of {', '.join(sorted(DNS_RCODES))})")
        for key in ("expect", "expect_body"):
            pattern = getattr(m, key)
            if pattern is not None:
                try:
                    re.compile(pattern.encode())
                except re.error as e:
                    rep.error(("monitors", i, key), f"{where}: {key}",
                              f"bad regular expression: {e} (it is searched in the reply; escape . * ? + ( ) [ ] "
                              f"with \\ to match them literally)")
        if m.type == "udp" and m.expect is not None and m.send is None:
            rep.error(("monitors", i, "expect"), f"{where}: expect",
                      "a udp monitor gets an answer only to what it sends: add send, or remove expect")
        # a dns monitor takes expect: a pattern one answer must match (adc.health.dns)
        if m.type in ("http", "https", "tls", "dns") and (m.send is not None or
                                                          (m.expect is not None and m.type != "dns")):
            key = "send" if m.send is not None else "expect"
            rep.warn(("monitors", i, key), f"{where}: {key}",
                     f"ignored: send and expect apply to tcp and udp monitors, this one is {m.type}")


# ---------------------------------------------------------------------- pools
def _pool(rep: _Report, i: int, p: Pool, names: dict[str, set[str]]) -> None:
    where = pool_label(p.name)
    if p.monitor is not None and p.monitor not in names["monitors"]:
        rep.error(("pools", i, "monitor"), f"{where}: monitor", _unknown("monitor", p.monitor, names["monitors"]))
    for j, name in enumerate(p.monitors):
        if name not in names["monitors"]:
            rep.error(("pools", i, "monitors", j), f"{where}: monitors", _unknown("monitor", name, names["monitors"]))
    count = len({n for n in [p.monitor, *p.monitors] if n})
    if isinstance(p.monitors_required, int) and p.monitors_required > count:
        rep.error(("pools", i, "monitors_required"), f"{where}: monitors_required",
                  f"{p.monitors_required} monitors required but the pool has {count}")
    od = p.outlier_detection
    if od is not None and od.base_ejection > od.max_ejection:
        rep.error(("pools", i, "outlier_detection", "base_ejection"), f"{where}: outlier_detection",
                  "base_ejection must not exceed max_ejection")
    seen: dict[str, int] = {}
    for j, m in enumerate(p.members):
        if m.key in seen:
            rep.error(("pools", i, "members", j), f"{where} member {m.key}",
                      f"listed twice (first at line {rep.line_of(('pools', i, 'members', seen[m.key]))}); "
                      f"remove one")
        else:
            seen[m.key] = j
    if not p.members:
        rep.warn(("pools", i, "name"), where, "the pool has no members: traffic sent to it fails until some are added")
    elif all(m.weight == 0 for m in p.members):
        rep.error(("pools", i, "members"), f"{where}: members",
                  "every member has weight 0, so the pool can never take traffic; "
                  "give at least one member a weight above 0 (use `state: drain` to stop traffic to one)")


# ----------------------------------------------------------------------- vips
def _vips(rep: _Report, cfg: Config, names: dict[str, set[str]]) -> None:
    listeners: dict[tuple[str, str, int], int] = {}
    pools = {p.name: p for p in cfg.pools}
    for i, v in enumerate(cfg.vips):
        where = vip_label(v.name)
        transport = "udp" if v.protocol == "udp" else "tcp"
        lk = (transport, v.address, v.port)
        if lk in listeners:
            other = cfg.vips[listeners[lk]]
            addr = f"[{v.address}]" if ":" in v.address else v.address
            also = "; http, https and tcp VIPs all listen on TCP" if transport == "tcp" else ""
            rep.error(("vips", i, "port"), f"{where}: port",
                      f"{addr}:{v.port}/{transport} is already used by vip {other.name!r} "
                      f"(line {rep.line_of(('vips', listeners[lk]))}){also}; give one of them another "
                      f"address or port")
        else:
            listeners[lk] = i

        if v.default_pool is not None and v.default_pool not in names["pools"]:
            rep.error(("vips", i, "default_pool"), f"{where}: default_pool",
                      _unknown("pool", v.default_pool, names["pools"]))
        elif v.protocol in ("tcp", "udp") and getattr(pools.get(v.default_pool), "tls", None) is not None:
            rep.error(("vips", i, "default_pool"), f"{where}: default_pool",
                      f"pool {v.default_pool!r} has tls (re-encryption to members), which only http and https "
                      f"VIPs do; this vip is {v.protocol}")
        cb = getattr(pools.get(v.default_pool), "circuit_breaker", None)
        if cb is not None and v.protocol in ("tcp", "udp"):
            unused = (["max_connections"] if v.protocol == "udp" and cb.max_connections is not None else []) \
                + [k for k in ("max_pending", "max_requests") if getattr(cb, k) is not None]
            if unused:
                rep.warn(("vips", i, "default_pool"), f"{where}: default_pool",
                         f"pool {v.default_pool!r} circuit_breaker {', '.join(unused)} does not apply to "
                         f"this {v.protocol} VIP (tcp VIPs: max_connections only; udp VIPs: none)")

        l7 = v.protocol in ("http", "https")
        if v.routes and not l7:
            rep.error(("vips", i, "routes"), f"{where}: routes",
                      f"a {v.protocol} VIP forwards connections, it cannot route requests; "
                      f"routes need protocol http or https")
        sni = getattr(v, "sni_routes", None) or []
        if sni and v.protocol != "tcp":
            rep.error(("vips", i, "sni_routes"), f"{where}: sni_routes",
                      f"SNI passthrough routes TLS connections without terminating them, on a tcp VIP "
                      f"(this one is {v.protocol}); use routes with match.host on an https VIP instead")
        for j, sr in enumerate(sni):
            if sr.pool not in names["pools"]:
                rep.error(("vips", i, "sni_routes", j, "pool"), f"{where}: sni_routes",
                          _unknown("pool", sr.pool, names["pools"]))
        redirect_all = getattr(v, "https_redirect", None) is not None
        if redirect_all and v.protocol != "http":
            rep.error(("vips", i, "https_redirect"), f"{where}: https_redirect",
                      f"https_redirect belongs on an http VIP (this one is {v.protocol}); remove it")
        if redirect_all and v.routes:
            rep.error(("vips", i, "routes"), f"{where}: routes",
                      "never used: https_redirect answers every request with a redirect; remove the routes "
                      "or https_redirect")
        if l7 and v.default_pool is None and not v.routes and not redirect_all:
            rep.error(("vips", i), where,
                      f"an {v.protocol} VIP needs default_pool or routes: it has nowhere to send requests")
        if not l7 and v.default_pool is None and not sni:
            rep.error(("vips", i), where, f"a {v.protocol} VIP needs default_pool"
                      f"{' or sni_routes' if v.protocol == 'tcp' else ''}: it has nowhere to send connections")

        if v.tls is not None and v.protocol != "https":
            rep.error(("vips", i, "tls"), f"{where}: tls",
                      f"only https VIPs terminate TLS (this one is {v.protocol}); set protocol: https or remove tls")
        if v.protocol == "https" and v.tls is None:
            rep.error(("vips", i, "protocol"), where,
                      "an https VIP needs tls with at least one certificate (tls: {certificates: [NAME]})")
        if v.tls is not None:
            for j, c in enumerate(v.tls.certificates):
                if c in v.tls.certificates[:j]:
                    rep.error(("vips", i, "tls", "certificates", j), f"{where}: tls.certificates",
                              f"certificate {c!r} is listed twice; remove one")
                elif c not in names["certificates"]:
                    rep.error(("vips", i, "tls", "certificates", j), f"{where}: tls.certificates",
                              _unknown("certificate", c, names["certificates"]))
            if v.tls.client_auth != "none" and not v.tls.ca:
                rep.error(("vips", i, "tls", "client_auth"), f"{where}: tls.client_auth",
                          f"client_auth {v.tls.client_auth} needs tls.ca, the CA file that signs client certificates")

        if v.http is not None and not l7:
            rep.error(("vips", i, "http"), f"{where}: http",
                      f"http settings apply to http and https VIPs (this one is {v.protocol}); remove them")
        _fast_path_options(rep, i, v, where, sni)

        seen_routes: dict[str, int] = {}
        for j, r in enumerate(v.routes):
            if r.name is None:
                continue
            if r.name in seen_routes:
                rep.error(("vips", i, "routes", j, "name"), route_label(v, j),
                          f"duplicate name: route {r.name!r} of this vip is defined at line "
                          f"{rep.line_of(('vips', i, 'routes', seen_routes[r.name]))}; route names must be unique "
                          f"within a vip")
            else:
                seen_routes[r.name] = j

        if l7:
            for j, r in enumerate(v.routes):
                if r.pool is not None and r.pool not in names["pools"]:
                    rep.error(("vips", i, "routes", j, "pool"), f"{route_label(v, j)}: pool",
                              _unknown("pool", r.pool, names["pools"]))
                for k, sp in enumerate(r.split or []):
                    if sp.pool not in names["pools"]:
                        rep.error(("vips", i, "routes", j, "split", k, "pool"), f"{route_label(v, j)}: split",
                                  _unknown("pool", sp.pool, names["pools"]))
                if r.split and all(sp.weight == 0 for sp in r.split):
                    rep.error(("vips", i, "routes", j, "split"), f"{route_label(v, j)}: split",
                              "every pool of the split has weight 0; give at least one a weight above 0")
                if (v.default_pool is None and r.pool is None and r.split is None and r.redirect is None
                        and r.respond is None):
                    rep.error(("vips", i, "routes", j), route_label(v, j),
                              "the route has no pool, split, redirect or respond, and the vip has no "
                              "default_pool to fall back on; give it one of them")
                for k in range(j):
                    if covers(v.routes[k].match, r.match):
                        earlier = v.routes[k].name and repr(v.routes[k].name) or f"#{k + 1}"
                        rep.error(("vips", i, "routes", j), route_label(v, j),
                                  f"can never match: route {earlier} (line {rep.line_of(('vips', i, 'routes', k))}) "
                                  f"comes first and matches every request this one would; move this route above "
                                  f"it, or narrow route {earlier}")
                        break


_KNOWN_MATCH = {"host", "path", "path_prefix", "path_regex", "method", "header", "query"}


def _fast_path_options(rep: _Report, i: int, v: Vip, where: str, sni: list) -> None:
    """The queue and the TCP options are the L4 fast path's: tcp VIPs without sni_routes."""
    if v.protocol == "tcp" and not sni:
        return
    what = "a tcp VIP with sni_routes" if sni else f"{'an' if v.protocol.startswith('http') else 'a'} {v.protocol} VIP"
    if v.limit_action == "queue":
        rep.error(("vips", i, "limit_action"), f"{where}: limit_action",
                  f"queue is done by the L4 fast path, for tcp VIPs without sni_routes (this is {what}); "
                  f"use limit_action: refuse")
    if v.tcp_keepalive is not None:
        rep.error(("vips", i, "tcp_keepalive"), f"{where}: tcp_keepalive",
                  f"set by the L4 fast path, for tcp VIPs without sni_routes (this is {what}); remove it")
    if not v.tcp_nodelay:
        rep.error(("vips", i, "tcp_nodelay"), f"{where}: tcp_nodelay",
                  f"set by the L4 fast path, for tcp VIPs without sni_routes (this is {what}); remove it")


def _l4_only_options(rep: _Report, cfg: Config) -> None:
    """Settings only the L4 engine applies must not sit where nothing applies them.

    proxy_protocol and hash_key: five_tuple act on the flows of tcp/udp VIPs;
    a pool that only http/https VIPs (or SNI passthrough) use would ignore
    them silently. The same for max_connections on a udp VIP, whose flow
    bound is udp_flow_limit. slow_start acts at both layers, except that the
    L7 choice does not ramp the hashing algorithms: a warning says so.
    """
    l4 = {v.default_pool for v in cfg.vips if v.protocol in ("tcp", "udp") and not v.sni_routes}
    other = set()
    for v in cfg.vips:
        if v.protocol in ("http", "https") or v.sni_routes:
            other.add(v.default_pool)
            other.update(r.pool for r in v.routes)
            other.update(sp.pool for r in v.routes for sp in (r.split or []))
            other.update(r.pool for r in v.sni_routes)
    for i, p in enumerate(cfg.pools):
        if p.name in l4 or p.name not in other:
            continue
        if p.slow_start > 0 and p.algorithm in NO_SLOW_START:
            rep.warn(("pools", i, "slow_start"), f"pool '{p.name}': slow_start",
                     f"http/https VIPs do not slow-start {p.algorithm} (each step of a ramp would move the "
                     f"clients hashed to the member), so it has no effect here; remove it or use another "
                     f"algorithm")
        for key, on in (("proxy_protocol", p.proxy_protocol is not None), ("hash_key", p.hash_key == "five_tuple")):
            if on:
                rep.error(("pools", i, key), f"pool '{p.name}': {key}",
                          "applied by the L4 engine to tcp/udp VIPs, and only http/https VIPs or SNI "
                          "passthrough use this pool: it would have no effect; remove it")
    for i, v in enumerate(cfg.vips):
        if v.protocol == "udp" and v.max_connections is not None:
            rep.error(("vips", i, "max_connections"), f"vip '{v.name}': max_connections",
                      "a udp VIP bounds its flows with udp_flow_limit; use that")


def _persistence_secrets(rep: _Report, cfg: Config) -> None:
    """A persistence cookie signed without a secret is signed with a key derived from the VIP name."""
    for i, v in enumerate(cfg.vips):
        places = [(("vips", i, "http", "persistence"), v.http.persistence if v.http else None)]
        places += [(("vips", i, "routes", j, "persistence"), r.persistence) for j, r in enumerate(v.routes)]
        for loc, p in places:
            if p is not None and p.type == "cookie" and not p.secret:
                rep.warn(loc, f"vip '{v.name}': persistence",
                         "cookie persistence without `secret`: the cookie is signed with a key anyone can "
                         "derive from the VIP name, so clients can pick their member; set one secret per fleet")


def _methods(m: RouteMatch) -> Optional[set[str]]:
    if m.method is None:
        return None
    return {x.upper() for x in ([m.method] if isinstance(m.method, str) else m.method)}


def _prefix_implies(prefix: str, s: str) -> bool:
    """Every path starting with s also matches path_prefix `prefix`, plain or segment-wise."""
    if not s.startswith(prefix):
        return False
    return len(s) == len(prefix) or prefix.endswith("/") or s[len(prefix)] == "/"


def _pairs_imply(a: Optional[dict], b: Optional[dict], fold: bool) -> bool:
    """b's header/query conditions imply a's: each of a's names is required by b with the same value."""
    if not a:
        return True
    norm = (lambda k: k.lower()) if fold else (lambda k: k)
    bb = {norm(k): v for k, v in (b or {}).items()}
    for k, v in a.items():
        k = norm(k)
        if k not in bb:
            return False
        if v is not None and bb[k] != v:
            return False
    return True


def covers(a: RouteMatch, b: RouteMatch) -> bool:
    """True when every request that matches b certainly matches a (a shadows b if it comes first)."""
    for name, f in type(a).model_fields.items():
        # a condition this check does not understand: cannot prove anything
        if name not in _KNOWN_MATCH and getattr(a, name) != f.get_default(call_default_factory=True):
            return False
    if a.host is not None and (b.host is None or a.host.lower() != b.host.lower()):
        return False
    if a.path is not None and b.path != a.path:
        return False
    if a.path_prefix is not None:
        if not ((b.path is not None and _prefix_implies(a.path_prefix, b.path))
                or (b.path_prefix is not None and _prefix_implies(a.path_prefix, b.path_prefix))):
            return False
    if a.path_regex is not None:
        if not (b.path_regex == a.path_regex
                or (b.path is not None and re.fullmatch(a.path_regex, b.path) is not None)):
            return False
    am = _methods(a)
    if am is not None:
        bm = _methods(b)
        if bm is None or not bm <= am:
            return False
    return _pairs_imply(a.header, b.header, fold=True) and _pairs_imply(a.query, b.query, fold=False)


# -------------------------------------------------------------- certificates
def _readable(rep: _Report, loc: tuple, where: str, path: str) -> bool:
    if not os.path.exists(path):
        rep.error(loc, where, f"file not found: {path}")
        return False
    if os.path.isdir(path):
        rep.error(loc, where, f"is a directory, not a file: {path}")
        return False
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        rep.error(loc, where, f"cannot read {path}: {e.strerror or e}")
        return False
    return True


def _ssl_reason(e: Exception) -> str:
    return getattr(e, "reason", None) or str(e) or type(e).__name__


EXPIRY_WARNING = datetime.timedelta(days=14)


def _expiry(rep: _Report, loc: tuple, where: str, path: str, now: Optional[datetime.datetime] = None) -> None:
    """Warn (not refuse: a restart must not take a site down) when the leaf certificate expires soon."""
    try:
        from cryptography import x509
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except Exception:  # not PEM: load_cert_chain reports it as an error
        return
    now = now or datetime.datetime.now(datetime.timezone.utc)
    end = cert.not_valid_after_utc
    if end <= now:
        rep.warn(loc, where, f"the certificate expired on {end:%Y-%m-%d %H:%M} UTC; clients will refuse it")
    elif end - now < EXPIRY_WARNING:
        rep.warn(loc, where, f"the certificate expires on {end:%Y-%m-%d %H:%M} UTC, in {(end - now).days} days")
    if cert.not_valid_before_utc > now:
        rep.warn(loc, where, f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


def _certificate_files(rep: _Report, cfg: Config) -> None:
    for i, c in enumerate(cfg.certificates):
        where = f"certificate {c.name!r}"
        ok_cert = _readable(rep, ("certificates", i, "cert"), f"{where}: cert", c.cert)
        ok_key = _readable(rep, ("certificates", i, "key"), f"{where}: key", c.key)
        if c.chain is not None and _readable(rep, ("certificates", i, "chain"), f"{where}: chain", c.chain):
            with open(c.chain, "rb") as f:
                if b"-----BEGIN CERTIFICATE-----" not in f.read():
                    rep.error(("certificates", i, "chain"), f"{where}: chain",
                              f"no PEM certificate in {c.chain}")
        if ok_cert:
            _expiry(rep, ("certificates", i, "cert"), where, c.cert)
        if ok_cert and ok_key:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                # a callback, so an encrypted key fails here instead of prompting on a terminal
                ctx.load_cert_chain(c.cert, c.key, password=lambda: b"")
            except (ssl.SSLError, OSError, ValueError) as e:
                rep.error(("certificates", i, "cert"), where,
                          f"certificate and key do not load together ({_ssl_reason(e)}); they must be PEM, "
                          f"the key unencrypted and matching the certificate")
    for i, p in enumerate(cfg.pools):
        t = getattr(p, "tls", None)
        if t is None:
            continue
        where = f"pool {p.name!r}: tls"
        ok_cert = t.cert is not None and _readable(rep, ("pools", i, "tls", "cert"), f"{where}.cert", t.cert)
        ok_key = t.key is not None and _readable(rep, ("pools", i, "tls", "key"), f"{where}.key", t.key)
        if ok_cert and ok_key:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(t.cert, t.key, password=lambda: b"")
            except (ssl.SSLError, OSError, ValueError) as e:
                rep.error(("pools", i, "tls", "cert"), f"{where}.cert",
                          f"client certificate and key do not load together ({_ssl_reason(e)})")
        if t.ca and _readable(rep, ("pools", i, "tls", "ca"), f"{where}.ca", t.ca):
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=t.ca)
            except (ssl.SSLError, OSError, ValueError) as e:
                rep.error(("pools", i, "tls", "ca"), f"{where}.ca", f"not a PEM CA bundle ({_ssl_reason(e)})")
    for i, v in enumerate(cfg.vips):
        for status, page in (v.http.error_pages.items() if v.http is not None else ()):
            _readable(rep, ("vips", i, "http", "error_pages", status), f"vip {v.name!r}: http.error_pages.{status}",
                      page)
        if v.tls is not None and v.tls.ca:
            loc = ("vips", i, "tls", "ca")
            if _readable(rep, loc, f"vip {v.name!r}: tls.ca", v.tls.ca):
                try:
                    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=v.tls.ca)
                except (ssl.SSLError, OSError, ValueError) as e:
                    rep.error(loc, f"vip {v.name!r}: tls.ca", f"not a PEM CA bundle ({_ssl_reason(e)})")


# -------------------------------------------------------------------- unused
def _unused(rep: _Report, cfg: Config, known: dict[str, set[str]]) -> None:
    used_pools = set(known.get("vips") and {p.name for p in cfg.pools} or ())  # a broken vip may use any
    used_monitors = set(known.get("pools") and {m.name for m in cfg.monitors} or ())
    used_certs = set(known.get("vips") and {c.name for c in cfg.certificates} or ())
    for v in cfg.vips:
        used_pools.update(x for x in [v.default_pool] + [r.pool for r in v.routes] if x)
        used_pools.update(sp.pool for r in v.routes for sp in (r.split or []))
        used_pools.update(sr.pool for sr in getattr(v, "sni_routes", None) or [])
        if v.tls:
            used_certs.update(v.tls.certificates)
    for p in cfg.pools:
        if p.monitor:
            used_monitors.add(p.monitor)
        used_monitors.update(p.monitors)
    for sec, items, used in (("pools", cfg.pools, used_pools), ("monitors", cfg.monitors, used_monitors),
                             ("certificates", cfg.certificates, used_certs)):
        kind = sec[:-1]
        for i, obj in enumerate(items):
            if obj.name not in used:
                rep.warn((sec, i, "name"), f"{kind} {obj.name!r}", f"not used by any {_user(sec)}")


def _user(sec: str) -> str:
    return {"pools": "vip", "monitors": "pool", "certificates": "vip"}[sec]


def shadowing(routes: Iterable[RouteMatch]) -> list[Optional[int]]:
    """For each route, the index of the first earlier route that shadows it, or None."""
    ms = list(routes)
    return [next((k for k in range(j) if covers(ms[k], ms[j])), None) for j in range(len(ms))]
