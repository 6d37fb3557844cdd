"""adcctl.status: `adcctl status`, the daemon at a glance."""
from __future__ import annotations

import click

from .base import client
from .output import emit, extra, human_duration, kv, output_option


def _count(v):
    return len(v) if isinstance(v, (list, dict)) else v


def _workers(ws):
    if not isinstance(ws, list):
        return ws
    alive = sum(1 for w in ws if isinstance(w, dict) and w.get("alive"))
    restarts = sum(int(w.get("restarts") or 0) for w in ws if isinstance(w, dict))
    return f"{alive}/{len(ws)} alive" + (f", {restarts} restarts" if restarts else "")


def render(d: dict):
    known = ("version", "pid", "uptime", "revision", "workers", "vips", "pools")
    return kv([
        ("version", d.get("version")),
        ("pid", d.get("pid")),
        ("uptime", human_duration(d.get("uptime"))),
        ("revision", d.get("revision")),
        ("workers", _workers(d.get("workers"))),
        ("vips", _count(d.get("vips"))),
        ("pools", _count(d.get("pools"))),
    ] + extra(d, known))


@click.command("status")
@output_option
def status() -> None:
    """Version, pid, uptime, running revision, workers, VIP and pool counts."""
    emit(client().get("/status"), render)
