"""Metrics against values computed by hand or by independent loops in the test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lugpi_cli.evaluation import classification_metrics, confusion_matrix, roc_auc


def pairwise_auc(y, s):
    """O(n^2) definition: P(score of a positive > score of a negative), ties count 1/2."""
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


# -- confusion matrices -------------------------------------------------------


def test_confusion_2x2_by_hand():
    y = [0, 0, 0, 1, 1, 1, 1]
    p = [0, 1, 0, 1, 1, 0, 1]
    # true 0: predicted 0,1,0 -> [2, 1]; true 1: predicted 1,1,0,1 -> [1, 3]
    np.testing.assert_array_equal(confusion_matrix(y, p, 2), [[2, 1], [1, 3]])


def test_confusion_3x3_by_hand_rows_true_columns_predicted():
    y = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    p = [0, 2, 1, 0, 1, 2, 2, 1, 0]
    expected = np.array([[1, 0, 1], [1, 2, 0], [1, 1, 2]])
    c = confusion_matrix(y, p, 3)
    np.testing.assert_array_equal(c, expected)
    assert c.dtype == np.int64
    assert c.sum() == len(y)


def test_confusion_keeps_absent_labels_and_defaults_size():
    np.testing.assert_array_equal(confusion_matrix([0, 0], [0, 0], 3), [[2, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert confusion_matrix([0, 2], [1, 0]).shape == (3, 3)


def test_confusion_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="outside 0..1"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix([0.5, 1.0], [0, 1], 2)


# -- single-label F1 / accuracy -------------------------------------------------


def test_binary_metrics_by_hand():
    y = [0, 0, 0, 1, 1, 1, 1]
    p = [0, 1, 0, 1, 1, 0, 1]
    # class 0: tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3
    # class 1: tp 3, fp 1, fn 1 -> P 3/4, R 3/4, F1 3/4
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert m["micro_f1"] == pytest.approx(5 / 7)
    assert m["roc_auc"] is None  # no probabilities
    assert m["n_samples"] == 7


def test_three_class_f1_by_hand_from_precision_and_recall():
    y = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    p = [0, 2, 1, 0, 1, 2, 2, 1, 0]
    # confusion [[1,0,1],[1,2,0],[1,1,2]]
    prec = [1 / 3, 2 / 3, 2 / 3]  # column-wise: tp / predicted
    rec = [1 / 2, 2 / 3, 2 / 4]  # row-wise: tp / true
    f1 = [2 * a * b / (a + b) for a, b in zip(prec, rec)]
    m = classification_metrics(y, p, num_labels=3)
    assert m["accuracy"] == pytest.approx(5 / 9)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["micro_f1"] == pytest.approx(m["accuracy"])  # single-label: micro-F1 == accuracy


def test_macro_f1_averages_labels_present_in_either_array():
    # label 2 of num_labels=4 occurs only in the predictions (F1 = 0), label 3 nowhere (not counted)
    y = [0, 0, 1, 1]
    p = [0, 2, 1, 1]
    f1_0 = 2 * 1 / (2 * 1 + 0 + 1)  # tp 1, fp 0, fn 1
    f1_1 = 1.0
    f1_2 = 0.0
    m = classification_metrics(y, p, num_labels=4)
    assert m["macro_f1"] == pytest.approx((f1_0 + f1_1 + f1_2) / 3)


def test_micro_f1_equals_accuracy_for_random_single_label():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    m = classification_metrics(y, p)
    assert m["micro_f1"] == pytest.approx(m["accuracy"])


def test_metrics_reject_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 3], [0, 1], num_labels=2)
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])
    with pytest.raises(ValueError, match="columns"):
        classification_metrics([0, 1], [0, 1], probs=[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], num_labels=2)


# -- ROC-AUC ----------------------------------------------------------------------


def test_roc_auc_matches_pair_counting_with_ties():
    y = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0]
    s = [0.1, 0.4, 0.4, 0.8, 0.8, 0.35, 0.5, 0.9, 0.4, 0.1]
    assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_pair_counting_on_random_coarse_scores(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60) * 0.5 + 0.3 * y, 1)  # rounding makes many ties
    assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s), abs=1e-12)


def test_average_ranks_by_hand_and_against_scipy():
    from lugpi_cli.evaluation.metrics import average_ranks

    np.testing.assert_array_equal(average_ranks([3.0, 1.0, 3.0, 2.0, 3.0]), [4.0, 1.0, 4.0, 2.0, 4.0])
    np.testing.assert_array_equal(average_ranks([5, 5]), [1.5, 1.5])
    assert average_ranks([]).shape == (0,)
    rankdata = pytest.importorskip("scipy.stats").rankdata
    rng = np.random.default_rng(7)
    for values in (np.round(rng.random(500), 1), rng.integers(0, 3, 200), rng.random(300)):
        np.testing.assert_array_equal(average_ranks(values), rankdata(values, method="average"))


def test_roc_auc_does_not_import_scipy():
    import subprocess
    import sys

    code = ("import sys; from lugpi_cli.evaluation.metrics import classification_metrics as m; "
            "r = m([0, 1, 1, 0], [0, 1, 0, 0], probs=[[.9, .1], [.2, .8], [.6, .4], [.7, .3]], num_labels=2); "
            "assert r['roc_auc'] == 1.0, r; assert 'scipy' not in sys.modules, 'scipy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_roc_auc_in_metrics_uses_probability_of_class_1():
    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.2, 0.7, 0.4, 0.4, 0.9])
    probs = np.column_stack([1 - p1, p1])
    m = classification_metrics(y, (p1 > 0.5).astype(int), probs=probs)
    assert m["roc_auc"] == pytest.approx(pairwise_auc(y, p1))
    # 1-D scores are accepted as the score of class 1
    assert classification_metrics(y, y, probs=p1)["roc_auc"] == pytest.approx(m["roc_auc"])


def test_roc_auc_extremes_and_undefined_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 1, 1], [0.1, 0.5, 0.9]) is None  # one class only
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert classification_metrics([1, 1], [0, 1], probs=probs)["roc_auc"] is None
    # more than two classes: no ROC-AUC
    probs3 = np.full((3, 3), 1 / 3)
    assert classification_metrics([0, 1, 2], [0, 1, 2], probs=probs3)["roc_auc"] is None
    with pytest.raises(ValueError, match="binary"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.1, np.nan])


# -- multi-label --------------------------------------------------------------------


def test_multilabel_metrics_by_hand():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    # column 0: tp 2 fp 0 fn 0 -> 1; column 1: tp 1 fp 0 fn 1 -> 2/3; column 2: tp 0 fp 0 fn 1 -> 0
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(2 / 4)  # rows 1 and 3 match exactly
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 2))
    assert m["roc_auc"] is None


def test_multilabel_macro_skips_columns_absent_from_both():
    y = np.array([[1, 0], [0, 0]])
    p = np.array([[1, 0], [1, 0]])
    m = classification_metrics(y, p, num_labels=2)
    assert m["macro_f1"] == pytest.approx(2 / 3)  # column 0 only: tp 1 fp 1 fn 0
    with pytest.raises(ValueError, match="0/1"):
        classification_metrics(np.array([[2, 0]]), np.array([[1, 0]]))


# -- scikit-learn cross-check (optional) --------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_against_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    p = np.where(rng.random(300) < 0.5, y, rng.integers(0, 4, 300))
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"))
    assert m["micro_f1"] == pytest.approx(sk.f1_score(y, p, average="micro"))
    np.testing.assert_array_equal(confusion_matrix(y, p, 4), sk.confusion_matrix(y, p, labels=range(4)))

    yb = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * yb, 2)
    assert roc_auc(yb, scores) == pytest.approx(sk.roc_auc_score(yb, scores))

    ym = rng.integers(0, 2, (100, 5))
    ym[:, 4] = 0
    pm = np.where(rng.random((100, 5)) < 0.7, ym, 1 - ym)
    pm[:, 4] = 0  # a column absent from both: excluded, like passing only the present labels
    mm = classification_metrics(ym, pm)
    assert mm["accuracy"] == pytest.approx(sk.accuracy_score(ym, pm))
    assert mm["macro_f1"] == pytest.approx(sk.f1_score(ym, pm, average="macro", labels=range(4)))
    assert mm["micro_f1"] == pytest.approx(sk.f1_score(ym, pm, average="micro"))
