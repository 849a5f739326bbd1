"""A reused teacher whose cached outputs are missing is checked and re-cached by rank 0 alone: the other ranks
of a launch return the reused run without reading the store while rank 0 may be writing it."""

from __future__ import annotations

import pytest

from lugpi_cli.stages import teacher
from lugpi_cli.training import lifecycle, recache


@pytest.fixture
def reused_run(monkeypatch):
    calls = {"missing": 0, "recache": 0}
    monkeypatch.setattr(lifecycle, "existing_run", lambda run, force, config: "reused")
    monkeypatch.setattr(lifecycle, "guard", lambda run: __import__("contextlib").nullcontext())

    def missing(store, run, ds):
        calls["missing"] += 1
        return 3

    def recached(*args):
        calls["recache"] += 1
        return "recached"

    monkeypatch.setattr(recache, "missing_outputs", missing)
    monkeypatch.setattr(recache, "recache_teacher", recached)
    return calls


def test_other_ranks_do_not_read_the_store(reused_run, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert teacher._reuse(None, None, None, None, "cpu", False, {}) == "reused"
    assert reused_run == {"missing": 0, "recache": 0}


def test_rank_0_checks_and_recaches(reused_run, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert teacher._reuse(None, None, None, None, "cpu", False, {}) == "recached"
    assert reused_run == {"missing": 1, "recache": 1}
