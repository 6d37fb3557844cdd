"""The config of limits with a queue and of TCP options: what adc.yaml accepts, refuses, and compiles to."""
from __future__ import annotations

from adc.config.compile import SlotAllocator, compile_plan
from adc.config.loader import check_text

POOLS = """\
pools:
  - name: web
    members:
      - {address: 10.0.0.1, port: 80, max_connections: 100}
vips:
  - name: v
    address: 127.0.0.1
    port: 80
    default_pool: web
"""


def check(vip_lines: str, protocol: str = "tcp"):
    return check_text(POOLS + f"    protocol: {protocol}\n" + vip_lines, "f.yaml", check_files=False)


def messages(res):
    return [str(e) for e in res.errors]


def test_a_tcp_vip_compiles_its_queue_and_tcp_options():
    res = check("    max_connections: 500\n    limit_action: queue\n    max_queue: 50\n    queue_timeout: 2s\n"
                "    tcp_nodelay: false\n    tcp_keepalive: {idle: 1m, interval: 1500ms, count: 4}\n")
    assert messages(res) == []
    (v,) = compile_plan(res.config, 1, SlotAllocator(64)).vips
    assert (v.max_connections, v.limit_action, v.max_queue, v.queue_timeout) == (500, "queue", 50, 2.0)
    assert v.tcp_nodelay is False
    # the kernel counts whole seconds: 1500ms becomes 2s
    assert (v.tcp_keepalive.idle, v.tcp_keepalive.interval, v.tcp_keepalive.count) == (60, 2, 4)


def test_defaults_refuse_with_nodelay_and_no_keepalive():
    res = check("")
    (v,) = compile_plan(res.config, 1, SlotAllocator(64)).vips
    assert (v.limit_action, v.max_queue, v.queue_timeout, v.tcp_nodelay, v.tcp_keepalive) == \
        ("refuse", 1024, 30.0, True, None)


def test_keepalive_fields_left_out_keep_the_kernel_default():
    res = check("    tcp_keepalive: {}\n")
    (v,) = compile_plan(res.config, 1, SlotAllocator(64)).vips
    assert (v.tcp_keepalive.idle, v.tcp_keepalive.interval, v.tcp_keepalive.count) == (0, 0, 0)


def test_out_of_range_values_are_refused_with_their_line():
    res = check("    limit_action: wait\n    max_queue: 0\n    tcp_keepalive: {idle: 500ms, count: 300}\n")
    text = "\n".join(messages(res))
    assert "f.yaml:11: vip 'v': limit_action: must be one of 'refuse' or 'queue' (got 'wait')" in text
    assert "f.yaml:12: vip 'v': max_queue: must be" in text
    assert "f.yaml:13: vip 'v': tcp_keepalive.idle: must be 1s..32767s (got 500ms)" in text
    assert "vip 'v': tcp_keepalive.count: must be 1..127 (got 300)" in text


def test_queue_and_tcp_options_on_an_http_vip_are_refused():
    res = check("    limit_action: queue\n    tcp_keepalive: {idle: 10s}\n    tcp_nodelay: false\n", protocol="http")
    assert messages(res) == [
        "f.yaml:11: vip 'v': limit_action: queue is done by the L4 fast path, for tcp VIPs without sni_routes "
        "(this is an http VIP); use limit_action: refuse",
        "f.yaml:12: vip 'v': tcp_keepalive: set by the L4 fast path, for tcp VIPs without sni_routes "
        "(this is an http VIP); remove it",
        "f.yaml:13: vip 'v': tcp_nodelay: set by the L4 fast path, for tcp VIPs without sni_routes "
        "(this is an http VIP); remove it",
    ]
