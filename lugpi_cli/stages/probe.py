"""``probe``: k-nearest-neighbour accuracy of cached image (and frozen text) features, per split and class.

In seconds it estimates what the image-only teacher measures by training: whether the generated images
carry label signal (faiss, :mod:`lugpi_cli.evaluation.probe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lugpi_cli.data.samples import SPLITS
from lugpi_cli.errors import UserError
from lugpi_cli.stages.common import DatasetParams, dataset_params
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.workspace import Workspace


@dataclass(frozen=True)
class Params(StageParams):
    STAGE = "probe"

    dataset: DatasetParams | None = None
    encoder: Optional[str] = opt("clip", "Probe these cached image features (clip, vit, or the embed --encoder "
                                 "value).", short="-e")
    text_encoder: Optional[str] = opt(None, "Also probe frozen text features of this model (mean-pooled; cached).")
    no_image: bool = opt(False, "Probe only the text features.")
    k: int = opt(10, "Neighbours that vote.", min=1)
    device: str = opt("auto", "Where the text encoder runs: auto, cpu, cuda, mps.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))

    def check(self) -> None:
        if self.no_image and not self.text_encoder:
            raise UserError("nothing to probe", "Drop --no-image or give --text-encoder MODEL.")


@dataclass
class Result:
    dataset: str
    k: int
    results: dict[str, dict[str, dict]]  # space -> split -> KnnResult.to_json
    label_names: list[str]
    train_n: int
    smallest_class: int

    @property
    def crowded(self) -> bool:
        """k not below the smallest class's training samples: the vote follows class sizes."""
        return self.k >= self.smallest_class

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "k": self.k, "results": self.results}


def image_vectors(ws: Workspace, store, ds, encoder: str, samples):
    """The pooled feature vector of each sample (float32), refusing samples without features."""
    import numpy as np

    from lugpi_cli.encoders import EncoderConfig
    from lugpi_cli.lineage import feature_keys

    pointer = ws.feature_source(ds.name, EncoderConfig(encoder).label, store=store)
    records = store.get_many("features", feature_keys(pointer, samples))
    missing = sum(r is None for r in records)
    if missing:
        raise UserError(f"{missing} sample(s) of {ds.name} have no {encoder!r} features",
                        f"Run `lugpi embed {ds.name} --encoder {encoder}` first (with the same --limit).")
    return np.stack([r["pooled"] for r in records]).astype(np.float32)


def run(ws: Workspace, params: Params) -> Result:
    import numpy as np

    from lugpi_cli import runtime
    from lugpi_cli.data.snapshot import resolve_dataset
    from lugpi_cli.evaluation.probe import build_index, knn_probe

    # 1. the store and the data set
    store = ws.open_store()
    if not store.exists:
        raise UserError(f"no feature store at {store.path}", "Run `lugpi generate` and `lugpi embed` first.")
    ds = resolve_dataset(params.dataset.request(), store)
    splits = {s: ds.splits.get(s, []) for s in SPLITS if ds.splits.get(s)}
    # 2. the vector spaces to probe
    spaces: dict[str, dict[str, np.ndarray]] = {}
    if not params.no_image:
        spaces[f"image ({params.encoder})"] = {s: image_vectors(ws, store, ds, params.encoder, items)
                                               for s, items in splits.items()}
    if params.text_encoder:
        from lugpi_cli.encoders.text import embed_texts

        device = str(runtime.resolve_device(params.device))
        spaces[f"text ({params.text_encoder})"] = {s: embed_texts(store, items, params.text_encoder, device=device)
                                                   for s, items in splits.items()}
    # 3. one index over each space's training vectors; every split votes against it
    train_y = np.array([s.label for s in splits["train"]])
    results: dict[str, dict[str, dict]] = {}
    for space, vectors in spaces.items():
        index = build_index(vectors["train"])
        results[space] = {
            split: knn_probe(vectors["train"], train_y, vectors[split], np.array([s.label for s in items]),
                             k=params.k, num_labels=ds.num_labels, same_split=split == "train",
                             index=index).to_json(ds.label_names)
            for split, items in splits.items()}
    smallest = int(min(np.bincount(train_y, minlength=ds.num_labels)))
    return Result(ds.name, params.k, results, list(ds.label_names), len(splits["train"]), smallest)
