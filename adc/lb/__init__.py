"""adc.lb: load-balancing algorithms in Python, the reference for the fast path and the choice for L7.

make_scheduler(algorithm, members) returns an object with
    pick(key: bytes | None, exclude: tuple) -> member | None
choosing among members whose `.usable` is true. `key` is the flow's hash
input (client address, or 5-tuple) for the hashing algorithms.
"""
from __future__ import annotations

from adc.lb.round_robin import RoundRobin


def make_scheduler(algorithm: str, members: list):
    # every algorithm starts as round robin until its own module lands (issue 4)
    return RoundRobin(members)
