"""One case table for the load-balancing algorithms, run against the Python reference (adc.lb)
and the C fast path (adc._fastpath.sched)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field

import pytest
import xxhash

import adc.lb
from adc.lb import flow_key
from adc.lb.maglev import build_table_py as py_build_table

# a build without the C schedulers must fail this table, not skip it
import adc._fastpath.maglev as maglev_c  # noqa: E402
import adc._fastpath.sched as sched_c  # noqa: E402

IMPLS = {"python": lambda a, ms: adc.lb.make_scheduler(a, ms, pure=True), "c": sched_c.make_scheduler}


class M:
    """A member as PoolRuntime hands them over: usable, weight, active, key (plus admin/health)."""

    def __init__(self, key, weight=1, active=0, admin="enabled", health="up", max_connections=None):
        self.key, self.weight, self.active = key, weight, active
        self.admin, self.health, self.max_connections = admin, health, max_connections

    @property
    def usable(self):
        return (self.admin == "enabled" and self.health == "up" and self.weight > 0
                and (self.max_connections is None or self.active < self.max_connections))

    def __repr__(self):
        return self.key


def members(*specs):
    out = []
    for s in specs:
        name, _, rest = s.partition(":")
        kw = {}
        for part in filter(None, rest.split(",")):
            k, _, v = part.partition("=")
            kw[k] = v if k in ("admin", "health") else int(v)
        out.append(M(name, **kw))
    return out


@dataclass
class Case:
    what: str
    algorithm: str
    members: list
    picks: int
    expect: list                      # keys chosen in order ("-" for None)
    keys: list = field(default_factory=list)   # hash key per pick (bytes), else None
    exclude: tuple = ()               # member names excluded on every pick


CASES = [
    Case("round robin visits each member in turn", "round_robin",
         ["a", "b", "c"], 6, list("abcabc")),
    Case("round robin skips a drained member", "round_robin",
         ["a", "b:admin=drain", "c"], 4, list("acac")),
    Case("round robin skips a member that is down and one in maint", "round_robin",
         ["a:health=down", "b:admin=maint", "c"], 2, list("cc")),
    Case("round robin with no usable member picks none", "round_robin",
         ["a:health=down", "b:weight=0"], 2, ["-", "-"]),
    Case("round robin skips an excluded member (retry after a failed connect)", "round_robin",
         ["a", "b", "c"], 3, list("aca"), exclude=("b",)),
    Case("smooth weighted round robin 5,1,1 interleaves", "weighted_round_robin",
         ["a:weight=5", "b:weight=1", "c:weight=1"], 7, list("aabacaa")),
    Case("smooth weighted round robin ignores a member at its connection limit", "weighted_round_robin",
         ["a:weight=3,active=2,max_connections=2", "b:weight=1"], 3, list("bbb")),
    Case("weighted round robin equal weights is round robin", "weighted_round_robin",
         ["a:weight=2", "b:weight=2"], 4, list("abab")),
    Case("least connections picks the fewest active", "least_connections",
         ["a:active=5", "b:active=1", "c:active=3"], 2, list("bb")),
    Case("least connections divides by weight", "least_connections",
         ["a:active=4,weight=4", "b:active=2,weight=1"], 1, list("a")),
    Case("least connections shares ties in turn", "least_connections",
         ["a", "b", "c"], 4, list("abca")),
    Case("least connections skips a drained member", "least_connections",
         ["a:admin=drain", "b:active=9"], 1, list("b")),
    Case("random of two with one usable member always picks it", "random_two",
         ["a:health=down", "b", "c:admin=maint"], 5, list("bbbbb")),
    Case("random of two with nothing usable picks none", "random_two",
         ["a:health=down"], 1, ["-"]),
    Case("source hash without a key falls back to round robin", "source_hash",
         ["a", "b"], 2, list("ab")),
    Case("maglev without a key falls back to round robin", "maglev",
         ["a", "b"], 2, list("ab")),
    Case("maglev with every member down picks none", "maglev",
         ["a:health=down", "b:admin=maint"], 1, ["-"], keys=[b"\x0a\x00\x00\x01"]),
]


def run_case(make, case):
    ms = members(*case.members)
    by = {m.key: m for m in ms}
    s = make(case.algorithm, ms)
    ex = tuple(by[k] for k in case.exclude)
    out = []
    for i in range(case.picks):
        key = case.keys[i % len(case.keys)] if case.keys else None
        m = s.pick(key, ex)
        out.append(m.key if m else "-")
    return out


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.what)
def test_case_table(impl, case):
    assert run_case(IMPLS[impl], case) == case.expect


KEYS = [flow_key(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(100_000)]


@pytest.mark.parametrize("algorithm", ["source_hash", "maglev"])
def test_hashing_algorithms_agree_between_python_and_c_for_every_key(algorithm):
    weights = [1, 2, 3, 4, 1, 1, 2, 2, 3, 1]
    py = adc.lb.make_scheduler(algorithm, [M(f"10.0.1.{i}:80", w) for i, w in enumerate(weights)], pure=True)
    c = sched_c.make_scheduler(algorithm, [M(f"10.0.1.{i}:80", w) for i, w in enumerate(weights)])
    for k in KEYS[:20_000]:
        assert py.pick(k).key == c.pick(k).key


@pytest.mark.parametrize("impl", IMPLS)
def test_hashing_keeps_a_flow_on_its_member_and_moves_it_when_that_member_is_excluded(impl):
    for algorithm in ("source_hash", "maglev"):
        ms = members("a", "b", "c", "d")
        s = IMPLS[impl](algorithm, ms)
        k = flow_key("192.0.2.7")
        first = s.pick(k)
        assert all(s.pick(k) is first for _ in range(10))
        other = s.pick(k, (first,))
        assert other is not None and other is not first


@pytest.mark.parametrize("impl", IMPLS)
def test_random_two_prefers_the_less_loaded_member(impl):
    ms = members("a:active=0", "b:active=50")
    s = IMPLS[impl]("random_two", ms)
    got = Counter(s.pick().key for _ in range(2000))
    # b wins only when both draws are b: about a quarter of the picks
    assert got["a"] > 1300 and got["b"] > 200


@pytest.mark.parametrize("impl", IMPLS)
def test_maglev_distribution_is_within_5_percent_of_the_weights(impl):
    weights = [1, 2, 3, 4, 1, 1, 2, 2, 3, 1, 5, 2]
    ms = [M(f"10.0.2.{i}:8080", w) for i, w in enumerate(weights)]
    s = IMPLS[impl]("maglev", ms)
    got = Counter(s.pick(k).key for k in KEYS)
    total = sum(weights)
    for m in ms:
        share = got[m.key] / len(KEYS)
        want = m.weight / total
        assert abs(share - want) <= 0.05 * want, (m.key, share, want)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [5, 10, 20])
def test_maglev_removing_one_of_n_members_remaps_at_most_1_2_over_n(impl, n):
    ms = [M(f"10.0.3.{i}:443") for i in range(n)]
    before = IMPLS[impl]("maglev", ms)
    after = IMPLS[impl]("maglev", ms[:3] + ms[4:])
    moved = sum(1 for k in KEYS if before.pick(k).key != after.pick(k).key)
    assert moved / len(KEYS) <= 1.2 / n


@pytest.mark.parametrize("impl", IMPLS)
def test_maglev_marking_a_member_down_moves_few_flows_of_the_others(impl):
    ms = [M(f"10.0.4.{i}:80") for i in range(8)]
    s = IMPLS[impl]("maglev", ms)
    before = [s.pick(k).key for k in KEYS[:20_000]]
    ms[2].health = "down"
    s2 = IMPLS[impl]("maglev", ms)
    after = [s2.pick(k).key for k in KEYS[:20_000]]
    assert ms[2].key not in after
    others = [(a, b) for a, b in zip(before, after) if a != ms[2].key]
    assert sum(1 for a, b in others if a != b) / len(others) <= 0.2 / 8


def test_maglev_table_is_the_same_in_c_and_python_and_ignores_member_order():
    ms = tuple(sorted((f"10.0.5.{i}:80".encode(), w) for i, w in enumerate([3, 1, 4, 1, 5, 9, 2, 6])))
    assert py_build_table(ms) == maglev_c.build_table(ms)
    a = sched_c.make_scheduler("maglev", [M(f"10.0.5.{i}:80") for i in range(6)])
    b = sched_c.make_scheduler("maglev", [M(f"10.0.5.{i}:80") for i in reversed(range(6))])
    assert all(a.pick(k).key == b.pick(k).key for k in KEYS[:5000])


SCRIPT = """
import hashlib, sys
from adc.lb.maglev import build_table_py as build_table
from adc._fastpath.maglev import build_table as cbuild
ms = tuple(sorted((f"10.9.0.{i}:53".encode(), i % 4 + 1) for i in range(17)))
t = build_table(ms) if sys.argv[1] == "python" else cbuild(ms)
print(hashlib.sha256(repr(t).encode()).hexdigest())
"""


def test_two_separate_processes_build_identical_maglev_tables():
    outs = set()
    for impl in ("python", "c", "python", "c"):
        env = dict(os.environ, PYTHONHASHSEED=str(len(outs) + 7))
        r = subprocess.run([sys.executable, "-c", SCRIPT, impl], capture_output=True, text=True,
                           env=env, check=True)
        outs.add(r.stdout.strip())
    assert len(outs) == 1


def test_c_xxh3_matches_python_xxhash_for_every_key_length():
    for n in range(0, 129):
        for seed in (0, 1, 0xDEADBEEFCAFEF00D):
            d = os.urandom(n)
            assert maglev_c.hash64(d, seed) == xxhash.xxh3_64_intdigest(d, seed)


def test_flow_key_shapes():
    assert flow_key("10.0.0.1") == bytes([10, 0, 0, 1])
    k = flow_key("10.0.0.1", 5000, "five_tuple", "192.0.2.1", 80, "udp")
    assert k == bytes([17, 10, 0, 0, 1, 0x13, 0x88, 192, 0, 2, 1, 0, 80])
    assert len(flow_key("2001:db8::1")) == 16


def test_unknown_algorithm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="maglev"):
        adc.lb.make_scheduler("fastest", [])

