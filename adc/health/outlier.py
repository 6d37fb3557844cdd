"""adc.health.outlier: passive health: members that fail real traffic are ejected for a while.

The workers already count, per member and without sending a message, every
connection or request (conn_total, requests), every failure to reach the
member (errors: refused, reset, bad response; timeouts) and, at L7, every
answer with a 5xx status (resp_5xx) in shared memory. The detector reads
those sums every `interval` and keeps, per member, two streaks, the failures
seen since the last poll that showed a success:

- `consecutive_errors`: connections or requests that failed (errors +
  timeouts); a 5xx answer is an answer, so it ends this streak (as Envoy's
  consecutive_gateway_failure / HAProxy's observe layer4);
- `consecutive_5xx` (L7): requests that failed or were answered 5xx, which
  is what a client would have seen as a 5xx (Envoy's consecutive_5xx, which
  counts connect failures as 5xx too; HAProxy's observe layer7).

When a streak reaches its setting the member is ejected for `base_ejection`
times the number of its ejections so far (at most `max_ejection`), unless
that would eject more than `max_ejected_percent` of the pool (at least one
member may always be ejected while the share allows any). A member that
stays clean for `max_ejection` after an ejection has its ejection count
lowered by one.

It is an approximation of "consecutive": failures and successes within one
poll are not ordered, so a poll with any success ends the streak.

One 5xx is never counted twice. When a VIP retries a 5xx (`retry_on: [502,
...]`) the proxy counts that answer in `errors` as well as in `resp_5xx`,
and the counters cannot tell which errors those were: for a pool such a VIP
uses, the failures of a poll are max(errors, resp_5xx) + timeouts, a lower
bound that is exact unless one poll mixes connect failures with 5xx answers
that were not retried (then ejection comes a poll or two later, never early).
Without such a VIP they are errors + resp_5xx + timeouts, exactly.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

ReadCounters = Callable[[str, str], dict]

FIELDS = ("conn_total", "requests", "errors", "timeouts", "resp_5xx")

# what ejected a member: the reason in the log line
ERRORS = "failed connections or requests"
RESP_5XX = "5xx answers or failed requests"


class MemberOutlier:
    __slots__ = ("last", "streak", "streak_5xx", "ejections", "until", "clean_since", "timer")

    def __init__(self):
        self.last: Optional[dict] = None     # counters at the previous poll
        self.streak = 0                     # failed connections or requests (consecutive_errors)
        self.streak_5xx = 0                 # and answers with a 5xx status (consecutive_5xx)
        self.ejections = 0
        self.until = 0.0                    # monotonic end of the current ejection; 0: not ejected
        self.clean_since = 0.0
        self.timer = None


def failures_and_successes(prev: dict, now: dict, l7: bool, with_5xx: bool = False,
                           retries_5xx: bool = False) -> tuple[int, int]:
    """Failures and successes between two readings of one member's counters.

    L7 counts conn_total and requests when a request is sent to the member, failed or
    not; L4 counts conn_total only once the connection to the member is open.
    with_5xx: answers with a 5xx status are failures too. retries_5xx: a VIP that uses
    the pool retries some 5xx, which the proxy then counts in errors as well (see the
    module docstring).
    """
    d = {k: max(0, now.get(k, 0) - prev.get(k, 0)) for k in FIELDS}
    errors = d["errors"]
    if with_5xx:
        errors = max(errors, d["resp_5xx"]) if retries_5xx else errors + d["resp_5xx"]
    failed = errors + d["timeouts"]
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


def poll(settings, state: MemberOutlier, reading: dict, l7: bool, now: float,
         retries_5xx: bool = False) -> Optional[str]:
    """Take one reading; what calls for an ejection now (ERRORS or RESP_5XX), or None.

    The caller checks the share of the pool that may be ejected.
    """
    if state.last is None:
        state.last = reading
        return None
    prev, state.last = state.last, reading
    failed, ok = failures_and_successes(prev, reading, l7)
    state.streak = 0 if ok > 0 else state.streak + failed
    limit_5xx = getattr(settings, "consecutive_5xx", None) if l7 else None
    failed_5xx = failed
    if limit_5xx is not None:
        failed_5xx, ok_5xx = failures_and_successes(prev, reading, l7, True, retries_5xx)
        state.streak_5xx = 0 if ok_5xx > 0 else state.streak_5xx + failed_5xx
    if failed_5xx == 0 and state.ejections and not state.until and now - state.clean_since >= settings.max_ejection:
        state.ejections -= 1
        state.clean_since = now
    if state.until:
        return None
    if state.streak >= settings.consecutive_errors:
        return ERRORS
    if limit_5xx is not None and state.streak_5xx >= limit_5xx:
        return RESP_5XX
    return None


def monotonic() -> float:
    return time.monotonic()
