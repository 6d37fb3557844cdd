"""Active health checks end to end: a real adcd, real members that start failing and recover.

Each test breaks one member the way members break (wrong status, closed port,
answers slower than the timeout, a UDP service gone quiet, a DNS server
answering SERVFAIL or not at all) and asserts what an operator sees: where
traffic goes, the adcd log line, and `adcctl member list POOL -o json`.
Bounds: traffic leaves within fall x interval + 1 s and comes back within
rise x interval + 1 s.
"""
from __future__ import annotations

import json
import shutil
import socket
import socketserver
import threading
import time
from pathlib import Path

import pytest

from harness import Adcd, Proc, fresh_ip, http_get, members, udp_roundtrip

INTERVAL = 0.5
RISE = 2
FALL = 2
LEAVE_BOUND = FALL * INTERVAL + 1.0
RETURN_BOUND = RISE * INTERVAL + 1.0


# ------------------------------------------------------------------ members
class HttpMember:
    """An HTTP member whose behaviour the test switches: ok, status 500, slow, port closed,
    or sick (500 on /healthz only, still serving the rest)."""

    def __init__(self, ip: str, port: int, name: str):
        self.ip, self.port, self.name = ip, port, name
        self.mode = "ok"
        self.server = None
        self.open()

    def open(self) -> None:
        member = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    line = self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                except OSError:
                    return
                if member.mode == "slow":
                    time.sleep(2.0)
                sick = member.mode == "500" or (member.mode == "sick" and b"/healthz" in line)
                status = "500 Internal Server Error" if sick else "200 OK"
                body = f"{member.name} {line.decode(errors='replace').split(' ')[1:2]}\n".encode()
                try:
                    self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                                     f"Connection: close\r\n\r\n".encode() + body)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((self.ip, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class UdpServer:
    """A UDP service on a thread: `reply(data) -> bytes | None` answers each datagram (None: silence)."""

    def __init__(self, ip: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def reply(self, data: bytes):
        raise NotImplementedError

    def _run(self):
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            out = self.reply(data)
            if out is not None:
                self.sock.sendto(out, addr)

    def close(self):
        self._stop.set()
        self.sock.close()


class UdpMember(UdpServer):
    """A UDP service that answers `NAME payload` until it is muted."""

    def __init__(self, ip: str, port: int, name: str):
        self.name = name
        self.muted = False
        super().__init__(ip, port)

    def reply(self, data: bytes):
        return None if self.muted else self.name.encode() + b" " + data


# ------------------------------------------------------------------ helpers


def wait_health(d: Adcd, pool: str, key: str, health: str, limit: float) -> float:
    """Seconds until `adcctl member list` shows the member's health, polled; fails after limit."""
    t0 = time.monotonic()
    while True:
        if members(d, pool)[key]["health"] == health:
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"{pool}/{key} not {health} after {limit:.1f}s: {members(d, pool)[key]}\n"
                                 f"{d.log()[-3000:]}")
        time.sleep(0.05)


def wait_checked(d: Adcd, pool: str, key: str, limit: float = 5.0) -> None:
    """Until a check has passed on the member (a fresh member is up before its first check)."""
    t0 = time.monotonic()
    while True:
        checks = d.api("GET", f"/pools/{pool}/members/{key}").get("checks") or []
        if checks and checks[0]["ok"]:
            return
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"{pool}/{key}: no passing check after {limit}s: {checks}")
        time.sleep(0.05)


def who_http(ip: str, port: int) -> str:
    try:
        status, body = http_get(ip, port, "/", timeout=3)
    except OSError as e:
        return f"error {e}"
    return body.split(b" ", 1)[0].decode() if status == 200 else f"HTTP {status}"


def who_udp(ip: str, port: int) -> str:
    try:
        return udp_roundtrip(ip, port, b"hello", timeout=1.0).split(b" ", 1)[0].decode()
    except OSError as e:
        return f"error {type(e).__name__}"


def traffic_leaves(d: Adcd, pool: str, key: str, ask, dead: str, t0: float, limit: float) -> float:
    """Seconds from t0 until `adcctl` shows the member down, with requests flowing meanwhile
    (from a thread, so a member that answers slowly does not slow the polling); then no
    request may reach it."""
    stop = threading.Event()

    def load():
        while not stop.is_set():
            ask()
            time.sleep(0.02)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        wait_health(d, pool, key, "down", limit + 2)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join(10)
    seen = [ask() for _ in range(8)]
    assert dead not in seen, f"traffic still reaches {dead} after it was marked down: {seen}"
    return took


def config(ip: str, monitor: dict, vip_protocol: str, ports: list[int], vip_port: int) -> str:
    mon = {"name": "probe", "interval": f"{int(INTERVAL * 1000)}ms", "rise": RISE, "fall": FALL, **monitor}
    lines = ["monitors:", "  - " + json.dumps(mon),
             "pools:", "  - name: app", "    monitor: probe", "    members:"]
    lines += [f"      - {{address: {ip}, port: {p}}}" for p in ports]
    lines += ["vips:", f"  - {{name: app, address: {ip}, port: {vip_port}, protocol: {vip_protocol}, "
              "default_pool: app}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def http_site(tmp_path):
    ip = fresh_ip()
    a, b = HttpMember(ip, 9001, "alpha"), HttpMember(ip, 9002, "beta")
    d = Adcd(tmp_path, config(ip, {"type": "http", "path": "/healthz", "timeout": "300ms"}, "http",
                              [9001, 9002], 8080))
    wait_checked(d, "app", f"{ip}:9001")
    yield ip, d, a, b
    d.stop()
    a.close()
    b.close()


def _break_and_heal(ip, d, a, breaks, heals, reason):
    key = f"{ip}:9001"
    ask = lambda: who_http(ip, 8080)
    assert {ask() for _ in range(6)} == {"alpha", "beta"}, "both members serve before the failure"
    t0 = time.monotonic()
    breaks()
    took = traffic_leaves(d, "app", key, ask, "alpha", t0, LEAVE_BOUND)
    assert took <= LEAVE_BOUND, f"traffic left after {took:.2f}s, bound {LEAVE_BOUND}s"
    log = d.log()
    assert f"member app/{key} DOWN after {FALL} failed checks: {reason}" in log, log[-2000:]
    m = members(d, "app")
    assert m[key]["state"] == "down" and m[f"{ip}:9002"]["state"] == "up"
    check = d.ctl("member", "show", "app", key, "-o", "json")
    assert check.returncode == 0, check.stderr

    t1 = time.monotonic()
    heals()
    back = wait_health(d, "app", key, "up", RETURN_BOUND + 1)
    assert back <= RETURN_BOUND, f"member came back after {back:.2f}s, bound {RETURN_BOUND}s"
    assert back >= (RISE - 1) * INTERVAL * 0.5, "rise checks must pass before the member is up"
    time.sleep(0.2)      # the verdict reaches the workers a message after the supervisor shows it
    assert "alpha" in {ask() for _ in range(6)}, "traffic returns to the member"
    assert f"member app/{key} UP after {RISE} passed checks: HTTP 200" in d.log()
    del t1


def test_member_answering_500_leaves_and_returns(http_site):
    ip, d, a, b = http_site
    _break_and_heal(ip, d, a, lambda: setattr(a, "mode", "500"), lambda: setattr(a, "mode", "ok"), "HTTP 500")


def test_member_with_closed_port_leaves_and_returns(http_site):
    ip, d, a, b = http_site
    _break_and_heal(ip, d, a, a.close, a.open, "connection refused")


def test_member_slower_than_timeout_leaves_and_returns(http_site):
    ip, d, a, b = http_site
    _break_and_heal(ip, d, a, lambda: setattr(a, "mode", "slow"), lambda: setattr(a, "mode", "ok"),
                    "timeout after 300ms")


def test_member_show_lists_last_checks_with_latency(http_site):
    ip, d, a, b = http_site
    key = f"{ip}:9001"
    a.mode = "500"
    wait_health(d, "app", key, "down", LEAVE_BOUND + 1)
    info = d.api("GET", f"/pools/app/members/{key}")
    checks = info["checks"]
    assert checks and checks[0]["ok"] is False and checks[0]["detail"] == "HTTP 500"
    mon = info["monitor"]
    assert (mon["monitor"], mon["target"], mon["health"], mon["went_down"], mon["reason"]) == \
        ("probe", key, "down", 1, "HTTP 500")
    assert all(isinstance(c["latency_ms"], (int, float)) and c["latency_ms"] >= 0 for c in checks)
    r = d.ctl("member", "show", "app", key, "-o", "table")
    assert r.returncode == 0, r.stderr
    assert "last checks (newest first)" in r.stdout and "FAIL" in r.stdout and "HTTP 500" in r.stdout, r.stdout


def test_udp_service_that_stops_answering_leaves_and_returns(tmp_path):
    ip = fresh_ip()
    a, b = UdpMember(ip, 9053, "alpha"), UdpMember(ip, 9054, "beta")
    d = Adcd(tmp_path, config(ip, {"type": "udp", "send": "ping", "expect": "ping", "timeout": "300ms"}, "udp",
                              [9053, 9054], 8053))
    try:
        key = f"{ip}:9053"
        wait_checked(d, "app", key)
        ask = lambda: who_udp(ip, 8053)
        assert {ask() for _ in range(8)} == {"alpha", "beta"}
        t0 = time.monotonic()
        a.muted = True
        took = traffic_leaves(d, "app", key, ask, "alpha", t0, LEAVE_BOUND)
        assert took <= LEAVE_BOUND
        assert f"member app/{key} DOWN after {FALL} failed checks: no reply within 300ms" in d.log()
        a.muted = False
        back = wait_health(d, "app", key, "up", RETURN_BOUND + 1)
        assert back <= RETURN_BOUND
        # the L4 engine takes pool states at 10 Hz: the verdict reaches its flows within 0.1 s
        time.sleep(0.2)
        assert "alpha" in {ask() for _ in range(8)}
        assert f"member app/{key} UP after {RISE} passed checks: reply matched 'ping'" in d.log()
    finally:
        d.stop()
        a.close()
        b.close()


# --------------------------------------------------------------------- DNS
class DnsServer(UdpServer):
    """A DNS server built on dnspython: answers A for its zone, or SERVFAIL when told to."""

    def __init__(self, ip: str, port: int, answer: str):
        import dns.message
        import dns.rcode
        import dns.rrset
        self._msg, self._rcode, self._rrset = dns.message, dns.rcode, dns.rrset
        self.answer = answer
        self.servfail = False
        super().__init__(ip, port)

    def reply(self, wire: bytes):
        try:
            q = self._msg.from_wire(wire)
        except Exception:
            return None
        r = self._msg.make_response(q)
        if self.servfail:
            r.set_rcode(self._rcode.SERVFAIL)
        else:
            r.answer.append(self._rrset.from_text(q.question[0].name, 30, "IN", "A", self.answer))
        return r.to_wire()


def test_dns_server_answering_servfail_leaves_and_returns(tmp_path):
    ip = fresh_ip()
    a, b = DnsServer(ip, 9053, "10.0.0.1"), DnsServer(ip, 9054, "10.0.0.2")
    mon = {"type": "dns", "query_name": "health.test", "query_type": "A", "expect_rcode": "NOERROR",
           "timeout": "300ms"}
    d = Adcd(tmp_path, config(ip, mon, "udp", [9053, 9054], 8053))
    try:
        key = f"{ip}:9053"
        wait_checked(d, "app", key)
        t0 = time.monotonic()
        a.servfail = True
        took = wait_health(d, "app", key, "down", LEAVE_BOUND + 1)
        assert took <= LEAVE_BOUND
        assert f"member app/{key} DOWN after {FALL} failed checks: DNS SERVFAIL for health.test A" in d.log()
        assert members(d, "app")[f"{ip}:9054"]["state"] == "up"
        a.servfail = False
        back = wait_health(d, "app", key, "up", RETURN_BOUND + 1)
        assert back <= RETURN_BOUND
        assert f"member app/{key} UP after {RISE} passed checks: DNS NOERROR for health.test A: 10.0.0.1" \
            in d.log()
        del t0
    finally:
        d.stop()
        a.close()
        b.close()


def _dnsmasq(tmp: Path, ip: str, port: int) -> Proc:
    hosts = tmp / "dnsmasq-hosts"
    hosts.write_text("10.1.2.3 health.test\n")
    p = Proc([shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
              f"--listen-address={ip}", "--bind-interfaces", f"--port={port}", f"--addn-hosts={hosts}",
              "--pid-file=", "--user=root", "--log-facility=-"], tmp / f"dnsmasq-{port}.log")
    deadline = time.monotonic() + 5
    while "read " not in p.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return p


def test_dnsmasq_member_that_stops_is_marked_down_and_back_up(tmp_path):
    ip = fresh_ip()
    dm = _dnsmasq(tmp_path, ip, 9053)
    mon = {"type": "dns", "query_name": "health.test", "expect": r"10\.1\.2\.3", "timeout": "300ms"}
    d = Adcd(tmp_path, config(ip, mon, "udp", [9053], 8053))
    try:
        key = f"{ip}:9053"
        wait_checked(d, "app", key)
        hist = d.api("GET", f"/pools/app/members/{key}")["checks"]
        assert hist[0]["detail"] == "DNS NOERROR for health.test A: 10.1.2.3", hist[0]
        dm.stop()
        wait_health(d, "app", key, "down", LEAVE_BOUND + 1)
        log = d.log()
        assert (f"member app/{key} DOWN after {FALL} failed checks: port unreachable" in log
                or f"member app/{key} DOWN after {FALL} failed checks: no DNS reply within 300ms" in log), log[-2000:]
        dm = _dnsmasq(tmp_path, ip, 9053)
        back = wait_health(d, "app", key, "up", RETURN_BOUND + 1)
        assert back <= RETURN_BOUND
    finally:
        d.stop()
        dm.stop()


def test_fail_open_pool_serves_from_every_member_when_all_fail_their_checks(tmp_path):
    ip = fresh_ip()
    a, b = HttpMember(ip, 9001, "alpha"), HttpMember(ip, 9002, "beta")
    text = config(ip, {"type": "http", "path": "/healthz", "timeout": "300ms"}, "http", [9001, 9002], 8080)
    text = text.replace("    monitor: probe\n", "    monitor: probe\n    fail_open: true\n")
    d = Adcd(tmp_path, text)
    try:
        wait_checked(d, "app", f"{ip}:9001")
        a.mode = b.mode = "sick"
        deadline = time.monotonic() + LEAVE_BOUND + 2
        while "fail-open sends traffic to all 2 members" not in d.log():
            assert time.monotonic() < deadline, d.log()[-3000:]
            time.sleep(0.05)
        log = d.log()
        assert f"member app/{ip}:9001 DOWN after {FALL} failed checks: HTTP 500" in log
        assert {who_http(ip, 8080) for _ in range(6)} == {"alpha", "beta"}, "traffic goes to all members"
        info = d.api("GET", f"/pools/app/members/{ip}:9001")
        assert info["monitor"]["fail_open"] is True and info["monitor"]["health"] == "down"
        b.mode = "ok"
        deadline = time.monotonic() + RETURN_BOUND + 2
        while "pool app: a member is up again; fail-open ends" not in d.log():
            assert time.monotonic() < deadline, d.log()[-3000:]
            time.sleep(0.05)
        wait_health(d, "app", f"{ip}:9001", "down", 2)
        assert {who_http(ip, 8080) for _ in range(6)} == {"beta"}
    finally:
        d.stop()
        a.close()
        b.close()


def test_member_needs_any_of_two_monitors(tmp_path):
    ip = fresh_ip()
    a, b = HttpMember(ip, 9001, "alpha"), HttpMember(ip, 9002, "beta")
    text = f"""
monitors:
  - {{name: web, type: http, path: /healthz, interval: 500ms, timeout: 300ms}}
  - {{name: port, type: tcp, interval: 500ms, timeout: 300ms}}
pools:
  - name: app
    monitor: web
    monitors: [port]
    monitors_required: any
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - {{name: app, address: {ip}, port: 8080, protocol: http, default_pool: app}}
"""
    d = Adcd(tmp_path, text)
    try:
        key = f"{ip}:9001"
        deadline = time.monotonic() + 5
        while {h["monitor"] for h in d.api("GET", f"/pools/app/members/{key}")["checks"]} != {"web", "port"}:
            assert time.monotonic() < deadline, "both monitors checked the member"
            time.sleep(0.05)
        a.mode = "500"              # the http monitor fails, the tcp one still passes: any is enough
        deadline = time.monotonic() + 6
        while f"member app/{key} monitor web down after 2 failed checks: HTTP 500" not in d.log():
            assert time.monotonic() < deadline, d.log()[-3000:]
            time.sleep(0.05)
        assert members(d, "app")[key]["health"] == "up"
        assert "(1 of 2 up, 1 required: stays up)" in d.log()
        a.close()                   # now both fail
        wait_health(d, "app", key, "down", LEAVE_BOUND + 1)
        assert (f"member app/{key} DOWN after 2 failed checks: connection refused (monitor port; 0 of 2 up, "
                "1 required)") in d.log()
        hist = d.api("GET", f"/pools/app/members/{key}")["checks"]
        assert {h["monitor"] for h in hist} == {"web", "port"}
    finally:
        d.stop()
        a.close()
        b.close()


def test_restart_keeps_a_dead_member_down_and_its_first_check_corrects_it(tmp_path):
    ip = fresh_ip()
    a, b = HttpMember(ip, 9001, "alpha"), HttpMember(ip, 9002, "beta")
    text = config(ip, {"type": "http", "path": "/healthz", "timeout": "300ms"}, "http", [9001, 9002], 8080)
    d = Adcd(tmp_path, text)
    key = f"{ip}:9001"
    try:
        wait_checked(d, "app", key)
        a.close()
        wait_health(d, "app", key, "down", LEAVE_BOUND + 1)
    finally:
        d.stop()
    d = Adcd(tmp_path, text)       # same state dir: the verdict survives the restart
    try:
        assert members(d, "app")[key]["health"] == "down", "no traffic to a member known dead"
        assert {who_http(ip, 8080) for _ in range(4)} == {"beta"}
        a.open()
        took = wait_health(d, "app", key, "up", INTERVAL * 2 + 1)
        assert took <= INTERVAL * 2 + 1
        assert "alpha" in {who_http(ip, 8080) for _ in range(6)}
    finally:
        d.stop()
        a.close()
        b.close()
