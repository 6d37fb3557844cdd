"""adc.config.loader: adc.yaml text -> a validated Config, or every error in it with its line.

Pipeline: YAML (ruamel round-trip, which remembers the line of every key and
item) -> plain data -> pydantic schema -> relative file paths made absolute
-> semantic checks (adc.config.semantic). Schema errors do not stop the
semantic checks: objects that fail the schema are set aside and the rest of
the file is still checked, so one run reports everything. Errors name the
object (`pool 'web' member 10.0.1.5:8080: weight`) and always start with
FILE:LINE.
"""
from __future__ import annotations

import copy
import datetime
import difflib
import io
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from adc.config import semantic
from adc.config.errors import ConfigError, ConfigInvalid, sort_errors
from adc.config.schema import Config

SECTIONS = ("monitors", "certificates", "pools", "vips")
_KIND = {"monitors": "monitor", "certificates": "certificate", "pools": "pool", "vips": "vip"}


@dataclass
class Checked:
    """What check_text found: the config (None if the schema refused the file) and every problem."""
    config: Optional[Config]
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.config is not None


# ----------------------------------------------------------------- public API
def read_text(path: Union[str, os.PathLike]) -> str:
    """The text of a config file; a file that can't be read or isn't UTF-8 is a ConfigInvalid too."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ConfigInvalid([ConfigError(path, 1, "", f"not UTF-8 text ({e.reason} at byte {e.start})")]) from None
    except OSError as e:
        raise ConfigInvalid([ConfigError(path, 0, "", f"cannot read the file: {e.strerror or e}")]) from None


def load_file(path: Union[str, os.PathLike], *, check_files: bool = True) -> Config:
    path = os.fspath(path)
    return load_text(read_text(path), path, check_files=check_files)


def load_text(text: str, path: str, *, check_files: bool = True) -> Config:
    """Validate `text` (the content of file `path`); raise ConfigInvalid with every error.

    Relative file paths (certificates, TLS ca, http error_pages, pool tls) are resolved
    against the directory of `path`. check_files=False skips opening those
    files (to check a config meant for another host); everything else is
    checked.
    """
    res = check_text(text, path, check_files=check_files)
    if not res.ok:
        raise ConfigInvalid(res.errors, res.warnings)
    return res.config  # type: ignore[return-value]


def check_text(text: str, path: str, *, check_files: bool = True) -> Checked:
    """Like load_text, but returns errors and warnings instead of raising."""
    raw, err = _parse_yaml(text, path)
    if err is not None:
        return Checked(None, [err])
    if raw is None:
        return Checked(None, [ConfigError(path, 1, "", "the file is empty: expected a mapping with "
                                                        "global, monitors, certificates, pools and vips")])
    if not isinstance(raw, dict):
        return Checked(None, [ConfigError(path, _node_line(raw), "",
                                          f"the file must be a mapping with global, monitors, certificates, "
                                          f"pools and vips (got {_kind_of(raw)})")])
    data = _plain(raw)
    # top-level x-* keys are the operator's (a home for YAML anchors), as in docker compose
    for k in [k for k in data if isinstance(k, str) and k.startswith("x-")]:
        del data[k]
    # an empty section (`monitors:` with nothing under it) means none
    for k in SECTIONS + ("global",):
        if k in data and data[k] is None:
            del data[k]
    lines = _Lines(raw)
    errors: list[ConfigError] = []
    cfg, dropped, index_map, tainted = _validate(data, path, lines, errors)
    base = os.path.dirname(os.path.abspath(path))
    cfg = resolve_paths(cfg, base)

    def line_of(loc: tuple) -> int:
        if len(loc) >= 2 and loc[0] in index_map and isinstance(loc[1], int):
            loc = (loc[0], index_map[loc[0]][loc[1]]) + tuple(loc[2:])
        return lines.line(loc)

    sem_errors, warnings = semantic.check(cfg, file=path, line_of=line_of, known=dropped,
                                          check_files=check_files)
    # a mended object is checked, but not for what the mending may have caused
    errors.extend(e for e in sem_errors if not (e.loc[:2] in tainted and _derived(e.loc)))
    errors = sort_errors(errors)
    return Checked(None if errors else cfg, errors, sort_errors(warnings))


def _derived(loc: tuple) -> bool:
    """Semantic findings about an object as a whole, which a removed bad key can cause."""
    return len(loc) == 2 or loc[2:] in (("members",), ("protocol",)) or (loc[2] == "routes" and len(loc) == 4)


def resolve_paths(cfg: Config, base: str) -> Config:
    """File paths made absolute, relative to directory `base`: certificate cert/key/chain, vip
    tls ca, http error_pages, pool tls ca/cert/key."""
    def ab(p: Optional[str]) -> Optional[str]:
        if p is None or p == "":
            return p
        return os.path.normpath(os.path.join(base, os.path.expanduser(p)))

    certs = [c.model_copy(update={"cert": ab(c.cert), "key": ab(c.key), "chain": ab(c.chain)})
             for c in cfg.certificates]
    vips = []
    for v in cfg.vips:
        upd: dict = {}
        if v.tls is not None and v.tls.ca:
            upd["tls"] = v.tls.model_copy(update={"ca": ab(v.tls.ca)})
        if v.http is not None and v.http.error_pages:
            upd["http"] = v.http.model_copy(update={"error_pages": {k: ab(p) for k, p in v.http.error_pages.items()}})
        vips.append(v.model_copy(update=upd) if upd else v)
    pools = [p.model_copy(update={"tls": p.tls.model_copy(update={"ca": ab(p.tls.ca), "cert": ab(p.tls.cert),
                                                                  "key": ab(p.tls.key)})})
             if p.tls is not None else p for p in cfg.pools]
    return cfg.model_copy(update={"certificates": certs, "vips": vips, "pools": pools})


def canonical(cfg: Config) -> dict:
    """The whole config as plain JSON-able data, defaults included, durations as strings.

    Two configs that mean the same thing have equal canonical forms.
    """
    return cfg.model_dump(mode="json", by_alias=True)


def dump_yaml(cfg: Config) -> str:
    """Canonical YAML of cfg, defaults left out; load_text(dump_yaml(c), p) == c."""
    data = cfg.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    y = YAML(typ="rt")
    y.default_flow_style = False
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    out = io.StringIO()
    y.dump(_styled(data, ()), out)
    return out.getvalue()


# ------------------------------------------------------------------- YAML side
def _parse_yaml(text: str, path: str) -> tuple[Any, Optional[ConfigError]]:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    try:
        return y.load(text), None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = (str(e.problem).strip() if e.problem else "syntax error").splitlines()[0]
        first = problem
        if e.context:
            cm = e.context_mark
            if cm is not None and mark is not None and cm.line != mark.line:
                first = f"{problem} ({str(e.context).strip()} that starts at line {cm.line + 1})"
            else:
                first = f"{problem} ({str(e.context).strip()})"
        if "duplicate key" in str(e):
            first = f"duplicate key {_dup_key(str(e))}".rstrip()
        return None, ConfigError(path, line, "", f"invalid YAML: {first}")
    except YAMLError as e:
        return None, ConfigError(path, 1, "", f"invalid YAML: {str(e).splitlines()[0] if str(e) else e!r}")


def _dup_key(msg: str) -> str:
    m = re.search(r'found duplicate key "([^"]*)"', msg)
    return repr(m.group(1)) if m else ""


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain dict/list/str/int/float/bool, as pydantic expects."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return node


def _node_line(node: Any) -> int:
    lc = getattr(node, "lc", None)
    return (lc.line + 1) if lc is not None and lc.line is not None else 1


class _Lines:
    """The line of a key or list item, by its location in the file's data."""

    def __init__(self, raw: Any):
        self.raw = raw

    def line(self, loc: tuple) -> int:
        node = self.raw
        line = _node_line(node)
        for el in loc:
            if isinstance(node, CommentedMap) and el in node:
                try:
                    line = node.lc.key(el)[0] + 1
                except (KeyError, TypeError):
                    pass
                node = node[el]
            elif isinstance(node, CommentedSeq) and isinstance(el, int) and 0 <= el < len(node):
                try:
                    line = node.lc.item(el)[0] + 1
                except (KeyError, TypeError):
                    pass
                node = node[el]
            else:
                break
        return line


def _styled(data: Any, loc: tuple, flow: bool = False) -> Any:
    """Members and route matches one per line in flow style, like the shipped examples."""
    if isinstance(data, dict):
        flow = flow or (len(loc) >= 2 and loc[-2] == "members") or loc[-1:] in (("match",), ("access_log",))
        m = CommentedMap((_styled(k, (), flow), _styled(v, loc + (k,), flow)) for k, v in data.items())
        if flow:
            m.fa.set_flow_style()
        return m
    if isinstance(data, list):
        flow = flow or all(not isinstance(v, (dict, list)) for v in data)
        s = CommentedSeq(_styled(v, loc + (i,), flow) for i, v in enumerate(data))
        if flow:
            s.fa.set_flow_style()
        return s
    if isinstance(data, str) and not data.isprintable():
        return DoubleQuotedScalarString(data)  # escapes: control characters and line breaks survive
    if isinstance(data, str) and (_YAML11_SCALAR.match(data) or (flow and not _FLOW_SAFE.match(data))):
        # plain `yes` is a string in YAML 1.2 (adc) but a boolean to YAML 1.1 readers (PyYAML, Ansible);
        # and ruamel does not always quote indicators (`?0`) inside flow collections
        return SingleQuotedScalarString(data)
    return data


_FLOW_SAFE = re.compile(r"^[A-Za-z0-9_/@][A-Za-z0-9_./@-]*$")
_YAML11_SCALAR = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
                            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$")


# ----------------------------------------------------------------- schema side
def _validate(data: dict, path: str, lines: _Lines, errors: list[ConfigError]):
    """Validate; on failure report every schema error, then go on with what is sound.

    To let the semantic checks see as much of the file as possible, a bad
    optional key is removed (its default stands in) and its object marked
    tainted; an object that cannot be mended that way (a required key is bad)
    is set aside. Returns (config, names set aside per section, index map per
    section from the shortened list back to the file's list, tainted objects
    as (section, file index)).
    """
    dropped: dict[str, set[str]] = {s: set() for s in SECTIONS}
    tainted: set[tuple[str, int]] = set()
    work = data  # copied before the first mend: a valid file costs no copy
    drop: dict[str, set[int]] = {}
    first = True
    for _ in range(8):
        reduced, index_map = _without(work, drop)
        try:
            cfg = Config.model_validate(reduced)
            break
        except ValidationError as e:
            errs = e.errors()
        if first:
            errors.extend(_translate(errs, data, path, lines))
            work = copy.deepcopy(data)
            first = False
        for er in errs:
            loc = _data_loc(er, reduced)
            if len(loc) >= 2 and loc[0] in index_map and isinstance(loc[1], int):
                loc = (loc[0], index_map[loc[0]][loc[1]]) + loc[2:]
            if len(loc) >= 2 and loc[0] in SECTIONS and isinstance(loc[1], int):
                if not _mend(work, loc, er, 2):
                    drop.setdefault(loc[0], set()).add(loc[1])
                tainted.add((loc[0], loc[1]))
            elif len(loc) >= 2 and loc[0] == "global":
                if not _mend(work, loc, er, 1):
                    work.pop("global", None)
            elif loc:
                work.pop(loc[0], None)  # a whole section is unusable, or an unknown top-level key
            else:
                work = {}
    else:
        reduced, index_map = {}, {}
        cfg = Config()
    for sec, items in data.items():
        if sec in SECTIONS and isinstance(items, list):
            kept = set(index_map.get(sec, range(len(items)))) if sec in reduced else set()
            for i, item in enumerate(items):
                if i not in kept and isinstance(item, dict) and isinstance(item.get("name"), str):
                    dropped[sec].add(item["name"])
    return cfg, dropped, index_map, tainted


def _without(work: dict, drop: dict[str, set[int]]) -> tuple[dict, dict[str, list[int]]]:
    reduced = dict(work)
    index_map: dict[str, list[int]] = {}
    for sec, bad in drop.items():
        items = work.get(sec)
        if isinstance(items, list):
            keep = [i for i in range(len(items)) if i not in bad]
            reduced[sec] = [items[i] for i in keep]
            index_map[sec] = keep
    return reduced, index_map


def _mend(work: dict, loc: tuple, er: dict, depth: int) -> bool:
    """Remove the bad key, or its nearest optional enclosing key; False if none can go."""
    if er["type"] == "extra_forbidden":
        return _delete(work, loc)
    for k in range(len(loc), depth, -1):
        p = loc[:k]
        if isinstance(p[-1], str) and _exists(work, p) and _optional(p):
            return _delete(work, p)
    return False


def _exists(data: Any, loc: tuple) -> bool:
    node = data
    for el in loc:
        if isinstance(node, dict) and el in node:
            node = node[el]
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            node = node[el]
        else:
            return False
    return True


def _delete(data: Any, loc: tuple) -> bool:
    node = data
    for el in loc[:-1]:
        node = node[el]
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _optional(loc: tuple) -> bool:
    tp, _ = _walk(loc[:-1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        f = _model_field(tp, loc[-1])
        return f is not None and not f.is_required()
    return False


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_HEADER_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


def _translate(errs: list[dict], data: dict, path: str, lines: _Lines) -> list[ConfigError]:
    """pydantic's errors -> ConfigErrors; the alternatives of one union field become one message."""
    groups: dict[tuple, list[dict]] = {}
    for er in errs:
        loc = _data_loc(er, data)
        groups.setdefault(loc, []).append(er)
    out = []
    for loc, group in groups.items():
        where = describe(loc, data)
        out.append(ConfigError(path, lines.line(loc), where, _reason(loc, group, data), loc=loc))
    return out


def _data_loc(er: dict, data: Any) -> tuple:
    """The part of pydantic's loc that exists in the data (drops union tags like 'constrained-int')."""
    loc = er["loc"]
    node = data
    out: list = []
    for i, el in enumerate(loc):
        if isinstance(node, dict) and el in node:
            node = node[el]
            out.append(el)
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            node = node[el]
            out.append(el)
        elif er["type"] == "missing" and i == len(loc) - 1 and isinstance(node, dict):
            out.append(el)
        else:
            break
    return tuple(out)


def describe(loc: tuple, data: Any) -> str:
    """('pools', 0, 'members', 1, 'weight') -> "pool 'web' member 127.0.0.1:9002: weight"."""
    labels: list[str] = []
    fields: list[str] = []
    node = data
    prev: Any = None
    for el in loc:
        child = None
        if isinstance(node, dict):
            child = node.get(el)
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            child = node[el]
        label = None
        if isinstance(el, int) and fields == [str(prev)]:
            label = _item_label(prev, el, child, len(labels))
        if label:
            fields.pop()  # "pool 'web'" says more than "pools[0]"
            labels.append(label)
        elif isinstance(el, int) and isinstance(node, list):
            fields[-1:] = [f"{fields[-1] if fields else ''}[{el}]"]
        else:
            fields.append(str(el))
        prev, node = el, child
    where = " ".join(labels)
    fpath = ".".join(fields)
    if where and fpath:
        return f"{where}: {fpath}"
    return where or fpath


def _item_label(section: Any, idx: int, item: Any, depth: int) -> Optional[str]:
    d = item if isinstance(item, dict) else {}
    if depth == 0 and section in _KIND:
        name = d.get("name")
        return f"{_KIND[section]} {name!r}" if isinstance(name, str) and name else f"{_KIND[section]} #{idx + 1}"
    if depth == 1 and section == "members":
        addr, port = d.get("address"), d.get("port")
        if isinstance(addr, str) and isinstance(port, int) and not isinstance(port, bool):
            return f"member [{addr}]:{port}" if ":" in addr else f"member {addr}:{port}"
        return f"member #{idx + 1}"
    if depth == 1 and section == "routes":
        name = d.get("name")
        return f"route {name!r}" if isinstance(name, str) and name else f"route #{idx + 1}"
    return None


def _reason(loc: tuple, group: list[dict], data: Any) -> str:
    kinds = {er["type"] for er in group}
    first = group[0]
    if "missing" in kinds:
        return "missing (required)"
    if "extra_forbidden" in kinds:
        allowed = _allowed_keys(loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1) if allowed else []
        hint = f" (did you mean {near[0]!r}?)" if near else (f" (known keys: {', '.join(allowed)})" if allowed else "")
        return f"unknown key{hint}"
    standalone = [er for er in group if er["type"] in ("value_error", "assertion_error")]
    if standalone:
        return _strip_value_error(standalone[0]["msg"])
    if any(er["loc"] and er["loc"][-1] == "[key]" for er in group):
        lo, hi = _key_bounds(loc[:-1])   # a bad key of a mapping such as error_pages
    else:
        lo, hi = _bounds(loc)
    phrases: list[str] = []
    for er in group:
        p = _expectation(er, lo, hi)
        if p not in phrases:
            phrases.append(p)
    phrase = " or ".join(phrases) if len(phrases) <= 2 else ", ".join(phrases[:-1]) + " or " + phrases[-1]
    return f"must be {phrase} (got {_show(first.get('input'))})"


def _strip_value_error(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _range(lo: Any, hi: Any) -> Optional[str]:
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return None


def _expectation(er: dict, lo: Any, hi: Any) -> str:
    t = er["type"]
    ctx = er.get("ctx") or {}
    if t == "literal_error":
        return "one of " + str(ctx.get("expected", "")) if " or " in str(ctx.get("expected", "")) \
            else str(ctx.get("expected", ""))
    if t in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        r = _range(lo, hi)
        if r:
            return r
        return {"less_than_equal": f"at most {ctx.get('le')}", "greater_than_equal": f"at least {ctx.get('ge')}",
                "less_than": f"below {ctx.get('lt')}", "greater_than": f"above {ctx.get('gt')}"}[t]
    if t in ("int_parsing", "int_type", "int_from_float"):
        r = _range(lo, hi)
        return f"an integer {r}" if r and ".." in r else ("an integer" + (f" {r}" if r else ""))
    if t in ("float_parsing", "float_type"):
        return "a number"
    if t in ("bool_parsing", "bool_type"):
        return "true or false"
    if t in ("string_type", "string_unicode"):
        return "a string"
    if t in ("list_type", "tuple_type", "set_type"):
        return "a list"
    if t in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return "a mapping"
    if t == "string_pattern_mismatch":
        if ctx.get("pattern") == _NAME_PATTERN:
            return "a name of 1-63 letters, digits, '_', '.' or '-' starting with a letter or digit"
        if ctx.get("pattern") == _HEADER_PATTERN:
            return "an HTTP header name (letters, digits and !#$%&'*+.^_`|~-, no spaces)"
        return f"a string matching {ctx.get('pattern')}"
    if t == "too_short":
        n = ctx.get("min_length", 1)
        return f"a list of at least {n} item{'s' if n != 1 else ''}"
    if t == "too_long":
        return f"at most {ctx.get('max_length')} long"
    if t in ("string_too_short", "string_too_long"):
        return er["msg"].replace("String should have ", "a string of ")
    return er["msg"][:1].lower() + er["msg"][1:]


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list" if v else "an empty list"
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _kind_of(v: Any) -> str:
    if isinstance(v, list):
        return "a list"
    return _show(v)


# --- the schema's declared ranges, for "must be 0..256" rather than "at most 256"
def _unwrap(tp: Any, meta: list) -> tuple[Any, list]:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            args = typing.get_args(tp)
            tp = args[0]
            for a in args[1:]:
                meta = meta + (list(a.metadata) if isinstance(a, FieldInfo) else [a])
            continue
        if origin in (Union, types.UnionType):
            arms = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(arms) == 1:
                tp = arms[0]
                continue
            # a union such as "auto" | 1..256: take the arm that carries bounds
            for a in arms:
                t2, m2 = _unwrap(a, [])
                if _find_bounds(m2) != (None, None):
                    return t2, meta + m2
        return tp, meta


def _find_bounds(meta: list) -> tuple[Any, Any]:
    lo = hi = None
    for m in meta:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo = m.gt
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi = m.lt
    return lo, hi


def _model_field(cls: type[BaseModel], key: Any) -> Optional[FieldInfo]:
    for name, f in cls.model_fields.items():
        if key == name or key == f.alias:
            return f
    return None


def _walk(loc: tuple) -> tuple[Any, list]:
    tp: Any = Config
    meta: list = []
    for el in loc:
        tp, meta = _unwrap(tp, meta)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            f = _model_field(tp, el)
            if f is None:
                return None, []
            tp, meta = f.annotation, list(f.metadata)
        elif typing.get_origin(tp) is list and isinstance(el, int):
            tp, meta = typing.get_args(tp)[0], []
        elif typing.get_origin(tp) is dict:
            tp, meta = typing.get_args(tp)[1], []
        else:
            return None, []
    return _unwrap(tp, meta)


def _bounds(loc: tuple) -> tuple[Any, Any]:
    _, meta = _walk(loc)
    return _find_bounds(meta)


def _key_bounds(loc: tuple) -> tuple[Any, Any]:
    tp, _ = _walk(loc)
    if typing.get_origin(tp) is dict:
        _, meta = _unwrap(typing.get_args(tp)[0], [])
        return _find_bounds(meta)
    return None, None


def _allowed_keys(loc: tuple) -> list[str]:
    if not loc:
        return ["global"] + list(SECTIONS)
    tp, _ = _walk(loc)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []
