"""adc.tls.server: the server side of an https VIP: one SSLContext per certificate set, chosen by SNI.

How it fits uvloop: create_server gets one context for the life of the
listener (`ServerTls.context`, the dispatcher). Its SNI callback runs for
every ClientHello, with or without a server name, and moves the handshake to
the context holding the certificates for that name. An apply swaps the set
of per-name contexts in place, so the next handshake sees the new
certificates while connections already open keep the SSL objects they have.

What OpenSSL takes from where (why every setting is applied to all contexts):
- protocol versions, ciphers, groups, verify mode: copied from the
  dispatcher when the connection is created, before the callback: updated
  in place on the dispatcher on apply;
- certificates, CA store for client certificates, ALPN choice: from the
  context chosen by the callback;
- session ticket keys: the dispatcher's (OpenSSL's session context).

The C path (adc.tls._conn, docs/tls.md) cannot run Python's SNI callback (it
needs a Python SSLSocket): it starts its SSL objects on a dispatcher of its
own, `c_dispatcher()`, with the same policy, default certificates and ticket
keys, whose servername callback is set in C and asks `certs.for_name`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import ssl
import tempfile
import time
import weakref
from typing import Optional

from adc.config.plan import TlsPlan
from adc.tls import _openssl, profiles
from adc.tls.inspect import dns_names, key_type, load_certs
from adc.tls.sni import CertEntry, SniIndex

logger = logging.getLogger("adc.tls")

VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _profile(tls: TlsPlan) -> profiles.Profile:
    return profiles.resolve(tls.profile, min_version=tls.min_version, ciphers=tls.ciphers, groups=tls.groups)


def apply_policy(ctx: ssl.SSLContext, tls: TlsPlan) -> None:
    """Everything but certificates: versions, ciphers, groups, ALPN, client verification, tickets on/off."""
    profiles.apply(ctx, _profile(tls))
    if tls.alpn:
        ctx.set_alpn_protocols(list(tls.alpn))
    ctx.verify_mode = VERIFY[tls.client_auth]
    if tls.session_tickets:
        ctx.options &= ~ssl.OP_NO_TICKET
    else:
        ctx.options |= ssl.OP_NO_TICKET


class _Certs:
    """One revision's certificates: the SNI index and a context per certificate set, built on demand."""

    def __init__(self, tls: TlsPlan):
        self.tls = tls
        self.files: list[tuple[str, str, str, Optional[str]]] = list(tls.certificates)
        entries = []
        self.pems: list[tuple[bytes, str]] = []      # (certificate + chain PEM, key file)
        for name, cert, key, chain in self.files:
            cert_pem = _read(cert)
            if chain:
                cert_pem = cert_pem.rstrip(b"\n") + b"\n" + _read(chain)
            leaf = load_certs(cert_pem, f"certificate {name!r}")[0]
            entries.append(CertEntry(name, frozenset(dns_names(leaf)), key_type(leaf.public_key())))
            self.pems.append((cert_pem, key))
        self.index = SniIndex(entries)
        self.contexts: dict[tuple[int, ...], ssl.SSLContext] = {}
        # every set a lookup can return, built now: a bad file fails the apply, not a handshake
        sets = {self.index.default}
        sets.update(self.index.lookup(n) for e in entries for n in e.names if not n.startswith("*."))
        sets.update(self.index.lookup("x." + n[2:]) for e in entries for n in e.names if n.startswith("*."))
        for s in sets:
            self.context(s)

    def context(self, which: tuple[int, ...]) -> ssl.SSLContext:
        ctx = self.contexts.get(which)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            apply_policy(ctx, self.tls)
            if self.tls.ca:
                ctx.load_verify_locations(cafile=self.tls.ca)
            for i in which:
                _load_pair(ctx, *self.pems[i])
            self.contexts[which] = ctx
        return ctx

    def for_name(self, server_name: Optional[str]) -> ssl.SSLContext:
        return self.context(self.index.lookup(server_name))


def _load_pair(ctx: ssl.SSLContext, cert_pem: bytes, key_file: str) -> None:
    """load_cert_chain reads files only: the certificate and chain (public) go through a temporary
    file, removed at once; the key is read from its own file, never copied."""
    fd, path = tempfile.mkstemp(prefix="adc-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem)
        ctx.load_cert_chain(path, key_file, password=_no_password)
    finally:
        os.unlink(path)


def _no_password():
    # an encrypted key fails the load instead of prompting on a terminal
    raise ValueError("the key is encrypted; adc needs an unencrypted PEM key")


def _ticket_keys(secret: bytes, vip: str, epoch: int) -> bytes:
    """80 bytes of ticket keys for one rotation period: the same in every worker of this adcd."""
    out = b""
    for block in (b"1", b"2"):
        out += hmac.new(secret, b"adc-ticket|%s|%d|%s" % (vip.encode(), epoch, block), hashlib.sha512).digest()
    return out[:80]


class ServerTls:
    """The TLS side of one https listener. `context` goes to create_server(ssl=...)."""

    def __init__(self, tls: TlsPlan, vip: str = "", loop=None):
        self.vip = vip
        self.loop = loop
        self.certs = _Certs(tls)
        # pass the verified client certificate to members (adc.tls.identity); read by ClientConn every
        # request of the VIP: a plain attribute, not a property (an interpreted frame per request)
        self.identity_headers = self._identity_headers(tls)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        apply_policy(self.context, tls)
        # the default set, so a client is served even if the callback never switched
        for i in self.certs.index.default:
            _load_pair(self.context, *self.certs.pems[i])
        me = weakref.ref(self)

        def on_sni(sslobj, server_name, _ctx):
            s = me()
            if s is not None:
                try:
                    sslobj.context = s.certs.for_name(server_name)
                except Exception:      # noqa: BLE001 - a callback must not raise into OpenSSL
                    logger.exception("vip %s: SNI %r: no context", s.vip, server_name)
                    return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
            return None

        self.context.sni_callback = on_sni
        self._c_context: Optional[ssl.SSLContext] = None
        self._keys: Optional[bytes] = None
        self._epoch = None
        self._timer = None
        self._tickets(tls)

    @property
    def tls(self) -> TlsPlan:
        return self.certs.tls

    @staticmethod
    def _identity_headers(t: TlsPlan) -> bool:
        return t.client_auth != "none" and t.client_headers

    def add_identity(self, conn, req) -> None:
        from adc.tls.identity import add_to_request
        add_to_request(conn, req)

    def update(self, tls: TlsPlan) -> None:
        """Serve tls from the next handshake on. Raises (and changes nothing) if it cannot be loaded."""
        if tls.version and tls == self.certs.tls:
            return
        new = _Certs(tls)
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        apply_policy(probe, tls)            # raises before anything changes
        apply_policy(self.context, tls)
        if self._c_context is not None:
            apply_policy(self._c_context, tls)
        self.certs = new
        self.identity_headers = self._identity_headers(tls)
        self._epoch = None
        self._tickets(tls)

    def c_dispatcher(self) -> ssl.SSLContext:
        """The context adc.tls._conn makes its SSL objects from (its servername callback is set in C)."""
        if self._c_context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            apply_policy(ctx, self.tls)
            for i in self.certs.index.default:
                _load_pair(ctx, *self.certs.pems[i])
            if self._keys is not None:
                _openssl.set_ticket_keys(ctx, self._keys)
            self._c_context = ctx
        return self._c_context

    def c_server(self, app_factory, handshake_timeout: float):
        """TLS termination in C (adc.tls._conn) as a protocol factory for a plain create_server, or None:
        then the caller serves through uvloop's ssl with `context`, and the log says why."""
        if os.environ.get("ADC_TLS_ENGINE", "c") == "uvloop":
            return None
        try:
            from adc.tls import _conn
        except ImportError as e:
            logger.warning("vip %s: adc.tls._conn is not built (%s): TLS through uvloop's ssl, "
                           "which costs more CPU per request (run `make build`)", self.vip, e)
            return None
        try:
            srv = _conn.TlsServer(self, app_factory, self.loop, handshake_timeout)
            logger.info("vip %s: TLS terminated in C (adc.tls._conn, %s)", self.vip, _conn.LINKED_VERSION)
            return srv
        except _conn.Unsupported as e:
            logger.warning("vip %s: TLS through uvloop's ssl, not adc's C path: %s", self.vip, e)
            return None

    def apply(self, tls: TlsPlan) -> bool:
        """update(), for a commit that cannot fail: on error keep serving the old set and log why."""
        try:
            self.update(tls)
            return True
        except Exception as e:      # noqa: BLE001 - the files were checked at validate; they changed since
            logger.error("vip %s: new certificates not loaded, still serving the previous ones: %s", self.vip, e)
            return False

    # ---------------------------------------------------------- session tickets
    def _tickets(self, tls: TlsPlan) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not tls.session_tickets or not tls.ticket_secret:
            return
        period = max(60.0, tls.ticket_rotation)
        now = time.time()
        epoch = int(now // period)
        if epoch != self._epoch:
            keys = _ticket_keys(tls.ticket_secret, self.vip, epoch)
            if _openssl.set_ticket_keys(self.context, keys):
                self._epoch = epoch
                self._keys = keys
                if self._c_context is not None:
                    _openssl.set_ticket_keys(self._c_context, keys)
            else:
                # OpenSSL keeps its own random keys: resumption works within this worker only
                logger.warning("vip %s: cannot set session ticket keys; using OpenSSL's own", self.vip)
                return
        if self.loop is not None:
            me = weakref.ref(self)
            self._timer = self.loop.call_later((epoch + 1) * period - now + 0.01,
                                               lambda: (s := me()) is not None and s._tickets(s.tls))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
