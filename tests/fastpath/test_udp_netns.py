"""UDP fast path under scapy traffic, in a network namespace the test creates (needs root)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture
def netns():
    name = f"adcfp{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name])


@pytest.mark.root
def test_scapy_flows_fill_the_table_to_its_bound_expire_and_carry_any_size(netns):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + HERE)
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, os.path.join(HERE, "netns_udp_driver.py")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    conn_total, refused = out["counters"][0], out["counters"][6]
    assert out["flows_after_burst"] == 50             # the bound is respected
    assert conn_total == 50 and refused == 150        # and the rest is counted
    assert out["flows_after_idle"] == 0               # idle flows expire
    assert out["sizes"] == [
        {"sent": 0, "got": 0, "same": True, "from_vip": True},
        {"sent": 65507, "got": 65507, "same": True, "from_vip": True},
    ]
