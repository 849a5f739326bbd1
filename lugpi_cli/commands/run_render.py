"""What `lugpi run` prints: the plan of a dry run, the runs and evaluation of a finished recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lugpi_cli.cost import describe


def render_plan(out: Console, recipe, result: dict[str, Any]) -> None:
    out.print(f"[bold]{recipe.title}[/] ({result['recipe']})")
    table = Table("stage", "id", "status", "epochs", "run", box=None)
    for row in result["plan"]:
        table.add_row(row["stage"], row["id"], row["status"], str(row["epochs"] or ""), row["run"] or "")
    out.print(table)
    for row in result["plan"]:
        out.print(f"  {row['command']}", markup=False, highlight=False, soft_wrap=True)
    generator = result["generator"]
    if generator is not None:
        out.print(f"Generator: {generator['model']} (fingerprint {generator['fingerprint'][:16]})",
                  markup=False, highlight=False)
    if result["gpu_estimate"] is not None:
        out.print(describe(result["gpu_estimate"]), markup=False, highlight=False, soft_wrap=True)
    if recipe.paper:
        render_paper(recipe, out)


def render_paper(recipe, out: Console) -> None:
    """The recipe's [paper] table: the numbers `lugpi evaluate --paper` prints beside the measured ones."""
    from lugpi_cli.evaluation.compare import paper_cell

    datasets = [str(recipe.dataset.name)]
    table = Table("paper row", *datasets, title="the paper (‡ significant)", title_justify="left", box=None)
    for id_, value in recipe.paper.items():
        table.add_row(id_, *(paper_cell(value, d) for d in datasets))
    out.print(table)


def render_result(out: Console, recipe, result: dict[str, Any], runs_path: Path) -> None:
    out.print(f"[bold]{recipe.title}[/]: {len(result['results'])} stages done.")
    for id_, run in result["runs"].items():
        out.print(f"  {id_:24} {runs_path / run}")
    evaluation = next((r for k, r in result["results"].items() if k.startswith("evaluate")), None)
    if evaluation:
        from lugpi_cli.reports.tables import render_json_table

        render_json_table(evaluation, out)
