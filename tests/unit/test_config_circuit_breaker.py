"""Pool circuit_breaker: what the plan carries, and the errors an operator reads."""
from __future__ import annotations

import msgspec
import pytest

from adc.config.compile import SlotAllocator, compile_plan
from adc.config.errors import ConfigInvalid
from adc.config.loader import load_text
from adc.config.plan import Plan
from adc.runtime import PoolRuntime

POOL = "pools:\n  - name: web\n{extra}    members:\n      - {{address: 127.0.0.1, port: 9001}}\n"


def plan_of(extra: str) -> Plan:
    return compile_plan(load_text(POOL.format(extra=extra), "f.yaml"), 1, SlotAllocator())


def test_the_limits_reach_the_plan_and_survive_the_worker_wire_format():
    plan = plan_of("    circuit_breaker: {max_connections: 200, max_requests: 100}\n")
    wire = msgspec.msgpack.decode(msgspec.msgpack.encode(plan), type=Plan)
    cb = wire.pools[0].circuit_breaker
    assert (cb.max_connections, cb.max_pending, cb.max_requests) == (200, None, 100)


def test_no_limit_set_means_no_breaker_at_all():
    assert plan_of("").pools[0].circuit_breaker is None
    assert plan_of("    circuit_breaker: {}\n").pools[0].circuit_breaker is None
    assert PoolRuntime(plan_of("    circuit_breaker: {}\n").pools[0]).breaker is None


def test_a_zero_limit_is_refused_with_the_pool_and_line():
    with pytest.raises(ConfigInvalid) as e:
        plan_of("    circuit_breaker: {max_pending: 0}\n")
    (err,) = [str(x) for x in e.value.errors]
    assert err.startswith("f.yaml:3:") and "max_pending" in err


def test_the_breaker_and_its_count_outlive_an_apply():
    first = PoolRuntime(plan_of("    circuit_breaker: {max_requests: 2}\n").pools[0])
    first.breaker.requests = 2
    assert first.breaker.over(False) == "2 requests in flight (max_requests 2)"
    second = PoolRuntime(plan_of("    circuit_breaker: {max_requests: 3}\n").pools[0], first)
    assert second.breaker is first.breaker
    assert second.breaker.over(False) is not None        # prepared, not committed: the old limit holds
    second.activate()
    assert second.breaker.over(False) is None
    second.breaker.pending = 1
    assert second.breaker.over(False) is None


def test_max_pending_counts_only_when_a_new_connection_is_needed():
    rt = PoolRuntime(plan_of("    circuit_breaker: {max_pending: 1}\n").pools[0])
    rt.breaker.pending = 1
    assert rt.breaker.over(False) is None                  # an idle kept-alive connection serves it
    assert rt.breaker.over(True) == "1 connects pending (max_pending 1)"


def test_limits_a_tcp_or_udp_vip_cannot_apply_are_warned_about():
    from adc.config.semantic import check
    cfg = load_text(POOL.format(extra="    circuit_breaker: {max_connections: 3, max_requests: 4}\n") + """\
vips:
  - {name: t, address: 127.0.0.1, port: 7000, protocol: tcp, default_pool: web}
  - {name: u, address: 127.0.0.1, port: 7001, protocol: udp, default_pool: web}
  - {name: h, address: 127.0.0.1, port: 7002, protocol: http, default_pool: web}
""", "f.yaml")
    errors, warnings = check(cfg, file="f.yaml")
    assert errors == []
    assert [w.reason for w in warnings] == [
        "pool 'web' circuit_breaker max_requests does not apply to this tcp VIP "
        "(tcp VIPs: max_connections only; udp VIPs: none)",
        "pool 'web' circuit_breaker max_connections, max_requests does not apply to this udp VIP "
        "(tcp VIPs: max_connections only; udp VIPs: none)"]
