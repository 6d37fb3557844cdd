"""adcctl.stats: the counters of every VIP, pool and member, summed over the workers."""
from __future__ import annotations

from typing import Any

import click

from .base import client
from .output import COUNTER_COLUMNS, counters, emit, grid, output_option


def render(a: Any):
    a = a if isinstance(a, dict) else {}
    rows = []
    for kind, section in (("vip", "vips"), ("pool", "pools"), ("member", "members")):
        objs = a.get(section)
        if isinstance(objs, dict):
            rows += [[kind, name] + counters(c) for name, c in objs.items()]
    return grid(("TYPE", "NAME") + COUNTER_COLUMNS, rows)


@click.command("stats")
@output_option
def stats() -> None:
    """Counters per VIP, pool and POOL/member: active, total, bytes in/out, requests, errors."""
    emit(client().get("/stats"), render)
