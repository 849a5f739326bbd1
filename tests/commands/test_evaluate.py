"""`lugpi evaluate` on run directories: metrics, McNemar and Cochran's Q against independent numbers,
sample-id alignment, agreement, output formats and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from lugpi_cli.evaluation import Predictions, write_predictions
from lugpi_cli.training.runs import Run

N = 200


def make_run(workspace, name, *, kind="student", correct, dataset="films", alpha=3.0, beta=1.0, teacher=None,
             probs=None, shuffle_seed=None, ids=None, done=True, modality=None, limit=None):
    """A finished run directory whose test predictions are right exactly where ``correct`` says."""
    run = Run(workspace / "runs" / name)
    labels = np.arange(N) % 2
    predicted = np.where(correct, labels, 1 - labels)
    if probs is None:
        probs = np.stack([1 - predicted * 0.8 - 0.1, predicted * 0.8 + 0.1], axis=1)
    ids = np.array([f"id{i:04d}" for i in range(N)]) if ids is None else ids
    order = np.random.default_rng(shuffle_seed).permutation(N) if shuffle_seed is not None else np.arange(N)
    extra = {"dataset": {"name": dataset, "fingerprint": f"fp-{dataset}-{limit}", "limit": limit},
             "labels": ["neg", "pos"],
             "text_model": "distilbert-base-uncased"}
    if kind == "student":
        extra.update(method="lugpi", loss_options={"alpha": alpha, "beta": beta, "tau": 8.0},
                     teacher_run=teacher, teacher_run_dir=None)
    else:
        extra.update(modality=modality or "both", encoder="clip")
    run.start(kind, {"kind": kind, "name": name, "train": {"seed": 0}}, extra=extra)
    write_predictions(run.predictions_path("test"),
                      Predictions(ids[order], labels[order], predicted[order], probs[order]))
    if done:
        run.mark_done()
    return run


def _correct(rng, accuracy):
    return rng.random(N) < accuracy


def test_metrics_mcnemar_and_cochran_against_independent_numbers(cli, workspace):
    rng = np.random.default_rng(0)
    base = _correct(rng, 0.70)
    better = base | (rng.random(N) < 0.8)  # fixes most of the baseline's errors
    similar = base ^ (rng.random(N) < 0.05)
    make_run(workspace, "baseline", correct=base, alpha=0.0, beta=0.0, shuffle_seed=1)
    make_run(workspace, "better", correct=better, shuffle_seed=2)
    make_run(workspace, "similar", correct=similar, beta=0.0)
    out = json.loads(cli("evaluate", "baseline", "better", "similar", "--json").stdout)
    rows = {r["run"]: r for r in out["runs"]}
    assert out["baselines"] == {"films": "baseline"} and rows["baseline"]["baseline"]
    assert rows["better"]["metrics"]["accuracy"] == pytest.approx(better.mean())
    for name, correct in (("better", better), ("similar", similar)):
        b = int(np.sum(base & ~correct))
        c = int(np.sum(~base & correct))
        result = rows[name]["mcnemar"]
        assert (result["b"], result["c"]) == (b, c)
        if b + c < 25:
            assert result["method"] == "exact"
            assert result["pvalue"] == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
        else:
            assert result["method"] == "chi2"
            assert result["pvalue"] == pytest.approx(stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1))
    assert rows["better"]["significant"] and not rows["similar"]["significant"]
    # Cochran's Q by the textbook formula
    x = np.stack([base, better, similar], axis=1).astype(float)
    k, col, row = 3, x.sum(0), x.sum(1)
    q = (k - 1) * (k * np.sum(col ** 2) - col.sum() ** 2) / (k * row.sum() - np.sum(row ** 2))
    assert out["cochrans_q"]["films"]["statistic"] == pytest.approx(q)
    human = cli("evaluate", "baseline", "better", "similar").stdout
    assert "‡" in human and "Cochran" in human and "(baseline)" in human


def test_agreement_with_the_named_teacher(cli, workspace):
    rng = np.random.default_rng(1)
    t_probs = rng.dirichlet([1, 1], size=N)
    s_probs = rng.dirichlet([1, 1], size=N)
    labels = np.arange(N) % 2
    make_run(workspace, "teacher", kind="teacher", correct=t_probs.argmax(1) == labels, probs=t_probs)
    make_run(workspace, "student", correct=s_probs.argmax(1) == labels, probs=s_probs, teacher="teacher",
             shuffle_seed=3)
    make_run(workspace, "base", correct=_correct(rng, 0.5), alpha=0.0, beta=0.0)
    out = json.loads(cli("evaluate", "base", "teacher", "student", "--json").stdout)
    agree = {r["run"]: r["agreement"] for r in out["runs"]}["student"]
    kl = np.sum(t_probs * (np.log(t_probs) - np.log(s_probs)), axis=1).mean()
    assert agree["mean_kl"] == pytest.approx(kl, rel=1e-6)
    assert agree["label_agreement"] == pytest.approx(np.mean(t_probs.argmax(1) == s_probs.argmax(1)))


def test_markdown_csv_and_several_datasets(cli, workspace, tmp_path):
    rng = np.random.default_rng(2)
    for dataset in ("imdb", "cwi-news"):
        make_run(workspace, f"base-{dataset}", correct=_correct(rng, 0.6), alpha=0.0, beta=0.0, dataset=dataset)
        make_run(workspace, f"lugpi-{dataset}", correct=_correct(rng, 0.9), dataset=dataset)
    out = cli("evaluate", "--markdown").stdout  # every finished run of the workspace
    assert "| model | imdb | cwi-news |" in out and "‡" in out
    path = tmp_path / "table.csv"
    cli("evaluate", "--csv", path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 4 and {r["dataset"] for r in rows} == {"imdb", "cwi-news"}
    assert set(rows[0]) >= {"run", "label", "accuracy", "macro_f1", "mcnemar_p", "significant", "run_dir"}


def test_bad_input(cli, workspace):
    rng = np.random.default_rng(3)
    make_run(workspace, "a", correct=_correct(rng, 0.6))
    other_ids = np.array([f"other{i:04d}" for i in range(N)])
    make_run(workspace, "b", correct=_correct(rng, 0.6), ids=other_ids)
    err = cli("evaluate", "a", "b", code=1).stderr
    assert "'a'" in err and "'b'" in err and "Traceback" not in err
    make_run(workspace, "unfinished", correct=_correct(rng, 0.6), done=False)
    assert "did not finish" in cli("evaluate", "a", "unfinished", code=1).stderr
    Run(workspace / "runs" / "a").predictions_path("test").unlink()
    assert "no predictions" in cli("evaluate", "a", code=1).stderr
    assert "no run 'nope'" in cli("evaluate", "nope", code=1).stderr
    assert "--alpha-level" in cli("evaluate", "--alpha-level", "2", code=1).stderr


def test_a_run_being_trained_is_refused(cli, workspace):
    rng = np.random.default_rng(4)
    make_run(workspace, "a", correct=_correct(rng, 0.6))
    busy = make_run(workspace, "busy", correct=_correct(rng, 0.6), done=False)
    with busy.lock():  # as a training process holds it
        err = cli("evaluate", "a", "busy", code=1).stderr
    assert "busy is still being trained" in err and "Traceback" not in err


def test_two_sample_sets_of_one_data_set_stay_apart(cli, workspace):
    rng = np.random.default_rng(5)
    make_run(workspace, "base-full", correct=_correct(rng, 0.6), alpha=0.0, beta=0.0)
    make_run(workspace, "lugpi-full", correct=_correct(rng, 0.7))
    make_run(workspace, "base-small", correct=_correct(rng, 0.6), alpha=0.0, beta=0.0, limit=100,
             ids=np.array([f"small{i:04d}" for i in range(N)]))
    out = json.loads(cli("evaluate", "--json").stdout)
    assert out["baselines"] == {"films": "base-full", "films (limit 100)": "base-small"}
    assert {r["run"]: r["dataset"] for r in out["runs"]}["lugpi-full"] == "films"


def test_runs_with_one_label_keep_a_row_each_in_the_pivot():
    """Two runs of one data set labelled alike (an lr ablation) both appear; across data sets one row."""
    from lugpi_cli.evaluation.compare import Comparison, Row

    def row(run, label, dataset, acc):
        return Row(run, f"runs/{run}", label, "student", dataset, {"accuracy": acc})

    comparison = Comparison("test", 0.05, [
        row("s-lr1", "LUGPI student", "cwi-news", 0.6), row("s-lr2", "LUGPI student", "cwi-news", 0.4),
        row("b-1", "Fine-tuned", "cwi-news", 0.5), row("b-2", "Fine-tuned", "imdb", 0.7)])
    labels, datasets, cells = comparison.pivot()
    assert labels == ["LUGPI student [s-lr1]", "LUGPI student [s-lr2]", "Fine-tuned"]
    assert cells[("LUGPI student [s-lr2]", "cwi-news")].metrics["accuracy"] == 0.4
    assert cells[("Fine-tuned", "imdb")].run == "b-2" and cells[("Fine-tuned", "cwi-news")].run == "b-1"
    markdown = comparison.to_markdown()  # several data sets: the pivot
    assert "60.00" in markdown and "40.00" in markdown
