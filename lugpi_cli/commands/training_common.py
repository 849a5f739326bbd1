"""What the training commands print: a run's summary (train-teacher, distill) and an ablation's analysis.

Their progress bars are :class:`lugpi_cli.progress.TrainingProgress`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.stages.common import resolve_workers  # noqa: F401 - the name commands/options.py and embed.py import

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

def render_analysis(out: Console, analysis: dict[str, Any], factors: list[str]) -> None:
    summary = Table(*factors, "n", "validation", "test", title="mean ± std over seeds", title_justify="left")
    for row in analysis["summary"]:
        summary.add_row(*(str(row[f]) for f in factors), str(row["n_runs"]),
                        _pm(row["validation_accuracy_mean"], row["validation_accuracy_std"]),
                        _pm(row["test_accuracy_mean"], row["test_accuracy_std"]))
    out.print(summary)
    best = analysis.get("best")
    if best:
        out.print(best_line(best))
    anova = analysis.get("anova")
    if anova:
        table = Table("term", "df", "sum sq", "F", "p", title=f"ANOVA (type II) of test accuracy: {anova['formula']}",
                      title_justify="left")
        for row in anova["rows"]:
            table.add_row(str(row["term"]), f"{row['df']:g}", f"{row['sum_sq']:.4g}",
                          "-" if row["F"] is None else f"{row['F']:.3f}",
                          "-" if row["PR(>F)"] is None else f"{row['PR(>F)']:.3g}")
        out.print(table)
    elif analysis.get("anova_note"):
        out.print(f"ANOVA: not computed ({analysis['anova_note']}).")


def best_line(best: dict[str, Any]) -> str:
    """The best setting on validation; when others have the same validation mean, says so and names them."""
    def shown(setting: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in setting.items())

    scores = f"validation {100 * best['select_mean']:.2f}%, test {100 * best['report_mean']:.2f}%"
    tied = best.get("tied") or []
    if not tied:
        return f"best on validation: {shown(best['setting'])}  ({scores})"
    others = "; ".join(shown(t) for t in tied)
    return (f"best on validation: {len(tied) + 1} settings tied at validation {100 * best['select_mean']:.2f}%: "
            f"{shown(best['setting'])} (listed first, test {100 * best['report_mean']:.2f}%); also {others}")


def _pm(mean: Any, std: Any) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")
