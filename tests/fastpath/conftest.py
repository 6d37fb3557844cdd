import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

try:
    import adc._fastpath.engine  # noqa: F401
except ImportError:
    # not built (`make build`): nothing here can run
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def procs():
    """Processes a test starts; all stopped at the end, by pid."""
    started = []
    yield started
    for p in reversed(started):
        p.stop()
