"""adc.tls.labca: a throwaway certificate authority for labs and tests: server and client certificates on disk."""
from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key type {kind!r}: ec or rsa")


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class LabCA:
    """A root (and optionally an intermediate) CA; issue() writes leaf PEMs into a directory."""

    def __init__(self, name: str = "adc lab CA", key: str = "ec", intermediate: bool = False):
        self.key = _key(key)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.root_cert = self.cert
        self.inter = None
        if intermediate:
            ikey = _key(key)
            isubj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name + " intermediate")])
            icert = (x509.CertificateBuilder().subject_name(isubj).issuer_name(subj)
                     .public_key(ikey.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1825))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(ikey.public_key()), critical=False)
                     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                    critical=False)
                     .sign(self.key, hashes.SHA256()))
            self.inter = icert
            self.key, self.cert = ikey, icert

    def ca_pem(self) -> bytes:
        return _pem(self.root_cert)

    def write_ca(self, path: str) -> str:
        with open(path, "wb") as f:
            f.write(self.ca_pem())
        return path

    def issue(self, directory: str, stem: str, dns: list[str] = (), ips: list[str] = (), key: str = "ec",
              client: bool = False, days: int = 90, cn: Optional[str] = None,
              not_before: Optional[datetime.datetime] = None, with_chain: bool = True) -> tuple[str, str]:
        """Write stem.pem (leaf, then the intermediate if any) and stem.key; return their paths."""
        k = _key(key)
        now = _now()
        nb = not_before or (now - datetime.timedelta(hours=1))
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or (list(dns) or list(ips) or [stem])[0])])
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = (x509.CertificateBuilder().subject_name(subj).issuer_name(self.cert.subject)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(nb).not_valid_after(nb + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                   else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                            critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        cpath, kpath = os.path.join(directory, f"{stem}.pem"), os.path.join(directory, f"{stem}.key")
        with open(cpath, "wb") as f:
            f.write(_pem(cert) + (_pem(self.inter) if self.inter is not None and with_chain else b""))
        with open(kpath, "wb") as f:
            f.write(_pem_key(k))
        return cpath, kpath
