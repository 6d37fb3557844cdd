"""adc.config.compile: a validated Config -> the Plan workers run, with stable counter slots.

Every VIP, pool and member owns a slot in the shared-memory counter region.
The same object keeps its slot across revisions (so its counters survive an
apply), and a slot freed by a removed object is reused only after every
never-used slot is gone, oldest-freed first: connections still finishing on
the old plan may write to a freed slot for a while, and late reuse keeps
those writes off new objects.

Slot keys: `vip:NAME`, `pool:NAME`, `member:POOL/KEY` (KEY as in
`127.0.0.1:9001` or `[::1]:9001`).
"""
from __future__ import annotations

import collections
import math
from typing import Iterable, Optional

from adc.config.plan import (
    AccessLogPlan,
    CircuitBreakerPlan,
    KeepalivePlan,
    MemberPlan,
    Plan,
    PoolPlan,
    RoutePlan,
    VipPlan,
    listener_key,
)
from adc.config.schema import Config, Pool, Route, Vip
from adc.l7.compile import http_plan, route_fields

ADMIN_STATES = ("enabled", "drain", "maint")
HEALTH_STATES = ("up", "down")


class SlotsExhausted(RuntimeError):
    """More VIPs + pools + members than counter slots."""


class SlotAllocator:
    """Stable slot index per object key, in 0..nslots-1."""

    def __init__(self, nslots: int = 4096, assigned: Optional[dict[str, int]] = None):
        if nslots < 1:
            raise ValueError("nslots must be at least 1")
        self.nslots = nslots
        self._by_key: dict[str, int] = {}
        self._next = 0                                   # lowest never-used slot
        self._free: collections.deque[int] = collections.deque()   # freed slots, oldest first
        if assigned:
            for key, n in assigned.items():
                if not 0 <= n < nslots or n in self._by_key.values():
                    raise ValueError(f"slot {n} of {key!r} is out of range or taken twice")
                self._by_key[key] = n
            self._next = max(assigned.values()) + 1
            used = set(assigned.values())
            self._free.extend(n for n in range(self._next) if n not in used)

    def slot(self, key: str) -> int:
        """The slot of key, assigning one if key is new."""
        n = self._by_key.get(key)
        if n is not None:
            return n
        if self._next < self.nslots:
            n = self._next
            self._next += 1
        elif self._free:
            n = self._free.popleft()
        else:
            raise SlotsExhausted(
                f"all {self.nslots} counter slots are in use (one per vip, pool and member); "
                f"cannot add {key!r}: adcd counts at most that many vips, pools and members together: remove some")
        self._by_key[key] = n
        return n

    def ensure(self, keys: Iterable[str]) -> None:
        """Assign slots to all keys, or to none of them if they do not all fit."""
        new = [k for k in dict.fromkeys(keys) if k not in self._by_key]
        room = self.nslots - self._next + len(self._free)
        if len(new) > room:
            raise SlotsExhausted(
                f"the config needs {len(new)} new counter slots but only {room} of {self.nslots} are free "
                f"(one per vip, pool and member); adcd counts at most that many vips, pools and members together: remove some")
        for k in new:
            self.slot(k)

    def retain(self, keys: Iterable[str]) -> list[int]:
        """Free the slots of every key not in keys; returns the freed slots (to zero their counters)."""
        keep = set(keys)
        freed = [n for k, n in self._by_key.items() if k not in keep]
        for k in [k for k in self._by_key if k not in keep]:
            del self._by_key[k]
        self._free.extend(sorted(freed))
        return sorted(freed)

    def copy(self) -> "SlotAllocator":
        """An independent allocator in the same state: compile a dry run without touching this one."""
        other = SlotAllocator(self.nslots)
        other._by_key = dict(self._by_key)
        other._next = self._next
        other._free = collections.deque(self._free)
        return other

    def get(self, key: str) -> Optional[int]:
        return self._by_key.get(key)

    def snapshot(self) -> dict[str, int]:
        """key -> slot, to persist and hand to SlotAllocator(assigned=...) after a restart."""
        return dict(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key


def vip_key(name: str) -> str:
    return f"vip:{name}"


def pool_key(name: str) -> str:
    return f"pool:{name}"


def member_key(pool: str, key: str) -> str:
    return f"member:{pool}/{key}"


def slot_keys(cfg: Config) -> list[str]:
    """Every counter slot key the config needs, in plan order."""
    keys = [vip_key(v.name) for v in cfg.vips]
    for p in cfg.pools:
        keys.append(pool_key(p.name))
        keys.extend(member_key(p.name, m.key) for m in p.members)
    return keys


def plan_keys(plan: Plan) -> set[str]:
    """The slot keys a plan uses: after a commit, `slots.retain(plan_keys(plan))`."""
    keys = {vip_key(v.name) for v in plan.vips}
    for p in plan.pools:
        keys.add(pool_key(p.name))
        keys.update(member_key(p.name, m.key) for m in p.members)
    return keys


def compile_plan(cfg: Config, revision: int, slots: SlotAllocator,
                 member_state: Optional[dict[tuple[str, str], dict]] = None) -> Plan:
    """The Plan for cfg. cfg must be validated (adc.config.loader); certificate paths absolute.

    member_state: (pool, member key) -> {admin?, health?, weight?}, runtime
    overrides that outlive an apply (operator drain/maint/weight, monitor
    verdicts); None values are ignored. Without an override a member's admin
    is its config `state`, its weight the config weight, its health "up"
    (the health checker marks members down). A pool without a monitor has
    nobody to mark members down, so its members are always "up".

    Slots are assigned here but never freed: free them once the plan is
    committed, with slots.retain(plan_keys(plan)), so an aborted apply leaves
    the running plan's slots alone.
    """
    member_state = member_state or {}
    slots.ensure(slot_keys(cfg))
    certs = {c.name: c for c in cfg.certificates}

    pools = []
    for p in cfg.pools:
        members = []
        for m in p.members:
            st = member_state.get((p.name, m.key)) or {}
            admin = st.get("admin") or m.state
            health = st.get("health") or "up"
            weight = st.get("weight")
            if admin not in ADMIN_STATES:
                raise ValueError(f"pool {p.name!r} member {m.key}: admin state {admin!r} is not one of "
                                 f"{', '.join(ADMIN_STATES)}")
            if health not in HEALTH_STATES:
                raise ValueError(f"pool {p.name!r} member {m.key}: health {health!r} is not up or down")
            members.append(MemberPlan(
                key=m.key, address=m.address, port=m.port,
                weight=m.weight if weight is None else int(weight),
                backup=m.backup, admin=admin,
                health=health if p.monitor is not None or p.monitors else "up",
                max_connections=m.max_connections,
                slot=slots.slot(member_key(p.name, m.key)),
            ))
        pools.append(PoolPlan(
            name=p.name, algorithm=p.algorithm, members=members, hash_key=p.hash_key,
            proxy_protocol=p.proxy_protocol, slow_start=p.slow_start, connect_timeout=p.connect_timeout,
            retries=p.retries, slot=slots.slot(pool_key(p.name)),
            circuit_breaker=_breaker(p),
        ))
        if p.tls is not None:
            from adc.tls.plan import upstream_tls_plan
            pools[-1].tls = upstream_tls_plan(p.tls)

    vips = []
    for v in cfg.vips:
        tls = None
        if v.tls is not None:
            from adc.tls.plan import tls_plan
            tls = tls_plan(v.tls, [(n, certs[n].cert, certs[n].key, certs[n].chain) for n in v.tls.certificates])
        vips.append(VipPlan(
            name=v.name, protocol=v.protocol, address=v.address, port=v.port,
            listener=listener_key(v.protocol, v.address, v.port),
            default_pool=v.default_pool,
            routes=[_route(v, i, r) for i, r in enumerate(v.routes)],
            tls=tls, max_connections=v.max_connections, idle_timeout=v.idle_timeout,
            limit_action=v.limit_action, max_queue=v.max_queue, queue_timeout=v.queue_timeout,
            tcp_nodelay=v.tcp_nodelay, tcp_keepalive=_keepalive(v),
            udp_flow_limit=v.udp_flow_limit, udp_one_shot=v.udp_one_shot,
            http=http_plan(v),
            slot=slots.slot(vip_key(v.name)),
        ))
        if v.tls is not None or v.https_redirect is not None or v.sni_routes:
            from adc.tls.plan import https_options
            https_options(v, vips[-1])

    g = cfg.global_
    access_log = AccessLogPlan(path=g.access_log.path, format=g.access_log.format) if g.access_log else None
    return Plan(revision=revision, vips=vips, pools=pools, drain_timeout=g.drain_timeout, access_log=access_log)


def _breaker(p: Pool) -> Optional[CircuitBreakerPlan]:
    """No plan when no limit is set: the data paths then skip the checks."""
    cb = p.circuit_breaker
    if cb is None or (cb.max_connections is None and cb.max_pending is None and cb.max_requests is None):
        return None
    return CircuitBreakerPlan(max_connections=cb.max_connections, max_pending=cb.max_pending,
                              max_requests=cb.max_requests)


def _keepalive(v: Vip) -> Optional[KeepalivePlan]:
    """The kernel counts keepalive time in whole seconds: a fraction rounds up."""
    ka = v.tcp_keepalive
    if ka is None:
        return None
    return KeepalivePlan(idle=math.ceil(ka.idle) if ka.idle else 0,
                         interval=math.ceil(ka.interval) if ka.interval else 0, count=ka.count or 0)


def route_name(i: int, r: Route) -> str:
    """A route's name, or `#N` (1-based) for an unnamed one; names cannot start with '#'."""
    return r.name or f"#{i + 1}"


def _route(v: Vip, i: int, r: Route) -> RoutePlan:
    m = r.match
    methods = None
    if m.method is not None:
        methods = [x.upper() for x in ([m.method] if isinstance(m.method, str) else m.method)]
    return RoutePlan(
        name=route_name(i, r), pool=r.pool,
        host=m.host.lower() if m.host else m.host,
        path=m.path, path_prefix=m.path_prefix, path_regex=m.path_regex,
        methods=methods,
        # header names are case-insensitive: the router compares them lower-cased
        headers={k.lower(): val for k, val in m.header.items()} if m.header is not None else None,
        query=dict(m.query) if m.query is not None else None,
        **route_fields(v, r),
    )
