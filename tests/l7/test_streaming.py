"""1 GiB up and down through the proxy with bounded memory: bodies stream, they are never held whole."""
from __future__ import annotations

import os
import subprocess
import threading
import time

from l7harness import Proxy, RawMember, pool, vip

SIZE = int(os.environ.get("ADC_L7_BIG_BYTES", 1 << 30))
MEMORY_BOUND = 64 << 20


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class BulkMember(RawMember):
    """PUT: counts the body bytes and answers their number. GET: sends SIZE zero bytes."""

    def __init__(self):
        self.received = 0
        super().__init__()

    def serve(self, c):
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            if head.startswith(b"PUT"):
                n = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
                got = len(body)
                while got < n:
                    d = c.recv(1 << 20)
                    if not d:
                        return
                    got += len(d)
                self.received = got
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d" % (len(str(got)), got))
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
                block = bytes(1 << 20)
                left = SIZE
                while left:
                    k = min(left, len(block))
                    c.sendall(block[:k] if k < len(block) else block)
                    left -= k


class PeakRss:
    def __init__(self):
        self.peak = rss()
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self.t.join()


def test_1gib_upload_and_download_with_bounded_memory(tmp_path):
    with BulkMember() as m:
        big = tmp_path / "big"
        with open(big, "wb") as f:
            f.truncate(SIZE)            # sparse: zeros without using the disk
        with Proxy(vip(), [pool("p", [m.port])]) as p:
            base = rss()
            with PeakRss() as peak:
                up = subprocess.run(["curl", "-s", "-T", str(big), f"http://127.0.0.1:{p.port}/upload"],
                                    capture_output=True, timeout=300)
                down = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                                       f"http://127.0.0.1:{p.port}/download"], capture_output=True, timeout=300)
            assert up.stdout == str(SIZE).encode()
            assert m.received == SIZE
            assert down.stdout.decode() == f"200 {SIZE}"
            assert peak.peak - base < MEMORY_BOUND, f"grew {(peak.peak - base) >> 20} MiB"
            assert p.counter(1, "bytes_in") > SIZE and p.counter(1, "bytes_out") > SIZE
