"""adcctl.config: the running config, its history and rollback, and `apply`/`diff`/`check` of a file."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from .base import NounGroup, client
from .client import API_PREFIX, EXIT_FAILED, EXIT_INVALID, AdcctlError, DaemonUnreachable
from .output import _META, cell, dump_json, dump_yaml, emit, fmt, grid, human_time, is_terminal, output_option

FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=str)


def read_file(path: str) -> dict:
    """The body of validate/diff/apply: the file's text and its absolute path (errors cite it)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise AdcctlError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AdcctlError(f"{path}: not UTF-8 text (byte {e.start})", exit_code=EXIT_INVALID) from None
    return {"yaml": text, "path": os.path.abspath(path)}


def print_yaml(text: str) -> None:
    sys.stdout.write(text)
    # Exactly the daemon's text (so `config show > f; diff -f f` is a no-op); a newline only for a prompt.
    if text and not text.endswith("\n") and is_terminal():
        sys.stdout.write("\n")
    sys.stdout.flush()


# ------------------------------------------------------------- top level
@click.command("apply")
@click.option("-f", "--file", "path", type=FILE, required=True, help="The adc.yaml to apply.")
@click.option("--dry-run", is_flag=True, help="Validate and compile only; change nothing.")
@click.option("--comment", metavar="TEXT", default="", help="Recorded with the revision (see config history).")
@output_option
def apply(path: str, dry_run: bool, comment: str) -> None:
    """Apply FILE as a new revision, all or nothing; nothing is dropped or reloaded."""
    body = read_file(path)
    body.update(dry_run=dry_run, comment=comment)
    ans = client().post("/config/apply", body)

    def render(a: Any):
        a = a if isinstance(a, dict) else {}
        rev, changed = a.get("revision"), a.get("changed")
        notes = "".join(f"\nnote: {n}" for n in a.get("notes") or [])
        notes += "".join(f"\nnote: {r.get('text')}" for r in a.get("remaps") or [])
        if dry_run:
            what = "would change the running config" if changed else "would change nothing"
            return f"dry run: {path} is valid and compiles; it {what} (running revision {cell(rev)})" + notes
        if changed is False:
            return f"no change: {path} matches the running config (revision {cell(rev)})"
        return f"applied {path} as revision {cell(rev)}" + notes

    emit(ans, render)


def _change_lines(ans: dict) -> list[str]:
    text = ans.get("text")
    if isinstance(text, str) and text.strip():
        return text.rstrip("\n").splitlines()
    lines = []
    for c in ans.get("changes") or []:
        if not isinstance(c, dict):
            lines.append(str(c))
            continue
        op, p = c.get("op"), c.get("path", "")
        if op == "add":
            lines.append(f"+ {p}: {cell(c.get('new'))}")
        elif op == "remove":
            lines.append(f"- {p}: {cell(c.get('old'))}")
        else:
            lines.append(f"~ {p}: {cell(c.get('old'))} -> {cell(c.get('new'))}")
    return lines


@click.command("diff")
@click.option("-f", "--file", "path", type=FILE, required=True, help="The adc.yaml to compare.")
@output_option
@click.pass_context
def diff(ctx: click.Context, path: str) -> None:
    """Show what applying FILE would change; exit 0 if nothing, 1 if something."""
    ans = client().post("/config/diff", read_file(path))
    ans = ans if isinstance(ans, dict) else {}
    if fmt() == "table":
        lines = _change_lines(ans)
        if not ans.get("changed") and not lines:
            click.echo(f"no change: {path} matches the running config")
        colour = {"+": "green", "-": "red", "~": "yellow"}
        for line in lines:
            click.echo(click.style(line, fg=colour.get(line[:1])) if is_terminal() else line)
    else:
        emit(ans, lambda a: a)
    ctx.exit(1 if ans.get("changed") else 0)


# ------------------------------------------------------------ config noun
@click.group("config", cls=NounGroup)
def config() -> None:
    """The running config: show, history, rollback; check a file; the schema."""


@config.command("show")
@click.option("--revision", type=click.IntRange(min=0), metavar="N", default=None,
              help="Show revision N from the history instead of the running config.")
@output_option
@click.pass_context
def show(ctx: click.Context, revision: int | None) -> None:
    """The running config as canonical YAML (json: the whole answer)."""
    path = "/config" if revision is None else f"/config/history/{revision}"
    ans = client().get(path)
    chosen = ctx.meta.get(_META)
    if chosen in (None, "yaml", "table"):
        # docs/api.md names the field `yaml`; a history entry may carry the stored file as `text`.
        text = ans.get("yaml", ans.get("text")) if isinstance(ans, dict) else None
        if not isinstance(text, str):
            raise AdcctlError(f"adcd's answer to GET {API_PREFIX}{path} has no yaml text")
        print_yaml(text)
    else:
        click.echo(dump_json(ans), nl=False)


@config.command("history")
@output_option
def history() -> None:
    """Applied revisions, newest first; * marks the running one."""
    ans = client().get("/config/history")

    def render(a: Any):
        a = a if isinstance(a, dict) else {}
        cur = a.get("current")
        return grid(
            ("", "REV", "TIME", "SOURCE", "COMMENT"),
            [("*" if r.get("revision") == cur else " ", r.get("revision"), human_time(r.get("time")),
              r.get("source"), r.get("comment")) for r in a.get("revisions") or [] if isinstance(r, dict)],
        )

    emit(ans, render)


@config.command("rollback")
@click.argument("revision", metavar="N", type=click.IntRange(min=0))
@output_option
def rollback(revision: int) -> None:
    """Apply revision N's config again, as a new revision."""
    ans = client().post("/config/rollback", {"revision": revision})
    emit(ans, lambda a: f"rolled back: revision {revision}'s config is running as revision "
                        f"{cell(a.get('revision') if isinstance(a, dict) else a)}")


@config.command("check")
@click.option("-f", "--file", "path", type=FILE, required=True, help="The adc.yaml to validate.")
@click.option("--local", is_flag=True, help="Validate here, without asking adcd.")
@output_option
@click.pass_context
def check(ctx: click.Context, path: str, local: bool) -> None:
    """Validate FILE (by adcd if reachable, else locally); exit 3 if invalid."""
    body = read_file(path)
    if not local:
        try:
            ans = client().post("/config/validate", body)
        except DaemonUnreachable as e:
            click.echo(f"adcctl: {e.message}", err=True)
            click.echo("adcctl: validating locally instead", err=True)
        else:
            emit(ans, lambda a: f"{path}: valid")
            return
    _check_locally(path)
    emit({"ok": True, "local": True}, lambda a: f"{path}: valid (checked locally)")


def _check_locally(path: str) -> None:
    try:
        from adc.config.errors import ConfigInvalid
        from adc.config.loader import load_file
    except ImportError as e:
        raise AdcctlError(f"cannot validate {path} locally: {e}", exit_code=EXIT_FAILED) from None
    try:
        load_file(path)
    except ConfigInvalid as e:
        errors = [str(x) for x in (getattr(e, "errors", None) or [e])]
        n = len(errors)
        raise AdcctlError(f"{path}: invalid config, {n} error{'s' if n != 1 else ''}", errors,
                          exit_code=EXIT_INVALID) from None


@config.command("schema")
@output_option
@click.pass_context
def schema(ctx: click.Context) -> None:
    """The JSON Schema of adc.yaml (for editors); no daemon needed."""
    from adc.config.schema import json_schema

    s = json_schema()
    if ctx.meta.get(_META) == "yaml":
        click.echo(dump_yaml(s), nl=False)
    else:
        click.echo(dump_json(s), nl=False)
