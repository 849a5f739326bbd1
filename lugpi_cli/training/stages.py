"""Stage 3 of LUGPI (Algorithm 1): train the teacher, cache its outputs, distil the student.

``train_teacher`` fits the multimodal teacher (or a text-only / image-only
baseline), then runs it once in eval mode over every split and writes its
outputs — logits and the 768-d embedding e_T — to the store under
``record_key(teacher fingerprint, sample id)``. ``distill`` fits a text-only
student against those cached outputs; it never runs the teacher.

Both return a :class:`StageResult`; the same call twice trains once.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from lugpi_cli import hub
from lugpi_cli.cards import write_model_card
from lugpi_cli.data.samples import Dataset, Sample
from lugpi_cli.data.snapshot import limit_dataset, load_snapshot
from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import Predictions, classification_metrics, write_predictions
from lugpi_cli.lineage import feature_keys, feature_source, read_pointer
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL  # noqa: F401 - re-exported
from lugpi_cli.runtime import process_info
from lugpi_cli.training.data import Collator, TrainingData
from lugpi_cli.training.loop import TrainConfig, fit, predict_outputs, seed_everything
from lugpi_cli.training.objectives import ArmadaTeacherLoss, EmaObjective, MetaObjective, Objective
from lugpi_cli.training.runs import Run, checked_run_name, find_run, run_name
from lugpi_cli.training.teachers import FIELD_HINTS, cached_fields, default_teacher  # noqa: F401 - re-exported
from lugpi_cli.training.specs import (  # noqa: F401 - re-exported: the specs and configs live torch-free
    MODALITIES,
    StudentSpec,
    TeacherSpec,
    _teacher_fields,
    student_config,
    teacher_config,
    teacher_modality,
    teacher_output_fingerprint,
)
from lugpi_store import Store, fingerprint, record_key

SPLITS = ("train", "validation", "test")


@dataclass
class StageResult:
    run: Run
    status: str  # "trained" or "reused"
    metrics: dict[str, Any]
    fingerprint: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        config = self.run.config()
        return {"run_dir": str(self.run.dir), "run": self.run.name, "status": self.status, "kind": config["kind"],
                "fingerprint": self.fingerprint, "metrics": self.metrics, **self.extra}


@dataclass
class Hooks:
    """Progress callbacks for the CLI (all optional)."""

    log: Callable[[str], None] | None = None
    on_epoch_start: Callable[[int, int], None] | None = None
    on_step: Callable[[int, dict[str, float]], None] | None = None


def _check_text_model(text_model: str) -> None:
    from transformers import AutoConfig

    hub.load(AutoConfig.from_pretrained, text_model, what="text model")


def _tokenizer(text_model: str, max_length: int):
    from transformers import AutoTokenizer

    tokenizer = hub.load(AutoTokenizer.from_pretrained, text_model, what="tokenizer")
    limit = getattr(tokenizer, "model_max_length", None)
    if not limit or limit > 100_000:  # a tokenizer without a recorded limit
        tokenizer.model_max_length = max_length
    return tokenizer


def _write_outputs(run: Run, ds: Dataset, splits: dict[str, list[Sample]], model, collate, cfg: TrainConfig,
                   device, data_for: Callable[[list[Sample]], TrainingData], *, drops: bool = False
                   ) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Predictions per split (CSV with sample ids and probabilities), metrics, and every model output.

    With ``drops`` (a teacher trained with modality dropout) the teacher also
    runs with the image dropped (``logits_text`` = t(x^t)) and with the text
    dropped (``logits_image`` = t(x^v)), for modality-specific distillation.
    """
    metrics: dict[str, Any] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for split, samples in splits.items():
        if not samples:
            continue
        kwargs = dict(batch_size=cfg.eval_batch_size, workers=cfg.workers, device=device)
        fields = predict_outputs(model, data_for(samples), collate, **kwargs)
        if drops:
            fields["logits_text"] = predict_outputs(model, data_for(samples), collate, drop="image", **kwargs)["logits"]
            fields["logits_image"] = predict_outputs(model, data_for(samples), collate, drop="text", **kwargs)["logits"]
        logits = fields["logits"]
        probs = _softmax(logits)
        labels = np.array([s.label for s in samples])
        write_predictions(run.predictions_path(split),
                          Predictions([s.id for s in samples], labels, probs.argmax(1), probs))
        metrics[split] = classification_metrics(labels, probs.argmax(1), probs, num_labels=ds.num_labels)
        outputs[split] = fields
    return metrics, outputs


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _existing(run: Run, force: bool, config: dict[str, Any]) -> StageResult | None:
    """A finished run to reuse; else clear the way (under DDP only the main process locks and writes).

    A run directory holding another config (``--run NAME`` reused with other
    settings) is an error unless ``--force`` replaces it.
    """
    if run.config_path.exists() and not force and run.config().get("fingerprint") != fingerprint(config):
        raise UserError(f"run {run.name} already exists with other settings",
                        "Pick another --run name, drop --run (names then follow the settings), or pass --force "
                        "to replace it.")
    if run.is_done() and not force:
        config = run.config()
        return StageResult(run, "reused", run.metrics(), config.get("output_fingerprint", config["fingerprint"]))
    if not process_info().is_main:
        return None
    if run.in_progress():
        raise UserError(f"run {run.name} is being trained by another process",
                        "Wait for it to finish (its result will then be reused) or pass another --run name.")
    if force:
        run.reset()
    return None


def _guard(run: Run):
    """The run's lock on the main process; other DDP ranks train alongside without it."""
    return run.lock() if process_info().is_main else nullcontext()


# -- the teacher ------------------------------------------------------------------------

def train_teacher(store: Store, runs_dir: Path, ds: Dataset, spec: TeacherSpec, cfg: TrainConfig, *,
                  dataset_request: dict[str, Any], run: str | None = None, force: bool = False,
                  device: str = "auto", hooks: Hooks | None = None) -> StageResult:
    """Train (or reuse) a teacher run and cache its outputs for every sample of every split."""
    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import build_teacher

    hooks = hooks or Hooks()
    spec.check()
    cfg.check()
    uses_text = spec.modality in ("both", "text")
    uses_image = spec.modality in ("both", "image")
    features = feature_source(store, ds.name, _encoder_label(spec.encoder)) if uses_image else None
    if uses_image and spec.modality == "both" and features.get("pooled_only"):
        raise UserError(f"the {spec.encoder!r} features of {ds.name} were embedded with --pooled-only",
                        f"The fusion teacher reads token sequences: run `lugpi embed {ds.name} --encoder "
                        f"{spec.encoder}` without --pooled-only.")
    if uses_text:
        _check_text_model(spec.text_model)
    config = teacher_config(ds.fingerprint(), spec, cfg, features)
    the_run = Run(runs_dir / (checked_run_name(run) if run is not None else run_name("teacher", ds.name, config)))
    reused = _existing(the_run, force, config)
    if reused is not None:
        from lugpi_cli.training.recache import missing_outputs, recache_teacher

        missing = missing_outputs(store, the_run, ds)  # e.g. dropped by `store gc`: re-cached, not retrained
        if missing and process_info().is_main:
            with _guard(the_run):
                return recache_teacher(store, the_run, ds, cfg, device, missing)
        return reused
    output_fp = teacher_output_fingerprint(config, the_run.name)
    main = process_info().is_main
    with _guard(the_run):
        if main:
            the_run.start("teacher", config, extra={
                "dataset": {**dataset_request, "name": ds.name, "fingerprint": ds.fingerprint()},
                "labels": list(ds.label_names), "modality": spec.modality, "text_model": spec.text_model if uses_text
                else None, "encoder": spec.encoder if uses_image else None, "output_fingerprint": output_fp,
                "feature_source": features, "arch": spec.arch, "modality_dropout": spec.modality_dropout,
                "teacher_fields": _teacher_fields(spec),
            })
        splits = {s: ds.splits.get(s, []) for s in SPLITS}
        if not splits["train"] or not splits["validation"]:
            raise UserError(f"{ds.name} needs train and validation samples to train a teacher")
        feature_field = "tokens" if spec.modality == "both" else "pooled"
        def data_for(samples: list[Sample]) -> TrainingData:
            keys = feature_keys(features, samples) if features else None
            return TrainingData(samples, store, feature_keys=keys, feature_field=feature_field)

        train_data, val_data = data_for(splits["train"]), data_for(splits["validation"])
        image_dim = None
        if uses_image:
            for split, samples in splits.items():
                keys = data_for(samples).feature_keys if samples else []
                missing = sum(not have for have in store.contains_many("features", keys))
                if missing:
                    raise UserError(f"{missing} {split} sample(s) of {ds.name} have no {spec.encoder!r} features "
                                    "(the teacher's outputs are cached for every split)",
                                    f"Run `lugpi generate {ds.name}` and `lugpi embed {ds.name} --encoder "
                                    f"{spec.encoder}` for all splits.")
            image_dim = int(np.atleast_2d(train_data[0]["image"]).shape[-1])
        tokenizer = _tokenizer(spec.text_model, cfg.max_length) if uses_text else None
        seed_everything(cfg.seed)  # --seed decides the new layers' initial weights, whatever ran before
        model = build_teacher(spec.modality, num_labels=ds.num_labels, text_model=spec.text_model if uses_text else None,
                              image_dim=image_dim, init=spec.init, labels=list(ds.label_names),
                              num_heads=spec.heads, hidden=spec.hidden, dropout=spec.dropout, arch=spec.arch,
                              modality_dropout=spec.modality_dropout, proj_dim=spec.proj_dim)
        objective = Objective(model, ArmadaTeacherLoss(spec.gamma) if spec.arch == "armada"
                              else build_loss("lugpi", alpha=0.0, beta=0.0))
        collate = Collator(tokenizer, cfg.max_length)
        result = fit(the_run, objective, train_data, val_data, collate, cfg, device=device,
                     on_epoch_start=hooks.on_epoch_start, on_step=hooks.on_step, log=hooks.log)
        if not main:
            return StageResult(the_run, "trained", {}, output_fp)
        device_used = next(model.parameters()).device
        metrics, outputs = _write_outputs(the_run, ds, splits, model, collate, cfg, device_used, data_for,
                                          drops=spec.modality_dropout > 0)
        metrics["best_epoch"], metrics["epochs_run"], metrics["steps"] = \
            result.best_epoch, result.epochs_run, result.steps
        from lugpi_cli.training.recache import write_outputs

        write_outputs(store, output_fp, {"stage": "teacher", "run": the_run.name, **config}, splits, outputs)
        model.cpu().save(the_run.model_dir, tokenizer)
        the_run.write_metrics(metrics)
        write_model_card(the_run, store=store)
        the_run.mark_done()
    return StageResult(the_run, "trained", metrics, output_fp)


def _prepare_loss(loss, student_dim: int, teacher_dim: int | None, num_labels: int) -> None:
    """Create a loss's trainable parts (aligners, heads, weight nets) before the optimizer is built."""
    import inspect

    prepare = getattr(loss, "prepare", None)
    if prepare is None:
        return
    takes_labels = "num_labels" in inspect.signature(prepare).parameters
    if teacher_dim is None and not takes_labels:
        return  # a width aligner needs both widths
    prepare(student_dim, teacher_dim, **({"num_labels": num_labels} if takes_labels else {}))


def _encoder_label(encoder: str) -> str:
    from lugpi_cli.encoders import EncoderConfig

    return EncoderConfig(encoder).label


# -- the student ------------------------------------------------------------------------

def teacher_dataset(store: Store, teacher: Run) -> Dataset:
    """The exact data set (same samples, same --limit) a teacher run was trained on."""
    info = teacher.config()["dataset"]
    ds = load_snapshot(store, full_fingerprint_of(store, info)) if store.exists else None
    if ds is None:
        raise UserError(f"the data set of teacher {teacher.name} ({info.get('name')}) is not in this workspace's store",
                        "Was the store deleted or the run copied from another workspace? Re-run its train-teacher.")
    ds = limit_dataset(ds, info.get("limit"))
    if ds.fingerprint() != info["fingerprint"]:
        raise UserError(f"the data set snapshot no longer matches teacher {teacher.name}")
    return ds


def full_fingerprint_of(store: Store, info: dict[str, Any]) -> str:
    """The fingerprint of the full (un-limited) data set a run's ``dataset`` info refers to."""
    pointer = read_pointer(store, "dataset", info["name"])
    full = info.get("full_fingerprint") or (pointer or {}).get("fingerprint")
    if full is None:
        raise UserError(f"no snapshot of data set {info['name']!r} in this workspace")
    return full


def distill(store: Store, runs_dir: Path, ds: Dataset, spec: StudentSpec, cfg: TrainConfig, *,
            teacher: Run | None, dataset_request: dict[str, Any], run: str | None = None, force: bool = False,
            device: str = "auto", hooks: Hooks | None = None) -> StageResult:
    """Train (or reuse) a text-only student; reads the teacher's outputs from the store only."""
    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import TextClassifier

    hooks = hooks or Hooks()
    cfg.check()
    if spec.init not in ("pretrained", "xavier"):
        raise UserError(f"unknown --init {spec.init!r}", "Choose pretrained or xavier.")
    loss = build_loss(spec.method, **spec.loss_options)
    needs_teacher = loss.requires_teacher
    if needs_teacher and teacher is None:
        raise UserError(f"method {spec.method!r} with these options needs a teacher run", "Pass --teacher RUN.")
    teacher_config = teacher.config() if (needs_teacher and teacher is not None) else None
    teacher_fp = teacher_config.get("output_fingerprint") if teacher_config else None
    _check_text_model(spec.text_model)
    config = student_config(ds.fingerprint(), spec, loss.hparams, cfg, teacher_fp)
    the_run = Run(runs_dir / (checked_run_name(run) if run is not None else run_name("student", ds.name, config)))
    reused = _existing(the_run, force, config)
    if reused is not None:
        return reused
    splits = {s: ds.splits.get(s, []) for s in SPLITS}
    teacher_keys = None
    if needs_teacher:
        teacher_keys = [record_key(teacher_fp, s.id) for s in splits["train"]]
        missing = sum(not have for have in store.contains_many("teacher", teacher_keys)) if store.exists else \
            len(teacher_keys)
        if missing:
            _refuse_other_dataset(teacher, teacher_config, ds, missing, len(teacher_keys))
            raise UserError(f"{missing} of {len(teacher_keys)} training samples have no cached output of teacher "
                            f"{teacher.name}",
                            "Re-run its `lugpi train-teacher` command: it writes the outputs again from the saved "
                            "model, without retraining (a distill never runs the teacher itself).")
        cached = set(store.get("teacher", teacher_keys[0]))
        lacking = sorted(set(loss.teacher_fields) - cached)
        if lacking:
            raise UserError(f"method {spec.method!r} reads teacher outputs {', '.join(lacking)}, which teacher "
                            f"{teacher.name} did not cache (it has {', '.join(sorted(cached))})",
                            FIELD_HINTS.get(lacking[0], "Train a teacher that provides them."))
    main = process_info().is_main
    with _guard(the_run):
        if main:
            the_run.start("student", config, extra={
                "dataset": {**dataset_request, "name": ds.name, "fingerprint": ds.fingerprint()},
                "labels": list(ds.label_names), "teacher_run": teacher.name if teacher_config else None,
                "teacher_run_dir": str(teacher.dir) if teacher_config else None, "method": spec.method,
                "loss_options": loss.hparams, "text_model": spec.text_model, "aligned": False,
            })
        tokenizer = _tokenizer(spec.text_model, cfg.max_length)
        seed_everything(cfg.seed)  # --seed decides the head's (and --init xavier's) initial weights
        student = TextClassifier.from_pretrained(spec.text_model, labels=list(ds.label_names), init=spec.init)
        teacher_dim = None
        if needs_teacher:
            sample = store.get("teacher", teacher_keys[0])
            width_field = "manifold" if "manifold" in loss.teacher_fields else "embedding"
            teacher_dim = int(sample[width_field].shape[-1]) if width_field in sample else None
        _prepare_loss(loss, student.embedding_dim, teacher_dim, ds.num_labels)
        if getattr(loss, "aligned", False) and main:
            _note_aligned(the_run, student.embedding_dim, teacher_dim)
        collate = Collator(tokenizer, cfg.max_length)
        train_data = TrainingData(splits["train"], store, teacher_keys=teacher_keys)
        val_data = TrainingData(splits["validation"])
        if getattr(loss, "self_teacher", False):
            objective = EmaObjective(student, loss, seed=cfg.seed)
        elif getattr(loss, "weighting", None) == "meta":
            objective = MetaObjective(student, loss, lambda: torch.utils.data.DataLoader(
                val_data, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                generator=torch.Generator().manual_seed(cfg.seed)))
        else:
            objective = Objective(student, loss)
        result = fit(the_run, objective, train_data, val_data, collate, cfg, device=device,
                     on_epoch_start=hooks.on_epoch_start, on_step=hooks.on_step, log=hooks.log)
        if not main:
            return StageResult(the_run, "trained", {}, fingerprint(config))
        device_used = next(student.parameters()).device
        metrics, _ = _write_outputs(the_run, ds, splits, student, collate, cfg, device_used,
                                    lambda samples: TrainingData(samples))
        metrics["best_epoch"], metrics["epochs_run"], metrics["steps"] = \
            result.best_epoch, result.epochs_run, result.steps
        student.cpu().save_pretrained(the_run.model_dir, tokenizer)
        the_run.write_metrics(metrics)
        write_model_card(the_run, store=store)
        the_run.mark_done()
    return StageResult(the_run, "trained", metrics, fingerprint(config))


def _refuse_other_dataset(teacher: Run, teacher_config: dict[str, Any], ds: Dataset, missing: int,
                          total: int) -> None:
    """A teacher has outputs only for the samples it was trained on: say so instead of advising a re-run."""
    trained = teacher_config.get("dataset") or {}
    if trained.get("fingerprint") in (None, ds.fingerprint()):
        return

    def named(info: dict[str, Any], name: str, fp: str) -> str:
        limit = info.get("limit")
        return f"{name!r}" + (f" (--limit {limit})" if limit else "") + f", fingerprint {fp[:12]}"

    asked = named({"limit": None}, ds.name, ds.fingerprint())
    raise UserError(
        f"teacher {teacher.name} was trained on a different data set: {named(trained, trained.get('name'), trained['fingerprint'])}"
        f", not {asked} ({missing} of {total} training samples of this one have no teacher output)",
        f"Distil on the teacher's own data (leave out --dataset), or pass --teacher a run trained on "
        f"{ds.name!r} (`lugpi train-teacher {ds.name}` makes one).")


def _note_aligned(run: Run, student_dim: int, teacher_dim: int | None) -> None:
    import json

    document = run.config()
    document["aligned"] = {"student_dim": student_dim, "teacher_dim": teacher_dim,
                           "note": "a learned linear map (student side, training only) aligns e_S to e_T"}
    run.config_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


__all__ = ["Hooks", "StageResult", "StudentSpec", "TeacherSpec", "default_teacher", "distill", "find_run",
           "teacher_dataset", "train_teacher"]
