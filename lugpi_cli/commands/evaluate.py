"""``lugpi evaluate RUN...``: metrics, paired significance and agreement, as the paper's tables."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli.commands.options import JsonFlag, params_options
from lugpi_cli.commands.stage_call import call_stage
from lugpi_cli.reports.tables import render_comparison
from lugpi_cli.stages import evaluate


def evaluate_command(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run directories or names (default: every finished "
                                                        "run of the workspace).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table as Markdown (for papers).")] = False,
    params: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Compare runs: metrics, McNemar / Cochran's Q significance, teacher-student agreement."""
    def render(out: Console, result: evaluate.Result) -> None:
        if markdown:
            out.print(result.comparison.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        else:
            render_comparison(result.comparison, out)

    call_stage(evaluate, {**params, "runs": runs or ()}, json_out=json_out, render=render)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(params_options(evaluate.Params)(evaluate_command))
