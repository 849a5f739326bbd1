"""Predictions files and joining runs by sample id."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import Predictions, align, read_predictions, write_predictions


def make_run(n: int = 12, k: int = 3, seed: int = 0, ids=None) -> Predictions:
    rng = np.random.default_rng(seed)
    ids = ids if ids is not None else [f"{i:016x}" for i in range(n)]
    labels = np.arange(len(ids)) % k
    probs = rng.dirichlet(np.ones(k), len(ids))
    return Predictions(ids, labels, probs.argmax(axis=1), probs)


def shuffled(p: Predictions, seed: int) -> Predictions:
    return p.take(np.random.default_rng(seed).permutation(len(p)))


def test_round_trip_is_exact(tmp_path):
    p = make_run()
    path = write_predictions(tmp_path / "run" / "test.csv", p)
    q = read_predictions(path)
    np.testing.assert_array_equal(q.sample_ids, p.sample_ids)
    np.testing.assert_array_equal(q.labels, p.labels)
    np.testing.assert_array_equal(q.predicted, p.predicted)
    np.testing.assert_array_equal(q.probs, p.probs)  # repr floats: bit-exact
    assert q.num_labels == 3
    assert not list(path.parent.glob(".*tmp*"))


def test_file_format_is_plain_csv(tmp_path):
    p = Predictions(["b", "a"], [1, 0], [1, 1], [[0.25, 0.75], [0.5, 0.5]])
    path = write_predictions(tmp_path / "p.csv", p)
    assert path.read_text(encoding="utf-8") == (
        "sample_id,label,predicted,prob_0,prob_1\nb,1,1,0.25,0.75\na,0,1,0.5,0.5\n"
    )
    df = pd.read_csv(path, dtype={"sample_id": str})
    assert list(df.columns) == ["sample_id", "label", "predicted", "prob_0", "prob_1"]
    assert df["prob_1"].tolist() == [0.75, 0.5]


def test_without_probabilities(tmp_path):
    p = Predictions(["x", "y"], [0, 1], [0, 0])
    path = write_predictions(tmp_path / "p.csv", p)
    assert path.read_text().splitlines()[0] == "sample_id,label,predicted"
    q = read_predictions(path)
    assert q.probs is None and q.num_labels is None
    np.testing.assert_array_equal(q.correct, [True, False])


def test_reader_accepts_other_column_order_extra_columns_and_blank_lines(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text,prob_1,predicted,sample_id,prob_0,label\n\"a, b\",0.9,1,s1,0.1,1\n\n x ,0.2,0,s2,0.8,1.0\n")
    q = read_predictions(path)
    assert q.sample_ids.tolist() == ["s1", "s2"]
    assert q.labels.tolist() == [1, 1]
    np.testing.assert_array_equal(q.probs, [[0.1, 0.9], [0.8, 0.2]])


@pytest.mark.parametrize(
    "content,match",
    [
        ("sample_id,label\na,1\n", "lacks the column"),
        ("sample_id,label,predicted,prob_0,prob_2\na,1,1,0.5,0.5\n", "prob_0 .. prob_1"),
        ("sample_id,label,predicted\na,one,1\n", "line 2: label 'one'"),
        ("sample_id,label,predicted,prob_0\na,1,1,high\n", "line 2: prob_0"),
        ("sample_id,label,predicted\na,1\n", "line 2: 2 fields"),
        ("", "empty"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        read_predictions(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="predictions file"):
        read_predictions(tmp_path / "nope.csv")


def test_files_in_different_orders_align_to_the_same_arrays(tmp_path):
    teacher, student = make_run(seed=1), make_run(seed=2)
    a = {
        "teacher": read_predictions(write_predictions(tmp_path / "t1.csv", teacher)),
        "student": read_predictions(write_predictions(tmp_path / "s1.csv", student)),
    }
    b = {
        "teacher": read_predictions(write_predictions(tmp_path / "t2.csv", shuffled(teacher, 5))),
        "student": read_predictions(write_predictions(tmp_path / "s2.csv", shuffled(student, 6))),
    }
    ids_a, al_a = align(a)
    ids_b, al_b = align(b)
    np.testing.assert_array_equal(ids_a, ids_b)
    assert ids_a.tolist() == sorted(ids_a.tolist())
    for name in ("teacher", "student"):
        np.testing.assert_array_equal(al_a[name].sample_ids, ids_a)
        np.testing.assert_array_equal(al_b[name].sample_ids, ids_a)
        for field in ("labels", "predicted", "probs"):
            np.testing.assert_array_equal(getattr(al_a[name], field), getattr(al_b[name], field))
    # rows really follow their ids
    original = dict(zip(teacher.sample_ids, teacher.predicted))
    assert [original[i] for i in ids_b] == al_b["teacher"].predicted.tolist()


def test_different_sample_sets_are_rejected_naming_both_runs():
    base = make_run(n=10)
    other = make_run(ids=[f"{i:016x}" for i in range(2, 12)])  # drops 2 ids, adds 2
    with pytest.raises(UserError) as err:
        align({"baseline": base, "student-7": other})
    msg = str(err.value)
    assert "'baseline'" in msg and "'student-7'" in msg
    assert "2 ids only in 'baseline'" in msg and "2 ids only in 'student-7'" in msg
    assert "0000000000000000" in msg and "000000000000000b" in msg
    assert err.value.hint


def test_subset_is_rejected():
    base = make_run(n=10)
    with pytest.raises(UserError, match="0 ids only in 'b'"):
        align({"a": base, "b": base.take(np.arange(9))})


def test_duplicate_ids_are_rejected():
    p = make_run(ids=["a", "b", "a", "c"])
    with pytest.raises(UserError, match="run 'dup' has 1 repeated sample ids.*a"):
        align({"ok": make_run(ids=["a", "b", "c", "d"]), "dup": p})


def test_disagreeing_true_labels_are_rejected():
    a = Predictions(["x", "y", "z"], [0, 1, 1], [0, 1, 1])
    b = Predictions(["z", "y", "x"], [1, 0, 0], [1, 1, 0])
    with pytest.raises(UserError, match="disagree on the true label of 1 samples.*y"):
        align({"a": a, "b": b})


def test_single_run_and_predictions_checks():
    ids, runs = align({"only": Predictions(["b", "a"], [1, 0], [1, 1])})
    assert ids.tolist() == ["a", "b"]
    assert runs["only"].labels.tolist() == [0, 1]
    with pytest.raises(ValueError):
        align({})
    with pytest.raises(ValueError, match="shape"):
        Predictions(["a", "b"], [0, 1], [0])
    with pytest.raises(ValueError, match="integer"):
        Predictions(["a"], [0.5], [0])


def test_written_file_reads_with_csv_module(tmp_path):
    p = Predictions(['id,"quoted"', "plain"], [0, 1], [0, 1], [[1.0, 0.0], [1e-20, 1.0]])
    path = write_predictions(tmp_path / "p.csv", p)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["sample_id"] == 'id,"quoted"'
    assert float(rows[1]["prob_0"]) == 1e-20
    assert read_predictions(path).sample_ids.tolist() == p.sample_ids.tolist()
