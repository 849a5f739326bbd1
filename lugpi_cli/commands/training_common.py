"""What train-teacher and distill share: training config, data set resolution, progress, output."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.progress import RESUME
from lugpi_cli.multinode import resolve_training_dataset
from lugpi_cli.data.snapshot import (
    DatasetRequest,
    describe_request,
    limit_dataset,
)

if TYPE_CHECKING:  # the stages import torch: only the commands' work paths load them
    from lugpi_cli.training.stages import Hooks, StageResult


def resolve_workers(workers: int, device: str) -> int:
    """-1 means: 4 DataLoader workers on a GPU (never starve it), none on the CPU (they would compete)."""
    if workers >= 0:
        return workers
    from lugpi_cli import runtime

    return 4 if runtime.resolve_device(device).type == "cuda" else 0


def dataset_and_request(request: DatasetRequest, store) -> tuple[Any, dict[str, Any]]:
    """The (limited) data set and a JSON description that lets later stages find it again."""
    full = resolve_training_dataset(replace(request, limit=None), store)  # multi-node: rank 0 writes
    ds = limit_dataset(full, request.limit)
    origin = {"origin": full.origin} if full.origin else {}  # a Hugging Face data set's id, revision, fingerprints
    return ds, {**describe_request(request), "full_fingerprint": full.fingerprint(), **origin}


class TrainingProgress:
    """Epoch bars (count, samples/s, ETA; loss parts on a second line) and log lines, on stderr.

    Interrupted, it says how many epochs the run's checkpoint holds: the fit loop logs
    ``epoch N: ...`` only after epoch N's checkpoint is written.
    """

    def __init__(self, cfg: Any = None) -> None:
        self.epochs = getattr(cfg, "epochs", None)
        self.bar = console.ProgressBar("training", unit="batch", rate_unit="samples",
                                       rate_scale=float(getattr(cfg, "batch_size", 1) or 1))
        self.bar.note = self._note
        self.saved = 0  # epochs in the checkpoint
        self.epoch = 0  # the epoch in progress

    def __enter__(self) -> Hooks:
        from lugpi_cli.training.stages import Hooks

        self.bar.__enter__()
        return Hooks(log=self._log, on_epoch_start=self._epoch_start,
                     on_step=lambda n, parts: self.bar.advance(n, _postfix(parts)))

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def _epoch_start(self, epoch: int, batches: int) -> None:
        self.epoch, self.saved = epoch, max(self.saved, epoch - 1)
        self.bar.start(batches, f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else ""))

    def _log(self, message: str) -> None:
        match = re.match(r"(?:epoch|resuming \S+ after epoch) (\d+)\b", message)
        if match:
            self.saved = max(self.saved, int(match.group(1)))
        self.bar.log(message)

    def _note(self, _bar: Any) -> dict[str, Any]:
        of = f" of {self.epochs}" if self.epochs else ""
        if self.epoch == 0:
            message = f"no epoch had started; {RESUME}"
        elif self.saved >= self.epoch:
            message = f"{self.saved}{of} epoch(s) trained and checkpointed; {RESUME}"
        else:
            message = (f"in epoch {self.epoch}{of}; {self.saved} finished epoch(s) are kept in the run's "
                       f"checkpoint; run the same command to resume from epoch {self.saved + 1}")
        return {"message": message, "epochs_kept": self.saved, "epoch": self.epoch, "epochs": self.epochs}


def _postfix(parts: dict[str, float]) -> str:
    shown = {k: v for k, v in parts.items() if k != "total" or len(parts) > 2}
    return "  ".join(f"{k} {v:.3f}" for k, v in shown.items())


def emit_stage(result: StageResult) -> None:
    """The run's summary; under DDP only the main process reports."""
    from lugpi_cli.runtime import process_info

    if not process_info().is_main:
        return
    speed = throughput(result) if result.status == "trained" else None

    def render(out: Console) -> None:
        verb = {"reused": "Reused", "recached": "Re-cached the outputs of"}.get(result.status, "Trained")
        out.print(f"{verb} {result.run.name}  ({result.run.dir})")
        if speed:
            out.print(f"{speed['epochs']} epoch(s) in {speed['seconds']:.1f} s: {speed['samples_per_second']:,.1f} "
                      "training samples/s (validation included)")
        if result.status == "recached":
            out.print(f"{result.extra.get('recached')} missing teacher outputs written again from the saved model "
                      "(no retraining).")
        table = Table("split", "accuracy", "macro F1", "ROC-AUC", box=None)
        for split in ("train", "validation", "test"):
            m = result.metrics.get(split)
            if m:
                auc = m.get("roc_auc")
                table.add_row(split, f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}", "-" if auc is None else f"{auc:.4f}")
        out.print(table)

    console.emit({**result.to_json(), **({"samples_per_second": speed["samples_per_second"]} if speed else {})},
                 render)


def throughput(result: StageResult) -> dict[str, Any] | None:
    """Training samples per second over the epochs of the run's ``history.jsonl`` (their seconds include
    validation), or None without a history or with ``--max-steps``."""
    history = [r for r in result.run.history() if r.get("seconds")]
    n = (result.metrics.get("train") or {}).get("n_samples")
    seconds = sum(float(r["seconds"]) for r in history)
    train = ((result.run.config().get("config") or {}).get("train") or {})
    if not history or not n or seconds <= 0 or train.get("max_steps") is not None:
        return None  # --max-steps cuts epochs short: samples seen are not n per epoch
    return {"epochs": len(history), "seconds": seconds, "samples_per_second": round(n * len(history) / seconds, 2)}
