"""adcctl.pool: pools of members, their algorithm and monitor."""
from __future__ import annotations

from typing import Any

import click

from .base import NounGroup, client, complete_pool
from .client import seg
from .output import COUNTER_COLUMNS, counters, emit, extra, grid, kv, output_option
from . import member as member_mod


@click.group("pool", cls=NounGroup)
def pool() -> None:
    """Pools: list, show NAME."""


def _up(members: Any) -> str:
    if not isinstance(members, list):
        return "-"
    up = sum(1 for m in members if isinstance(m, dict) and m.get("state") == "up")
    return f"{up}/{len(members)}"


@pool.command("list")
@output_option
def list_() -> None:
    """All pools: algorithm, monitor, members up/total, counters."""

    def render(a: Any):
        return grid(("NAME", "ALGORITHM", "MONITOR", "UP/MEMBERS") + COUNTER_COLUMNS,
                    [[p.get("name"), p.get("algorithm"), p.get("monitor"), _up(p.get("members"))]
                     + counters(p.get("stats")) for p in (a or []) if isinstance(p, dict)])

    emit(client().get("/pools"), render)


@pool.command("show")
@click.argument("name", metavar="NAME", shell_complete=complete_pool)
@output_option
def show(name: str) -> None:
    """One pool: its fields and every member with its state and counters."""

    def render(a: Any):
        p = a if isinstance(a, dict) else {}
        head = kv([("name", p.get("name")), ("algorithm", p.get("algorithm")), ("monitor", p.get("monitor")),
                   ("members up", _up(p.get("members")))]
                  + extra(p, ("name", "algorithm", "monitor", "members", "up", "stats")))
        out = [head, member_mod.table(p.get("members") or [])]
        if isinstance(p.get("stats"), dict):
            out.append(kv(list(p["stats"].items()), title="counters"))
        return out

    emit(client().get(f"/pools/{seg(name)}"), render)
