"""adcctl.worker: the data-plane processes, one per core."""
from __future__ import annotations

from typing import Any

import click

from .base import NounGroup, client
from .output import emit, grid, human_time, output_option


@click.group("worker", cls=NounGroup)
def worker() -> None:
    """Workers: list."""


@worker.command("list")
@output_option
def list_() -> None:
    """Worker processes: slot, pid, alive, restarts, started."""

    def render(a: Any):
        return grid(("SLOT", "PID", "ALIVE", "RESTARTS", "STARTED"),
                    [(w.get("slot"), w.get("pid"), w.get("alive"), w.get("restarts"), human_time(w.get("started")))
                     for w in (a or []) if isinstance(w, dict)])

    emit(client().get("/workers"), render)
