"""adc.lb.maglev: consistent hashing on a Maglev lookup table (M = 65537), weighted.

See docs/maglev.md. The table depends only on the eligible members' keys and
weights (never on their order, the worker, the process or the host), so every
worker of every appliance behind the same ECMP route picks the same member for
a flow, and removing one of N members moves about 1/N of the flows.

Each member's preference list is a permutation of the slots:
    offset = xxh3(key, seed 0) mod M,  skip = xxh3(key, seed 1) mod (M-1) + 1,
    slot_j = (offset + j * skip) mod M.
Members take turns claiming their next free preferred slot; a member of weight
w takes a turn in w of every w_max rounds, so slots are shared in proportion to
the weights. A flow hashes to slot xxh3(flow key) mod M; when that member may
not take it (at its connection limit, or excluded after a failed connect) the
flow walks to the following slots.
"""
from __future__ import annotations

from functools import lru_cache

from adc.lb._common import MAGLEV_M, eligible, hash64
from adc.lb.round_robin import RoundRobin

M = MAGLEV_M


def member_hash_key(key: str) -> bytes:
    return key.encode()[:128]


@lru_cache(maxsize=64)
def build_table(members: tuple) -> tuple:
    """members: ((key bytes, weight), ...) sorted by key. Returns a tuple of M member indices.

    Uses the C fill of adc._fastpath.maglev when it is built (the same table, tested
    against build_table_py, about 50 times faster: a member state change must not stall
    a worker's loop for 0.1 s).
    """
    try:
        from adc._fastpath.maglev import build_table as c_build
    except ImportError:
        return build_table_py(members)
    return c_build(members)


@lru_cache(maxsize=16)
def build_table_py(members: tuple) -> tuple:
    """The reference fill in pure Python (see the module docstring)."""
    n = len(members)
    if n == 0:
        return ()
    offset = [hash64(k, 0) % M for k, _ in members]
    skip = [hash64(k, 1) % (M - 1) + 1 for k, _ in members]
    weight = [w for _, w in members]
    wmax = max(weight)
    pos = offset[:]          # each member's next preferred slot
    credit = [0] * n
    table = [-1] * M
    filled = 0
    while True:
        for i in range(n):
            credit[i] += weight[i]
            if credit[i] < wmax:
                continue
            credit[i] -= wmax
            c = pos[i]
            s = skip[i]
            while table[c] >= 0:
                c += s
                if c >= M:
                    c -= M
            table[c] = i
            c += s
            pos[i] = c - M if c >= M else c
            filled += 1
            if filled == M:
                return tuple(table)


class Maglev:
    name = "maglev"

    def __init__(self, members: list, pure: bool = False):
        self.members = members
        self._elig = sorted((m for m in members if eligible(m)), key=lambda m: member_hash_key(m.key))
        build = build_table_py if pure else build_table
        self.table = build(tuple((member_hash_key(m.key), m.weight) for m in self._elig))
        self._rr = RoundRobin(members)

    def lookup(self, key: bytes):
        """The member the table gives for `key`, ignoring limits (for `adcctl lookup`)."""
        if not self.table:
            return None
        return self._elig[self.table[hash64(key) % M]]

    def pick(self, key=None, exclude=()):
        if key is None:
            return self._rr.pick(None, exclude)
        if not self.table or not any(m.usable and m not in exclude for m in self._elig):
            return None
        i = hash64(key) % M
        table = self.table
        elig = self._elig
        for _ in range(M):
            m = elig[table[i]]
            if m.usable and m not in exclude:
                return m
            i += 1
            if i == M:
                i = 0
        return None
