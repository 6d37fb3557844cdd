"""VIP TLS options through the real adcd: HSTS, http-to-https redirect, session resumption across workers."""
from __future__ import annotations

import http.client
import socket
import ssl

from harness import Backends, example, fresh_ip
from test_tls_support import start_adcd
from adc.tls.labca import LabCA


def make(tmp, extra_tls: str = "", extra_vips: str = "", workers: int = 2):
    ip = fresh_ip()
    ca = LabCA()
    ca.issue(str(tmp), "site-a", dns=["a.example.org"])
    ca.issue(str(tmp), "wildcard", dns=["*.example.org"])
    ca_file = ca.write_ca(str(tmp / "ca.pem"))
    text = example("tls.yaml", ip)
    if extra_tls:
        text = text.replace("      client_auth: none", "      client_auth: none\n" + extra_tls)
    text += extra_vips.format(ip=ip)
    be = Backends(tmp, ip, http={9001: "backend-1", 9002: "backend-2"})
    d = start_adcd(tmp, text, workers=workers)
    return ip, d, be, ca_file


def https(ip, ca_file, host="a.example.org", path="/"):
    ctx = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((ip, 8443), timeout=5)
    c = http.client.HTTPConnection(host, 8443, timeout=5)
    c.sock = ctx.wrap_socket(raw, server_hostname=host)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r


def test_hsts_header_on_every_https_response(tmp_path):
    ip, d, be, ca = make(tmp_path, "      hsts: {max_age: 365d, include_subdomains: true}\n")
    try:
        r = https(ip, ca)
        assert r.status == 200
        assert r.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    finally:
        d.stop()
        be.stop()


def test_http_vip_redirects_everything_to_https(tmp_path):
    redirect = """
  - name: web-plain
    address: {ip}
    port: 8080
    protocol: http
    https_redirect: {{port: 8443, status: 308}}
"""
    ip, d, be, ca = make(tmp_path, extra_vips=redirect)
    try:
        c = http.client.HTTPConnection(ip, 8080, timeout=5)
        c.request("GET", "/cart?id=7", headers={"Host": "a.example.org"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 308
        assert r.getheader("Location") == "https://a.example.org:8443/cart?id=7"
        assert https(ip, ca, path="/cart?id=7").status == 200
    finally:
        d.stop()
        be.stop()


def test_sessions_resume_on_any_worker(tmp_path):
    """Ticket keys are the same in every worker, so a session from one resumes on another."""
    ip, d, be, ca = make(tmp_path, workers=2)
    try:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2     # a session is known right after the handshake
        with socket.create_connection((ip, 8443), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="a.example.org") as s:
            session = s.session
        assert session is not None and session.has_ticket
        reused = 0
        for _ in range(12):      # SO_REUSEPORT spreads these over both workers
            with socket.create_connection((ip, 8443), timeout=5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="a.example.org", session=session) as s:
                reused += s.session_reused
        assert reused == 12
    finally:
        d.stop()
        be.stop()


def test_session_tickets_can_be_turned_off(tmp_path):
    ip, d, be, ca = make(tmp_path, "      session_tickets: false\n", workers=1)
    try:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((ip, 8443), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="a.example.org") as s:
            assert not s.session.has_ticket
    finally:
        d.stop()
        be.stop()
