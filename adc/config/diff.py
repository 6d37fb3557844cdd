"""adc.config.diff: what an apply would change, object by object, as an operator names things.

Lists of named objects are compared by name (monitors, certificates, pools,
vips), members by their key (`127.0.0.1:9001`), routes by name or `#N`, so a
reordered file is no change (except routes, whose order decides which wins:
a reorder shows as a change of `vips.NAME.routes`). Paths read like
`pools.web.members.127.0.0.1:9001.weight`; values are in canonical form
(durations as strings).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from adc.config.schema import Config

_KEYED = {("monitors",): "name", ("certificates",): "name", ("pools",): "name", ("vips",): "name"}


@dataclass(frozen=True)
class Change:
    op: str                 # add | remove | change
    path: str
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict:
        return asdict(self)


def diff(old: Optional[Config], new: Config) -> list[Change]:
    """Changes from old to new (old None: the built-in defaults, so everything new shows as added)."""
    a = _keyed((old or Config()).model_dump(mode="json", by_alias=True))
    b = _keyed(new.model_dump(mode="json", by_alias=True))
    out: list[Change] = []
    _walk(a, b, [], out)
    return out


def _member_key(m: dict) -> str:
    a = m["address"]
    return f"[{a}]:{m['port']}" if ":" in a else f"{a}:{m['port']}"


def _keyed(d: dict) -> dict:
    """Lists of objects -> dicts keyed the way operators name them; order kept where it matters."""
    out = dict(d)
    for sec in ("monitors", "certificates", "pools", "vips"):
        out[sec] = {o["name"]: o for o in d.get(sec, [])}
    for p in out["pools"].values():
        p["members"] = {_member_key(m): m for m in p.get("members", [])}
    for v in out["vips"].values():
        routes = v.get("routes", [])
        names = [r.get("name") or f"#{i + 1}" for i, r in enumerate(routes)]
        if len(set(names)) != len(names):   # only in a config that failed validation: key by position
            names = [f"#{i + 1}" for i in range(len(routes))]
        v["routes"] = dict(zip(names, routes))
        v["route_order"] = names
    return out


def _walk(a: Any, b: Any, path: list[str], out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(Change("remove", _path(path + [k]), _public(a[k]), None))
        for k in b:
            if k not in a:
                out.append(Change("add", _path(path + [k]), None, _public(b[k])))
            elif a[k] != b[k]:
                if k == "route_order":
                    # same routes, other order: the first match wins, so this matters
                    if set(a[k]) == set(b[k]):
                        out.append(Change("change", _path(path + ["routes"]), a[k], b[k]))
                    continue
                _walk(a[k], b[k], path + [k], out)
        return
    if a != b:
        out.append(Change("change", _path(path), _public(a), _public(b)))


def _public(v: Any) -> Any:
    """Undo _keyed in a value shown to the operator."""
    if isinstance(v, dict):
        r = {k: _public(x) for k, x in v.items() if k != "route_order"}
        if "route_order" in v:
            r["routes"] = [_public(v["routes"][n]) for n in v["route_order"]]
        if "members" in r and isinstance(r["members"], dict):
            r["members"] = list(r["members"].values())
        return r
    if isinstance(v, list):
        return [_public(x) for x in v]
    return v


def _path(parts: list[str]) -> str:
    return ".".join(str(p) for p in parts)


def _short(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        inner = ", ".join(f"{k}: {_short(x)}" for k, x in v.items() if x not in (None, [], {}))
        return "{" + inner + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


def render(changes: list[Change]) -> str:
    """One line per change: `+ path: value`, `- path`, `~ path: old -> new`."""
    if not changes:
        return "no changes"
    lines = []
    for c in changes:
        if c.op == "add":
            lines.append(f"+ {c.path}: {_short(c.new)}")
        elif c.op == "remove":
            lines.append(f"- {c.path}: {_short(c.old)}")
        else:
            lines.append(f"~ {c.path}: {_short(c.old)} -> {_short(c.new)}")
    return "\n".join(lines)
