"""adc.lb.lookup: which member a new flow from a client would reach, and why (`adcctl lookup`).

Pure: reads a PoolRuntime (or anything with .plan and .members), changes
nothing. Hashing algorithms give the exact member every worker would pick;
the others depend on live turn and load, so the answer says which members
are in the running.
"""
from __future__ import annotations

from typing import Optional

from adc.lb._common import MAGLEV_M, eligible, flow_key, hash64
from adc.lb.maglev import Maglev
from adc.lb.source_hash import SourceHash


def explain(pool, client_ip: str, client_port: Optional[int] = None, vip_ip: Optional[str] = None,
            vip_port: Optional[int] = None, proto: str = "tcp") -> dict:
    """{"member": key or None, "backup": bool, "algorithm": ..., "reason": one sentence}."""
    plan = pool.plan
    alg = plan.algorithm
    prim = [m for m in pool.members if not m.backup]
    back = [m for m in pool.members if m.backup]
    group, is_backup = prim, False
    if not any(m.usable for m in prim) and any(m.usable for m in back):
        group, is_backup = back, True
    usable = [m for m in group if m.usable]
    where = "backup member" if is_backup else "member"
    prefix = "no primary member is usable; " if is_backup else ""
    out = {"member": None, "backup": is_backup, "algorithm": alg}
    if not usable:
        out["reason"] = f"pool {plan.name}: no usable member (all down, drained, in maintenance or full)"
        return out
    if alg in ("maglev", "source_hash"):
        key = flow_key(client_ip, client_port, plan.hash_key, vip_ip, vip_port, proto)
        h = hash64(key)
        what = "the 5-tuple" if plan.hash_key == "five_tuple" else f"client address {client_ip}"
        if alg == "maglev":
            s = Maglev(group)
            first = s.lookup(key)
            m = s.pick(key)
            slot = h % MAGLEV_M
            reason = f"{prefix}maglev: xxh3({what}) lands in slot {slot} of {MAGLEV_M}, owned by {first.key}"
            if m is not first:
                reason += f", which may not take new flows ({first.state}); the next slots give {m.key}"
        else:
            s = SourceHash(group)
            m = s.pick(key)
            total = sum(x.weight for x in group if eligible(x))
            reason = (f"{prefix}source_hash: xxh3({what}) mod {total} (sum of weights) "
                      f"gives {where} {m.key}")
        out["member"] = m.key if m else None
        out["reason"] = reason
        return out
    names = ", ".join(m.key for m in usable)
    if alg == "least_connections":
        best = min(usable, key=lambda m: m.active / m.weight)
        out["member"] = best.key
        out["reason"] = (f"{prefix}least_connections: {best.key} has the fewest active flows per weight "
                         f"now ({best.active}/{best.weight}); it changes with load")
    else:
        out["reason"] = (f"{prefix}{alg}: not decided by the client; the next flow goes to one of "
                         f"{names} by turn{' and weight' if alg != 'round_robin' else ''}"
                         f"{' and load' if alg == 'random_two' else ''}")
    return out
