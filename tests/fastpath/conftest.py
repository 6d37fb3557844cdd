import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

pytest.importorskip("adc._fastpath.engine")


@pytest.fixture
def procs():
    """Processes a test starts; all stopped at the end, by pid."""
    started = []
    yield started
    for p in reversed(started):
        p.stop()
