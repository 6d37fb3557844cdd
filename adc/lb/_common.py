"""adc.lb._common: what every algorithm shares: eligibility, the stable hash, flow keys."""
from __future__ import annotations

import ipaddress
import struct
from typing import Optional

import xxhash

MAGLEV_M = 65537          # table size: prime, so every skip visits every slot
MAX_KEY = 128             # longest hash input; the C xxh3 covers 0..128 bytes


def eligible(m) -> bool:
    """May appear in a hashing table: operator and monitors allow it and its weight is above 0.

    A member at its max_connections stays in the table (the pick walks past it),
    so reaching a limit does not reshuffle every flow.
    """
    return (getattr(m, "admin", "enabled") == "enabled" and getattr(m, "health", "up") == "up"
            and m.weight > 0)


def hash64(data: bytes, seed: int = 0) -> int:
    """XXH3-64 of at most MAX_KEY bytes: the same on every worker, restart and appliance."""
    return xxhash.xxh3_64_intdigest(data[:MAX_KEY], seed)


def flow_key(client_ip: str, client_port: Optional[int] = None, mode: str = "source",
             vip_ip: Optional[str] = None, vip_port: Optional[int] = None, proto: str = "tcp") -> bytes:
    """The bytes the hashing algorithms hash for a flow; the C engine builds the same bytes.

    source:     the client's packed address (4 or 16 bytes)
    five_tuple: proto (6 or 17), client address, client port, VIP address, VIP port (ports big-endian)
    """
    src = ipaddress.ip_address(client_ip).packed
    if mode != "five_tuple":
        return src
    dst = ipaddress.ip_address(vip_ip).packed if vip_ip else b""
    return (bytes([17 if proto == "udp" else 6]) + src + struct.pack("!H", client_port or 0)
            + dst + struct.pack("!H", vip_port or 0))
