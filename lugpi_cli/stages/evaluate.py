"""``evaluate``: metrics, paired significance (McNemar, Cochran's Q) and agreement of finished runs.

A table like the paper's Tables 1 and 2; with ``paper`` a recipe's ``[paper]`` numbers are set beside the
measured ones (:func:`lugpi_cli.recipe.paper_numbers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lugpi_cli.evaluation.significance import DEFAULT_ALPHA
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.workspace import Workspace


@dataclass(frozen=True)
class Params(StageParams):
    STAGE = "evaluate"

    runs: tuple[str, ...] = opt((), "Run directories or names (default: every finished run of the workspace).",
                                multiple=True, cli=False)
    baseline: Optional[str] = opt(None, "The run the others are tested against (default: the fine-tuned text-only "
                                  "run).", short="-b")
    split: str = opt("test", "train, validation or test.")
    alpha_level: float = opt(DEFAULT_ALPHA, "Significance level of the marker (the paper's: 0.001).")
    csv_path: Optional[Path] = opt(None, "Also write the table as CSV here.", flag="--csv")
    paper: Optional[Path] = opt(None, "A recipe whose \\[paper] table holds the paper's numbers for its rows: "
                                "printed beside the measured ones.")


@dataclass
class Result:
    comparison: Any  # evaluation.compare.Comparison
    csv: Path | None = None

    def to_json(self) -> dict[str, Any]:
        out = self.comparison.to_json()
        if self.csv is not None:
            out["csv"] = str(self.csv)
        return out


def run(ws: Workspace, params: Params) -> Result:
    from lugpi_cli.evaluation.compare import compare_runs, paper_entry, write_text

    # 1. the runs: as named (paths, names or globs, also under the workspace), else every finished one
    chosen = ws.find_runs(params.runs) if params.runs else ws.completed_runs()
    base = ws.find_run(params.baseline) if params.baseline else None
    # 2. the comparison, the paper's numbers beside it
    comparison = compare_runs(chosen, split=params.split, baseline=base, alpha_level=params.alpha_level,
                              runs_dir=ws.runs_path)
    if params.paper is not None:
        from lugpi_cli.recipe import paper_numbers

        numbers = paper_numbers(params.paper, ws)
        for row in comparison.rows:
            row.paper = paper_entry(numbers.get(row.run), row.dataset)
    # 3. the CSV file
    if params.csv_path is not None:
        write_text(params.csv_path, comparison.to_csv())
    return Result(comparison, params.csv_path)
