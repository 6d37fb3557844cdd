"""adc.l4.fast: tcp and udp VIPs on the Cython engine (adc._fastpath.engine), behind the Listener contract.

One Engine per worker, shared by all its fast listeners: its epoll fd is a
reader in the worker's loop, so L4 and L7 run in one thread. This module only
translates: VipPlan -> engine VIP, PoolRuntime -> engine pool (member
addresses, weights, states, limits), engine connection table -> ConnInfo.

Member states reach the engine by a sync every SYNC_INTERVAL seconds that
compares each pool's members (admin, health, weight, ...) with what the
engine was last given, and on every `update` (apply). A drained or failed
member stops taking new flows; its open connections keep flowing.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import weakref
from typing import Optional

from adc.config.plan import VipPlan
from adc.control.messages import ConnInfo
from adc.runtime import Listener

logger = logging.getLogger("adc.l4.fast")

SYNC_INTERVAL = 0.1
UDP_IDLE_DEFAULT = 30.0
PROXY_VERSIONS = {None: 0, "v1": 1, "v2": 2}

_hosts: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def available() -> bool:
    """True when the engine extension is built (the worker falls back to adc.l4.tcp/udp otherwise)."""
    try:
        import adc._fastpath.engine  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve(address: str) -> tuple[int, bytes]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        # a name: resolved once, when the plan reaches the worker
        info = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)[0]
        ip = ipaddress.ip_address(info[4][0])
    if ip.version == 6:
        return socket.AF_INET6, ip.packed
    return socket.AF_INET, ip.packed


class EngineHost:
    """The worker's engine and the id maps between plan names and engine indices."""

    def __init__(self, ctx):
        from adc._fastpath.counters import CounterRegion
        from adc._fastpath.engine import Engine
        self.ctx = ctx
        counters = ctx.counters if isinstance(ctx.counters, CounterRegion) else None
        self.engine = Engine(counters)
        self.listeners: set = set()
        self._vids = list(range(1023, -1, -1))
        self._pids: dict[str, int] = {}           # pool name -> engine pool id
        self._mids: dict[tuple, int] = {}         # (pool, member key) -> engine member id
        self._mnames: dict[int, str] = {}         # engine member id -> "pool/key"
        self._addr: dict[int, tuple] = {}
        self._sig: dict[str, tuple] = {}
        self._eligible: dict[int, bool] = {}    # engine member id -> eligible at the last sync
        self._ramp: dict[int, float] = {}       # engine member id -> when it came up (slow start)
        self._sync_handle = None
        ctx.loop.add_reader(self.engine.fileno(), self.engine.run)
        self._schedule_sync()

    @classmethod
    def of(cls, ctx) -> "EngineHost":
        host = _hosts.get(ctx)
        if host is None:
            host = _hosts[ctx] = cls(ctx)
        return host

    # ---------------------------------------------------------------- ids
    def vid_alloc(self) -> int:
        if not self._vids:
            raise RuntimeError("fast path: too many VIPs in one worker (1024)")
        return self._vids.pop()

    def vid_free(self, vid: int) -> None:
        self._vids.append(vid)

    def pool_id(self, name: Optional[str]) -> int:
        """Engine pool id for a pool name, pushing the pool now if it is new; -1: no such pool."""
        if name is None:
            return -1
        pid = self._pids.get(name)
        if pid is None:
            pid = self._pids[name] = len(self._pids)
        self.sync_pool(name)
        return pid

    def member_id(self, pool: str, m) -> int:
        k = (pool, m.key)
        mid = self._mids.get(k)
        if mid is None:
            mid = self._mids[k] = len(self._mids)
            self._mnames[mid] = f"{pool}/{m.key}"
        addr = (m.address, m.port, m.slot)
        if self._addr.get(mid) != addr:
            fam, packed = _resolve(m.address)
            self.engine.set_member(mid, fam, packed, m.port, m.slot)
            self._addr[mid] = addr
        return mid

    def member_name(self, mid: int) -> str:
        return self._mnames.get(mid, "-")

    # --------------------------------------------------------------- sync
    def sync_pool(self, name: str) -> None:
        pid = self._pids.get(name)
        if pid is None:
            return
        pool = self.ctx.pools.get(name)
        if pool is None:
            if self._sig.pop(name, None) is not None:
                self.engine.remove_pool(pid)
            return
        p = pool.plan
        now = self.ctx.loop.time()
        weights = [self._weight(name, m, p.slow_start, now) for m in pool.members]
        cb_max = (p.circuit_breaker.max_connections or 0) if p.circuit_breaker is not None else 0
        sig = (id(pool), p.algorithm, p.hash_key, p.proxy_protocol, p.connect_timeout, p.retries, p.slot, cb_max,
               tuple((m.key, m.address, m.port, w, m.backup, m.admin, m.health, m.max_connections,
                      m.slot) for m, w in zip(pool.members, weights)))
        if self._sig.get(name) == sig:
            return
        members = []
        for m, w in zip(pool.members, weights):
            eligible = m.admin == "enabled" and m.health == "up" and m.weight > 0
            members.append((self.member_id(name, m), w, m.max_connections or 0, eligible,
                            m.backup, m.key))
        self.engine.set_pool(pid, p.algorithm, members, five_tuple=p.hash_key == "five_tuple",
                             proxy=PROXY_VERSIONS.get(p.proxy_protocol, 0),
                             connect_timeout=p.connect_timeout, retries=p.retries, slot=p.slot,
                             max_conn=cb_max)
        self._sig[name] = sig

    def _weight(self, pool: str, m, slow_start: float, now: float) -> int:
        """The weight the engine gets: during slow start, a tenth of it more every slow_start/10 seconds.

        A member ramps when it becomes eligible again (up from down, enabled from drain or
        maint), not when the worker starts: at start every member is new and none is favoured.
        """
        mid = self.member_id(pool, m)
        eligible = m.admin == "enabled" and m.health == "up" and m.weight > 0
        was = self._eligible.get(mid)
        self._eligible[mid] = eligible
        if not eligible:
            self._ramp.pop(mid, None)
            return m.weight
        if was is False and slow_start > 0:
            self._ramp[mid] = now
        start = self._ramp.get(mid)
        if start is None:
            return m.weight
        frac = (now - start) / slow_start
        if frac >= 1.0:
            del self._ramp[mid]
            return m.weight
        return max(1, m.weight * (int(frac * 10) + 1) // 10)

    def sync(self) -> None:
        for name in list(self._pids):
            try:
                self.sync_pool(name)
            except Exception:
                logger.exception("fast path: pool %s: could not push to the engine", name)

    def _schedule_sync(self) -> None:
        def tick():
            self.sync()
            self._schedule_sync()
        self._sync_handle = self.ctx.loop.call_later(SYNC_INTERVAL, tick)

    def close(self) -> None:
        if self._sync_handle is not None:
            self._sync_handle.cancel()
        self.ctx.loop.remove_reader(self.engine.fileno())
        self.engine.close()
        _hosts.pop(self.ctx, None)


class _FastListener(Listener):
    kind = "tcp"

    def __init__(self, ctx, vip: VipPlan, sock: socket.socket):
        super().__init__(ctx, vip, sock)
        self.host: Optional[EngineHost] = None
        self.vid = -1
        self._sock: Optional[socket.socket] = None

    def _params(self, vip: VipPlan) -> dict:
        raise NotImplementedError

    async def start(self) -> None:
        self.host = EngineHost.of(self.ctx)
        # the engine serves a copy: the supervisor's socket stays open whatever happens here
        self._sock = socket.socket(fileno=os.dup(self.sock.fileno()))
        self._sock.setblocking(False)
        self.vid = self.host.vid_alloc()
        self.host.engine.add_vip(self.vid, self._sock.fileno(), self.kind, **self._params(self.vip))
        self.host.listeners.add(self)

    def update(self, vip: VipPlan) -> None:
        self.vip = vip
        if self.host is not None and self.vid >= 0:
            self.host.engine.update_vip(self.vid, **self._params(vip))

    def stop_accepting(self) -> None:
        if self.host is not None and self.vid >= 0:
            self.host.engine.stop_vip(self.vid)
            if self.kind == "tcp" and self._sock is not None:
                # our copy must not keep the port listening once the supervisor closes its own;
                # open connections never use the listening socket (UDP flows still reply through theirs)
                self._sock.close()
                self._sock = None

    def close_all(self) -> None:
        if self.host is None or self.vid < 0:
            return
        self.host.engine.close_vip(self.vid)
        if self._stopped():
            # retired for good: give the id back and drop our copy of the socket
            self.host.engine.remove_vip(self.vid)
            self.host.vid_free(self.vid)
            self.host.listeners.discard(self)
            self.vid = -1
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _stopped(self) -> bool:
        return self.host.engine.vip_accepting(self.vid) == 0

    def active(self) -> int:
        if self.host is None or self.vid < 0:
            return 0
        return self.host.engine.vip_active(self.vid)

    def conns(self) -> list:
        if self.host is None or self.vid < 0:
            return []
        out = []
        for (cid, _vid, proto, fam, ip, port, mid, state, age, bin_, bout) in self.host.engine.conn_list(self.vid):
            addr = socket.inet_ntop(fam, ip)
            client = f"[{addr}]:{port}" if fam == socket.AF_INET6 else f"{addr}:{port}"
            out.append(ConnInfo(id=f"{self.ctx.slot}-f{cid}", vip=self.vip.name, protocol=proto,
                                client=client, member=self.host.member_name(mid), state=state,
                                age=round(age, 3), bytes_in=bin_, bytes_out=bout))
        return out

    def kill(self, conn_id: str) -> bool:
        if self.host is None or self.vid < 0:
            return False
        prefix = f"{self.ctx.slot}-f"
        if not conn_id.startswith(prefix) or not conn_id[len(prefix):].isdigit():
            return False
        cid = int(conn_id[len(prefix):])
        if not any(c[0] == cid for c in self.host.engine.conn_list(self.vid)):
            return False
        return self.host.engine.kill(cid)


class FastTcpListener(_FastListener):
    """A tcp VIP spliced by the engine: connect with timeout and retry, PROXY header, idle timeout,
    limits with a queue, TCP_NODELAY and keepalive."""

    kind = "tcp"

    def _params(self, vip: VipPlan) -> dict:
        ka = vip.tcp_keepalive
        return dict(pool=self.host.pool_id(vip.default_pool), slot=vip.slot,
                    max_conn=vip.max_connections or 0, idle_timeout=vip.idle_timeout or 0.0,
                    queue=vip.limit_action == "queue", max_queue=vip.max_queue,
                    queue_timeout=vip.queue_timeout, nodelay=vip.tcp_nodelay, keepalive=ka is not None,
                    keepalive_idle=ka.idle if ka else 0, keepalive_interval=ka.interval if ka else 0,
                    keepalive_count=ka.count if ka else 0)


class FastUdpListener(_FastListener):
    """A udp VIP: one flow per client address, replies from the VIP address, idle timeout, one-shot."""

    kind = "udp"

    def _params(self, vip: VipPlan) -> dict:
        return dict(pool=self.host.pool_id(vip.default_pool), slot=vip.slot,
                    max_conn=vip.udp_flow_limit, idle_timeout=vip.idle_timeout or UDP_IDLE_DEFAULT,
                    one_shot=vip.udp_one_shot)
