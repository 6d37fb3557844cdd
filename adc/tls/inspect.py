"""adc.tls.inspect: what a certificate is and whether it can be served: key match, chain order, dates.

Used by `adcctl cert`, the control API, and the data path (names and key
type for SNI). Every refusal says what is wrong and what to do.
"""
from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Optional

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

WARN_DAYS = 30


class CertificateError(ValueError):
    """A certificate, key or chain that cannot be served; the message names the fix."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def load_certs(pem: bytes, what: str = "certificate") -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CertificateError(f"{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise CertificateError(f"{what}: not a readable PEM certificate ({e})") from None


def load_key(pem: bytes):
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise CertificateError("key: it is encrypted; adc needs an unencrypted PEM key "
                               "(openssl pkey -in KEY -out KEY.plain)") from None
    except (ValueError, Exception) as e:   # noqa: BLE001 - cryptography raises several kinds for garbage
        raise CertificateError(f"key: not a readable PEM private key ({e.__class__.__name__})") from None


def key_type(public_key) -> str:
    """Short key family for SNI grouping: rsa, ec, ed25519, ed448, dsa."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return "dsa"
    return "unknown"


def key_description(public_key) -> str:
    """For people: 'RSA 2048', 'ECDSA P-256'."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
            public_key.curve.name, public_key.curve.name)
        return f"ECDSA {curve}"
    return key_type(public_key).upper()


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate serves: its SANs, or its CN when it has no SAN extension."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        return [n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(cns[0].value).lower().rstrip(".")] if cns else []


def subject_alt_names(cert: x509.Certificate) -> list[str]:
    """Every SAN as TYPE:value (DNS:, IP:, URI:, email:), for headers and people."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    out = []
    for n in san:
        if isinstance(n, x509.DNSName):
            out.append(f"DNS:{n.value}")
        elif isinstance(n, x509.IPAddress):
            out.append(f"IP:{n.value}")
        elif isinstance(n, x509.UniformResourceIdentifier):
            out.append(f"URI:{n.value}")
        elif isinstance(n, x509.RFC822Name):
            out.append(f"email:{n.value}")
    return out


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex()


def days_left(cert: x509.Certificate, now: Optional[datetime.datetime] = None) -> int:
    """Whole days until notAfter; negative once expired."""
    delta = cert.not_valid_after_utc - (now or _now())
    return int(delta.total_seconds() // 86400)


def describe(cert: x509.Certificate, chain: list[x509.Certificate] = (), name: Optional[str] = None) -> dict:
    """Everything `adcctl cert list/show` prints about a certificate."""
    out = {
        "subject": cert.subject.rfc4514_string(),
        "sans": dns_names(cert) if not subject_alt_names(cert) else subject_alt_names(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "key": key_description(cert.public_key()),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": days_left(cert),
        "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": fingerprint(cert),
        "self_signed": cert.issuer == cert.subject,
        "chain": [c.subject.rfc4514_string() for c in chain],
    }
    if name is not None:
        out = {"name": name, **out}
    return out


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


@dataclass
class Checked:
    leaf: x509.Certificate
    chain: list[x509.Certificate]           # intermediates, leaf's issuer first
    key: object
    warnings: list[str] = field(default_factory=list)

    def describe(self, name: Optional[str] = None) -> dict:
        d = describe(self.leaf, self.chain, name)
        d["warnings"] = list(self.warnings)
        return d


def check(cert_pem: bytes, key_pem: bytes, chain_pem: Optional[bytes] = None,
          now: Optional[datetime.datetime] = None) -> Checked:
    """Refuse what cannot be served (CertificateError); warn about what will soon stop working.

    cert_pem may hold the leaf followed by its chain (the usual fullchain.pem);
    chain_pem adds intermediates after those.
    """
    now = now or _now()
    certs = load_certs(cert_pem, "cert")
    if chain_pem:
        certs += load_certs(chain_pem, "chain")
    leaf, chain = certs[0], certs[1:]
    key = load_key(key_pem)
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf_pub = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    if pub != leaf_pub:
        # the key may belong to another certificate of the file: say which order is wrong
        for i, c in enumerate(chain, 1):
            if c.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo) == pub:
                raise CertificateError(
                    f"the key matches certificate #{i + 1} of the file ({c.subject.rfc4514_string()}), "
                    f"not the first: put the server certificate first, then its chain")
        raise CertificateError(
            f"the key does not match the certificate ({leaf.subject.rfc4514_string()}): "
            f"pass the key that was generated with this certificate's request")
    if leaf.not_valid_after_utc <= now:
        raise CertificateError(
            f"the certificate ({leaf.subject.rfc4514_string()}) expired on "
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: renew it before importing")
    if leaf.not_valid_before_utc > now:
        raise CertificateError(
            f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: "
            f"check the clock or wait")
    for i in range(len(certs) - 1):
        if not _issued_by(certs[i], certs[i + 1]):
            # name the out-of-order or foreign certificate
            parent = next((j for j in range(len(certs)) if j != i and _issued_by(certs[i], certs[j])), None)
            if parent is not None:
                raise CertificateError(
                    f"chain order: certificate #{i + 1} ({certs[i].subject.rfc4514_string()}) is issued by "
                    f"#{parent + 1}, which must come right after it: leaf first, then each issuer in turn")
            raise CertificateError(
                f"chain: certificate #{i + 2} ({certs[i + 1].subject.rfc4514_string()}) did not issue "
                f"#{i + 1} ({certs[i].subject.rfc4514_string()}): remove it or add the right intermediate")
    for i, c in enumerate(chain, 2):
        if c.not_valid_after_utc <= now:
            raise CertificateError(f"chain certificate #{i} ({c.subject.rfc4514_string()}) expired on "
                                   f"{c.not_valid_after_utc:%Y-%m-%d}: get the current intermediate from the CA")
    out = Checked(leaf, chain, key)
    left = days_left(leaf, now)
    if left < WARN_DAYS:
        out.warnings.append(f"the certificate expires in {left} days ({leaf.not_valid_after_utc:%Y-%m-%d}): "
                            f"renew it soon")
    if not dns_names(leaf):
        out.warnings.append("the certificate names no DNS name (no SAN, no CN): it is served only as the default")
    if leaf.issuer != leaf.subject and not chain:
        out.warnings.append("no chain: clients that do not already have the intermediate will not trust it "
                            "(pass --chain or append the intermediates to the certificate file)")
    return out


def check_files(cert: str, key: str, chain: Optional[str] = None) -> Checked:
    def read(p, what):
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError as e:
            raise CertificateError(f"{what}: cannot read {p}: {e.strerror or e}") from None
    return check(read(cert, "cert"), read(key, "key"), read(chain, "chain") if chain else None)


def self_signed(dns: list[str], days: int = 365, key: str = "ec", ips: list[str] = (),
                cn: Optional[str] = None) -> tuple[bytes, bytes]:
    """A self-signed certificate and its unencrypted key as PEM, for labs and tests."""
    import ipaddress
    if not dns and not ips:
        raise CertificateError("a self-signed certificate needs at least one --dns name (or --ip)")
    if key == "ec":
        priv = ec.generate_private_key(ec.SECP256R1())
        algo = hashes.SHA256()
    elif key == "rsa":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        algo = hashes.SHA256()
    else:
        raise CertificateError(f"key type {key!r}: ec or rsa")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or (dns[0] if dns else ips[0]))])
    now = _now()
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(priv.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=key == "rsa",
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(priv, algo))
    return (cert.public_bytes(serialization.Encoding.PEM),
            priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()))


def pem_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
