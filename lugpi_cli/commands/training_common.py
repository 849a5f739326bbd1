"""What train-teacher and distill share: training config, data set resolution, progress, output."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.data.snapshot import (
    DatasetRequest,
    describe_request,
    limit_dataset,
    resolve_dataset,
)
from lugpi_cli.training.stages import Hooks, StageResult


def resolve_workers(workers: int, device: str) -> int:
    """-1 means: 4 DataLoader workers on a GPU (never starve it), none on the CPU (they would compete)."""
    if workers >= 0:
        return workers
    from lugpi_cli import runtime

    return 4 if runtime.resolve_device(device).type == "cuda" else 0


def dataset_and_request(request: DatasetRequest, store) -> tuple[Any, dict[str, Any]]:
    """The (limited) data set and a JSON description that lets later stages find it again."""
    full = resolve_dataset(replace(request, limit=None), store)
    ds = limit_dataset(full, request.limit)
    return ds, {**describe_request(request), "full_fingerprint": full.fingerprint()}


class TrainingProgress:
    """Epoch bars with the loss parts, and log lines, on stderr."""

    def __init__(self) -> None:
        self.bar = console.ProgressBar("training", unit="batch")

    def __enter__(self) -> Hooks:
        self.bar.__enter__()
        return Hooks(log=self.bar.log, on_epoch_start=lambda epoch, n: self.bar.start(n, f"epoch {epoch}"),
                     on_step=lambda n, parts: self.bar.advance(n, _postfix(parts)))

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


def _postfix(parts: dict[str, float]) -> str:
    shown = {k: v for k, v in parts.items() if k != "total" or len(parts) > 2}
    return "  ".join(f"{k} {v:.3f}" for k, v in shown.items())


def emit_stage(result: StageResult) -> None:
    """The run's summary; under DDP only the main process reports."""
    from lugpi_cli.runtime import process_info

    if not process_info().is_main:
        return
    def render(out: Console) -> None:
        verb = {"reused": "Reused", "recached": "Re-cached the outputs of"}.get(result.status, "Trained")
        out.print(f"{verb} {result.run.name}  ({result.run.dir})")
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

    console.emit(result.to_json(), render)
