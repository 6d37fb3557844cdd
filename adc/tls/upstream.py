"""adc.tls.upstream: TLS from adc to pool members (re-encryption): client contexts, what to verify, why it failed.

Verification is on unless the pool says `verify: false`: the member's chain
must lead to the pool's CA bundle (or the system store), and its certificate
must carry the pool's `name`, or, without one, the member's IP address. A
member that fails is treated like one that refused the connection: the
request is retried on another member, and answered 502 when none is left;
the log line names the pool, the member and OpenSSL's reason.
"""
from __future__ import annotations

import ipaddress
import logging
import ssl

from adc.config.plan import UpstreamTlsPlan

logger = logging.getLogger("adc.tls")

_contexts: dict[int, tuple[UpstreamTlsPlan, ssl.SSLContext]] = {}


def context(t: UpstreamTlsPlan) -> ssl.SSLContext:
    """The client context of a pool's TLS settings, built once per plan object."""
    hit = _contexts.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if t.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(["http/1.1"])
    if t.verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        if t.ca:
            ctx.load_verify_locations(cafile=t.ca)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if t.cert:
        ctx.load_cert_chain(t.cert, t.key)
    if len(_contexts) > 256:          # plans replaced by applies: drop the old ones
        _contexts.clear()
    _contexts[id(t)] = (t, ctx)
    return ctx


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def connect_kwargs(t: UpstreamTlsPlan, address: str) -> dict:
    """ssl= and server_hostname= for loop.create_connection to a member at address.

    server_hostname is both the SNI sent and the name checked: sni, else name,
    else the member's address (matched against IP SANs; never sent as SNI).
    """
    return {"ssl": context(t), "server_hostname": t.sni or t.name or address}


def log_failure(pool: str, member: str, e: BaseException) -> None:
    """One line an operator can act on, for a member whose TLS handshake failed."""
    if isinstance(e, ssl.SSLCertVerificationError):
        why = str(e.verify_message or e.reason or e).rstrip(".")
        logger.error("pool '%s' member %s: TLS certificate verification failed: %s; fix the member's certificate "
                     "or the pool's tls.ca / tls.name (request retried on another member, else 502)",
                     pool, member, why)
    elif isinstance(e, ssl.SSLError):
        logger.error("pool '%s' member %s: TLS handshake failed: %s (request retried on another member, else 502)",
                     pool, member, str(e.reason or e).rstrip("."))
