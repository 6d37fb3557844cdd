"""HTTPS termination in the L7 listener, against both engines: adc's C path (adc.tls._conn) and uvloop's ssl.

What the C path does itself and uvloop did before: flow control both ways on
large bodies, a client leaving mid-response, close_notify, pipelined bursts,
requests in many small records, the handshake timeout. Clients are Python's
ssl, curl and openssl s_client; the proxy is the real HttpListener in a
uvloop thread (l7harness).
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time

import pytest

from adc.fields import TLS_FAILURES, TLS_HANDSHAKES
from adc.config.plan import HttpPlan, TlsPlan, VipPlan
from adc.tls.labca import LabCA
from l7harness import Backend, Proxy, RawMember, pool

ENGINES = ["c", "uvloop"]
HOST = "a.example.org"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-term")
    ca = LabCA()
    cert, key = ca.issue(str(d), "site-a", dns=[HOST])
    return cert, key, ca.write_ca(str(d / "ca.pem"))


def https_vip(certs, header_timeout=10.0) -> VipPlan:
    cert, key, _ = certs
    return VipPlan(name="web", protocol="https", address="127.0.0.1", port=0, listener="tcp:127.0.0.1:0",
                   default_pool="p", routes=[], slot=1,
                   tls=TlsPlan(certificates=[("site-a", cert, key, None)]),
                   http=HttpPlan(header_timeout=header_timeout))


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    monkeypatch.setenv("ADC_TLS_ENGINE", request.param)
    return request.param


@pytest.fixture
def site(engine, certs):
    with Backend("a") as a, Proxy(https_vip(certs), [pool("p", [a.port])]) as p:
        yield p, a


def connect(port, ca, **kw) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=HOST, **kw)


def read_response(s: ssl.SSLSocket, buf: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(head, body, rest) of one Content-Length response."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        assert d, "closed before a response head"
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    n = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0])
    while len(buf) < n:
        d = s.recv(1 << 20)
        assert d, f"closed after {len(buf)} of {n} body bytes"
        buf += d
    return head, buf[:n], buf[n:]


def read_until_closed(s: ssl.SSLSocket) -> bytes:
    """Everything the proxy sends until it closes (cleanly, by reset, or without close_notify)."""
    data = b""
    while True:
        try:
            d = s.recv(4096)
        except (ConnectionError, ssl.SSLError):
            return data
        if not d:
            return data
        data += d


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def test_the_engine_asked_for_serves(site, engine, certs):
    p, _ = site
    assert (p.listener.tls._c_context is not None) == (engine == "c")
    with connect(p.port, certs[2]) as s:
        assert s.selected_alpn_protocol() is None       # the client offered none
        s.sendall(get("/hello"))
        head, body, _ = read_response(s)
        assert head.startswith(b"HTTP/1.1 200") and b'"path": "/hello"' in body


def test_alpn_negotiates_http11(site, certs):
    p, _ = site
    ctx = ssl.create_default_context(cafile=certs[2])
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_large_body_to_a_slow_reader_then_keep_alive(site, certs):
    """16 MB to a client that stops reading for a while: the proxy's buffers fill, the member is paused,
    nothing is lost, and the connection serves the next request."""
    p, _ = site
    n = 16_000_000
    with connect(p.port, certs[2]) as s:
        s.sendall(get(f"/bytes/{n}"))
        first = s.recv(65536)
        time.sleep(0.7)
        head, body, rest = read_response(s, first)
        assert len(body) == n and body.count(b"x") == n and rest == b""
        s.sendall(get("/again"))
        head, body, _ = read_response(s)
        assert b'"path": "/again"' in body


def test_large_chunked_body_with_curl(site, certs):
    p, _ = site
    r = subprocess.run([shutil.which("curl") or "curl", "-sS", "--http1.1", "--cacert", certs[2],
                        "--resolve", f"{HOST}:{p.port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        f"https://{HOST}:{p.port}/bytes/5000000?chunked=1"], capture_output=True, text=True, timeout=30)
    assert r.stdout == "200 5000000", r.stderr


def test_client_closing_mid_response_frees_the_connection(site, certs):
    p, _ = site
    s = connect(p.port, certs[2])
    s.sendall(get("/bytes/50000000"))
    got = 0
    while got < 200_000:
        got += len(s.recv(65536))
    s.close()
    assert p.wait_idle(), "the connection was not closed"
    with connect(p.port, certs[2]) as s:
        s.sendall(get("/after"))
        assert b'"path": "/after"' in read_response(s)[1]


def test_close_notify_before_the_close(site, certs):
    """Connection: close ends with the server's close_notify, not a bare TCP close (no SSLEOFError)."""
    p, _ = site
    with connect(p.port, certs[2], suppress_ragged_eofs=False) as s:
        s.sendall(f"GET /bye HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        head, body, rest = read_response(s)
        assert b'"path": "/bye"' in body
        assert rest == b"" and s.recv(100) == b""       # raises SSLEOFError without close_notify


def test_pipelined_burst_in_one_write(site, certs):
    p, a = site
    k = 200
    with connect(p.port, certs[2]) as s:
        s.sendall(b"".join(get(f"/status/204?i={i}") for i in range(k)))
        buf = b""
        deadline = time.monotonic() + 10
        while buf.count(b"HTTP/1.1 204") < k and time.monotonic() < deadline:
            buf += s.recv(65536)
        assert buf.count(b"HTTP/1.1 204") == k
    assert [r[1] for r in a.requests[-k:]] == [f"/status/204?i={i}" for i in range(k)]


def test_request_in_many_small_records(site, certs):
    """Every byte its own TLS record: the head and a POST body arrive 1 byte at a time."""
    p, a = site
    body = b"0123456789" * 30
    req = (f"POST /small HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with connect(p.port, certs[2]) as s:
        for i in range(len(req)):
            s.sendall(req[i:i + 1])
        head, resp, _ = read_response(s)
        assert head.startswith(b"HTTP/1.1 200")
    assert a.requests[-1][3] == body


def test_openssl_s_client_gets_a_response(site, certs):
    p, _ = site
    r = subprocess.run([shutil.which("openssl") or "openssl", "s_client", "-connect", f"127.0.0.1:{p.port}",
                        "-servername", HOST, "-CAfile", certs[2], "-quiet", "-verify_return_error"],
                       input=f"GET /s HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
                       capture_output=True, text=True, timeout=20)
    assert "HTTP/1.1 200" in r.stdout and '"path": "/s"' in r.stdout, r.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_is_refused(site, certs):
    p, _ = site
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot speak TLS 1.1")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx.wrap_socket(raw, server_hostname=HOST)
    # the listener is fine after the failure
    with connect(p.port, certs[2]) as s:
        s.sendall(get("/ok"))
        assert b'"path": "/ok"' in read_response(s)[1]


def test_silent_client_is_closed_at_the_handshake_timeout(engine, certs):
    with Backend("a") as a, Proxy(https_vip(certs, header_timeout=1.0), [pool("p", [a.port])]) as p:
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw:
            t0 = time.monotonic()
            try:
                assert raw.recv(100) == b""
            except ConnectionResetError:
                pass
            assert 0.8 < time.monotonic() - t0 < 3.5
        if engine == "c":
            # counted for the VIP as a handshake the client failed (adc_vip_tls_handshake_failures)
            assert p.counters.get(1, TLS_FAILURES) == 1
            assert p.counters.get(1, TLS_HANDSHAKES) == 0


def test_header_timeout_applies_after_the_handshake(engine, certs):
    with Backend("a") as a, Proxy(https_vip(certs, header_timeout=1.0), [pool("p", [a.port])]) as p:
        with connect(p.port, certs[2]) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())     # an unfinished head
            t0 = time.monotonic()
            assert read_until_closed(s).startswith(b"HTTP/1.1 408")
            assert time.monotonic() - t0 < 3.5


# ------------------------------------------------------------------- mTLS
@pytest.fixture(scope="module")
def clients(tmp_path_factory, certs):
    d = tmp_path_factory.mktemp("tls-clients")
    good, other = LabCA("clients CA"), LabCA("someone else")
    return {"ca": good.write_ca(str(d / "clients-ca.pem")),
            "alice": good.issue(str(d), "alice", cn="alice", client=True),
            "mallory": other.issue(str(d), "mallory", cn="mallory", client=True)}


def test_verified_client_certificate_reaches_the_member_on_every_request(engine, certs, clients):
    cert, key, ca = certs
    v = https_vip(certs)
    v.tls = TlsPlan(certificates=[("site-a", cert, key, None)], client_auth="required", ca=clients["ca"])
    with Backend("a") as a, Proxy(v, [pool("p", [a.port])]) as p:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(*clients["alice"])
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=HOST) as s:
            for i in range(2):
                s.sendall(f"GET /{i} HTTP/1.1\r\nHost: {HOST}\r\nx-client-cert-subject: CN=root\r\n\r\n".encode())
                read_response(s)
        for r in a.requests[-2:]:
            h = {k.lower(): v for k, v in r[2]}
            assert h["x-client-verify"] == "SUCCESS" and h["x-client-cert-subject"] == "CN=alice"
        # a certificate from another CA fails the handshake (TLS 1.3: at the first read)
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(*clients["mallory"])
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with ctx.wrap_socket(raw, server_hostname=HOST) as s:
                    s.sendall(get("/no"))
                    assert s.recv(100) == b""
                    raise ConnectionError("closed")


# ------------------------------------------------------------------ fallback
def test_the_ssl_ctx_check_accepts_python_contexts_only():
    from adc.tls import _conn
    assert _conn.AVAILABLE and _conn.LINKED_VERSION == ssl.OPENSSL_VERSION
    assert _conn.ctx_check(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert not _conn.ctx_check(object())


def test_a_failed_check_falls_back_to_uvloops_ssl(certs, monkeypatch, caplog):
    from adc.tls.server import ServerTls
    monkeypatch.setenv("ADC_TLS_ENGINE", "c")
    monkeypatch.setattr(ServerTls, "c_dispatcher", lambda self: object())
    with caplog.at_level("WARNING", logger="adc.tls"):
        with Backend("a") as a, Proxy(https_vip(certs), [pool("p", [a.port])]) as p:
            with connect(p.port, certs[2]) as s:
                s.sendall(get("/fallback"))
                assert b'"path": "/fallback"' in read_response(s)[1]
    assert "TLS through uvloop's ssl, not adc's C path" in caplog.text


def test_without_the_module_uvloops_ssl_serves(certs, monkeypatch, caplog):
    import sys
    monkeypatch.setenv("ADC_TLS_ENGINE", "c")
    import adc.tls
    # the import fails as if never built
    monkeypatch.setitem(sys.modules, "adc.tls._conn", None)
    monkeypatch.delattr(adc.tls, "_conn", raising=False)
    with caplog.at_level("WARNING", logger="adc.tls"):
        with Backend("a") as a, Proxy(https_vip(certs), [pool("p", [a.port])]) as p:
            assert p.listener.tls._c_context is None
            with connect(p.port, certs[2]) as s:
                s.sendall(get("/nomodule"))
                assert b'"path": "/nomodule"' in read_response(s)[1]
    assert "adc.tls._conn is not built" in caplog.text


class TrickleMember(RawMember):
    """A member that answers with a chunked body of many tiny chunks, each its own send: many small
    writes by the proxy to the client."""
    threaded = False

    def __init__(self, chunks: int):
        self.chunks = chunks
        super().__init__()

    def serve(self, c):
        with c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(self.chunks):
                c.sendall(b"%x\r\n%s\r\n" % (len(b"%05d," % i), b"%05d," % i))
                if i % 50 == 0:
                    time.sleep(0.001)
            c.sendall(b"0\r\n\r\n")
            time.sleep(0.5)


def test_many_small_writes_arrive_whole_and_in_order(engine, certs):
    import http.client
    with TrickleMember(2000) as m, Proxy(https_vip(certs), [pool("p", [m.port])]) as p:
        ctx = ssl.create_default_context(cafile=certs[2])
        c = http.client.HTTPSConnection(HOST, p.port, context=ctx, timeout=10)
        c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", p.port), timeout=10), server_hostname=HOST)
        c.request("GET", "/trickle")
        body = c.getresponse().read()
        c.close()
    assert body == b"".join(b"%05d," % i for i in range(2000))


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_sessions_resume(site, certs, version):
    """TLS 1.3 tickets come after the handshake, in the server's last flight: they must be sent."""
    p, _ = site
    ctx = ssl.create_default_context(cafile=certs[2])
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as s:
        s.sendall(get("/first"))
        read_response(s)
        session = s.session
    assert session is not None and session.has_ticket
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST, session=session) as s:
        s.sendall(get("/again"))
        assert b'"path": "/again"' in read_response(s)[1]
        assert s.session_reused


def test_over_max_connections_a_client_gets_503_after_its_handshake(engine, certs):
    v = https_vip(certs)
    v.max_connections = 1
    with Backend("a") as a, Proxy(v, [pool("p", [a.port])]) as p:
        with connect(p.port, certs[2]) as first:
            first.sendall(get("/one"))
            read_response(first)
            with connect(p.port, certs[2]) as second:
                second.sendall(get("/two"))
                assert read_until_closed(second).startswith(b"HTTP/1.1 503")
    assert all(r[1] != "/two" for r in a.requests)


def test_an_idle_connection_gives_back_its_buffers_and_keeps_working(certs, monkeypatch):
    # the C path keeps OpenSSL's record buffers while a connection is busy (no malloc/free per record)
    # and frees them once it has idled a sweep period, with its memory BIOs if a large body grew
    # them: idle keep-alive connections stay small
    monkeypatch.setenv("ADC_TLS_ENGINE", "c")
    with Backend("a") as a, Proxy(https_vip(certs), [pool("p", [a.port])]) as p:
        srv = p.listener.tls_server
        assert srv is not None, "TLS is not terminated in C"
        srv.release_after = 0.2
        with connect(p.port, certs[2]) as s:
            # 4 MB through it: its memory BIOs grow to the largest read and write
            s.sendall(get("/bytes/4000000"))
            assert len(read_response(s)[1]) == 4_000_000
            assert srv.buffers_held == 1
            conn = next(iter(p.listener.conns_set)).transport
            assert conn.bio_capacity > 64 * 1024
            deadline = time.monotonic() + 5
            while srv.buffers_held and time.monotonic() < deadline:
                time.sleep(0.05)
            assert srv.buffers_held == 0, "the idle connection still holds its buffers"
            assert conn.bio_capacity <= 16384, "the idle connection keeps its grown BIO buffers"
            s.sendall(get("/after"))
            assert b'"path": "/after"' in read_response(s)[1]
            assert srv.buffers_held == 1
        deadline = time.monotonic() + 5
        while srv.buffers_held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.buffers_held == 0, "a closed connection is still counted"


def test_over_max_held_a_busy_connection_releases_its_buffers_per_record(certs, monkeypatch):
    # at most max_held connections keep their ~34 KiB of record buffers between records; the
    # others are served as Python's contexts do by default (OpenSSL frees them after each record)
    monkeypatch.setenv("ADC_TLS_ENGINE", "c")
    with Backend("a") as a, Proxy(https_vip(certs), [pool("p", [a.port])]) as p:
        srv = p.listener.tls_server
        srv.max_held = 1
        with connect(p.port, certs[2]) as one, connect(p.port, certs[2]) as two:
            for i in range(3):
                for s in (one, two):
                    s.sendall(get(f"/r{i}"))
                    assert f'"path": "/r{i}"'.encode() in read_response(s)[1]
            assert srv.buffers_held == 1
