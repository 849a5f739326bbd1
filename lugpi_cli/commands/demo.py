"""``lugpi demo``: the whole method offline on a CPU, with tiny models and a toy data set."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import JsonFlag


def demo_command(
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs of every training run (tiny models).")] = 8,
    json_out: JsonFlag = False,
) -> None:
    """Run the whole method offline on a CPU with tiny models, in about two minutes.

    Generate, embed, teachers, students, a 2x2 ablation, evaluation and a
    report, with tiny models built from configs and a toy data set written for
    the project. A second run reuses everything.
    """
    from lugpi_cli import demo
    from lugpi_cli.commands.run import stage_progress
    from lugpi_cli.recipe import load_recipe
    from lugpi_cli.recipe_run import execute
    from lugpi_cli.reports.report import write_report
    from lugpi_cli.training.runs import Run

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    started = time.perf_counter()
    root = state.workspace / "demo"
    models = demo.build_models(root / "models")
    recipe_path = root / "demo.toml"
    recipe_path.write_text(demo.recipe_text(models, epochs))
    recipe = load_recipe(recipe_path)
    bar = console.ProgressBar("demo", unit="stage")
    with bar:
        bar.start(len(recipe.steps))
        result = execute(recipe, state.space, progress=stage_progress(bar) if state.verbose else _count(bar),
                         log=bar.log)
    runs = {id_: Run(state.runs_path / name) for id_, name in result["runs"].items()}
    ablation = result["results"]["ablate:ablate"]["out_dir"]
    report = write_report(state.open_store(), state.workspace / "reports" / "demo", teacher=runs["teacher"],
                          baseline=runs["baseline"], students=[runs["lugpi"]], ablation=ablation)
    evaluation = result["results"]["evaluate:evaluate"]
    stages = {k: v.get("status") or ("generated %s" % v.get("generated") if "generated" in v else "") for k, v in
              result["results"].items()}
    summary = {"seconds": round(time.perf_counter() - started, 1), "recipe": str(recipe_path), "runs": result["runs"],
               "evaluation": evaluation, "ablation": ablation, "report": report.files, "stages": stages}

    def render(out: Console) -> None:
        from lugpi_cli.reports.tables import render_json_table

        render_json_table(evaluation, out)
        out.print(f"Ablation (2x2 loss terms): {ablation}")
        out.print(f"Report: {report.files.get('html')}  (contact sheet, learning curves, densities, heatmap)")
        out.print(f"Done in {summary['seconds']:.0f} s; run it again and everything is reused.")
        out.print("[bold]Tiny untrained models show the mechanics, not the method's accuracy.[/] For a real "
                  "experiment: lugpi run recipes/quickstart.toml  (paper tables: recipes/paper/)")

    console.emit(summary, render)


def _count(bar):
    """Quiet steps (no bars of their own): the demo's bar advances once per step."""
    import contextlib

    @contextlib.contextmanager
    def progress(step, params):
        yield {}
        bar.advance(1)

    return progress


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
