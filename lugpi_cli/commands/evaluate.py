"""``lugpi evaluate RUN...``: metrics, paired significance and agreement, as the paper's tables."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag, params_options
from lugpi_cli.reports.tables import render_comparison, render_json_table  # noqa: F401 - `lugpi run` prints one
from lugpi_cli.stages import evaluate


def evaluate_command(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run directories or names (default: every finished "
                                                        "run of the workspace).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table as Markdown (for papers).")] = False,
    params: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Compare runs: metrics, McNemar / Cochran's Q significance, teacher-student agreement."""
    state = console.use_json(json_out)
    result = evaluate.run(state.space, evaluate.Params.from_mapping({**params, "runs": runs or ()}))

    def render(out: Console) -> None:
        if markdown:
            out.print(result.comparison.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        else:
            render_comparison(result.comparison, out)

    console.emit(result.to_json(), render)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(params_options(evaluate.Params)(evaluate_command))
