"""adc.worker: the data-plane process: one per core, serving the sockets its supervisor hands it.

It never parses config: it receives compiled Plans over its control socket,
prepares them (builds pools and listeners, opens nothing new), and swaps them
in on Commit. Connections in flight keep the VipPlan they were accepted with.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import time
from typing import Optional

from adc import log as adclog
from adc._fastpath.counters import CounterRegion
from adc.config.plan import Plan, VipPlan
from adc.control import messages as m
from adc.runtime import Listener, PoolRuntime

logger = logging.getLogger("adc.worker")

MAX_MSG = 8 << 20
MAX_FDS = 253        # SCM_MAX_FD: the supervisor never sends more in one record


def make_listener(ctx: "WorkerContext", vip: VipPlan, sock: socket.socket) -> Listener:
    """The data path of a VIP by protocol. Import here: a worker without http VIPs never loads L7."""
    if vip.protocol == "tcp" and vip.sni_routes:
        from adc.tls.passthrough import SniListener
        return SniListener(ctx, vip, sock)
    if vip.protocol == "tcp":
        from adc.l4 import tcp_listener
        return tcp_listener(ctx, vip, sock)
    if vip.protocol == "udp":
        from adc.l4 import udp_listener
        return udp_listener(ctx, vip, sock)
    from adc.l7.listener import HttpListener
    return HttpListener(ctx, vip, sock)


class WorkerContext:
    """What listeners may use: the loop, this worker's counters, the current pools."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counters: CounterRegion, slot: int):
        self.loop = loop
        self.counters = counters
        self.slot = slot
        self.pools: dict[str, PoolRuntime] = {}
        self.access_log = None
        self.plan: Optional[Plan] = None


class Pending:
    """A prepared plan waiting for Commit or Abort."""

    def __init__(self, txid: int, plan: Plan, pools: dict, new: dict, access_log):
        self.txid = txid
        self.plan = plan
        self.pools = pools
        self.new = new                # vip name -> Listener built but not started
        self.access_log = access_log


class Worker:
    def __init__(self, slot: int, ctl: socket.socket, counters: CounterRegion):
        self.slot = slot
        self.ctl = ctl
        self.loop = asyncio.get_event_loop()
        self.ctx = WorkerContext(self.loop, counters, slot)
        self.socks: dict[str, socket.socket] = {}        # listener key -> our copy of the fd
        self.listeners: dict[str, Listener] = {}          # vip name -> listener
        self.draining: list[Listener] = []
        self.pending: Optional[Pending] = None
        self.incoming: dict[str, socket.socket] = {}      # sockets sent ahead of a Prepare
        self.incoming_txid: Optional[int] = None
        self.done = asyncio.Event()
        self.shutting_down = False
        self._frozen = False

    # ------------------------------------------------------------ control socket
    def send(self, msg) -> None:
        try:
            self.ctl.send(m.encode(msg))
        except OSError as e:
            logger.error("control socket send failed: %s", e)

    def on_readable(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.ctl, MAX_MSG, MAX_FDS)
            except BlockingIOError:
                return
            except OSError as e:
                logger.error("control socket: %s", e)
                data, fds = b"", []
            if not data:
                self.loop.remove_reader(self.ctl.fileno())
                if not self.shutting_down:
                    logger.warning("supervisor went away; draining and exiting")
                    self.loop.create_task(self.shutdown(self.ctx.plan.drain_timeout if self.ctx.plan else 5.0))
                return
            try:
                msg = m.decode(data)
            except Exception as e:
                logger.error("undecodable control message (%d bytes): %s", len(data), e)
                for fd in fds:
                    os.close(fd)
                continue
            try:
                self.handle(msg, fds)
            except Exception:
                logger.exception("control message %s failed", type(msg).__name__)

    def handle(self, msg, fds: list[int]) -> None:
        if isinstance(msg, m.Sockets):
            if self.incoming_txid != msg.txid:
                self._drop_incoming()
                self.incoming_txid = msg.txid
            for key, fd in zip(msg.fd_keys, fds):
                self.incoming[key] = socket.socket(fileno=fd)
            for fd in fds[len(msg.fd_keys):]:
                os.close(fd)
        elif isinstance(msg, m.Prepare):
            self.send(self.prepare(msg))
        elif isinstance(msg, m.Commit):
            if self.pending and self.pending.txid == msg.txid:
                self.commit(self.pending)
                self.pending = None
            self.send(m.Committed(txid=msg.txid))
        elif isinstance(msg, m.Abort):
            if self.pending and self.pending.txid == msg.txid:
                self.abort(self.pending)
                self.pending = None
        elif isinstance(msg, m.MemberState):
            pool = self.ctx.pools.get(msg.pool)
            if pool is not None:
                pool.set_state(msg.key, admin=msg.admin, health=msg.health, weight=msg.weight)
        elif isinstance(msg, m.ConnQuery):
            self.send(self.conn_query(msg))
        elif isinstance(msg, m.ConnKill):
            found = any(lst.kill(msg.id) for lst in list(self.listeners.values()) + self.draining)
            self.send(m.ConnKilled(qid=msg.qid, found=found))
        elif isinstance(msg, m.Shutdown):
            self.loop.create_task(self.shutdown(msg.drain_timeout))

    # ------------------------------------------------------------------ apply
    def _drop_incoming(self) -> None:
        for s in self.incoming.values():
            s.close()
        self.incoming = {}

    def prepare(self, msg: m.Prepare) -> m.Prepared:
        received = self.incoming if self.incoming_txid == msg.txid else {}
        if received is not self.incoming:
            self._drop_incoming()
        self.incoming, self.incoming_txid = {}, None
        if self.pending is not None:
            self.abort(self.pending)
            self.pending = None
        try:
            plan = msg.plan
            pools = {p.name: PoolRuntime(p, self.ctx.pools.get(p.name)) for p in plan.pools}
            # a new socket for a key we hold is the same socket (a respawn or a resend): keep ours
            for key, s in list(received.items()):
                if key in self.socks:
                    s.close()
                    del received[key]
            new: dict[str, Listener] = {}
            for vip in plan.vips:
                cur = self.listeners.get(vip.name)
                if (cur is not None and cur.vip.protocol == vip.protocol and cur.vip.listener == vip.listener
                        and bool(cur.vip.sni_routes) == bool(vip.sni_routes)):   # SNI passthrough: another listener
                    continue
                sock = received.get(vip.listener) or self.socks.get(vip.listener)
                if sock is None:
                    raise RuntimeError(f"vip {vip.name}: no socket for {vip.listener}")
                new[vip.name] = make_listener(self.ctx, vip, sock)
            from adc.l7.accesslog import make_access_log
            if self.ctx.plan is not None and self.ctx.plan.access_log == plan.access_log:
                access_log = self.ctx.access_log       # same file, same format: keep it open
            else:
                access_log = make_access_log(plan.access_log)
        except Exception as e:
            for s in received.values():
                s.close()
            logger.exception("prepare of revision %d failed", msg.plan.revision)
            return m.Prepared(txid=msg.txid, ok=False, error=f"worker {self.slot}: {e}")
        self.socks.update(received)
        self.pending = Pending(msg.txid, plan, pools, new, access_log)
        return m.Prepared(txid=msg.txid, ok=True)

    def abort(self, p: Pending) -> None:
        if p.access_log is not None and p.access_log is not self.ctx.access_log:
            p.access_log.close()
        keep = {lst.vip.listener for lst in self.listeners.values()}
        for key in list(self.socks):
            if key not in keep and key not in {v.listener for v in (self.ctx.plan.vips if self.ctx.plan else [])}:
                self.socks.pop(key).close()

    def commit(self, p: Pending) -> None:
        plan = p.plan
        for pool in p.pools.values():
            pool.activate()
        self.ctx.pools = p.pools
        if self.ctx.access_log is not None and self.ctx.access_log is not p.access_log:
            self.ctx.access_log.close()
        self.ctx.access_log = p.access_log
        self.ctx.plan = plan
        wanted = {v.name: v for v in plan.vips}
        for name, lst in list(self.listeners.items()):
            vip = wanted.get(name)
            if vip is None or name in p.new:
                self.retire(self.listeners.pop(name), plan.drain_timeout)
            else:
                lst.update(vip)
        for name, lst in p.new.items():
            self.listeners[name] = lst
            self.loop.create_task(self._start(lst))
        keys = {v.listener for v in plan.vips}
        for key in list(self.socks):
            if key not in keys:
                # the VIP is gone: our copy goes; the supervisor closes its own
                self.socks.pop(key).close()
        if not self._frozen:
            # what exists now (modules, plan, listeners) lives as long as the worker: keep the
            # collector from walking it again on every generation-2 pass in the data path
            gc.freeze()
            self._frozen = True
        logger.info("worker %d now runs revision %d", self.slot, plan.revision)

    async def _start(self, lst: Listener) -> None:
        try:
            await lst.start()
        except Exception:
            logger.exception("vip %s: listener failed to start", lst.vip.name)

    def retire(self, lst: Listener, drain_timeout: float) -> None:
        """Stop a listener taking new connections; end its open ones after the drain timeout."""
        lst.stop_accepting()
        self.draining.append(lst)

        def finish():
            if lst.active():
                logger.log(adclog.NOTICE, "vip %s: drain timeout, closing %d connections", lst.vip.name, lst.active())
            lst.close_all()
            if lst in self.draining:
                self.draining.remove(lst)

        self.loop.call_later(drain_timeout, finish)

    # ------------------------------------------------------------- conn table
    def conn_query(self, q: m.ConnQuery) -> m.ConnReply:
        out = []
        for lst in list(self.listeners.values()) + self.draining:
            if q.vip and lst.vip.name != q.vip:
                continue
            for c in lst.conns():
                if q.member and c.member != q.member and not c.member.endswith("/" + q.member):
                    continue
                out.append(c)
        return m.ConnReply(qid=q.qid, conns=out)

    # --------------------------------------------------------------- shutdown
    async def shutdown(self, drain_timeout: float) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        lsts = list(self.listeners.values()) + self.draining
        for lst in self.listeners.values():
            lst.stop_accepting()
        for s in self.socks.values():
            s.close()
        self.socks.clear()
        # UDP flows have no end a client signals: they would hold the drain for nothing
        waited = [lst for lst in lsts if lst.vip.protocol != "udp"]
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline and any(lst.active() for lst in waited):
            await asyncio.sleep(0.05)
        left = sum(lst.active() for lst in waited)
        if left:
            logger.log(adclog.NOTICE, "worker %d: drain timeout, closing %d connections", self.slot, left)
        for lst in lsts:
            lst.close_all()
        self.done.set()


async def amain(args) -> int:
    loop = asyncio.get_running_loop()
    ctl = socket.socket(fileno=args.ctl_fd)
    ctl.setblocking(False)
    counters = CounterRegion(args.counters_fd)
    w = Worker(args.slot, ctl, counters)
    loop.add_reader(ctl.fileno(), w.on_readable)
    # SIGTERM to a worker alone (not via the supervisor) still drains rather than drops
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(
        w.shutdown(w.ctx.plan.drain_timeout if w.ctx.plan else 5.0)))
    w.send(m.Hello(slot=args.slot, pid=os.getpid()))
    await w.done.wait()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="adc-worker")
    ap.add_argument("--slot", type=int, required=True)
    ap.add_argument("--ctl-fd", type=int, required=True)
    ap.add_argument("--counters-fd", type=int, required=True)
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    # Ctrl-C on `make run` reaches the whole process group: the supervisor decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adclog.setup(f"adcd[worker {args.slot}]", args.log_level)
    import uvloop
    try:
        return uvloop.run(amain(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
