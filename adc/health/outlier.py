"""adc.health.outlier: passive health: members that fail real traffic are ejected for a while.

The workers already count, per member and without sending a message, every
connection or request (conn_total, requests) and every failure to reach the
member (errors: refused, reset, bad response; timeouts) in shared memory. The
detector reads those sums every `interval` and keeps, per member, a streak:
the failures seen since the last poll that showed a success. When the streak
reaches `consecutive_errors` the member is ejected for `base_ejection` times
the number of its ejections so far (at most `max_ejection`), unless that would
eject more than `max_ejected_percent` of the pool (at least one member may
always be ejected while the share allows any). A member that stays clean for
`max_ejection` after an ejection has its ejection count lowered by one.

It is an approximation of "consecutive": failures and successes within one
poll are not ordered, so a poll with any success ends the streak. Answers
with a 5xx status are not counted as failures unless the VIP retries them
(`retry_on`), because the workers do not count 5xx per member.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

ReadCounters = Callable[[str, str], dict]


class MemberOutlier:
    __slots__ = ("last", "streak", "ejections", "until", "clean_since", "timer")

    def __init__(self):
        self.last: Optional[dict] = None     # counters at the previous poll
        self.streak = 0
        self.ejections = 0
        self.until = 0.0                    # monotonic end of the current ejection; 0: not ejected
        self.clean_since = 0.0
        self.timer = None


def failures_and_successes(prev: dict, now: dict, l7: bool) -> tuple[int, int]:
    """Failures and successes between two readings of one member's counters.

    L7 counts conn_total and requests when a request is sent to the member, failed or
    not; L4 counts conn_total only once the connection to the member is open.
    """
    d = {k: now.get(k, 0) - prev.get(k, 0) for k in ("conn_total", "requests", "errors", "timeouts")}
    failed = max(0, d["errors"]) + max(0, d["timeouts"])
    if l7:
        ok = max(d["conn_total"], d["requests"]) - failed
    else:
        ok = d["conn_total"]
    return failed, max(0, ok)


def ejection_time(settings, ejections: int) -> float:
    return min(settings.base_ejection * max(1, ejections), settings.max_ejection)


def may_eject(settings, members: int, ejected_now: int) -> bool:
    if settings.max_ejected_percent <= 0:
        return False
    allowed = max(1, math.floor(members * settings.max_ejected_percent / 100))
    return ejected_now < allowed


def poll(settings, state: MemberOutlier, reading: dict, l7: bool, now: float) -> bool:
    """Take one reading; True when the streak now calls for an ejection (the caller checks the share)."""
    if state.last is None:
        state.last = reading
        return False
    failed, ok = failures_and_successes(state.last, reading, l7)
    state.last = reading
    if ok > 0:
        state.streak = 0
    state.streak += failed if ok == 0 else 0
    if failed == 0 and state.ejections and not state.until and now - state.clean_since >= settings.max_ejection:
        state.ejections -= 1
        state.clean_since = now
    return state.streak >= settings.consecutive_errors and not state.until


def monotonic() -> float:
    return time.monotonic()
