"""adc.l4: TCP and UDP forwarding of tcp and udp VIPs in the worker loop.

tcp_listener / udp_listener pick the data path for a VIP: the Cython
engine (adc.l4.fast: splice, recvmmsg, C schedulers) where it is built, and
the asyncio path of this package otherwise. ADC_L4=asyncio forces the
asyncio path, so the same integration tests can run against both.
"""
from __future__ import annotations

import os


def _fast():
    if os.environ.get("ADC_L4", "fast") == "asyncio":
        return None
    from adc.l4 import fast
    return fast if fast.available() else None


def tcp_listener(ctx, vip, sock):
    fast = _fast()
    if fast is not None:
        return fast.FastTcpListener(ctx, vip, sock)
    from adc.l4.tcp import TcpListener
    return TcpListener(ctx, vip, sock)


def udp_listener(ctx, vip, sock):
    fast = _fast()
    if fast is not None:
        return fast.FastUdpListener(ctx, vip, sock)
    from adc.l4.udp import UdpListener
    return UdpListener(ctx, vip, sock)
