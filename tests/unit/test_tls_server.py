"""adc.tls.server and adc.tls.sni: real handshakes (stdlib ssl) against the contexts an https VIP serves."""
from __future__ import annotations

import socket
import ssl
import threading

import pytest

from adc.config.plan import TlsPlan
from adc.tls.labca import LabCA
from adc.tls.sni import CertEntry, SniIndex
from adc.tls.server import ServerTls


# ------------------------------------------------------------------ SNI rules
def _idx():
    return SniIndex([
        CertEntry("site-a", frozenset({"a.example.org"}), "ec"),
        CertEntry("wildcard", frozenset({"*.example.org"}), "ec"),
        CertEntry("wildcard-rsa", frozenset({"*.example.org"}), "rsa"),
        CertEntry("other", frozenset({"other.test", "www.other.test"}), "ec"),
    ])


@pytest.mark.parametrize("desc, name, want", [
    ("no server name gets the first certificate", None, ("site-a",)),
    ("an exact name wins over the wildcard for its key type", "a.example.org", ("site-a", "wildcard-rsa")),
    ("names compare without case and trailing dot", "A.Example.ORG.", ("site-a", "wildcard-rsa")),
    ("a wildcard covers one label", "b.example.org", ("wildcard", "wildcard-rsa")),
    ("a wildcard does not cover the bare domain", "example.org", ("site-a",)),
    ("a wildcard does not cover two labels", "x.b.example.org", ("site-a",)),
    ("a second SAN is served", "www.other.test", ("other",)),
    ("an unknown name gets the default", "nothing.invalid", ("site-a",)),
])
def test_sni_rules(desc, name, want):
    idx = _idx()
    assert tuple(idx.entries[i].name for i in idx.lookup(name)) == want, desc


def test_default_takes_other_key_types_with_the_same_names():
    idx = SniIndex([CertEntry("ec", frozenset({"a.test"}), "ec"), CertEntry("rsa", frozenset({"a.test"}), "rsa")])
    assert idx.lookup(None) == (0, 1)


# ----------------------------------------------------------- real handshakes
@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca = LabCA()
    files = {
        "site-a": ca.issue(str(d), "site-a", dns=["a.example.org"]),
        "wildcard": ca.issue(str(d), "wildcard", dns=["*.example.org"]),
        "wildcard-rsa": ca.issue(str(d), "wildcard-rsa", dns=["*.example.org"], key="rsa"),
        "site-b": ca.issue(str(d), "site-b", dns=["b.example.org"]),
    }
    return d, ca, files


def plan(files, names, **kw) -> TlsPlan:
    return TlsPlan(certificates=[(n, *files[n], None) for n in names], **kw)


class Server:
    """A loopback TLS server on the context; answers each connection with its ALPN and closes."""

    def __init__(self, ctx: ssl.SSLContext):
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.errors: list[str] = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(5)
            try:
                with self.ctx.wrap_socket(c, server_side=True) as s:
                    s.sendall((s.selected_alpn_protocol() or "-").encode() + b" " + s.version().encode())
            except (ssl.SSLError, OSError) as e:
                self.errors.append(str(e))
                c.close()

    def close(self):
        self.sock.close()


def handshake(port, sni=None, ca=None, versions=None, alpn=None, sigalgs=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if versions:
        ctx.minimum_version, ctx.maximum_version = versions
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if sigalgs:
        ctx.set_ciphers(sigalgs)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            der = s.getpeercert(binary_form=True)
            data = s.recv(100)
            from cryptography import x509
            cert = x509.load_der_x509_certificate(der)
            return cert, data.decode()


def san(cert):
    from adc.tls.inspect import dns_names
    return dns_names(cert)


def test_sni_picks_the_certificate_and_the_default_has_no_name(certs):
    d, ca, files = certs
    st = ServerTls(plan(files, ["site-a", "wildcard"]), "t")
    srv = Server(st.context)
    try:
        assert san(handshake(srv.port, "a.example.org")[0]) == ["a.example.org"]
        assert san(handshake(srv.port, "zzz.example.org")[0]) == ["*.example.org"]
        assert san(handshake(srv.port, None)[0]) == ["a.example.org"]
        assert san(handshake(srv.port, "unknown.test")[0]) == ["a.example.org"]
    finally:
        srv.close()


def test_alpn_http11_and_tls13_by_default(certs):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a"]), "t")
    srv = Server(st.context)
    try:
        _, data = handshake(srv.port, "a.example.org", alpn=["h2", "http/1.1"])
        assert data == "http/1.1 TLSv1.3"
    finally:
        srv.close()


def test_rsa_and_ecdsa_side_by_side(certs):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a", "wildcard", "wildcard-rsa"]), "t")
    srv = Server(st.context)
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        c, _ = handshake(srv.port, "x.example.org", versions=(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
                         sigalgs="ECDHE-RSA-AES128-GCM-SHA256")
        assert isinstance(c.public_key(), rsa.RSAPublicKey)
        c, _ = handshake(srv.port, "x.example.org", versions=(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
                         sigalgs="ECDHE-ECDSA-AES128-GCM-SHA256")
        assert isinstance(c.public_key(), ec.EllipticCurvePublicKey)
    finally:
        srv.close()


def test_modern_profile_refuses_tls12(certs):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a"], profile="modern"), "t")
    srv = Server(st.context)
    try:
        with pytest.raises(ssl.SSLError):
            handshake(srv.port, "a.example.org", versions=(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2))
        assert handshake(srv.port, "a.example.org")[1].endswith("TLSv1.3")
    finally:
        srv.close()


def test_update_serves_new_certificates_at_the_next_handshake(certs):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a"]), "t")
    srv = Server(st.context)
    try:
        assert san(handshake(srv.port, None)[0]) == ["a.example.org"]
        st.update(plan(files, ["site-b", "site-a"]))
        assert san(handshake(srv.port, None)[0]) == ["b.example.org"]
        assert san(handshake(srv.port, "a.example.org")[0]) == ["a.example.org"]
    finally:
        srv.close()


def test_a_bad_update_changes_nothing(certs, tmp_path):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a"]), "t")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    assert not st.apply(TlsPlan(certificates=[("bad", str(bad), files["site-a"][1], None)]))
    srv = Server(st.context)
    try:
        assert san(handshake(srv.port, None)[0]) == ["a.example.org"]
    finally:
        srv.close()


def test_custom_profile_settings(certs):
    _, _, files = certs
    st = ServerTls(plan(files, ["site-a"], profile="custom", min_version="1.2",
                        ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", groups=["prime256v1"]), "t")
    srv = Server(st.context)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                assert s.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    finally:
        srv.close()


def test_files_changed_sees_certificates_and_pool_cas_renewed_in_place(tmp_path):
    from adc.config.compile import SlotAllocator, compile_plan
    from adc.config.loader import load_text
    from adc.tls.plan import files_changed
    ca = LabCA()
    ca.issue(str(tmp_path), "site", dns=["a.example.org"])
    ca.write_ca(str(tmp_path / "members.pem"))
    text = """
certificates:
  - {name: site, cert: site.pem, key: site.key}
pools:
  - name: web
    tls: {ca: members.pem}
    members: [{address: 127.0.0.1, port: 9001}]
vips:
  - {name: v, address: 127.0.0.1, port: 8443, protocol: https, tls: {certificates: [site]}, default_pool: web}
"""
    path = str(tmp_path / "adc.yaml")
    cfg = load_text(text, path)
    plan = compile_plan(cfg, 1, SlotAllocator())
    assert not files_changed(plan, cfg)
    LabCA().write_ca(str(tmp_path / "members.pem"))
    assert files_changed(plan, cfg)
    plan = compile_plan(cfg, 2, SlotAllocator())
    assert not files_changed(plan, cfg)
    ca.issue(str(tmp_path), "site", dns=["a.example.org"])
    assert files_changed(plan, cfg)


def _session_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _connect(port, ctx, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.example.org", session=session) as s:
            s.recv(100)
            return s.session, s.session_reused


def test_ticket_keys_shared_by_secret_and_rotated_by_period(certs):
    from adc.tls import _openssl
    from adc.tls.server import _ticket_keys
    _, _, files = certs
    secret = b"s" * 32
    one = ServerTls(plan(files, ["site-a"], ticket_secret=secret), "v")
    two = ServerTls(plan(files, ["site-a"], ticket_secret=secret), "v")
    other = ServerTls(plan(files, ["site-a"], ticket_secret=b"o" * 32), "v")
    s1, s2, s3 = Server(one.context), Server(two.context), Server(other.context)
    try:
        cctx = _session_client()
        session, reused = _connect(s1.port, cctx)
        assert not reused and session.has_ticket
        assert _connect(s2.port, cctx, session)[1], "another worker with the same secret resumes it"
        assert not _connect(s3.port, cctx, session)[1], "another adcd (secret) does not"
        # the next period's keys: the old ticket no longer opens
        assert _openssl.set_ticket_keys(two.context, _ticket_keys(secret, "v", one._epoch + 1))
        assert not _connect(s2.port, cctx, session)[1]
    finally:
        for s in (s1, s2, s3):
            s.close()
