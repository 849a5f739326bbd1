"""``lugpi train-teacher DATASET --encoder clip``: the multimodal teacher, its outputs cached."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import (
    BatchSizeOpt, DataOpt, DatasetArg, DeviceOpt, EarlyStoppingOpt, EpochsOpt, ForceOpt, GradAccumOpt, IdColOpt,
    InitOpt, JsonFlag, LabelColOpt, LimitOpt, LrOpt, MaxLengthOpt, MaxStepsOpt, PrecisionOpt, PromptColOpt, RunOpt,
    SeedOpt, SplitColOpt, TextColOpt, TextModelOpt, WarmupOpt, WeightDecayOpt, WorkersOpt,
)
from lugpi_cli.commands.training_common import TrainingProgress, dataset_and_request, emit_stage, resolve_workers
from lugpi_cli.data.snapshot import DatasetRequest
from lugpi_cli.training.loop import TrainConfig
from lugpi_cli.training.stages import DEFAULT_TEXT_MODEL, TeacherSpec, train_teacher


def train_teacher_command(
    dataset: DatasetArg,
    encoder: Annotated[str, typer.Option("--encoder", "-e", help="Whose cached features: clip, vit, or the "
                                         "model given to `lugpi embed --encoder`.")] = "clip",
    modality: Annotated[str, typer.Option("--modality", help="both (text + image, the LUGPI teacher), text "
                                          "(fine-tuned text model), image (classifier on cached features).")]
    = "both",
    text_model: TextModelOpt = DEFAULT_TEXT_MODEL,
    init: InitOpt = "pretrained",
    epochs: EpochsOpt = 3,
    lr: LrOpt = 5e-5,
    batch_size: BatchSizeOpt = 14,
    grad_accum: GradAccumOpt = 1,
    max_steps: MaxStepsOpt = None,
    max_length: MaxLengthOpt = 512,
    early_stopping: EarlyStoppingOpt = None,
    warmup: WarmupOpt = 0.0,
    weight_decay: WeightDecayOpt = 0.01,
    seed: SeedOpt = 0,
    heads: Annotated[int, typer.Option("--heads", min=1, help="Attention heads of the fusion block.")] = 8,
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="Width of e_T (the MLP's hidden layer).")] = 768,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout of the fusion block and head.")] = 0.1,
    arch: Annotated[str, typer.Option("--arch", help="fusion (the LUGPI teacher) or armada (ARMADA's teacher-side "
                                      "aligner on image vectors, e.g. --encoder vae-latent --modality image).")]
    = "fusion",
    modality_dropout: Annotated[float, typer.Option("--modality-dropout", help="Drop the image or the text of a "
                                                    "sample with this probability while training, so the teacher "
                                                    "also predicts from one modality (for --method msd).")] = 0.0,
    proj_dim: Annotated[Optional[int], typer.Option("--proj-dim", min=1, help="ARMADA: width of the orthogonal "
                                                    "projection (default min(D, 768)).")] = None,
    gamma: Annotated[float, typer.Option("--gamma", help="ARMADA: weight of the auxiliary classifier's CE.")]
    = 1.0,
    run: RunOpt = None,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
    mixed_precision: PrecisionOpt = "auto",
    workers: WorkersOpt = -1,
    data: DataOpt = None,
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    split_col: SplitColOpt = None,
    prompt_col: PromptColOpt = None,
    id_col: IdColOpt = None,
    limit: LimitOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Train the multimodal (text + image) teacher and cache its outputs.

    Text tokens and the cached image tokens pass through one transformer block
    (8 heads); the text and image CLS tokens feed a 768-unit MLP whose hidden
    layer is the teacher embedding e_T. After training, the teacher runs once
    over every split and its logits and e_T are written to the store.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    store = state.open_store(create=True)
    request = DatasetRequest(dataset, data, text_col, label_col, split_col, prompt_col, id_col, limit)
    ds, described = dataset_and_request(request, store)
    spec = TeacherSpec(modality=modality, text_model=text_model, encoder=encoder, init=init, hidden=hidden,
                       heads=heads, dropout=dropout, arch=arch, modality_dropout=modality_dropout, proj_dim=proj_dim,
                       gamma=gamma)
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, grad_accum=grad_accum, max_steps=max_steps,
                      max_length=max_length, early_stopping=early_stopping, warmup_ratio=warmup,
                      weight_decay=weight_decay, seed=seed, mixed_precision=mixed_precision,
                      workers=resolve_workers(workers, device))
    runtime.resolve_device(device)
    with TrainingProgress() as hooks:
        result = train_teacher(store, state.runs_path, ds, spec, cfg, dataset_request=described, run=run,
                               force=force, device=device, hooks=hooks)
    emit_stage(result)


def register(app: typer.Typer) -> None:
    app.command("train-teacher")(train_teacher_command)
