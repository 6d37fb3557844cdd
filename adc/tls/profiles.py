"""adc.tls.profiles: what a server context allows, by profile: Mozilla intermediate, modern, or custom.

The intermediate and modern values are Mozilla's server-side TLS
recommendations (ssl-config.mozilla.org, guideline 5.7): protocol versions,
TLS 1.2 cipher list, key-exchange groups, and the client's cipher order
(every allowed suite is strong, so the client picks what is fast for it).
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Optional

from adc.tls import _openssl

INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
GROUPS = ["X25519", "prime256v1", "secp384r1"]
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class Profile:
    name: str
    min_version: str = "1.2"                 # "1.2" | "1.3"; never lower: TLS 1.0/1.1 are refused always
    max_version: str = "1.3"
    ciphers: Optional[str] = INTERMEDIATE_CIPHERS   # TLS 1.2 suites (OpenSSL names); None: not used
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    server_preference: bool = False


INTERMEDIATE = Profile("intermediate")
MODERN = Profile("modern", min_version="1.3", ciphers=None)
PROFILES = {"intermediate": INTERMEDIATE, "modern": MODERN}


def resolve(name: str, min_version: Optional[str] = None, ciphers: Optional[str] = None,
            groups: Optional[list[str]] = None, server_preference: Optional[bool] = None) -> Profile:
    """The Profile of a VIP: a named one, or custom = intermediate with the given settings replaced."""
    if name in PROFILES:
        return PROFILES[name]
    if name != "custom":
        raise ValueError(f"unknown TLS profile {name!r}: intermediate, modern or custom")
    base = INTERMEDIATE
    return Profile(
        "custom",
        min_version=min_version or base.min_version,
        ciphers=ciphers if ciphers is not None else base.ciphers,
        groups=list(groups) if groups else list(base.groups),
        server_preference=base.server_preference if server_preference is None else server_preference,
    )


def apply(ctx: ssl.SSLContext, p: Profile) -> None:
    """Set versions, ciphers, groups and order on ctx. Raises ValueError naming a bad setting."""
    if p.min_version not in VERSIONS or p.max_version not in VERSIONS:
        raise ValueError(f"TLS versions must be 1.2 or 1.3 (got {p.min_version}..{p.max_version})")
    ctx.minimum_version = VERSIONS[p.min_version]
    ctx.maximum_version = VERSIONS[p.max_version]
    if p.ciphers and p.min_version == "1.2":
        try:
            ctx.set_ciphers(p.ciphers)
        except ssl.SSLError:
            raise ValueError(f"no usable cipher in {p.ciphers!r} (OpenSSL names, like ECDHE-RSA-AES128-GCM-SHA256)") from None
    # no compression (CRIME), no renegotiation by clients, a fresh ECDHE key per handshake
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_SINGLE_ECDH_USE | ssl.OP_NO_RENEGOTIATION
    if p.server_preference:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if not _openssl.set_groups(ctx, p.groups):
        if p.groups != GROUPS:
            raise ValueError(f"key-exchange groups {':'.join(p.groups)} not accepted by OpenSSL "
                             f"(names like X25519, prime256v1, secp384r1)")
        # OpenSSL's own default list: X25519 and P-256 first as well
