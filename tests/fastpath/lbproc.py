"""A worker-shaped process for fast-path tests: uvloop, a counter region, pools, and
FastTcpListener/FastUdpListener on sockets it binds itself. Driven by JSON lines on stdin.

argv[1]: {"pools": [PoolPlan...], "vips": [VipPlan fields except listener/address/port...]}
prints {"ports": {vip name: port}} once serving, then one JSON reply per command.
"""
import asyncio
import json
import os
import socket
import sys

import msgspec

from adc._fastpath.counters import CounterRegion
from adc.config.plan import PoolPlan, VipPlan
from adc.l4.fast import EngineHost, FastTcpListener, FastUdpListener
from adc.runtime import PoolRuntime


class Ctx:
    pass


def tcp_sockopts():
    """This process's connected TCP sockets as the engine left them: ports and TCP options."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if s.type != socket.SOCK_STREAM or s.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                peer = s.getpeername()
            except OSError:
                continue                    # a listener
            out.append(dict(local=s.getsockname()[1], peer=peer[1],
                            nodelay=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                            keepalive=s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                            idle=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                            interval=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                            count=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)))
        finally:
            s.close()
    return out


async def main():
    cfg = json.loads(sys.argv[1])
    loop = asyncio.get_running_loop()
    fd = os.memfd_create("adc-test-counters")
    os.ftruncate(fd, CounterRegion.size(256))
    ctx = Ctx()
    ctx.loop = loop
    ctx.counters = CounterRegion(fd, 256)
    ctx.slot = 0
    ctx.pools = {p["name"]: PoolRuntime(msgspec.convert(p, PoolPlan)) for p in cfg["pools"]}
    listeners = {}
    ports = {}
    host_ip = cfg.get("address", "127.0.0.1")
    for v in cfg["vips"]:
        proto = v["protocol"]
        fam = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
        if proto == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.bind((host_ip, v.get("port", 0)))
            cls = FastUdpListener
        else:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host_ip, v.get("port", 0)))
            s.listen(4096)
            cls = FastTcpListener
        port = s.getsockname()[1]
        plan = msgspec.convert(dict(v, address=host_ip, port=port,
                                    listener=f"{'udp' if proto == 'udp' else 'tcp'}:{host_ip}:{port}"), VipPlan)
        # (a test VIP's plan carries the address it really listens on)
        lst = cls(ctx, plan, s)
        await lst.start()
        listeners[plan.name] = lst
        ports[plan.name] = port
    if os.environ.get("ADC_ENGINE_THREAD"):
        # measurement only (docs/fastpath.md, "where the loop runs"): the engine in its own
        # thread blocking in epoll_wait instead of a reader in the loop; nothing reconfigures it
        import threading
        host = EngineHost.of(ctx)
        loop.remove_reader(host.engine.fileno())

        def spin():
            while True:
                host.engine.wait(1000)
        threading.Thread(target=spin, daemon=True).start()
    print(json.dumps({"ports": ports, "pid": os.getpid()}), flush=True)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        req = json.loads(line)
        cmd = req["cmd"]
        out = None
        if cmd == "conns":
            out = [msgspec.to_builtins(c) for lst in listeners.values() for c in lst.conns()]
        elif cmd == "kill":
            out = any(lst.kill(req["id"]) for lst in listeners.values())
        elif cmd == "state":
            pool = ctx.pools[req["pool"]]
            out = pool.set_state(req["key"], admin=req.get("admin"), health=req.get("health"),
                                 weight=req.get("weight"))
            EngineHost.of(ctx).sync()
        elif cmd == "counters":
            out = ctx.counters.read_slot(req["slot"])
        elif cmd == "active":
            out = listeners[req["vip"]].active()
        elif cmd == "stop":
            lst = listeners[req["vip"]]
            lst.stop_accepting()
            lst.close_all()
            out = True
        elif cmd == "engine":
            host = EngineHost.of(ctx)
            out = dict(host.engine.stats(), violations=host.engine.check(),
                       member_active={k: host.engine.member_active(mid) for k, mid in
                                      ((f"{p}/{key}", mid) for (p, key), mid in host._mids.items())})
        elif cmd == "queued":
            out = listeners[req["vip"]].host.engine.vip_queued(listeners[req["vip"]].vid)
        elif cmd == "sockopts":
            out = tcp_sockopts()
        elif cmd == "rss":
            with open("/proc/self/status") as f:
                out = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        print(json.dumps({"ok": out}), flush=True)


if __name__ == "__main__":
    import uvloop
    uvloop.run(main())
