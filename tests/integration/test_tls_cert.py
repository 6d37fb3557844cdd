"""`adcctl cert list|show|import|self-signed` against the real adcd serving the shared tls.yaml."""
from __future__ import annotations

import datetime
import json
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness import Backends, example, fresh_ip
from test_tls_support import start_adcd
from adc.tls.inspect import dns_names, fingerprint
from adc.tls.labca import LabCA


@pytest.fixture
def site(tmp_path):
    ip = fresh_ip()
    ca = LabCA(intermediate=True)
    ca.issue(str(tmp_path), "site-a", dns=["a.example.org"])
    ca.issue(str(tmp_path), "wildcard", dns=["*.example.org"])
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2"})
    d = start_adcd(tmp_path, example("tls.yaml", ip))
    yield ip, d, ca, tmp_path
    d.stop()
    be.stop()


def served(ip: str, sni: str = "a.example.org") -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 8443), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as s:
        return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))


def test_cert_list_shows_subject_sans_issuer_key_expiry(site):
    ip, d, ca, tmp = site
    r = d.ctl("cert", "list", "-o", "json")
    assert r.returncode == 0, r.stderr
    certs = {c["name"]: c for c in json.loads(r.stdout)}
    assert set(certs) == {"site-a", "wildcard"}
    a = certs["site-a"]
    assert a["subject"] == "CN=a.example.org"
    assert a["sans"] == ["DNS:a.example.org"]
    assert a["issuer"] == "CN=adc lab CA intermediate"
    assert a["key"] == "ECDSA P-256"
    assert 88 <= a["days_left"] <= 90
    assert a["used_by"] == ["web-tls"] and a["status"] == "ok"
    r = d.ctl("cert", "list", "-o", "table")
    assert r.returncode == 0
    assert "site-a" in r.stdout and "*.example.org" in r.stdout and "DAYS LEFT" in r.stdout


def test_cert_show_matches_what_is_served(site):
    ip, d, *_ = site
    r = d.ctl("cert", "show", "site-a", "-o", "json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert c["fingerprint_sha256"] == fingerprint(served(ip))
    assert c["chain"] == ["CN=adc lab CA intermediate"]
    assert c["files"]["cert"].endswith("/site-a.pem")
    r = d.ctl("cert", "show", "nosuch")
    assert r.returncode == 1 and "no certificate 'nosuch'" in r.stderr


def test_import_serves_the_new_certificate_at_once(site):
    ip, d, ca, tmp = site
    before = fingerprint(served(ip))
    new_cert, new_key = ca.issue(str(tmp), "incoming", dns=["a.example.org", "b2.example.org"])
    r = d.ctl("cert", "import", "site-a", "--cert", new_cert, "--key", new_key, "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["applied"] is True
    for _ in range(4):
        c = served(ip)
        assert fingerprint(c) != before and dns_names(c) == ["a.example.org", "b2.example.org"]
    r = d.ctl("cert", "show", "site-a", "-o", "json")
    assert json.loads(r.stdout)["fingerprint_sha256"] == fingerprint(served(ip))


def test_import_refuses_a_key_that_does_not_match(site):
    ip, d, ca, tmp = site
    before = fingerprint(served(ip))
    c1, _ = ca.issue(str(tmp), "one", dns=["a.example.org"])
    _, k2 = ca.issue(str(tmp), "two", dns=["a.example.org"])
    r = d.ctl("cert", "import", "site-a", "--cert", c1, "--key", k2)
    assert r.returncode == 1
    assert "refused" in r.stderr and "key does not match the certificate" in r.stderr, r.stderr
    assert fingerprint(served(ip)) == before


def test_import_refuses_an_expired_certificate(site):
    ip, d, ca, tmp = site
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=100)
    c, k = ca.issue(str(tmp), "old", dns=["a.example.org"], not_before=long_ago, days=30)
    r = d.ctl("cert", "import", "site-a", "--cert", c, "--key", k)
    assert r.returncode == 1
    assert "expired on" in r.stderr and "renew it" in r.stderr, r.stderr


def test_import_refuses_a_chain_out_of_order(site):
    ip, d, ca, tmp = site
    c, k = ca.issue(str(tmp), "leaf", dns=["a.example.org"], with_chain=False)
    chain = tmp / "chain-wrong.pem"
    # root first, then the intermediate: the leaf's issuer must come first
    chain.write_bytes(ca.root_cert.public_bytes(serialization.Encoding.PEM)
                      + ca.inter.public_bytes(serialization.Encoding.PEM))
    r = d.ctl("cert", "import", "site-a", "--cert", c, "--key", k, "--chain", str(chain))
    assert r.returncode == 1
    assert "chain order" in r.stderr and "#3" in r.stderr, r.stderr
    good = tmp / "chain-right.pem"
    good.write_bytes(ca.inter.public_bytes(serialization.Encoding.PEM))
    r = d.ctl("cert", "import", "site-a", "--cert", c, "--key", k, "--chain", str(good))
    assert r.returncode == 0, r.stderr


def test_import_warns_under_30_days_and_still_imports(site):
    ip, d, ca, tmp = site
    c, k = ca.issue(str(tmp), "short", dns=["a.example.org"], days=10)
    r = d.ctl("cert", "import", "site-a", "--cert", c, "--key", k, "-o", "json")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "expires in" in r.stderr
    assert 8 <= json.loads(r.stdout)["days_left"] <= 10
    assert fingerprint(served(ip)) == fingerprint(x509.load_pem_x509_certificates(open(c, "rb").read())[0])


def test_self_signed_to_files_and_into_adcd(site):
    ip, d, ca, tmp = site
    r = d.ctl("cert", "self-signed", "lab", "--dns", "lab.test", "--dns", "*.lab.test", "--out", str(tmp / "lab"),
              "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sans"] == ["DNS:lab.test", "DNS:*.lab.test"] and out["self_signed"] is True
    assert (tmp / "lab" / "lab.key").stat().st_mode & 0o777 == 0o600
    # a name the config does not have yet: stored by adcd, with the lines to add
    r = d.ctl("cert", "self-signed", "lab2", "--dns", "lab2.test", "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["applied"] is False and "add it" in out["hint"]
    assert out["files"]["cert"].startswith(str(d.state_dir))
    # and into a name the VIP serves: served at once
    r = d.ctl("cert", "self-signed", "wildcard", "--dns", "*.example.org", "--key", "rsa")
    assert r.returncode == 0, r.stderr
    c = served(ip, "z.example.org")
    assert c.issuer == c.subject and c.public_key().key_size == 2048


def test_import_check_only_sends_nothing(site):
    ip, d, ca, tmp = site
    before = fingerprint(served(ip))
    c, k = ca.issue(str(tmp), "x", dns=["a.example.org"])
    r = d.ctl("cert", "import", "site-a", "--cert", c, "--key", k, "--check", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["subject"] == "CN=a.example.org"
    assert fingerprint(served(ip)) == before


def test_days_left_of_each_certificate_in_metrics(site):
    ip, d, ca, tmp = site
    from harness import unix_request
    status, _, body = unix_request(d.socket, "GET", "/metrics")
    assert status == 200
    text = body.decode()
    lines = {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in text.splitlines()
             if ln.startswith("adc_certificate_days_left{")}
    assert 88 <= lines['adc_certificate_days_left{certificate="site-a"}'] <= 90
    assert 88 <= lines['adc_certificate_days_left{certificate="wildcard"}'] <= 90
    assert 'adc_certificate_not_after_seconds{certificate="site-a"}' in text


def test_handshakes_resumptions_and_client_failures_in_metrics(site):
    ip, d, *_ = site
    from harness import unix_request

    def vip_metrics() -> dict:
        status, _, body = unix_request(d.socket, "GET", "/metrics")
        assert status == 200
        text = body.decode()
        assert "adc_member_tls_" not in text        # handshakes are the VIP's, not its members'
        return {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in text.splitlines()
                if ln.startswith("adc_vip_tls_") and 'vip="web-tls"' in ln}

    before = vip_metrics()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 8443), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="a.example.org") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.org\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")     # TLS 1.3 tickets came before it
        session = s.session
    with socket.create_connection((ip, 8443), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="a.example.org", session=session) as s:
        assert s.session_reused
        # an answer: the worker has finished (and counted) the handshake before /metrics is read
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.org\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    # a client speaking plain HTTP to the https port: its handshake fails and it is closed (no
    # alert: OpenSSL answers none to bytes that are not a TLS record)
    with socket.create_connection((ip, 8443), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: a.example.org\r\n\r\n")
        assert raw.recv(100) == b""
    after = vip_metrics()

    def grew(name):
        key = f'adc_vip_{name}_total{{vip="web-tls"}}'
        return after.get(key, 0) - before.get(key, 0)

    assert grew("tls_handshakes") == 2
    assert grew("tls_resumed") == 1
    assert grew("tls_handshake_failures") == 1


def test_import_refuses_a_name_that_would_leave_the_state_dir(site):
    ip, d, ca, tmp = site
    c, k = ca.issue(str(tmp), "esc", dns=["a.example.org"])
    from harness import api_call
    status, body = api_call(d.socket, "POST", "/certificates/..%2F..%2Fescape",
                            {"cert": open(c).read(), "key": open(k).read()})
    assert status == 400 and "certificate name" in body["error"], body
    assert not (d.state_dir.parent / "escape.pem").exists()
    assert not any(p.name.startswith("escape") for p in d.state_dir.rglob("*"))
