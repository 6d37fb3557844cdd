"""adc.l4.proxy_protocol: the PROXY protocol header (v1 text, v2 binary) that tells a member who the client is."""
from __future__ import annotations

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def header(version: str, client: tuple, local: tuple) -> bytes:
    src = ipaddress.ip_address(client[0])
    dst = ipaddress.ip_address(local[0])
    if version == "v1":
        fam = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {fam} {src} {dst} {client[1]} {local[1]}\r\n".encode()
    # v2: version 2, command PROXY; family INET/INET6 over STREAM
    if src.version == 4:
        body = src.packed + dst.packed + struct.pack("!HH", client[1], local[1])
        fam = 0x11
    else:
        body = src.packed + dst.packed + struct.pack("!HH", client[1], local[1])
        fam = 0x21
    return V2_SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body
