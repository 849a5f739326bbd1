"""kNN probes with faiss: planted class structure is found, random features give chance."""

from __future__ import annotations

import numpy as np
import pytest

from lugpi_cli.evaluation.probe import build_index, knn_predict, knn_probe


def _clusters(n, classes, dim, spread, rng):
    centres = rng.standard_normal((classes, dim)) * 3
    y = rng.integers(0, classes, size=n)
    return centres[y] + spread * rng.standard_normal((n, dim)), y


def test_planted_structure_is_found_and_random_is_chance():
    rng = np.random.default_rng(0)
    x, y = _clusters(1200, 4, 16, 0.5, rng)
    good = knn_probe(x[:800], y[:800], x[800:], y[800:], k=10)
    assert good.accuracy > 0.95 and all(v > 0.9 for v in good.per_class.values())
    noise = rng.standard_normal((1200, 16))
    rand = knn_probe(noise[:800], y[:800], noise[800:], y[800:], k=10)
    assert abs(rand.accuracy - 0.25) < 0.08  # 4 balanced classes
    assert 0.2 < rand.chance < 0.35


def test_ivf_index_above_the_threshold_agrees_with_exact():
    rng = np.random.default_rng(1)
    x, y = _clusters(3000, 3, 8, 0.4, rng)
    exact = knn_probe(x[:2000], y[:2000], x[2000:], y[2000:], k=5)
    ivf = knn_probe(x[:2000], y[:2000], x[2000:], y[2000:], k=5, index=build_index(x[:2000], ivf_threshold=100))
    assert type(build_index(x[:2000], ivf_threshold=100)).__name__ == "IndexIVFFlat"
    assert abs(exact.accuracy - ivf.accuracy) < 0.02


def test_votes_against_a_brute_force_loop():
    rng = np.random.default_rng(2)
    train, ty = rng.standard_normal((60, 5)), rng.integers(0, 3, 60)
    query = rng.standard_normal((20, 5))
    got = knn_predict(build_index(train), ty, query, 7, 3)
    tn = train / np.linalg.norm(train, axis=1, keepdims=True)
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    for i, q in enumerate(qn):
        sims = tn @ q
        nearest = np.argsort(-sims)[:7]
        votes = np.bincount(ty[nearest], minlength=3)
        strength = np.bincount(ty[nearest], weights=sims[nearest], minlength=3)
        best = np.flatnonzero(votes == votes.max())
        assert got[i] == best[np.argmax(strength[best])]


def test_leave_one_out_on_the_train_split():
    x = np.eye(4)[[0, 0, 1, 1]] + 0.01 * np.arange(4)[:, None]
    y = np.array([0, 0, 1, 1])
    # each sample's only other neighbour of its class is the right answer once itself is left out
    assert knn_probe(x, y, x, y, k=1, same_split=True).accuracy == pytest.approx(1.0)
