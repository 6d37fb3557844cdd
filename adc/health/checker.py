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

from . import outlier, states
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
                 "task", "last_change", "reason", "timeout", "expired")

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


class MemberView:
    """One member of one pool: the checks that judge it and the verdict last reported for it."""

    __slots__ = ("pool", "key", "checks", "required", "verdict", "reported", "outlier")

    def __init__(self, pool: str, key: str, checks: list, required: int):
        self.pool = pool
        self.key = key
        self.checks = checks
        self.required = required          # checks that must say up
        self.verdict: Optional[str] = None   # "up" / "down" as the checks say; None before the first
        self.reported: Optional[str] = None  # what the data path was told (differs under fail-open)
        self.outlier: Optional[outlier.MemberOutlier] = None   # passive health, when the pool asks for it

    def ups(self) -> int:
        return sum(1 for c in self.checks if c.health.traffic == "up")

    def decide(self) -> str:
        if self.outlier is not None and self.outlier.until:
            return "down"
        return "up" if self.ups() >= self.required else "down"


def required_of(p, n: int) -> int:
    r = p.monitors_required if hasattr(p, "monitors_required") else "all"
    return n if r == "all" else 1 if r == "any" else min(int(r), n)


def monitor_names(p) -> list[str]:
    names = [p.monitor] if p.monitor else []
    for n in getattr(p, "monitors", None) or ():
        if n not in names:
            names.append(n)
    return names


class HealthChecker:
    """configure(cfg) after every apply; history(pool, key) for the API; await stop() on shutdown."""

    def __init__(self, report: Report, *, counters: Optional[outlier.ReadCounters] = None,
                 rng: Optional[random.Random] = None):
        self.report = report
        self.read_counters = counters      # (pool, member key) -> that member's summed counters
        self.rng = rng or random.Random()
        self.checks: dict[CheckKey, Check] = {}
        self.members: dict[tuple[str, str], MemberView] = {}
        self.detectors: dict[str, tuple[str, asyncio.Task]] = {}   # pool -> (settings, polling task)
        self.by_pool: dict[str, list[MemberView]] = {}
        self.fail_open: set[str] = set()       # pools that send to all members when none is up
        self.failed_open: set[str] = set()     # pools doing so now
        self.l7_pools: set[str] = set()
        self.retry_5xx_pools: set[str] = set()

    # ------------------------------------------------------------ configure
    def configure(self, cfg: Config) -> None:
        """Run the checks cfg asks for: keep unchanged ones (and their counts), start new ones, stop removed ones."""
        monitors = {m.name: m for m in cfg.monitors}
        wanted: dict[CheckKey, tuple[Monitor, Target, list[tuple[str, str]]]] = {}
        views: dict[tuple[str, str], tuple[list[CheckKey], str]] = {}
        passive = {}
        for p in cfg.pools:
            mons = [monitors[n] for n in monitor_names(p) if n in monitors]
            od = getattr(p, "outlier_detection", None)
            if od is not None and self.read_counters is not None:
                passive[p.name] = od
            if not mons and p.name not in passive:
                continue
            for mb in p.members:
                pk = (p.name, mb.key)
                keys: list[CheckKey] = []
                for mon in mons:
                    t = target_of(mon, mb)
                    ck = (settings_key(mon), t.address, t.port)
                    if ck in keys:
                        continue        # two monitors that differ only by name
                    keys.append(ck)
                    wanted.setdefault(ck, (mon, t, []))[2].append(pk)
                views[pk] = (keys, p)

        previous = self.members
        for key in [k for k in self.checks if k not in wanted]:
            c = self.checks.pop(key)
            if c.task is not None:
                c.task.cancel()
            _close(c)
        started = 0
        for key, (mon, target, members) in wanted.items():
            c = self.checks.get(key)
            if c is None:
                c = Check(key, mon, target, states.Health(mon.rise, mon.fall, self._inherit(previous, members, mon)))
                self.checks[key] = c
                c.task = asyncio.get_running_loop().create_task(self._run(c), name=f"health {_addr(target)}")
                started += 1
            else:
                c.mon = mon        # only the name can differ
            c.members = members

        self.members = {}
        for pk, (keys, p) in views.items():
            v = MemberView(pk[0], pk[1], [self.checks[k] for k in keys], required_of(p, len(keys)))
            old = previous.get(pk)
            if old is not None:
                v.verdict, v.reported = old.verdict, old.reported
            if pk[0] in passive:
                v.outlier = old.outlier if old is not None and old.outlier is not None else outlier.MemberOutlier()
            elif old is not None and old.outlier is not None and old.outlier.timer is not None:
                old.outlier.timer.cancel()
            self.members[pk] = v
            if v.reported == "down" and not v.checks:
                # an apply compiles the members of a pool without a monitor "up": keep an ejection in force
                self._report(pk, "down")
            if any(c.health.state != states.UNKNOWN for c in v.checks):
                # a pool newly sharing a running check, or a changed requirement: say so now
                now = v.decide()
                if now != v.verdict:
                    if now == "down":
                        reasons = "; ".join(c.reason for c in v.checks if c.health.traffic == "down" and c.reason)
                        logger.warning("member %s/%s DOWN: its checks already fail%s", pk[0], pk[1],
                                       f": {reasons}" if reasons else "")
                    v.verdict = now
        self.by_pool = {}
        for v in self.members.values():
            self.by_pool.setdefault(v.pool, []).append(v)
        self.fail_open = {p.name for p in cfg.pools if getattr(p, "fail_open", False)}
        for pool in self.by_pool:
            self._publish(pool)
        self._configure_detectors(cfg, passive)
        if started or len(self.checks) != len(wanted):
            logger.debug("health: %d checks running (%d new)", len(self.checks), started)

    @staticmethod
    def _inherit(previous: dict, members: list, mon: Monitor) -> str:
        """A member whose monitor settings changed keeps its verdict (UP or DOWN), so the new
        monitor moves it with its own rise/fall rather than on its first check."""
        for pk in members:
            old = previous.get(pk)
            if old is None:
                continue
            for c in old.checks:
                if c.mon.name == mon.name and c.health.state != states.UNKNOWN:
                    return states.UP if c.health.traffic == "up" else states.DOWN
        return states.UNKNOWN

    # ------------------------------------------------------- passive health
    def _configure_detectors(self, cfg: Config, passive: dict) -> None:
        self.l7_pools = set()
        # pools where a retried 5xx is counted in errors too (adc.health.outlier: never twice)
        self.retry_5xx_pools = set()
        for v in cfg.vips:
            if v.protocol in ("http", "https"):
                pools = {x for x in [v.default_pool] + [r.pool for r in v.routes] if x}
                pools.update(sp.pool for r in v.routes for sp in (r.split or []))
                self.l7_pools.update(pools)
                if v.http is not None and any(r != "connect" for r in v.http.retry_on):
                    self.retry_5xx_pools.update(pools)
        for name in list(self.detectors):
            wanted = passive.get(name)
            if wanted is None or wanted.model_dump_json() != self.detectors[name][0]:
                self.detectors.pop(name)[1].cancel()
        loop = asyncio.get_running_loop()
        for name, od in passive.items():
            if name not in self.detectors:
                self.detectors[name] = (od.model_dump_json(),
                                        loop.create_task(self._detect(name, od), name=f"outlier {name}"))

    async def _detect(self, pool: str, od) -> None:
        while True:
            await asyncio.sleep(od.interval)
            try:
                self.detect_once(pool, od)
            except Exception:
                logger.exception("outlier detection for pool %s failed", pool)

    def detect_once(self, pool: str, od) -> None:
        views = [v for v in self.by_pool.get(pool, ()) if v.outlier is not None]
        l7 = pool in self.l7_pools
        retries_5xx = pool in self.retry_5xx_pools
        now = outlier.monotonic()
        for v in views:
            try:
                reading = self.read_counters(v.pool, v.key)
            except LookupError:
                continue
            before = (v.outlier.streak, v.outlier.streak_5xx)
            why = outlier.poll(od, v.outlier, reading, l7, now, retries_5xx)
            if why is None:
                continue
            ejected = sum(1 for x in views if x.outlier.until)
            if not outlier.may_eject(od, len(views), ejected):
                streak, limit, was = ((v.outlier.streak, od.consecutive_errors, before[0]) if why == outlier.ERRORS
                                      else (v.outlier.streak_5xx, od.consecutive_5xx, before[1]))
                if was < limit:    # say it once per streak
                    logger.warning("member %s/%s not ejected after %d %s: %d of %d members already are "
                                   "(max_ejected_percent %d)", v.pool, v.key, streak, why, ejected,
                                   len(views), od.max_ejected_percent)
                continue
            self._eject(v, od, now, why)

    def _eject(self, v: MemberView, od, now: float, why: str = outlier.ERRORS) -> None:
        o = v.outlier
        o.ejections += 1
        took = outlier.ejection_time(od, o.ejections)
        o.until = now + took
        failures = o.streak if why == outlier.ERRORS else o.streak_5xx
        o.streak = o.streak_5xx = 0
        logger.warning("member %s/%s EJECTED for %s after %d %s (passive health, ejection %d)",
                       v.pool, v.key, format_duration(took), failures, why, o.ejections)
        o.timer = asyncio.get_running_loop().call_later(took, self._return, v, took)
        self._decide(v)

    def _return(self, v: MemberView, took: float) -> None:
        o = v.outlier
        o.until = 0.0
        o.timer = None
        o.clean_since = outlier.monotonic()
        o.last = None         # counters moved while it was out: start from a fresh reading
        if self.members.get((v.pool, v.key)) is not v:
            return
        logger.log(NOTICE, "member %s/%s back from ejection after %s", v.pool, v.key, format_duration(took))
        self._decide(v)

    def _decide(self, v: MemberView) -> None:
        now = v.decide()
        if now != v.verdict:
            v.verdict = now
            self._publish(v.pool)

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
        # a bare timer rather than asyncio.timeout(): a seventh of an HTTP check's CPU with 1000 members
        task = asyncio.current_task()
        c.expired = False
        timer = asyncio.get_running_loop().call_later(c.timeout, _expire, c, task)
        try:
            out = await c.probe(c.target)
        except asyncio.CancelledError:
            if not c.expired or task.uncancel() > 0:
                raise                  # cancelled from outside (stop, apply), not by our timer
            out = Outcome(False, f"timeout after {format_duration(c.mon.timeout)}")
        except Exception as e:     # one odd member must never stop the checker
            out = Outcome(False, describe(e, c.mon.timeout))
        finally:
            timer.cancel()
        latency = (time.perf_counter() - began) * 1000.0
        c.checks += 1
        if not out.ok:
            c.failures += 1
        c.history.append({"time": round(time.time(), 3), "ok": out.ok, "latency_ms": round(latency, 2),
                          "detail": out.detail, "monitor": c.mon.name})
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
        for pk in c.members:
            v = self.members.get(pk)
            if v is None:
                continue
            now = v.decide()
            several = len(v.checks) > 1
            tail = f" (monitor {c.mon.name}; {v.ups()} of {len(v.checks)} up, {v.required} required)" if several else ""
            if now == v.verdict:
                if several and not t.first:
                    logger.info("member %s/%s monitor %s %s %s: %s (%d of %d up, %d required: stays %s)",
                                pk[0], pk[1], c.mon.name, t.after, why, out.detail, v.ups(), len(v.checks),
                                v.required, now)
                continue
            if now == "down":
                logger.warning("member %s/%s DOWN %s: %s%s", pk[0], pk[1], why, out.detail, tail)
            elif v.verdict is None:
                logger.debug("member %s/%s UP %s: %s%s", pk[0], pk[1], why, out.detail, tail)
            else:
                logger.log(NOTICE, "member %s/%s UP %s: %s%s", pk[0], pk[1], why, out.detail, tail)
            v.verdict = now
            self._publish(pk[0])

    def _publish(self, pool: str) -> None:
        """Tell the data path each member's verdict; under fail-open, when no member of the pool
        is up, every member is reported up so traffic is spread over all of them."""
        views = self.by_pool.get(pool, ())
        opened = (pool in self.fail_open and bool(views) and all(v.verdict == "down" for v in views))
        if opened and pool not in self.failed_open:
            self.failed_open.add(pool)
            logger.warning("pool %s: no member is up; fail-open sends traffic to all %d members", pool, len(views))
        elif not opened and pool in self.failed_open:
            self.failed_open.discard(pool)
            logger.log(NOTICE, "pool %s: a member is up again; fail-open ends", pool)
        for v in views:
            want = "up" if opened else v.verdict
            if want is not None and want != v.reported:
                v.reported = want
                self._report((v.pool, v.key), want)

    def _report(self, pk: tuple[str, str], health: str) -> None:
        try:
            self.report(pk[0], pk[1], health)
        except Exception:
            logger.exception("health: reporting %s/%s %s failed", pk[0], pk[1], health)

    # -------------------------------------------------------------- views
    def history(self, pool: str, key: str) -> list[dict]:
        """The last checks of the member in that pool, newest first (empty without a monitor)."""
        v = self.members.get((pool, key))
        if v is None:
            return []
        if len(v.checks) == 1:
            return list(reversed(v.checks[0].history))
        merged = sorted((h for c in v.checks for h in c.history), key=lambda h: h["time"], reverse=True)
        return merged[:HISTORY]

    def status(self, pool: str, key: str) -> Optional[dict]:
        """The monitors' view of one member: what is checked, the state machine, the counts."""
        v = self.members.get((pool, key))
        if v is None:
            return None
        if len(v.checks) == 1:
            out = _check_status(v.checks[0])
        else:
            out = {"health": v.verdict or "unknown", "required": v.required, "up": v.ups(),
                   "monitors": [_check_status(c) for c in v.checks]}
        if v.pool in self.failed_open:
            out["fail_open"] = True      # reported up although its checks fail: no member of the pool is up
        if v.outlier is not None:
            out["ejected"] = bool(v.outlier.until)
            out["ejections"] = v.outlier.ejections
        return out

    async def stop(self) -> None:
        tasks = [c.task for c in self.checks.values() if c.task is not None]
        for c in self.checks.values():
            _close(c)
        tasks += [t for _, t in self.detectors.values()]
        self.detectors.clear()
        for v in self.members.values():
            if v.outlier is not None and v.outlier.timer is not None:
                v.outlier.timer.cancel()
        self.checks.clear()
        self.members = {}
        self.by_pool = {}
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _check_status(c: Check) -> dict:
    return {"monitor": c.mon.name, "type": c.mon.type, "target": _addr(c.target),
            "health": c.health.state, "checks": c.checks, "failures": c.failures,
            "went_down": c.health.downs, "went_up": c.health.ups,
            "last_change": c.last_change, "reason": c.reason}


def _expire(c: Check, task: asyncio.Task) -> None:
    c.expired = True
    task.cancel()


def _close(c: Check) -> None:
    """Close what a probe keeps between checks (kept-alive HTTP connections)."""
    close = getattr(c.probe, "close", None)
    if close is not None:
        close()
