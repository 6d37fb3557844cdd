"""adc.lb.least_connections: the usable member with the fewest active flows per unit of weight.

active/weight is compared exactly (a.active * b.weight < b.active * a.weight).
Ties go to the first tied member after the previous winner, so equal members
share new flows in turn instead of the first one taking every burst.
"""
from __future__ import annotations


class LeastConnections:
    name = "least_connections"

    def __init__(self, members: list):
        self.members = members
        self._next = 0

    def pick(self, key=None, exclude=()):
        n = len(self.members)
        best = None
        best_i = 0
        for j in range(n):
            i = (self._next + j) % n
            m = self.members[i]
            if not m.usable or m in exclude:
                continue
            if best is None or m.active * best.weight < best.active * m.weight:
                best, best_i = m, i
        if best is not None:
            self._next = (best_i + 1) % n
        return best
