"""Rich tables of results: an ablation's analysis (mean ± std, best setting, ANOVA), the evaluate comparison (wide, or split in two below 125 columns), its compact
form inside `lugpi run`, and the kNN probe's per-split and per-class tables."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from lugpi_cli.evaluation.compare import METRICS, Comparison, paper_cell, with_paper
from lugpi_cli.evaluation.significance import MARKER


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


def _pct(value: float | None, digits: int) -> str:
    return "-" if value is None or value != value else f"{100 * value:.{digits}f}%"


def probe_tables(space: str, k: int, by_split: dict[str, dict], label_names: list[str]) -> Group:
    """Accuracy beside chance per split, then per-class accuracy: one row per class (names kept whole)."""
    summary = Table("split", "n", "kNN accuracy", "chance", title=f"{space}, k={k}", title_justify="left")
    for split, r in by_split.items():
        summary.add_row(split, f"{r['n']:,}", _pct(r["accuracy"], 2), _pct(r["chance"], 2))
    per_class = Table("class", *by_split, title="kNN accuracy per class", title_justify="left")
    for name in label_names:
        per_class.add_row(name, *(_pct(r["per_class"].get(name), 1) for r in by_split.values()))
    per_class.columns[0].overflow = "fold"
    for table in (summary, per_class):
        for column in table.columns[1:]:
            column.justify = "right"
    return Group(summary, per_class)


def counts_table(splits: dict, label_names: list[str]) -> Table:
    """One row per class (names kept whole, however many classes), one column per split."""
    table = Table("label", *splits, box=None)
    for name in label_names:
        table.add_row(name, *(f"{entry['labels'][name]:,}" for entry in splits.values()))
    table.add_section()
    table.add_row("[bold]samples[/]", *(f"{entry['samples']:,}" for entry in splits.values()))
    table.add_row("distinct prompts", *(f"{entry['distinct_prompts']:,}" for entry in splits.values()))
    for column in table.columns[1:]:
        column.justify = "right"
    table.columns[0].overflow = "fold"  # a name too long for the terminal wraps, never is cut
    return table


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
