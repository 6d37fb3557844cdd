"""The checker's scheduling contract: one check per (monitor, address, port), state kept across applies."""
from __future__ import annotations

import asyncio
import logging

from adc.config.schema import Config
from adc.health.checker import HealthChecker

IP = "127.0.0.1"


def cfg(pools: list, monitors: list = None) -> Config:
    monitors = monitors if monitors is not None else [
        {"name": "tcp", "type": "tcp", "interval": "100ms", "timeout": "50ms", "rise": 2, "fall": 2}]
    return Config.model_validate({"monitors": monitors, "pools": pools})


def pool(name: str, ports: list, monitor: str = "tcp", **member) -> dict:
    return {"name": name, "monitor": monitor, "members": [{"address": IP, "port": p, **member} for p in ports]}


async def listener():
    srv = await asyncio.start_server(lambda r, w: w.close(), IP, 0)
    return srv, srv.sockets[0].getsockname()[1]


async def until(pred, limit: float = 10.0):
    for _ in range(int(limit / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_member_shared_by_two_pools_is_checked_once_and_both_pools_hear(caplog):
    async def main():
        srv, port = await listener()
        srv.close()
        await srv.wait_closed()       # the port is closed: the member is down
        got = []
        hc = HealthChecker(lambda p, k, h: got.append((p, k, h)))
        hc.configure(cfg([pool("web", [port]), pool("api", [port])]))
        assert len(hc.checks) == 1
        await until(lambda: len(got) == 2)
        assert sorted(got) == [("api", f"{IP}:{port}", "down"), ("web", f"{IP}:{port}", "down")]
        await hc.stop()
    with caplog.at_level(logging.WARNING, logger="adc.health"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records]
    assert any(l.startswith("member web/") and "DOWN first check failed: connection refused" in l for l in lines)
    assert any(l.startswith("member api/") for l in lines)


def test_monitor_port_and_address_overrides_pick_what_is_checked():
    async def main():
        srv, port = await listener()
        hc = HealthChecker(lambda *a: None)
        hc.configure(cfg([{"name": "web", "monitor": "tcp",
                           "members": [{"address": "127.0.0.9", "port": 1, "monitor_address": IP,
                                        "monitor_port": port}]}]))
        await until(lambda: hc.history("web", "127.0.0.9:1"))
        st = hc.status("web", "127.0.0.9:1")
        assert st["target"] == f"{IP}:{port}" and hc.history("web", "127.0.0.9:1")[0]["ok"]
        await hc.stop()
        srv.close()
    asyncio.run(main())


def test_an_apply_that_keeps_the_monitor_keeps_the_state_and_counts():
    async def main():
        srv, port = await listener()
        hc = HealthChecker(lambda *a: None)
        c1 = cfg([pool("web", [port])])
        hc.configure(c1)
        await until(lambda: len(hc.history("web", f"{IP}:{port}")) >= 3)
        before = hc.checks[next(iter(hc.checks))]
        # another pool added, same monitor, same member: the same check object keeps running
        hc.configure(cfg([pool("web", [port]), pool("other", [port])]))
        after = hc.checks[next(iter(hc.checks))]
        assert after is before and not after.task.done()
        assert hc.history("other", f"{IP}:{port}") == hc.history("web", f"{IP}:{port}")
        await hc.stop()
        srv.close()
    asyncio.run(main())


def test_changed_monitor_restarts_the_check_but_keeps_the_verdict():
    async def main():
        srv, port = await listener()
        srv.close()
        await srv.wait_closed()
        got = []
        hc = HealthChecker(lambda p, k, h: got.append(h))
        hc.configure(cfg([pool("web", [port])]))
        await until(lambda: got == ["down"])
        old = next(iter(hc.checks.values()))
        slower = [{"name": "tcp", "type": "tcp", "interval": "200ms", "timeout": "50ms", "fall": 3}]
        hc.configure(cfg([pool("web", [port])], slower))
        new = next(iter(hc.checks.values()))
        assert new is not old and old.task.cancelling()
        assert new.health.state == "down", "a new monitor starts from the member's last verdict"
        await asyncio.sleep(0.5)
        assert got == ["down"], "no second report: the member was down and stays down"
        await hc.stop()
    asyncio.run(main())


def test_removed_members_stop_being_checked():
    async def main():
        srv, port = await listener()
        hc = HealthChecker(lambda *a: None)
        hc.configure(cfg([pool("web", [port])]))
        task = next(iter(hc.checks.values())).task
        hc.configure(cfg([{"name": "web", "members": []}]))
        await asyncio.sleep(0)
        assert not hc.checks and hc.history("web", f"{IP}:{port}") == []
        await asyncio.sleep(0.05)
        assert task.done()
        await hc.stop()
        srv.close()
    asyncio.run(main())


def test_recovery_needs_rise_passes_and_is_logged_at_notice(caplog):
    async def main():
        srv, port = await listener()
        srv.close()
        await srv.wait_closed()
        got = []
        hc = HealthChecker(lambda p, k, h: got.append(h))
        hc.configure(cfg([pool("web", [port])]))
        await until(lambda: got == ["down"])
        srv2 = await asyncio.start_server(lambda r, w: w.close(), IP, port)
        await until(lambda: got == ["down", "up"])
        hist = hc.history("web", f"{IP}:{port}")
        assert [h["ok"] for h in hist[:2]] == [True, True]
        await hc.stop()
        srv2.close()
    with caplog.at_level(logging.INFO, logger="adc.health"):
        asyncio.run(main())
    ups = [r for r in caplog.records if " UP after " in r.getMessage()]
    assert ups and ups[0].getMessage().endswith("UP after 2 passed checks: connected")
    assert ups[0].levelname == "NOTICE"


def _two_monitors(required, port_ok: int, port_dead: int) -> Config:
    mons = [{"name": "a", "type": "tcp", "interval": "100ms", "timeout": "50ms", "port": port_ok},
            {"name": "b", "type": "tcp", "interval": "100ms", "timeout": "50ms", "port": port_dead}]
    return cfg([{"name": "web", "monitor": "a", "monitors": ["b"], "monitors_required": required,
                 "members": [{"address": IP, "port": 80}]}], mons)


def test_several_monitors_all_required_one_failing_takes_the_member_down(caplog):
    async def main():
        srv, ok_port = await listener()
        dead, dead_port = await listener()
        dead.close()
        await dead.wait_closed()
        got = []
        hc = HealthChecker(lambda p, k, h: got.append(h))
        hc.configure(_two_monitors("all", ok_port, dead_port))
        await until(lambda: "down" in got and all(c.history for c in hc.checks.values()))
        st = hc.status("web", f"{IP}:80")
        assert (st["health"], st["required"], st["up"]) == ("down", 2, 1)
        assert {m["monitor"] for m in st["monitors"]} == {"a", "b"}
        assert {h["monitor"] for h in hc.history("web", f"{IP}:80")} == {"a", "b"}
        await hc.stop()
        srv.close()
    with caplog.at_level(logging.WARNING, logger="adc.health"):
        asyncio.run(main())
    assert any("(monitor b; 1 of 2 up, 2 required)" in r.getMessage() for r in caplog.records)


def test_several_monitors_any_required_one_passing_keeps_the_member_up():
    async def main():
        srv, ok_port = await listener()
        dead, dead_port = await listener()
        dead.close()
        await dead.wait_closed()
        got = []
        hc = HealthChecker(lambda p, k, h: got.append(h))
        hc.configure(_two_monitors("any", ok_port, dead_port))
        await until(lambda: all(len(c.history) >= 3 for c in hc.checks.values()))
        assert "down" not in got and hc.status("web", f"{IP}:80")["health"] == "up"
        # the operator tightens the rule to both: the member goes down at the apply
        hc.configure(_two_monitors("all", ok_port, dead_port))
        assert got[-1] == "down"
        await hc.stop()
        srv.close()
    asyncio.run(main())


def test_config_names_an_unknown_monitor_in_the_list_and_an_impossible_count():
    import pytest
    from adc.config.errors import ConfigInvalid
    from adc.config.loader import load_text
    text = ("monitors:\n  - {name: a, type: tcp}\n"
            "pools:\n  - name: web\n    monitor: a\n    monitors: [bb]\n    monitors_required: 3\n"
            "    members: [{address: 127.0.0.1, port: 80}]\n")
    with pytest.raises(ConfigInvalid) as e:
        load_text(text, "f.yaml")
    errors = [str(x) for x in e.value.errors]
    assert any("pool 'web': monitors: no monitor named 'bb'" in x for x in errors), errors
    assert any("3 monitors required but the pool has 2" in x for x in errors), errors


def test_fail_open_reports_every_member_up_while_none_passes(caplog):
    async def main():
        srv, port = await listener()
        srv.close()
        await srv.wait_closed()
        live, live_port = await listener()
        live.close()
        await live.wait_closed()
        got = {}
        hc = HealthChecker(lambda p, k, h: got.__setitem__(k, h))
        c = cfg([{**pool("web", [port, live_port]), "fail_open": True}])
        hc.configure(c)
        await until(lambda: all(len(x.history) >= 2 for x in hc.checks.values()))
        assert got == {f"{IP}:{port}": "up", f"{IP}:{live_port}": "up"}, "every member is reported up"
        assert hc.status("web", f"{IP}:{port}")["fail_open"] is True
        back = await asyncio.start_server(lambda r, w: w.close(), IP, live_port)
        await until(lambda: got.get(f"{IP}:{port}") == "down")
        assert got[f"{IP}:{live_port}"] == "up"
        await hc.stop()
        back.close()
    with caplog.at_level(logging.INFO, logger="adc.health"):
        asyncio.run(main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "pool web: no member is up; fail-open sends traffic to all 2 members" in text
    assert "pool web: a member is up again; fail-open ends" in text


def test_config_refuses_a_first_ejection_longer_than_the_longest():
    import pytest
    from adc.config.errors import ConfigInvalid
    from adc.config.loader import load_text
    with pytest.raises(ConfigInvalid) as e:
        load_text("pools:\n  - name: web\n    outlier_detection: {base_ejection: 10m, max_ejection: 5m}\n"
                  "    members: []\n", "f.yaml")
    assert [str(x) for x in e.value.errors] == [
        "f.yaml:3: pool 'web': outlier_detection: base_ejection must not exceed max_ejection"]
