"""adc.lb.source_hash: the flow key's hash, modulo the weights of the usable members.

Simple and cheap, but not consistent: adding or removing a member moves most
flows. Use maglev when flows must stay put across membership changes.
Unusable or excluded members are skipped: the next usable member in order takes the flow.
"""
from __future__ import annotations

from adc.lb._common import eligible, hash64
from adc.lb.round_robin import RoundRobin


class SourceHash:
    name = "source_hash"

    def __init__(self, members: list):
        self.members = members
        self._elig = [m for m in members if eligible(m)]
        self._total = sum(m.weight for m in self._elig)
        self._rr = RoundRobin(members)

    def pick(self, key=None, exclude=()):
        if key is None or self._total == 0:
            return self._rr.pick(None, exclude)
        r = hash64(key) % self._total
        start = 0
        for i, m in enumerate(self._elig):
            r -= m.weight
            if r < 0:
                start = i
                break
        n = len(self._elig)
        for j in range(n):
            m = self._elig[(start + j) % n]
            if m.usable and m not in exclude:
                return m
        return None
