"""``lugpi ablate --grid alpha=0,1,3 --grid beta=0,1 --seeds 3``: a grid of distill runs, analysed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import JsonFlag, params_options, stage_dataset_options
from lugpi_cli.stages import ablate

DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="Data set for grids that need no teacher.")]


def ablate_command(dataset: DatasetOpt = None, params: dict | None = None, data_options: dict | None = None,
                   json_out: JsonFlag = False) -> None:
    """Run a grid of distill settings and analyse it (mean ± std, best setting, ANOVA, heatmap).

    Every cell is an ordinary `lugpi distill` run, so an interrupted grid resumes
    where it stopped and a cell already run by hand is reused. Teacher outputs
    and features come from the store: no cell generates, embeds or runs a teacher.
    """
    from lugpi_cli.commands.training_common import render_analysis

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    values = {**params, "limit": data_options["limit"]} if dataset is None else params
    p = ablate.Params.from_mapping(values, dataset={"name": dataset, **data_options} if dataset else None)
    bar = console.ProgressBar("cells", unit="cell")
    factors: list[str] = []

    def start(cells: int, out_dir: Path, names: list[str]) -> None:
        factors.extend(names)
        bar.kept = f"grid cells finished (in {out_dir / 'results.csv'})"
        bar.start(cells)

    def done(i: int, row: dict[str, Any]) -> None:
        shown = " ".join(f"{k}={row[k]}" for k in factors)
        bar.log(f"{shown} seed={row['seed']}: {row['status']}, validation {row['validation_accuracy']:.4f}, "
                f"test {row['test_accuracy']:.4f}")
        bar.advance(1)

    with bar:
        result = ablate.run(state.space, p, on_cell=done, on_start=start, verbose=state.verbose)

    def render(out: Console) -> None:
        shown = result.to_json()
        render_analysis(out, result.analysis, result.factors)
        out.print(f"{shown['trained']} cell(s) trained, {shown['reused']} reused.  Files in {result.out_dir}:")
        for path in shown["files"]:
            out.print(f"  {path}")

    console.emit(result.to_json(), render)


def register(app: typer.Typer) -> None:
    app.command("ablate")(stage_dataset_options(params_options(ablate.Params, skip=ablate.NOT_PER_CELL)
                                                (ablate_command)))
