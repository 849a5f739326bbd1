"""Distilling from a teacher trained on another data set: the error says so, names both, and does not
advise re-running the teacher (which would not help)."""

from __future__ import annotations

import json

from tests.training.conftest import TABLE, write_table


def test_distill_with_a_teacher_of_another_dataset(cli, tmp_path, teacher_args, text_args, table):
    teacher = json.loads(cli(*teacher_args, "--epochs", "1", "--max-steps", "1", "--json").stdout)
    other = write_table(tmp_path / "other.csv", n=40)
    result = cli("distill", "--teacher", teacher["run"], "--dataset", other, *TABLE, *text_args, code=1)
    text = " ".join(result.stderr.split())
    assert "trained on a different data set" in text
    assert "'films'" in text and "'other'" in text
    assert "re-run" not in text.lower() and "Traceback" not in text
    # the teacher's own data set still works
    cli("distill", "--teacher", teacher["run"], "--dataset", table, *TABLE, *text_args, "--max-steps", "1",
        "--epochs", "1")
