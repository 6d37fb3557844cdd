"""Not tests: what the tls integration tests share (start adcd, wait until its API and VIPs answer)."""
from __future__ import annotations

import time

from harness import Adcd, wait_port


def start_adcd(tmp, text: str, name: str = "tls.yaml", **kw) -> Adcd:
    """Adcd, tolerating the instant between the socket file appearing and adcd listening on it."""
    d = Adcd(tmp, text, name=name, wait_vips=False, **kw)
    deadline = time.monotonic() + 20
    while True:
        try:
            vips = d.api("GET", "/vips")
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    for v in vips:
        if v["protocol"] != "udp":
            wait_port(v["address"], v["port"])
    return d
