"""Re-encryption: the tls.yaml https VIP speaks TLS to its members, verifying them by default.

A member whose certificate does not verify is answered 502, with a log line
naming the pool, the member and the reason.
"""
from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time

import pytest

from harness import example, fresh_ip
from test_tls_support import EchoBackend, start_adcd
from adc.tls.labca import LabCA

CURL = shutil.which("curl") or "curl"


def member_ctx(cert: str, key: str, client_ca: str = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


class Site:
    def __init__(self, tmp, pool_tls: str, member_dns=("member.internal",), member_ip=False, bad_ca=False,
                 member_client_ca=False):
        self.ip = ip = fresh_ip()
        self.tmp = tmp
        front, members, other = LabCA("front CA"), LabCA("members CA"), LabCA("someone else")
        front.issue(str(tmp), "site-a", dns=["a.example.org"])
        front.issue(str(tmp), "wildcard", dns=["*.example.org"])
        self.front_ca = front.write_ca(str(tmp / "front-ca.pem"))
        members.write_ca(str(tmp / "members-ca.pem"))
        signer = other if bad_ca else members
        c, k = signer.issue(str(tmp), "member", dns=list(member_dns), ips=[ip] if member_ip else [])
        client_ca = None
        if member_client_ca:
            adc_ca = LabCA("adc client CA")
            client_ca = adc_ca.write_ca(str(tmp / "adc-client-ca.pem"))
            adc_ca.issue(str(tmp), "adc-client", cn="adc", client=True)
        self.members = [EchoBackend(ip, p, f"member-{p}", member_ctx(c, k, client_ca)) for p in (9001, 9002)]
        text = example("tls.yaml", ip).replace("    algorithm: round_robin\n",
                                               "    algorithm: round_robin\n    tls: " + pool_tls + "\n")
        self.d = start_adcd(tmp, text)

    def get(self, path="/"):
        r = subprocess.run([CURL, "-sS", "--http1.1", "--max-time", "10", "--cacert", self.front_ca,
                            "--resolve", f"a.example.org:8443:{self.ip}", "-w", "\n%{http_code}",
                            f"https://a.example.org:8443{path}"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        body, _, code = r.stdout.rpartition("\n")
        return int(code), body

    def stop(self):
        self.d.stop()
        for m in self.members:
            m.stop()


@pytest.fixture
def site(tmp_path):
    made = []

    def make(*a, **kw):
        s = Site(tmp_path, *a, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_reencrypts_to_members_verified_by_the_pool_ca(site):
    s = site("{ca: members-ca.pem, name: member.internal}")
    seen = set()
    for _ in range(4):
        code, body = s.get("/x")
        assert code == 200, body
        j = json.loads(body)
        assert j["path"] == "/x" and j["headers"]["x-forwarded-proto"] == "https"
        seen.add(j["name"])
    assert seen == {"member-9001", "member-9002"}


def test_member_certificate_from_another_ca_is_a_502_with_a_clear_log_line(site):
    s = site("{ca: members-ca.pem, name: member.internal}", bad_ca=True)
    code, body = s.get("/")
    assert code == 502
    deadline = time.monotonic() + 5
    while "TLS certificate verification failed" not in s.d.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = s.d.log()
    assert f"pool 'web' member {s.ip}:900" in log and "TLS certificate verification failed" in log, log[-2000:]
    assert "unable to get local issuer certificate" in log


def test_member_certificate_for_another_name_is_a_502(site):
    s = site("{ca: members-ca.pem, name: member.internal}", member_dns=("elsewhere.internal",))
    code, _ = s.get("/")
    assert code == 502
    assert "Hostname mismatch" in s.d.log() or "hostname" in s.d.log().lower()


def test_without_a_name_the_member_address_must_be_in_its_certificate(site):
    s = site("{ca: members-ca.pem}", member_dns=(), member_ip=True)
    assert s.get("/")[0] == 200


def test_verify_false_accepts_any_member_certificate(site):
    s = site("{verify: false}", bad_ca=True)
    code, body = s.get("/")
    assert code == 200 and json.loads(body)["name"].startswith("member-")


def test_client_certificate_for_members_that_ask(site):
    s = site("{ca: members-ca.pem, name: member.internal, cert: adc-client.pem, key: adc-client.key}",
             member_client_ca=True)
    assert s.get("/")[0] == 200
