"""adc.config.history: the numbered revisions of applied configs, kept under STATE_DIR/history/.

Each revision is two files: `NNNNNNNN.yaml` (the config text exactly as
applied) and `NNNNNNNN.json` (revision, time, source, comment, sha256). The
json is written last, so a revision exists only once both files are
complete; a crash mid-commit leaves at most a stray .yaml that the next
commit overwrites. Every write goes to a temporary file that is renamed into
place. Numbers only grow: the highest number ever committed is also kept in
`last`, so pruning (the newest KEEP revisions stay) and restarts never reuse one.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from typing import Optional

KEEP = 50
_NAME = re.compile(r"^(\d{8,})\.json$")

from adc.files import write_atomic


class History:
    def __init__(self, state_dir: str, keep: int = KEEP):
        self.dir = os.path.join(os.fspath(state_dir), "history")
        self.keep = keep
        os.makedirs(self.dir, mode=0o750, exist_ok=True)

    # ------------------------------------------------------------- writing
    def commit(self, text: str, source: str, comment: str = "") -> int:
        """Store text as the next revision; returns its number."""
        n = max(self._last(), max(self._numbers(), default=0)) + 1
        meta = {
            "revision": n,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "source": source,
            "comment": comment,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
        self._write(self._file(n, "yaml"), text.encode())
        self._write(self._file(n, "json"), json.dumps(meta, indent=1).encode() + b"\n")
        self._write(os.path.join(self.dir, "last"), f"{n}\n".encode())
        self._prune()
        return n

    def _write(self, path: str, data: bytes) -> None:
        write_atomic(path, data)

    def _prune(self) -> None:
        nums = sorted(self._numbers())
        for n in nums[:-self.keep] if len(nums) > self.keep else []:
            for ext in ("json", "yaml"):  # json first: a half-pruned revision is not listed
                try:
                    os.unlink(self._file(n, ext))
                except FileNotFoundError:
                    pass

    # ------------------------------------------------------------- reading
    def list(self) -> list[dict]:
        """Metadata of the kept revisions, newest first."""
        out = []
        for n in sorted(self._numbers(), reverse=True):
            meta = self._meta(n)
            if meta is not None:
                out.append(meta)
        return out

    def get(self, n: int) -> dict:
        """Revision n's metadata plus `text`; KeyError if it was never kept or has been pruned."""
        meta = self._meta(n)
        if meta is None:
            raise KeyError(f"no revision {n} in {self.dir} (kept: the last {self.keep})")
        try:
            with open(self._file(n, "yaml"), encoding="utf-8") as f:
                meta["text"] = f.read()
        except FileNotFoundError:
            raise KeyError(f"revision {n}: config text missing from {self.dir}") from None
        return meta

    def current(self) -> Optional[int]:
        """The newest revision, or None before the first commit."""
        return max(self._numbers(), default=None)

    def latest_text(self) -> Optional[str]:
        n = self.current()
        return None if n is None else self.get(n)["text"]

    # ------------------------------------------------------------- helpers
    def _file(self, n: int, ext: str) -> str:
        return os.path.join(self.dir, f"{n:08d}.{ext}")

    def _numbers(self) -> list[int]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [int(m.group(1)) for m in map(_NAME.match, names) if m]

    def _meta(self, n: int) -> Optional[dict]:
        try:
            with open(self._file(n, "json"), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def _last(self) -> int:
        try:
            with open(os.path.join(self.dir, "last"), encoding="utf-8") as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
