"""adcctl.conn: the connection table of the data path: list, kill."""
from __future__ import annotations

from typing import Any

import click

from .base import NounGroup, client, complete_vip
from .client import seg
from .output import emit, grid, human_bytes, human_duration, output_option


@click.group("conn", cls=NounGroup)
def conn() -> None:
    """Connections: list, kill ID."""


@conn.command("list")
@click.option("--vip", metavar="V", default=None, shell_complete=complete_vip, help="Only connections to VIP V.")
@click.option("--member", metavar="M", default=None, help="Only connections to member M (ADDR:PORT).")
@output_option
def list_(vip: str | None, member: str | None) -> None:
    """Open connections: id, VIP, client, member, state, age, bytes."""

    def render(a: Any):
        return grid(("ID", "VIP", "PROTO", "CLIENT", "MEMBER", "STATE", "AGE", "IN", "OUT"),
                    [(c.get("id"), c.get("vip"), c.get("protocol"), c.get("client"), c.get("member"), c.get("state"),
                      human_duration(c.get("age")), human_bytes(c.get("bytes_in")), human_bytes(c.get("bytes_out")))
                     for c in (a or []) if isinstance(c, dict)])

    emit(client().get("/conns", query={"vip": vip, "member": member}), render)


@conn.command("kill")
@click.argument("conn_id", metavar="ID")
@output_option
def kill(conn_id: str) -> None:
    """Close connection ID (both sides)."""
    emit(client().delete(f"/conns/{seg(conn_id)}"), lambda a: f"killed connection {conn_id}")
