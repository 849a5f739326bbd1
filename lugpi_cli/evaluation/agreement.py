"""Teacher-student agreement: how often the student picks the teacher's label, and KL(teacher || student).

For ``n`` samples with teacher probabilities ``t_i`` and student
probabilities ``s_i`` over ``k`` classes:

``label_agreement = (1/n) sum_i [argmax t_i == argmax s_i]``
    the "consistency ratio" (fraction of samples where both predict the same
    label, whatever the true label is);
``mean_kl = (1/n) sum_i KL(t_i || s_i)``, ``KL(t || s) = sum_k t_k (log t_k - log s_k)``
    in nats (natural log).

These are the two agreement measures of Modality-specific Distillation
(Jin et al., 2021, "Modality-specific Distillation for Multi-Modal
Transformers", arXiv:2101.01881, later "MSD: Saliency-aware Knowledge
Distillation for Multimodal Understanding", Findings of EMNLP 2021; Fig. 7).

Zeros: inside the logarithms both distributions are clipped from below at
``eps`` (default 1e-12) and not renormalised, while the weights ``t_k`` stay
unclipped. So a class the teacher gives probability 0 contributes exactly 0
(the convention ``0 log 0 = 0``), and a class the student gives 0 but the
teacher does not contributes a large finite ``t_k (log t_k - log eps)``
instead of infinity. ``argmax`` ties go to the lowest class index (numpy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Lower clip inside the logarithms of the KL divergence.
EPS = 1e-12

#: Rows must sum to 1 within this (probabilities read back from text files are rounded).
SUM_TOLERANCE = 1e-3


def kl_divergence(p: Any, q: Any, *, eps: float = EPS) -> np.ndarray:
    """Per-row ``KL(p_i || q_i) = sum_k p_ik (log max(p_ik, eps) - log max(q_ik, eps))``, in nats.

    ``p`` and ``q`` are ``(n, k)`` probability arrays (or one ``(k,)`` vector
    each, giving a 0-d array).
    """
    pa = _check_probs(p, "p")
    qa = _check_probs(q, "q")
    if pa.shape != qa.shape:
        raise ValueError(f"p has shape {pa.shape} but q has shape {qa.shape}")
    return np.sum(pa * (np.log(np.maximum(pa, eps)) - np.log(np.maximum(qa, eps))), axis=-1)


def agreement(teacher_probs: Any, student_probs: Any, *, eps: float = EPS) -> dict[str, Any]:
    """Label agreement and mean KL(teacher || student) over aligned samples.

    Args:
        teacher_probs, student_probs: ``(n, k)`` class probabilities (softmax
            outputs, not logits) for the same samples in the same order.
        eps: lower clip inside the logarithms (see the module docstring).

    Returns:
        ``{"label_agreement": float in [0, 1], "mean_kl": float >= 0, "n_samples": int}``.
    """
    t = _check_probs(teacher_probs, "teacher_probs")
    s = _check_probs(student_probs, "student_probs")
    if t.ndim != 2:
        raise ValueError(f"teacher_probs must be (n_samples, n_classes), got shape {t.shape}")
    if t.shape != s.shape:
        raise ValueError(f"teacher_probs has shape {t.shape} but student_probs has shape {s.shape}")
    if t.shape[0] == 0:
        raise ValueError("no samples to compare")
    same = np.argmax(t, axis=1) == np.argmax(s, axis=1)
    kl = kl_divergence(t, s, eps=eps)
    return {"label_agreement": float(same.mean()), "mean_kl": float(kl.mean()), "n_samples": int(t.shape[0])}


def _check_probs(a: Any, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"{name} must be a (k,) or (n, k) array of probabilities, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf")
    if (x < 0).any() or x.size and not np.allclose(x.sum(axis=-1), 1.0, rtol=0, atol=SUM_TOLERANCE):
        raise ValueError(
            f"{name} is not a probability distribution per row (negative values or rows not summing to 1); "
            "pass softmax outputs, not logits"
        )
    return x
