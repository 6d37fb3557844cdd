"""adc.l7.accesslog: one line per HTTP request, in HAProxy httplog, NGINX combined or JSON format.

The proxy hands a finished exchange to `AccessLog.log(rec)`; `rec` is an
`Exchange` (see adc.l7.listener) with: client address and port, VIP, route,
pool, member, method, target, version, status, bytes in/out, user agent,
referer, timings in seconds (t_accept, t_request, queue, connect, response,
total) and a two-letter termination state (HAProxy's: first letter who ended
it: C client, S server, P proxy, c/s client/server timeout, R resource, - none;
second letter at which phase: R request, Q queue, C connect, H response
headers, D data, - completed).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import orjson


def _ms(v: Optional[float]) -> int:
    return -1 if v is None else int(v * 1000)


class AccessLog:
    """Writes formatted lines to a file (opened append, line buffered) or stderr."""

    def __init__(self, path: str = "stderr", format: str = "haproxy"):
        self.path = path
        self.format = format
        if path in ("stderr", "-"):
            self._f = sys.stderr
            self._own = False
        elif path == "stdout":
            self._f = sys.stdout
            self._own = False
        else:
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            self._f = open(path, "a", buffering=1, encoding="utf-8", errors="replace")
            self._own = True
        self.format_line = {"haproxy": self.haproxy, "combined": self.combined, "json": self.json}[format]

    def log(self, rec) -> None:
        try:
            self._f.write(self.format_line(rec) + "\n")
        except (OSError, ValueError):
            pass  # a full disk must not take the data path down

    def close(self) -> None:
        if self._own:
            self._f.close()

    # ---------------------------------------------------------------- formats
    @staticmethod
    def _d(b) -> str:
        return b.decode("latin-1") if isinstance(b, (bytes, bytearray)) else ("-" if b is None else str(b))

    def haproxy(self, r) -> str:
        # like HAProxy's httplog:
        # client:port [date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes - - TERM conns "request"
        t = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(r.t_accept))
        ms = int((r.t_accept % 1) * 1000)
        req = f"{self._d(r.method)} {self._d(r.target)} HTTP/1.{r.minor}" if r.method else "<BADREQ>"
        return (f"{r.client}:{r.client_port} [{t}.{ms:03d}] {r.vip} {r.pool or '<NOSRV>'}/"
                f"{r.member or '<NOSRV>'} {_ms(r.t_request)}/{_ms(r.t_queue)}/{_ms(r.t_connect)}/"
                f"{_ms(r.t_response)}/{_ms(r.t_total)} {r.status} {r.bytes_out} - - {r.term} "
                f"{r.route or '-'} \"{req}\"")

    def combined(self, r) -> str:
        t = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(r.t_accept))
        req = f"{self._d(r.method)} {self._d(r.target)} HTTP/1.{r.minor}" if r.method else "-"
        return (f"{r.client} - - [{t}] \"{req}\" {r.status} {r.bytes_out} "
                f"\"{self._d(r.referer)}\" \"{self._d(r.user_agent)}\"")

    def json(self, r) -> str:
        return orjson.dumps({
            "time": r.t_accept, "client": r.client, "client_port": r.client_port, "vip": r.vip,
            "route": r.route, "pool": r.pool, "member": r.member,
            "method": self._d(r.method) if r.method else None,
            "target": self._d(r.target) if r.target else None, "version": f"1.{r.minor}",
            "status": r.status, "bytes_in": r.bytes_in, "bytes_out": r.bytes_out,
            "user_agent": self._d(r.user_agent) if r.user_agent else None,
            "referer": self._d(r.referer) if r.referer else None,
            "t_request_ms": _ms(r.t_request), "t_queue_ms": _ms(r.t_queue),
            "t_connect_ms": _ms(r.t_connect), "t_response_ms": _ms(r.t_response),
            "t_total_ms": _ms(r.t_total), "termination": r.term,
        }).decode()


def make_access_log(plan) -> Optional[AccessLog]:
    """From an AccessLogPlan (or None: no access log)."""
    if plan is None:
        return None
    return AccessLog(plan.path, plan.format)
