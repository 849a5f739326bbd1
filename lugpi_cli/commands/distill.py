"""``lugpi distill [--teacher RUN] --alpha 3 --beta 1 --tau 8``: a text-only student from cached teacher outputs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import JsonFlag, params_options, stage_dataset_options
from lugpi_cli.stages import student
from lugpi_cli.stages.student import flag_values, loss_options, method_defaults, method_flag_table  # noqa: F401

DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="Data set, when no teacher is used (default: "
                                                   "the teacher's).")]


def distill_command(dataset: DatasetOpt = None, params: dict | None = None, data_options: dict | None = None,
                    json_out: JsonFlag = False) -> None:
    """Distil a text-only student from the cached teacher outputs.

    Loss (Eq. 2): CE(y, s) + alpha * CE(t, s) + beta * ||e_T - e_S||^2, t the
    teacher's probabilities softened by tau. --alpha 0 --beta 0 is the plain
    fine-tuned baseline and needs no teacher.
    """
    from lugpi_cli.commands.training_common import emit_stage
    from lugpi_cli.progress import TrainingProgress

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    values, named = student_mapping(dataset, params, data_options)
    p = student.Params.from_mapping(values, dataset=named)
    with TrainingProgress(p) as hooks:
        result = student.run(state.space, p, hooks)
    emit_stage(result)


def student_mapping(dataset: str | None, params: dict, data_options: dict) -> tuple[dict, dict | None]:
    """The parameters and the data set of ``--dataset NAME`` (``--limit`` also limits the teacher's data set)."""
    if dataset is None:
        return {**params, "limit": data_options["limit"]}, None
    return params, {"name": dataset, **data_options}


def register(app: typer.Typer) -> None:
    app.command("distill")(stage_dataset_options(params_options(student.Params)(distill_command)))
