"""adc.health.states: the member state machine, as one transition table.

Rules (docs/health.md explains the why):

1. Two sides, kept apart. The monitors move a member's *health*: UNKNOWN,
   UP, FALLING, DOWN, RISING. The operator moves its *admin* state: ENABLED,
   DRAIN, MAINT. Neither side changes the other.
2. What traffic sees (`state` in `adcctl member list`) is the admin state
   when it is not ENABLED, else the health: FALLING still counts as up and
   RISING still counts as down, so a single odd check never moves traffic.
3. A member no check has judged yet is UNKNOWN and takes traffic (up), so a
   restart or an apply never blacks out a pool while `rise` checks pass.
   Its first check decides at once: one pass makes it UP, one failure DOWN.
   A dead member is thus sent traffic for at most one check timeout.
4. From UP, `fall` consecutive failures make it DOWN; a pass in between
   starts the count again (FALLING -> UP).
5. From DOWN, `rise` consecutive passes make it UP; a failure in between
   starts the count again (RISING -> DOWN).
6. Checks keep running in DRAIN and MAINT, so `adcctl member enable` puts
   back a member whose health is current, not one from before maintenance.
7. Every change between the up side and the down side is a transition: it is
   logged with its reason, counted, and sent to every worker.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

# health (monitors)
UNKNOWN, UP, FALLING, DOWN, RISING = "unknown", "up", "falling", "down", "rising"
# admin (operator)
ENABLED, DRAIN, MAINT = "enabled", "drain", "maint"
# check results
PASS, FAIL = "pass", "fail"

# What the data path is told for each health state (rule 2, rule 3).
TRAFFIC = {UNKNOWN: "up", UP: "up", FALLING: "up", DOWN: "down", RISING: "down"}

# (health, result) -> (next when the run of this result reaches its threshold, next before that).
# The threshold of a run of failures is `fall`, of passes `rise`; UNKNOWN's threshold is 1 (rule 3).
TABLE: dict[tuple[str, str], tuple[str, str]] = {
    (UNKNOWN, PASS): (UP, UP),
    (UNKNOWN, FAIL): (DOWN, DOWN),
    (UP, PASS): (UP, UP),
    (UP, FAIL): (DOWN, FALLING),
    (FALLING, PASS): (UP, UP),
    (FALLING, FAIL): (DOWN, FALLING),
    (DOWN, FAIL): (DOWN, DOWN),
    (DOWN, PASS): (UP, RISING),
    (RISING, PASS): (UP, RISING),
    (RISING, FAIL): (DOWN, DOWN),
}

# (admin, operator action) -> admin. Any admin state may go to any other (rule 1, 6).
ADMIN_TABLE: dict[tuple[str, str], str] = {
    (a, action): target
    for a in (ENABLED, DRAIN, MAINT)
    for action, target in (("enable", ENABLED), ("drain", DRAIN), ("maint", MAINT))
}


def effective(admin: str, health: str) -> str:
    """What `adcctl member list` shows as STATE (rule 2)."""
    return admin if admin != ENABLED else TRAFFIC.get(health, health)


class Transition(NamedTuple):
    before: str          # "up" or "down" (traffic side), or "unknown"
    after: str           # "up" or "down"
    count: int           # consecutive results that made it
    first: bool          # decided by the first check (rule 3)


class Health:
    """The health of one checked target: feed it results, it says when traffic must move."""

    __slots__ = ("state", "run", "rise", "fall", "ups", "downs")

    def __init__(self, rise: int, fall: int, state: str = UNKNOWN):
        self.state = state
        self.run = 0          # consecutive results of the current kind
        self.rise = rise
        self.fall = fall
        self.ups = 0          # transitions to up, for the counters
        self.downs = 0

    @property
    def traffic(self) -> str:
        return TRAFFIC[self.state]

    def feed(self, ok: bool) -> Optional[Transition]:
        """Take one check result; return the Transition when the traffic side changes."""
        before = self.state
        reached, pending = TABLE[(before, PASS if ok else FAIL)]
        if reached == pending:            # no count involved: UNKNOWN decides, a broken run resets
            self.state, self.run = reached, 0
        else:
            self.run += 1                 # 0 in UP and DOWN, so a new run starts at 1
            if self.run >= (self.rise if ok else self.fall):
                self.state, self.run = reached, 0
            else:
                self.state = pending
        if before != UNKNOWN and TRAFFIC[before] == TRAFFIC[self.state]:
            return None
        first = before == UNKNOWN
        t = Transition(UNKNOWN if first else TRAFFIC[before], TRAFFIC[self.state],
                       1 if first else (self.rise if ok else self.fall), first)
        if t.after == "up":
            self.ups += 0 if first else 1
        else:
            self.downs += 1
        return t
