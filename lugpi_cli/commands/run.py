"""``lugpi run RECIPE.toml``: a whole experiment, stage by stage, resumable; ``--dry-run`` plans it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.recipe import load_recipe


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
    from lugpi_cli.commands.run_render import render_plan, render_result
    from lugpi_cli.recipe_run import execute, gpu_estimate, plan

    state = console.use_json(json_out)
    parsed = load_recipe(recipe)
    if dry_run:
        context: dict = {}
        rows = plan(parsed, state.space, context)
        result = {"recipe": str(recipe), "title": parsed.title, "plan": rows, "generator": _generator(context),
                  "gpu_estimate": gpu_estimate(context), "paper": parsed.paper}
        console.emit(result, lambda out: render_plan(out, parsed, result))
        return
    bar = console.ProgressBar("recipe", unit="stage")
    with bar:
        bar.start(len(parsed.steps))
        result = execute(parsed, state.space, progress=stage_progress(bar), log=bar.log)
    console.emit(result, lambda out: render_result(out, parsed, result, state.runs_path))


def stage_progress(outer=None):
    """Each recipe step's progress: the bars its command shows (``outer`` advances once per step)."""
    @contextlib.contextmanager
    def progress(step, params):
        from lugpi_cli.commands.stage_progress import stage_hooks

        with stage_hooks(step.stage, params) as hooks:
            yield hooks
        if outer is not None:
            outer.advance(1)

    return progress


def _generator(context: dict) -> dict | None:
    """The recipe's generator as fingerprinted: the resolved hub id (an alias resolved) or the directory."""
    from lugpi_cli.hub import model_identity

    found = context.get("images") and context.get("generator")
    if not found:
        return None
    identity = model_identity(found["model"])
    return {"model": identity["model"] if identity["model"] != "local" else found["model"],
            "fingerprint": found["fingerprint"]}


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
