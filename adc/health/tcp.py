"""adc.health.tcp: TCP monitors: connect only, or send a string and expect a reply matching a pattern."""
from __future__ import annotations

import re

from adc.config.schema import Monitor

from .probe import Outcome, Target, exchange, shorten


class TcpProbe:
    """connect; with `send`, write it; with `expect`, read until the reply matches (a regular expression)."""

    def __init__(self, mon: Monitor):
        self.payload = mon.send.encode() if mon.send else None
        self.expect = re.compile(mon.expect.encode()) if mon.expect else None
        self.expect_text = mon.expect

    async def __call__(self, target: Target) -> Outcome:
        if self.expect is None:
            await exchange(target, self.payload, None, want_reply=False)
            return Outcome(True, "connected" if self.payload is None else "connected, sent")
        pat = self.expect
        reply, closed, _ = await exchange(target, self.payload, lambda buf: pat.search(buf) is not None)
        if pat.search(reply):
            return Outcome(True, f"reply matched {self.expect_text!r}")
        if not reply:
            return Outcome(False, "closed without a reply" if closed else "no reply")
        return Outcome(False, f"reply {shorten(reply)} did not match {self.expect_text!r}")
