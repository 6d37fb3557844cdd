"""adcctl.output: -o table|json|yaml, and the small formatters every noun's table shares."""
from __future__ import annotations

import datetime
import io
import json
import os
import sys
from typing import Any, Callable, Iterable, Optional, Sequence

import click

FORMATS = ("table", "json", "yaml")
_META = "adcctl.output"


def _set_output(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    if value is not None:
        ctx.meta[_META] = value
    return value


def output_option(f: Callable) -> Callable:
    """-o on every leaf command too, so `adcctl vip list -o json` works like `adcctl -o json vip list`."""
    return click.option(
        "-o", "--output", type=click.Choice(FORMATS), default=None, expose_value=False,
        callback=_set_output, is_eager=False,
        help="Output format (default: table on a terminal, json otherwise).",
    )(f)


def is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def fmt(ctx: Optional[click.Context] = None) -> str:
    ctx = ctx or click.get_current_context()
    chosen = ctx.meta.get(_META)
    if chosen:
        return chosen
    return "table" if is_terminal() else "json"


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def dump_yaml(data: Any) -> str:
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # keep the API's key order
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def console(file: Any = None):
    from rich.console import Console

    # Off a terminal (a pipe, `-o table > file`) rich would wrap at 80 columns; don't.
    width = None if is_terminal() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(file=file or sys.stdout, width=width, highlight=False, soft_wrap=False)


def _print(renderable: Any) -> None:
    if is_terminal():
        console().print(renderable)
        return
    # In a file or a pipe: no colour, and no padding at the end of lines for grep and diff to trip on.
    buf = io.StringIO()
    console(buf).print(renderable)
    click.echo("\n".join(line.rstrip() for line in buf.getvalue().splitlines()))


def emit(data: Any, table: Callable[[Any], Any]) -> None:
    """Print `data` (the API answer) as JSON, YAML, or the rich renderables `table(data)` returns."""
    f = fmt()
    if f == "json":
        click.echo(dump_json(data), nl=False)
    elif f == "yaml":
        click.echo(dump_yaml(data), nl=False)
    else:
        out = table(data)
        for i, r in enumerate(out if isinstance(out, (list, tuple)) else [out]):
            if i:
                click.echo()  # a blank line between a show's sections
            if isinstance(r, str):
                click.echo(r)  # plain text: never parsed as rich markup ("[fe80::1]:80" is not a tag)
            else:
                _print(r)


def grid(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: Optional[str] = None):
    """A plain table: header row, no borders, one object per line (like `ip -br` or kubectl)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, title=Text(title) if title else None, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c, no_wrap=True, overflow="fold")
    for r in rows:
        t.add_row(*[Text(cell(v)) for v in r])
    return t


def kv(pairs: Iterable[tuple[str, Any]], title: Optional[str] = None):
    """A two-column key/value table for `show` commands."""
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None, show_header=False, title=Text(title) if title else None, title_justify="left", pad_edge=False)
    t.add_column("key", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for k, v in pairs:
        t.add_row(Text(k), Text(cell(v)))
    return t


def extra(data: dict, known: Iterable[str]) -> list[tuple[str, Any]]:
    """Fields the daemon sends that this adcctl has no column for: shown, not hidden."""
    k = set(known)
    return [(key, val) for key, val in data.items() if key not in k]


def cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={cell(x)}" for k, x in v.items()) or "-"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v) or "-"
    return str(v)


def human_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return cell(n)
    if n < 1024:
        return f"{int(n)}B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024.0
        if n < 1024 or unit == "PiB":
            return f"{n:.1f}{unit}"
    return str(n)  # unreachable


def human_duration(s: Any) -> str:
    """Seconds as 3d4h, 2h5m, 4m10s, 12s, 350ms."""
    if not isinstance(s, (int, float)) or isinstance(s, bool):
        return cell(s)
    if s < 1:
        return f"{round(s * 1000)}ms"
    s = int(s)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h}h"
    if h:
        return f"{h}h{m}m"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def human_time(t: Any) -> str:
    """An epoch number or an ISO string, shown in local time to the second."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return datetime.datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(t, str):
        try:
            return datetime.datetime.fromisoformat(t).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            return t
    return cell(t)


COUNTER_COLUMNS = ("ACTIVE", "CONNS", "IN", "OUT", "REQS", "ERRS")


def counters(c: Any) -> list[str]:
    """The six counters of docs/api.md in table order; '-' where the daemon sent none."""
    c = c if isinstance(c, dict) else {}
    return [
        cell(c.get("conn_active")),
        cell(c.get("conn_total")),
        human_bytes(c.get("bytes_in")),
        human_bytes(c.get("bytes_out")),
        cell(c.get("requests")),
        cell(c.get("errors")),
    ]
