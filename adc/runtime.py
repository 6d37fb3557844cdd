"""adc.runtime: what a worker keeps alive between plans: pools, members, and the listener contract.

A Plan is plain data; the runtime wraps it with the state a data path needs
(schedulers, active connection counts). Runtime members are kept by key
across plans so counts and scheduler positions survive an apply.
"""
from __future__ import annotations

import abc
import asyncio
import socket
from typing import Iterable, Optional

from adc.config.plan import MemberPlan, PoolPlan, VipPlan
from adc.lb import make_scheduler


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


class PoolRuntime:
    """Chooses a member for a new flow: primaries first, backups only when no primary is usable."""

    def __init__(self, plan: PoolPlan, previous: Optional["PoolRuntime"] = None):
        self.plan = plan
        self.name = plan.name
        self.slot = plan.slot
        old = {m.key: m for m in previous.members} if previous else {}
        self.members: list[MemberRuntime] = []
        for mp in plan.members:
            m = old.get(mp.key)
            if m is None:
                m = MemberRuntime(plan.name, mp)
            else:
                m.update(mp)
            self.members.append(m)
        self.by_key = {m.key: m for m in self.members}
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
