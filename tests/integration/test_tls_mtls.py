"""mTLS on the tls.yaml https VIP: client certificates required or optional, verified against a CA bundle,
and the verified identity passed to members as headers and usable in route matches."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from harness import example, fresh_ip
from test_tls_support import EchoBackend, start_adcd
from adc.tls.labca import LabCA

CURL = shutil.which("curl") or "curl"


def make_site(tmp, mode: str, routes: str = ""):
    ip = fresh_ip()
    servers, clients, strangers = LabCA("server CA"), LabCA("client CA"), LabCA("stranger CA")
    servers.issue(str(tmp), "site-a", dns=["a.example.org"])
    servers.issue(str(tmp), "wildcard", dns=["*.example.org"])
    server_ca = servers.write_ca(str(tmp / "server-ca.pem"))
    clients.write_ca(str(tmp / "clients-ca.pem"))
    clients.issue(str(tmp), "alice", dns=["alice.clients.example.org"], cn="alice", client=True)
    clients.issue(str(tmp), "bob", cn="bob", client=True)
    strangers.issue(str(tmp), "mallory", cn="alice", client=True)
    text = example("tls.yaml", ip).replace("client_auth: none", f"client_auth: {mode}\n      ca: clients-ca.pem")
    if routes:
        text = text.replace("    default_pool: web", routes + "    default_pool: web")
        text = text.replace("\nvips:", "  - name: bobs\n    members:\n      - {address: %s, port: 9003}\n\nvips:" % ip, 1)
    members = [EchoBackend(ip, p, f"member-{p}") for p in (9001, 9002, 9003)]
    d = start_adcd(tmp, text)
    return ip, d, members, server_ca


@pytest.fixture
def required(tmp_path):
    ip, d, members, ca = make_site(tmp_path, "required")
    yield ip, d, ca, tmp_path
    d.stop()
    for m in members:
        m.stop()


@pytest.fixture
def optional(tmp_path):
    ip, d, members, ca = make_site(tmp_path, "optional")
    yield ip, d, ca, tmp_path
    d.stop()
    for m in members:
        m.stop()


def curl(ip, ca, tmp, who=None, headers=(), path="/"):
    argv = [CURL, "-sS", "--http1.1", "--max-time", "10", "--cacert", ca, "--resolve", f"a.example.org:8443:{ip}"]
    if who:
        argv += ["--cert", str(tmp / f"{who}.pem"), "--key", str(tmp / f"{who}.key")]
    for h in headers:
        argv += ["-H", h]
    return subprocess.run(argv + [f"https://a.example.org:8443{path}"], capture_output=True, text=True, timeout=20)


def test_required_accepts_a_good_client_and_passes_its_identity(required):
    ip, d, ca, tmp = required
    r = curl(ip, ca, tmp, "alice")
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)["headers"]
    assert h["x-client-verify"] == "SUCCESS"
    assert h["x-client-cert-subject"] == "CN=alice"
    assert h["x-client-cert-issuer"] == "CN=client CA"
    assert h["x-client-cert-san"] == "DNS:alice.clients.example.org"
    from cryptography import x509
    from adc.tls.inspect import fingerprint
    cert = x509.load_pem_x509_certificates((tmp / "alice.pem").read_bytes())[0]
    assert h["x-client-cert-fingerprint"] == fingerprint(cert)


def test_required_refuses_a_missing_client_certificate(required):
    ip, d, ca, tmp = required
    r = curl(ip, ca, tmp)
    assert r.returncode != 0 and not r.stdout, (r.stdout, r.stderr)


def test_required_refuses_an_untrusted_client_certificate(required):
    ip, d, ca, tmp = required
    r = curl(ip, ca, tmp, "mallory")       # CN=alice, but from a CA the VIP does not trust
    assert r.returncode != 0 and not r.stdout, (r.stdout, r.stderr)


def test_client_cannot_forge_identity_headers(required):
    ip, d, ca, tmp = required
    r = curl(ip, ca, tmp, "bob", headers=["X-Client-Cert-Subject: CN=admin", "X-Client-Verify: SUCCESS",
                                         "x-client-cert-fingerprint: 00"])
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)["headers"]
    assert h["x-client-cert-subject"] == "CN=bob"
    assert h["x-client-cert-fingerprint"] != "00"


def test_optional_serves_clients_without_certificate_and_says_so(optional):
    ip, d, ca, tmp = optional
    r = curl(ip, ca, tmp, headers=["X-Client-Cert-Subject: CN=admin"])
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)["headers"]
    assert h["x-client-verify"] == "NONE" and "x-client-cert-subject" not in h
    r = curl(ip, ca, tmp, "alice")
    assert json.loads(r.stdout)["headers"]["x-client-cert-subject"] == "CN=alice"
    r = curl(ip, ca, tmp, "mallory")
    assert r.returncode != 0, "optional still refuses a certificate it cannot verify"


def test_route_matches_the_verified_subject(tmp_path):
    routes = ("    routes:\n"
              "      - name: bob-only\n"
              "        match: {header: {x-client-cert-subject: CN=bob}}\n"
              "        pool: bobs\n")
    ip, d, members, ca = make_site(tmp_path, "required", routes=routes)
    try:
        r = curl(ip, ca, tmp_path, "bob")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["name"] == "member-9003"
        r = curl(ip, ca, tmp_path, "alice", headers=["X-Client-Cert-Subject: CN=bob"])
        assert json.loads(r.stdout)["name"] in ("member-9001", "member-9002")
    finally:
        d.stop()
        for m in members:
            m.stop()
