"""LUGPI learns: on a task where the generated images carry label information the noisy text labels lack,
the teacher beats the text-only baseline and the distilled student beats the baseline.

Every text names one of 30 words per class; 35% of the TRAIN labels are flipped, so a text-only model
that memorises word -> label gets the words whose few examples were mostly flipped wrong. A synthetic
image encoder (features written where `lugpi embed` writes them) carries the TRUE class in the image CLS
token, so the teacher denoises the labels, and a student that learns from the teacher's cached outputs
recovers the words. Validation and test labels are clean.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lugpi_cli.encoders import EncoderConfig
from lugpi_cli.lineage import image_source, record_embedding
from lugpi_store import Store, close_all, encode_bundle, record_key

WORDS = 30
NOISE = 0.35


def _table(path, seed):
    rng = np.random.default_rng(seed)
    rows, truth = ["text,label,prompt,split"], {}
    for split, n in (("train", 10 * WORDS), ("validation", 100), ("test", 300)):
        for i in range(n):
            y = i % 2
            word = f"{('neg', 'pos')[y]}{rng.integers(WORDS)}"
            label = 1 - y if split == "train" and rng.random() < NOISE else y
            prompt = f"photo {split} {i}"
            truth[prompt] = y
            rows.append(f"the film was {word},{label},{prompt},{split}")
    path.write_text("\n".join(rows) + "\n")
    return truth


def _synthetic_embed(workspace, truth, seed):
    """What `lugpi embed` would store, from an encoder whose image CLS token encodes the true class."""
    from lugpi_cli.data.snapshot import latest_snapshot

    close_all()
    store = Store(workspace / "store")
    ds = latest_snapshot(store, "films")
    source = image_source(store, ds.name)
    config = EncoderConfig("synthetic-encoder")
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((2, 16))
    records = []
    for sample in ds.samples():
        tokens = rng.standard_normal((5, 16))
        tokens[0] += 2.0 * centroids[truth[sample.prompt]]
        key = source.image_keys([sample])[sample.id]
        records.append((record_key(config.fingerprint(), key),
                        encode_bundle({"tokens": tokens.astype(np.float16), "pooled": tokens[0].astype(np.float16)})))
    store.put_many("features", records)
    record_embedding(store, ds.name, config.label, {
        "encoder_fingerprint": config.fingerprint(), "generator_fingerprint": source.fingerprint,
        "generator_seed": source.seed, "pooled_only": False})


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_teacher_and_student_beat_the_text_only_baseline(cli, workspace, tmp_path, tiny_models, seed):
    from lugpi_cli.tiny_models import build_tiny_text_model

    words = tuple(f"{c}{i}" for c in ("neg", "pos") for i in range(WORDS))
    text_model = build_tiny_text_model(tmp_path / "text", words=words)
    table = tmp_path / "films.csv"
    truth = _table(table, seed)
    columns = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt", "--split-col", "split"]
    cli("generate", table, *columns, "--model", tiny_models["sd"], "--steps", "1", "--size", "32",
        "--batch-size", "16")
    _synthetic_embed(workspace, truth, seed)
    train = ["--text-model", text_model, "--epochs", "15", "--lr", "1e-3", "--batch-size", "16", "--max-length", "16",
             "--seed", str(seed), "--json"]
    teacher = json.loads(cli("train-teacher", table, *columns, "--encoder", "synthetic-encoder", "--hidden", "32",
                             *train).stdout)
    baseline = json.loads(cli("distill", "--alpha", "0", "--beta", "0", *train).stdout)
    student = json.loads(cli("distill", "--alpha", "3", "--beta", "1", "--tau", "8", *train).stdout)
    acc = {name: run["metrics"]["test"]["accuracy"] for name, run in
           (("teacher", teacher), ("baseline", baseline), ("student", student))}
    assert acc["teacher"] >= 0.95, acc
    assert acc["teacher"] >= acc["baseline"] + 0.1, acc
    assert acc["student"] >= acc["baseline"] + 0.1, acc
