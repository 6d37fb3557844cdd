"""adc.health.tls: TLS monitors: a full handshake, and the days until the member's certificate expires."""
from __future__ import annotations

import time

from cryptography import x509

from adc.config.schema import Monitor

from .http import client_context, server_name
from .probe import Outcome, Target, exchange


def days_left(der: bytes, now: float) -> float:
    cert = x509.load_der_x509_certificate(der)
    return (cert.not_valid_after_utc.timestamp() - now) / 86400.0


class TlsProbe:
    """Passes when the handshake completes (and, with verify, the chain and name check out).

    An expired certificate fails the check only with verify: without it the
    monitor's job is to say the member speaks TLS, and the detail still
    reports the expiry so an operator sees it in `adcctl member show`.
    """

    def __init__(self, mon: Monitor):
        self.mon = mon
        self.ctx = client_context(mon.verify)
        self.sni = server_name(mon)

    async def __call__(self, target: Target) -> Outcome:
        _, _, sslobj = await exchange(target, None, None, ssl_ctx=self.ctx,
                                      server_hostname=self.sni or (target.address if self.mon.verify else None),
                                      want_reply=False)
        if sslobj is None:
            return Outcome(False, "no TLS session")
        version = sslobj.version() or "TLS"
        der = sslobj.getpeercert(binary_form=True)
        if not der:
            return Outcome(True, f"{version} handshake, no certificate")
        days = days_left(der, time.time())
        if days < 0:
            return Outcome(not self.mon.verify, f"{version} handshake, certificate expired {int(-days)} days ago")
        return Outcome(True, f"{version} handshake, certificate expires in {int(days)} days")
