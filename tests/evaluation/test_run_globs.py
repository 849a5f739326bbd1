"""Run globs (`lugpi evaluate 'runs/teacher-*'`) resolve in the current directory, the workspace and its runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.training.runs import find_runs

from .test_evaluate_cli import make_run


@pytest.fixture
def runs(workspace):
    rng = np.random.default_rng(7)
    for name in ("student-films-aaa", "student-films-bbb", "teacher-films-ccc"):
        make_run(workspace, name, correct=rng.random(200) < 0.7, alpha=0.0 if name.endswith("aaa") else 3.0,
                 kind="teacher" if name.startswith("teacher") else "student")
    (workspace / "runs" / "student-not-a-run").mkdir()  # no config.json: never matched
    return workspace / "runs"


def _names(found) -> list[str]:
    return [run.name for run in found]


def test_globs_match_from_anywhere(runs, workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the workspace: the shell would leave the pattern as it is
    assert _names(find_runs(runs, ["runs/student-*"])) == ["student-films-aaa", "student-films-bbb"]
    assert _names(find_runs(runs, ["student-*"])) == ["student-films-aaa", "student-films-bbb"]
    assert _names(find_runs(runs, ["teacher-films-ccc", "*-films-*"])) == [  # each run once, in the order given
        "teacher-films-ccc", "student-films-aaa", "student-films-bbb"]
    assert _names(find_runs(runs, [str(runs / "student-films-b?b")])) == ["student-films-bbb"]  # absolute
    assert _names(find_runs(runs, ["runs/teacher-films-ccc"])) == ["teacher-films-ccc"]  # a literal, too
    monkeypatch.chdir(workspace)  # in the workspace the current directory matches first
    assert _names(find_runs(runs, ["runs/student-films-[a]*"])) == ["student-films-aaa"]


def test_a_pattern_matching_nothing_is_named(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"no run matches 'runs/distill-\*'") as err:
        find_runs(runs, ["runs/student-*", "runs/distill-*"])
    assert str(runs) in err.value.hint
    with pytest.raises(UserError, match="no run 'nope'"):
        find_runs(runs, ["nope"])


def test_evaluate_takes_an_unexpanded_glob(cli, runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = json.loads(cli("evaluate", "runs/student-*", "--json").stdout)
    assert sorted(r["run"] for r in out["runs"]) == ["student-films-aaa", "student-films-bbb"]
    err = cli("evaluate", "runs/nothing-*", code=1).stderr
    assert "no run matches 'runs/nothing-*'" in err and "Traceback" not in err
