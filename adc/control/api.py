"""adc.control.api: the control API, HTTP/1.1 + JSON on a Unix socket (see docs/api.md).

A small server of our own: the control plane sees a handful of requests a
minute, and owning the parser keeps the daemon's dependencies to the ones
the data path needs. Each request is read whole with hard limits.
"""
from __future__ import annotations

import asyncio
import grp
import logging
import os
import re
import time
import urllib.parse
from typing import Any, Callable, Optional

import msgspec
import orjson

from adc import __version__
from adc.config import diff as cfgdiff
from adc.config import loader
from adc.config.errors import ConfigInvalid
from adc.config.schema import json_schema
from adc.control.lookup import lookup, maglev_moves
from adc.control.metrics import Metrics
from adc.control.supervisor import ApplyFailed, Supervisor

logger = logging.getLogger("adc.api")

SOCKET_GROUP = "adc"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
READ_TIMEOUT = 30.0


class HttpError(Exception):
    def __init__(self, status: int, error: str, kind: str = "client", **extra):
        super().__init__(error)
        self.status = status
        self.error = error
        self.kind = kind
        self.extra = extra


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity",
            500: "Internal Server Error"}


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


def _default(o):
    if isinstance(o, msgspec.Struct):
        return msgspec.to_builtins(o)
    if hasattr(o, "__dict__"):
        return {k: v for k, v in o.__dict__.items() if not k.startswith("_")}
    raise TypeError(type(o).__name__)


class Raw:
    """A response that is not JSON (the Prometheus text format)."""

    def __init__(self, data: bytes, content_type: str):
        self.data = data
        self.content_type = content_type


class Api:
    def __init__(self, sup: Supervisor):
        self.sup = sup
        self.metrics = Metrics(sup)
        self.routes: list[tuple[str, re.Pattern, Callable]] = []
        self.routes.append(("GET", re.compile("^/metrics$"), lambda req: Raw(
            self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")))
        r = self._route
        r("GET", r"/status", self.status)
        r("GET", r"/config", self.config_get)
        r("POST", r"/config/validate", self.config_validate)
        r("POST", r"/config/diff", self.config_diff)
        r("POST", r"/config/apply", self.config_apply)
        r("GET", r"/config/history", self.history)
        r("GET", r"/config/history/(\d+)", self.history_one)
        r("POST", r"/config/rollback", self.rollback)
        r("GET", r"/schema", lambda req: json_schema())
        r("GET", r"/vips", self.vips)
        r("GET", r"/vips/([^/]+)", self.vip)
        r("GET", r"/pools", self.pools)
        r("GET", r"/pools/([^/]+)", self.pool)
        r("GET", r"/pools/([^/]+)/members", self.members)
        r("GET", r"/pools/([^/]+)/members/([^/]+)", self.member)
        r("POST", r"/pools/([^/]+)/members/([^/]+)", self.member_set)
        r("GET", r"/workers", lambda req: [w.info() for w in self.sup.workers])
        r("GET", r"/stats", lambda req: self.sup.stats())
        r("GET", r"/lookup", self.lookup)
        r("GET", r"/conns", self.conns)
        r("DELETE", r"/conns/([^/]+)", self.conn_kill)
        from adc.tls.api import register as tls_routes   # /certificates: adc.tls.api
        tls_routes(self)

    def _route(self, method: str, pattern: str, fn: Callable) -> None:
        self.routes.append((method, re.compile("^/api/v1" + pattern + "$"), fn))

    # ============================================================ server
    async def serve(self, path: str) -> asyncio.AbstractServer:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old = os.umask(0o117)   # created 0660: the adc group may manage, others may not
        try:
            server = await asyncio.start_unix_server(self._client, path=path)
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        try:
            # operators in group adc manage the daemon without root (systemd/adc.conf)
            os.chown(path, -1, grp.getgrnam(SOCKET_GROUP).gr_gid)
        except (KeyError, PermissionError):
            pass
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    req = await asyncio.wait_for(self._read(reader), READ_TIMEOUT)
                except HttpError as e:
                    await self._send(writer, e.status, {"error": e.error, "kind": e.kind}, close=True)
                    return
                if req is None:
                    return
                status, body = await self._dispatch(req)
                close = req["headers"].get("connection", "").lower() == "close"
                await self._send(writer, status, body, close=close)
                if close:
                    return
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Optional[dict]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial:
                return None
            raise HttpError(400, "incomplete request head")
        except asyncio.LimitOverrunError:
            raise HttpError(400, "request head too large")
        if len(head) > MAX_HEAD:
            raise HttpError(400, "request head too large")
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, f"bad request line: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, f"bad header line: {line[:80]!r}")
            headers[name.lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise HttpError(400, "chunked requests are not accepted here; send Content-Length")
        try:
            n = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise HttpError(413, f"body over {MAX_BODY} bytes")
        body = await reader.readexactly(n) if n else b""
        url = urllib.parse.urlsplit(parts[1])
        return {"method": parts[0], "path": url.path, "query": dict(urllib.parse.parse_qsl(url.query)),
                "headers": headers, "body": body}

    async def _send(self, writer, status: int, body: Any, close: bool = False) -> None:
        if isinstance(body, Raw):
            data, ctype = body.data, body.content_type
        else:
            data, ctype = _json(body), "application/json"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
        writer.write(head.encode() + data)
        await writer.drain()

    async def _dispatch(self, req: dict) -> tuple[int, Any]:
        allowed = []
        for method, pat, fn in self.routes:
            mt = pat.match(req["path"])
            if not mt:
                continue
            if method != req["method"]:
                allowed.append(method)
                continue
            try:
                args = [urllib.parse.unquote(a) for a in mt.groups()]
                res = fn(req, *args)
                if asyncio.iscoroutine(res):
                    res = await res
                return 200, res
            except HttpError as e:
                return e.status, {"error": e.error, "kind": e.kind, **e.extra}
            except ConfigInvalid as e:
                return 422, {"error": f"invalid config: {len(e.errors)} error(s)", "kind": "config",
                             "errors": [str(x) for x in e.errors]}
            except ApplyFailed as e:
                return 409, {"error": f"apply failed, nothing changed: {e}", "kind": "daemon"}
            except LookupError as e:
                return 404, {"error": str(e.args[0] if e.args else e), "kind": "client"}
            except Exception as e:
                logger.exception("API %s %s failed", req["method"], req["path"])
                return 500, {"error": f"internal error: {e}", "kind": "daemon"}
        if allowed:
            return 405, {"error": f"{req['method']} not allowed on {req['path']}", "kind": "client"}
        return 404, {"error": f"no such API path: {req['path']}", "kind": "client"}

    # ========================================================== handlers
    @staticmethod
    def _body(req: dict) -> dict:
        try:
            body = orjson.loads(req["body"] or b"{}")
        except orjson.JSONDecodeError as e:
            raise HttpError(400, f"body is not JSON: {e}")
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        return body

    def _yaml_arg(self, req: dict) -> tuple[str, str]:
        body = self._body(req)
        text, path = body.get("yaml"), body.get("path") or "<api>"
        if not isinstance(text, str):
            raise HttpError(400, "body needs 'yaml': the config text")
        return text, path

    def status(self, req):
        s = self.sup
        return {"version": __version__, "pid": os.getpid(), "uptime": round(time.time() - s.started, 1),
                "revision": s.revision, "config": s.config_path,
                "workers": [w.info() for w in s.workers],
                "vips": len(s.plan.vips) if s.plan else 0, "pools": len(s.plan.pools) if s.plan else 0}

    def config_get(self, req):
        cfg = self.sup.config
        return {"revision": self.sup.revision,
                "config": loader.canonical(cfg) if cfg else None,
                "yaml": loader.dump_yaml(cfg) if cfg else ""}

    async def config_validate(self, req):
        text, path = self._yaml_arg(req)
        _, warnings = await self.sup.validate(text, path)
        return {"ok": True, "warnings": warnings}

    async def config_diff(self, req):
        text, path = self._yaml_arg(req)
        cfg, _ = await self.sup.validate(text, path)
        changes = cfgdiff.diff(self.sup.config, cfg)
        remaps = maglev_moves(self.sup.config, cfg)
        text = cfgdiff.render(changes)
        if remaps:
            text += "\n" + "\n".join(r["text"] for r in remaps)
        return {"changed": bool(changes), "changes": [c.to_dict() for c in changes],
                "remaps": remaps, "text": text}

    async def config_apply(self, req):
        body = self._body(req)
        text, path = self._yaml_arg(req)
        return await self.sup.apply_text(text, path, comment=str(body.get("comment") or ""),
                                         dry_run=bool(body.get("dry_run")))

    def history(self, req):
        return {"current": self.sup.revision, "revisions": self.sup.history.list()}

    def history_one(self, req, n):
        try:
            return self.sup.history.get(int(n))
        except (KeyError, FileNotFoundError):
            raise LookupError(f"no revision {n} in history") from None

    async def rollback(self, req):
        body = self._body(req)
        rev = body.get("revision")
        if not isinstance(rev, int) or isinstance(rev, bool):
            raise HttpError(400, "body needs 'revision': a revision number")
        return await self.sup.rollback(rev)

    def _vip_info(self, v) -> dict:
        return {"name": v.name, "protocol": v.protocol, "address": v.address, "port": v.port,
                "default_pool": v.default_pool, "routes": [msgspec.to_builtins(r) for r in v.routes],
                "stats": self.sup.counters(v.slot)}

    def vips(self, req):
        return [self._vip_info(v) for v in (self.sup.plan.vips if self.sup.plan else [])]

    def vip(self, req, name):
        for v in self.sup.plan.vips if self.sup.plan else []:
            if v.name == name:
                return self._vip_info(v)
        raise LookupError(f"no vip '{name}'")

    def _pool_plan(self, name):
        for p in self.sup.plan.pools if self.sup.plan else []:
            if p.name == name:
                return p
        raise LookupError(f"no pool '{name}'")

    def _monitor(self, name) -> Optional[str]:
        for p in self.sup.config.pools if self.sup.config else []:
            if p.name == name:
                return p.monitor
        return None

    def _pool_info(self, p) -> dict:
        members = [self.sup.member_info(p.name, mp.key) for mp in p.members]
        return {"name": p.name, "algorithm": p.algorithm, "monitor": self._monitor(p.name),
                "members": members, "up": sum(1 for mb in members if mb["state"] == "up"),
                "stats": self.sup._pool_totals(p)}

    def pools(self, req):
        return [self._pool_info(p) for p in (self.sup.plan.pools if self.sup.plan else [])]

    def pool(self, req, name):
        return self._pool_info(self._pool_plan(name))

    def members(self, req, name):
        return self._pool_info(self._pool_plan(name))["members"]

    def member(self, req, name, key):
        info = self.sup.member_info(name, key)
        if self.sup.health is not None:
            info["checks"] = self.sup.health.history(name, key)
            info["monitor"] = self.sup.health.status(name, key)   # counts and last reason (docs/health.md)
        return info

    def member_set(self, req, name, key):
        body = self._body(req)
        admin, weight = body.get("admin"), body.get("weight")
        if admin is not None and admin not in ("enabled", "drain", "maint"):
            raise HttpError(400, f"admin must be enabled, drain or maint (got {admin!r})")
        if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool)
                                   or not 0 <= weight <= 256):
            raise HttpError(400, f"weight must be 0..256 (got {weight!r})")
        if admin is None and weight is None:
            raise HttpError(400, "body needs 'admin' or 'weight'")
        return self.sup.set_member(name, key, admin=admin, weight=weight)

    def lookup(self, req):
        q = req["query"]
        if not q.get("vip") or not q.get("client"):
            raise HttpError(400, "lookup needs ?vip=NAME&client=IP[:PORT]")
        if self.sup.plan is None:
            raise LookupError("no config is running")
        try:
            return lookup(self.sup.plan, q["vip"], q["client"])
        except ValueError as e:
            raise HttpError(400, str(e))

    async def conns(self, req):
        q = req["query"]
        return await self.sup.conns(vip=q.get("vip") or None, member=q.get("member") or None)

    async def conn_kill(self, req, cid):
        if not await self.sup.kill_conn(cid):
            raise LookupError(f"no connection {cid}")
        return {"killed": True}
