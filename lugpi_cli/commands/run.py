"""``lugpi run RECIPE.toml``: a whole experiment, stage by stage, resumable; ``--dry-run`` plans it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.cost import describe
from lugpi_cli.recipe import execute, gpu_estimate, load_recipe, plan


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
        context: dict = {}
        rows = plan(parsed, state, context)
        estimate = gpu_estimate(context)
        generator = _generator(context)

        def render(out: Console) -> None:
            out.print(f"[bold]{parsed.title}[/] ({recipe})")
            table = Table("stage", "id", "status", "epochs", "run", box=None)
            for row in rows:
                table.add_row(row["stage"], row["id"], row["status"], str(row["epochs"] or ""), row["run"] or "")
            out.print(table)
            for row in rows:
                out.print(f"  {row['command']}", markup=False, highlight=False, soft_wrap=True)
            if generator is not None:
                out.print(f"Generator: {generator['model']} (fingerprint {generator['fingerprint'][:16]})",
                          markup=False, highlight=False)
            if estimate is not None:
                out.print(describe(estimate), markup=False, highlight=False, soft_wrap=True)
            if parsed.paper:
                _render_paper(parsed, out)

        console.emit({"recipe": str(recipe), "title": parsed.title, "plan": rows, "generator": generator,
                      "gpu_estimate": estimate,
                      "paper": parsed.paper}, render)
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


def _generator(context: dict) -> dict | None:
    """The recipe's generator as fingerprinted: the resolved hub id (an alias resolved) or the directory."""
    from lugpi_cli.hub import model_identity

    found = context.get("images") and context.get("generator")
    if not found:
        return None
    identity = model_identity(found["model"])
    return {"model": identity["model"] if identity["model"] != "local" else found["model"],
            "fingerprint": found["fingerprint"]}


def _render_paper(recipe, out: Console) -> None:
    """The recipe's [paper] table: the numbers `lugpi evaluate --paper` prints beside the measured ones."""
    from lugpi_cli.evaluation.compare import paper_cell

    datasets = [str(recipe.dataset["name"])]
    table = Table("paper row", *datasets, title="the paper (‡ significant)",
                  title_justify="left", box=None)
    for id_, value in recipe.paper.items():
        table.add_row(id_, *(paper_cell(value, d) for d in datasets))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
