"""adcctl.cert: TLS certificates: list, show, import (checked before anything changes), self-signed for labs."""
from __future__ import annotations

import os
from typing import Any, Optional

import click

from .base import NounGroup, client
from .client import AdcctlError, seg
from .output import emit, extra, grid, kv, output_option

WARN_DAYS = 30


@click.group("cert", cls=NounGroup)
def cert() -> None:
    """TLS certificates: list, show NAME, import NAME, self-signed NAME."""


def _days(c: dict) -> str:
    d = c.get("days_left")
    if not isinstance(d, int):
        return "-"
    if d < 0:
        return f"{d} EXPIRED"
    return f"{d} !" if d < WARN_DAYS else str(d)


@cert.command("list")
@output_option
def list_() -> None:
    """Certificates of the running config: subject, SANs, issuer, key type, not-after, days left."""

    def render(a: Any):
        return grid(("NAME", "SUBJECT", "SANS", "ISSUER", "KEY", "NOT AFTER", "DAYS LEFT", "STATUS", "VIPS"),
                    [[c.get("name"), c.get("subject"), c.get("sans"), c.get("issuer"), c.get("key"),
                      c.get("not_after"), _days(c), c.get("status"), c.get("used_by")]
                     for c in (a or []) if isinstance(c, dict)])

    emit(client().get("/certificates"), render)


def _show(c: Any):
    c = c if isinstance(c, dict) else {}
    known = ("name", "subject", "sans", "issuer", "key", "not_before", "not_after", "days_left", "serial",
             "fingerprint_sha256", "self_signed", "status", "error", "used_by", "applied", "revision")
    pairs = [(k, _days(c) if k == "days_left" else c.get(k)) for k in known if k in c]
    skip = set(known) | {"chain", "files", "warnings", "hint"}
    out = [kv(pairs + extra(c, skip))]
    if c.get("files"):
        out.append(kv(list(c["files"].items()), title="files"))
    if c.get("chain"):
        out.append(grid(("#", "CHAIN (leaf's issuer first)"), [[i, s] for i, s in enumerate(c["chain"], 2)]))
    for w in c.get("warnings") or []:
        out.append(f"warning: {w}")
    if c.get("hint"):
        out.append(c["hint"])
    return out


@cert.command("show")
@click.argument("name", metavar="NAME")
@output_option
def show(name: str) -> None:
    """One certificate: subject, SANs, issuer, dates, fingerprint, chain, files, VIPs that serve it."""
    emit(client().get(f"/certificates/{seg(name)}"), _show)


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise AdcctlError(f"{what}: cannot read {path}: {e.strerror or e}") from None


def _check(name: str, cert_pem: bytes, key_pem: bytes, chain_pem: Optional[bytes]):
    """The same checks adcd makes, here first: a refusal changes nothing and names the fix."""
    from adc.tls.inspect import CertificateError, check
    try:
        chk = check(cert_pem, key_pem, chain_pem)
    except CertificateError as e:
        raise AdcctlError(f"certificate {name!r} refused: {e}") from None
    for w in chk.warnings:
        click.echo(f"adcctl: warning: certificate {name!r}: {w}", err=True)
    return chk


def _import(name: str, cert_pem: bytes, key_pem: bytes, chain_pem: Optional[bytes]) -> None:
    body = {"cert": cert_pem.decode(), "key": key_pem.decode()}
    if chain_pem:
        body["chain"] = chain_pem.decode()
    res = client().post(f"/certificates/{seg(name)}", body)
    emit(res, _show)


@cert.command("import")
@click.argument("name", metavar="NAME")
@click.option("--cert", "cert_file", required=True, metavar="FILE", help="PEM certificate (leaf first, chain may follow).")
@click.option("--key", "key_file", required=True, metavar="FILE", help="PEM private key, unencrypted.")
@click.option("--chain", "chain_file", metavar="FILE", help="PEM intermediates, the leaf's issuer first.")
@click.option("--check", "check_only", is_flag=True, help="Only check the files; send nothing to adcd.")
@output_option
def import_(name: str, cert_file: str, key_file: str, chain_file: Optional[str], check_only: bool) -> None:
    """Check key match, chain order and dates, then install NAME: served from the next handshake on."""
    cert_pem, key_pem = _read(cert_file, "--cert"), _read(key_file, "--key")
    chain_pem = _read(chain_file, "--chain")
    chk = _check(name, cert_pem, key_pem, chain_pem)
    if check_only:
        emit(chk.describe(name), _show)
        return
    _import(name, cert_pem, key_pem, chain_pem)


@cert.command("self-signed")
@click.argument("name", metavar="NAME")
@click.option("--dns", multiple=True, metavar="NAME", help="A DNS name (repeat for more; *.example.org works).")
@click.option("--ip", multiple=True, metavar="ADDR", help="An IP address SAN (repeat for more).")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, metavar="N",
              help="Validity in days.")
@click.option("--key", "key_type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True, metavar="ec|rsa",
              help="ECDSA P-256 or RSA 2048.")
@click.option("--out", "out_dir", metavar="DIR", help="Write DIR/NAME.pem and DIR/NAME.key instead of importing.")
@output_option
def self_signed(name: str, dns: tuple, ip: tuple, days: int, key_type: str, out_dir: Optional[str]) -> None:
    """A self-signed certificate for labs: imported into adcd as NAME, or written to --out DIR."""
    from adc.tls.inspect import CertificateError, self_signed as make
    if not dns and not ip:
        raise click.UsageError("give at least one --dns NAME (or --ip ADDR)")
    try:
        cert_pem, key_pem = make(list(dns), days=days, key=key_type, ips=list(ip))
    except (CertificateError, ValueError) as e:
        raise AdcctlError(f"self-signed {name!r}: {e}") from None
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        cpath, kpath = os.path.join(out_dir, f"{name}.pem"), os.path.join(out_dir, f"{name}.key")
        with open(cpath, "wb") as f:
            f.write(cert_pem)
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        chk = _check(name, cert_pem, key_pem, None)
        d = chk.describe(name)
        d["files"] = {"cert": cpath, "key": kpath}
        emit(d, _show)
        return
    _check(name, cert_pem, key_pem, None)
    _import(name, cert_pem, key_pem, None)
