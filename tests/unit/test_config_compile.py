"""adc.config.compile: the Plan workers run, and counter slots that stay put across revisions."""
from __future__ import annotations

import msgspec
import pytest

from adc.config.compile import SlotAllocator, SlotsExhausted, compile_plan, plan_keys, slot_keys
from adc.config.loader import load_file, load_text
from adc.config.plan import Plan

EXAMPLES = "/work/shared/examples"
EXAMPLE = open(f"{EXAMPLES}/adc.yaml").read()


def example():
    return load_text(EXAMPLE, "adc.yaml")


def slots_of(plan: Plan) -> dict[str, int]:
    out = {f"vip:{v.name}": v.slot for v in plan.vips}
    for p in plan.pools:
        out[f"pool:{p.name}"] = p.slot
        out.update({f"member:{p.name}/{m.key}": m.slot for m in p.members})
    return out


def test_example_compiles_to_listeners_pools_and_routes():
    plan = compile_plan(example(), 7, SlotAllocator())
    assert plan.revision == 7
    assert [(v.name, v.listener) for v in plan.vips] == [
        ("web", "tcp:127.0.0.1:8080"), ("echo", "tcp:127.0.0.1:8081"), ("dns", "udp:127.0.0.1:8053")]
    web = plan.vips[0]
    assert web.default_pool == "web"
    assert [(r.name, r.path_prefix, r.pool) for r in web.routes] == [("#1", "/api/", "api")]
    assert [m.key for m in plan.pools[0].members] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert plan.drain_timeout == 30.0
    assert plan.access_log is not None and plan.access_log.format == "haproxy"


def test_plan_survives_the_worker_wire_format():
    plan = compile_plan(example(), 1, SlotAllocator())
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(plan), type=Plan) == plan


def test_every_object_has_its_own_slot():
    plan = compile_plan(example(), 1, SlotAllocator())
    slots = slots_of(plan)
    assert len(set(slots.values())) == len(slots) == 3 + 4 + 6


def test_slots_stay_put_when_objects_come_and_go():
    alloc = SlotAllocator()
    p1 = compile_plan(example(), 1, alloc)
    alloc.retain(plan_keys(p1))
    before = slots_of(p1)
    text = EXAMPLE.replace("      - {address: 127.0.0.1, port: 9002, weight: 1}\n", "")
    text = text.replace("      - {address: 127.0.0.1, port: 9003}\n",
                        "      - {address: 127.0.0.1, port: 9003}\n      - {address: 127.0.0.1, port: 9004}\n")
    p2 = compile_plan(load_text(text, "adc.yaml"), 2, alloc)
    freed = alloc.retain(plan_keys(p2))
    after = slots_of(p2)
    assert freed == [before["member:web/127.0.0.1:9002"]]
    for key in set(before) & set(after):
        assert after[key] == before[key], key
    # the new member takes a never-used slot, not the one just freed
    assert after["member:api/127.0.0.1:9004"] == len(before)


def test_freed_slots_are_reused_oldest_first_once_fresh_ones_run_out():
    alloc = SlotAllocator(nslots=4)
    for k in ("a", "b", "c", "d"):
        alloc.slot(k)
    assert alloc.retain(["a", "d"]) == [1, 2]
    assert alloc.slot("e") == 1
    assert alloc.retain(["a", "d", "e"]) == []
    assert alloc.slot("f") == 2
    with pytest.raises(SlotsExhausted, match="all 4 counter slots are in use"):
        alloc.slot("g")


def test_compile_refuses_a_config_that_does_not_fit_and_allocates_nothing():
    alloc = SlotAllocator(nslots=10)
    with pytest.raises(SlotsExhausted, match="needs 13 new counter slots but only 10 of 10 are free"):
        compile_plan(example(), 1, alloc)
    assert len(alloc) == 0


def test_slot_allocator_restores_from_a_snapshot():
    alloc = SlotAllocator()
    plan = compile_plan(example(), 1, alloc)
    again = SlotAllocator(assigned=alloc.snapshot())
    assert slots_of(compile_plan(example(), 2, again)) == slots_of(plan)
    assert set(alloc.snapshot()) == set(slot_keys(example()))


def test_member_admin_starts_from_config_state():
    text = EXAMPLE.replace("port: 9002, weight: 1}", "port: 9002, weight: 1, state: maint}")
    plan = compile_plan(load_text(text, "adc.yaml"), 1, SlotAllocator())
    assert [(m.key, m.admin) for m in plan.pools[0].members] == [
        ("127.0.0.1:9001", "enabled"), ("127.0.0.1:9002", "maint")]


def test_runtime_member_state_overrides_config_and_survives_apply():
    state = {
        ("web", "127.0.0.1:9001"): {"admin": "drain", "weight": 9},
        ("web", "127.0.0.1:9002"): {"health": "down"},
        ("dns", "127.0.0.1:9053"): {"health": "down"},      # pool dns has no monitor
        ("gone", "10.9.9.9:1"): {"admin": "maint"},          # an object no longer in the config
    }
    plan = compile_plan(example(), 2, SlotAllocator(), member_state=state)
    web = {m.key: m for m in plan.pools[0].members}
    assert (web["127.0.0.1:9001"].admin, web["127.0.0.1:9001"].weight, web["127.0.0.1:9001"].health) == \
        ("drain", 9, "up")
    assert (web["127.0.0.1:9002"].admin, web["127.0.0.1:9002"].health) == ("enabled", "down")
    # nobody would ever mark it up again: members of an unmonitored pool are always up
    assert plan.pools[3].members[0].health == "up"


def test_members_of_a_monitored_pool_start_up():
    plan = compile_plan(example(), 1, SlotAllocator())
    assert all(m.health == "up" for p in plan.pools for m in p.members)


def test_bad_runtime_state_is_refused():
    with pytest.raises(ValueError, match="admin state 'off'"):
        compile_plan(example(), 1, SlotAllocator(), {("web", "127.0.0.1:9001"): {"admin": "off"}})


def test_routes_compile_with_normalised_methods_hosts_and_headers():
    text = """\
pools:
  - {name: p, members: [{address: 10.0.0.1, port: 80}]}
vips:
  - name: v
    address: 127.0.0.1
    port: 80
    protocol: http
    routes:
      - name: api
        match: {host: API.Example.org, method: get, header: {X-Tenant: a}, query: {Debug: null}}
        pool: p
      - match: {path_regex: "^/u/[0-9]+$", method: [get, POST]}
        pool: p
"""
    plan = compile_plan(load_text(text, "a.yaml"), 1, SlotAllocator())
    r1, r2 = plan.vips[0].routes
    assert (r1.name, r1.host, r1.methods, r1.headers, r1.query) == (
        "api", "api.example.org", ["GET"], {"x-tenant": "a"}, {"Debug": None})
    assert (r2.name, r2.path_regex, r2.methods) == ("#2", "^/u/[0-9]+$", ["GET", "POST"])
    assert plan.vips[0].default_pool is None


def test_ipv6_member_key_is_bracketed():
    text = "pools:\n  - {name: p, members: [{address: '::1', port: 80}]}\n"
    plan = compile_plan(load_text(text, "a.yaml"), 1, SlotAllocator())
    assert plan.pools[0].members[0].key == "[::1]:80"
    assert plan.pools[0].members[0].address == "::1"


def test_shipped_example_file_compiles():
    assert compile_plan(load_file(f"{EXAMPLES}/adc.yaml"), 1, SlotAllocator()).pools
