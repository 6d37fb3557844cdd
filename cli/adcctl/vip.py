"""adcctl.vip: virtual servers (address:port and protocol) and what they route to."""
from __future__ import annotations

from typing import Any

import click

from .base import NounGroup, client, complete_vip
from .client import seg
from .output import COUNTER_COLUMNS, cell, counters, emit, extra, grid, kv, output_option


@click.group("vip", cls=NounGroup)
def vip() -> None:
    """Virtual servers: list, show NAME."""


def _one(a: Any) -> dict:
    # The contract writes GET /vips/NAME like the list; accept one object or a list of one.
    if isinstance(a, list):
        return a[0] if a and isinstance(a[0], dict) else {}
    return a if isinstance(a, dict) else {}


MATCH_KEYS = ("host", "path", "path_prefix", "path_regex", "method", "methods", "header", "headers", "query")


def _set(d: dict, keys) -> str:
    return " ".join(f"{k}={cell(v)}" for k, v in d.items() if k in keys and v not in (None, "", [], {}))


def _route_cols(r: dict) -> tuple[str, str]:
    """MATCH and ACTION of a route, whether adcd sends {match: {...}} (adc.yaml's shape) or flat fields."""
    if isinstance(r.get("match"), dict):
        match = _set(r["match"], r["match"].keys())
    else:
        match = _set(r, MATCH_KEYS)
    action = _set(r, set(r) - set(MATCH_KEYS) - {"name", "pool", "match"})
    return match or "*", action


@vip.command("list")
@output_option
def list_() -> None:
    """All VIPs: protocol, address, port, default pool, routes, counters."""

    def render(a: Any):
        return grid(
            ("NAME", "PROTO", "ADDRESS", "PORT", "POOL", "ROUTES") + COUNTER_COLUMNS,
            [[v.get("name"), v.get("protocol"), v.get("address"), v.get("port"), v.get("default_pool"),
              len(v.get("routes") or [])] + counters(v.get("stats"))
             for v in (a or []) if isinstance(v, dict)],
        )

    emit(client().get("/vips"), render)


@vip.command("show")
@click.argument("name", metavar="NAME", shell_complete=complete_vip)
@output_option
def show(name: str) -> None:
    """One VIP: its fields, routes in match order, counters."""

    def render(a: Any):
        v = _one(a)
        out = [kv([("name", v.get("name")), ("protocol", v.get("protocol")), ("address", v.get("address")),
                   ("port", v.get("port")), ("default pool", v.get("default_pool"))]
                  + extra(v, ("name", "protocol", "address", "port", "default_pool", "routes", "stats")))]
        routes = v.get("routes") or []
        if routes:
            out.append(grid(("#", "ROUTE", "MATCH", "POOL", "ACTION"),
                            [(i, r.get("name"), *_route_cols(r)[:1], r.get("pool"), _route_cols(r)[1])
                             for i, r in enumerate(routes, 1) if isinstance(r, dict)], title="routes"))
        if isinstance(v.get("stats"), dict):
            out.append(kv(list(v["stats"].items()), title="counters"))
        return out

    emit(client().get(f"/vips/{seg(name)}"), render)
