"""adc.tls.api: the control API's certificate endpoints (registered by adc.control.api).

GET  /certificates         every certificate of the running config: subject, SANs, issuer, key, expiry, days left
GET  /certificates/NAME    one, with its chain, files, warnings and the VIPs that serve it
POST /certificates/NAME    {cert, key, chain?}: PEM text, checked (adc.tls.inspect), written over the
                           files the config names for NAME (atomically, the old files restored if the
                           apply fails), then applied: new handshakes get it at once. A NAME the config
                           does not have is stored under STATE_DIR/certs/ and its paths returned, to
                           add to the config.
"""
from __future__ import annotations

import os
import re
from typing import Optional

from adc.config.schema import NAME_PATTERN
from adc.files import write_atomic
from adc.tls.inspect import CertificateError, check, check_files, describe, load_certs


def register(api) -> None:
    api._route("GET", r"/certificates", lambda req: list_certs(api.sup))
    api._route("GET", r"/certificates/([^/]+)", lambda req, name: show_cert(api.sup, name))
    api._route("POST", r"/certificates/([^/]+)", lambda req, name: import_cert(api, req, name))
    metrics = getattr(api, "metrics", None)
    if metrics is not None:
        metrics.add(lambda: certificate_metrics(api.sup))


_parsed: dict[str, tuple[tuple, object]] = {}


def _leaf(path: str):
    """The first certificate of a file, parsed again only when the file changes."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _parsed.get(path)
    if hit is None or hit[0] != stamp:
        with open(path, "rb") as f:
            hit = (stamp, load_certs(f.read())[0])
        _parsed[path] = hit
    return hit[1]


def certificate_metrics(sup):
    """adc_certificate_days_left and adc_certificate_not_after_seconds per certificate of the running config."""
    from prometheus_client.core import GaugeMetricFamily
    from adc.tls.inspect import days_left
    days = GaugeMetricFamily("adc_certificate_days_left",
                             "whole days until the certificate expires (negative once expired)",
                             labels=("certificate",))
    after = GaugeMetricFamily("adc_certificate_not_after_seconds",
                              "the certificate's notAfter, seconds since the epoch", labels=("certificate",))
    for c in (sup.config.certificates if sup.config is not None else []):
        try:
            leaf = _leaf(c.cert)
        except (OSError, CertificateError):
            continue
        days.add_metric([c.name], days_left(leaf))
        after.add_metric([c.name], leaf.not_valid_after_utc.timestamp())
    yield days
    yield after


def _used_by(cfg, name: str) -> list[str]:
    return [v.name for v in cfg.vips if v.tls is not None and name in v.tls.certificates]


def _info(cfg, c, full: bool = False) -> dict:
    out: dict = {"name": c.name}
    try:
        chk = check_files(c.cert, c.key, c.chain)
        d = chk.describe()
        out.update(d)
        out["status"] = "warning" if chk.warnings else "ok"
    except CertificateError as e:
        # still say what the certificate is, when it can be read at all
        out["status"] = "error"
        out["error"] = str(e)
        try:
            with open(c.cert, "rb") as f:
                certs = load_certs(f.read())
            out.update({k: v for k, v in describe(certs[0], certs[1:]).items() if k not in out})
        except (OSError, CertificateError):
            pass
    out["used_by"] = _used_by(cfg, c.name)
    if full:
        out["files"] = {"cert": c.cert, "key": c.key, "chain": c.chain}
    else:
        for k in ("chain", "serial", "not_before", "self_signed", "warnings"):
            out.pop(k, None)
    return out


def list_certs(sup) -> list[dict]:
    cfg = sup.config
    if cfg is None:
        return []
    return [_info(cfg, c) for c in cfg.certificates]


def show_cert(sup, name: str) -> dict:
    cfg = sup.config
    for c in (cfg.certificates if cfg is not None else []):
        if c.name == name:
            return _info(cfg, c, full=True)
    raise LookupError(f"no certificate {name!r} in the running config"
                      + (f" (there are: {', '.join(c.name for c in cfg.certificates)})"
                         if cfg is not None and cfg.certificates else ""))


def _pem(body: dict, key: str, required: bool) -> Optional[bytes]:
    from adc.control.api import HttpError
    v = body.get(key)
    if v is None or v == "":
        if required:
            raise HttpError(400, f"body needs {key!r}: the PEM text")
        return None
    if not isinstance(v, str):
        raise HttpError(400, f"{key!r} must be PEM text")
    return v.encode()


def _read_or_none(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


async def import_cert(api, req, name: str) -> dict:
    from adc.control.api import HttpError
    from adc.control.supervisor import ApplyFailed
    sup = api.sup
    if not re.match(NAME_PATTERN, name):
        # the name becomes a file name under the state dir: nothing but a config name may pass
        raise HttpError(400, f"certificate name {name!r}: letters, digits, '_', '.', '-', "
                             f"starting with a letter or digit, at most 63")
    body = api._body(req)
    cert, key, chain = _pem(body, "cert", True), _pem(body, "key", True), _pem(body, "chain", False)
    try:
        chk = check(cert, key, chain)
    except CertificateError as e:
        raise HttpError(422, f"certificate {name!r} refused: {e}", kind="certificate") from None
    from cryptography.hazmat.primitives import serialization
    leaf_pem = chk.leaf.public_bytes(serialization.Encoding.PEM)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chk.chain)
    key_pem = key
    cfg = sup.config
    entry = next((c for c in (cfg.certificates if cfg is not None else []) if c.name == name), None)
    result = chk.describe(name)
    if entry is None:
        # not in the config yet: keep it where adcd keeps its own state, and say how to use it
        d = os.path.join(sup.state_dir, "certs")
        cpath, kpath = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")
        write_atomic(cpath, leaf_pem + chain_pem, 0o644)
        write_atomic(kpath, key_pem, 0o600)
        result.update(files={"cert": cpath, "key": kpath, "chain": None}, applied=False,
                      hint=f"certificate {name!r} is not in the running config; add it: "
                           f"certificates: [{{name: {name}, cert: {cpath}, key: {kpath}}}] "
                           f"and list it in a VIP's tls.certificates, then adcctl apply")
        return result
    writes = []
    if entry.chain:
        writes += [(entry.cert, leaf_pem, 0o644), (entry.chain, chain_pem, 0o644)]
    else:
        writes += [(entry.cert, leaf_pem + chain_pem, 0o644)]
    writes.append((entry.key, key_pem, 0o600))
    old = [(p, _read_or_none(p), m) for p, _, m in writes]
    try:
        for p, data, m in writes:
            write_atomic(p, data, m)
    except OSError as e:
        _restore(old)
        raise HttpError(409, f"certificate {name!r}: cannot write {e.filename}: {e.strerror}; nothing changed",
                        kind="daemon") from None
    try:
        res = await sup.apply_text(sup.config_text, sup.config_path, comment=f"certificate {name} imported")
    except Exception as e:
        _restore(old)
        if isinstance(e, ApplyFailed):
            raise HttpError(409, f"certificate {name!r} not applied, old files restored: {e}", kind="daemon") from None
        raise
    result.update(files={"cert": entry.cert, "key": entry.key, "chain": entry.chain}, applied=True,
                  revision=res.get("revision"), used_by=_used_by(cfg, name))
    return result


def _restore(old) -> None:
    for p, data, m in old:
        if data is not None:
            write_atomic(p, data, m)
