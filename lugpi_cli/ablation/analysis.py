"""A finished grid, analysed: results table, mean ± std per setting, best setting, ANOVA, heatmap.

Files written into the grid's output directory (atomically, by the parent
process only):

    results.csv / results.json   one row per cell: factors, seed, metrics, run, status, run_dir
    summary.csv                  mean and std over seeds per setting
    anova.csv                    type-II ANOVA of test accuracy on the factors (statsmodels)
    heatmap.png                  mean test accuracy (%) over the two main factors; bars ± std for one factor
    curves.png                   validation accuracy per epoch, one line per setting, mean ± std over seeds
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import best_setting, grid_anova, summarize_grid

METRICS = ("validation_accuracy", "test_accuracy")


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def write_results(out_dir: Path, rows: Sequence[dict[str, Any]], header: dict[str, Any]) -> None:
    """results.csv and results.json with the rows finished so far (rewritten after every cell)."""
    done = [r for r in rows if r is not None]
    if done:
        _atomic(out_dir / "results.csv", pd.DataFrame(done).to_csv(index=False))
    _atomic(out_dir / "results.json", json.dumps(_clean({**header, "rows": done}), indent=2) + "\n")


def analyse(rows: Sequence[dict[str, Any]], factors: Sequence[str]) -> dict[str, Any]:
    """Summary, best setting (on validation), ANOVA of test accuracy."""
    df = pd.DataFrame(list(rows))
    varied = [f for f in factors if df[f].nunique() > 1]
    out: dict[str, Any] = {"factors": list(factors), "varied": varied}
    group_by = list(factors) or ["seed"]
    summary = summarize_grid(df, group_by, METRICS) if factors else None
    out["summary"] = [] if summary is None else summary.to_dict(orient="records")
    out["best"] = best_setting(df, list(factors), "validation_accuracy", "test_accuracy") if factors else None
    out["anova"] = None
    out["anova_note"] = None
    if varied:
        try:
            table = grid_anova(df, "test_accuracy", varied)
            out["anova"] = {"formula": table.attrs.get("formula"), "interactions": table.attrs.get("interactions"),
                            "rows": [{"term": term, **{k: row[k] for k in ("sum_sq", "df", "F", "PR(>F)")}}
                                     for term, row in table.iterrows()]}
        except UserError as exc:
            out["anova_note"] = exc.message
    else:
        out["anova_note"] = "no factor has more than one level"
    return _clean(out)


def write_analysis(out_dir: Path, analysis: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[Path]:
    files = []
    if analysis["summary"]:
        _atomic(out_dir / "summary.csv", pd.DataFrame(analysis["summary"]).to_csv(index=False))
        files.append(out_dir / "summary.csv")
    if analysis["anova"]:
        _atomic(out_dir / "anova.csv", pd.DataFrame(analysis["anova"]["rows"]).to_csv(index=False))
        files.append(out_dir / "anova.csv")
    if analysis["varied"]:
        from lugpi_cli.reports.plots import grid_heatmap

        files.append(grid_heatmap(pd.DataFrame(list(rows)), analysis["varied"], out_dir / "heatmap.png"))
        curves = setting_curves(rows, analysis["varied"])
        if curves:
            from lugpi_cli.reports.plots import learning_curve_figure, save

            title = "validation accuracy per epoch, mean ± std over seeds"
            files.append(save(learning_curve_figure(curves, title), out_dir / "curves.png"))
    return files


def setting_curves(rows: Sequence[dict[str, Any]], factors: Sequence[str]) -> dict[str, list[list[float]]]:
    """Per setting of the varied ``factors`` (``alpha=3, tau=8``), each seed's validation accuracy per epoch,
    read from the cell's ``history.jsonl``."""
    from lugpi_cli.reports.plots import history_accuracies

    curves: dict[str, list[list[float]]] = {}
    for row in rows:
        path = Path(str(row.get("run_dir") or "")) / "history.jsonl"
        if not row.get("run_dir") or not path.exists():
            continue
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        accuracies = history_accuracies(history)
        if accuracies:
            curves.setdefault(", ".join(f"{f}={row[f]}" for f in factors), []).append(accuracies)
    return curves
