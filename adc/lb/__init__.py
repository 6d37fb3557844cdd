"""adc.lb: load-balancing algorithms in Python, the reference for the fast path and the choice for L7.

make_scheduler(algorithm, members) returns an object with
    pick(key: bytes | None, exclude: tuple) -> member | None
choosing among members whose `.usable` is true (members also carry `.weight`,
`.active`, `.key`; `.admin`/`.health` when present decide table membership for
the hashing algorithms). `key` is the flow's hash input (see `flow_key`) for
source_hash and maglev; without a key they fall back to round robin.
adc._fastpath.sched holds the same algorithms in C; tests/unit/test_lb_cases.py
runs one case table against both.
"""
from __future__ import annotations

from adc.lb._common import MAGLEV_M, flow_key, hash64
from adc.lb.least_connections import LeastConnections
from adc.lb.maglev import Maglev
from adc.lb.random_two import RandomTwo
from adc.lb.round_robin import RoundRobin
from adc.lb.source_hash import SourceHash
from adc.lb.weighted_round_robin import WeightedRoundRobin

ALGORITHMS = {
    "round_robin": RoundRobin,
    "weighted_round_robin": WeightedRoundRobin,
    "least_connections": LeastConnections,
    "random_two": RandomTwo,
    "source_hash": SourceHash,
    "maglev": Maglev,
}

# Algorithms that follow a hash of the flow do not slow-start at L7 (nor in HAProxy or Envoy): each
# step of a ramp would move the flows hashed to the ramping member, the stickiness they exist for.
NO_SLOW_START = frozenset({"maglev", "source_hash"})


def make_scheduler(algorithm: str, members: list, pure: bool = False):
    """pure=True: nothing from the C fast path, even where it is built (the reference, for tests)."""
    try:
        cls = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown load-balancing algorithm {algorithm!r}; "
                         f"one of: {', '.join(ALGORITHMS)}") from None
    if pure and cls is Maglev:
        return Maglev(members, pure=True)
    return cls(members)


__all__ = ["ALGORITHMS", "MAGLEV_M", "NO_SLOW_START", "flow_key", "hash64", "make_scheduler"]
