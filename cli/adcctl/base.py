"""adcctl.base: what every noun module shares: the group that lists usage lines, the API client, argument types."""
from __future__ import annotations

import ipaddress
import os
from typing import Any, Optional

import click
from click.shell_completion import CompletionItem

from .client import DEFAULT_SOCKET, Client, member_key, seg


# --------------------------------------------------------------- help listing
def usage_line(ctx: click.Context, name: str, cmd: click.Command) -> str:
    """`drain POOL ADDR:PORT`, `list [--vip V] [--member M]`: the help line is the usage line."""
    if isinstance(cmd, click.Group):
        subs = [n for n in cmd.list_commands(ctx) if not cmd.commands[n].hidden]
        return f"{name} {'|'.join(subs)}" if subs else name
    parts = [name]
    sub = click.Context(cmd, info_name=name, parent=ctx)
    for p in cmd.params:
        if isinstance(p, click.Argument):
            mv = p.make_metavar(sub)
            parts.append(mv)
        elif isinstance(p, click.Option) and p.expose_value and not p.hidden:
            flag = min(p.opts, key=len)
            piece = flag if p.is_flag else f"{flag} {p.make_metavar(sub)}"
            parts.append(piece if p.required else f"[{piece}]")
    return " ".join(parts)


class NounGroup(click.Group):
    """A click group whose command list shows each verb's usage line, then its one-line help.

    flatten: list the verbs of sub-groups too (`member drain POOL ADDR:PORT`), as the root does,
    so `adcctl --help` is the whole command reference, like HAProxy's `help`.
    """

    flatten = False

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            if self.flatten and isinstance(cmd, click.Group):
                sub_ctx = click.Context(cmd, info_name=name, parent=ctx)
                for verb in cmd.list_commands(sub_ctx):
                    v = cmd.get_command(sub_ctx, verb)
                    if v is not None and not v.hidden:
                        rows.append((f"{name} {usage_line(sub_ctx, verb, v)}", v.get_short_help_str(limit=200)))
                continue
            rows.append((usage_line(ctx, name, cmd), cmd.get_short_help_str(limit=200)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows, col_max=36)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Registration order reads better than alphabetical (list, show, then the changes).
        return list(self.commands)


# ---------------------------------------------------------------- the client
def client(ctx: Optional[click.Context] = None) -> Client:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    path = root.params.get("socket") or os.environ.get("ADC_SOCKET") or DEFAULT_SOCKET
    timeout = root.params.get("timeout") or 60.0
    return Client(path, timeout)


# ------------------------------------------------------------ argument types
def parse_ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


class AddrPort(click.ParamType):
    """ADDR:PORT of a member, IPv6 as [ADDR]:PORT; gives the API's member key. port_optional for clients."""

    name = "ADDR:PORT"

    def __init__(self, port_optional: bool = False):
        self.port_optional = port_optional

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> str:
        text = str(value).strip()
        addr, port = text, None
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                self.fail(f"{value!r} is not [IPV6]:PORT", param, ctx)
            addr, port = host, rest[1:] if rest else None
        elif text.count(":") == 1:
            addr, port = text.split(":")
        # More than one colon and no brackets: a bare IPv6 address, no port.
        try:
            addr = parse_ip(addr)
        except ValueError:
            self.fail(f"{value!r}: {addr!r} is not an IP address", param, ctx)
        if port is None:
            if self.port_optional:
                return addr
            self.fail(f"{value!r} has no port: write ADDR:PORT, e.g. 10.0.1.5:8080 or [2001:db8::5]:8080",
                      param, ctx)
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            self.fail(f"{value!r}: port must be 1..65535", param, ctx)
        return member_key(addr, int(port))

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        pool = ctx.params.get("pool")
        if not pool:
            return []
        return [CompletionItem(m.get("key", "")) for m in _quiet(ctx, f"/pools/{seg(pool)}/members")
                if isinstance(m, dict) and str(m.get("key", "")).startswith(incomplete)]


# --------------------------------------------------------------- completion
def _quiet(ctx: click.Context, path: str) -> list:
    """Ask adcd for names while completing; a daemon that is away gives no candidates, not an error."""
    try:
        c = client(ctx)
        c.timeout = 2.0
        data = c.get(path)
    except Exception:
        return []
    return data if isinstance(data, list) else []


def complete_pool(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [p["name"] for p in _quiet(ctx, "/pools") if isinstance(p, dict)
            and str(p.get("name", "")).startswith(incomplete)]


def complete_vip(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [v["name"] for v in _quiet(ctx, "/vips") if isinstance(v, dict)
            and str(v.get("name", "")).startswith(incomplete)]
