"""One fit loop for teachers, students and baselines, on ``accelerate``.

nanoGPT-flat: per epoch, shuffle (seeded by seed and epoch), forward, loss,
backward, clip, AdamW step, linear-decay schedule; then validate, keep the
best weights by validation accuracy, checkpoint everything resuming needs,
and stop early if asked. ``accelerate launch -m lugpi_cli distill ...`` runs
the same loop with DDP across GPUs or machines; on one GPU it uses bf16/fp16
autocast; on the CPU it runs in float32.

Checkpoints (``RUN/checkpoint/``) load with ``torch.load(weights_only=True)``;
weights are safetensors.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lugpi_cli import gpu
from lugpi_cli.errors import UserError
from lugpi_cli.training.config import TrainConfig  # noqa: F401 - re-exported (its home is torch-free)
from lugpi_cli.training.data import pretokenize
from lugpi_cli.training.objectives import Objective, make_inputs  # noqa: F401 - re-exported
from lugpi_cli.training.runs import Run


@dataclass
class FitResult:
    best_metric: float
    best_epoch: int
    epochs_run: int
    steps: int
    resumed_from_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _mixed_precision(choice: str, device_type: str) -> str:
    if choice != "auto":
        return choice
    if device_type != "cuda":
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(cfg: TrainConfig, device: str = "auto", log_with: list | None = None):
    """An Accelerator for this process (DDP when launched with several processes; ``log_with``: trackers)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if device.startswith("cuda:"):
        raise UserError(f"--device {device}: training picks its GPU through accelerate",
                        f"Run it as CUDA_VISIBLE_DEVICES={device.split(':', 1)[1]} lugpi ... --device cuda, or with "
                        "`accelerate launch` for several GPUs.")
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {device!r} is not a training device", "Use auto, cpu or cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this machine has no CUDA GPU", "Use --device auto or cpu.")
    AcceleratorState._reset_state(True)  # several runs in one process (ablate, tests)
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    precision = _mixed_precision(cfg.mixed_precision, "cpu" if cpu else "cuda")
    if cpu and precision == "fp16":
        raise UserError("--mixed-precision fp16 needs a GPU", "On the CPU use bf16 or no.")
    return Accelerator(cpu=cpu, mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum,
                       log_with=log_with or None)


def _loader(data, batch_size: int, collate: Callable, *, workers: int, shuffle: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                       collate_fn=collate, num_workers=workers,
                                       persistent_workers=False, pin_memory=torch.cuda.is_available())


# -- checkpoints ------------------------------------------------------------------

def _save_checkpoint(path: Path, objective: "Objective", optimizer, scheduler, state: dict[str, Any],
                     best_path: Path | None, *, rng: list[dict[str, Any]], scaler=None) -> None:
    """Write the checkpoint to ``path.tmp`` and swap it in, so a kill never leaves half a checkpoint.

    ``rng`` holds every process's random state (index = rank), so each rank of a
    resumed DDP run continues its own dropout stream; ``scaler`` is the fp16 loss
    scaler, if any.
    """
    from safetensors.torch import save_model

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(objective, str(tmp / "objective.safetensors"))
    if best_path is not None and best_path.exists():
        shutil.copy2(best_path, tmp / "best.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save({"ranks": rng}, tmp / "rng.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    extra = objective.extra_state()
    if extra:
        torch.save(extra, tmp / "extra.pt")
    (tmp / "trainer.json").write_text(json.dumps(state, sort_keys=True))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }


def _load_rng_state(path: Path, rank: int) -> None:
    """Restore this rank's random state from a checkpoint's ``rng.pt``."""
    saved = torch.load(path, weights_only=True)
    ranks = saved.get("ranks", [saved])  # older checkpoints held one (rank 0's) state
    _set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0])


def _set_rng_state(saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    version, state, gauss = saved["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def load_checkpoint_state(path: Path) -> dict[str, Any] | None:
    trainer = path / "trainer.json"
    return json.loads(trainer.read_text()) if trainer.exists() else None


def _gather_rng(accelerator) -> list[dict[str, Any]]:
    """Every process's random state, in rank order (a collective: all ranks call it)."""
    if accelerator.num_processes == 1:
        return [_rng_state()]
    from accelerate.utils import gather_object

    return list(gather_object([_rng_state()]))


# -- the loop -----------------------------------------------------------------------

def scheduler_steps_per_epoch(samples: int, batch_size: int, grad_accum: int, processes: int) -> int:
    """How often accelerate steps the LR scheduler in one epoch.

    Each of the ``processes`` ranks gets ``ceil(ceil(samples / batch_size) / processes)``
    batches (accelerate pads the shards to equal length), takes an optimizer
    step every ``grad_accum`` of them and at the end of the loader, and steps
    the scheduler once per process for each optimizer step.
    """
    per_rank = math.ceil(math.ceil(samples / batch_size) / processes)
    return math.ceil(per_rank / grad_accum) * processes


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


def evaluate(objective: Objective, loader, accelerator) -> dict[str, float]:
    """Accuracy and mean CE on a loader (gathered across processes)."""
    objective.eval()
    model = accelerator.unwrap_model(objective).model
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for batch in loader:
            out = model(batch)
            logits = accelerator.gather_for_metrics(out.logits.float())
            labels = accelerator.gather_for_metrics(batch["labels"])
            loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            total += int(labels.numel())
    objective.train()
    return {"accuracy": correct / max(total, 1), "loss": loss_sum / max(total, 1)}


FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # where torch has a fused AdamW kernel (the Trainer's default since torch 2.8)


def make_optimizer(objective: nn.Module, cfg: TrainConfig, device: "torch.device") -> torch.optim.AdamW:
    """AdamW, weight decay on matrices only; fused (one kernel per step, not a Python loop over the parameters)
    on the CPU and CUDA -- the same update within float tolerance (tests/training/test_optimizer.py)."""
    params = [p for p in objective.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    fused = device.type in FUSED_ADAMW_DEVICES and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)


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
    from safetensors.torch import load_model, save_model
    from transformers import get_linear_schedule_with_warmup

    from lugpi_cli.training import tracking

    trackers = tracking.build_trackers(tracking.parse_report_to(cfg.report_to), run.name, run.dir, cfg.project)
    accelerator = make_accelerator(cfg, device, trackers)
    main = accelerator.is_main_process
    run.dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run.checkpoint_dir
    backup = checkpoint.with_name(checkpoint.name + ".old")
    if main and not checkpoint.exists() and load_checkpoint_state(backup) is not None:
        os.replace(backup, checkpoint)  # killed between the two renames of a checkpoint swap
    accelerator.wait_for_everyone()
    best_path = run.dir / "best.safetensors"
    state = load_checkpoint_state(checkpoint)
    start_epoch = int(state["epoch"]) if state is not None else 0
    if main:  # one process edits the run directory
        if state is not None and (checkpoint / "best.safetensors").exists():
            shutil.copy2(checkpoint / "best.safetensors", best_path)
        elif state is None:
            best_path.unlink(missing_ok=True)  # leftovers of a start that never reached a checkpoint
        run.truncate_history(start_epoch)
    accelerator.wait_for_everyone()
    if state is not None:
        load_model(objective, str(checkpoint / "objective.safetensors"))
        extra = checkpoint / "extra.pt"
        if extra.exists():
            objective.load_extra_state(torch.load(extra, weights_only=True))
        if log is not None:
            log(f"resuming {run.name} after epoch {start_epoch}")
    else:
        seed_everything(cfg.seed)

    optimizer = make_optimizer(objective, cfg, accelerator.device)
    processes = accelerator.num_processes
    per_epoch = scheduler_steps_per_epoch(len(train_data), cfg.batch_size, cfg.grad_accum, processes)
    total_steps = per_epoch * cfg.epochs if cfg.max_steps is None else \
        min(per_epoch * cfg.epochs, cfg.max_steps * processes)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), max(total_steps, 1))
    if state is not None:
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
        _load_rng_state(checkpoint / "rng.pt", accelerator.process_index)
    gpu.enable_tf32(accelerator.device)  # Ampere and later only
    if cfg.compile:
        gpu.compile_in_place(objective.model)
    objective, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)
    scaler = getattr(accelerator, "scaler", None)  # fp16 on a GPU
    if state is not None and scaler is not None and (checkpoint / "scaler.pt").exists():
        scaler.load_state_dict(torch.load(checkpoint / "scaler.pt", weights_only=True))
    pretokenize(collate, train_data)  # each text once per run, not per batch or epoch
    pretokenize(collate, val_data)
    val_loader = accelerator.prepare(_loader(val_data, cfg.eval_batch_size, collate, workers=cfg.workers,
                                             shuffle=False))

    step = int(state["step"]) if state else 0
    best = float(state["best_metric"]) if state else -math.inf
    best_epoch = int(state["best_epoch"]) if state else 0
    bad_epochs = int(state["bad_epochs"]) if state else 0
    epochs_run = start_epoch
    history = run.history()
    tracked = tracking.start(accelerator, run.name, run.config() if run.config_path.exists() else None, cfg.project)
    objective.train()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
        if cfg.early_stopping is not None and bad_epochs >= cfg.early_stopping:
            break  # a run resumed after the epoch that stopped it
        started = time.perf_counter()
        loader = accelerator.prepare(_loader(train_data, cfg.batch_size, collate, workers=cfg.workers,
                                             shuffle=True, seed=cfg.seed * 1000 + epoch))
        if on_epoch_start is not None:
            on_epoch_start(epoch, len(loader))
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
                step += 1
                hooks.after_step()
                if tracked:
                    accelerator.log(tracking.step_values(scalars, scheduler.get_last_lr()[0]), step=step)
            if on_step is not None:
                on_step(1, scalars)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        val = evaluate(objective, val_loader, accelerator)
        record = {"epoch": epoch, "step": step, "seconds": round(time.perf_counter() - started, 3),
                  **{f"train_{k}": v / max(batches, 1) for k, v in sums.items()},
                  "val_accuracy": val["accuracy"], "val_loss": val["loss"], "lr": scheduler.get_last_lr()[0]}
        epochs_run = epoch
        if tracked:
            accelerator.log(tracking.epoch_values(record), step=step)
        improved = val["accuracy"] > best
        if improved:
            best, best_epoch, bad_epochs = val["accuracy"], epoch, 0
        else:
            bad_epochs += 1
        rng = _gather_rng(accelerator)
        if accelerator.is_main_process:
            if improved:
                save_model(accelerator.unwrap_model(objective), str(best_path))
            run.append_history({**record, "best": improved})
            history.append({**record, "best": improved})
            _save_checkpoint(checkpoint, accelerator.unwrap_model(objective), optimizer, scheduler,
                             {"epoch": epoch, "step": step, "best_metric": best, "best_epoch": best_epoch,
                              "bad_epochs": bad_epochs}, best_path, rng=rng, scaler=scaler)
        accelerator.wait_for_everyone()
        if log is not None:
            parts = "  ".join(f"{k} {v / max(batches, 1):.4f}" for k, v in sums.items())
            log(f"epoch {epoch}: {parts}  val_accuracy {val['accuracy']:.4f}{'  (best)' if improved else ''}")
        if cfg.early_stopping is not None and bad_epochs >= cfg.early_stopping:
            if log is not None:
                log(f"early stopping: no improvement for {bad_epochs} epoch(s)")
            break
    unwrapped = accelerator.unwrap_model(objective)
    if best_path.exists():
        load_model(unwrapped, str(best_path))
    if tracked:
        accelerator.end_training()
    if accelerator.device.type == "cuda":  # its gc.collect() costs seconds and frees nothing on the CPU
        accelerator.free_memory()
    return FitResult(best_metric=best, best_epoch=best_epoch, epochs_run=epochs_run, steps=step,
                     resumed_from_epoch=start_epoch, history=history)


def predict_outputs(model: nn.Module, data, collate: Callable, *, batch_size: int = 64, workers: int = 0,
                    device: "torch.device | str" = "cpu", **forward_kwargs: Any) -> dict[str, np.ndarray]:
    """Every output of ``model`` over ``data`` in order, eval mode: ``logits``, ``embedding`` and the
    model's extra outputs (e.g. ARMADA's ``logits_aux``, ``manifold``), each (n, ...)."""
    model.eval()
    model.to(device)
    pretokenize(collate, data)
    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for batch in _loader(data, batch_size, collate, workers=workers, shuffle=False):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out = model(batch, **forward_kwargs)
            fields = {"logits": out.logits, "embedding": out.embedding, **(getattr(out, "extra", None) or {})}
            for name, value in fields.items():
                parts.setdefault(name, []).append(value.float().cpu().numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def predict(model: nn.Module, data, collate: Callable, *, batch_size: int = 64, workers: int = 0,
            device: "torch.device | str" = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, k) and embeddings (n, d) of ``model`` over ``data``, in order, in eval mode."""
    out = predict_outputs(model, data, collate, batch_size=batch_size, workers=workers, device=device)
    if not out:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return out["logits"], out["embedding"]
