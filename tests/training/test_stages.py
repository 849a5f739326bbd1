"""train-teacher and distill through the CLI: run directories, cached teacher outputs, reuse, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lugpi_cli.evaluation import read_predictions
from lugpi_cli.training.runs import Run
from lugpi_store import Store, close_all, record_key

SPLITS = ("train", "validation", "test")


def test_teacher_run_directory_and_cached_outputs(cli, workspace, teacher_args):
    out = json.loads(cli(*teacher_args, "--json").stdout)
    assert out["status"] == "trained" and out["kind"] == "teacher"
    run = Run(workspace / "runs" / out["run"])
    assert run.is_done() and not run.checkpoint_dir.exists()
    config = run.config()
    assert config["fingerprint"] and config["versions"]["torch"] and config["config"]["train"]["seed"] == 0
    assert [h["epoch"] for h in run.history()] == [1, 2]
    assert set(out["metrics"]) >= set(SPLITS)
    # The cached outputs are exactly what the saved teacher computes (recomputed independently here).
    from lugpi_cli.models import load_model
    from lugpi_cli.training.data import Collator, TrainingData
    from lugpi_cli.training.loop import predict
    from transformers import AutoTokenizer

    close_all()
    store = Store(workspace / "store")
    model = load_model(run.model_dir)
    preds = read_predictions(run.predictions_path("test"))
    ids = list(preds.sample_ids)
    cached = store.get_many("teacher", [record_key(config["output_fingerprint"], i) for i in ids])
    assert all(c is not None for c in cached)
    assert cached[0]["embedding"].shape == (32,) and cached[0]["logits"].shape == (2,)
    probs = np.exp(np.stack([c["logits"] for c in cached]))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, preds.probs, atol=1e-5)
    assert store.count("teacher") == sum(len(read_predictions(run.predictions_path(s))) for s in SPLITS)
    # an independent forward of the saved model on the first test samples
    from lugpi_cli.data.snapshot import latest_snapshot
    from lugpi_cli.lineage import ImageSource

    ds = latest_snapshot(store, "films")
    by_id = {s.id: s for s in ds.samples()}
    samples = [by_id[i] for i in ids[:4]]
    source = config["feature_source"]
    image_keys = ImageSource(source["generator_fingerprint"], source["generator_seed"], {}).image_keys(samples)
    data = TrainingData(samples, store, feature_keys=[record_key(source["encoder_fingerprint"], image_keys[s.id])
                                                      for s in samples])
    logits, embeddings = predict(model, data, Collator(AutoTokenizer.from_pretrained(run.model_dir), 32))
    np.testing.assert_allclose(logits, np.stack([c["logits"] for c in cached[:4]]), atol=1e-4)
    np.testing.assert_allclose(embeddings, np.stack([c["embedding"] for c in cached[:4]]), atol=1e-4)


def test_same_command_twice_trains_once_and_force_retrains(cli, workspace, teacher_args):
    first = json.loads(cli(*teacher_args, "--json").stdout)
    run = Run(workspace / "runs" / first["run"])
    done_at = run.done_path.stat().st_mtime_ns
    second = json.loads(cli(*teacher_args, "--json").stdout)
    assert second["status"] == "reused" and second["run"] == first["run"] and second["metrics"] == first["metrics"]
    assert run.done_path.stat().st_mtime_ns == done_at and len(run.history()) == 2
    forced = json.loads(cli(*teacher_args, "--force", "--json").stdout)
    assert forced["status"] == "trained" and run.done_path.stat().st_mtime_ns != done_at
    other = json.loads(cli(*teacher_args, "--seed", "1", "--json").stdout)
    assert other["run"] != first["run"]


@pytest.mark.parametrize("modality", ["text", "image"])
def test_baseline_teachers(cli, teacher_args, modality):
    out = json.loads(cli(*teacher_args, "--modality", modality, "--json").stdout)
    assert out["status"] == "trained" and 0 <= out["metrics"]["test"]["accuracy"] <= 1


def test_distill_defaults_to_the_latest_teacher(cli, workspace, teacher_args, text_args):
    teacher = json.loads(cli(*teacher_args, "--json").stdout)
    student = json.loads(cli("distill", "--alpha", "3", "--beta", "1", "--tau", "8", *text_args, "--json").stdout)
    config = Run(workspace / "runs" / student["run"]).config()
    assert config["teacher_run"] == teacher["run"] and config["config"]["loss"]["alpha"] == 3.0
    assert config["dataset"]["name"] == "films"
    baseline = json.loads(cli("distill", "--alpha", "0", "--beta", "0", *text_args, "--json").stdout)
    base_config = Run(workspace / "runs" / baseline["run"]).config()
    assert base_config["teacher_run"] is None and base_config["config"]["teacher"] is None
    assert base_config["dataset"]["fingerprint"] == config["dataset"]["fingerprint"]  # the same samples
    again = json.loads(cli("distill", "--alpha", "3", "--beta", "1", "--tau", "8", *text_args, "--json").stdout)
    assert again["status"] == "reused"


def test_student_works_with_a_plain_transformers_pipeline(cli, workspace, teacher_args, text_args):
    from transformers import pipeline

    cli(*teacher_args)
    student = json.loads(cli("distill", *text_args, "--json").stdout)
    classify = pipeline("text-classification", model=str(Run(workspace / "runs" / student["run"]).model_dir))
    labels = {r["label"] for r in classify(["the film was good", "the film was bad"])}
    assert labels <= {"neg", "pos"}


def test_distill_never_runs_the_teacher(cli, teacher_args, text_args, monkeypatch):
    from lugpi_cli.models import FusionTeacher

    cli(*teacher_args)

    def refuse(*args, **kwargs):
        raise AssertionError("distill ran the teacher")

    monkeypatch.setattr(FusionTeacher, "forward", refuse)
    monkeypatch.setattr(FusionTeacher, "load", refuse)
    cli("distill", *text_args)


def test_missing_teacher_outputs_name_the_run_and_the_fix(cli, workspace, teacher_args, text_args):
    teacher = json.loads(cli(*teacher_args, "--json").stdout)
    cli("store", "gc", "--drop-fingerprint", teacher["fingerprint"][:12], "--namespace", "teacher")
    err = cli("distill", *text_args, code=1).stderr
    assert teacher["run"] in err and "train-teacher" in err and "Traceback" not in err


def test_width_mismatch_gets_an_aligner(cli, workspace, teacher_args, text_args):
    cli(*teacher_args[:-2], "--hidden", "24")  # e_T is 24 wide, the student's e_S 32
    student = json.loads(cli("distill", *text_args, "--json").stdout)
    aligned = Run(workspace / "runs" / student["run"]).config()["aligned"]
    assert aligned["student_dim"] == 32 and aligned["teacher_dim"] == 24


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "magic"], "unknown distillation method 'magic'"),
        (["--alpha", "-1"], "alpha"),
        (["--soften", "student"], "soften"),
        (["--option", "gamma"], "KEY=VALUE"),
        (["--teacher", "no-such-run"], "no run 'no-such-run'"),
        (["--init", "zeros"], "--init"),
    ],
)
def test_distill_bad_input(cli, teacher_args, text_args, args, message):
    cli(*teacher_args)
    result = cli("distill", *text_args, *args, code=1)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_teacher_bad_input(cli, workspace, teacher_args, table, tiny_models, text_args):
    assert "--modality" in cli(*teacher_args, "--modality", "audio", code=1).stderr
    err = cli("train-teacher", table, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
              "--encoder", "vit", *text_args, code=1).stderr
    assert "no 'vit' features" in err and "lugpi embed" in err


def test_distill_without_any_teacher(cli, text_args):
    err = cli("distill", *text_args, code=1).stderr
    assert "no completed teacher run" in err and "train-teacher" in err


def test_seed_fixes_the_initial_weights_whatever_ran_before(cli, workspace, teacher_args, text_args):
    cli(*teacher_args)
    cli("distill", *text_args, "--run", "first")
    torch.manual_seed(123)
    torch.rand(10_000)  # something else in this process used the global generator
    cli("distill", *text_args, "--run", "second")
    a = read_predictions(Run(workspace / "runs" / "first").predictions_path("test"))
    b = read_predictions(Run(workspace / "runs" / "second").predictions_path("test"))
    np.testing.assert_array_equal(a.probs, b.probs)


def test_a_named_run_with_other_settings_is_refused(cli, teacher_args, text_args):
    cli(*teacher_args)
    cli("distill", *text_args, "--run", "mine", "--alpha", "3")
    err = cli("distill", *text_args, "--run", "mine", "--alpha", "0", code=1).stderr
    assert "already exists with other settings" in err
    assert json.loads(cli("distill", *text_args, "--run", "mine", "--alpha", "0", "--force", "--json").stdout)[
        "status"] == "trained"


@pytest.mark.parametrize("name", ["../escape", "a b/c", "..", ".hidden"])
def test_a_run_name_is_one_directory_under_runs(cli, workspace, teacher_args, name):
    err = cli(*teacher_args, "--run", name, code=1).stderr
    assert f"--run {name!r} is not a run name" in err and "Traceback" not in err
    assert not (workspace / "escape").exists() and not (workspace / "runs" / "a b").exists()


def test_training_device_errors(cli, teacher_args, text_args):
    cli(*teacher_args)
    assert "fp16 needs a GPU" in cli("distill", *text_args, "--mixed-precision", "fp16", "--device", "cpu",
                                     code=1).stderr
    err = cli("distill", *text_args, "--device", "cuda:1", code=1).stderr  # no GPU here; on one, the fix
    assert "--device cuda:1" in err and "Traceback" not in err
