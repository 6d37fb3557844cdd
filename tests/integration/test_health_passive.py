"""Passive health end to end: a member that fails real traffic is ejected, then returns, on a real adcd."""
from __future__ import annotations

import time

from harness import Adcd, Backends, fresh_ip, http_get, members, wait_for
from test_health_slow_start import CountingHttp






def test_member_refusing_connections_is_ejected_without_a_monitor_and_returns(tmp_path):
    ip = fresh_ip()
    keep = Backends(tmp_path, ip, http={9001: "alpha"})
    (tmp_path / "b").mkdir()
    victim = Backends(tmp_path / "b", ip, http={9002: "beta"})
    d = Adcd(tmp_path, f"""
pools:
  - name: web
    outlier_detection: {{consecutive_errors: 3, interval: 200ms, base_ejection: 2s, max_ejection: 10s}}
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - {{name: web, address: {ip}, port: 8080, protocol: http, default_pool: web}}
""")
    try:
        key = f"{ip}:9002"
        assert {http_get(ip, 8080)[1].split()[0] for _ in range(6)} == {b"alpha", b"beta"}
        victim.stop()
        # clients see no error (connect failures are retried on alpha) while the failures add up
        for _ in range(200):
            status, body = http_get(ip, 8080)
            assert status == 200 and body.startswith(b"alpha"), (status, body)
            if members(d, "web")[key]["health"] == "down":
                break
        else:
            raise AssertionError(f"member not ejected:\n{d.log()[-3000:]}")
        assert f"member web/{key} EJECTED for 2s after " in d.log()
        info = d.api("GET", f"/pools/web/members/{key}")["monitor"]
        assert info["ejected"] is True and info["ejections"] == 1
        (tmp_path / "c").mkdir()
        victim = Backends(tmp_path / "c", ip, http={9002: "beta"})
        wait_for(lambda: members(d, "web")[key]["health"] == "up", 4, "back after the ejection", d)
        assert f"member web/{key} back from ejection after 2s" in d.log()
        assert b"beta" in {http_get(ip, 8080)[1].split()[0] for _ in range(6)}
    finally:
        d.stop()
        keep.stop()
        victim.stop()


def test_at_most_the_allowed_share_of_the_pool_is_ejected(tmp_path):
    ip = fresh_ip()
    d = Adcd(tmp_path, f"""
pools:
  - name: web
    outlier_detection: {{consecutive_errors: 2, interval: 200ms, base_ejection: 30s, max_ejected_percent: 50}}
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - {{name: web, address: {ip}, port: 8080, protocol: http, default_pool: web}}
""")
    try:
        # nothing listens: every member fails; only one of the two may be ejected
        for _ in range(60):
            try:
                http_get(ip, 8080, timeout=2)
            except OSError:
                pass
            if "not ejected after" in d.log():
                break
            time.sleep(0.05)
        m = members(d, "web")
        assert sorted(x["health"] for x in m.values()) == ["down", "up"], m
        assert "EJECTED for 30s" in d.log()
        assert "already are (max_ejected_percent 50)" in d.log()
    finally:
        d.stop()


def load_until(d, ip: str, done, what: str, batch: int = 10, seconds: float = 5, most: int = 5000) -> list:
    """GETs through the VIP at ip:8080, `batch` between looks at done(), until it holds; their
    statuses. Fails with `what` and the log after `seconds` or `most` requests."""
    statuses: list = []
    t0 = time.monotonic()
    while not done():
        statuses += [http_get(ip, 8080)[0] for _ in range(batch)]
        if time.monotonic() - t0 > seconds or len(statuses) > most:
            raise AssertionError(f"{what} after {len(statuses)} requests:\n{d.log()[-3000:]}")
    return statuses


def test_member_answering_500_is_ejected_by_consecutive_5xx_and_returns(tmp_path):
    ip = fresh_ip()
    a, b = CountingHttp(ip, 9001, "alpha"), CountingHttp(ip, 9002, "beta")
    # no retry_on for statuses: the clients see the 500s until the member is out
    d = Adcd(tmp_path, f"""
pools:
  - name: web
    outlier_detection: {{consecutive_5xx: 5, interval: 200ms, base_ejection: 2s, max_ejection: 10s}}
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - {{name: web, address: {ip}, port: 8080, protocol: http, default_pool: web}}
""")
    key = f"{ip}:9002"
    try:
        assert {http_get(ip, 8080)[1].split()[0] for _ in range(6)} == {b"alpha", b"beta"}
        b.status = 500
        seen = load_until(d, ip, lambda: members(d, "web")[key]["health"] == "down", "member not ejected")
        assert 500 in seen
        assert f"member web/{key} EJECTED for 2s after " in d.log()
        assert "5xx answers or failed requests (passive health, ejection 1)" in d.log()
        info = d.api("GET", f"/pools/web/members/{key}")["monitor"]
        assert info["ejected"] is True and info["ejections"] == 1
        assert members(d, "web")[key]["stats"]["resp_5xx"] >= 5
        # out: every client gets alpha's 200, beta serves nothing
        served = len(b.served)
        assert {http_get(ip, 8080) for _ in range(40)} == {(200, b"alpha\n")}
        assert len(b.served) == served
        b.status = 200
        wait_for(lambda: members(d, "web")[key]["health"] == "up", 4, "back after the ejection", d)
        assert f"member web/{key} back from ejection after 2s" in d.log()
        assert b"beta" in {http_get(ip, 8080)[1].split()[0] for _ in range(6)}
    finally:
        d.stop()
        a.close()
        b.close()


def test_retried_503s_eject_the_member_counted_once_each_and_no_client_sees_one(tmp_path):
    ip = fresh_ip()
    a, b = CountingHttp(ip, 9001, "alpha"), CountingHttp(ip, 9002, "beta")
    # consecutive_errors out of reach: the ejection must come from consecutive_5xx, whose count
    # must not take a retried 503 twice (the proxy counts it as an error as well as a 5xx)
    d = Adcd(tmp_path, f"""
pools:
  - name: web
    outlier_detection: {{consecutive_errors: 10000, consecutive_5xx: 20, interval: 200ms, base_ejection: 5s}}
    members:
      - {{address: {ip}, port: 9001}}
      - {{address: {ip}, port: 9002}}
vips:
  - name: web
    address: {ip}
    port: 8080
    protocol: http
    default_pool: web
    http: {{retry_on: [connect, "503"]}}
""")
    key = f"{ip}:9002"
    try:
        b.status = 503
        statuses = load_until(d, ip, lambda: "EJECTED" in d.log(), "member not ejected", batch=1)
        assert set(statuses) == {200}
        line = next(x for x in d.log().splitlines() if "EJECTED" in x)
        assert f"member web/{key} EJECTED for 5s after " in line and "5xx answers or failed requests" in line
        counted = int(line.split(" after ")[1].split()[0])
        stats = members(d, "web")[key]["stats"]
        assert stats["errors"] == stats["resp_5xx"]            # the proxy's double entry is there...
        assert 20 <= counted <= len(b.served), (counted, len(b.served))   # ...and not in the streak
    finally:
        d.stop()
        a.close()
        b.close()
