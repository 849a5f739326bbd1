"""One fit loop for teachers, students and baselines, on ``accelerate``.

nanoGPT-flat: per epoch, shuffle (seeded by seed and epoch), forward, loss,
backward, clip, AdamW step, linear-decay schedule; then validate, keep the
best weights by validation accuracy, checkpoint everything resuming needs,
and stop early if asked. ``accelerate launch -m lugpi_cli distill ...`` runs
the same loop with DDP across GPUs or machines; on one GPU it uses bf16/fp16
autocast; on the CPU it runs in float32.

Checkpoints (``RUN/checkpoint/``, :mod:`lugpi_cli.training.checkpoint`) load
with ``torch.load(weights_only=True)``; weights are safetensors. The parts the
loop builds (accelerator, optimizer, loaders) are in
:mod:`lugpi_cli.training.components`; validation and prediction in
:mod:`lugpi_cli.training.predict`. Their public names stay importable from here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lugpi_cli import gpu
from lugpi_cli.errors import UserError
from lugpi_cli.training import checkpoint
from lugpi_cli.training.checkpoint import load_checkpoint_state  # noqa: F401 - re-exported
from lugpi_cli.training.components import (  # noqa: F401 - re-exported
    FUSED_ADAMW_DEVICES,
    make_accelerator,
    make_loader,
    make_optimizer,
    scheduler_steps_per_epoch,
    seed_everything,
)
from lugpi_cli.training.config import TrainConfig  # noqa: F401 - re-exported (its home is torch-free)
from lugpi_cli.training.data import by_length, pretokenize
from lugpi_cli.training.objectives import Objective, make_inputs  # noqa: F401 - re-exported
from lugpi_cli.training.predict import evaluate, predict, predict_outputs  # noqa: F401 - re-exported
from lugpi_cli.training.runs import Run

__all__ = [
    "FUSED_ADAMW_DEVICES",
    "FitResult",
    "Objective",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint_state",
    "make_accelerator",
    "make_inputs",
    "make_optimizer",
    "predict",
    "predict_outputs",
    "scheduler_steps_per_epoch",
    "seed_everything",
]


@dataclass
class FitResult:
    best_metric: float
    best_epoch: int
    epochs_run: int
    steps: int
    resumed_from_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Fitting:
    """One fit's prepared parts (``objective`` wrapped by accelerate) and its counters, shared by its epochs."""

    run: Run
    cfg: TrainConfig
    accelerator: Any
    objective: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    tracked: bool = False
    step: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def restore_counters(self, state: dict[str, Any] | None) -> None:
        if state:
            self.step, self.best = int(state["step"]), float(state["best_metric"])
            self.best_epoch, self.bad_epochs = int(state["best_epoch"]), int(state["bad_epochs"])

    def counters(self, epoch: int) -> dict[str, Any]:
        """The checkpoint's ``trainer.json``."""
        return {"epoch": epoch, "step": self.step, "best_metric": self.best, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs}

    def out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def stopped_early(self) -> bool:
        return self.cfg.early_stopping is not None and self.bad_epochs >= self.cfg.early_stopping

    def last_epoch(self, epoch: int) -> bool:
        """Whether the fit ends after ``epoch`` (its epochs, its steps or its patience are used up)."""
        return epoch >= self.cfg.epochs or self.out_of_steps() or self.stopped_early()


def _short_window(batches: int, grad_accum: int) -> tuple[int, float]:
    """Where the epoch's last, short accumulation window starts, and its loss factor.

    accelerate divides every loss by ``grad_accum`` and steps at the end of the
    loader, so a last window of ``r < grad_accum`` batches would weigh
    ``r / grad_accum`` of a full one; multiplying its losses by
    ``grad_accum / r`` makes every optimizer step a mean over its batches.
    """
    rest = batches % grad_accum
    if rest == 0:
        return batches, 1.0
    return batches - rest, grad_accum / rest


def fit(
    run: Run,
    objective: Objective,
    train_data,
    val_data,
    collate: Callable,
    cfg: TrainConfig,
    *,
    device: str = "auto",
    on_epoch_start: Callable[[int, int], None] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train ``objective`` in place; on return its model holds the best validation weights."""
    from lugpi_cli.training import tracking

    # 1. the accelerator (DDP when launched with several processes) and the trackers asked for
    trackers = tracking.build_trackers(tracking.parse_report_to(cfg.report_to), run.name, run.dir, cfg.project)
    accelerator = make_accelerator(cfg, device, trackers)
    # 2. resume from the run's checkpoint, or start afresh from the seed
    state = checkpoint.recover_run_dir(run, accelerator)
    start_epoch = _resume_or_seed(run, objective, cfg, state, log)
    # 3. the optimizer and the LR schedule (their states too, resuming)
    optimizer, scheduler = _optimizer_and_schedule(objective, cfg, accelerator, len(train_data))
    resuming_steps = state is not None and not state.get("final")  # a final checkpoint: no step is left
    if resuming_steps:
        checkpoint.load_optimizer_state(run.checkpoint_dir, optimizer, scheduler, accelerator.process_index)
    # 4. onto the device
    fitting = _prepare(run, cfg, accelerator, objective, optimizer, scheduler)
    if resuming_steps:
        checkpoint.load_scaler_state(run.checkpoint_dir, fitting.scaler)
    # 5. the data: each text tokenised once per run, not per batch or epoch
    pretokenize(collate, train_data)
    val_by_length, _ = by_length(collate, val_data)  # validation in any order: longest first pads least
    val_loader = accelerator.prepare(make_loader(val_by_length, cfg.eval_batch_size, collate, workers=cfg.workers,
                                                 shuffle=False))
    # 6. the epochs
    fitting.restore_counters(state)
    if not resuming_steps and state is not None and not fitting.last_epoch(start_epoch):
        raise UserError(f"run {run.name} ended its fit after epoch {start_epoch} and kept no optimizer state to "
                        f"train on to epoch {cfg.epochs}", "Start it afresh with --force, or name another --run.")
    epochs_run = start_epoch
    history = run.history()
    fitting.tracked = tracking.start(accelerator, run.name, run.config() if run.config_path.exists() else None,
                                     cfg.project)
    fitting.objective.train()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if fitting.out_of_steps() or fitting.stopped_early():  # stopped early: resumed after the stopping epoch
            break
        _epoch(fitting, epoch, train_data, val_loader, collate, history, on_epoch_start, on_step, log)
        epochs_run = epoch
        if fitting.stopped_early():
            if log is not None:
                log(f"early stopping: no improvement for {fitting.bad_epochs} epoch(s)")
            break
    # 7. the best weights back into the model
    _finish(fitting)
    return FitResult(best_metric=fitting.best, best_epoch=fitting.best_epoch, epochs_run=epochs_run,
                     steps=fitting.step, resumed_from_epoch=start_epoch, history=history)


def _resume_or_seed(run: Run, objective: Objective, cfg: TrainConfig, state: dict[str, Any] | None, log) -> int:
    """The epoch training resumes after: the checkpoint's weights into ``objective``, or a fresh seeded start (0)."""
    if state is None:
        seed_everything(cfg.seed)
        return 0
    start_epoch = int(state["epoch"])
    checkpoint.load_objective_state(objective, run.checkpoint_dir)
    if log is not None:
        log(f"resuming {run.name} after epoch {start_epoch}")
    return start_epoch


def _optimizer_and_schedule(objective: Objective, cfg: TrainConfig, accelerator, samples: int):
    """AdamW and the linear warmup-decay schedule over every scheduler step the run will take."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = make_optimizer(objective, cfg, accelerator.device)
    processes = accelerator.num_processes
    per_epoch = scheduler_steps_per_epoch(samples, cfg.batch_size, cfg.grad_accum, processes)
    total_steps = per_epoch * cfg.epochs if cfg.max_steps is None else \
        min(per_epoch * cfg.epochs, cfg.max_steps * processes)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), max(total_steps, 1))
    return optimizer, scheduler


def _prepare(run: Run, cfg: TrainConfig, accelerator, objective: Objective, optimizer, scheduler) -> _Fitting:
    """TF32 and ``torch.compile`` where asked and useful, then ``accelerator.prepare`` (device, DDP, autocast)."""
    gpu.enable_tf32(accelerator.device)  # Ampere and later only
    if cfg.compile:
        gpu.compile_in_place(objective.model)
    objective, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)
    scaler = getattr(accelerator, "scaler", None)  # fp16 on a GPU
    return _Fitting(run, cfg, accelerator, objective, optimizer, scheduler, scaler)


def _epoch(f: _Fitting, epoch: int, train_data, val_loader, collate: Callable, history: list[dict[str, Any]],
           on_epoch_start, on_step, log) -> None:
    """Train one epoch (shuffled by seed and epoch), validate, keep the best weights, checkpoint."""
    from lugpi_cli.training import tracking

    cfg, accelerator = f.cfg, f.accelerator
    started = time.perf_counter()
    loader = accelerator.prepare(make_loader(train_data, cfg.batch_size, collate, workers=cfg.workers,
                                             shuffle=True, seed=cfg.seed * 1000 + epoch))
    if on_epoch_start is not None:
        on_epoch_start(epoch, len(loader))
    sums, batches = _train_epoch(f, loader, on_step)
    val = evaluate(f.objective, val_loader, accelerator)
    record = {"epoch": epoch, "step": f.step, "seconds": round(time.perf_counter() - started, 3),
              **{f"train_{k}": v / max(batches, 1) for k, v in sums.items()},
              "val_accuracy": val["accuracy"], "val_loss": val["loss"], "lr": f.scheduler.get_last_lr()[0]}
    if f.tracked:
        accelerator.log(tracking.epoch_values(record), step=f.step)
    improved = _keep_best_and_checkpoint(f, epoch, record, val["accuracy"], history)
    if log is not None:
        parts = "  ".join(f"{k} {v / max(batches, 1):.4f}" for k, v in sums.items())
        log(f"epoch {epoch}: {parts}  val_accuracy {val['accuracy']:.4f}{'  (best)' if improved else ''}")


def _train_epoch(f: _Fitting, loader, on_step) -> tuple[dict[str, float], int]:
    """One pass over ``loader``: the loss parts summed over its batches, and how many batches ran."""
    from lugpi_cli.training import tracking

    cfg, accelerator, objective, optimizer, scheduler = f.cfg, f.accelerator, f.objective, f.optimizer, f.scheduler
    sums: dict[str, float] = {}
    batches = 0
    hooks = accelerator.unwrap_model(objective)
    tail_start, tail_scale = _short_window(len(loader), cfg.grad_accum)
    for batch in loader:
        hooks.before_step(batch, scheduler.get_last_lr()[0])
        with accelerator.accumulate(objective):
            loss_out, _ = objective(batch)
            # accelerate divides by grad_accum; a short last window averages over its own batches
            accelerator.backward(loss_out.total * (tail_scale if batches >= tail_start else 1.0))
            if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                accelerator.clip_grad_norm_(objective.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        scalars = loss_out.scalars()
        for k, v in scalars.items():
            sums[k] = sums.get(k, 0.0) + v
        batches += 1
        if accelerator.sync_gradients:
            f.step += 1
            hooks.after_step()
            if f.tracked:
                accelerator.log(tracking.step_values(scalars, scheduler.get_last_lr()[0]), step=f.step)
        if on_step is not None:
            on_step(1, scalars)
        if f.out_of_steps():
            break
    return sums, batches


def _keep_best_and_checkpoint(f: _Fitting, epoch: int, record: dict[str, Any], accuracy: float,
                              history: list[dict[str, Any]]) -> bool:
    """Count the epoch as an improvement or not, save the best weights, history and checkpoint; improved?"""
    from safetensors.torch import save_model

    accelerator = f.accelerator
    improved = accuracy > f.best
    if improved:
        f.best, f.best_epoch, f.bad_epochs = accuracy, epoch, 0
    else:
        f.bad_epochs += 1
    final = f.last_epoch(epoch)
    rng = [] if final else checkpoint.gather_rng(accelerator)  # every rank decides alike: no collective skipped
    if accelerator.is_main_process:
        best_path = f.run.dir / checkpoint.BEST_WEIGHTS
        if improved:
            save_model(accelerator.unwrap_model(f.objective), str(best_path))
        f.run.append_history({**record, "best": improved})
        history.append({**record, "best": improved})
        checkpoint.save_checkpoint(f.run.checkpoint_dir, accelerator.unwrap_model(f.objective), f.optimizer,
                                   f.scheduler, f.counters(epoch), best_path, rng=rng, scaler=f.scaler, final=final)
    accelerator.wait_for_everyone()
    return improved


def _finish(f: _Fitting) -> None:
    """Load the best weights into the model, close the trackers, free GPU memory."""
    from safetensors.torch import load_model

    accelerator = f.accelerator
    best_path = f.run.dir / checkpoint.BEST_WEIGHTS
    if best_path.exists():
        load_model(accelerator.unwrap_model(f.objective), str(best_path))
    if f.tracked:
        accelerator.end_training()
    if accelerator.device.type == "cuda":  # its gc.collect() costs seconds and frees nothing on the CPU
        accelerator.free_memory()
