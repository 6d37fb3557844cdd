"""adc.control.supervisor: owns the workers, the listening sockets and the running config.

An apply is a transaction: validate -> compile -> open missing sockets ->
Prepare on every worker -> every worker says ok -> Commit -> record the
revision. Any failure before Commit aborts on every worker and closes what
the apply opened, so the running config never changes half-way.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import sys
import time
from typing import Optional

from adc._fastpath.counters import FIELD_NAMES, CounterRegion, Field
from adc.config import compile as cfgcompile
from adc.config import diff as cfgdiff
from adc.config import loader
from adc.config.errors import ConfigInvalid
from adc.config.history import History
from adc.config.plan import Plan
from adc.config.schema import Config, format_duration
from adc.control import messages as m
from adc.control.lookup import maglev_moves
from adc.control.sockets import BindError, ListenerSet
from adc.lb import NO_SLOW_START
from adc.files import write_atomic
from adc.tls import plan as tlsplan

logger = logging.getLogger("adc.supervisor")

PREPARE_TIMEOUT = 10.0
FDS_PER_MESSAGE = 200      # under the kernel's SCM_MAX_FD (253)
MAX_MSG = 8 << 20
RESPAWN_BACKOFF_MAX = 5.0


class ApplyFailed(Exception):
    """The data plane refused a valid config (socket in use, worker error); nothing changed."""


class WorkerHandle:
    def __init__(self, slot: int, region_fd: int):
        self.slot = slot
        self.region_fd = region_fd
        self.region = CounterRegion(region_fd)
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.pid = 0
        self.ctl: Optional[socket.socket] = None
        self.started = 0.0
        self.restarts = 0
        self.ready = asyncio.Event()
        self.alive = False
        self.waiting: dict[tuple, asyncio.Future] = {}   # (kind, id) -> future of the reply

    def info(self) -> dict:
        return {"slot": self.slot, "pid": self.pid, "alive": self.alive, "restarts": self.restarts,
                "started": self.started, "uptime": round(time.time() - self.started, 1) if self.alive else 0}


class Supervisor:
    def __init__(self, config_path: str, *, nworkers: int, state_dir: str,
                 log_level: str = "info", health=None):
        self.config_path = os.path.abspath(config_path)
        self.nworkers = nworkers
        self.state_dir = state_dir
        self.log_level = log_level
        self.history = History(state_dir)
        self.slots = cfgcompile.SlotAllocator()
        self.listeners = ListenerSet(nworkers)
        self.workers: list[WorkerHandle] = []
        self.config: Optional[Config] = None
        self.config_text = ""
        self.plan: Optional[Plan] = None
        self.revision = 0
        self.member_state: dict[tuple[str, str], dict] = {}
        self._member_state_path = os.path.join(state_dir, "member-state.json")
        self._lock = asyncio.Lock()
        self._txids = itertools.count(1)
        self._qids = itertools.count(1)
        self.started = time.time()
        self.stopping = False
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()    # respawns in flight (a task needs a reference to live)
        # health(report) -> object with configure(cfg), history(pool, key), stop(); see adc.health
        self.health = health(self.report_health, counters=self.member_counters) if health else None

    # =============================================================== start
    async def start(self, config: Config, text: str) -> None:
        self._load_member_state()
        self._warn_if_file_is_behind(text)
        for slot in range(self.nworkers):
            fd = os.memfd_create(f"adc-counters-{slot}", 0)
            os.ftruncate(fd, CounterRegion.size())
            self.workers.append(WorkerHandle(slot, fd))
        await asyncio.gather(*(self._spawn(w) for w in self.workers))
        rev = await self._apply(config, text, self.config_path, "startup", source="startup")
        logger.info("adcd running revision %d with %d workers", rev, self.nworkers)

    def _warn_if_file_is_behind(self, text: str) -> None:
        """adcd starts from its file; say so when the last revision came through the API instead."""
        revs = self.history.list()
        if not revs or revs[0].get("source") == self.config_path:
            return
        if self.history.latest_text() != text:
            logger.warning("%s differs from revision %d (applied from %s): starting from the file; "
                           "`adcctl config rollback %d` restores that revision, and writing it to the file "
                           "keeps it across restarts", self.config_path, revs[0]["revision"],
                           revs[0].get("source"), revs[0]["revision"])

    # ============================================================ workers
    async def _spawn(self, w: WorkerHandle) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            # plans with many VIPs are bigger than the default socket buffer
            try:
                s.setsockopt(socket.SOL_SOCKET, 32, MAX_MSG)   # SO_SNDBUFFORCE
                s.setsockopt(socket.SOL_SOCKET, 33, MAX_MSG)   # SO_RCVBUFFORCE
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MSG)
        w.region.zero_active()   # connections of a dead incarnation are gone
        try:
            w.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "adc.worker", "--slot", str(w.slot),
                "--ctl-fd", str(theirs.fileno()), "--counters-fd", str(w.region_fd),
                "--log-level", self.log_level,
                pass_fds=(theirs.fileno(), w.region_fd))
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        w.ctl = ours
        w.pid = w.proc.pid
        w.started = time.time()
        w.ready = asyncio.Event()
        w.alive = True
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._on_worker_msg, w)
        try:
            await asyncio.wait_for(w.ready.wait(), 10.0)
        except asyncio.TimeoutError:
            logger.error("worker %d (pid %d) did not say hello within 10s", w.slot, w.pid)

    def _on_worker_msg(self, w: WorkerHandle) -> None:
        while True:
            try:
                data = w.ctl.recv(MAX_MSG)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._worker_gone(w)
                return
            try:
                msg = m.decode(data)
            except Exception as e:
                logger.error("worker %d sent an undecodable message: %s", w.slot, e)
                continue
            if isinstance(msg, m.Hello):
                w.ready.set()
            elif isinstance(msg, m.Prepared):
                self._resolve(w, ("prepared", msg.txid), msg)
            elif isinstance(msg, m.Committed):
                self._resolve(w, ("committed", msg.txid), msg)
            elif isinstance(msg, m.ConnReply):
                self._resolve(w, ("conn", msg.qid), msg)
            elif isinstance(msg, m.ConnKilled):
                self._resolve(w, ("kill", msg.qid), msg)

    def _resolve(self, w: WorkerHandle, key: tuple, value) -> None:
        fut = w.waiting.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(value)

    def _worker_gone(self, w: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(w.ctl.fileno())
        except (ValueError, OSError):
            pass
        w.ctl.close()
        w.alive = False
        for fut in w.waiting.values():
            if not fut.done():
                fut.set_exception(ApplyFailed(f"worker {w.slot} (pid {w.pid}) died"))
        w.waiting.clear()
        if self.stopping:
            return
        logger.error("worker %d (pid %d) died; respawning it on the same sockets", w.slot, w.pid)
        task = loop.create_task(self._respawn(w))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respawn(self, w: WorkerHandle) -> None:
        if w.proc is not None:
            try:
                await asyncio.wait_for(w.proc.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
        # a worker that dies right after start must not spin the CPU
        delay = min(RESPAWN_BACKOFF_MAX, 0.0 if time.time() - w.started > 10 else 0.2 * (w.restarts + 1))
        if delay:
            await asyncio.sleep(delay)
        if self.stopping:
            return
        w.restarts += 1
        # under the lock: an apply must not send this worker a Prepare with only new sockets
        async with self._lock:
            try:
                await self._spawn(w)
            except OSError as e:
                logger.error("worker %d could not be spawned (%s); trying again", w.slot, e.strerror or e)
                w.alive = False
                self._tasks.add(asyncio.get_running_loop().create_task(self._respawn(w)))
                return
            if self.plan is not None and w.alive:
                try:
                    await self._run_tx([w], self.plan, all_keys=True)
                    logger.info("worker %d back (pid %d) on revision %d", w.slot, w.pid, self.plan.revision)
                except ApplyFailed as e:
                    logger.error("worker %d could not take revision %d: %s", w.slot, self.plan.revision, e)
                    self._kill(w)
            for pool_key, st in self.member_state.items():
                self._send(w, m.MemberState(pool=pool_key[0], key=pool_key[1], **st))

    def _kill(self, w: WorkerHandle) -> None:
        if w.proc is not None and w.proc.returncode is None:
            try:
                os.kill(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _send(self, w: WorkerHandle, msg, fds: list[int] = ()) -> None:
        data = m.encode(msg)
        if fds:
            socket.send_fds(w.ctl, [data], list(fds))
        else:
            w.ctl.send(data)

    async def _ask(self, w: WorkerHandle, key: tuple, msg, fds=(), timeout: float = PREPARE_TIMEOUT):
        fut = asyncio.get_running_loop().create_future()
        w.waiting[key] = fut
        try:
            self._send(w, msg, fds)
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ApplyFailed(f"worker {w.slot} (pid {w.pid}) did not answer within {timeout:.0f}s") from None
        except OSError as e:
            raise ApplyFailed(f"worker {w.slot} (pid {w.pid}): {e}") from None
        finally:
            w.waiting.pop(key, None)

    # ============================================================== apply
    async def _run_tx(self, workers: list[WorkerHandle], plan: Plan, all_keys: bool,
                      new_keys: list[str] = ()) -> None:
        """Prepare on every worker, then Commit or Abort on every worker."""
        txid = next(self._txids)
        keys = [v.listener for v in plan.vips] if all_keys else list(new_keys)
        prepared: list[WorkerHandle] = []
        try:
            for w in workers:
                ks, fds = self.listeners.fds_for(w.slot, keys)
                for i in range(0, len(ks), FDS_PER_MESSAGE):
                    self._send(w, m.Sockets(txid=txid, fd_keys=ks[i:i + FDS_PER_MESSAGE]),
                               fds[i:i + FDS_PER_MESSAGE])
            replies = await asyncio.gather(*(
                self._ask(w, ("prepared", txid), m.Prepare(txid=txid, plan=plan)) for w in workers),
                return_exceptions=True)
            errors = []
            for w, r in zip(workers, replies):
                if isinstance(r, BaseException):
                    errors.append(str(r))
                elif not r.ok:
                    errors.append(r.error)
                else:
                    prepared.append(w)
            if errors:
                raise ApplyFailed("; ".join(errors))
        except BaseException:
            for w in workers:
                if w.alive:
                    try:
                        self._send(w, m.Abort(txid=txid))
                    except OSError:
                        pass
            raise
        replies = await asyncio.gather(*(self._ask(w, ("committed", txid), m.Commit(txid=txid))
                                         for w in workers), return_exceptions=True)
        for w, r in zip(workers, replies):
            if isinstance(r, BaseException):
                # past the point of no return: the worker is restarted onto the committed plan
                logger.error("worker %d failed to commit revision %d (%s); restarting it", w.slot,
                             plan.revision, r)
                self._kill(w)

    async def _apply(self, cfg: Config, text: str, path: str, comment: str, source: str) -> int:
        same = (source == "startup" and self.history.current() is not None
                and self.history.latest_text() == text)
        revision = (self.history.current() or 0) + (0 if same else 1)
        try:
            state = self._member_state_for(cfg)
            plan = cfgcompile.compile_plan(cfg, revision, self.slots, state)
        except Exception as e:   # a full slot table is the only expected cause
            raise ApplyFailed(str(e)) from None
        wanted = {v.listener for v in plan.vips}
        try:
            opened = self.listeners.ensure(wanted)
        except BindError as e:
            raise ApplyFailed(str(e)) from None
        live = [w for w in self.workers if w.alive]
        if not live:
            self.listeners.close(opened)
            raise ApplyFailed("no worker is running")
        try:
            await self._run_tx(live, plan, all_keys=False, new_keys=opened)
        except ApplyFailed:
            self.listeners.close(opened)
            raise
        removed = set(self.listeners.by_key) - wanted
        self.listeners.close(removed)
        # a freed slot may be handed to a new object later: it must start from zero
        for freed in self.slots.retain(cfgcompile.slot_keys(cfg)):
            for w in self.workers:
                w.region.reset_slot(freed)
        got = revision
        if not same:     # a restart on the same file is not a new revision
            try:
                got = self.history.commit(text, path if source != "rollback" else source, comment)
            except OSError as e:
                # the workers already run it: record what runs, and say loudly that history lacks it
                logger.error("revision %d is running but could not be recorded in %s: %s",
                             revision, self.state_dir, e.strerror or e)
        if got != revision:
            logger.warning("history numbered revision %d, plan says %d", got, revision)
        self.config, self.config_text, self.plan, self.revision = cfg, text, plan, got
        self._adopt_member_state(state)
        if self.health is not None:
            self.health.configure(cfg)
        return got

    async def validate(self, text: str, path: str) -> tuple[Config, list[str]]:
        """The config and its warnings; raises ConfigInvalid with every error of the text.

        In a thread: a large config takes most of a second to check, and the
        health checks sharing this loop must not see that as member timeouts.
        """
        res = await asyncio.get_running_loop().run_in_executor(None, loader.check_text, text, path)
        if not res.ok:
            raise ConfigInvalid(res.errors, res.warnings)
        return res.config, [f"{w} (warning)" for w in res.warnings]

    async def apply_text(self, text: str, path: str, comment: str = "", dry_run: bool = False,
                         source: str = "api") -> dict:
        cfg, warnings = await self.validate(text, path)
        changes = cfgdiff.diff(self.config, cfg)
        notes = warnings + self._restart_only(cfg)
        if dry_run:
            try:
                cfgcompile.compile_plan(cfg, self.revision + 1, self.slots.copy(), self._member_state_for(cfg))
            except Exception as e:
                raise ApplyFailed(str(e)) from None
            return {"revision": self.revision, "changed": bool(changes), "dry_run": True,
                    "changes": [c.to_dict() for c in changes], "text": cfgdiff.render(changes),
                    "remaps": maglev_moves(self.config, cfg), "notes": notes}
        async with self._lock:
            if not changes and self.config is not None and not tlsplan.files_changed(self.plan, cfg):
                return {"revision": self.revision, "changed": False}
            rev = await self._apply(cfg, text, path, comment, source)
        logger.info("applied revision %d from %s (%d changes)", rev, path, len(changes))
        for note in notes:
            logger.warning("revision %d: %s", rev, note)
        return {"revision": rev, "changed": True, "notes": notes}

    # read once at start: the process model and where adcd keeps its files
    RESTART_ONLY = ("workers", "admin_socket", "state_dir", "log_level")

    def _restart_only(self, cfg: Config) -> list[str]:
        if self.config is None:
            return []
        old, new = self.config.global_, cfg.global_
        return [f"global.{k} changed ({getattr(old, k)!r} -> {getattr(new, k)!r}): it takes effect "
                f"when adcd restarts" for k in self.RESTART_ONLY if getattr(old, k) != getattr(new, k)]

    async def rollback(self, revision: int) -> dict:
        try:
            entry = self.history.get(revision)
        except (KeyError, FileNotFoundError):
            raise LookupError(f"no revision {revision} in history") from None
        path = entry.get("source") or self.config_path
        if not os.path.isabs(path):
            path = self.config_path
        cfg, _ = await self.validate(entry["text"], path)
        async with self._lock:
            rev = await self._apply(cfg, entry["text"], path, f"rollback to revision {revision}", "rollback")
        logger.info("rolled back to revision %d as revision %d", revision, rev)
        return {"revision": rev, "rolled_back_to": revision}

    async def reload_file(self) -> None:
        """SIGHUP: re-read the config file and apply it; a bad file changes nothing."""
        try:
            text = loader.read_text(self.config_path)
            res = await self.apply_text(text, self.config_path, comment="SIGHUP", source="file")
            if res["changed"]:
                logger.info("SIGHUP: %s applied as revision %d", self.config_path, res["revision"])
            else:
                logger.info("SIGHUP: %s unchanged", self.config_path)
        except ConfigInvalid as e:
            logger.error("SIGHUP: %s refused, running config kept:\n%s", self.config_path, e)
        except ApplyFailed as e:
            logger.error("SIGHUP: %s not applied, running config kept: %s", self.config_path, e)

    # ===================================================== member runtime state
    def _load_member_state(self) -> None:
        try:
            with open(self._member_state_path) as f:
                raw = json.load(f)
            self.member_state = {tuple(k.split("/", 1)): v for k, v in raw.items()}
        except (OSError, ValueError):
            self.member_state = {}

    def _save_member_state(self) -> None:
        data = json.dumps({f"{p}/{k}": v for (p, k), v in self.member_state.items()}).encode()
        try:
            write_atomic(self._member_state_path, data)
        except OSError as e:
            # the workers have it already; only a restart would forget it
            logger.error("member state not saved to %s: %s", self._member_state_path, e.strerror or e)

    def _member_state_for(self, new: Config) -> dict:
        """The runtime member state an apply of `new` compiles with.

        An operator's drain or weight outlives applies that leave the member
        alone; once the file itself changes that member's state or weight,
        the file is what the operator means now. Members that left go.
        """
        present = {(p.name, mb.key): mb for p in new.pools for mb in p.members}
        before = {(p.name, mb.key): mb for p in self.config.pools for mb in p.members} if self.config else {}
        out = {}
        for key, st in self.member_state.items():
            mb = present.get(key)
            if mb is None:
                continue
            st = dict(st)
            was = before.get(key)
            if was is not None and was.state != mb.state:
                st.pop("admin", None)
            if was is not None and was.weight != mb.weight:
                st.pop("weight", None)
            if st:
                out[key] = st
        return out

    def _adopt_member_state(self, state: dict) -> None:
        """After a commit. A monitor verdict that arrived while the apply was in
        flight is not in the plan the workers just took: send it again."""
        for key, st in self.member_state.items():
            if "health" in st and self._has_member(*key):
                state.setdefault(key, {})["health"] = st["health"]
        changed = state != self.member_state
        self.member_state = state
        if changed:
            self._save_member_state()
        for (pool, key), st in state.items():
            if "health" in st and self._member_plan(pool, key).health != st["health"]:
                self.set_member(pool, key, health=st["health"])

    def _has_member(self, pool: str, key: str) -> bool:
        try:
            self._member_plan(pool, key)
            return True
        except LookupError:
            return False

    def set_member(self, pool: str, key: str, admin: Optional[str] = None,
                   weight: Optional[int] = None, health: Optional[str] = None) -> dict:
        """Operator (admin, weight) or monitor (health) state of one member, sent to every worker."""
        self._member_plan(pool, key)      # raises LookupError
        st = self.member_state.setdefault((pool, key), {})
        if admin is not None:
            st["admin"] = admin
        if weight is not None:
            st["weight"] = weight
        if health is not None:
            st["health"] = health
        self._save_member_state()
        # keep the plan in step so a respawned worker starts from the same state
        mp = self._member_plan(pool, key)
        was_up = mp.admin == "enabled" and mp.health == "up" and mp.weight > 0
        if admin is not None:
            mp.admin = admin
        if weight is not None:
            mp.weight = weight
        if health is not None:
            mp.health = health
        msg = m.MemberState(pool=pool, key=key, admin=admin, weight=weight, health=health)
        for w in self.workers:
            if w.alive:
                try:
                    self._send(w, msg)
                except OSError:
                    pass
        ramp = ""
        if not was_up and mp.admin == "enabled" and mp.health == "up" and mp.weight > 0:
            pp = next(p for p in self.plan.pools if p.name == pool)
            if pp.slow_start > 0 and pp.algorithm not in NO_SLOW_START:
                # the workers ramp on their own (adc.runtime, adc.l4.fast); say when it ends
                ramp = f"; slow start, full share in {format_duration(pp.slow_start)}"
        logger.info("member %s/%s: %s%s", pool, key,
                    ", ".join(f"{k}={v}" for k, v in (("admin", admin), ("weight", weight), ("health", health))
                              if v is not None), ramp)
        return self.member_info(pool, key)

    def report_health(self, pool: str, key: str, health: str) -> None:
        """The health checker's verdict on a member ('up' or 'down'); it logs the reason itself."""
        try:
            known = self.member_state.get((pool, key), {}).get("health", self._member_plan(pool, key).health)
            if known != health or self._member_plan(pool, key).health != health:
                self.set_member(pool, key, health=health)
        except LookupError:
            pass   # the member left the config while its check was running

    def member_counters(self, pool: str, key: str) -> dict:
        """Summed counters of one member, for passive health (adc.health.outlier); LookupError if gone."""
        return self.counters(self._member_plan(pool, key).slot)

    def _member_plan(self, pool: str, key: str):
        for p in self.plan.pools if self.plan else []:
            if p.name == pool:
                for mp in p.members:
                    if mp.key == key:
                        return mp
                raise LookupError(f"pool '{pool}' has no member {key}")
        raise LookupError(f"no pool '{pool}'")

    # ============================================================== stats
    def counters(self, slot: int) -> dict:
        tot = [0] * int(Field.NFIELDS)
        for w in self.workers:
            for i, v in enumerate(w.region.read_slot(slot)):
                tot[i] += v
        return dict(zip(FIELD_NAMES, tot))

    def member_info(self, pool: str, key: str) -> dict:
        mp = self._member_plan(pool, key)
        state = mp.admin if mp.admin != "enabled" else mp.health
        return {"pool": pool, "key": mp.key, "address": mp.address, "port": mp.port,
                "weight": mp.weight, "backup": mp.backup, "admin": mp.admin, "health": mp.health,
                "state": state, "stats": self.counters(mp.slot)}

    def stats(self) -> dict:
        p = self.plan
        return {
            "vips": {v.name: self.counters(v.slot) for v in p.vips} if p else {},
            "pools": {pl.name: self._pool_totals(pl) for pl in p.pools} if p else {},
            "members": {f"{pl.name}/{mp.key}": self.counters(mp.slot) for pl in p.pools for mp in pl.members}
            if p else {},
        }

    def _pool_totals(self, pl) -> dict:
        tot = dict.fromkeys(FIELD_NAMES, 0)
        for mp in pl.members:
            for k, v in self.counters(mp.slot).items():
                tot[k] += v
        # a refusal (circuit breaker) happens before a member is chosen: only the pool's own slot has it
        tot["refused"] += self.counters(pl.slot).get("refused", 0)
        return tot

    # ============================================================ conn table
    async def conns(self, vip: Optional[str] = None, member: Optional[str] = None) -> list:
        qid = next(self._qids)
        live = [w for w in self.workers if w.alive]
        replies = await asyncio.gather(*(self._ask(w, ("conn", qid), m.ConnQuery(qid=qid, vip=vip, member=member),
                                                   timeout=5.0) for w in live), return_exceptions=True)
        out = []
        for r in replies:
            if not isinstance(r, BaseException):
                out.extend(c for c in r.conns)
        return out

    async def kill_conn(self, conn_id: str) -> bool:
        qid = next(self._qids)
        live = [w for w in self.workers if w.alive]
        replies = await asyncio.gather(*(self._ask(w, ("kill", qid), m.ConnKill(qid=qid, id=conn_id), timeout=5.0)
                                         for w in live), return_exceptions=True)
        return any(not isinstance(r, BaseException) and r.found for r in replies)

    # ============================================================ shutdown
    async def shutdown(self) -> None:
        """Stop accepting everywhere, let workers drain up to the drain timeout, then exit."""
        if self.stopping:
            return
        self.stopping = True
        if self.health is not None:
            await self.health.stop()
        drain = self.plan.drain_timeout if self.plan else 5.0
        logger.info("shutting down: draining connections for up to %.1fs", drain)
        for w in self.workers:
            if w.alive:
                try:
                    self._send(w, m.Shutdown(drain_timeout=drain))
                except OSError:
                    pass
        # our copies too: once every copy is closed the kernel refuses new connections
        self.listeners.close(list(self.listeners.by_key))
        procs = [w.proc for w in self.workers if w.proc is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), drain + 2.0)
        except asyncio.TimeoutError:
            for w in self.workers:
                self._kill(w)
        self.stopped.set()
