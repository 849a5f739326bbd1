"""``lugpi run RECIPE.toml``: a whole experiment, stage by stage, resumable; ``--dry-run`` plans it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.recipe import execute, load_recipe, plan


def run_command(
    recipe: Annotated[Path, typer.Argument(help="A TOML recipe (see recipes/).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan: stages, commands, runs, what is "
                                          "cached and what would be computed. Does nothing.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run a recipe: generate, embed, teachers, students, ablation and evaluation in order.

    Every key is checked before any work starts; every stage reuses what the
    store and earlier runs hold, so an interrupted recipe resumes.
    """
    state = console.use_json(json_out)
    parsed = load_recipe(recipe)
    if dry_run:
        rows = plan(parsed, state)

        def render(out: Console) -> None:
            out.print(f"[bold]{parsed.title}[/] ({recipe})")
            table = Table("stage", "id", "status", "run", box=None)
            for row in rows:
                table.add_row(row["stage"], row["id"], row["status"], row["run"] or "")
            out.print(table)
            for row in rows:
                out.print(f"  {row['command']}", markup=False, highlight=False, soft_wrap=True)

        console.emit({"recipe": str(recipe), "title": parsed.title, "plan": rows}, render)
        return
    bar = console.ProgressBar("recipe", unit="stage")
    with bar:
        result = execute(parsed, state, log=bar.log)

    def render(out: Console) -> None:
        out.print(f"[bold]{parsed.title}[/]: {len(result['results'])} stages done.")
        for id_, run in result["runs"].items():
            out.print(f"  {id_:24} {state.runs_path / run}")
        evaluation = next((r for k, r in result["results"].items() if k.startswith("evaluate")), None)
        if evaluation:
            from lugpi_cli.commands.evaluate import render_json_table

            render_json_table(evaluation, out)

    console.emit(result, render)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
