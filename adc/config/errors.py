"""adc.config.errors: what is wrong with a config file, always as FILE:LINE: WHERE: WHAT.

A ConfigError is the operator's fault (their file), never the daemon's. WHERE
names objects the way an operator does (`pool 'web' member 10.0.1.5:8080:
weight`), not list indices, so a message still makes sense after the file has
been edited. A file's errors are collected and raised together as
ConfigInvalid, so one `adcd --check` shows every problem.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional


class ConfigError(Exception):
    """One problem in a config file: `FILE:LINE: PATH: REASON`.

    severity is "error" (the file is refused) or "warning" (it loads, but the
    operator probably did not mean it). loc is the machine path of the key
    (("pools", 0, "members", 1, "weight")) when known.
    """

    def __init__(self, file: str, line: int, path: str, reason: str, *,
                 severity: str = "error", loc: tuple = ()):
        self.file = file
        self.line = line
        self.path = path
        self.reason = reason
        self.severity = severity
        self.loc = tuple(loc)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.reason}"

    def __repr__(self) -> str:
        return f"ConfigError({str(self)!r}, severity={self.severity!r})"

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, ConfigError):
            return NotImplemented
        return (self.file, self.line, self.path, self.reason, self.severity) == (
            other.file, other.line, other.path, other.reason, other.severity)

    def __hash__(self) -> int:
        return hash((self.file, self.line, self.path, self.reason, self.severity))

    def __reduce__(self):
        # the constructor does not take str(self): tell pickle (multiprocessing, logging) how to rebuild
        return (_rebuild, (self.file, self.line, self.path, self.reason, self.severity, self.loc))

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "path": self.path, "reason": self.reason,
                "severity": self.severity, "message": str(self)}


def _rebuild(file: str, line: int, path: str, reason: str, severity: str, loc: tuple) -> ConfigError:
    return ConfigError(file, line, path, reason, severity=severity, loc=loc)


class ConfigInvalid(Exception):
    """A config that must not be applied; .errors holds every problem found, in file order."""

    def __init__(self, errors: Iterable[ConfigError], warnings: Optional[Iterable[ConfigError]] = None):
        self.errors: list[ConfigError] = list(errors)
        self.warnings: list[ConfigError] = list(warnings or ())
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def __reduce__(self):
        return (ConfigInvalid, (self.errors, self.warnings))

    def messages(self) -> list[str]:
        """The errors as the API's 422 body lists them."""
        return [str(e) for e in self.errors]


def sort_errors(errors: Iterable[ConfigError]) -> list[ConfigError]:
    """File order, each problem once."""
    seen: set = set()
    out = []
    for e in errors:
        if e not in seen:
            seen.add(e)
            out.append(e)
    out.sort(key=lambda e: (e.file, e.line))
    return out
