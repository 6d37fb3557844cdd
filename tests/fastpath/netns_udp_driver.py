"""Run inside a fresh network namespace (by test_udp_netns.py): scapy datagrams through the UDP fast path.

Prints one JSON object with what it observed; the test makes the assertions.
"""
import json
import socket
import sys
import time

from fp import Backend, Proxy, member

from scapy.all import IP, UDP, Raw, conf, send  # noqa: E402
from scapy.supersocket import L3RawSocket  # noqa: E402

conf.L3socket = L3RawSocket        # loopback: scapy must use a raw IP socket, not the link layer
conf.verb = 0

LIMIT, SOURCES, IDLE = 50, 200, 1.0


def main():
    b = Backend("udp", "u0")
    proxy = Proxy(pools=[dict(name="p", slot=2, members=[member(b.port, slot=10)])],
                  vips=[dict(name="u", protocol="udp", default_pool="p", slot=1, udp_flow_limit=LIMIT,
                             idle_timeout=IDLE)])
    out = {}
    try:
        vport = proxy.ports["u"]
        pkts = [IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=20000 + i, dport=vport) / Raw(b"flow %d" % i)
                for i in range(SOURCES)]
        send(pkts)
        time.sleep(0.3)
        out["flows_after_burst"] = len(proxy.conns())
        out["counters"] = proxy.cmd(cmd="counters", slot=1)
        deadline = time.monotonic() + 5
        while proxy.conns() and time.monotonic() < deadline:
            time.sleep(0.1)
        out["flows_after_idle"] = len(proxy.conns())
        # zero-length and maximum-size datagrams, sent by scapy, replies read by a plain socket on that port
        got = []
        for sport, payload in ((30001, b""), (30002, bytes(i % 251 for i in range(65507)))):
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            rx.bind(("127.0.0.1", sport))
            rx.settimeout(5)
            send(IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=sport, dport=vport) / Raw(payload))
            try:
                data, src = rx.recvfrom(70000)
                got.append({"sent": len(payload), "got": len(data), "same": data == payload,
                            "from_vip": src == ("127.0.0.1", vport)})
            except TimeoutError:
                got.append({"sent": len(payload), "got": None})
            rx.close()
        out["sizes"] = got
    finally:
        proxy.stop()
        b.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
