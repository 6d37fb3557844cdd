"""adc.demo: `adcd --demo` (what `make run` starts): the example config and its backends, on loopback.

The backends run in a child process so that what the supervisor does is
exactly what it does in production. They are deliberately tiny: HTTP
servers that say who they are, a TCP echo and a UDP echo.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile

DEMO_CONFIG = """\
# the demo of `make run`: the shape of /work/shared/examples/adc.yaml, on loopback
global:
  workers: 2
  admin_socket: {socket}
  state_dir: {state_dir}
  access_log: {{path: stderr, format: haproxy}}
  drain_timeout: 5s

monitors:
  - name: http-ok
    type: http
    path: /healthz
    expect_status: [200]
    interval: 1s
    timeout: 500ms
    rise: 2
    fall: 2
  - name: tcp-open
    type: tcp
    interval: 1s
    timeout: 500ms

pools:
  - name: web
    algorithm: round_robin
    monitor: http-ok
    members:
      - {{address: 127.0.0.1, port: 9001, weight: 1}}
      - {{address: 127.0.0.1, port: 9002, weight: 1}}
  - name: api
    algorithm: least_connections
    monitor: http-ok
    members:
      - {{address: 127.0.0.1, port: 9003}}
  - name: echo
    algorithm: maglev
    monitor: tcp-open
    members:
      - {{address: 127.0.0.1, port: 9101}}
      - {{address: 127.0.0.1, port: 9102}}
  - name: dns
    algorithm: maglev
    members:
      - {{address: 127.0.0.1, port: 9053}}

vips:
  - name: web
    address: 127.0.0.1
    port: 8080
    protocol: http
    default_pool: web
    routes:
      - match: {{path_prefix: /api/}}
        pool: api
  - name: echo
    address: 127.0.0.1
    port: 8081
    protocol: tcp
    default_pool: echo
  - name: dns
    address: 127.0.0.1
    port: 8053
    protocol: udp
    default_pool: dns
"""

TOUR = """
adc demo is running. Try, from another terminal:

  curl -s http://127.0.0.1:8080/            # HTTP VIP 'web': round robin over two backends
  curl -s http://127.0.0.1:8080/api/users   # the /api/ route goes to pool 'api'
  echo hello | nc -q1 127.0.0.1 8081        # TCP VIP 'echo' (maglev over two echo servers)
  echo hello | nc -u -w1 127.0.0.1 8053     # UDP VIP 'dns' (a UDP echo stands in for DNS)

  export ADC_SOCKET={socket}
  adcctl status
  adcctl vip list
  adcctl pool show web
  adcctl member drain web 127.0.0.1:9001    # new requests go to :9002 only
  adcctl member enable web 127.0.0.1:9001
  adcctl stats
  adcctl config show -o yaml > /tmp/adc.yaml && adcctl diff -f /tmp/adc.yaml
  adcctl config history

(adcctl lives in .venv/bin: `. .venv/bin/activate` first.)  Ctrl-C stops everything.
"""


# ------------------------------------------------------------------ backends
def _http_response(status: str, body: bytes, keep: bool) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode() + body


async def http_backend(port: int, name: str, host: str = "127.0.0.1") -> asyncio.AbstractServer:
    """An HTTP/1.1 server that answers every request with its name and the path it saw."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for ln in lines[1:]:
                    if ":" in ln:
                        k, v = ln.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                if n:
                    await reader.readexactly(n)
                keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
                body = b"" if method == "HEAD" else f"{name} {method} {target}\n".encode()
                writer.write(_http_response("200 OK", body, keep))
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


async def tcp_echo(port: int, host: str = "127.0.0.1") -> asyncio.AbstractServer:
    async def handle(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        self.t.sendto(data, addr)


async def udp_echo(port: int, host: str = "127.0.0.1"):
    t, _ = await asyncio.get_running_loop().create_datagram_endpoint(_UdpEcho, local_addr=(host, port))
    return t


async def run_backends(http=(), tcp_echo_ports=(), udp_echo_ports=(), host="127.0.0.1") -> None:
    """Serve until SIGTERM/SIGINT. http: (port, name) pairs."""
    servers = [await http_backend(p, n, host) for p, n in http]
    servers += [await tcp_echo(p, host) for p in tcp_echo_ports]
    servers += [await udp_echo(p, host) for p in udp_echo_ports]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"backends ready on {host}", file=sys.stderr, flush=True)
    await stop.wait()
    for s in servers:
        s.close()


DEMO_BACKENDS = ["--http", "9001:backend-1", "--http", "9002:backend-2", "--http", "9003:api-1",
                 "--tcp-echo", "9101", "--tcp-echo", "9102", "--udp-echo", "9053"]


# ------------------------------------------------------------------ adcd --demo
def main(args) -> int:
    import uvloop

    from adc import daemon

    work = tempfile.mkdtemp(prefix="adc-demo-")
    sock = args.socket or ("/run/adc/adcd.sock" if os.geteuid() == 0 else os.path.join(work, "adcd.sock"))
    cfg_path = os.path.join(work, "adc.yaml")
    with open(cfg_path, "w") as f:
        f.write(DEMO_CONFIG.format(socket=sock, state_dir=os.path.join(work, "state")))
    backends = subprocess.Popen([sys.executable, "-m", "adc.demo", "backends", *DEMO_BACKENDS],
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        def ready(sup, sock_path):
            print(TOUR.format(socket=sock_path), file=sys.stderr, flush=True)

        args.socket = sock
        return uvloop.run(daemon.run(args, cfg_path, on_ready=ready))
    finally:
        backends.terminate()
        try:
            backends.wait(5)
        except subprocess.TimeoutExpired:
            backends.kill()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m adc.demo")
    ap.add_argument("what", choices=["backends"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http", action="append", default=[], metavar="PORT:NAME")
    ap.add_argument("--tcp-echo", action="append", default=[], type=int, metavar="PORT")
    ap.add_argument("--udp-echo", action="append", default=[], type=int, metavar="PORT")
    a = ap.parse_args()
    import uvloop
    http = [(int(x.split(":", 1)[0]), x.split(":", 1)[1]) for x in a.http]
    uvloop.run(run_backends(http, a.tcp_echo, a.udp_echo, a.host))
