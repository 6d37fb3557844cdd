"""adc.tls.identity: the verified client certificate of an mTLS connection, as request headers for members.

Headers (names lower case, as the router compares them):
  x-client-verify             SUCCESS (a certificate was sent and verified) or NONE (optional, none sent)
  x-client-cert-subject       RFC 4514 subject, e.g. CN=alice,O=Example
  x-client-cert-issuer        RFC 4514 issuer
  x-client-cert-san           the SANs, comma separated: DNS:a.example.org, email:alice@example.org
  x-client-cert-fingerprint   SHA-256 of the DER certificate, lower-case hex
  x-client-cert-serial        serial number, hex
  x-client-cert-not-after     2027-01-31T12:00:00Z
A client cannot send these itself: fields with these names are removed from
every request of a VIP with client_auth, before routing, so members and route
matches see only what adcd verified.
"""
from __future__ import annotations

from typing import Optional

from cryptography import x509

PREFIX = b"x-client-cert-"
VERIFY = b"x-client-verify"
_NONE = [(VERIFY, b"NONE")]


def _clean(s: str) -> bytes:
    """A header value: control characters (CR, LF, NUL...) escaped, never passed through."""
    return "".join(c if 0x20 <= ord(c) != 0x7f else f"\\x{ord(c):02x}" for c in s).encode("utf-8", "replace")


def fields_for(der: Optional[bytes]) -> list[tuple[bytes, bytes]]:
    if not der:
        return list(_NONE)
    from adc.tls.inspect import subject_alt_names
    cert = x509.load_der_x509_certificate(der)
    return [
        (VERIFY, b"SUCCESS"),
        (PREFIX + b"subject", _clean(cert.subject.rfc4514_string())),
        (PREFIX + b"issuer", _clean(cert.issuer.rfc4514_string())),
        (PREFIX + b"san", _clean(", ".join(subject_alt_names(cert)))),
        (PREFIX + b"fingerprint", _fp(der)),
        (PREFIX + b"serial", format(cert.serial_number, "x").encode()),
        (PREFIX + b"not-after", cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ").encode()),
    ]


def _fp(der: bytes) -> bytes:
    import hashlib
    return hashlib.sha256(der).hexdigest().encode()


def of_transport(transport) -> list[tuple[bytes, bytes]]:
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    if sslobj is None:
        return list(_NONE)
    return fields_for(sslobj.getpeercert(binary_form=True))


def spoofed(name: bytes) -> bool:
    n = name.lower()
    return n == VERIFY or n.startswith(PREFIX)


def add_to_request(conn, req) -> None:
    """Replace any client-sent identity fields of req by the connection's verified ones (cached per connection)."""
    ids = getattr(conn, "tls_identity", None)
    if ids is None:
        t = conn.transport
        # adc.tls._conn's transport has a slot for them when the connection class has none
        ids = getattr(t, "tls_identity", None)
        if ids is None:
            ids = of_transport(t)
            for holder in (conn, t):
                try:
                    holder.tls_identity = ids
                    break
                except AttributeError:      # no slot: parse again next request
                    pass
    req.fields = [f for f in req.fields if not spoofed(f[0])] + ids
