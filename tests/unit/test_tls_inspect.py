"""adc.tls.inspect: what `adcctl cert import` accepts, warns about and refuses, with the message an operator reads."""
from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives import serialization

from adc.tls.inspect import CertificateError, check, describe, self_signed
from adc.tls.labca import LabCA

NOW = datetime.datetime.now(datetime.timezone.utc)


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ca():
    return LabCA("test CA", intermediate=True)


def issue(ca, tmp_path, stem="leaf", **kw):
    c, k = ca.issue(str(tmp_path), stem, **kw)
    return open(c, "rb").read(), open(k, "rb").read()


def test_a_good_pair_with_its_chain(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"])
    chk = check(c, k)
    assert chk.warnings == []
    d = chk.describe("site-a")
    assert d["name"] == "site-a" and d["sans"] == ["DNS:a.example.org"] and d["key"] == "ECDSA P-256"
    assert d["chain"] == ["CN=test CA intermediate"] and 88 <= d["days_left"] <= 90


def test_a_key_that_is_not_the_certificates(ca, tmp_path):
    c, _ = issue(ca, tmp_path, "one", dns=["a.example.org"])
    _, k = issue(ca, tmp_path, "two", dns=["a.example.org"])
    with pytest.raises(CertificateError, match="the key does not match the certificate"):
        check(c, k)


def test_the_key_of_a_later_certificate_names_the_order(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], with_chain=False)
    other, _ = issue(ca, tmp_path, "other", dns=["b.example.org"], with_chain=False)
    with pytest.raises(CertificateError, match=r"matches certificate #2 .*put the server certificate first"):
        check(other + c, k)


def test_chain_out_of_order(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], with_chain=False)
    with pytest.raises(CertificateError, match=r"chain order: certificate #1 .* is issued by #3"):
        check(c, k, pem(ca.root_cert) + pem(ca.inter))
    assert check(c, k, pem(ca.inter) + pem(ca.root_cert)).chain[0].subject == ca.inter.subject


def test_foreign_certificate_in_the_chain(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], with_chain=False)
    stranger = LabCA("stranger")
    with pytest.raises(CertificateError, match=r"did not issue #1"):
        check(c, k, pem(stranger.root_cert))


def test_expired_is_refused(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], not_before=NOW - datetime.timedelta(days=40), days=30)
    with pytest.raises(CertificateError, match=r"expired on .*renew it"):
        check(c, k)


def test_not_yet_valid_is_refused(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], not_before=NOW + datetime.timedelta(days=2))
    with pytest.raises(CertificateError, match="not valid before"):
        check(c, k)


def test_under_30_days_is_a_warning(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], days=12)
    chk = check(c, k)
    assert len(chk.warnings) == 1
    assert "expires in 11 days" in chk.warnings[0] or "expires in 12 days" in chk.warnings[0]


def test_missing_chain_is_a_warning(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"], with_chain=False)
    assert any("no chain" in w for w in check(c, k).warnings)


def test_garbage_and_encrypted_keys(ca, tmp_path):
    c, k = issue(ca, tmp_path, dns=["a.example.org"])
    with pytest.raises(CertificateError, match="no PEM certificate"):
        check(b"hello", k)
    with pytest.raises(CertificateError, match="not a readable PEM private key"):
        check(c, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(k, None)
    enc = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(CertificateError, match="encrypted"):
        check(c, enc)


def test_self_signed_for_labs():
    c, k = self_signed(["lab.test", "*.lab.test"], days=30, key="rsa", ips=["10.0.0.1"])
    chk = check(c, k)
    d = describe(chk.leaf)
    assert d["self_signed"] and d["key"] == "RSA 2048"
    assert d["sans"] == ["DNS:lab.test", "DNS:*.lab.test", "IP:10.0.0.1"]
