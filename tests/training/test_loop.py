"""The fit loop: resume after an interruption equals an uninterrupted run; checkpoints load safely."""

from __future__ import annotations

import pytest
import torch

from lugpi_cli.data.samples import Sample
from lugpi_cli.errors import UserError
from lugpi_cli.losses import build_loss
from lugpi_cli.models import TextClassifier
from lugpi_cli.training.data import Collator, TrainingData
from lugpi_cli.training.loop import Objective, TrainConfig, fit
from lugpi_cli.training.runs import Run, completed_runs, run_name


def _samples(n, split):
    return [Sample(f"{split}{i}", f"the film was {('bad', 'good')[i % 2]} {i}", "p", i % 2, split) for i in range(n)]


def _setup(tiny_models):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"])
    return Objective(model, build_loss("lugpi", alpha=0.0, beta=0.0)), \
        Collator(AutoTokenizer.from_pretrained(tiny_models["text"]), 32)


class Interrupt(Exception):
    pass


def test_resume_matches_an_uninterrupted_run(tmp_path, tiny_models):
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, seed=5)
    train, val = TrainingData(_samples(24, "train")), TrainingData(_samples(8, "validation"))

    objective, collate = _setup(tiny_models)
    straight = fit(Run(tmp_path / "straight"), objective, train, val, collate, cfg, device="cpu")
    reference = {k: v.clone() for k, v in objective.model.state_dict().items()}

    objective, collate = _setup(tiny_models)
    run = Run(tmp_path / "resumed")
    steps = []

    def stop_in_epoch_two(n, parts):
        steps.append(n)
        if len(steps) == 8:  # 6 batches per epoch: this is inside epoch 2
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(run, objective, train, val, collate, cfg, device="cpu", on_step=stop_in_epoch_two)
    assert [h["epoch"] for h in run.history()] == [1]
    objective, collate = _setup(tiny_models)  # a new process would start from scratch like this
    resumed = fit(run, objective, train, val, collate, cfg, device="cpu")
    assert resumed.resumed_from_epoch == 1 and [h["epoch"] for h in run.history()] == [1, 2, 3]
    assert (resumed.best_epoch, resumed.steps) == (straight.best_epoch, straight.steps)
    for name, value in objective.model.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)


def test_checkpoint_loads_with_weights_only(tmp_path, tiny_models):
    objective, collate = _setup(tiny_models)
    run = Run(tmp_path / "r")
    cfg = TrainConfig(epochs=2, batch_size=4, seed=0)

    def stop(n, parts):
        if stop.calls == 7:
            raise Interrupt
        stop.calls += 1

    stop.calls = 0
    with pytest.raises(Interrupt):
        fit(run, objective, TrainingData(_samples(24, "train")), TrainingData(_samples(8, "validation")),
            collate, cfg, device="cpu", on_step=stop)
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.load(run.checkpoint_dir / name, weights_only=True)
    from safetensors.torch import load_file

    assert any(k.startswith("model.") for k in load_file(run.checkpoint_dir / "objective.safetensors"))


def test_max_steps_and_early_stopping(tmp_path, tiny_models):
    train, val = TrainingData(_samples(24, "train")), TrainingData(_samples(8, "validation"))
    objective, collate = _setup(tiny_models)
    short = fit(Run(tmp_path / "a"), objective, train, val, collate, TrainConfig(epochs=5, batch_size=4, max_steps=3),
                device="cpu")
    assert short.steps == 3 and short.epochs_run == 1
    objective, collate = _setup(tiny_models)
    patient = fit(Run(tmp_path / "b"), objective, train, val, collate,
                  TrainConfig(epochs=30, batch_size=4, lr=1e-9, early_stopping=2), device="cpu")
    assert patient.epochs_run < 30 and patient.epochs_run - patient.best_epoch == 2


def test_train_config_checks():
    for bad, message in ((dict(epochs=0), "--epochs"), (dict(lr=0), "--lr"), (dict(batch_size=0), "--batch-size"),
                         (dict(mixed_precision="fp8"), "--mixed-precision"), (dict(warmup_ratio=1.5), "--warmup")):
        with pytest.raises(UserError, match=message):
            TrainConfig(**bad).check()


def test_run_names_locks_and_order(tmp_path):
    config = {"kind": "teacher", "seed": 0}
    assert run_name("teacher", "CWI News", config) == run_name("teacher", "CWI News", dict(config))
    assert run_name("teacher", "x", config) != run_name("teacher", "x", {**config, "seed": 1})
    run = Run(tmp_path / "runs" / "r1")
    with run.lock():
        assert run.in_progress()  # flock: a second open file description conflicts, even in this process
        with pytest.raises(UserError, match="another process"):
            with Run(tmp_path / "runs" / "r1").lock():
                pass
    for name in ("r2", "r1"):
        r = Run(tmp_path / "runs" / name)
        r.start("teacher", {"n": name})
        r.mark_done()
    assert [r.name for r in completed_runs(tmp_path / "runs", "teacher")] == ["r2", "r1"]
