"""The member state machine (adc.health.states), as a golden table of check sequences."""
from __future__ import annotations

from typing import NamedTuple

import pytest

from adc.health import states
from adc.health.states import DOWN, FALLING, RISING, UNKNOWN, UP, Health


class Case(NamedTuple):
    what: str
    start: str
    rise: int
    fall: int
    results: str          # "+" pass, "-" fail
    end: str
    transitions: list     # (before, after) of each transition, in order


CASES = [
    Case("a new member's first pass confirms it up", UNKNOWN, 2, 2, "+", UP, [("unknown", "up")]),
    Case("a new member's first failure takes it down at once", UNKNOWN, 2, 3, "-", DOWN, [("unknown", "down")]),
    Case("one failure of fall=2 only starts falling; traffic stays", UP, 2, 2, "-", FALLING, []),
    Case("fall=2 consecutive failures take it down", UP, 2, 2, "--", DOWN, [("up", "down")]),
    Case("a pass while falling resets the count", UP, 2, 2, "-+-", FALLING, []),
    Case("fall=3 needs three in a row", UP, 2, 3, "--+--", FALLING, []),
    Case("fall=1 takes it down on the first failure", UP, 2, 1, "-", DOWN, [("up", "down")]),
    Case("one pass of rise=2 only starts rising; still down", DOWN, 2, 2, "+", RISING, []),
    Case("rise=2 consecutive passes bring it up", DOWN, 2, 2, "++", UP, [("down", "up")]),
    Case("a failure while rising resets the count", DOWN, 2, 2, "+-+", RISING, []),
    Case("flapping never moves traffic with rise=fall=2", UP, 2, 2, "-+-+-+-", FALLING, []),
    Case("down, up, down again", UP, 2, 2, "--++--", DOWN, [("up", "down"), ("down", "up"), ("up", "down")]),
    Case("staying up is silent", UP, 2, 2, "+++", UP, []),
    Case("staying down is silent", DOWN, 2, 2, "---", DOWN, []),
]


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_transition_table(case: Case):
    h = Health(case.rise, case.fall, case.start)
    seen = []
    for r in case.results:
        t = h.feed(r == "+")
        if t is not None:
            seen.append((t.before, t.after))
    assert h.state == case.end
    assert seen == case.transitions


def test_transition_says_how_many_checks_made_it():
    h = Health(rise=3, fall=2, state=UP)
    assert h.feed(False) is None
    t = h.feed(False)
    assert (t.before, t.after, t.count, t.first) == ("up", "down", 2, False)
    h.feed(True), h.feed(True)
    t = h.feed(True)
    assert (t.after, t.count) == ("up", 3)
    assert (h.downs, h.ups) == (1, 1)


def test_falling_still_takes_traffic_and_rising_does_not():
    assert states.TRAFFIC[FALLING] == "up" and states.TRAFFIC[RISING] == "down"
    assert states.TRAFFIC[UNKNOWN] == "up"


def test_every_state_has_a_row_for_pass_and_fail():
    for s in (UNKNOWN, UP, FALLING, DOWN, RISING):
        assert (s, states.PASS) in states.TABLE and (s, states.FAIL) in states.TABLE


@pytest.mark.parametrize("admin,health,shown", [
    ("enabled", UP, "up"), ("enabled", FALLING, "up"), ("enabled", RISING, "down"),
    ("drain", UP, "drain"), ("maint", DOWN, "maint"), ("enabled", UNKNOWN, "up"),
])
def test_effective_state_is_admin_unless_enabled(admin, health, shown):
    assert states.effective(admin, health) == shown


def test_operator_may_move_between_any_admin_states():
    for a in (states.ENABLED, states.DRAIN, states.MAINT):
        assert states.ADMIN_TABLE[(a, "maint")] == states.MAINT
        assert states.ADMIN_TABLE[(a, "enable")] == states.ENABLED
