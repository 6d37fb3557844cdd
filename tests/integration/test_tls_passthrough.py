"""SNI passthrough: a tcp VIP picks the pool by the ClientHello's server name and never terminates TLS,
so each client sees the member's own certificate."""
from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest

from harness import fresh_ip, tcp_roundtrip
from test_tls_support import EchoBackend, start_adcd
from adc.tls.inspect import dns_names
from adc.tls.labca import LabCA

CONFIG = """
pools:
  - name: pool-a
    members: [{{address: {ip}, port: 9101}}]
  - name: pool-b
    members: [{{address: {ip}, port: 9102}}]
  - name: fallback
    members: [{{address: {ip}, port: 9103}}]

vips:
  - name: tls-pass
    address: {ip}
    port: 8443
    protocol: tcp
    sni_routes:
      - {{names: [a.example.org], pool: pool-a}}
      - {{names: [b.example.org, "*.b.example.org"], pool: pool-b}}
    default_pool: fallback
"""


@pytest.fixture
def site(tmp_path):
    ip = fresh_ip()
    ca = LabCA("members CA")
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    members = []
    for port, dns in ((9101, ["a.example.org"]), (9102, ["b.example.org", "*.b.example.org"]),
                      (9103, ["fallback.example.org"])):
        c, k = ca.issue(str(tmp_path), f"m{port}", dns=dns)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(c, k)
        members.append(EchoBackend(ip, port, f"member-{port}", ctx))
    d = start_adcd(tmp_path, CONFIG.format(ip=ip), name="pass.yaml")
    yield ip, d, ca_file
    d.stop()
    for m in members:
        m.stop()


def get(ip, sni, ca_file, verify=True):
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((ip, 8443), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=sni)
    cert = s.getpeercert(binary_form=True)
    c = http.client.HTTPConnection(sni or ip, 8443, timeout=5)
    c.sock = s
    c.request("GET", "/pass")
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    from cryptography import x509
    return body["name"], dns_names(x509.load_der_x509_certificate(cert))


def test_server_name_picks_the_pool_and_the_member_terminates(site):
    ip, d, ca = site
    assert get(ip, "a.example.org", ca) == ("member-9101", ["a.example.org"])
    assert get(ip, "b.example.org", ca) == ("member-9102", ["b.example.org", "*.b.example.org"])
    assert get(ip, "x.b.example.org", ca) == ("member-9102", ["b.example.org", "*.b.example.org"])


def test_unknown_or_missing_server_name_goes_to_the_default_pool(site):
    ip, d, ca = site
    assert get(ip, "fallback.example.org", ca) == ("member-9103", ["fallback.example.org"])
    assert get(ip, "other.test", ca, verify=False)[0] == "member-9103"
    assert get(ip, None, ca, verify=False)[0] == "member-9103"


def test_counters_see_the_bytes_of_the_vip(site):
    ip, d, ca = site
    get(ip, "a.example.org", ca)
    st = d.api("GET", "/stats")["vips"]["tls-pass"]
    assert st["bytes_in"] > 200 and st["bytes_out"] > 500


def test_a_client_that_is_not_tls_goes_to_the_default_pool(site):
    ip, d, ca = site
    # plain bytes reach the default member untouched (it answers with a TLS alert or closes)
    out = tcp_roundtrip(ip, 8443, b"GET / HTTP/1.0\r\n\r\n")
    assert b"member-" not in out
