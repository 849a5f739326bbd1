"""--report-to: accelerate's trackers, tested offline with TensorBoard (event files read back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.training.loop import TrainConfig
from lugpi_cli.training.tracking import hyperparameters, parse_report_to

from .conftest import TABLE


def _scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_choices_and_what_is_hashed():
    pytest.importorskip("tensorboard")
    assert parse_report_to("none") == [] and parse_report_to(None) == []
    assert parse_report_to("TensorBoard") == ["tensorboard"] and "tensorboard" in parse_report_to("all")
    with pytest.raises(UserError, match="unknown --report-to 'neptune'") as err:
        parse_report_to("neptune")
    assert "tensorboard" in err.value.hint and "mlflow" in err.value.hint
    with pytest.raises(UserError, match="mixes none"):
        parse_report_to("none,tensorboard")
    with pytest.raises(UserError, match="unknown --report-to 'neptune'"):
        TrainConfig(report_to="neptune").check()
    assert TrainConfig(report_to="tensorboard", project="p").hashed() == TrainConfig().hashed()
    flat = hyperparameters({"train": {"lr": 5e-5, "max_steps": None}, "loss": {"alpha": 3.0}, "tags": [1, 2]})
    assert flat == {"train/lr": 5e-5, "train/max_steps": "none", "loss/alpha": 3.0, "tags": "[1, 2]"}


@pytest.mark.slow
def test_tensorboard_holds_the_logged_scalars(cli, workspace, table, text_args):
    pytest.importorskip("tensorboard")
    base = ["distill", "--dataset", table, *TABLE, *text_args, "--alpha", "0", "--beta", "0"]
    out = json.loads(cli(*base, "--report-to", "tensorboard", "--json").stdout)
    run_dir = workspace / "runs" / out["run"]
    logdir = workspace / "tracking" / "lugpi" / out["run"]
    assert list(logdir.glob("events.out.tfevents.*"))
    scalars = _scalars(logdir)
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    steps = out["metrics"]["steps"]
    assert [s for s, _ in scalars["train/lr"]] == list(range(1, steps + 1))
    assert len(scalars["train/total"]) == steps and len(scalars["train/ce"]) == steps
    assert scalars["train/lr"][0][1] > scalars["train/lr"][-1][1]  # linear decay, as logged
    assert [round(v, 5) for _, v in scalars["val/accuracy"]] == [round(h["val_accuracy"], 5) for h in history]
    assert [s for s, _ in scalars["val/accuracy"]] == [h["step"] for h in history]
    assert [round(v, 4) for _, v in scalars["epoch/total"]] == [round(h["train_total"], 4) for h in history]
    hparams = list(logdir.glob("*/hparams.yml"))
    assert hparams and "train/lr: 5.0e-05" in hparams[0].read_text()
    # the trackers change nothing else: the same command without them is the same run, reused
    again = json.loads(cli(*base, "--json").stdout)
    assert again["run"] == out["run"] and again["status"] == "reused"


def test_a_missing_tracker_is_a_clear_error(cli, table, text_args, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    err = cli("distill", "--dataset", table, *TABLE, *text_args, "--alpha", "0", "--beta", "0", "--report-to",
              "mlflow", code=1).stderr
    assert "--report-to mlflow: the mlflow package is not installed" in err and "pip install mlflow" in err


@pytest.mark.slow
def test_ablation_cells_share_one_project(cli, workspace, table, tiny_models):
    pytest.importorskip("tensorboard")
    out = json.loads(cli("ablate", "--dataset", table, *TABLE, "--grid", "lr=1e-5,5e-5", "--set", "alpha=0",
                         "--set", "beta=0", "--text-model", tiny_models["text"], "--max-length", "32", "--epochs",
                         "1", "--batch-size", "8", "--report-to", "tensorboard", "--json").stdout)
    project = workspace / "tracking" / f"lugpi-ablate-{Path(out['out_dir']).name}"
    assert sorted(p.name for p in project.iterdir()) == sorted(row["run"] for row in out["rows"])
    for row in out["rows"]:
        assert _scalars(project / row["run"])["train/lr"][0][1] <= float(row["lr"])
