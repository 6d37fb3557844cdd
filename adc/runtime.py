"""adc.runtime: what a worker keeps alive between plans: pools, members, and the listener contract.

A Plan is plain data; the runtime wraps it with the state a data path needs
(schedulers, active connection counts). Runtime members are kept by key
across plans so counts and scheduler positions survive an apply.
"""
from __future__ import annotations

import abc
import asyncio
import itertools
import logging
import random
import socket
import time
from typing import Iterable, Optional

from adc.config.plan import MemberPlan, PoolPlan, VipPlan
from adc.lb import NO_SLOW_START, make_scheduler

logger = logging.getLogger("adc.pool")


class MemberRuntime:
    __slots__ = ("pool", "key", "address", "port", "weight", "backup", "admin", "health",
                 "max_connections", "slot", "active", "ramp_start")

    def __init__(self, pool: str, plan: MemberPlan):
        self.pool = pool
        self.active = 0          # connections/requests this worker has open to the member
        self.ramp_start = 0.0    # monotonic time its slow start began; 0: not ramping
        self.update(plan)

    def update(self, plan: MemberPlan) -> None:
        self.key = plan.key
        self.address = plan.address
        self.port = plan.port
        self.weight = plan.weight
        self.backup = plan.backup
        self.admin = plan.admin
        self.health = plan.health
        self.max_connections = plan.max_connections
        self.slot = plan.slot

    @property
    def usable(self) -> bool:
        """May take new flows: enabled by the operator, up by the monitors, weight above 0."""
        return (self.admin == "enabled" and self.health == "up" and self.weight > 0
                and (self.max_connections is None or self.active < self.max_connections))

    @property
    def eligible(self) -> bool:
        """Allowed to take traffic by operator, monitors and weight (limits aside): a change to
        True is a member coming up, which starts its slow start."""
        return self.admin == "enabled" and self.health == "up" and self.weight > 0

    @property
    def state(self) -> str:
        if self.admin != "enabled":
            return self.admin
        return self.health

    def __repr__(self) -> str:
        return f"<member {self.pool}/{self.key} {self.state} w={self.weight}>"


class Breaker:
    """A pool's circuit breaker in one worker (L7): its limits and what is in flight now.

    The same object outlives applies (PoolRuntime hands it on), so requests that
    started on an older plan are counted until they end. `requests`: requests
    given a member and not yet finished; `pending`: connects to a member in
    progress. At L7 a request in flight holds one member connection (HTTP/1.1),
    so max_connections bounds the same count as max_requests; idle kept-alive
    connections are not counted.
    """
    __slots__ = ("pool", "max_connections", "max_pending", "max_requests", "requests", "pending",
                 "_logged")

    def __init__(self, pool: str):
        self.pool = pool
        self.requests = 0
        self.pending = 0
        self._logged = 0.0
        self.set_limits(None)

    def set_limits(self, plan) -> None:
        self.max_connections = plan.max_connections if plan is not None else None
        self.max_pending = plan.max_pending if plan is not None else None
        self.max_requests = plan.max_requests if plan is not None else None

    def over(self, new_connection: bool) -> Optional[str]:
        """Why a new request must not go to the pool now (logged at most once a second), or None."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            why = f"{self.requests} requests in flight (max_requests {self.max_requests})"
        elif self.max_connections is not None and self.requests >= self.max_connections:
            why = f"{self.requests} member connections in use (max_connections {self.max_connections})"
        elif new_connection and self.max_pending is not None and self.pending >= self.max_pending:
            why = f"{self.pending} connects pending (max_pending {self.max_pending})"
        else:
            return None
        now = time.monotonic()
        if now - self._logged >= 1.0:
            self._logged = now
            logger.warning("pool %r circuit open: %s", self.pool, why)
        return why

    def connect_done(self, _task) -> None:
        self.pending -= 1


def ramp_fraction(elapsed: float, slow_start: float) -> float:
    """The share of its full weight a member has `elapsed` seconds into a slow start.

    A tenth at once, one more tenth every slow_start/10 seconds, 1.0 at the end: the
    steps the L4 engine takes (adc.l4.fast), so a pool ramps alike at L4 and L7.
    """
    if elapsed >= slow_start:
        return 1.0
    return min(1.0, (int(elapsed * 10 / slow_start) + 1) / 10)


class PoolRuntime:
    """Chooses a member for a new flow: primaries first, backups only when no primary is usable.

    Built from a plan at Prepare, it shares the member and breaker objects of
    the running pool (their counts of open connections must carry over) but
    changes none of them until `activate()` at Commit: an apply that is
    aborted leaves the running pool exactly as it was.

    Slow start (plan.slow_start > 0, not for the hashing algorithms): a member
    that comes up (health down -> up, admin drain/maint -> enabled, or added to
    a pool that is already serving) ramps. The scheduler picks as usual; a
    ramping member it picks keeps the request with probability
    ramp_fraction(), otherwise the scheduler picks again without it. Its share
    grows with that fraction towards what its weight gives it, for every
    algorithm alike (measured shares in docs/health.md), and
    least_connections does not send a herd to a member that has no
    connections yet. Members present when the worker starts do not ramp.
    `pick` pays for this only while `_ramping` is true.
    """

    def __init__(self, plan: PoolPlan, previous: Optional["PoolRuntime"] = None,
                 clock=time.monotonic, rng=random.random):
        self.plan = plan
        self.name = plan.name
        self.slot = plan.slot
        self.hashing = plan.algorithm in ("maglev", "source_hash")    # picks by the flow's key
        self._clock = clock
        self._rng = rng
        old = {m.key: m for m in previous.members} if previous else {}
        self.members: list[MemberRuntime] = []
        self._updates: list[tuple[MemberRuntime, MemberPlan]] = []
        # members added to a pool already serving: they come up at activate()
        self._added: list[MemberRuntime] = []
        for mp in plan.members:
            m = old.get(mp.key)
            if m is None:
                m = MemberRuntime(plan.name, mp)
                if previous is not None:
                    self._added.append(m)
            else:
                self._updates.append((m, mp))
            self.members.append(m)
        self.by_key = {m.key: m for m in self.members}
        # None when the pool has no circuit_breaker: the L7 path then checks nothing
        self.breaker: Optional[Breaker] = None
        if plan.circuit_breaker is not None:
            old_b = previous.breaker if previous is not None else None
            self.breaker = old_b if old_b is not None else Breaker(plan.name)
        self._slow_start = plan.slow_start if plan.algorithm not in NO_SLOW_START else 0.0
        self._ramping = False
        self._ramp_end = 0.0
        self._rr_members = None
        self.rr = None
        self._active = previous is None
        if self._active:
            self.activate()

    def activate(self) -> None:
        """Commit: the shared member and breaker objects take this plan's values."""
        now = self._clock()
        for m, mp in self._updates:
            was = m.eligible
            m.update(mp)
            if not was:
                self._came_up(m, now)
        for m in self._added:
            self._came_up(m, now)
        self._updates = []
        self._added = []
        if self.breaker is not None:
            self.breaker.set_limits(self.plan.circuit_breaker)
        self._active = True
        self._rebuild()

    def _came_up(self, m: MemberRuntime, now: float) -> None:
        if self._slow_start and m.eligible:
            m.ramp_start = now

    def _rebuild(self) -> None:
        prim = [m for m in self.members if not m.backup]
        back = [m for m in self.members if m.backup]
        self._primary = make_scheduler(self.plan.algorithm, prim)
        self._backup = make_scheduler(self.plan.algorithm, back) if back else None
        # The common L7 case picked without the scheduler: round robin over the members that
        # may take flows when none has a connection limit. What makes a member eligible
        # (admin, health, weight) changes only through set_state and activate, which rebuild.
        self._rr_members = None
        if self.plan.algorithm == "round_robin" and all(m.max_connections is None for m in prim):
            elig = [m for m in prim if m.admin == "enabled" and m.health == "up" and m.weight > 0]
            if elig:
                self._rr_members = elig
        starts = [m.ramp_start for m in self.members if m.ramp_start]
        if not self._slow_start or not starts:
            self._end_ramp()
        else:
            self._ramping = True
            self._ramp_end = max(starts) + self._slow_start
            self._set_rr()

    def _end_ramp(self) -> None:
        for m in self.members:
            m.ramp_start = 0.0
        self._ramping = False
        self._set_rr()

    def _set_rr(self) -> None:
        # `rr`: the next member of that round robin, a C call (itertools.cycle) the compiled L7
        # proxy makes without entering pick(); None whenever pick must decide (slow start too)
        elig = self._rr_members
        self.rr = itertools.cycle(elig).__next__ if elig and not self._ramping else None

    def set_state(self, key: str, admin: Optional[str] = None, health: Optional[str] = None,
                  weight: Optional[int] = None) -> bool:
        m = self.by_key.get(key)
        if m is None:
            return False
        was = m.eligible
        if admin is not None:
            m.admin = admin
        if health is not None:
            m.health = health
        if weight is not None:
            m.weight = weight
        if not m.eligible:
            m.ramp_start = 0.0
        elif not was:
            self._came_up(m, self._clock())
        self._rebuild()
        return True

    def pick(self, key: Optional[bytes] = None, exclude: Iterable[MemberRuntime] = ()) -> Optional[MemberRuntime]:
        """The member for a new flow, or None when no member may take one (the caller answers 503 / refuses)."""
        rr = self.rr
        if rr is not None and not exclude:
            return rr()
        ex = tuple(exclude)
        sched = self._primary
        m = sched.pick(key, ex)
        if m is None and self._backup is not None:
            sched = self._backup
            m = sched.pick(key, ex)
        if self._ramping and m is not None and m.ramp_start:
            m = self._admit(sched, m, key, ex)
        return m

    def _admit(self, sched, m: MemberRuntime, key, ex: tuple) -> MemberRuntime:
        """Slow start: keep a ramping member's pick with the probability of its ramp, else pick again.

        When no other member may take the request, the ramping member takes it:
        a slow start never turns a request away nor sends it to a backup.
        """
        now = self._clock()
        if now >= self._ramp_end:
            self._end_ramp()
            return m
        first = m
        while m is not None and m.ramp_start:
            frac = ramp_fraction(now - m.ramp_start, self._slow_start)
            if frac >= 1.0:
                m.ramp_start = 0.0
                if not any(x.ramp_start for x in self.members):
                    # the last ramp ended here, not at _ramp_end: pick() would never call us again
                    self._end_ramp()
                return m
            if self._rng() < frac:
                return m
            ex = ex + (m,)
            m = sched.pick(key, ex)
        return first if m is None else m


class Listener(abc.ABC):
    """One VIP's data path in one worker, serving the listening socket the supervisor handed over.

    Connections capture the VipPlan current when they were accepted; `update`
    changes what new connections see, never an open one.
    """

    def __init__(self, ctx: "WorkerContextProto", vip: VipPlan, sock: socket.socket):
        self.ctx = ctx
        self.vip = vip
        self.sock = sock

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin serving the socket."""

    def update(self, vip: VipPlan) -> None:
        self.vip = vip

    @abc.abstractmethod
    def stop_accepting(self) -> None:
        """Stop taking new connections; leave the socket open (the supervisor owns it)."""

    @abc.abstractmethod
    def close_all(self) -> None:
        """End every open connection now (drain timeout reached, or VIP removed)."""

    @abc.abstractmethod
    def active(self) -> int:
        """Open client connections (TCP) or flows (UDP)."""

    def conns(self) -> list:
        """ConnInfo of every open connection, for `adcctl conn list`."""
        return []

    def kill(self, conn_id: str) -> bool:
        return False


class WorkerContextProto(abc.ABC):
    """What a listener may use from its worker (see adc.worker.WorkerContext)."""

    loop: asyncio.AbstractEventLoop
    counters: object          # adc._fastpath.counters.CounterRegion
    pools: dict[str, PoolRuntime]
    slot: int
