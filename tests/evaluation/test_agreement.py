"""Teacher-student agreement on hand-made probability vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lugpi_cli.evaluation import agreement, kl_divergence


def kl(t, s):
    return sum(ti * (math.log(ti) - math.log(si)) for ti, si in zip(t, s) if ti > 0)


def test_agreement_by_hand():
    teacher = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]]
    student = [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.25, 0.5, 0.25]]
    # argmax: teacher 0,1,2,0 ; student 0,0,2,1 -> 2 of 4 agree
    r = agreement(teacher, student)
    assert r["label_agreement"] == pytest.approx(0.5)
    expected = sum(kl(t, s) for t, s in zip(teacher, student)) / 4
    assert r["mean_kl"] == pytest.approx(expected, rel=1e-12)
    assert r["n_samples"] == 4


def test_identical_distributions():
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    r = agreement(p, p)
    assert r == {"label_agreement": 1.0, "mean_kl": 0.0, "n_samples": 2}


def test_kl_is_asymmetric_and_per_row():
    t = np.array([[0.9, 0.1]])
    s = np.array([[0.5, 0.5]])
    assert kl_divergence(t, s)[0] == pytest.approx(kl([0.9, 0.1], [0.5, 0.5]))
    assert kl_divergence(s, t)[0] == pytest.approx(kl([0.5, 0.5], [0.9, 0.1]))
    assert kl_divergence(t, s)[0] != pytest.approx(kl_divergence(s, t)[0])


def test_zeros_are_safe():
    # teacher zero: term is exactly 0 (0 log 0 = 0)
    t = [[1.0, 0.0], [0.0, 1.0]]
    s = [[0.5, 0.5], [0.25, 0.75]]
    r = agreement(t, s)
    assert r["mean_kl"] == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    # student zero where the teacher is not: large but finite, t_k (log t_k - log eps)
    big = agreement([[0.5, 0.5]], [[1.0, 0.0]], eps=1e-12)["mean_kl"]
    assert math.isfinite(big)
    assert big == pytest.approx(0.5 * (math.log(0.5) - math.log(1.0)) + 0.5 * (math.log(0.5) - math.log(1e-12)))


def test_rejects_logits_and_mismatched_shapes():
    with pytest.raises(ValueError, match="logits"):
        agreement([[2.0, -1.0]], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        agreement([[0.5, 0.5]], [[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="no samples"):
        agreement(np.zeros((0, 2)), np.zeros((0, 2)))
