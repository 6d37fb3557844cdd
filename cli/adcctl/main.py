"""adcctl.main: the root command: global options, exit codes, and one place that turns failures into one line."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from . import cert, config, conn, lookup, member, pool, stats, status, vip, worker
from .base import NounGroup
from .client import DEFAULT_SOCKET, EXIT_FAILED
from .output import FORMATS, _set_output

EPILOG = f"""\b
Exit codes:
  0  ok (diff: no change)
  1  failed (diff: the file changes the running config)
  2  usage error (bad arguments or options)
  3  invalid config (the daemon or the local check refused the file)
  4  daemon unreachable (nothing was sent; check --socket / ADC_SOCKET)

\b
Environment:
  ADC_SOCKET  the control socket (default {DEFAULT_SOCKET})
  ADC_DEBUG   set to 1 to see tracebacks of unexpected errors

\b
Shell completion (bash; zsh and fish likewise with zsh_source, fish_source):
  eval "$(_ADCCTL_COMPLETE=bash_source adcctl)"

Reference: docs/adcctl.md"""


class RootGroup(NounGroup):
    """Any unexpected exception becomes one line and exit 1; ADC_DEBUG=1 lets the traceback through."""

    flatten = True

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # `adcctl conn list | head`: the reader left; say nothing more.
            _silence_stdout()
            ctx.exit(EXIT_FAILED)
        except Exception as e:  # noqa: BLE001 - the operator must never see a traceback by default
            if os.environ.get("ADC_DEBUG") not in (None, "", "0"):
                raise
            click.echo(f"adcctl: unexpected error: {e.__class__.__name__}: {e} (set ADC_DEBUG=1 for details)",
                       err=True)
            ctx.exit(EXIT_FAILED)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


@click.group(cls=RootGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--socket", "socket", metavar="PATH", envvar="ADC_SOCKET", default=DEFAULT_SOCKET,
              show_default=True, help="adcd's control socket (env ADC_SOCKET).")
@click.option("-o", "--output", type=click.Choice(FORMATS), default=None, expose_value=False,
              callback=_set_output, help="Output format (default: table on a terminal, json otherwise).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for adcd's answer.")
@click.version_option(package_name="adc", prog_name="adcctl", message="%(prog)s %(version)s")
def cli(socket: str, timeout: float) -> None:
    """adcctl: manage adc, the L4/L7 load balancer, through adcd's control API.

    Noun, then verb: `adcctl pool show web`, `adcctl member drain web 10.0.1.5:8080`.
    """


cli.add_command(status.status)
cli.add_command(config.apply)
cli.add_command(config.diff)
cli.add_command(config.config)
cli.add_command(vip.vip)
cli.add_command(pool.pool)
cli.add_command(member.member)
cli.add_command(stats.stats)
cli.add_command(conn.conn)
cli.add_command(lookup.lookup)
cli.add_command(worker.worker)
cli.add_command(cert.cert)


def main(argv: Optional[list[str]] = None) -> None:
    try:
        cli.main(args=argv, prog_name="adcctl")
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - outside a command (parsing, completion): still one line
        if os.environ.get("ADC_DEBUG") not in (None, "", "0"):
            raise
        click.echo(f"adcctl: unexpected error: {e.__class__.__name__}: {e} (set ADC_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
