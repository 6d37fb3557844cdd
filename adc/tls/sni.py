"""adc.tls.sni: which certificate answers a server name: exact names, then one-label wildcards, then the default.

Rules (RFC 6125 6.4.3, as browsers apply them):
- names compare case-insensitively, without a trailing dot;
- `*.example.org` covers `a.example.org`, not `example.org` nor `a.b.example.org`;
- an exact name beats a wildcard, and among equals the certificate listed first wins;
- for each key type (RSA, ECDSA) the best certificate is chosen, so one name
  can be served with both and OpenSSL picks what the client supports;
- no server name, or one no certificate covers: the first certificate listed
  (with the certificates of other key types that carry exactly its names).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class CertEntry:
    name: str                 # the config's certificate name
    names: frozenset[str]     # DNS names it serves (SANs, else the CN), lower case
    key_type: str             # "rsa" | "ec" | ...


def normalize(host: Optional[str]) -> Optional[str]:
    if not host:
        return None
    return host.rstrip(".").lower()


class SniIndex:
    """server name -> tuple of indexes into the entries, one per key type, best first."""

    def __init__(self, entries: Sequence[CertEntry]):
        if not entries:
            raise ValueError("an SNI index needs at least one certificate")
        self.entries = list(entries)
        self.exact: dict[str, list[int]] = {}
        self.wild: dict[str, list[int]] = {}     # "example.org" -> entries with *.example.org
        for i, e in enumerate(self.entries):
            for n in e.names:
                if n.startswith("*."):
                    self.wild.setdefault(n[2:], []).append(i)
                else:
                    self.exact.setdefault(n, []).append(i)
        first = self.entries[0]
        self.default = self._per_type([0] + [i for i, e in enumerate(self.entries)
                                             if i and e.names == first.names])
        self._cache: dict[str, tuple[int, ...]] = {}

    def _per_type(self, candidates: list[int]) -> tuple[int, ...]:
        seen: dict[str, int] = {}
        for i in candidates:
            seen.setdefault(self.entries[i].key_type, i)
        return tuple(sorted(seen.values()))

    def lookup(self, server_name: Optional[str]) -> tuple[int, ...]:
        """Indexes of the certificates to serve (first listed first); the default when none covers it."""
        name = normalize(server_name)
        if name is None:
            return self.default
        hit = self._cache.get(name)
        if hit is not None:
            return hit
        cands = list(self.exact.get(name, ()))
        dot = name.find(".")
        if dot > 0:
            # wildcards only fill key types no exact name covers
            cands += self.wild.get(name[dot + 1:], ())
        hit = self._per_type(cands) if cands else self.default
        if len(self._cache) < 10000:    # names come from clients: bound what they can make us keep
            self._cache[name] = hit
        return hit

    def covered(self, server_name: Optional[str]) -> bool:
        name = normalize(server_name)
        if name is None:
            return False
        dot = name.find(".")
        return name in self.exact or (dot > 0 and name[dot + 1:] in self.wild)
