"""``lugpi train-teacher DATASET --encoder clip``: the multimodal teacher, its outputs cached."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import (
    DatasetArg,
    InitOpt,
    JsonFlag,
    TextModelOpt,
    dataset_options,
    training_options,
)
from lugpi_cli.commands.training_common import (
    TrainingProgress,
    dataset_and_request,
    emit_stage,
)
from lugpi_cli.data.snapshot import DatasetRequest
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.multinode import open_training_store


def train_teacher_command(
    dataset: DatasetArg,
    encoder: Annotated[str, typer.Option("--encoder", "-e", help="Whose cached features: clip, vit, or the "
                                         "model given to `lugpi embed --encoder`.")] = "clip",
    modality: Annotated[Optional[str], typer.Option("--modality", help="both (text + image, the LUGPI teacher; "
                                                    "the default), text (fine-tuned text model), image (classifier "
                                                    "on cached features; the default of --arch armada).",
                                                    show_default=False)] = None,
    text_model: TextModelOpt = DEFAULT_TEXT_MODEL,
    init: InitOpt = "pretrained",
    heads: Annotated[int, typer.Option("--heads", min=1, help="Attention heads of the fusion block.")] = 8,
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="Width of e_T (the MLP's hidden layer).")] = 768,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout of the fusion block and head.")] = 0.1,
    arch: Annotated[str, typer.Option("--arch", help="fusion (the LUGPI teacher) or armada (ARMADA's teacher-side "
                                      "aligner on image vectors, e.g. --encoder vae-latent; implies "
                                      "--modality image).")]
    = "fusion",
    modality_dropout: Annotated[float, typer.Option("--modality-dropout", help="Drop the image or the text of a "
                                                    "sample with this probability while training, so the teacher "
                                                    "also predicts from one modality (for --method msd).")] = 0.0,
    proj_dim: Annotated[Optional[int], typer.Option("--proj-dim", min=1, help="ARMADA: width of the orthogonal "
                                                    "projection (default min(D, 768)).")] = None,
    gamma: Annotated[float, typer.Option("--gamma", help="ARMADA: weight of the auxiliary classifier's CE.")]
    = 1.0,
    data_options: dict | None = None,
    training: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Train the multimodal (text + image) teacher and cache its outputs.

    Text tokens and the cached image tokens pass through one transformer block
    (8 heads); the text and image CLS tokens feed a 768-unit MLP whose hidden
    layer is the teacher embedding e_T. After training, the teacher runs once
    over every split and its logits and e_T are written to the store.
    """
    from lugpi_cli.training.stages import TeacherSpec, teacher_modality, train_teacher

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    store = open_training_store(state)  # multi-node: read-only except on rank 0
    request = DatasetRequest(dataset, **data_options)
    ds, described = dataset_and_request(request, store)
    spec = TeacherSpec(modality=teacher_modality(modality, arch), text_model=text_model, encoder=encoder, init=init,
                       hidden=hidden, heads=heads, dropout=dropout, arch=arch, modality_dropout=modality_dropout,
                       proj_dim=proj_dim, gamma=gamma)
    cfg, device = training["config"], training["device"]
    runtime.resolve_device(device)
    with TrainingProgress(cfg) as hooks:
        result = train_teacher(store, state.runs_path, ds, spec, cfg, dataset_request=described, run=training["run"],
                               force=training["force"], device=device, hooks=hooks)
    emit_stage(result)


def register(app: typer.Typer) -> None:
    app.command("train-teacher")(training_options(dataset_options(train_teacher_command)))
