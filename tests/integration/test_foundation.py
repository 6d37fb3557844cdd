"""The spine, end to end: the example config served by a real adcd, applies, rollbacks, worker death, SIGTERM."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import (ADCD, Adcd, Backends, example, fresh_ip, http_get, tcp_roundtrip,
                     udp_roundtrip, wait_port)


def start_site(tmp_path, env=None):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2", 9003: "api-1", 9004: "backend-4"},
                  tcp_echo=[9101, 9102], udp_echo=[9053])
    return ip, Adcd(tmp_path, example("adc.yaml", ip), env=env), be


@pytest.fixture
def site(tmp_path):
    """The example adc.yaml on a fresh address, with its backends."""
    ip, d, be = start_site(tmp_path)
    yield ip, d, be
    d.stop()
    be.stop()


class Load:
    """A bounded continuous HTTP client load; records every failure a user would see."""

    def __init__(self, ip: str, port: int, threads: int = 4, max_seconds: float = 60.0,
                 path: str = "/", keepalive: bool = False):
        self.ip, self.port, self.path = ip, port, path
        self.ok = 0
        self.failures: list[str] = []
        self.seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                status, body = http_get(self.ip, self.port, self.path, timeout=10)
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        who = body.split(b" ", 1)[0].decode()
                        self.seen[who] = self.seen.get(who, 0) + 1
                    else:
                        self.failures.append(f"HTTP {status}: {body[:80]!r}")
            except OSError as e:
                with self._lock:
                    self.failures.append(f"{type(e).__name__}: {e}")

    def stop(self) -> "Load":
        self._stop.set()
        for t in self._threads:
            t.join(15)
        return self


@pytest.fixture(params=["fast", "asyncio"])
def site_both_l4(request, tmp_path):
    """The example on the Cython engine and on the asyncio reference path."""
    ip, d, be = start_site(tmp_path, env={"ADC_L4": request.param})
    yield ip, d, be
    d.stop()
    be.stop()


def site_l4_kind(d: Adcd) -> str:
    return os.environ.get("ADC_L4", "fast") if d.env is None else d.env.get("ADC_L4", "fast")


def test_example_config_serves_http_tcp_and_udp(site_both_l4):
    ip, d, _ = site_both_l4
    bodies = {http_get(ip, 8080, "/")[1].split()[0] for _ in range(4)}
    assert bodies == {b"backend-1", b"backend-2"}, "round robin over both web members"
    status, body = http_get(ip, 8080, "/api/users")
    assert status == 200 and body.startswith(b"api-1 GET /api/users")
    assert tcp_roundtrip(ip, 8081, b"hello tcp\n") == b"hello tcp\n"
    assert udp_roundtrip(ip, 8053, b"hello udp") == b"hello udp"
    stats = d.api("GET", "/stats")
    assert stats["vips"]["web"]["requests"] >= 5
    assert stats["vips"]["echo"]["bytes_in"] == len(b"hello tcp\n")
    assert stats["vips"]["dns"]["bytes_out"] == len(b"hello udp")
    with socket.create_connection((ip, 8081)) as held:
        held.sendall(b"x")
        held.recv(1)
        ids = [c["id"] for c in d.api("GET", "/conns?vip=echo")]
    # the Cython engine names its connections "<slot>-f<n>"; the asyncio path "<slot>-<n>"
    assert len(ids) == 1 and ("-f" in ids[0]) == (site_l4_kind(d) == "fast"), ids


def test_check_reports_every_error_with_file_and_line(tmp_path):
    ip = fresh_ip()
    text = example("adc.yaml", ip)
    text = text.replace("algorithm: least_connections", "algorithm: fastest")      # pool api
    text = text.replace("default_pool: echo", "default_pool: nosuch")               # vip echo
    text = text.replace("{address: %s, port: 9002, weight: 1}" % ip, "{address: %s, port: 9002, weight: 900}" % ip)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    r = subprocess.run([ADCD, "--check", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    lines = text.splitlines()
    def line_of(s):
        return next(i + 1 for i, ln in enumerate(lines) if s in ln)
    err = r.stderr
    assert re.search(rf"{re.escape(str(bad))}:{line_of('algorithm: fastest')}: .*algorithm", err), err
    assert re.search(rf"{re.escape(str(bad))}:{line_of('default_pool: nosuch')}: .*nosuch", err), err
    assert re.search(rf"{re.escape(str(bad))}:{line_of('weight: 900')}: .*weight.*256", err), err
    good = tmp_path / "good.yaml"
    good.write_text(example("adc.yaml", ip))
    r = subprocess.run([ADCD, "--check", "--config", str(good)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bad_config_is_refused_and_running_config_keeps_serving(site, tmp_path):
    ip, d, _ = site
    rev = d.api("GET", "/status")["revision"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(example("adc.yaml", ip).replace("port: 8081", "port: 80810"))
    r = d.ctl("apply", "-f", str(bad))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert f"{bad}:" in r.stderr and "port" in r.stderr
    assert "Traceback" not in r.stderr
    assert d.api("GET", "/status")["revision"] == rev
    assert http_get(ip, 8080, "/")[0] == 200
    assert tcp_roundtrip(ip, 8081, b"still here") == b"still here"


def test_apply_member_swap_and_rollback_fail_no_request(site, tmp_path):
    ip, d, _ = site
    rev0 = d.api("GET", "/status")["revision"]
    swapped = example("adc.yaml", ip).replace(
        f"{{address: {ip}, port: 9002, weight: 1}}", f"{{address: {ip}, port: 9004, weight: 1}}")
    f = tmp_path / "swapped.yaml"
    f.write_text(swapped)
    load = Load(ip, 8080)
    time.sleep(1.0)
    r = d.ctl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    before = dict(load.seen)
    time.sleep(1.0)
    after_apply = {k: v - before.get(k, 0) for k, v in load.seen.items()}
    r = d.ctl("config", "rollback", str(rev0))
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    mark = dict(load.seen)
    time.sleep(1.0)
    load.stop()
    after_rollback = {k: v - mark.get(k, 0) for k, v in load.seen.items()}
    assert load.failures == [], load.failures[:5]
    assert load.ok > 50
    assert after_apply.get("backend-4", 0) > 0 and after_apply.get("backend-2", 0) == 0, after_apply
    assert after_rollback.get("backend-2", 0) > 0 and after_rollback.get("backend-4", 0) == 0, after_rollback
    hist = d.api("GET", "/config/history")
    assert hist["current"] == rev0 + 2
    assert [h["revision"] for h in hist["revisions"][:3]] == [rev0 + 2, rev0 + 1, rev0]
    assert len(os.listdir(d.state_dir / "history")) >= 3


def _listen_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def _tcp_listen_inodes() -> set[str]:
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in list(f)[1:]:
                parts = line.split()
                if parts[3] == "0A":   # LISTEN
                    inodes.add(f"socket:[{parts[9]}]")
    return inodes


def test_killed_worker_is_respawned_on_the_same_sockets_without_refusals(site):
    ip, d, _ = site
    pids = d.worker_pids()
    victim = pids[0]
    listening = _tcp_listen_inodes()
    before = _listen_inodes(victim) & listening
    assert before, "the worker holds listening sockets"
    load = Load(ip, 8080, threads=4)
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    new = None
    while time.monotonic() - t0 < 5:
        ws = d.api("GET", "/workers")
        w = next(w for w in ws if w["slot"] == 0)
        if w["alive"] and w["pid"] != victim:
            new = w["pid"]
            break
        time.sleep(0.02)
    back_after = time.monotonic() - t0
    time.sleep(1.0)
    load.stop()
    assert new is not None, "worker 0 was not respawned"
    assert back_after < 1.0, f"worker back after {back_after:.2f}s"
    # kill -9 takes down what the victim held in flight (at most one request per client
    # thread); every other connection, including those queued while it was dead, is served
    refused = [f for f in load.failures if "Refused" in f or "timed out" in f]
    assert refused == [], refused
    assert len(load.failures) <= 4, load.failures
    assert load.ok > 50
    after = _listen_inodes(new) & _tcp_listen_inodes()
    assert after == before, "the respawned worker serves the very same listening sockets"


def test_sigterm_completes_inflight_requests_and_exits_zero(tmp_path):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2", 9003: "api-1"},
                  tcp_echo=[9101, 9102], udp_echo=[9053])
    slow = SlowBackend(ip, 9005, delay=1.5)
    cfg = example("adc.yaml", ip)   # drain_timeout: the default 30s, longer than any request here
    cfg = cfg.replace(f"{{address: {ip}, port: 9003}}", f"{{address: {ip}, port: 9005}}")
    d = Adcd(tmp_path, cfg)
    results: list = []

    def client():
        try:
            results.append(http_get(ip, 8080, "/api/slow", timeout=10))
        except OSError as e:
            results.append(e)

    ts = [threading.Thread(target=client) for _ in range(8)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + 5
    while slow.active < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.active == 8, "all requests reached the member before SIGTERM"
    t0 = time.monotonic()
    d.p.send_signal(signal.SIGTERM)
    # soon after SIGTERM a new connection is refused: every copy of the listeners is closed
    refused = False
    while not refused and time.monotonic() - t0 < 5:
        try:
            socket.create_connection((ip, 8080), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            refused = True
    assert refused, "adcd still accepted new connections 5s after SIGTERM"
    rc = d.p.wait(30)
    took = time.monotonic() - t0
    for t in ts:
        t.join(5)
    slow.close()
    d.stop()
    be.stop()
    assert rc == 0, d.log()
    assert took < 30
    assert [r[0] for r in results] == [200] * 8, results


def test_sigterm_cuts_what_outlasts_the_drain_timeout_and_exits_within_it(tmp_path):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2"}, tcp_echo=[9101, 9102],
                  udp_echo=[9053])
    slow = SlowBackend(ip, 9005, delay=8)
    cfg = example("adc.yaml", ip).replace("global:\n", "global:\n  drain_timeout: 2s\n", 1)
    cfg = cfg.replace(f"{{address: {ip}, port: 9003}}", f"{{address: {ip}, port: 9005}}")
    d = Adcd(tmp_path, cfg)
    results: list = []
    t = threading.Thread(target=lambda: results.append(_get_or_error(ip, "/api/slow")))
    t.start()
    deadline = time.monotonic() + 5
    while slow.active < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    d.p.send_signal(signal.SIGTERM)
    rc = d.p.wait(15)
    took = time.monotonic() - t0
    t.join(10)
    slow.close()
    d.stop()
    be.stop()
    assert rc == 0
    assert 1.5 < took < 5, f"adcd exited {took:.1f}s after SIGTERM with drain_timeout 2s"
    assert isinstance(results[0], OSError), f"the 8s request was cut at the drain timeout: {results[0]}"


def _get_or_error(ip, path):
    try:
        return http_get(ip, 8080, path, timeout=15)
    except OSError as e:
        return e


class SlowBackend:
    """An HTTP member that answers after `delay` seconds; counts requests in flight."""

    def __init__(self, ip: str, port: int, delay: float):
        self.delay = delay
        self.active = 0
        self.srv = socket.create_server((ip, port), reuse_port=False)
        self.srv.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        c.settimeout(10)
        try:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                _, buf = buf.split(b"\r\n\r\n", 1)
                with self._lock:
                    self.active += 1
                time.sleep(self.delay)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self._stop.set()
        self.srv.close()


def test_config_show_round_trips_through_diff(site, tmp_path):
    ip, d, _ = site
    r = d.ctl("config", "show", "-o", "yaml")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "shown.yaml"
    f.write_text(r.stdout)
    r = d.ctl("diff", "-f", str(f))
    assert r.returncode == 0, (r.stdout, r.stderr)
    f.write_text(f.read_text().replace("port: 9002", "port: 9004"))
    r = d.ctl("diff", "-f", str(f))
    assert r.returncode == 1
    assert "9004" in r.stdout
    rev = d.api("GET", "/status")["revision"]
    r = d.ctl("apply", "-f", str(f), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert d.api("GET", "/status")["revision"] == rev, "a dry run changes nothing"
    assert {m["port"] for m in d.api("GET", "/pools/web/members")} == {9001, 9002}


def test_sighup_applies_the_file_and_a_bad_file_changes_nothing(site):
    ip, d, _ = site
    rev = d.api("GET", "/status")["revision"]
    good = d.config.read_text()
    d.config.write_text(good.replace(f"{{address: {ip}, port: 9002, weight: 1}}",
                                     f"{{address: {ip}, port: 9004, weight: 1}}"))
    d.p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while d.api("GET", "/status")["revision"] == rev and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.api("GET", "/status")["revision"] == rev + 1
    seen = {http_get(ip, 8080, "/")[1].split()[0] for _ in range(4)}
    assert seen == {b"backend-1", b"backend-4"}
    d.config.write_text(good.replace("protocol: udp", "protocol: sctp"))
    d.p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "running config kept" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.api("GET", "/status")["revision"] == rev + 1
    assert re.search(r"<3>adcd: SIGHUP: .* refused, running config kept", d.log())
    assert udp_roundtrip(ip, 8053, b"still") == b"still"


def test_removed_vip_stops_accepting_and_its_connections_end_after_drain(site, tmp_path):
    ip, d, _ = site
    text = example("adc.yaml", ip).replace("global:\n", "global:\n  drain_timeout: 2s\n", 1)
    f = tmp_path / "a.yaml"
    f.write_text(text)
    assert d.ctl("apply", "-f", str(f)).returncode == 0
    held = socket.create_connection((ip, 8081), timeout=5)
    held.sendall(b"before\n")
    assert held.recv(100) == b"before\n"
    start = text.index("  - name: echo\n    address")
    end = text.index("  - name: dns\n    address")
    f.write_text(text[:start] + text[end:])
    r = d.ctl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    with pytest.raises(OSError):
        socket.create_connection((ip, 8081), timeout=1).close()
    held.sendall(b"during drain\n")
    assert held.recv(100) == b"during drain\n", "an open connection keeps working while draining"
    held.settimeout(5)
    t0 = time.monotonic()
    assert held.recv(100) == b"", "closed at the drain timeout"
    assert time.monotonic() - t0 < 4
    held.close()
    assert [v["name"] for v in d.api("GET", "/vips")] == ["web", "dns"]


def test_demo_serves_the_tour(tmp_path):
    """What `make run` starts: adcd --demo, its backends, the tour's curl, nc and adcctl."""
    from harness import Proc, ADCCTL
    for port in (8080, 8081):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"127.0.0.1:{port} is taken: is a `make run` demo running?")
    sock = str(tmp_path / "demo.sock")
    demo = Proc([ADCD, "--demo", "--socket", sock], tmp_path / "demo.log")
    try:
        wait_port("127.0.0.1", 8080, 20)
        wait_port("127.0.0.1", 9001, 20)
        assert http_get("127.0.0.1", 8080, "/")[0] == 200
        assert http_get("127.0.0.1", 8080, "/api/users")[1].startswith(b"api-1")
        assert tcp_roundtrip("127.0.0.1", 8081, b"hello\n") == b"hello\n"
        assert udp_roundtrip("127.0.0.1", 8053, b"hello") == b"hello"
        r = subprocess.run([ADCCTL, "--socket", sock, "pool", "show", "web", "-o", "json"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "adcctl status" in demo.log()
    finally:
        assert demo.stop(signal.SIGINT) == 0, demo.log()
    for port in (8080, 9001):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"{port} still served after Ctrl-C"


def test_lookup_predicts_the_member_a_client_reaches_and_conn_list_shows_it(site):
    ip, d, _ = site
    held = []
    for i in range(1, 7):
        src = f"127.9.{i}.{i * 3}"
        r = d.ctl("lookup", "echo", src, "-o", "json")
        assert r.returncode == 0, r.stderr
        want = __import__("json").loads(r.stdout)
        assert want["algorithm"] == "maglev" and "slot" in want["reason"]
        s = socket.socket()
        s.bind((src, 0))
        s.connect((ip, 8081))
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        held.append((s, src, want["member"]))
    conns = d.api("GET", "/conns?vip=echo")
    by_client = {c["client"].rsplit(":", 1)[0]: c for c in conns}
    for s, src, member in held:
        assert by_client[src]["member"] == f"echo/{member}", (src, by_client[src], member)
        assert by_client[src]["bytes_in"] == 1 and by_client[src]["bytes_out"] == 1
    victim = by_client[held[0][1]]["id"]
    r = d.ctl("conn", "kill", victim)
    assert r.returncode == 0, r.stderr
    held[0][0].settimeout(5)
    assert held[0][0].recv(10) == b""
    for s, src, _ in held[1:]:
        s.sendall(b"y")
        assert s.recv(1) == b"y", f"{src}: only the killed connection ends"
    for s, *_ in held:
        s.close()
    deadline = time.monotonic() + 5
    while d.api("GET", "/conns?vip=echo") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.api("GET", "/conns?vip=echo") == []
    r = d.ctl("lookup", "echo", "not-an-ip")
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr


def test_metrics_expose_the_shared_memory_counters(site):
    ip, d, _ = site
    for _ in range(3):
        assert http_get(ip, 8080, "/")[0] == 200
    assert tcp_roundtrip(ip, 8081, b"12345") == b"12345"
    from harness import unix_request
    status, headers, body = unix_request(d.socket, "GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'adc_vip_requests_total{vip="web"} 3.0' in text
    assert 'adc_vip_bytes_in_total{vip="echo"} 5.0' in text
    assert f'adc_member_up{{member="{ip}:9001",pool="web"}} 1.0' in text
    assert "adc_workers_alive 2.0" in text


def test_a_refused_apply_changes_nothing_in_the_running_members(site, tmp_path):
    ip, d, _ = site
    squatter = socket.create_server((ip, 8090))     # the new VIP's port is taken: the apply must fail
    try:
        text = example("adc.yaml", ip)
        text = text.replace(f"{{address: {ip}, port: 9001, weight: 1}}",
                            f"{{address: {ip}, port: 9001, weight: 1, state: maint}}")
        text += f"  - name: extra\n    address: {ip}\n    port: 8090\n    protocol: tcp\n    default_pool: echo\n"
        f = tmp_path / "refused.yaml"
        f.write_text(text)
        r = d.ctl("apply", "-f", str(f))
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "8090" in r.stderr and "nothing changed" in r.stderr
    finally:
        squatter.close()
    seen = {http_get(ip, 8080, "/")[1].split()[0] for _ in range(6)}
    assert seen == {b"backend-1", b"backend-2"}, "member 9001 still takes traffic"
    assert {m["state"] for m in d.api("GET", "/pools/web/members")} == {"up"}


def test_more_vips_than_one_message_can_carry_sockets_for(tmp_path):
    ip = fresh_ip()
    be = Backends(tmp_path, ip, tcp_echo=[9101])
    vips = "".join(f"  - name: v{i}\n    address: {ip}\n    port: {20000 + i}\n    protocol: tcp\n"
                   f"    default_pool: echo\n" for i in range(300))
    text = (f"pools:\n  - name: echo\n    members:\n      - {{address: {ip}, port: 9101}}\nvips:\n{vips}")
    d = Adcd(tmp_path, text, wait_vips=False)
    try:
        assert tcp_roundtrip(ip, 20000, b"first") == b"first"
        assert tcp_roundtrip(ip, 20299, b"last") == b"last"
        victim = d.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (victim in d.worker_pids() or len(d.worker_pids()) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(d.worker_pids()) == 2, d.log()[-2000:]
        for port in (20000, 20150, 20299):
            for _ in range(4):   # both workers' sockets
                assert tcp_roundtrip(ip, port, b"again") == b"again"
    finally:
        d.stop()
        be.stop()


def test_the_file_wins_over_an_operator_override_once_it_changes_that_member(site, tmp_path):
    ip, d, _ = site
    key = f"{ip}:9001"
    assert d.ctl("member", "weight", "web", key, "5").returncode == 0
    text = example("adc.yaml", ip).replace("global:\n", "global:\n  drain_timeout: 3s\n", 1)
    f = tmp_path / "other.yaml"
    f.write_text(text)
    assert d.ctl("apply", "-f", str(f)).returncode == 0
    weight = {m["key"]: m["weight"] for m in d.api("GET", "/pools/web/members")}
    assert weight[key] == 5, "an apply that leaves the member alone keeps the operator's weight"
    f.write_text(text.replace(f"{{address: {ip}, port: 9001, weight: 1}}", f"{{address: {ip}, port: 9001, weight: 3}}"))
    assert d.ctl("apply", "-f", str(f)).returncode == 0
    weight = {m["key"]: m["weight"] for m in d.api("GET", "/pools/web/members")}
    assert weight[key] == 3, "the file changed that member's weight: the file wins"


def test_diff_previews_what_a_maglev_change_remaps(site, tmp_path):
    ip, d, _ = site
    f = tmp_path / "more.yaml"
    f.write_text(example("adc.yaml", ip).replace(
        f"      - {{address: {ip}, port: 9102}}\n",
        f"      - {{address: {ip}, port: 9102}}\n      - {{address: {ip}, port: 9103}}\n"))
    r = d.ctl("diff", "-f", str(f))
    assert r.returncode == 1
    m = re.search(r"pool 'echo' \(maglev\): ([\d.]+)% of flows would move", r.stdout)
    assert m, r.stdout
    # a third member takes about a third of the table, and no more than its share moves
    assert 25 < float(m.group(1)) < 40
    r = d.ctl("apply", "-f", str(f), "--dry-run")
    assert r.returncode == 0 and "of flows would move" in r.stdout, r.stdout
    f.write_text(f.read_text().replace("workers: auto", "workers: 1"))
    r = d.ctl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert "global.workers changed" in r.stdout and "takes effect when adcd restarts" in r.stdout, r.stdout


def test_a_port_another_process_serves_is_refused_not_shared(site, tmp_path):
    ip, d, _ = site
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)   # as another HAProxy would
    other.bind((ip, 8095))
    other.listen()
    try:
        text = example("adc.yaml", ip) + (f"  - name: extra\n    address: {ip}\n    port: 8095\n"
                                           f"    protocol: tcp\n    default_pool: echo\n")
        f = tmp_path / "shared.yaml"
        f.write_text(text)
        r = d.ctl("apply", "-f", str(f))
        assert r.returncode == 1 and "another process serves it" in r.stderr, (r.stdout, r.stderr)
    finally:
        other.close()
    r = d.ctl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert tcp_roundtrip(ip, 8095, b"mine now") == b"mine now"


def test_http_connections_are_listed_and_killed_by_worker_qualified_ids(site):
    ip, d, _ = site
    import http.client as hc
    conns = [hc.HTTPConnection(ip, 8080, timeout=5) for _ in range(6)]
    for c in conns:
        c.request("GET", "/")
        assert c.getresponse().read()
    listed = d.api("GET", "/conns?vip=web")
    ids = [c["id"] for c in listed]
    assert len(ids) == 6 and len(set(ids)) == 6, ids
    assert all(re.fullmatch(r"\d+-h\d+", i) for i in ids), ids
    assert d.ctl("conn", "kill", ids[0]).returncode == 0
    assert len(d.api("GET", "/conns?vip=web")) == 5, "one kill ends one connection"
    for c in conns:
        c.close()


def test_a_restart_says_when_the_file_is_behind_a_revision_applied_through_the_api(site, tmp_path):
    ip, d, _ = site
    f = tmp_path / "api.yaml"
    f.write_text(example("adc.yaml", ip).replace(f"{{address: {ip}, port: 9002, weight: 1}}",
                                                 f"{{address: {ip}, port: 9004, weight: 1}}"))
    assert d.ctl("apply", "-f", str(f)).returncode == 0
    rev = d.api("GET", "/status")["revision"]
    assert d.stop() == 0
    d2 = Adcd(tmp_path, d.config.read_text())
    try:
        assert re.search(rf"<4>adcd: .*adc.yaml differs from revision {rev} \(applied from .*api.yaml\): "
                         rf"starting from the file", d2.log()), d2.log()[-1500:]
        assert {http_get(ip, 8080, "/")[1].split()[0] for _ in range(4)} == {b"backend-1", b"backend-2"}
    finally:
        d2.stop()


def test_apply_shows_the_configs_warnings(site, tmp_path):
    ip, d, _ = site
    f = tmp_path / "warn.yaml"
    f.write_text(example("adc.yaml", ip).replace(
        "    default_pool: web\n    routes:", "    default_pool: web\n    http:\n      persistence: {type: cookie}\n    routes:"))
    r = d.ctl("apply", "-f", str(f), "-o", "table")
    assert r.returncode == 0, r.stderr
    assert re.search(r"note: .*warn.yaml:\d+: vip 'web': persistence: cookie persistence without `secret`.*"
                     r"\(warning\)", r.stdout), r.stdout
