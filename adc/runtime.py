"""adc.runtime: what a worker keeps alive between plans: pools, members, and the listener contract.

A Plan is plain data; the runtime wraps it with the state a data path needs
(schedulers, active connection counts). Runtime members are kept by key
across plans so counts and scheduler positions survive an apply.
"""
from __future__ import annotations

import abc
import asyncio
import logging
import socket
import time
from typing import Iterable, Optional

from adc.config.plan import MemberPlan, PoolPlan, VipPlan
from adc.lb import make_scheduler

logger = logging.getLogger("adc.pool")


class MemberRuntime:
    __slots__ = ("pool", "key", "address", "port", "weight", "backup", "admin", "health",
                 "max_connections", "slot", "active", "up_since")

    def __init__(self, pool: str, plan: MemberPlan):
        self.pool = pool
        self.active = 0          # connections/requests this worker has open to the member
        self.up_since = 0.0
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


class PoolRuntime:
    """Chooses a member for a new flow: primaries first, backups only when no primary is usable.

    Built from a plan at Prepare, it shares the member and breaker objects of
    the running pool (their counts of open connections must carry over) but
    changes none of them until `activate()` at Commit: an apply that is
    aborted leaves the running pool exactly as it was.
    """

    def __init__(self, plan: PoolPlan, previous: Optional["PoolRuntime"] = None):
        self.plan = plan
        self.name = plan.name
        self.slot = plan.slot
        old = {m.key: m for m in previous.members} if previous else {}
        self.members: list[MemberRuntime] = []
        self._updates: list[tuple[MemberRuntime, MemberPlan]] = []
        for mp in plan.members:
            m = old.get(mp.key)
            if m is None:
                m = MemberRuntime(plan.name, mp)
            else:
                self._updates.append((m, mp))
            self.members.append(m)
        self.by_key = {m.key: m for m in self.members}
        # None when the pool has no circuit_breaker: the L7 path then checks nothing
        self.breaker: Optional[Breaker] = None
        if plan.circuit_breaker is not None:
            old_b = previous.breaker if previous is not None else None
            self.breaker = old_b if old_b is not None else Breaker(plan.name)
        self._active = previous is None
        if self._active:
            self.activate()

    def activate(self) -> None:
        """Commit: the shared member and breaker objects take this plan's values."""
        for m, mp in self._updates:
            m.update(mp)
        self._updates = []
        if self.breaker is not None:
            self.breaker.set_limits(self.plan.circuit_breaker)
        self._active = True
        self._rebuild()

    def _rebuild(self) -> None:
        prim = [m for m in self.members if not m.backup]
        back = [m for m in self.members if m.backup]
        self._primary = make_scheduler(self.plan.algorithm, prim)
        self._backup = make_scheduler(self.plan.algorithm, back) if back else None

    def set_state(self, key: str, admin: Optional[str] = None, health: Optional[str] = None,
                  weight: Optional[int] = None) -> bool:
        m = self.by_key.get(key)
        if m is None:
            return False
        if admin is not None:
            m.admin = admin
        if health is not None:
            m.health = health
        if weight is not None:
            m.weight = weight
        self._rebuild()
        return True

    def pick(self, key: Optional[bytes] = None, exclude: Iterable[MemberRuntime] = ()) -> Optional[MemberRuntime]:
        """The member for a new flow, or None when no member may take one (the caller answers 503 / refuses)."""
        ex = tuple(exclude)
        m = self._primary.pick(key, ex)
        if m is None and self._backup is not None:
            m = self._backup.pick(key, ex)
        return m


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
