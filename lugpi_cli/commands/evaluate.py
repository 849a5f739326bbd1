"""``lugpi evaluate RUN...``: metrics, paired significance and agreement, as the paper's tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.evaluation.compare import (
    METRICS,
    Comparison,
    compare_runs,
    paper_cell,
    paper_entry,
    with_paper,
    write_text,
)
from lugpi_cli.evaluation.significance import DEFAULT_ALPHA, MARKER
from lugpi_cli.training.runs import completed_runs, find_run, find_runs


def _fmt(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def render_json_table(result: dict, out: Console) -> None:
    """A compact table from an evaluate JSON result (as `lugpi run` receives it)."""
    table = Table("model", "dataset", "accuracy", "macro-F1", "McNemar p", box=None)
    for r in result.get("runs", []):
        m = r["metrics"]
        table.add_row(escape(r["label"]) + (" (baseline)" if r["baseline"] else ""), escape(r["dataset"]),
                      _fmt(m.get("accuracy")) + (MARKER if r["significant"] else "")
                      + ("" if r.get("paper") is None else " (paper " + paper_cell(
                          {"accuracy": r["paper"], "significant": bool(r.get("paper_significant"))}, r["dataset"])
                         + ")"),
                      _fmt(m.get("macro_f1")), "-" if r["mcnemar"] is None else f"{r['mcnemar']['pvalue']:.2g}")
    out.print(table)


HEADERS = ("model", "run", "accuracy", "macro-F1", "micro-F1", "ROC-AUC", "McNemar p", "agreement (KL)")
WIDE = 125  # columns below which the table is printed as two (metrics, then tests), so no column is dropped


def _comparison_cells(comparison: Comparison) -> list[list[str]]:
    rows = []
    for dataset in comparison.datasets:
        if len(comparison.datasets) > 1:
            rows.append([f"[bold]{dataset}[/]"] + [""] * (len(HEADERS) - 1))
        for r in (row for row in comparison.rows if row.dataset == dataset):
            agree = "-" if r.agreement is None else \
                f"{100 * r.agreement['label_agreement']:.1f}% ({r.agreement['mean_kl']:.3f})"
            paper = "" if not r.paper else f" [dim](paper {paper_cell(r.paper, dataset)})[/]"
            rows.append([escape(r.label) + (" [dim](baseline)[/]" if r.baseline else ""), escape(r.run),
                         _fmt(r.metrics.get("accuracy")) + r.marker() + paper,
                         *(_fmt(r.metrics.get(m)) for m in METRICS[1:]),
                         "-" if r.mcnemar is None else f"{r.mcnemar['pvalue']:.2g} ({r.mcnemar['method']})", agree])
    return rows


def _table(rows: list[list[str]], columns: list[int], title: str | None) -> Table:
    """The chosen columns; the model label wraps, run names and numbers stay whole."""
    table = Table(*(HEADERS[c] for c in columns), title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for k, c in enumerate(columns):
        table.columns[k].no_wrap = c not in (0, 6, 7)  # "0.0063 (exact)" may break at its space
        if c == 0:
            table.columns[k].min_width = 14
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    return table


def render_comparison(comparison: Comparison, out: Console) -> None:
    rows = _comparison_cells(comparison)
    title = f"{comparison.split} split"
    if out.width >= WIDE:
        out.print(_table(rows, list(range(len(HEADERS))), title))
    else:
        out.print(_table(rows, [0, 1, 2, 3], title))
        out.print(_table(rows, [1, 4, 5, 6, 7], f"{comparison.split} split: more metrics, significance, agreement"))
    if len(comparison.datasets) > 1:
        labels, datasets, cells = comparison.pivot()
        pivot = Table("model", *datasets, title="accuracy by data set", title_justify="left")
        for label in labels:
            pivot.add_row(escape(label), *(_fmt(cells[(label, d)].metrics.get("accuracy")) + cells[(label, d)].marker()
                                   + with_paper(cells[(label, d)]) if (label, d) in cells else "" for d in datasets))
        out.print(pivot)
    for dataset, q in comparison.cochran.items():
        out.print(f"Cochran's Q ({dataset}, {len(q['runs'])} runs): Q = {q['statistic']:.3f}, df = {q['df']}, "
                  f"p = {q['pvalue']:.3g}")
    out.print(f"{MARKER} differs from the baseline by McNemar's test at p < {comparison.alpha_level:g}.")


def evaluate_command(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run directories or names (default: every finished "
                                                        "run of the workspace).")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", "-b", help="The run the others are tested "
                                                    "against (default: the fine-tuned text-only run).")] = None,
    split: Annotated[str, typer.Option("--split", help="train, validation or test.")] = "test",
    alpha_level: Annotated[float, typer.Option("--alpha-level", help="Significance level of the marker "
                                               "(the paper's: 0.001).")] = DEFAULT_ALPHA,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write the table as CSV here.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table as Markdown (for papers).")] = False,
    paper: Annotated[Optional[Path], typer.Option("--paper", help="A recipe whose \\[paper] table holds the paper's "
                                                  "numbers for its rows: printed beside the measured ones.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Compare runs: metrics, McNemar / Cochran's Q significance, teacher-student agreement."""
    state = console.use_json(json_out)
    chosen = find_runs(state.runs_path, runs) if runs else completed_runs(state.runs_path)
    base = find_run(state.runs_path, baseline) if baseline else None
    comparison = compare_runs(chosen, split=split, baseline=base, alpha_level=alpha_level, runs_dir=state.runs_path)
    if paper is not None:
        from lugpi_cli.recipe import paper_numbers

        numbers = paper_numbers(paper, state)
        for row in comparison.rows:
            row.paper = paper_entry(numbers.get(row.run), row.dataset)
    if csv_path is not None:
        write_text(csv_path, comparison.to_csv())
    result = comparison.to_json()
    if csv_path is not None:
        result["csv"] = str(csv_path)

    def render(out: Console) -> None:
        if markdown:
            out.print(comparison.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        else:
            render_comparison(comparison, out)

    console.emit(result, render)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
