"""Slow start in the L7 member choice (adc.runtime.PoolRuntime): who ramps, how the share grows, what it costs."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from adc.config.plan import MemberPlan, PoolPlan
from adc.runtime import PoolRuntime, ramp_fraction

A, B = "10.0.0.1:80", "10.0.0.2:80"


class Clock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def plan(algorithm="round_robin", slow_start=10.0, b_health="up", b_admin="enabled", keys=(A, B), weights=None):
    members = []
    for i, k in enumerate(keys):
        addr, port = k.rsplit(":", 1)
        members.append(MemberPlan(key=k, address=addr, port=int(port), weight=(weights or {}).get(k, 1),
                                  health=b_health if k == B else "up", admin=b_admin if k == B else "enabled"))
    return PoolPlan(name="web", algorithm=algorithm, slow_start=slow_start, members=members)


def pool(p: PoolPlan, clock: Clock, previous=None, seed: int = 7) -> PoolRuntime:
    return PoolRuntime(p, previous, clock=clock, rng=random.Random(seed).random)


def share_of_b(rt: PoolRuntime, n: int = 4000) -> float:
    return Counter(rt.pick().key for _ in range(n))[B] / n


def test_the_fraction_steps_by_tenths_like_the_l4_engine():
    assert [ramp_fraction(t, 10.0) for t in (0, 0.99, 1.0, 4.5, 9.99, 10.0, 50)] == [
        0.1, 0.1, 0.2, 0.5, 1.0, 1.0, 1.0]


@dataclass
class Case:
    desc: str
    algorithm: str


ALGOS = [Case("round robin: a ramping member keeps a pick with the ramp's probability", "round_robin"),
         Case("weighted round robin: the same on top of the weights", "weighted_round_robin"),
         Case("least connections: no herd to the member without connections", "least_connections"),
         Case("random of two", "random_two")]


@pytest.mark.parametrize("case", ALGOS, ids=lambda c: c.algorithm)
def test_a_member_that_comes_back_up_ramps_to_its_full_share(case):
    clock = Clock()
    rt = pool(plan(case.algorithm), clock)
    assert 0.4 < share_of_b(rt) < 0.6              # at worker start: no ramp, half each
    rt.set_state(B, health="down")
    assert share_of_b(rt, 100) == 0
    clock.t += 5
    rt.set_state(B, health="up")
    early = share_of_b(rt)
    clock.t += 4.5
    late = share_of_b(rt)
    clock.t += 6
    full = share_of_b(rt)
    assert early < 0.15, early
    assert early < late < full, (early, late, full)
    assert 0.4 < full < 0.6, full
    assert not rt._ramping                         # over: pick is back to one attribute check


def test_a_ramp_that_reaches_its_full_share_before_its_end_gives_back_the_fast_round_robin():
    clock = Clock()
    rt = pool(plan(), clock)
    assert rt.rr is not None                       # plain round robin: one C call per pick
    rt.set_state(B, health="down")
    clock.t += 1
    rt.set_state(B, health="up")
    assert rt.rr is None                           # ramping: pick() decides
    clock.t += 9.95                                # the last tenth of the ramp: B's fraction is 1.0
    picks = Counter(rt.pick().key for _ in range(10))
    assert picks[B] == 5
    assert rt.rr is not None and not rt._ramping
    assert Counter(rt.pick().key for _ in range(1000))[B] == 500


def test_weights_still_count_during_the_ramp():
    clock = Clock()
    rt = pool(plan("weighted_round_robin", weights={A: 1, B: 3}), clock)
    rt.set_state(B, admin="maint")
    rt.set_state(B, admin="enabled")
    clock.t += 5.5                                 # 0.6 of the way: 0.6 * 3/4 of the picks
    assert 0.35 < share_of_b(rt) < 0.55
    clock.t += 5
    assert 0.7 < share_of_b(rt) < 0.8


def test_a_member_added_to_a_serving_pool_ramps_but_not_one_present_at_start():
    clock = Clock()
    first = pool(plan(keys=(A,)), clock)
    second = pool(plan(), clock, previous=first)
    assert share_of_b(first, 10) == 0              # prepared, not active: nothing changed yet
    second.activate()
    assert share_of_b(second) < 0.15
    assert not pool(plan(), clock)._ramping


def test_an_aborted_apply_changes_no_member():
    clock = Clock()
    running = pool(plan(b_health="down"), clock)
    pending = pool(plan(b_health="up"), clock, previous=running)
    assert running.by_key[B].health == "down" and not running.by_key[B].ramp_start
    del pending                                    # aborted: activate() never ran
    assert running.by_key[B].health == "down" and not running.by_key[B].ramp_start
    assert not running._ramping


def test_an_apply_that_brings_a_member_up_ramps_it_and_a_ramp_survives_an_apply():
    clock = Clock()
    running = pool(plan(b_admin="maint"), clock)
    nxt = pool(plan(), clock, previous=running)
    nxt.activate()
    assert nxt.by_key[B].ramp_start == clock.t
    clock.t += 3
    again = pool(plan(), clock, previous=nxt)
    again.activate()
    assert again._ramping and again.by_key[B].ramp_start == clock.t - 3


def test_going_down_ends_the_ramp_and_slow_start_0_ends_every_ramp():
    clock = Clock()
    rt = pool(plan(), clock)
    rt.set_state(B, health="down")
    rt.set_state(B, health="up")
    assert rt._ramping
    rt.set_state(B, admin="drain")
    assert not rt._ramping and not rt.by_key[B].ramp_start
    rt.set_state(B, admin="enabled")
    off = pool(plan(slow_start=0.0), clock, previous=rt)
    off.activate()
    assert not off._ramping and not off.by_key[B].ramp_start


def test_the_ramping_member_takes_the_request_when_no_other_may():
    clock = Clock()
    rt = pool(plan(), clock)
    rt.set_state(B, health="down")
    rt.set_state(B, health="up")
    a = rt.by_key[A]
    assert all(rt.pick(exclude=(a,)).key == B for _ in range(50))
    rt.set_state(A, admin="maint")
    assert all(rt.pick().key == B for _ in range(50))


@pytest.mark.parametrize("algorithm", ["maglev", "source_hash"])
def test_hashing_algorithms_do_not_ramp(algorithm):
    clock = Clock()
    rt = pool(plan(algorithm), clock)
    rt.set_state(B, health="down")
    rt.set_state(B, health="up")
    assert not rt._ramping
    keys = [bytes([i, 7, 1, 2]) for i in range(200)]
    before = [rt.pick(k).key for k in keys]
    clock.t += 1
    assert [rt.pick(k).key for k in keys] == before
