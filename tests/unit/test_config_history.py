"""adc.config.history: numbered revisions that survive pruning and restarts."""
from __future__ import annotations

import json
import os

import pytest

from adc.config.history import History


def test_empty_history(tmp_path):
    h = History(str(tmp_path))
    assert h.current() is None and h.list() == [] and h.latest_text() is None
    assert os.path.isdir(tmp_path / "history")


def test_commit_numbers_from_one_and_keeps_text_exactly(tmp_path):
    h = History(str(tmp_path))
    text = "# comment kept\npools: []\n"
    assert h.commit(text, "/etc/adc/adc.yaml", "first") == 1
    assert h.commit("vips: []\n", "api") == 2
    assert h.current() == 2
    got = h.get(1)
    assert got["text"] == text
    assert (got["revision"], got["source"], got["comment"]) == (1, "/etc/adc/adc.yaml", "first")
    assert got["time"].endswith("Z")
    assert h.latest_text() == "vips: []\n"


def test_list_is_newest_first_without_text(tmp_path):
    h = History(str(tmp_path))
    for i in range(3):
        h.commit(f"# {i}\n", "cli", f"c{i}")
    revs = h.list()
    assert [r["revision"] for r in revs] == [3, 2, 1]
    assert [r["comment"] for r in revs] == ["c2", "c1", "c0"]
    assert all("text" not in r for r in revs)


def test_keeps_the_last_50_and_numbers_keep_growing(tmp_path):
    h = History(str(tmp_path))
    for i in range(57):
        h.commit(f"# {i}\n", "cli")
    revs = [r["revision"] for r in h.list()]
    assert revs == list(range(57, 7, -1))
    assert len(revs) == 50
    with pytest.raises(KeyError, match="no revision 7"):
        h.get(7)
    assert h.get(8)["text"] == "# 7\n"
    files = sorted(os.listdir(tmp_path / "history"))
    assert len([f for f in files if f.endswith(".yaml")]) == 50
    assert not [f for f in files if f.startswith(".tmp-")]


def test_numbers_continue_after_a_restart(tmp_path):
    h = History(str(tmp_path), keep=2)
    for i in range(5):
        h.commit(f"# {i}\n", "cli")
    again = History(str(tmp_path), keep=2)
    assert again.current() == 5
    assert again.commit("# 5\n", "cli") == 6
    assert [r["revision"] for r in again.list()] == [6, 5]


def test_numbers_never_reused_even_if_revision_files_are_lost(tmp_path):
    h = History(str(tmp_path))
    h.commit("a: 1\n", "cli")
    h.commit("a: 2\n", "cli")
    for f in os.listdir(tmp_path / "history"):
        if f.endswith((".json", ".yaml")):
            os.unlink(tmp_path / "history" / f)
    assert h.current() is None
    assert History(str(tmp_path)).commit("a: 3\n", "cli") == 3


def test_half_written_revision_is_not_listed(tmp_path):
    h = History(str(tmp_path))
    h.commit("a: 1\n", "cli")
    # a crash between the text and the metadata leaves a .yaml alone
    (tmp_path / "history" / "00000002.yaml").write_text("a: 2\n")
    assert h.current() == 1 and [r["revision"] for r in h.list()] == [1]
    assert h.commit("a: 2b\n", "cli") == 2
    assert h.get(2)["text"] == "a: 2b\n"


def test_metadata_is_json_beside_the_text(tmp_path):
    h = History(str(tmp_path))
    h.commit("x: 1\n", "/etc/adc/adc.yaml", "why")
    meta = json.loads((tmp_path / "history" / "00000001.json").read_text())
    assert meta["revision"] == 1 and meta["source"] == "/etc/adc/adc.yaml" and meta["comment"] == "why"
    assert len(meta["sha256"]) == 64
    assert (tmp_path / "history" / "00000001.yaml").read_text() == "x: 1\n"
