"""adc.lb.round_robin: each usable member in turn, weights ignored."""
from __future__ import annotations


class RoundRobin:
    name = "round_robin"

    def __init__(self, members: list):
        self.members = members
        self._next = 0

    def pick(self, key=None, exclude=()):
        n = len(self.members)
        for i in range(n):
            m = self.members[(self._next + i) % n]
            if m.usable and m not in exclude:
                self._next = (self._next + i + 1) % n
                return m
        return None
