"""Stage 3a, ``train-teacher``: the multimodal teacher (or a text-only / image-only baseline), its outputs cached.

``plan`` derives the run name and the teacher-output fingerprint without loading a model. ``run`` fits the
teacher, then runs it once in eval mode over every split and writes its outputs (logits and the
embedding e_T, plus per-modality logits or ARMADA's auxiliary outputs) to the store under
``record_key(output fingerprint, sample id)``; the same call twice trains once, and a finished run whose
outputs were dropped re-caches them from its saved model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL, alias_help
from lugpi_cli.stages.common import INIT_CHOICES, DatasetParams, TrainingParams, dataset_params
from lugpi_cli.stages.params import opt
from lugpi_cli.stages.runs import Hooks, StageResult, encoder_label, run_status
from lugpi_cli.training.specs import TeacherSpec, teacher_config, teacher_modality, teacher_output_fingerprint
from lugpi_cli.workspace import Workspace

TEXT_MODEL_HELP = "Text model id or directory (AutoModel); alias " + alias_help("text model") + "."
INIT_HELP = "pretrained, or xavier (Glorot normal; Algorithm 1, line 9)."


@dataclass(frozen=True)
class Params(TrainingParams):
    STAGE = "teacher"

    dataset: DatasetParams | None = None
    encoder: str = opt("clip", "Whose cached features: clip, vit, or the model given to `lugpi embed --encoder`.",
                       short="-e")
    modality: Optional[str] = opt(None, "both (text + image, the LUGPI teacher; the default), text (fine-tuned "
                                  "text model), image (classifier on cached features; the default of --arch "
                                  "armada).", show_default=False)
    text_model: str = opt(DEFAULT_TEXT_MODEL, TEXT_MODEL_HELP)
    init: str = opt("pretrained", INIT_HELP)
    heads: int = opt(8, "Attention heads of the fusion block.", min=1)
    hidden: int = opt(768, "Width of e_T (the MLP's hidden layer).", min=1)
    dropout: float = opt(0.1, "Dropout of the fusion block and head.")
    arch: str = opt("fusion", "fusion (the LUGPI teacher) or armada (ARMADA's teacher-side aligner on image "
                    "vectors, e.g. --encoder vae-latent; implies --modality image).")
    modality_dropout: float = opt(0.0, "Drop the image or the text of a sample with this probability while "
                                  "training, so the teacher also predicts from one modality (for --method msd).")
    proj_dim: Optional[int] = opt(None, "ARMADA: width of the orthogonal projection (default min(D, 768)).", min=1)
    gamma: float = opt(1.0, "ARMADA: weight of the auxiliary classifier's CE.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))

    def check(self) -> None:
        if self.dataset is None:
            raise UserError("the teacher has no data set", "Name one: lugpi train-teacher DATASET.")
        if self.init not in INIT_CHOICES:
            raise UserError(f"unknown --init {self.init!r}", "Choose pretrained or xavier.")
        self.spec()
        self.check_training()

    def spec(self) -> TeacherSpec:
        """The checked teacher spec (``modality`` resolved from ``arch`` when not given)."""
        return TeacherSpec(modality=teacher_modality(self.modality, self.arch), text_model=self.text_model,
                           encoder=self.encoder, init=self.init, hidden=self.hidden, heads=self.heads,
                           dropout=self.dropout, arch=self.arch, modality_dropout=self.modality_dropout,
                           proj_dim=self.proj_dim, gamma=self.gamma).check()


@dataclass
class Plan:
    status: str
    run_name: str | None
    output_fingerprint: str | None = None
    reads_text_model: bool = True  # a GPU-time estimate counts runs that fine-tune a text model

    @property
    def to_train(self) -> bool:
        return self.run_name is not None and not self.status.startswith("done")


def plan(ws: Workspace, params: Params, features: dict[str, Any] | None = None) -> Plan:
    """The run name, output fingerprint and state of the teacher ``params`` describe (no model is loaded).

    ``features`` is the embed pointer an earlier step of the same plan will record (else the workspace's).
    """
    from lugpi_cli.stages.data import planned_dataset
    from lugpi_cli.training.runs import run_name

    ds = planned_dataset(ws, params.dataset)
    spec = params.spec()
    if spec.modality != "text":
        label = encoder_label(spec.encoder)
        if features is not None and "encoder_fingerprint" not in features:
            features = features.get(label)  # {label: pointer} of every planned embed
        features = features if features is not None else ws.pointer("embed", ds.name, label)
        if features is None:
            return Plan(f"needs {label!r} features (no embed stage for them): cannot plan", None,
                        reads_text_model=spec.modality != "image")
    config = teacher_config(ds.fingerprint(), spec, params.train_config(resolve_workers=False),
                            features if spec.modality != "text" else None)
    name = params.run or run_name("teacher", ds.name, config)
    run = ws.run(name)
    status = run_status(run)
    store = ws.existing_store()
    if status.startswith("done") and store is not None:
        from lugpi_cli.training.recache import missing_outputs

        missing = missing_outputs(store, run, ds)
        status = f"done: {missing} cached outputs missing, re-cached from its saved model" if missing else status
    return Plan(status, name, teacher_output_fingerprint(config, name), spec.modality != "image")


def run(ws: Workspace, params: Params, hooks: Hooks | None = None) -> StageResult:
    """Train (or reuse, or re-cache) the teacher and cache its outputs for every sample of every split."""
    from lugpi_cli import runtime
    from lugpi_cli.stages.data import dataset_and_request

    # 1. resolve: the device, the store this run writes, the data set
    runtime.resolve_device(params.device)
    store = ws.open_training_store()  # multi-node: read-only except on rank 0
    ds, described = dataset_and_request(params.dataset, store)
    return train(store, ws.runs_path, ds, params.spec(), params.train_config(), dataset_request=described,
                 run=params.run, force=params.force, device=params.device, hooks=hooks)


def train(store, runs_dir: Path, ds, spec: TeacherSpec, cfg, *, dataset_request: dict[str, Any],
          run: str | None = None, force: bool = False, device: str = "auto", hooks: Hooks | None = None
          ) -> StageResult:
    """The teacher of a loaded data set: check -> plan -> open the run -> build -> fit -> write outputs."""
    from lugpi_cli.runtime import process_info
    from lugpi_cli.training import stages as fitting
    from lugpi_cli.training.runs import Run, checked_run_name, run_name

    # 2. check: the spec, the training config, the features and the text model it reads
    spec.check()
    cfg.check()
    features = _features(store, ds, spec)
    if spec.modality in ("both", "text"):
        fitting.check_text_model(spec.text_model)
    # 3. plan: the config whose hash names the run, and the fingerprint its outputs are keyed by
    config = teacher_config(ds.fingerprint(), spec, cfg, features)
    the_run = Run(runs_dir / (checked_run_name(run) if run is not None else run_name("teacher", ds.name, config)))
    output_fp = teacher_output_fingerprint(config, the_run.name)
    # 4. open the run: reuse a finished one (re-caching outputs `store gc` dropped), else start it
    reused = _reuse(store, the_run, ds, cfg, device, force, config)
    if reused is not None:
        return reused
    main = process_info().is_main
    with fitting.guard(the_run):
        if main:
            the_run.start("teacher", config, extra=_run_info(ds, spec, dataset_request, features, output_fp))
        # 5. build: the data (features checked for every split), the model, its objective
        splits, data_for = _data(store, ds, spec, features)
        model, objective, collate, tokenizer = _build(ds, spec, cfg, data_for(splits["train"]))
        # 6. fit
        result = fitting.fit_run(the_run, objective, data_for(splits["train"]), data_for(splits["validation"]),
                                 collate, cfg, device, hooks)
        if not main:
            return StageResult(the_run, "trained", {}, output_fp)
        # 7. write outputs: predictions and metrics per split, every output into the store
        metrics = _write(store, the_run, ds, splits, model, collate, cfg, data_for, spec, output_fp, config)
        # 8. mark done (model, metrics and card first)
        fitting.finish_run(the_run, metrics, result, store, lambda: model.cpu().save(the_run.model_dir, tokenizer))
    return StageResult(the_run, "trained", metrics, output_fp)


def _features(store, ds, spec: TeacherSpec) -> dict[str, Any] | None:
    """The ``embed`` pointer of the features an image-reading teacher reads (token sequences for fusion)."""
    from lugpi_cli.lineage import feature_source

    if spec.modality == "text":
        return None
    features = feature_source(store, ds.name, encoder_label(spec.encoder))
    if spec.modality == "both" and features.get("pooled_only"):
        raise UserError(f"the {spec.encoder!r} features of {ds.name} were embedded with --pooled-only",
                        f"The fusion teacher reads token sequences: run `lugpi embed {ds.name} --encoder "
                        f"{spec.encoder}` without --pooled-only.")
    return features


def _reuse(store, run, ds, cfg, device: str, force: bool, config: dict[str, Any]) -> StageResult | None:
    from lugpi_cli.runtime import process_info
    from lugpi_cli.training import stages as fitting
    from lugpi_cli.training.recache import missing_outputs, recache_teacher

    reused = fitting.existing_run(run, force, config)
    if reused is None:
        return None
    missing = missing_outputs(store, run, ds)  # e.g. dropped by `store gc`: re-cached, not retrained
    if missing and process_info().is_main:
        with fitting.guard(run):
            return recache_teacher(store, run, ds, cfg, device, missing)
    return reused


def _run_info(ds, spec: TeacherSpec, dataset_request: dict[str, Any], features, output_fp: str) -> dict[str, Any]:
    """What config.json records beside the hashed config."""
    from lugpi_cli.training.specs import _teacher_fields

    uses_text, uses_image = spec.modality in ("both", "text"), spec.modality in ("both", "image")
    return {"dataset": {**dataset_request, "name": ds.name, "fingerprint": ds.fingerprint()},
            "labels": list(ds.label_names), "modality": spec.modality,
            "text_model": spec.text_model if uses_text else None, "encoder": spec.encoder if uses_image else None,
            "output_fingerprint": output_fp, "feature_source": features, "arch": spec.arch,
            "modality_dropout": spec.modality_dropout, "teacher_fields": _teacher_fields(spec)}


def _data(store, ds, spec: TeacherSpec, features):
    """The splits and ``data_for(samples)``; refuses samples of any split without features."""
    from lugpi_cli.lineage import feature_keys
    from lugpi_cli.training.data import TrainingData
    from lugpi_cli.training.lifecycle import split_samples

    splits = split_samples(ds)
    if not splits["train"] or not splits["validation"]:
        raise UserError(f"{ds.name} needs train and validation samples to train a teacher")
    feature_field = "tokens" if spec.modality == "both" else "pooled"

    def data_for(samples):
        keys = feature_keys(features, samples) if features else None
        return TrainingData(samples, store, feature_keys=keys, feature_field=feature_field)

    for split, samples in splits.items():
        keys = data_for(samples).feature_keys if (features and samples) else []
        missing = sum(not have for have in store.contains_many("features", keys)) if keys else 0
        if missing:
            raise UserError(f"{missing} {split} sample(s) of {ds.name} have no {spec.encoder!r} features "
                            "(the teacher's outputs are cached for every split)",
                            f"Run `lugpi generate {ds.name}` and `lugpi embed {ds.name} --encoder "
                            f"{spec.encoder}` for all splits.")
    return splits, data_for


def _build(ds, spec: TeacherSpec, cfg, train_data):
    """(model, objective, collate, tokenizer): the teacher is seeded by ``--seed`` whatever ran before."""
    import numpy as np

    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import build_teacher
    from lugpi_cli.training.data import Collator
    from lugpi_cli.training.loop import seed_everything
    from lugpi_cli.training.objectives import ArmadaTeacherLoss, Objective
    from lugpi_cli.training.lifecycle import tokenizer_for

    uses_text = spec.modality in ("both", "text")
    image_dim = int(np.atleast_2d(train_data[0]["image"]).shape[-1]) if spec.modality != "text" else None
    tokenizer = tokenizer_for(spec.text_model, cfg.max_length) if uses_text else None
    seed_everything(cfg.seed)
    model = build_teacher(spec.modality, num_labels=ds.num_labels, text_model=spec.text_model if uses_text else None,
                          image_dim=image_dim, init=spec.init, labels=list(ds.label_names), num_heads=spec.heads,
                          hidden=spec.hidden, dropout=spec.dropout, arch=spec.arch,
                          modality_dropout=spec.modality_dropout, proj_dim=spec.proj_dim)
    loss = ArmadaTeacherLoss(spec.gamma) if spec.arch == "armada" else build_loss("lugpi", alpha=0.0, beta=0.0)
    return model, Objective(model, loss), Collator(tokenizer, cfg.max_length), tokenizer


def _write(store, run, ds, splits, model, collate, cfg, data_for, spec: TeacherSpec, output_fp: str,
           config: dict[str, Any]) -> dict[str, Any]:
    from lugpi_cli.training.recache import write_outputs
    from lugpi_cli.training.lifecycle import write_outputs as predictions

    device = next(model.parameters()).device
    metrics, outputs = predictions(run, ds, splits, model, collate, cfg, device, data_for,
                                   drops=spec.modality_dropout > 0)
    write_outputs(store, output_fp, {"stage": "teacher", "run": run.name, **config}, splits, outputs)
    return metrics
