"""Evaluation: metrics, paired significance tests, teacher-student agreement, grid ANOVA.

Pure functions on numpy arrays and pandas tables; the ``evaluate`` and
``ablate`` commands read run directories and call them.

>>> from lugpi_cli.evaluation import read_predictions, align, mcnemar_test
>>> ids, runs = align({"base": read_predictions("base/test.csv"),       # doctest: +SKIP
...                    "student": read_predictions("student/test.csv")})
>>> mcnemar_test(runs["base"].correct, runs["student"].correct)        # doctest: +SKIP

Modules: :mod:`.metrics` (accuracy, F1, ROC-AUC, confusion),
:mod:`.significance` (McNemar, Cochran's Q), :mod:`.agreement` (label
agreement, KL), :mod:`.alignment` (predictions files, join by sample id),
:mod:`.anova` (ANOVA, summaries and selection over ablation grids).
"""

from lugpi_cli.evaluation.agreement import agreement, kl_divergence
from lugpi_cli.evaluation.alignment import Predictions, align, read_predictions, write_predictions
from lugpi_cli.evaluation.anova import best_setting, grid_anova, summarize_grid
from lugpi_cli.evaluation.metrics import classification_metrics, confusion_matrix, roc_auc
from lugpi_cli.evaluation.significance import cochrans_q, mcnemar_test, significance_marker

__all__ = [
    "Predictions",
    "agreement",
    "align",
    "best_setting",
    "classification_metrics",
    "cochrans_q",
    "confusion_matrix",
    "grid_anova",
    "kl_divergence",
    "mcnemar_test",
    "read_predictions",
    "roc_auc",
    "significance_marker",
    "summarize_grid",
    "write_predictions",
]
