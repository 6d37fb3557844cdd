"""adc.log: logs on stderr with syslog priority prefixes (<3>...), so journald can filter them."""
from __future__ import annotations

import logging
import sys

NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, NOTICE: 5,
             logging.INFO: 6, logging.DEBUG: 7}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
           "warning": logging.WARNING, "error": logging.ERROR}


class SyslogPrefixFormatter(logging.Formatter):
    def __init__(self, who: str):
        super().__init__()
        self.who = who

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        # one prefix per physical line: journald reads priorities line by line
        return "\n".join(f"<{prio}>{self.who}: {line}" for line in msg.splitlines() or [""])


def setup(who: str, level: str = "info") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(SyslogPrefixFormatter(who))
    root.addHandler(h)
    root.setLevel(_LEVELS.get(level, logging.INFO))


def set_level(level: str) -> None:
    logging.getLogger().setLevel(_LEVELS.get(level, logging.INFO))
