"""Each check kind against real servers on loopback: what passes, what fails, and the words it says why."""
from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adc.config.schema import Monitor
from adc.health import dns as hdns
from adc.health.checker import PROBES, Check, HealthChecker
from adc.health.probe import Target
from adc.health.states import Health

IP = "127.0.0.1"


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((IP, 0))
        return s.getsockname()[1]


def run(coro):
    return asyncio.run(coro)


async def check(mon: dict, port: int, address: str = IP):
    """One check through the checker (timeout and error wording included): (ok, detail)."""
    m = Monitor(name="m", **mon)
    c = Check(("k", address, port), m, Target(address, port), Health(m.rise, m.fall))
    out = await HealthChecker(lambda *a: None).check_once(c)
    assert c.history[-1]["detail"] == out.detail and c.history[-1]["latency_ms"] >= 0
    return out.ok, out.detail


async def http_server(status: int = 200, body: bytes = b"ok", delay: float = 0.0, raw: bytes = None, ssl_ctx=None):
    seen = []

    async def handle(r, w):
        head = await r.readuntil(b"\r\n\r\n")
        seen.append(head)
        if delay:
            await asyncio.sleep(delay)
        w.write(raw if raw is not None else
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            await w.drain()
            w.close()
        except OSError:
            pass

    srv = await asyncio.start_server(handle, IP, 0, ssl=ssl_ctx)
    return srv, srv.sockets[0].getsockname()[1], seen


# --------------------------------------------------------------------- tcp
def test_tcp_connect_passes_on_an_open_port_and_fails_on_a_closed_one():
    async def main():
        srv = await asyncio.start_server(lambda r, w: w.close(), IP, 0)
        port = srv.sockets[0].getsockname()[1]
        assert await check({"type": "tcp"}, port) == (True, "connected")
        srv.close()
        await srv.wait_closed()
        assert await check({"type": "tcp"}, port) == (False, "connection refused")
    run(main())


def test_tcp_send_expect_matches_the_reply_as_a_pattern():
    async def main():
        async def handle(r, w):
            line = await r.readline()
            w.write(b"+PONG\r\n" if line == b"PING\r\n" else b"-ERR\r\n")
            await w.drain()
            w.close()
        srv = await asyncio.start_server(handle, IP, 0)
        port = srv.sockets[0].getsockname()[1]
        assert await check({"type": "tcp", "send": "PING\r\n", "expect": r"\+PONG"}, port) == \
            (True, "reply matched '\\\\+PONG'")
        ok, detail = await check({"type": "tcp", "send": "HELLO\r\n", "expect": "PONG"}, port)
        assert not ok and detail == "reply '-ERR\\r\\n' did not match 'PONG'"
        srv.close()
    run(main())


# -------------------------------------------------------------------- http
def test_http_status_in_the_expected_list_passes_and_500_fails():
    async def main():
        srv, port, seen = await http_server(204)
        assert await check({"type": "http", "path": "/healthz", "expect_status": [200, 204]}, port) == \
            (True, "HTTP 204")
        assert seen[0].startswith(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:")
        srv2, port2, _ = await http_server(500)
        assert await check({"type": "http"}, port2) == (False, "HTTP 500")
        srv.close(), srv2.close()
    run(main())


def test_http_sends_method_host_and_headers_of_the_monitor():
    async def main():
        srv, port, seen = await http_server(200)
        mon = {"type": "http", "method": "HEAD", "path": "/status?full=1", "host": "app.example",
               "headers": {"X-Probe": "adc"}}
        assert (await check(mon, port))[0]
        head = seen[0].decode()
        assert head.startswith("HEAD /status?full=1 HTTP/1.1\r\nHost: app.example\r\n")
        assert "X-Probe: adc\r\n" in head and "Connection: close\r\n" in head
        srv.close()
    run(main())


def test_http_body_regex_must_match():
    async def main():
        srv, port, _ = await http_server(200, b'{"status": "degraded"}')
        ok, detail = await check({"type": "http", "expect_body": '"status": "ok"'}, port)
        assert not ok and detail == "HTTP 200, body did not match '\"status\": \"ok\"'"
        assert (await check({"type": "http", "expect_body": "degraded"}, port)) == (True, "HTTP 200")
        srv.close()
    run(main())


def test_http_slower_than_the_timeout_fails_with_the_timeout_named():
    async def main():
        srv, port, _ = await http_server(200, delay=1.0)
        assert await check({"type": "http", "timeout": "200ms", "interval": "1s"}, port) == \
            (False, "timeout after 200ms")
        srv.close()
    run(main())


def test_http_garbage_is_not_an_http_response():
    async def main():
        srv, port, _ = await http_server(raw=b"SSH-2.0-OpenSSH\r\n")
        assert await check({"type": "http"}, port) == (False, "not an HTTP response")
        srv.close()
    run(main())


# --------------------------------------------------------------------- tls
def _cert(tmp_path, days: float, cn: str = "member.test"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    c, k = tmp_path / f"{cn}-{days}.crt", tmp_path / f"{cn}-{days}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(c, k)
    return ctx


def test_tls_reports_days_until_the_certificate_expires(tmp_path):
    async def main():
        srv = await asyncio.start_server(lambda r, w: None, IP, 0, ssl=_cert(tmp_path, 30.5))
        port = srv.sockets[0].getsockname()[1]
        ok, detail = await check({"type": "tls", "sni": "member.test"}, port)
        assert ok and detail.endswith("handshake, certificate expires in 30 days"), detail
        srv.close()
    run(main())


def test_tls_verify_refuses_an_untrusted_certificate(tmp_path):
    async def main():
        srv = await asyncio.start_server(lambda r, w: None, IP, 0, ssl=_cert(tmp_path, 30))
        port = srv.sockets[0].getsockname()[1]
        ok, detail = await check({"type": "tls", "sni": "member.test", "verify": True}, port)
        assert not ok and detail.startswith("TLS certificate not trusted"), detail
        srv.close()
    run(main())


def test_tls_on_a_plain_port_fails():
    async def main():
        srv, port, _ = await http_server(200)
        ok, detail = await check({"type": "tls"}, port)
        assert not ok, detail
        srv.close()
    run(main())


def test_https_checks_status_over_tls(tmp_path):
    async def main():
        srv, port, seen = await http_server(200, ssl_ctx=_cert(tmp_path, 90))
        assert await check({"type": "https", "host": "member.test"}, port) == (True, "HTTP 200")
        assert b"Host: member.test\r\n" in seen[0]
        srv.close()
    run(main())


# --------------------------------------------------------------------- udp
class Echo(asyncio.DatagramProtocol):
    def __init__(self, reply=lambda d: d):
        self.reply = reply

    def connection_made(self, t):
        self.t = t

    def datagram_received(self, data, addr):
        r = self.reply(data)
        if r is not None:
            self.t.sendto(r, addr)


def test_udp_reply_passes_silence_fails_and_unreachable_fails_fast():
    async def main():
        loop = asyncio.get_running_loop()
        t, _ = await loop.create_datagram_endpoint(Echo, local_addr=(IP, 0))
        port = t.get_extra_info("sockname")[1]
        mon = {"type": "udp", "send": "ping", "expect": "^ping$", "timeout": "200ms"}
        assert await check(mon, port) == (True, "reply matched '^ping$'")
        t.close()
        assert await check(mon, port) == (False, "port unreachable")
        t2, _ = await loop.create_datagram_endpoint(lambda: Echo(lambda d: None), local_addr=(IP, 0))
        assert await check(mon, t2.get_extra_info("sockname")[1]) == (False, "no reply within 200ms")
        t2.close()
        t3, _ = await loop.create_datagram_endpoint(lambda: Echo(lambda d: b"pong"), local_addr=(IP, 0))
        assert await check(mon, t3.get_extra_info("sockname")[1]) == \
            (False, "reply 'pong' did not match '^ping$'")
        t3.close()
    run(main())


# --------------------------------------------------------------------- dns
def _answer(query: bytes, rcode: int, a: str = None) -> bytes:
    qid, _, _, _, _, _ = struct.unpack_from(">HHHHHH", query)
    question = query[12:]
    ans = b""
    if a:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(a)
    return struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, 1 if a else 0, 0, 0) + question + ans


def test_dns_checks_rcode_and_answer():
    async def main():
        loop = asyncio.get_running_loop()
        mode = {"rcode": 0, "a": "10.0.0.7"}
        t, _ = await loop.create_datagram_endpoint(
            lambda: Echo(lambda q: _answer(q, mode["rcode"], mode["a"])), local_addr=(IP, 0))
        port = t.get_extra_info("sockname")[1]
        mon = {"type": "dns", "query_name": "www.example.test", "timeout": "200ms"}
        assert await check(mon, port) == (True, "DNS NOERROR for www.example.test A: 10.0.0.7")
        assert await check({**mon, "expect": r"10\.0\.0\.7"}, port) == \
            (True, "DNS NOERROR for www.example.test A: 10.0.0.7")
        assert await check({**mon, "expect": r"10\.9\.9\.9"}, port) == \
            (False, "DNS NOERROR for www.example.test A: 10.0.0.7, expected '10\\\\.9\\\\.9\\\\.9'")
        mode.update(rcode=2, a=None)
        assert await check(mon, port) == (False, "DNS SERVFAIL for www.example.test A")
        mode.update(rcode=3)
        assert (await check({**mon, "expect_rcode": "NXDOMAIN"}, port))[0]
        t.close()
    run(main())


def test_dns_reply_with_another_id_is_not_taken():
    async def main():
        loop = asyncio.get_running_loop()
        bad = lambda q: b"\x00\x00" + _answer(q, 0, "10.0.0.1")[2:] if q[:2] != b"\x00\x00" else None
        t, _ = await loop.create_datagram_endpoint(lambda: Echo(bad), local_addr=(IP, 0))
        port = t.get_extra_info("sockname")[1]
        ok, detail = await check({"type": "dns", "query_name": "x.test", "timeout": "200ms"}, port)
        assert not ok and detail == "no DNS reply within 200ms"
        t.close()
    run(main())


def test_dns_name_compression_and_types_are_decoded():
    q = hdns.query(7, "a.example.test", 5)
    reply = bytearray(_answer(q, 0))
    # one CNAME answer whose target is compressed against the question name
    rdata = b"\x03www\xc0\x0e"
    reply[7] = 1
    reply += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 30, len(rdata)) + rdata
    rcode, answers = hdns.parse(bytes(reply), 7)
    assert rcode == "NOERROR" and answers == [(5, "www.example.test")]


@pytest.mark.parametrize("kind", sorted(PROBES))
def test_every_kind_names_a_refused_or_silent_member(kind):
    async def main():
        mon = {"type": kind, "timeout": "200ms", "query_name": "x.test"}
        port = free_port(socket.SOCK_DGRAM if kind in ("udp", "dns") else socket.SOCK_STREAM)
        ok, detail = await check(mon, port)
        assert not ok and detail in ("connection refused", "port unreachable"), detail
    run(main())


def test_http_expected_status_takes_classes_and_ranges():
    async def main():
        srv, port, _ = await http_server(302)
        assert await check({"type": "http", "expect_status": ["2xx", "300-399"]}, port) == (True, "HTTP 302")
        assert await check({"type": "http", "expect_status": ["2xx", 304]}, port) == (False, "HTTP 302")
        srv.close()
    run(main())


def test_http_reuse_connection_keeps_one_connection_per_member_across_checks():
    async def main():
        conns = []

        async def handle(r, w):
            conns.append(w)
            try:
                while True:
                    await r.readuntil(b"\r\n\r\n")
                    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await w.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass

        srv = await asyncio.start_server(handle, IP, 0)
        port = srv.sockets[0].getsockname()[1]
        m = Monitor(name="m", type="http", reuse_connection=True, expect_body="ok")
        c = Check(("k", IP, port), m, Target(IP, port), Health(2, 2))
        hc = HealthChecker(lambda *a: None)
        for _ in range(3):
            assert (await hc.check_once(c)).ok
        assert len(conns) == 1, "three checks, one connection"
        conns[0].close()                      # the member closes the idle connection
        await asyncio.sleep(0.05)
        assert (await hc.check_once(c)) == (True, "HTTP 200")
        assert len(conns) == 2
        c.probe.close()
        srv.close()
    run(main())


def test_http_reuse_connection_reconnects_when_the_member_asks_to_close():
    async def main():
        srv, port, seen = await http_server(200)     # answers Content-Length and closes
        m = Monitor(name="m", type="http", reuse_connection=True)
        c = Check(("k", IP, port), m, Target(IP, port), Health(2, 2))
        hc = HealthChecker(lambda *a: None)
        for _ in range(3):
            assert (await hc.check_once(c)) == (True, "HTTP 200")
        assert len(seen) == 3 and b"Connection: close" not in seen[0]
        c.probe.close()
        srv.close()
    run(main())
