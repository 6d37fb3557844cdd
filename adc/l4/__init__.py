"""adc.l4: TCP and UDP forwarding of tcp and udp VIPs in the worker loop.

tcp_listener / udp_listener pick the data path for a VIP: the Cython fast
path (adc.l4.fast) where it is built, else the asyncio path of this package.
"""
from __future__ import annotations


def tcp_listener(ctx, vip, sock):
    from adc.l4.tcp import TcpListener
    return TcpListener(ctx, vip, sock)


def udp_listener(ctx, vip, sock):
    from adc.l4.udp import UdpListener
    return UdpListener(ctx, vip, sock)
