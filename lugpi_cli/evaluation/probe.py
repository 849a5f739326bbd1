"""k-nearest-neighbour probes with faiss: do the cached features carry label signal?

Before spending GPU hours on a teacher, a kNN probe on the frozen features
estimates in seconds what the paper's image-only rows measure by training.
Vectors are L2-normalised and searched by inner product (= cosine): exactly
with ``IndexFlatIP``, or approximately with an ``IndexIVFFlat`` (nlist ≈ 4√n,
nprobe 16) above :data:`IVF_THRESHOLD` train vectors. Each query is labelled by
a majority vote of its k nearest training neighbours (ties go to the class
with the larger summed similarity). On the train split itself, each sample's
own vector is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IVF_THRESHOLD = 200_000


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def build_index(vectors: np.ndarray, *, ivf_threshold: int = IVF_THRESHOLD, seed: int = 0):
    """An inner-product faiss index over normalised ``vectors`` (exact, or IVF above the threshold)."""
    import faiss

    x = _normalise(vectors)
    n, d = x.shape
    if n <= ivf_threshold:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = max(1, int(4 * np.sqrt(n)))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, size=min(n, 256 * nlist), replace=False)
        index.train(x[sample])
        index.nprobe = 16
    index.add(x)
    return index


@dataclass
class ProbeResult:
    accuracy: float
    per_class: dict[int, float]
    n: int
    chance: float  # the majority-class rate of the queried split

    def to_json(self, label_names: list[str] | None = None) -> dict[str, Any]:
        name = (lambda c: label_names[c]) if label_names else str
        return {"accuracy": self.accuracy, "chance": self.chance, "n": self.n,
                "per_class": {name(c): acc for c, acc in self.per_class.items()}}


def knn_predict(index, train_labels: np.ndarray, queries: np.ndarray, k: int, num_labels: int, *,
                exclude_self: bool = False) -> np.ndarray:
    """Majority vote of the k nearest training vectors (sum of similarities breaks ties)."""
    q = _normalise(queries)
    sims, ids = index.search(q, k + 1 if exclude_self else k)
    if exclude_self:  # drop each query's own entry (the train split probing itself)
        own = np.arange(len(q))[:, None]
        keep = ids != own
        # keep the first k entries that are not the query itself
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        sims = np.take_along_axis(sims, order, axis=1)
        ids = np.take_along_axis(ids, order, axis=1)
    valid = ids >= 0
    labels = np.where(valid, train_labels[np.clip(ids, 0, None)], 0)
    votes = np.zeros((len(q), num_labels))
    strength = np.zeros((len(q), num_labels))
    rows = np.repeat(np.arange(len(q)), ids.shape[1])
    np.add.at(votes, (rows, labels.ravel()), valid.ravel().astype(float))
    np.add.at(strength, (rows, labels.ravel()), np.where(valid, sims, 0).ravel())
    return _argmax_votes(votes, strength)


def _argmax_votes(votes: np.ndarray, strength: np.ndarray) -> np.ndarray:
    best = votes.max(axis=1, keepdims=True)
    return np.where(votes == best, strength, -np.inf).argmax(axis=1)


def knn_probe(train_x: np.ndarray, train_y: np.ndarray, query_x: np.ndarray, query_y: np.ndarray, *, k: int = 10,
              num_labels: int | None = None, same_split: bool = False, index=None) -> ProbeResult:
    """kNN accuracy (overall and per class) of ``query_x`` against labelled ``train_x``."""
    train_y = np.asarray(train_y)
    query_y = np.asarray(query_y)
    num_labels = int(num_labels or max(train_y.max(), query_y.max()) + 1)
    index = index if index is not None else build_index(train_x)
    predicted = knn_predict(index, train_y, query_x, min(k, len(train_y) - int(same_split)), num_labels,
                            exclude_self=same_split)
    correct = predicted == query_y
    per_class = {int(c): float(correct[query_y == c].mean()) for c in np.unique(query_y)}
    chance = float(np.bincount(query_y, minlength=num_labels).max() / len(query_y))
    return ProbeResult(float(correct.mean()), per_class, int(len(query_y)), chance)
