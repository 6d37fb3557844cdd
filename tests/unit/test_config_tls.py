"""adc.config: the shipped tls.yaml loads beside real certificate files, and bad files are named."""
from __future__ import annotations

import datetime
import os
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adc.config.compile import SlotAllocator, compile_plan
from adc.config.errors import ConfigInvalid
from adc.config.loader import check_text, dump_yaml, load_file, load_text

EXAMPLES = "/work/shared/examples"


def make_cert(directory, stem: str, cn: str, days: float = 30, start_days: float = -1) -> tuple[str, str]:
    """A self-signed certificate and its key as stem.pem and stem.key in directory."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    cpath, kpath = os.path.join(directory, f"{stem}.pem"), os.path.join(directory, f"{stem}.key")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cpath, kpath


@pytest.fixture
def tls_dir(tmp_path):
    shutil.copy(f"{EXAMPLES}/tls.yaml", tmp_path / "tls.yaml")
    make_cert(tmp_path, "site-a", "a.example.org")
    make_cert(tmp_path, "wildcard", "*.example.org")
    return tmp_path


def test_shipped_tls_example_loads_with_certificates_beside_it(tls_dir):
    cfg = load_file(str(tls_dir / "tls.yaml"))
    assert [c.name for c in cfg.certificates] == ["site-a", "wildcard"]
    assert cfg.certificates[0].cert == str(tls_dir / "site-a.pem")
    assert cfg.certificates[1].key == str(tls_dir / "wildcard.key")
    assert cfg.vips[0].tls is not None and cfg.vips[0].tls.certificates == ["site-a", "wildcard"]


def test_tls_example_compiles_certificates_in_sni_order(tls_dir):
    cfg = load_file(str(tls_dir / "tls.yaml"))
    plan = compile_plan(cfg, 1, SlotAllocator())
    tls = plan.vips[0].tls
    assert tls is not None
    assert tls.certificates == [
        ("site-a", str(tls_dir / "site-a.pem"), str(tls_dir / "site-a.key"), None),
        ("wildcard", str(tls_dir / "wildcard.pem"), str(tls_dir / "wildcard.key"), None),
    ]
    assert plan.vips[0].listener == "tcp:127.0.0.1:8443"


def test_tls_example_round_trips_through_dump_yaml(tls_dir):
    cfg = load_file(str(tls_dir / "tls.yaml"))
    # paths are absolute after loading, so the dump loads from anywhere
    assert load_text(dump_yaml(cfg), "/somewhere/else.yaml") == cfg


def test_missing_certificate_files_are_named_with_their_line(tmp_path):
    shutil.copy(f"{EXAMPLES}/tls.yaml", tmp_path / "tls.yaml")
    make_cert(tmp_path, "site-a", "a.example.org")
    with pytest.raises(ConfigInvalid) as ei:
        load_file(str(tmp_path / "tls.yaml"))
    assert [str(e).replace(str(tmp_path), "DIR") for e in ei.value.errors] == [
        "DIR/tls.yaml:10: certificate 'wildcard': cert: file not found: DIR/wildcard.pem",
        "DIR/tls.yaml:11: certificate 'wildcard': key: file not found: DIR/wildcard.key",
    ]


def test_key_that_does_not_match_the_certificate(tls_dir):
    make_cert(tls_dir, "other", "other.example.org")
    os.replace(tls_dir / "other.key", tls_dir / "wildcard.key")
    res = check_text((tls_dir / "tls.yaml").read_text(), str(tls_dir / "tls.yaml"))
    assert len(res.errors) == 1
    msg = str(res.errors[0])
    assert msg.startswith(f"{tls_dir}/tls.yaml:10: certificate 'wildcard': certificate and key do not load together (")
    assert "matching the certificate" in msg


def test_certificate_file_that_is_not_pem(tls_dir):
    (tls_dir / "site-a.pem").write_text("hello\n")
    res = check_text((tls_dir / "tls.yaml").read_text(), str(tls_dir / "tls.yaml"))
    assert [e.path for e in res.errors] == ["certificate 'site-a'"]
    assert res.errors[0].line == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tls_dir):
    os.chmod(tls_dir / "site-a.key", 0)
    res = check_text((tls_dir / "tls.yaml").read_text(), str(tls_dir / "tls.yaml"))
    assert [str(e) for e in res.errors] == [
        f"{tls_dir}/tls.yaml:8: certificate 'site-a': key: cannot read {tls_dir}/site-a.key: Permission denied"]


def test_check_files_false_skips_certificate_files(tmp_path):
    shutil.copy(f"{EXAMPLES}/tls.yaml", tmp_path / "tls.yaml")
    cfg = load_file(str(tmp_path / "tls.yaml"), check_files=False)
    assert cfg.certificates[0].cert == str(tmp_path / "site-a.pem")


def test_client_ca_is_resolved_and_checked(tls_dir):
    text = (tls_dir / "tls.yaml").read_text().replace(
        "client_auth: none ", "client_auth: required\n      ca: clients/ca.pem ")
    res = check_text(text, str(tls_dir / "tls.yaml"))
    assert [str(e) for e in res.errors] == [
        f"{tls_dir}/tls.yaml:29: vip 'web-tls': tls.ca: file not found: {tls_dir}/clients/ca.pem"]
    os.mkdir(tls_dir / "clients")
    shutil.copy(tls_dir / "site-a.pem", tls_dir / "clients" / "ca.pem")
    cfg = load_text(text, str(tls_dir / "tls.yaml"))
    assert cfg.vips[0].tls is not None and cfg.vips[0].tls.ca == str(tls_dir / "clients" / "ca.pem")


@pytest.mark.parametrize("days,start,warning", [
    (30, -1, None),
    (5, -1, "the certificate expires on "),
    (-2, -10, "the certificate expired on "),
    (30, 2, "the certificate is not valid before "),
], ids=["valid a month", "expires in 5 days", "expired", "not yet valid"])
def test_certificate_validity_is_a_warning_not_an_error(tls_dir, days, start, warning):
    make_cert(tls_dir, "site-a", "a.example.org", days=days, start_days=start)
    res = check_text((tls_dir / "tls.yaml").read_text(), str(tls_dir / "tls.yaml"))
    assert res.ok
    got = [str(w) for w in res.warnings]
    if warning is None:
        assert got == []
    else:
        assert len(got) == 1 and got[0].startswith(f"{tls_dir}/tls.yaml:7: certificate 'site-a': {warning}")


def test_certificate_listed_twice_on_a_vip(tls_dir):
    text = (tls_dir / "tls.yaml").read_text().replace("[site-a, wildcard]", "[site-a, wildcard, site-a]")
    res = check_text(text, str(tls_dir / "tls.yaml"))
    assert [str(e) for e in res.errors] == [
        f"{tls_dir}/tls.yaml:26: vip 'web-tls': tls.certificates: certificate 'site-a' is listed twice; remove one"]


POOL_TLS = """\
pools:
  - name: secure
    tls: {ca: ca/members.pem, cert: client.pem, key: client.key}
    members: [{address: 10.0.0.1, port: 443}]
vips:
  - {name: v, address: 127.0.0.1, port: 80, protocol: http, default_pool: secure}
"""


def test_pool_tls_files_resolve_and_are_checked(tmp_path):
    res = check_text(POOL_TLS, str(tmp_path / "adc.yaml"))
    assert [str(e).replace(str(tmp_path), "DIR") for e in res.errors] == [
        "DIR/adc.yaml:3: pool 'secure': tls.cert: file not found: DIR/client.pem",
        "DIR/adc.yaml:3: pool 'secure': tls.key: file not found: DIR/client.key",
        "DIR/adc.yaml:3: pool 'secure': tls.ca: file not found: DIR/ca/members.pem",
    ]
    make_cert(tmp_path, "client", "adc.example.org")
    (tmp_path / "ca").mkdir()
    shutil.copy(tmp_path / "client.pem", tmp_path / "ca" / "members.pem")
    cfg = load_text(POOL_TLS, str(tmp_path / "adc.yaml"))
    t = cfg.pools[0].tls
    assert (t.ca, t.cert, t.key) == (str(tmp_path / "ca" / "members.pem"), str(tmp_path / "client.pem"),
                                     str(tmp_path / "client.key"))


def test_pool_with_tls_behind_a_tcp_vip(tmp_path):
    text = POOL_TLS.replace("protocol: http", "protocol: tcp")
    res = check_text(text, str(tmp_path / "adc.yaml"), check_files=False)
    assert [str(e) for e in res.errors] == [
        f"{tmp_path}/adc.yaml:6: vip 'v': default_pool: pool 'secure' has tls (re-encryption to members), which only "
        f"http and https VIPs do; this vip is tcp"]
