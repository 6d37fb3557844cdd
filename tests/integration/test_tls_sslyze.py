"""sslyze (from PyPI) scans the https VIP of the shared tls.yaml: Mozilla's intermediate configuration passes.

sslyze pins an older cryptography than adc, so it lives in its own virtualenv:
ADC_SSLYZE=/path/to/sslyze, or `sslyze` on PATH, or REPO/.venv-sslyze
(`python3 -m venv .venv-sslyze && .venv-sslyze/bin/pip install sslyze`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from harness import REPO, Backends, example, fresh_ip
from test_tls_support import start_adcd
from adc.tls.labca import LabCA


def _sslyze():
    for c in (os.environ.get("ADC_SSLYZE"), shutil.which("sslyze"), str(REPO / ".venv-sslyze" / "bin" / "sslyze")):
        if c and os.path.exists(c):
            return c
    return "sslyze"   # not found: the test fails on it, it is not skipped


# make deps installs it (.venv-sslyze); its absence is a broken install, not a reason to skip
SSLYZE = _sslyze()


@pytest.mark.parametrize("key", ["ec", "rsa"])
def test_sslyze_mozilla_intermediate_passes_on_the_default_https_vip(tmp_path, key):
    ip = fresh_ip()
    ca = LabCA(key=key)
    ca.issue(str(tmp_path), "site-a", dns=["a.example.org"], key=key)
    ca.issue(str(tmp_path), "wildcard", dns=["*.example.org"], key=key)
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    be = Backends(tmp_path, ip, http={9001: "backend-1", 9002: "backend-2"})
    d = start_adcd(tmp_path, example("tls.yaml", ip))
    try:
        out = tmp_path / "sslyze.json"
        r = subprocess.run([SSLYZE, "--mozilla_config=intermediate", "--certinfo_ca_file", ca_file,
                            "--json_out", str(out), f"a.example.org:8443{{{ip}}}"],
                           capture_output=True, text=True, timeout=240)
        report = r.stdout[r.stdout.find("COMPLIANCE AGAINST"):]
        assert r.returncode == 0, report or r.stdout[-3000:] + r.stderr[-2000:]
        assert "OK - Compliant" in report, report
        scan = json.loads(out.read_text())["server_scan_results"][0]["scan_result"]
        # what the profile promises, seen from outside
        assert not scan["tls_1_0_cipher_suites"]["result"]["accepted_cipher_suites"]
        assert not scan["tls_1_1_cipher_suites"]["result"]["accepted_cipher_suites"]
        assert scan["tls_1_2_cipher_suites"]["result"]["accepted_cipher_suites"]
        assert scan["tls_1_3_cipher_suites"]["result"]["accepted_cipher_suites"]
    finally:
        d.stop()
        be.stop()
