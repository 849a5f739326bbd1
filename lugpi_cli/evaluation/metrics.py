"""Classification metrics on numpy arrays: accuracy, macro/micro F1, binary ROC-AUC, confusion.

Single-label (``y_true``, ``y_pred`` 1-D)
    accuracy
        ``mean(y_true == y_pred)``.
    F1 of class ``l``
        ``F1_l = 2 TP_l / (2 TP_l + FP_l + FN_l)``, the harmonic mean of
        precision and recall written without the two ratios, so it is defined
        for every class that occurs in ``y_true`` or ``y_pred``.
    macro-F1
        Mean of ``F1_l`` over the labels present in ``y_true`` *or* ``y_pred``
        (scikit-learn's default ``labels=None``). A label that occurs in
        neither does not count, even when ``num_labels`` says it exists: it
        has no true positive, false positive or false negative to score.
    micro-F1
        ``2 sum TP / (2 sum TP + sum FP + sum FN)``. With exactly one label per
        sample every error is one false positive and one false negative, so
        micro-F1 *equals accuracy*; it is reported for the tables that print
        both.
    ROC-AUC (binary tasks only)
        Area under the ROC curve of the score of class 1 (``probs[:, 1]``),
        computed as the normalised Mann-Whitney U statistic
        ``AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)`` where ``R_1`` is the
        sum of the ranks of the positive samples among all scores, tied
        scores getting the average of their ranks (a tied positive/negative
        pair counts 1/2). ``None`` without scores, for a task with more than
        two labels, or when ``y_true`` holds a single class.
        Reference: Hanley & McNeil (1982), "The meaning and use of the area
        under a receiver operating characteristic (ROC) curve", Radiology 143.

Multi-label (``y_true``, ``y_pred`` 2-D 0/1 indicator arrays, samples x labels)
    accuracy
        Exact-match (subset) accuracy: a sample counts only when every one of
        its label columns is right.
    macro-F1
        Mean of the per-column F1 over the columns with at least one positive
        in ``y_true`` or ``y_pred`` (the same "present in either" rule as
        single-label; scikit-learn's default would score an all-zero column
        as 0 and warn).
    micro-F1
        F1 of the TP/FP/FN pooled over all cells.
    ROC-AUC is ``None``. When no column has any positive, both F1 values are
    0.0 (scikit-learn's ``zero_division=0``).

Reference for the F1 averages: Sokolova & Lapalme (2009), "A systematic
analysis of performance measures for classification tasks", Information
Processing & Management 45(4).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _checked_labels(y_true: Any, y_pred: Any, num_labels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``y_pred`` as arrays of one shape: 1-D labels in range, or 2-D indicators."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    if t.ndim == 2:
        if num_labels is not None and t.shape[1] != num_labels:
            raise ValueError(f"multi-label y_true has {t.shape[1]} columns but num_labels={num_labels}")
        return t, p
    if t.ndim != 1:
        raise ValueError(f"y_true must be 1-D (single-label) or 2-D (multi-label indicators), got shape {t.shape}")
    if t.size == 0:
        raise ValueError("no samples: y_true and y_pred are empty")
    if num_labels is not None:
        _check_range(t, num_labels, "y_true")
        _check_range(p, num_labels, "y_pred")
    return t, p


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    probs: Any = None,
    num_labels: int | None = None,
) -> dict[str, Any]:
    """Metrics of one run on one split; see the module docstring for the formulas.

    Args:
        y_true: true labels, ``(n,)`` integers, or ``(n, L)`` 0/1 for multi-label.
        y_pred: predicted labels, the same shape as ``y_true``.
        probs: optional ``(n, k)`` class probabilities (or ``(n,)`` scores of
            class 1 for a binary task); only ROC-AUC uses them.
        num_labels: number of classes of the task. When given, labels must lie
            in ``0 .. num_labels - 1``; ``2`` marks the task binary. When
            omitted, a task is binary when ``probs`` has two columns (or is 1-D).
            It never changes which labels macro-F1 averages over. Multi-label:
            the number of indicator columns (checked); ``probs`` is ignored.

    Returns:
        ``{"accuracy", "macro_f1", "micro_f1", "roc_auc", "n_samples"}``; all
        Python floats (``roc_auc`` may be ``None``) and an int.
    """
    t, p = _checked_labels(y_true, y_pred, num_labels)
    if t.ndim == 2:
        return _multilabel_metrics(t, p)
    correct = t == p
    labels, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
    k = len(labels)
    tc, pc = codes[: t.size], codes[t.size :]
    tp = np.bincount(tc[correct], minlength=k)
    fn = np.bincount(tc, minlength=k) - tp
    fp = np.bincount(pc, minlength=k) - tp
    f1 = 2 * tp / (2 * tp + fp + fn)  # every label here occurs in t or p: denominator > 0
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())

    auc = None
    if probs is not None:
        scores = _binary_scores(probs, t.size, num_labels)
        if scores is not None:
            auc = roc_auc(t, scores)
    return {
        "accuracy": float(correct.mean()),
        "macro_f1": float(f1.mean()),
        "micro_f1": float(micro),
        "roc_auc": auc,
        "n_samples": int(t.size),
    }


def roc_auc(y_true: Any, scores: Any) -> float | None:
    """Binary ROC-AUC of ``scores`` (higher = more likely class 1) against 0/1 ``y_true``.

    ``AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)``: the Mann-Whitney U of the
    positives over the negatives, normalised; ties get average ranks, so a
    tied positive/negative pair counts 1/2. ``None`` when only one class is
    present (the curve is undefined).
    """
    t = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if t.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"y_true {t.shape} and scores {s.shape} must be 1-D of the same length")
    bad = ~np.isin(t, (0, 1))
    if bad.any():
        raise ValueError(f"ROC-AUC needs binary labels 0/1, found {t[bad][0]!r}")
    if not np.isfinite(s).all():
        raise ValueError("ROC-AUC scores must be finite (found NaN or inf)")
    positive = t == 1
    n1 = int(positive.sum())
    n0 = t.size - n1
    if n1 == 0 or n0 == 0:
        return None
    ranks = average_ranks(s)
    u = ranks[positive].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def average_ranks(values: Any) -> np.ndarray:
    """1-based ranks of ``values`` (ascending), tied values sharing the mean of their ranks, as float64.

    ``scipy.stats.rankdata(values, method="average")`` without importing
    scipy (about 1.5 s, more than a small evaluation): one stable sort; a run
    of ``m`` equal values occupying sorted positions ``i+1 .. i+m`` gets
    ``i + (m + 1) / 2`` each.
    """
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"average_ranks takes a 1-D array, got shape {v.shape}")
    order = np.argsort(v, kind="mergesort")
    ordered = v[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if v.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], v.size]
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def confusion_matrix(y_true: Any, y_pred: Any, num_labels: int | None = None) -> np.ndarray:
    """``(num_labels, num_labels)`` int64 counts: row = true label, column = predicted label.

    ``C[i, j]`` is the number of samples of true label ``i`` predicted as
    ``j`` (scikit-learn's orientation); the diagonal holds the hits. Labels
    must be integers in ``0 .. num_labels - 1``; ``num_labels`` defaults to
    the largest label seen plus one.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must be 1-D of the same length")
    t = _as_int_labels(t, "y_true")
    p = _as_int_labels(p, "y_pred")
    if num_labels is None:
        num_labels = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    _check_range(t, num_labels, "y_true")
    _check_range(p, num_labels, "y_pred")
    flat = np.bincount(t * num_labels + p, minlength=num_labels * num_labels)
    return flat.reshape(num_labels, num_labels).astype(np.int64)


# -- helpers ------------------------------------------------------------------


def _multilabel_metrics(t: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"multi-label {name} must be a 0/1 indicator array")
    if t.shape[0] == 0:
        raise ValueError("no samples: y_true and y_pred are empty")
    t = t.astype(bool)
    p = p.astype(bool)
    tp = (t & p).sum(axis=0)
    fp = (~t & p).sum(axis=0)
    fn = (t & ~p).sum(axis=0)
    denom = 2 * tp + fp + fn
    present = denom > 0
    if present.any():
        macro = float((2 * tp[present] / denom[present]).mean())
        micro = float(2 * tp.sum() / denom.sum())
    else:
        macro = micro = 0.0
    return {
        "accuracy": float((t == p).all(axis=1).mean()),
        "macro_f1": macro,
        "micro_f1": micro,
        "roc_auc": None,
        "n_samples": int(t.shape[0]),
    }


def _binary_scores(probs: Any, n: int, num_labels: int | None) -> np.ndarray | None:
    """Scores of class 1 when the task is binary, else None."""
    pr = np.asarray(probs, dtype=np.float64)
    if pr.shape[0] != n:
        raise ValueError(f"probs has {pr.shape[0]} rows but there are {n} samples")
    if pr.ndim == 1:
        if num_labels not in (None, 2):
            raise ValueError(f"1-D probs are scores of class 1 of a binary task, but num_labels={num_labels}")
        return pr
    if pr.ndim != 2:
        raise ValueError(f"probs must be (n, k) or (n,), got shape {pr.shape}")
    if num_labels is not None and pr.shape[1] != num_labels:
        raise ValueError(f"probs has {pr.shape[1]} columns but num_labels={num_labels}")
    return pr[:, 1] if pr.shape[1] == 2 else None


def _as_int_labels(a: np.ndarray, name: str) -> np.ndarray:
    integral = np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.bool_)
    whole_floats = np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and np.equal(np.mod(a, 1), 0).all()
    if a.size and not (integral or whole_floats):
        raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return a.astype(np.int64)


def _check_range(a: np.ndarray, num_labels: int, name: str) -> None:
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")
    a = _as_int_labels(a, name)
    bad = (a < 0) | (a >= num_labels)
    if bad.any():
        raise ValueError(f"{name} holds label {a[bad][0]} outside 0..{num_labels - 1} (num_labels={num_labels})")
