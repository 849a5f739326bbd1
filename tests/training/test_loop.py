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


def test_the_last_epochs_checkpoint_keeps_no_optimizer_state_and_resumes_without_training(tmp_path, tiny_models):
    """After the fit's last epoch no step is left: the checkpoint holds the weights and counters only, and a
    process killed afterwards (while predicting the outputs) resumes with the same weights and no epoch rerun."""
    train, val = TrainingData(_samples(24, "train")), TrainingData(_samples(8, "validation"))
    cfg = TrainConfig(epochs=2, batch_size=4, seed=0)
    objective, collate = _setup(tiny_models)
    run = Run(tmp_path / "r")
    first = fit(run, objective, train, val, collate, cfg, device="cpu")  # not marked done: as if killed after
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["best.safetensors", "objective.safetensors",
                                                                   "trainer.json"]
    weights = {k: v.clone() for k, v in objective.model.state_dict().items()}
    objective, collate = _setup(tiny_models)  # a new process
    steps = []
    again = fit(run, objective, train, val, collate, cfg, device="cpu", on_step=lambda n, parts: steps.append(n))
    assert not steps and again.resumed_from_epoch == 2 and (again.best_epoch, again.steps) == (first.best_epoch,
                                                                                               first.steps)
    for name, value in objective.model.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=0, msg=name)
    objective, collate = _setup(tiny_models)
    with pytest.raises(UserError, match="no optimizer state"):  # the same run asked to train further
        fit(run, objective, train, val, collate, TrainConfig(epochs=3, batch_size=4, seed=0), device="cpu")


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
                         (dict(mixed_precision="fp8"), "--mixed-precision"), (dict(warmup_ratio=1.5), "--warmup"),
                         (dict(weight_decay=-1.0), "--weight-decay"), (dict(max_grad_norm=-1.0), "--max-grad-norm")):
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


@pytest.mark.parametrize("samples,batch,accum,processes", [
    (100, 14, 4, 4), (100, 14, 1, 2), (24, 4, 1, 1), (28, 4, 4, 1), (57, 5, 3, 3), (7, 8, 2, 2)])
def test_scheduler_length_matches_accelerates_sharding(samples, batch, accum, processes):
    """Counted independently: the batches accelerate gives rank 0, its optimizer steps, one scheduler
    step per process for each."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler, SequentialSampler

    from lugpi_cli.training.loop import scheduler_steps_per_epoch

    shard = BatchSamplerShard(BatchSampler(SequentialSampler(range(samples)), batch, False),
                              num_processes=processes, process_index=0, even_batches=True)
    optimizer_steps = -(-len(list(shard)) // accum)
    assert scheduler_steps_per_epoch(samples, batch, accum, processes) == optimizer_steps * processes
    if (samples, batch, accum, processes) == (100, 14, 4, 4):
        assert scheduler_steps_per_epoch(samples, batch, accum, processes) == 4  # 8 batches, 2 per rank, 1 step


def test_a_short_last_accumulation_window_is_a_mean_over_its_batches():
    """With the loop's factor, each optimizer step of accelerate's accumulation is the gradient of the
    mean loss over the window's batches — computed by hand here for a linear model."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from lugpi_cli.training.loop import _short_window

    assert _short_window(7, 4) == (4, 4 / 3) and _short_window(8, 4) == (8, 1.0) and _short_window(3, 4) == (0, 4 / 3)
    AcceleratorState._reset_state(True)
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    xs = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]]), torch.tensor([[0.5, 4.0]])]
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loader = torch.utils.data.DataLoader(torch.cat(xs), batch_size=1)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    start, scale = _short_window(len(loader), 2)
    for i, x in enumerate(loader):
        with accelerator.accumulate(model):
            loss = model(x).sum()  # d loss / d w = x
            accelerator.backward(loss * (scale if i >= start else 1.0))
            optimizer.step()
            optimizer.zero_grad()
    # SGD with lr 1 from w = 0: w = -(mean(x0, x1) + x2)
    expected = -((xs[0] + xs[1]) / 2 + xs[2])
    torch.testing.assert_close(accelerator.unwrap_model(model).weight.detach(), expected)
    AcceleratorState._reset_state(True)


class _WithTeacher(TrainingData):
    """Training items with fixed random teacher outputs (what the teacher cache supplies)."""

    def __getitems__(self, idx):
        import numpy as np

        items = super().__getitems__(idx)
        for item in items:
            rng = np.random.default_rng(item["index"])
            item["teacher"] = {k: rng.normal(size=2).astype(np.float32)
                               for k in ("logits", "logits_text", "logits_image")}
            item["teacher"]["embedding"] = rng.normal(size=32).astype(np.float32)
        return items


def _method_objective(tiny_models, kind, val, cfg):
    from transformers import AutoTokenizer

    from lugpi_cli.training.objectives import EmaObjective, MetaObjective

    torch.manual_seed(0)
    model = TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"])
    collate = Collator(AutoTokenizer.from_pretrained(tiny_models["text"]), 32)
    if kind == "ema":
        return EmaObjective(model, build_loss("ema", mixup=0.4), seed=cfg.seed), collate
    loss = build_loss("msd", weighting="meta")
    loss.prepare(num_labels=2)
    return MetaObjective(model, loss, lambda: torch.utils.data.DataLoader(
        val, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
        generator=torch.Generator().manual_seed(cfg.seed))), collate


@pytest.mark.parametrize("kind", ["meta", "ema"])
def test_msd_meta_and_ema_resume_bit_for_bit(tmp_path, tiny_models, kind):
    """The weight net, its optimizer and the place in the validation cycle (meta), the EMA teacher and
    the mixup generator (ema) come back from the checkpoint: the resumed run ends where the straight one does."""
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, seed=5)
    train, val = _WithTeacher(_samples(24, "train")), TrainingData(_samples(20, "validation"))
    objective, collate = _method_objective(tiny_models, kind, val, cfg)
    fit(Run(tmp_path / "straight"), objective, train, val, collate, cfg, device="cpu")
    def everything(objective):  # the meta weight net lives outside the student's state
        net = objective.loss.weight_net.state_dict() if kind == "meta" else {}
        return {**objective.state_dict(), **{"weight_net." + k: v for k, v in net.items()}}

    reference = {k: v.clone() for k, v in everything(objective).items()}

    objective, collate = _method_objective(tiny_models, kind, val, cfg)
    run = Run(tmp_path / "resumed")
    steps = []

    def stop_in_epoch_two(n, parts):
        steps.append(n)
        if len(steps) == 8:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(run, objective, train, val, collate, cfg, device="cpu", on_step=stop_in_epoch_two)
    objective, collate = _method_objective(tiny_models, kind, val, cfg)
    fit(run, objective, train, val, collate, cfg, device="cpu")
    for name, value in everything(objective).items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)


def test_default_teacher_prefers_the_latest_multimodal_one(tmp_path):
    from lugpi_cli.training.lifecycle import default_teacher

    def finish(name, modality):
        run = Run(tmp_path / "runs" / name)
        run.start("teacher", {"modality": modality}, extra={"modality": modality})
        run.mark_done()

    with pytest.raises(UserError, match="no completed teacher"):
        default_teacher(tmp_path / "runs")
    finish("text-1", "text")
    assert default_teacher(tmp_path / "runs").name == "text-1"  # no multimodal teacher: the latest one
    finish("both-1", "both")
    finish("both-2", "both")
    finish("image-1", "image")  # newer, but image-only
    assert default_teacher(tmp_path / "runs").name == "both-2"
