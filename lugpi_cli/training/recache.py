"""Re-caching a finished teacher's outputs from its saved model, without retraining.

A teacher run's outputs (logits, e_T and whatever else it caches) live in the
store under ``record_key(output fingerprint, sample id)``. When they are gone —
``lugpi store gc --drop-fingerprint`` on them, a store rebuilt from images and
features only — re-running the same ``train-teacher`` finds the run DONE and
its outputs missing, loads ``run/model`` and runs it once in eval mode over
every split, exactly as after training. The outputs keep their fingerprint, so
students distilled from the run before stay valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lugpi_cli.data.samples import Dataset, Sample
from lugpi_cli.errors import UserError
from lugpi_cli.lineage import feature_keys
from lugpi_cli.training.runs import Run
from lugpi_store import Store, encode_bundle, record_key

SPLITS = ("train", "validation", "test")
BATCH = 4096  # records per write transaction


def missing_outputs(store: Store, run: Run, ds: Dataset) -> int:
    """How many samples of ``ds`` (every split) have no cached output of the finished teacher ``run``."""
    output_fp = run.config().get("output_fingerprint")
    if output_fp is None or not store.exists:
        return 0
    keys = [record_key(output_fp, s.id) for split in SPLITS for s in ds.splits.get(split, [])]
    return sum(not have for have in store.contains_many("teacher", keys)) if keys else 0


def write_outputs(store: Store, output_fp: str, register: dict[str, Any], splits: dict[str, list[Sample]],
                  outputs: dict[str, dict[str, np.ndarray]]) -> int:
    """Every model output per sample as one float32 bundle under ``record_key(output_fp, sample id)``."""
    records = []
    for split, fields in outputs.items():
        for row, sample in enumerate(splits[split]):
            bundle = {name: values[row].astype(np.float32) for name, values in fields.items()}
            records.append((record_key(output_fp, sample.id), encode_bundle(bundle)))
    store.register("teacher", output_fp, register)
    for start in range(0, len(records), BATCH):
        store.put_many("teacher", records[start:start + BATCH], overwrite=True)
    return len(records)


def recache_teacher(store: Store, run: Run, ds: Dataset, cfg, device: str, missing: int):
    """Load the finished teacher ``run`` and write its outputs for every sample again; a StageResult."""
    from transformers import AutoTokenizer

    from lugpi_cli.models import load_model
    from lugpi_cli.runtime import resolve_device
    from lugpi_cli.training.data import Collator, TrainingData
    from lugpi_cli.training.lifecycle import StageResult, _write_outputs

    config = run.config()
    features = config.get("feature_source")
    modality = config.get("modality", "both")
    if not run.model_dir.is_dir():
        raise UserError(f"teacher {run.name} has lost its saved model ({run.model_dir}) and {missing} cached outputs",
                        "Retrain it with the same command and --force.")
    splits = {s: ds.splits.get(s, []) for s in SPLITS}
    feature_field = "tokens" if modality == "both" else "pooled"

    def data_for(samples: list[Sample]) -> TrainingData:
        keys = feature_keys(features, samples) if features else None
        return TrainingData(samples, store, feature_keys=keys, feature_field=feature_field)

    if features:
        keys = [k for samples in splits.values() if samples for k in data_for(samples).feature_keys]
        lacking = sum(not have for have in store.contains_many("features", keys))
        if lacking:
            raise UserError(f"teacher {run.name}'s outputs are missing and so are {lacking} of the image features "
                            "it reads", f"Run `lugpi generate {ds.name}` and `lugpi embed {ds.name} --encoder "
                            f"{config.get('encoder')}` again (they reuse what is cached), then this command.")
    model = load_model(run.model_dir).to(resolve_device(device)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run.model_dir)) if modality != "image" else None
    collate = Collator(tokenizer, cfg.max_length)
    metrics, outputs = _write_outputs(run, ds, splits, model, collate, cfg, next(model.parameters()).device,
                                      data_for, drops=bool(config.get("modality_dropout")))
    fingerprint = config["output_fingerprint"]
    write_outputs(store, fingerprint, {"stage": "teacher", "run": run.name, **config["config"]}, splits, outputs)
    return StageResult(run, "recached", {**run.metrics(), **metrics}, fingerprint,
                       extra={"recached": missing})

