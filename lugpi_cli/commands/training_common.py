"""What the training commands print: a run's summary and throughput (train-teacher, distill).

Their progress bars are :class:`lugpi_cli.progress.TrainingProgress`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from lugpi_cli import console

if TYPE_CHECKING:
    from lugpi_cli.stages.runs import StageResult


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


# -- an ablation's analysis ----------------------------------------------------------------
