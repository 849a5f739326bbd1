"""``lugpi ablate --grid alpha=0,1,3 --grid beta=0,1 --seeds 3``: a grid of distill runs, analysed."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli.commands.options import JsonFlag, params_options, stage_dataset_options
from lugpi_cli.commands.distill import student_mapping
from lugpi_cli.commands.stage_call import call_stage
from lugpi_cli.stages import ablate

DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="Data set for grids that need no teacher.")]


def ablate_command(dataset: DatasetOpt = None, params: dict | None = None, data_options: dict | None = None,
                   json_out: JsonFlag = False) -> None:
    """Run a grid of distill settings and analyse it (mean ± std, best setting, ANOVA, heatmap).

    Every cell is an ordinary `lugpi distill` run, so an interrupted grid resumes
    where it stopped and a cell already run by hand is reused. Teacher outputs
    and features come from the store: no cell generates, embeds or runs a teacher.
    """
    values, named = student_mapping(dataset, params, data_options)
    call_stage(ablate, values, json_out=json_out, dataset=named, render=render)


def render(out: Console, result: ablate.Result) -> None:
    from lugpi_cli.reports.tables import render_analysis

    shown = result.to_json()
    render_analysis(out, result.analysis, result.factors)
    out.print(f"{shown['trained']} cell(s) trained, {shown['reused']} reused.  Files in {result.out_dir}:")
    for path in shown["files"]:
        out.print(f"  {path}")


def register(app: typer.Typer) -> None:
    app.command("ablate")(stage_dataset_options(params_options(ablate.Params, skip=ablate.NOT_PER_CELL)
                                                (ablate_command)))
