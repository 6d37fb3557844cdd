"""adc.l7.persist: session persistence: a signed cookie naming the member, or a hash through Maglev.

Cookie persistence. The cookie carries a member token, HMAC-SHA256(secret,
member key) cut to 16 hex digits: opaque (no addresses leak) and unforgeable
without the secret, and the same on every worker and appliance sharing the
config. Modes (as HAProxy's):
  insert   we add `Set-Cookie: NAME=token` when the client has no valid one, and
           strip NAME from the Cookie the member sees;
  rewrite  the member sets NAME; we replace its value with the token;
  prefix   the member sets NAME=v; the client gets NAME=token~v and the member
           sees NAME=v again.
A persisted member that is down or in maint is replaced (a new cookie follows);
one in drain keeps the sessions it has.

Hash persistence (source, header, cookie_hash) picks through a Maglev table
(adc.lb.maglev), so every worker maps a key to the same member and removing
one member moves only its share of keys.
"""
from __future__ import annotations

import hashlib
import hmac
import weakref
from typing import Optional

from adc.config.plan import PersistencePlan
from adc.lb._common import flow_key
from adc.lb.maglev import Maglev

_HASHING = ("maglev", "source_hash")


def _may_keep(m) -> bool:
    """A persisted member keeps its sessions while up and enabled or draining."""
    return (m.health == "up" and m.admin in ("enabled", "drain") and m.weight > 0
            and (m.max_connections is None or m.active < m.max_connections))


class Persistence:
    def __init__(self, plan: PersistencePlan):
        self.plan = plan
        self.type = plan.type
        self.mode = plan.mode
        self.name = plan.cookie.encode()
        self.secret = plan.secret.encode()
        self.header = plan.header.lower().encode() if plan.header else None
        attrs = b"; Path=/; HttpOnly"
        if plan.max_age:
            attrs += b"; Max-Age=%d" % int(plan.max_age)
        self.attrs = attrs
        self._tokens: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._maglev: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    # -------------------------------------------------------------- cookies
    def token(self, key: str) -> bytes:
        return hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()[:16].encode()

    def _by_token(self, pool) -> dict:
        t = self._tokens.get(pool)
        if t is None:
            t = self._tokens[pool] = {self.token(m.key): m for m in pool.members}
        return t

    def member_token(self, pool, m) -> bytes:
        for tok, mm in self._by_token(pool).items():
            if mm is m:
                return tok
        return self.token(m.key)

    def cookie_value(self, req) -> Optional[bytes]:
        """The value of our cookie in the request's Cookie fields, or None."""
        name = self.name
        for k, v in req.fields:
            if len(k) == 6 and k.lower() == b"cookie":
                for part in v.split(b";"):
                    n, eq, val = part.strip().partition(b"=")
                    if eq and n == name:
                        return val
        return None

    def strip_cookie(self, fields: list, replace: Optional[bytes] = None) -> list:
        """Fields with our cookie removed from Cookie (or its value replaced by `replace`)."""
        out = []
        name = self.name
        for k, v in fields:
            if len(k) == 6 and k.lower() == b"cookie":
                parts = []
                for part in v.split(b";"):
                    p = part.strip()
                    n, eq, _ = p.partition(b"=")
                    if eq and n == name:
                        if replace is not None:
                            parts.append(name + b"=" + replace)
                        continue
                    if p:
                        parts.append(p)
                if parts:
                    out.append((k, b"; ".join(parts)))
                continue
            out.append((k, v))
        return out

    def persisted(self, req, pool):
        """(member or None, app value for prefix mode or None) from the request's cookie."""
        v = self.cookie_value(req)
        if v is None:
            return None, None
        app = None
        if self.mode == "prefix":
            tok, sep, app = v.partition(b"~")
            if not sep:
                return None, None
        else:
            tok = v
        m = self._by_token(pool).get(tok)
        if m is not None and _may_keep(m):
            return m, app
        return None, app

    def set_cookie(self, token: bytes) -> tuple:
        return (b"set-cookie", self.name + b"=" + token + self.attrs)

    def rewrite_set_cookies(self, fields: list, token: bytes) -> tuple[list, bool]:
        """rewrite/prefix modes: edit the member's Set-Cookie NAME. Returns (fields, found)."""
        out = []
        found = False
        name = self.name
        for k, v in fields:
            if len(k) == 10 and k.lower() == b"set-cookie":
                n, eq, rest = v.partition(b"=")
                if eq and n.strip() == name:
                    val, semi, attrs = rest.partition(b";")
                    newval = token if self.mode == "rewrite" else token + b"~" + val.strip()
                    v = name + b"=" + newval + semi + attrs
                    found = True
            out.append((k, v))
        return out, found

    # -------------------------------------------------------------- hashing
    def hash_key(self, req, client_ip: bytes) -> Optional[bytes]:
        t = self.type
        if t == "source":
            try:
                return flow_key(client_ip.decode())
            except ValueError:
                return client_ip
        if t == "header":
            return req.field(self.header)
        if t == "cookie_hash":
            return self.cookie_value(req)
        return None

    def pick_hashed(self, pool, key: bytes, exclude):
        """The member for `key` through a Maglev table of the pool (the pool's own when it hashes)."""
        if pool.plan.algorithm in _HASHING:
            return pool.pick(key, exclude)
        prim = getattr(pool, "_primary", None)
        cached = self._maglev.get(pool)
        if cached is None or cached[0] is not prim:
            # member states changed (the pool rebuilt its scheduler): rebuild our table too
            cached = (prim, Maglev([m for m in pool.members if not m.backup]))
            self._maglev[pool] = cached
        m = cached[1].pick(key, exclude)
        if m is None:
            m = pool.pick(key, exclude)
        return m
