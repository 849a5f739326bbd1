"""``lugpi report``: contact sheet, HTML page, probability densities, ablation heatmap."""

from __future__ import annotations

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag, params_options
from lugpi_cli.stages import report


def report_command(params: dict | None = None, json_out: JsonFlag = False) -> None:
    """Pictures of a study: contact sheet, HTML page, probability densities, heatmap.

    Examples the teacher gets right and the text-only model wrong, with their
    generated images (PNG contact sheet + HTML); teacher and student
    probability densities per class; the ablation heatmap.
    """
    state = console.use_json(json_out)
    result = report.run(state.space, report.Params.from_mapping(params))

    def render(out: Console) -> None:
        r = result.report
        out.print(f"Report of {result.teacher} vs {result.baseline}: {r.panels} example(s) ({r.selection}).")
        for name, path in r.files.items():
            out.print(f"  {name:16} {path}")

    console.emit(result.to_json(), render)


def register(app: typer.Typer) -> None:
    app.command("report")(params_options(report.Params)(report_command))
