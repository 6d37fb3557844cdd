"""adc.config.diff: what an apply changes, by object name, as an operator reads it."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from adc.config.diff import Change, diff, render
from adc.config.loader import load_text

EXAMPLE = open("/work/shared/examples/adc.yaml").read()


def cfg(text: str = EXAMPLE):
    return load_text(text, "adc.yaml")


def edited(*pairs: tuple[str, str]):
    text = EXAMPLE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return cfg(text)


@dataclass
class Case:
    desc: str
    edits: tuple
    changes: list[Change]


CASES = [
    Case("member weight", (("port: 9002, weight: 1", "port: 9002, weight: 5"),),
         [Change("change", "pools.web.members.127.0.0.1:9002.weight", 1, 5)]),
    Case("member added", (("      - {address: 127.0.0.1, port: 9003}\n",
                           "      - {address: 127.0.0.1, port: 9003}\n      - {address: 127.0.0.1, port: 9004}\n"),),
         [Change("add", "pools.api.members.127.0.0.1:9004", None,
                 {"address": "127.0.0.1", "port": 9004, "weight": 1, "backup": False, "state": "enabled",
                  "max_connections": None, "monitor_port": None, "monitor_address": None})]),
    Case("member removed", (("      - {address: 127.0.0.1, port: 9102}\n", ""),),
         [Change("remove", "pools.echo.members.127.0.0.1:9102",
                 {"address": "127.0.0.1", "port": 9102, "weight": 1, "backup": False, "state": "enabled",
                  "max_connections": None, "monitor_port": None, "monitor_address": None}, None)]),
    Case("duration shown as written", (("    timeout: 500ms\n    rise: 2", "    timeout: 250ms\n    rise: 2"),),
         [Change("change", "monitors.http-ok.timeout", "500ms", "250ms")]),
    Case("route pool by route index", (("        pool: api\n", "        pool: web\n"),),
         [Change("change", "vips.web.routes.#1.pool", "api", "web")]),
    Case("global setting", (("workers: auto", "workers: 4"),), [Change("change", "global.workers", "auto", 4)]),
    Case("members reordered is no change",
         (("      - {address: 127.0.0.1, port: 9101}\n      - {address: 127.0.0.1, port: 9102}\n",
           "      - {address: 127.0.0.1, port: 9102}\n      - {address: 127.0.0.1, port: 9101}\n"),), []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.desc)
def test_diff(case: Case):
    assert diff(cfg(), edited(*case.edits)) == case.changes


def test_equal_configs_have_no_changes():
    assert diff(cfg(), cfg()) == []
    assert render([]) == "no changes"


def test_objects_reordered_is_no_change():
    text = EXAMPLE.replace("  - name: tcp-open\n    type: tcp\n    interval: 1s\n    timeout: 500ms\n", "")
    text = text.replace("monitors:\n", "monitors:\n  - {name: tcp-open, type: tcp, interval: 1s}\n")
    assert diff(cfg(), cfg(text)) == []


def test_vip_removed_and_pool_renamed():
    text = EXAMPLE.replace("""  - name: dns
    address: 127.0.0.1
    port: 8053
    protocol: udp
    default_pool: dns
""", "")
    changes = diff(cfg(), cfg(text))
    assert [(c.op, c.path) for c in changes] == [("remove", "vips.dns")]
    assert changes[0].old["port"] == 8053


def test_route_order_matters():
    text = """\
pools:
  - {name: p, members: [{address: 10.0.0.1, port: 80}]}
vips:
  - name: v
    address: 127.0.0.1
    port: 80
    protocol: http
    routes:
      - {name: a, match: {path: /a}, pool: p}
      - {name: b, match: {path: /b}, pool: p}
"""
    swapped = text.replace("{name: a, match: {path: /a}", "{name: X").replace(
        "{name: b, match: {path: /b}", "{name: a, match: {path: /a}").replace("{name: X", "{name: b, match: {path: /b}")
    assert diff(cfg(text), cfg(swapped)) == [Change("change", "vips.v.routes", ["a", "b"], ["b", "a"])]


def test_diff_from_nothing_adds_every_object():
    changes = diff(None, cfg())
    adds = [c.path for c in changes if c.op == "add"]
    assert adds == ["monitors.http-ok", "monitors.tcp-open", "pools.web", "pools.api", "pools.echo", "pools.dns",
                    "vips.web", "vips.echo", "vips.dns"]
    web = next(c for c in changes if c.path == "vips.web").new
    assert web["routes"][0]["pool"] == "api"       # shown as the file has it, not keyed
    pool = next(c for c in changes if c.path == "pools.web").new
    assert [m["port"] for m in pool["members"]] == [9001, 9002]


def test_render_reads_like_a_patch():
    new = edited(("port: 9002, weight: 1", "port: 9002, weight: 5"),
                 ("algorithm: least_connections", "algorithm: maglev"),
                 ("      - {address: 127.0.0.1, port: 9102}\n", ""))
    assert render(diff(cfg(), new)).splitlines() == [
        "~ pools.web.members.127.0.0.1:9002.weight: 1 -> 5",
        "~ pools.api.algorithm: least_connections -> maglev",
        "- pools.echo.members.127.0.0.1:9102: {address: 127.0.0.1, port: 9102, weight: 1, backup: false, "
        "state: enabled}",
    ]


def test_change_is_plain_data_for_the_api():
    c = diff(cfg(), edited(("port: 9002, weight: 1", "port: 9002, weight: 5")))[0]
    assert c.to_dict() == {"op": "change", "path": "pools.web.members.127.0.0.1:9002.weight", "old": 1, "new": 5}
