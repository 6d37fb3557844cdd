"""adcctl.member: one pool member: list, show, and the operator's switches (enable, drain, maint, weight)."""
from __future__ import annotations

from typing import Any

import click

from .base import AddrPort, NounGroup, client, complete_pool
from .client import AdcctlError, seg
from .output import COUNTER_COLUMNS, counters, emit, extra, grid, human_time, kv, output_option


@click.group("member", cls=NounGroup)
def member() -> None:
    """Pool members: list, show, enable, disable, drain, maint, weight."""


def table(members: list):
    return grid(
        ("MEMBER", "WEIGHT", "BACKUP", "ADMIN", "HEALTH", "STATE") + COUNTER_COLUMNS,
        [[m.get("key"), m.get("weight"), m.get("backup"), m.get("admin"), m.get("health"), m.get("state")]
         + counters(m.get("stats")) for m in members if isinstance(m, dict)],
    )


def _show_one(m: Any):
    m = m if isinstance(m, dict) else {}
    known = ("key", "address", "port", "weight", "backup", "admin", "health", "state", "stats", "checks", "monitor")
    out = [kv([(k, m.get(k)) for k in known[:-3]] + extra(m, known))]
    if isinstance(m.get("stats"), dict):
        out.append(kv(list(m["stats"].items()), title="counters"))
    if isinstance(m.get("monitor"), dict):
        out.append(kv(list(m["monitor"].items()), title="monitor"))
    if isinstance(m.get("checks"), list) and m["checks"]:
        out.append(grid(("TIME", "RESULT", "LATENCY", "DETAIL"),
                        [[human_time(c.get("time")), "ok" if c.get("ok") else "FAIL",
                          f"{c.get('latency_ms')}ms", c.get("detail")] for c in m["checks"] if isinstance(c, dict)],
                        title="last checks (newest first)"))
    return out


POOL = click.argument("pool", metavar="POOL", shell_complete=complete_pool)
ADDR = click.argument("addr", metavar="ADDR:PORT", type=AddrPort())


@member.command("list")
@POOL
@output_option
def list_(pool: str) -> None:
    """Members of POOL: weight, admin, health, state, counters."""
    emit(client().get(f"/pools/{seg(pool)}/members"), table)


@member.command("show")
@POOL
@ADDR
@output_option
def show(pool: str, addr: str) -> None:
    """One member of POOL, with its counters and its last health checks."""
    members = client().get(f"/pools/{seg(pool)}/members")
    for m in members or []:
        if isinstance(m, dict) and m.get("key") == addr:
            try:   # the member endpoint adds its last checks; the list entry has the rest
                one = client().get(f"/pools/{seg(pool)}/members/{seg(addr)}")
            except AdcctlError:
                one = None
            emit(one if isinstance(one, dict) else m, _show_one)
            return
    raise AdcctlError(f"pool '{pool}' has no member {addr} (see: adcctl member list {pool})")


def _set(pool: str, addr: str, change: dict) -> None:
    emit(client().post(f"/pools/{seg(pool)}/members/{seg(addr)}", change), _show_one)


def _admin(name: str, admin: str, doc: str) -> click.Command:
    @member.command(name, help=doc)
    @POOL
    @ADDR
    @output_option
    def cmd(pool: str, addr: str) -> None:
        _set(pool, addr, {"admin": admin})

    return cmd


enable = _admin("enable", "enabled", "Put the member back in service (admin enabled); health decides the rest.")
disable = _admin("disable", "drain", "Same as drain, as F5's Disabled: no new flows, open ones and "
                                    "persistent sessions continue.")
drain = _admin("drain", "drain", "Send no new connections; the ones in flight finish (admin drain).")
maint = _admin("maint", "maint", "Take the member out of service for maintenance (admin maint).")


@member.command("weight")
@POOL
@ADDR
@click.argument("weight", metavar="W", type=click.IntRange(0, 256))
@output_option
def weight(pool: str, addr: str, weight: int) -> None:
    """Set the member's weight, 0..256 (0: no new connections)."""
    _set(pool, addr, {"weight": weight})
