"""``lugpi train-teacher DATASET --encoder clip``: the multimodal teacher, its outputs cached."""

from __future__ import annotations

import typer

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import DatasetArg, JsonFlag, params_options, stage_dataset_options
from lugpi_cli.stages import teacher


def train_teacher_command(dataset: DatasetArg, params: dict | None = None, data_options: dict | None = None,
                          json_out: JsonFlag = False) -> None:
    """Train the multimodal (text + image) teacher and cache its outputs.

    Text tokens and the cached image tokens pass through one transformer block
    (8 heads); the text and image CLS tokens feed a 768-unit MLP whose hidden
    layer is the teacher embedding e_T. After training, the teacher runs once
    over every split and its logits and e_T are written to the store.
    """
    from lugpi_cli.commands.training_common import emit_stage
    from lugpi_cli.progress import TrainingProgress

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    p = teacher.Params.from_mapping(params, dataset={"name": dataset, **data_options})
    with TrainingProgress(p) as hooks:
        result = teacher.run(state.space, p, hooks)
    emit_stage(result)


def register(app: typer.Typer) -> None:
    app.command("train-teacher")(stage_dataset_options(params_options(teacher.Params)(train_teacher_command)))
