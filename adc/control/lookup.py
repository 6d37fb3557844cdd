"""adc.control.lookup: which member a new flow from a client would reach, and why (`adcctl lookup`).

It runs the workers' own scheduler code on the running plan, so its answer
is what the data path does; for hashing algorithms (maglev, source_hash) the
answer is the same on every worker and every appliance with this config.
"""
from __future__ import annotations

import ipaddress

from adc.config.plan import Plan
from adc.lb import MAGLEV_M, flow_key, hash64
from adc.runtime import PoolRuntime

HASHING = ("maglev", "source_hash")


def parse_client(client: str) -> tuple[str, int | None]:
    """'10.0.0.7', '10.0.0.7:5353', '[2001:db8::1]:443' or '2001:db8::1'."""
    host, port = client, None
    if client.startswith("["):
        host, _, rest = client[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif client.count(":") == 1:
        host, port = client.split(":")
    try:
        ipaddress.ip_address(host)
        p = int(port) if port is not None else None
    except ValueError:
        raise ValueError(f"client must be IP or IP:PORT (got {client!r})") from None
    if p is not None and not 0 < p < 65536:
        raise ValueError(f"client port must be 1..65535 (got {p})")
    return host, p


def lookup(plan: Plan, vip_name: str, client: str) -> dict:
    vip = next((v for v in plan.vips if v.name == vip_name), None)
    if vip is None:
        raise LookupError(f"no vip '{vip_name}'")
    ip, port = parse_client(client)
    out = {"vip": vip.name, "client": client, "pool": vip.default_pool, "member": None}
    notes = []
    if vip.protocol in ("http", "https") and vip.routes:
        notes.append(f"{len(vip.routes)} route(s) are matched per request; this is the default pool")
    pool_plan = next((p for p in plan.pools if p.name == vip.default_pool), None)
    if pool_plan is None:
        out["reason"] = "the VIP has no default pool"
        return out
    pool = PoolRuntime(pool_plan)
    algo = pool_plan.algorithm
    out["algorithm"] = algo
    key = flow_key(ip, port, pool_plan.hash_key, vip.address, vip.port,
                   "udp" if vip.protocol == "udp" else "tcp")
    if pool_plan.hash_key == "five_tuple" and port is None and algo in HASHING:
        notes.append("hash_key is five_tuple: without the client port this assumes port 0")
    m = pool.pick(key)
    usable = [mb.key for mb in pool.members if mb.usable]
    if m is None:
        states = ", ".join(f"{mb.key} {mb.state}" for mb in pool.members) or "no members"
        out["reason"] = f"no member may take a new flow ({states}): L4 refuses, L7 answers 503"
        return out
    out["member"] = m.key
    if m.backup:
        notes.append("no primary member is usable: a backup takes the flow")
    if algo == "maglev":
        h = hash64(key)
        what = "client address" if pool_plan.hash_key == "source" else "5-tuple"
        out["reason"] = (f"maglev: xxh3({what}) = {h:#018x}, slot {h % MAGLEV_M} of {MAGLEV_M} "
                         f"-> {m.key}; the same on every worker and appliance")
    elif algo == "source_hash":
        what = "client address" if pool_plan.hash_key == "source" else "5-tuple"
        out["reason"] = f"source_hash: xxh3({what}) over the weights of {len(usable)} usable member(s) -> {m.key}"
    else:
        out["member"] = None
        out["candidates"] = usable
        out["reason"] = (f"{algo} does not depend on the client: a new flow goes to one of "
                         f"{', '.join(usable)} depending on the worker's state when it arrives")
    if notes:
        out["notes"] = notes
    return out


def maglev_moves(old_cfg, new_cfg) -> list[dict]:
    """What a config change remaps in each maglev pool (`adcctl diff`): the share of
    flows whose member changes, from the tables both configs build.

    Runtime states (drain, health) are left out: this is what the file changes.
    """
    from adc.lb.maglev import M, build_table, member_hash_key

    def table(pool):
        members = sorted((member_hash_key(m.key), m.weight) for m in pool.members
                         if m.weight > 0 and m.state == "enabled" and not m.backup)
        t = build_table(tuple(members))
        return [members[i][0] for i in t] if t else []

    if old_cfg is None:
        return []
    old = {p.name: p for p in old_cfg.pools if p.algorithm == "maglev"}
    out = []
    for p in new_cfg.pools:
        o = old.get(p.name)
        if p.algorithm != "maglev" or o is None:
            continue
        a, b = table(o), table(p)
        if a == b:
            continue
        moved = M if not a or not b else sum(1 for x, y in zip(a, b) if x != y)
        out.append({"pool": p.name, "moved_slots": moved, "share": round(moved / M, 4),
                    "text": f"pool '{p.name}' (maglev): {moved / M:.1%} of flows would move to "
                            f"another member ({moved} of {M} table slots)"})
    return out
