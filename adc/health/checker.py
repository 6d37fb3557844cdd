"""adc.health.checker: runs the active checks in the supervisor's loop and reports each verdict change.

One check runs per (monitor settings, address, port): members of several
pools with the same monitor are checked once and every pool hears the
verdict. Each check is one asyncio task that probes, feeds the result to its
state machine (adc.health.states) and sleeps until its next turn, start to
start, so a slow member never stretches the interval. First checks are spread
over one interval so a thousand members do not all connect in the same
millisecond; `jitter` moves every later check by up to +/- jitter.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from typing import Callable, Optional

from adc.config.schema import Config, Monitor, format_duration
from adc.log import NOTICE

from . import states
from .dns import DnsProbe
from .http import HttpProbe
from .probe import Outcome, Target, describe
from .tcp import TcpProbe
from .tls import TlsProbe
from .udp import UdpProbe

logger = logging.getLogger("adc.health")

PROBES = {"tcp": TcpProbe, "http": HttpProbe, "https": HttpProbe, "tls": TlsProbe, "udp": UdpProbe,
          "dns": DnsProbe}
HISTORY = 10          # checks kept per target for `adcctl member show`
OWN_TIMEOUT_GRACE = 0.25   # UDP and DNS probes time out themselves; this only backs them up

Report = Callable[[str, str, str], None]
CheckKey = tuple[str, str, int]       # (monitor settings, address, port)


def target_of(mon: Monitor, member) -> Target:
    """Where a member is checked: its monitor_address/monitor_port, else the monitor's port, else its own."""
    return Target(member.monitor_address or member.address, member.monitor_port or mon.port or member.port)


def settings_key(mon: Monitor) -> str:
    """Two monitors that differ only by name check the same thing."""
    return mon.model_dump_json(exclude={"name"})


def _addr(t: Target) -> str:
    return f"[{t.address}]:{t.port}" if ":" in t.address else f"{t.address}:{t.port}"


class Check:
    __slots__ = ("key", "mon", "target", "probe", "health", "members", "history", "checks", "failures",
                 "task", "last_change", "reason", "timeout")

    def __init__(self, key: CheckKey, mon: Monitor, target: Target, health: states.Health):
        self.key = key
        self.mon = mon
        self.target = target
        self.probe = PROBES[mon.type](mon)
        self.timeout = mon.timeout + (OWN_TIMEOUT_GRACE if getattr(self.probe, "own_timeout", False) else 0.0)
        self.health = health
        self.members: list[tuple[str, str]] = []      # (pool, member key) told about this check's verdicts
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self.checks = 0
        self.failures = 0
        self.task: Optional[asyncio.Task] = None
        self.last_change: Optional[float] = None
        self.reason = ""


class HealthChecker:
    """configure(cfg) after every apply; history(pool, key) for the API; await stop() on shutdown."""

    def __init__(self, report: Report, *, rng: Optional[random.Random] = None):
        self.report = report
        self.rng = rng or random.Random()
        self.checks: dict[CheckKey, Check] = {}
        self.by_member: dict[tuple[str, str], Check] = {}

    # ------------------------------------------------------------ configure
    def configure(self, cfg: Config) -> None:
        """Run the checks cfg asks for: keep unchanged ones (and their counts), start new ones, stop removed ones."""
        monitors = {m.name: m for m in cfg.monitors}
        wanted: dict[CheckKey, tuple[Monitor, Target, list[tuple[str, str]]]] = {}
        for p in cfg.pools:
            mon = monitors.get(p.monitor) if p.monitor else None
            if mon is None:
                continue
            skey = settings_key(mon)
            for mb in p.members:
                t = target_of(mon, mb)
                entry = wanted.setdefault((skey, t.address, t.port), (mon, t, []))
                entry[2].append((p.name, mb.key))

        previous = self.by_member
        for key in [k for k in self.checks if k not in wanted]:
            c = self.checks.pop(key)
            if c.task is not None:
                c.task.cancel()
        started = 0
        for key, (mon, target, members) in wanted.items():
            c = self.checks.get(key)
            if c is None:
                c = Check(key, mon, target, states.Health(mon.rise, mon.fall, self._inherit(previous, members)))
                self.checks[key] = c
                c.task = asyncio.get_running_loop().create_task(self._run(c), name=f"health {_addr(target)}")
                started += 1
            else:
                c.mon = mon        # only the name can differ
                if c.health.state != states.UNKNOWN:
                    for pk in members:
                        if pk not in c.members:   # a pool newly sharing this check hears its verdict now
                            self._report(pk, c.health.traffic)
            c.members = members
        self.by_member = {pk: c for c in self.checks.values() for pk in c.members}
        if started or len(self.checks) != len(wanted):
            logger.debug("health: %d checks running (%d new)", len(self.checks), started)

    @staticmethod
    def _inherit(previous: dict, members: list) -> str:
        """A member whose monitor settings changed keeps its verdict (UP or DOWN), so the new
        monitor moves it with its own rise/fall rather than on its first check."""
        for pk in members:
            old = previous.get(pk)
            if old is not None and old.health.state != states.UNKNOWN:
                return states.UP if old.health.traffic == "up" else states.DOWN
        return states.UNKNOWN

    # ----------------------------------------------------------------- run
    async def _run(self, c: Check) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.rng.uniform(0, c.mon.interval))
        while True:
            began = loop.time()
            await self.check_once(c)
            j = c.mon.jitter
            wait = c.mon.interval + (self.rng.uniform(-j, j) if j else 0.0) - (loop.time() - began)
            await asyncio.sleep(max(wait, 0.01))

    async def check_once(self, c: Check) -> Outcome:
        began = time.perf_counter()     # uvloop's loop.time() has millisecond steps
        try:
            async with asyncio.timeout(c.timeout):
                out = await c.probe(c.target)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            out = Outcome(False, f"timeout after {format_duration(c.mon.timeout)}")
        except Exception as e:     # one odd member must never stop the checker
            out = Outcome(False, describe(e, c.mon.timeout))
        latency = (time.perf_counter() - began) * 1000.0
        c.checks += 1
        if not out.ok:
            c.failures += 1
        c.history.append({"time": round(time.time(), 3), "ok": out.ok, "latency_ms": round(latency, 2),
                          "detail": out.detail})
        t = c.health.feed(out.ok)
        if t is not None:
            self._transition(c, t, out)
        return out

    def _transition(self, c: Check, t: states.Transition, out: Outcome) -> None:
        c.last_change = time.time()
        c.reason = out.detail
        if t.first:
            why = f"first check {'passed' if out.ok else 'failed'}"
        else:
            why = f"after {t.count} {'passed' if out.ok else 'failed'} check{'s' if t.count != 1 else ''}"
        for pool, key in c.members:
            if t.after == "down":
                logger.warning("member %s/%s DOWN %s: %s", pool, key, why, out.detail)
            elif t.first:
                logger.debug("member %s/%s UP %s: %s", pool, key, why, out.detail)
            else:
                logger.log(NOTICE, "member %s/%s UP %s: %s", pool, key, why, out.detail)
            self._report((pool, key), t.after)

    def _report(self, pk: tuple[str, str], health: str) -> None:
        try:
            self.report(pk[0], pk[1], health)
        except Exception:
            logger.exception("health: reporting %s/%s %s failed", pk[0], pk[1], health)

    # -------------------------------------------------------------- views
    def history(self, pool: str, key: str) -> list[dict]:
        """The last checks of the member in that pool, newest first (empty without a monitor)."""
        c = self.by_member.get((pool, key))
        return list(reversed(c.history)) if c is not None else []

    def status(self, pool: str, key: str) -> Optional[dict]:
        """The monitor's view of one member: what is checked, its state machine, its counts."""
        c = self.by_member.get((pool, key))
        if c is None:
            return None
        return {"monitor": c.mon.name, "type": c.mon.type, "target": _addr(c.target),
                "health": c.health.state, "checks": c.checks, "failures": c.failures,
                "went_down": c.health.downs, "went_up": c.health.ups,
                "last_change": c.last_change, "reason": c.reason}

    async def stop(self) -> None:
        tasks = [c.task for c in self.checks.values() if c.task is not None]
        self.checks.clear()
        self.by_member = {}
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
