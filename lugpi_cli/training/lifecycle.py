"""What the teacher and student stages share on the torch side: reusing a finished run, the run's lock,
tokenizers, fitting with progress hooks, and writing predictions and metrics.

The stages themselves are :mod:`lugpi_cli.stages.teacher` and :mod:`lugpi_cli.stages.student`
(``Params`` -> ``plan`` -> ``run``); this module is their torch half.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable

import numpy as np

from lugpi_cli import hub
from lugpi_cli.data.samples import Dataset, Sample
from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import Predictions, classification_metrics, write_predictions
from lugpi_cli.runtime import process_info
from lugpi_cli.stages.runs import Hooks, StageResult, full_fingerprint_of, teacher_dataset  # noqa: F401 - re-exported
from lugpi_cli.training.data import TrainingData
from lugpi_cli.training.loop import TrainConfig, fit, predict_outputs
from lugpi_cli.training.runs import Run
from lugpi_cli.training.specs import StudentSpec, TeacherSpec  # noqa: F401 - re-exported
from lugpi_cli.training.teachers import default_teacher  # noqa: F401 - re-exported
from lugpi_store import fingerprint

SPLITS = ("train", "validation", "test")


def check_text_model(text_model: str) -> None:
    """Refuse a text model that cannot be found before any run directory is made."""
    from transformers import AutoConfig

    hub.load(AutoConfig.from_pretrained, text_model, what="text model")


def tokenizer_for(text_model: str, max_length: int):
    from transformers import AutoTokenizer

    tokenizer = hub.load(AutoTokenizer.from_pretrained, text_model, what="tokenizer")
    limit = getattr(tokenizer, "model_max_length", None)
    if not limit or limit > 100_000:  # a tokenizer without a recorded limit
        tokenizer.model_max_length = max_length
    return tokenizer


def existing_run(run: Run, force: bool, config: dict[str, Any]) -> StageResult | None:
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


def guard(run: Run):
    """The run's lock on the main process; other DDP ranks train alongside without it."""
    return run.lock() if process_info().is_main else nullcontext()


def fit_run(run: Run, objective, train_data, val_data, collate, cfg: TrainConfig, device: str,
            hooks: Hooks | None) -> Any:
    """The one fit loop with the stage's progress hooks."""
    hooks = hooks or Hooks()
    return fit(run, objective, train_data, val_data, collate, cfg, device=device,
               on_epoch_start=hooks.on_epoch_start, on_step=hooks.on_step, log=hooks.log)


def finish_run(run: Run, metrics: dict[str, Any], result: Any, store, save: Callable[[], None]) -> None:
    """Write the fit's counts into the metrics, the model (``save``), metrics, model card; then DONE."""
    from lugpi_cli.cards import write_model_card

    metrics["best_epoch"], metrics["epochs_run"], metrics["steps"] = result.best_epoch, result.epochs_run, result.steps
    save()
    run.write_metrics(metrics)
    write_model_card(run, store=store)
    run.mark_done()


def write_outputs(run: Run, ds: Dataset, splits: dict[str, list[Sample]], model, collate, cfg: TrainConfig,
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
        probs = softmax(fields["logits"])
        labels = np.array([s.label for s in samples])
        write_predictions(run.predictions_path(split),
                          Predictions([s.id for s in samples], labels, probs.argmax(1), probs))
        metrics[split] = classification_metrics(labels, probs.argmax(1), probs, num_labels=ds.num_labels)
        outputs[split] = fields
    return metrics, outputs


_write_outputs = write_outputs  # the name training/recache.py imports


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def split_samples(ds: Dataset) -> dict[str, list[Sample]]:
    return {s: ds.splits.get(s, []) for s in SPLITS}


def train_teacher(store, runs_dir, ds: Dataset, spec: TeacherSpec, cfg: TrainConfig, *,
                  dataset_request: dict[str, Any], run: str | None = None, force: bool = False,
                  device: str = "auto", hooks: Hooks | None = None) -> StageResult:
    """A teacher from an already loaded data set (benchmarks): :func:`lugpi_cli.stages.teacher.train`."""
    from lugpi_cli.stages.teacher import train

    return train(store, runs_dir, ds, spec, cfg, dataset_request=dataset_request, run=run, force=force,
                 device=device, hooks=hooks)


__all__ = ["Hooks", "StageResult", "existing_run", "fit_run", "guard", "teacher_dataset", "train_teacher",
           "write_outputs"]
