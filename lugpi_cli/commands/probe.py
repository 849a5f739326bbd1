"""``lugpi probe DATASET --encoder clip``: kNN accuracy of cached features (faiss), per split and class."""

from __future__ import annotations

from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console, Group
from rich.table import Table

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import (
    DatasetArg,
    JsonFlag,
    dataset_options,
)
from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
from lugpi_cli.encoders import EncoderConfig
from lugpi_cli.errors import UserError
from lugpi_cli.evaluation.probe import build_index, knn_probe
from lugpi_cli.lineage import feature_keys, feature_source

SPLITS = ("train", "validation", "test")


def image_vectors(store, ds, encoder: str, samples) -> np.ndarray:
    pointer = feature_source(store, ds.name, EncoderConfig(encoder).label)
    records = store.get_many("features", feature_keys(pointer, samples))
    missing = sum(r is None for r in records)
    if missing:
        raise UserError(f"{missing} sample(s) of {ds.name} have no {encoder!r} features",
                        f"Run `lugpi embed {ds.name} --encoder {encoder}` first (with the same --limit).")
    return np.stack([r["pooled"] for r in records]).astype(np.float32)


def probe_command(
    dataset: DatasetArg,
    encoder: Annotated[Optional[str], typer.Option("--encoder", "-e", help="Probe these cached image features "
                                                   "(clip, vit, or the embed --encoder value).")] = "clip",
    text_encoder: Annotated[Optional[str], typer.Option("--text-encoder", help="Also probe frozen text features "
                                                        "of this model (mean-pooled; cached).")] = None,
    no_image: Annotated[bool, typer.Option("--no-image", help="Probe only the text features.")] = False,
    k: Annotated[int, typer.Option("--k", min=1, help="Neighbours that vote.")] = 10,
    device: Annotated[str, typer.Option("--device")] = "auto",
    data_options: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """k-nearest-neighbour accuracy of cached image (and frozen text) features, per split and per class.

    In seconds it estimates what the image-only teacher measures by training:
    whether the generated images carry label signal.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    store = state.open_store()
    if not store.exists:
        raise UserError(f"no feature store at {store.path}", "Run `lugpi generate` and `lugpi embed` first.")
    ds = resolve_dataset(DatasetRequest(dataset, **data_options), store)
    splits = {s: ds.splits.get(s, []) for s in SPLITS if ds.splits.get(s)}
    spaces: dict[str, dict[str, np.ndarray]] = {}
    if not no_image:
        spaces[f"image ({encoder})"] = {s: image_vectors(store, ds, encoder, items) for s, items in splits.items()}
    if text_encoder:
        from lugpi_cli.encoders.text import embed_texts

        dev = str(runtime.resolve_device(device))
        spaces[f"text ({text_encoder})"] = {s: embed_texts(store, items, text_encoder, device=dev)
                                            for s, items in splits.items()}
    if not spaces:
        raise UserError("nothing to probe", "Drop --no-image or give --text-encoder MODEL.")
    results: dict[str, dict[str, dict]] = {}
    for space, vectors in spaces.items():
        train_y = np.array([s.label for s in splits["train"]])
        index = build_index(vectors["train"])
        results[space] = {}
        for split, items in splits.items():
            y = np.array([s.label for s in items])
            r = knn_probe(vectors["train"], train_y, vectors[split], y, k=k, num_labels=ds.num_labels,
                          same_split=split == "train", index=index)
            results[space][split] = r.to_json(ds.label_names)
    result = {"dataset": ds.name, "k": k, "results": results}
    train_n, smallest = len(splits["train"]), min(np.bincount([s.label for s in splits["train"]], minlength=ds.num_labels))
    crowded = k >= smallest

    def render(out: Console) -> None:
        for space, by_split in results.items():
            out.print(probe_tables(space, k, by_split, ds.label_names))
        if crowded:
            out.print(f"Note: k={k} is not below the smallest class's {smallest} training samples (of {train_n}): "
                      "the vote then follows class sizes more than neighbourhoods; use a smaller --k.")

    console.emit(result, render)


def _pct(value: float | None, digits: int) -> str:
    return "-" if value is None or value != value else f"{100 * value:.{digits}f}%"


def probe_tables(space: str, k: int, by_split: dict[str, dict], label_names: list[str]) -> Group:
    """Accuracy beside chance per split, then per-class accuracy: one row per class (names kept whole)."""
    summary = Table("split", "n", "kNN accuracy", "chance", title=f"{space}, k={k}", title_justify="left")
    for split, r in by_split.items():
        summary.add_row(split, f"{r['n']:,}", _pct(r["accuracy"], 2), _pct(r["chance"], 2))
    per_class = Table("class", *by_split, title="kNN accuracy per class", title_justify="left")
    for name in label_names:
        per_class.add_row(name, *(_pct(r["per_class"].get(name), 1) for r in by_split.values()))
    per_class.columns[0].overflow = "fold"
    for table in (summary, per_class):
        for column in table.columns[1:]:
            column.justify = "right"
    return Group(summary, per_class)


def register(app: typer.Typer) -> None:
    app.command("probe")(dataset_options(probe_command))
