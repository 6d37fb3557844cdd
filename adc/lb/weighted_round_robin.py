"""adc.lb.weighted_round_robin: smooth weighted round robin (no bursts to the heaviest member).

Each pick: every usable member's `current` grows by its weight; the member
with the highest `current` wins (first in order on a tie) and gives back the
sum of the weights. Over sum(weights) picks each member is chosen exactly
weight times, interleaved: weights 5,1,1 give a a b a c a a.
"""
from __future__ import annotations


class WeightedRoundRobin:
    name = "weighted_round_robin"

    def __init__(self, members: list):
        self.members = members
        self._current = [0] * len(members)

    def pick(self, key=None, exclude=()):
        best = -1
        total = 0
        cur = self._current
        for i, m in enumerate(self.members):
            if not m.usable or m in exclude:
                continue
            cur[i] += m.weight
            total += m.weight
            if best < 0 or cur[i] > cur[best]:
                best = i
        if best < 0:
            return None
        cur[best] -= total
        return self.members[best]
