"""adcctl.lookup: which route, pool and member a client would get from a VIP, asked of the running plan."""
from __future__ import annotations

from typing import Any

import click

from .base import AddrPort, client, complete_vip
from .output import emit, extra, kv, output_option


@click.command("lookup")
@click.argument("vip", metavar="VIP", shell_complete=complete_vip)
@click.argument("client_addr", metavar="CLIENT_IP[:PORT]", type=AddrPort(port_optional=True))
@output_option
def lookup(vip: str, client_addr: str) -> None:
    """Where VIP sends a client: route, pool, member (persistence and hash included)."""

    def render(a: Any):
        a = a if isinstance(a, dict) else {"answer": a}
        known = ("vip", "client", "route", "pool", "member", "reason")
        return kv([(k, a.get(k)) for k in known if k in a] + extra(a, known))

    emit(client().get("/lookup", query={"vip": vip, "client": client_addr}), render)
