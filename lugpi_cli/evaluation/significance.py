"""Paired significance tests on per-sample correctness: McNemar (2 runs), Cochran's Q (>= 3).

Both tests compare classifiers evaluated on the *same* samples (align the
runs first, :func:`lugpi_cli.evaluation.align`) and look only at whether each
run got each sample right.

McNemar (two runs A and B)
    The 2x2 table ``[[n11, n10], [n01, n00]]`` counts samples both got right
    (n11), only A got right (``b = n10``), only B got right (``c = n01``) and
    both got wrong (n00). Under H0 (same error rate) a discordant sample is
    equally likely to favour either run:

    * exact: ``statistic = min(b, c)``,
      ``p = min(1, 2 * BinomCDF(min(b, c); b + c, 1/2))`` (two-sided);
    * chi2 (with Edwards' continuity correction):
      ``statistic = max(0, |b - c| - 1)^2 / (b + c)``, ``p = P(chi2_1 > statistic)``.

    The exact test is used when ``b + c < 25`` (:data:`EXACT_BELOW`), the
    usual rule of thumb, where the chi-square approximation is poor.
    References: McNemar (1947), Psychometrika 12(2); Dietterich (1998),
    "Approximate statistical tests for comparing supervised classification
    learning algorithms", Neural Computation 10(7).

Cochran's Q (k >= 3 runs)
    With ``C_j`` the number of samples run j got right, ``R_i`` the number of
    runs that got sample i right and ``N = sum_j C_j = sum_i R_i``:
    ``Q = (k - 1) [k sum_j C_j^2 - N^2] / [k N - sum_i R_i^2]``,
    asymptotically chi2 with ``k - 1`` degrees of freedom under H0 (all runs
    have the same accuracy). Reference: Cochran (1950), "The comparison of
    percentages in matched samples", Biometrika 37(3/4).

Degenerate case: when no sample is discordant (every run right, or every run
wrong, on every sample) there is no evidence of a difference and both tests
return ``statistic = 0.0, pvalue = 1.0`` (statsmodels' formulas would divide
0 by 0 there).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: McNemar uses the exact binomial test when the discordant count b + c is below this.
EXACT_BELOW = 25

#: The paper marks p < 0.001 with a double dagger.
DEFAULT_ALPHA = 0.001
MARKER = "\u2021"  # ‡


def mcnemar_test(correct_a: Any, correct_b: Any, *, exact: bool | None = None) -> dict[str, Any]:
    """McNemar's test of two runs from paired per-sample correctness.

    Args:
        correct_a, correct_b: ``(n,)`` booleans (or 0/1), True where the run
            predicted sample i right; the same samples in the same order.
        exact: True / False forces the exact binomial / chi-square test;
            None (default) picks exact when ``b + c < 25``.

    Returns:
        ``{"statistic", "pvalue", "method": "exact" | "chi2", "b", "c", "table"}``
        where ``b`` = A right and B wrong, ``c`` = A wrong and B right and
        ``table = [[both right, b], [c, both wrong]]`` (ints). The statistic is
        ``min(b, c)`` for the exact test and the corrected chi-square otherwise.
    """
    a = _as_bool_vector(correct_a, "correct_a")
    b_ = _as_bool_vector(correct_b, "correct_b")
    if a.shape != b_.shape:
        raise ValueError(f"correct_a has {a.size} samples but correct_b has {b_.size}; align the runs first")
    n11 = int(np.sum(a & b_))
    n10 = int(np.sum(a & ~b_))
    n01 = int(np.sum(~a & b_))
    n00 = int(np.sum(~a & ~b_))
    table = [[n11, n10], [n01, n00]]
    discordant = n10 + n01
    use_exact = discordant < EXACT_BELOW if exact is None else bool(exact)
    if discordant == 0:
        statistic, pvalue = 0.0, 1.0
    else:
        from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar  # loaded when a test runs

        res = _sm_mcnemar(np.array(table, dtype=np.float64), exact=use_exact, correction=True)
        statistic, pvalue = float(res.statistic), float(res.pvalue)
        if not use_exact and n10 == n01:  # the correction must not push |b - c| below 0
            statistic, pvalue = 0.0, 1.0
    return {
        "statistic": statistic,
        "pvalue": pvalue,
        "method": "exact" if use_exact else "chi2",
        "b": n10,
        "c": n01,
        "table": table,
    }


def cochrans_q(correct_matrix: Any) -> dict[str, Any]:
    """Cochran's Q test that k >= 3 runs have the same accuracy on the same samples.

    Args:
        correct_matrix: ``(n_samples, n_runs)`` booleans (or 0/1), True where
            run j predicted sample i right.

    Returns:
        ``{"statistic": Q, "pvalue", "df": k - 1}`` (floats and an int).
    """
    x = np.asarray(correct_matrix)
    if x.ndim != 2:
        raise ValueError(f"correct_matrix must be 2-D (samples x runs), got shape {x.shape}")
    if x.shape[1] < 3:
        raise ValueError(f"Cochran's Q needs at least 3 runs, got {x.shape[1]}; compare two runs with mcnemar_test")
    if x.shape[0] == 0:
        raise ValueError("correct_matrix has no samples")
    if not np.isin(x, (0, 1)).all():
        raise ValueError("correct_matrix must hold booleans or 0/1")
    x = x.astype(bool)
    df = int(x.shape[1] - 1)
    row_hits = x.sum(axis=1)
    if np.all((row_hits == 0) | (row_hits == x.shape[1])):
        return {"statistic": 0.0, "pvalue": 1.0, "df": df}
    from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q

    res = _sm_cochrans_q(x.astype(np.float64))
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "df": df}


def significance_marker(pvalue: float | None, alpha_level: float = DEFAULT_ALPHA) -> str:
    """``"‡"`` when ``pvalue < alpha_level`` (the paper's double dagger for p < 0.001), else ``""``.

    A missing (None or NaN) p-value gets no marker.
    """
    if pvalue is None or (isinstance(pvalue, float) and math.isnan(pvalue)):
        return ""
    return MARKER if pvalue < alpha_level else ""


def _as_bool_vector(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold booleans or 0/1 (per-sample correctness), not labels")
    return a.astype(bool)
