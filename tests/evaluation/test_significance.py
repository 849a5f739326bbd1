"""McNemar and Cochran's Q against hand-built tables and textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest, chi2

from lugpi_cli.evaluation import cochrans_q, mcnemar_test, significance_marker


def paired(n11: int, n10: int, n01: int, n00: int, seed: int = 0):
    """Correctness vectors with the given 2x2 counts, shuffled."""
    a = np.array([1] * n11 + [1] * n10 + [0] * n01 + [0] * n00, dtype=bool)
    b = np.array([1] * n11 + [0] * n10 + [1] * n01 + [0] * n00, dtype=bool)
    order = np.random.default_rng(seed).permutation(a.size)
    return a[order], b[order]


def test_table_orientation_and_counts():
    a, b = paired(40, 7, 3, 10)
    r = mcnemar_test(a, b)
    assert r["table"] == [[40, 7], [3, 10]]
    assert (r["b"], r["c"]) == (7, 3)  # b: A right & B wrong; c: A wrong & B right
    assert all(isinstance(v, int) for row in r["table"] for v in row)


@pytest.mark.parametrize("b,c", [(7, 3), (0, 9), (12, 12), (1, 0), (20, 4)])
def test_exact_pvalue_is_two_sided_binomial(b, c):
    a_, b_ = paired(30, b, c, 5)
    r = mcnemar_test(a_, b_)
    assert r["method"] == "exact"
    expected = binomtest(min(b, c), b + c, 0.5).pvalue
    explicit = min(1.0, 2 * sum(binom.pmf(i, b + c, 0.5) for i in range(min(b, c) + 1)))
    assert r["pvalue"] == pytest.approx(expected, rel=1e-12)
    assert r["pvalue"] == pytest.approx(explicit, rel=1e-12)
    assert r["statistic"] == min(b, c)


@pytest.mark.parametrize("b,c", [(30, 10), (13, 12), (60, 35)])
def test_chi2_with_continuity_correction(b, c):
    a_, b_ = paired(100, b, c, 20)
    r = mcnemar_test(a_, b_)
    assert r["method"] == "chi2"
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    assert r["statistic"] == pytest.approx(stat)
    assert r["pvalue"] == pytest.approx(chi2.sf(stat, 1))


@pytest.mark.parametrize("b", [15, 40])
def test_chi2_with_equal_discordant_counts_is_no_evidence(b):
    """b = c: the corrected statistic is max(0, |b - c| - 1)^2 / (b + c) = 0, not 1 / (b + c)."""
    r = mcnemar_test(*paired(50, b, b, 10))
    assert r["method"] == "chi2" and (r["statistic"], r["pvalue"]) == (0.0, 1.0)


def test_switch_at_25_discordant_pairs():
    assert mcnemar_test(*paired(10, 14, 10, 5))["method"] == "exact"  # 24
    assert mcnemar_test(*paired(10, 15, 10, 5))["method"] == "chi2"  # 25
    # forcing either way
    forced = mcnemar_test(*paired(10, 14, 10, 5), exact=False)
    assert forced["method"] == "chi2"
    assert forced["statistic"] == pytest.approx((4 - 1) ** 2 / 24)
    forced = mcnemar_test(*paired(10, 15, 10, 5), exact=True)
    assert forced["method"] == "exact"
    assert forced["pvalue"] == pytest.approx(binomtest(10, 25, 0.5).pvalue)


def test_no_discordant_pairs_is_no_evidence():
    for exact in (None, True, False):
        r = mcnemar_test([1, 1, 0], [1, 1, 0], exact=exact)
        assert (r["statistic"], r["pvalue"], r["b"], r["c"]) == (0.0, 1.0, 0, 0)


def test_mcnemar_input_checks():
    with pytest.raises(ValueError, match="align"):
        mcnemar_test([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="correctness"):
        mcnemar_test([0, 2], [1, 0])


def textbook_q(x: np.ndarray) -> float:
    x = x.astype(int)
    k = x.shape[1]
    C = x.sum(axis=0)
    R = x.sum(axis=1)
    N = x.sum()
    return (k - 1) * (k * np.sum(C**2) - N**2) / (k * N - np.sum(R**2))


def test_cochrans_q_small_example_by_hand():
    x = np.array(
        [
            [1, 1, 0],
            [1, 0, 0],
            [1, 1, 1],
            [0, 1, 0],
            [1, 0, 0],
            [1, 1, 0],
            [0, 0, 0],
        ],
        dtype=bool,
    )
    # C = (5, 4, 1), N = 10, R = (2, 1, 3, 1, 1, 2, 0), sum R^2 = 20
    # Q = 2 * (3 * 42 - 100) / (30 - 20) = 5.2
    r = cochrans_q(x)
    assert r["statistic"] == pytest.approx(5.2)
    assert r["df"] == 2
    assert r["pvalue"] == pytest.approx(chi2.sf(5.2, 2))
    assert r["pvalue"] == pytest.approx(math.exp(-5.2 / 2))  # chi2 with 2 df


@pytest.mark.parametrize("seed", range(4))
def test_cochrans_q_matches_textbook_formula(seed):
    rng = np.random.default_rng(seed)
    k = 3 + seed
    x = rng.random((80, k)) < np.linspace(0.5, 0.8, k)
    r = cochrans_q(x)
    q = textbook_q(x)
    assert r["statistic"] == pytest.approx(q)
    assert r["df"] == k - 1
    assert r["pvalue"] == pytest.approx(chi2.sf(q, k - 1))


def test_cochrans_q_degenerate_and_bad_input():
    assert cochrans_q(np.ones((5, 3), bool)) == {"statistic": 0.0, "pvalue": 1.0, "df": 2}
    assert cochrans_q(np.zeros((5, 3), bool))["pvalue"] == 1.0
    assert cochrans_q(np.array([[1, 1, 1], [0, 0, 0]]))["statistic"] == 0.0
    with pytest.raises(ValueError, match="mcnemar"):
        cochrans_q(np.ones((5, 2), bool))


def test_cochrans_q_with_two_runs_equals_uncorrected_mcnemar():
    # a sanity identity: with k = 2, Q = (b - c)^2 / (b + c); checked through the textbook formula
    a, b = paired(20, 9, 3, 4)
    x = np.column_stack([a, b])
    assert textbook_q(x) == pytest.approx((9 - 3) ** 2 / 12)


def test_significance_marker():
    assert significance_marker(0.0005) == "\u2021"
    assert significance_marker(0.001) == ""
    assert significance_marker(0.2) == ""
    assert significance_marker(0.04, alpha_level=0.05) == "\u2021"
    assert significance_marker(None) == ""
    assert significance_marker(float("nan")) == ""
