"""adc.lb.random_two: power of two choices: two members drawn by weight, the less loaded one wins.

Needs no shared state between workers and avoids the herd that pure least
connections sends to a member that just came up.
"""
from __future__ import annotations

import random


class RandomTwo:
    name = "random_two"

    def __init__(self, members: list, rng: random.Random | None = None):
        self.members = members
        self._rng = rng or random.Random()

    def _draw(self, cands, total):
        r = self._rng.randrange(total)
        for m in cands:
            r -= m.weight
            if r < 0:
                return m
        return cands[-1]

    def pick(self, key=None, exclude=()):
        cands = [m for m in self.members if m.usable and m not in exclude]
        if not cands:
            return None
        if len(cands) == 1:
            return cands[0]
        total = sum(m.weight for m in cands)
        a = self._draw(cands, total)
        b = self._draw(cands, total)
        # the lower active/weight wins; on a tie, the first draw
        return b if b.active * a.weight < a.active * b.weight else a
