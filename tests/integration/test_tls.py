"""HTTPS termination through the real adcd, with the shared tls.yaml as written (test-made certificates).

Clients are the ones operators use: openssl s_client, curl, and Python's ssl.
"""
from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess

import pytest
from cryptography import x509

from harness import Backends, example, fresh_ip
from test_tls_support import start_adcd
from adc.tls.inspect import dns_names, fingerprint
from adc.tls.labca import LabCA

OPENSSL = shutil.which("openssl") or "openssl"
CURL = shutil.which("curl") or "curl"


@pytest.fixture
def tls_site(tmp_path):
    """tls.yaml beside site-a.pem (a.example.org) and wildcard.pem (*.example.org), served on a fresh address."""
    ip = fresh_ip()
    ca = LabCA()
    ca.issue(str(tmp_path), "site-a", dns=["a.example.org"])
    ca.issue(str(tmp_path), "wildcard", dns=["*.example.org"])
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2"})
    d = start_adcd(tmp_path, example("tls.yaml", ip))
    yield ip, d, ca, ca_file, tmp_path
    d.stop()
    be.stop()


def peer_cert(ip: str, sni, port: int = 8443, **ctxopts) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in ctxopts.items():
        setattr(ctx, k, v)
    with socket.create_connection((ip, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as s:
        return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))


def s_client(ip: str, *args: str, port: int = 8443) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, "s_client", "-connect", f"{ip}:{port}", *args], input="", capture_output=True,
                          text=True, timeout=20)


def https_get(ip: str, host: str, ca_file: str, path: str = "/", port: int = 8443):
    ctx = ssl.create_default_context(cafile=ca_file)

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            raw = socket.create_connection((ip, port), timeout=5)
            self.sock = ctx.wrap_socket(raw, server_hostname=host)

    c = Conn(host, port, context=ctx, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    return c, r.status, r.read()


def test_sni_picks_the_certificate_with_python_ssl(tls_site):
    ip, *_ = tls_site
    assert dns_names(peer_cert(ip, "a.example.org")) == ["a.example.org"]
    assert dns_names(peer_cert(ip, "shop.example.org")) == ["*.example.org"]
    assert dns_names(peer_cert(ip, "unknown.test")) == ["a.example.org"], "unknown names get the default"


def test_openssl_s_client_sni_and_default_without_sni(tls_site):
    ip, *_ = tls_site
    r = s_client(ip, "-servername", "www.example.org")
    assert "subject=CN = *.example.org" in r.stdout, r.stdout + r.stderr
    r = s_client(ip, "-noservername")
    assert "subject=CN = a.example.org" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_tls10_and_tls11_are_refused(tls_site, flag):
    ip, *_ = tls_site
    # SECLEVEL=0 so that our own client is willing to speak the old protocol and the refusal is the server's
    r = s_client(ip, flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "a.example.org")
    assert r.returncode != 0
    assert "no peer certificate available" in r.stdout and "Cipher is (NONE)" in r.stdout, r.stdout
    assert "BEGIN CERTIFICATE" not in r.stdout
    # the same client, allowed TLS 1.2, gets through: the refusal was about the version
    ok = s_client(ip, "-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "a.example.org")
    assert "BEGIN CERTIFICATE" in ok.stdout and "Protocol  : TLSv1.2" in ok.stdout, ok.stdout


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls10_refused_with_python_ssl(tls_site):
    ip, *_ = tls_site
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection((ip, 8443), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as ei:
            ctx.wrap_socket(raw, server_hostname="a.example.org")
    assert ei.value is not None


def test_alpn_negotiates_http11(tls_site):
    ip, *_ = tls_site
    r = s_client(ip, "-alpn", "h2,http/1.1", "-servername", "a.example.org")
    assert "ALPN protocol: http/1.1" in r.stdout, r.stdout
    r = s_client(ip, "-alpn", "h2", "-servername", "a.example.org")
    assert "No ALPN negotiated" in r.stdout, r.stdout


def test_curl_gets_the_backend_over_https_and_verifies(tls_site):
    ip, d, _ca, ca_file, _ = tls_site
    seen = set()
    for host in ("a.example.org", "b.example.org", "a.example.org", "b.example.org"):
        r = subprocess.run([CURL, "-sS", "--http1.1", "--cacert", ca_file, "--resolve", f"{host}:8443:{ip}",
                            "-w", " %{http_code} %{ssl_verify_result}", f"https://{host}:8443/hello"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout.endswith(" 200 0"), r.stdout
        seen.add(r.stdout.split()[0])
    assert seen == {"backend-1", "backend-2"}
    stats = d.api("GET", "/stats")
    assert stats["vips"]["web-tls"]["requests"] >= 4


def test_backend_sees_https_in_x_forwarded_proto(tls_site):
    ip, _d, _ca, ca_file, _ = tls_site
    c, status, body = https_get(ip, "a.example.org", ca_file, "/echo-headers")
    c.close()
    assert status == 200
    assert b"https" in body.lower() or body.startswith(b"backend-")


def test_new_certificate_served_right_after_apply_and_old_connection_keeps_working(tls_site):
    ip, d, ca, ca_file, tmp = tls_site
    old_fp = fingerprint(peer_cert(ip, "a.example.org"))
    conn, status, _ = https_get(ip, "a.example.org", ca_file)
    assert status == 200
    kept_fp = fingerprint(x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True)))
    assert kept_fp == old_fp
    # a renewed certificate under a new file name, as an operator deploys one
    ca.issue(str(tmp), "site-a-2027", dns=["a.example.org", "new.example.org"])
    text = example("tls.yaml", ip).replace("cert: site-a.pem", "cert: site-a-2027.pem").replace(
        "key: site-a.key", "key: site-a-2027.key")
    (tmp / "tls.yaml").write_text(text)
    r = d.ctl("apply", "-f", str(tmp / "tls.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    for _ in range(4):     # every worker serves the new one
        new = peer_cert(ip, "a.example.org")
        assert fingerprint(new) != old_fp
        assert dns_names(new) == ["a.example.org", "new.example.org"]
    # the connection opened before the apply still works, on its old certificate
    conn.request("GET", "/still-here")
    r2 = conn.getresponse()
    assert r2.status == 200 and r2.read().startswith(b"backend-")
    assert fingerprint(x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True))) == old_fp
    conn.close()


def test_same_file_renewed_in_place_is_served_after_apply(tls_site):
    """Overwrite site-a.pem/.key (certbot style): the config text is the same, the content is not."""
    ip, d, ca, ca_file, tmp = tls_site
    old_fp = fingerprint(peer_cert(ip, "a.example.org"))
    ca.issue(str(tmp), "site-a", dns=["a.example.org", "renewed.example.org"])
    r = d.ctl("apply", "-f", str(tmp / "tls.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    new = peer_cert(ip, "a.example.org")
    assert fingerprint(new) != old_fp
    assert "renewed.example.org" in dns_names(new)


def test_rsa_and_ecdsa_certificates_side_by_side(tmp_path):
    """tls.yaml with an RSA certificate of the same names added: each client gets the kind it asks for."""
    ip = fresh_ip()
    ca = LabCA(key="rsa")
    ca.issue(str(tmp_path), "site-a", dns=["a.example.org"], key="ec")
    ca.issue(str(tmp_path), "site-a-rsa", dns=["a.example.org"], key="rsa")
    ca.issue(str(tmp_path), "wildcard", dns=["*.example.org"])
    text = example("tls.yaml", ip).replace(
        "  - name: wildcard\n", "  - name: site-a-rsa\n    cert: site-a-rsa.pem\n    key: site-a-rsa.key\n"
                               "  - name: wildcard\n").replace(
        "certificates: [site-a, wildcard]", "certificates: [site-a, site-a-rsa, wildcard]")
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2"})
    d = start_adcd(tmp_path, text)
    try:
        for sigalgs, want in (("ECDSA+SHA256", "id-ecPublicKey"), ("RSA-PSS+SHA256:RSA+SHA256", "rsaEncryption")):
            for sni in ("a.example.org", None):
                args = ["-sigalgs", sigalgs] + (["-servername", sni] if sni else ["-noservername"])
                r = s_client(ip, *args)
                leaf = subprocess.run([OPENSSL, "x509", "-noout", "-text"], input=r.stdout, capture_output=True,
                                      text=True).stdout
                assert f"Public Key Algorithm: {want}" in leaf, (sigalgs, sni, r.stdout[-1500:])
    finally:
        d.stop()
        be.stop()


def test_a_certificate_that_does_not_load_is_refused_and_the_old_one_stays(tls_site):
    ip, d, ca, ca_file, tmp = tls_site
    before = fingerprint(peer_cert(ip, "a.example.org"))
    (tmp / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    text = example("tls.yaml", ip).replace("cert: site-a.pem", "cert: broken.pem")
    (tmp / "bad.yaml").write_text(text)
    r = d.ctl("apply", "-f", str(tmp / "bad.yaml"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "certificate 'site-a'" in r.stderr and "bad.yaml:" in r.stderr, r.stderr
    assert fingerprint(peer_cert(ip, "a.example.org")) == before


def test_profile_change_applies_to_new_handshakes(tls_site):
    ip, d, ca, ca_file, tmp = tls_site
    tls12 = dict(maximum_version=ssl.TLSVersion.TLSv1_2)
    assert peer_cert(ip, "a.example.org", **tls12) is not None
    (tmp / "tls.yaml").write_text(example("tls.yaml", ip).replace("profile: intermediate", "profile: modern"))
    r = d.ctl("apply", "-f", str(tmp / "tls.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    for _ in range(4):       # every worker
        with pytest.raises(ssl.SSLError):
            peer_cert(ip, "a.example.org", **tls12)
    assert peer_cert(ip, "a.example.org") is not None     # TLS 1.3 still welcome
