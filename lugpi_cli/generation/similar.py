"""``--reuse-similar``: reuse the image of a near-identical prompt instead of drawing a new one.

Prompts are embedded with the diffusion pipeline's own text encoder (the
pooled CLIP text embedding its UNet is conditioned on), L2-normalised, and
grouped by :func:`assign_representatives`: in the order of their image keys,
a prompt whose cosine similarity to an earlier *representative* reaches the
threshold joins it, any other prompt becomes a representative. Only
representatives are drawn; every other prompt gets a copy of its
representative's image under its own key — so every later stage reads it like
any other — and a ``reused/<key>`` record in ``meta`` says from which prompt
and how similar.

The grouping is computed over all the run's prompts before anything is drawn,
in key order, so it does not depend on batch size, sharding (a shard owns the
groups whose representative it owns), or where an interrupted run resumed. It
does depend on which prompts the run has (its data set and splits), which is
why the option is off by default and part of the generator fingerprint.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

REUSED_PREFIX = "reused/"


def prompt_vectors(pipe: Any, prompts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, d) float32 unit vectors from the pipeline's (first) text encoder."""
    import torch

    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    limit = int(getattr(tokenizer, "model_max_length", 77) or 77)
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            ids = tokenizer(list(prompts[start:start + batch_size]), padding="max_length", max_length=limit,
                            truncation=True, return_tensors="pt").input_ids.to(encoder.device)
            result = encoder(ids)
            pooled = getattr(result, "text_embeds", None)
            if pooled is None:
                pooled = result.pooler_output
            out.append(pooled.float().cpu().numpy())
    vectors = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# float32 inner products of identical unit vectors can fall a few ulps short of 1.0
SIMILARITY_TOLERANCE = 1e-6


def assign_representatives(vectors: np.ndarray, order: Sequence[int], threshold: float,
                           chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Greedy leader grouping of unit vectors; returns ``(representative, similarity)`` per row.

    Rows are visited in ``order``. A row joins the most similar representative
    seen so far if that cosine similarity is at least ``threshold`` (less
    :data:`SIMILARITY_TOLERANCE`); otherwise it becomes a representative
    itself (``representative[i] == i``, similarity 1). Representatives are
    kept in a faiss ``IndexFlatIP``; rows are searched a chunk at a time, and
    the representatives found inside a chunk are compared with numpy, so the
    result equals the one-row-at-a-time definition.
    """
    import faiss

    n = len(vectors)
    rep = np.arange(n)
    similarity = np.ones(n, dtype=np.float32)
    if n == 0:
        return rep, similarity
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    rep_rows: list[int] = []  # index position -> row
    cut = threshold - SIMILARITY_TOLERANCE
    order = np.asarray(order, dtype=np.int64)
    for start in range(0, n, chunk):
        rows = order[start:start + chunk]
        block = vectors[rows]
        if index.ntotal:
            sims, ids = index.search(block, 1)
            best_sim, best_row = sims[:, 0].astype(np.float64), np.array([rep_rows[i] for i in ids[:, 0]])
        else:
            best_sim, best_row = np.full(len(rows), -np.inf), np.full(len(rows), -1)
        within = block @ block.T
        new: list[int] = []  # positions in ``rows`` that became representatives in this chunk
        for j, row in enumerate(rows):
            sim, source = best_sim[j], best_row[j]
            if new:
                k = int(np.argmax(within[j, new]))
                if within[j, new[k]] > sim:
                    sim, source = float(within[j, new[k]]), rows[new[k]]
            if source >= 0 and sim >= cut:
                rep[row], similarity[row] = source, min(sim, 1.0)
            else:
                new.append(j)
        if new:
            index.add(block[new])
            rep_rows.extend(int(rows[j]) for j in new)
    return rep, similarity
