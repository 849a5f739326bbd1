"""Plots written as PNG files (matplotlib's Agg backend: no display needed).

Layout rules every figure here keeps (checked by ``tests/reports/test_figures.py``):
at most :data:`MAX_COLUMNS` panels per row, a bounded size (:data:`MAX_INCHES`
at :data:`DPI`), titles that fit their panel and never leave the figure, and
legends outside the plotted data. Accuracies are shown in percent everywhere —
cell annotations, axes and colour bars alike.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

MAX_COLUMNS = 5
MAX_INCHES = (16.0, 12.0)  # width, height
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))


def _fit(text: str, width: int = 26, lines: int = 2) -> str:
    """``text`` wrapped to ``lines`` lines of ``width`` characters (ellipsis beyond)."""
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder="…")) or text


def save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _legend_below(fig: Any, handles: list, labels: list[str], top: float = 0.93) -> None:
    """One legend under all panels (never over the bars), with the panels laid out above it."""
    ncol = max(1, min(len(labels), 3 if max(map(len, labels), default=0) < 40 else 1))
    rows = math.ceil(len(labels) / ncol)
    height = fig.get_size_inches()[1]
    bottom = min(0.35, (0.3 + 0.25 * rows) / height)
    fig.legend(handles, [_fit(label, 60, 1) for label in labels], loc="lower center", ncol=ncol, frameon=False,
               fontsize=9, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, bottom, 1, top))


def density_figure(probs: Mapping[str, Sequence[np.ndarray]], class_names: Sequence[str], title: str) -> Any:
    """Per class c, histograms of P(c) over the samples of class c, one curve per run.

    ``probs[run][c]`` holds run's P(c) on the samples whose label is c. Panels
    fill a grid of at most :data:`MAX_COLUMNS` columns.
    """
    plt = _pyplot()
    n = len(class_names)
    cols = min(MAX_COLUMNS, n)
    rows = math.ceil(n / cols)
    legend_inches = 0.5 + 0.25 * len(probs)
    width = min(MAX_INCHES[0], 3.1 * cols + 0.4)
    height = min(MAX_INCHES[1], 2.3 * rows + 0.8 + legend_inches)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, sharex=True)
    bins = np.linspace(0, 1, 21)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.set_visible(False)
            continue
        for name, per_class in probs.items():
            ax.hist(per_class[c], bins=bins, histtype="step", linewidth=1.4, label=name, density=True)
        ax.set_title(_fit(str(class_names[c]), 28 if cols > 3 else 40), fontsize=9)
        ax.tick_params(labelsize=8)
        if c % cols == 0:
            ax.set_ylabel("density", fontsize=8)
        if c >= n - cols:
            ax.set_xlabel("P(class)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    _legend_below(fig, handles, labels)
    return fig


def _grid_table(df: pd.DataFrame, rows_f: str, cols_f: str, metric: str) -> pd.DataFrame:
    return 100 * df.groupby([rows_f, cols_f], sort=True)[metric].mean().unstack(cols_f)


def grid_figure(df: pd.DataFrame, factors: Sequence[str], metric: str = "test_accuracy") -> Any:
    """The grid's ``metric`` in percent: one varied factor as bars with ± std error bars over seeds; two or
    more as a heatmap of the seed mean over the first two (averaged over the others), annotations and colour
    bar both in percent."""
    plt = _pyplot()
    name = metric.replace("_", " ")
    if len(factors) == 1:
        factor = factors[0]
        stats = df.groupby(factor, sort=True)[metric].agg(["mean", "std", "count"])
        fig, ax = plt.subplots(figsize=(min(MAX_INCHES[0], 2.2 + 0.9 * len(stats)), 3.6))
        x = np.arange(len(stats))
        ax.bar(x, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), capsize=4, color="#4c72b0")
        ax.set_xticks(x, [str(v) for v in stats.index])
        ax.set_xlabel(factor)
        ax.set_ylabel(f"{name} (%)")
        _percent_axis(ax.yaxis)
        seeds = int(stats["count"].max())
        ax.set_title(_fit(f"{name}: mean ± std over {seeds} seed(s)", 44), fontsize=10)
        fig.tight_layout()
        return fig
    rows_f, cols_f = factors[0], factors[1]
    table = _grid_table(df, rows_f, cols_f, metric)
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(min(MAX_INCHES[0], 2.6 + 0.9 * table.shape[1]),
                                    min(MAX_INCHES[1], 1.8 + 0.5 * table.shape[0])))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel(cols_f)
    ax.set_ylabel(rows_f)
    finite = values[np.isfinite(values)]
    low, span = (finite.min(), (finite.max() - finite.min()) or 1.0) if finite.size else (0.0, 1.0)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}%", ha="center", va="center", fontsize=8,
                    color="white" if value < low + span / 2 else "black")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{name} (%)")
    _percent_axis(bar.ax.yaxis)
    rest = list(factors[2:])
    title = f"mean {name} over seeds" + (f", averaged over {', '.join(rest)}" if rest else "")
    ax.set_title(_fit(title, 40), fontsize=10)
    fig.tight_layout()
    return fig


def grid_heatmap(df: pd.DataFrame, factors: Sequence[str], path: Path, metric: str = "test_accuracy") -> Path:
    """:func:`grid_figure` saved to ``path`` (the ablation's ``heatmap.png``)."""
    return save(grid_figure(df, factors, metric), path)


def learning_curve_figure(curves: Mapping[str, Sequence[Sequence[float]]], title: str) -> Any:
    """Validation accuracy per epoch, one line per model or setting: the mean over its seeds, with a ± std
    band when there are several. ``curves[label]`` is one accuracy list (epoch 1, 2, ...) per seed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6 + 0.22 * len(curves)))
    for label, runs in curves.items():
        length = max(len(r) for r in runs)
        matrix = np.full((len(runs), length), np.nan)
        for i, r in enumerate(runs):
            matrix[i, :len(r)] = r
        epochs = np.arange(1, length + 1)
        mean = 100 * np.nanmean(matrix, axis=0)
        line, = ax.plot(epochs, mean, marker="o", markersize=3, linewidth=1.6,
                        label=label + (f" (n={len(runs)})" if len(runs) > 1 else ""))
        if len(runs) > 1:
            with warnings.catch_warnings():  # an epoch only one seed reached (early stopping) has no std
                warnings.simplefilter("ignore", RuntimeWarning)
                std = 100 * np.nanstd(matrix, axis=0, ddof=1)
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.18, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    _percent_axis(ax.yaxis)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_title(_fit(title, 70), fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    _legend_below(fig, handles, labels, top=1.0)
    return fig


def history_accuracies(history: Sequence[Mapping[str, Any]]) -> list[float]:
    """The validation accuracy of each epoch of a run's ``history.jsonl`` rows, in epoch order."""
    rows = sorted((r for r in history if r.get("val_accuracy") is not None), key=lambda r: r.get("epoch", 0))
    return [float(r["val_accuracy"]) for r in rows]


__all__ = ["DPI", "MAX_COLUMNS", "MAX_INCHES", "density_figure", "grid_figure", "grid_heatmap",
           "history_accuracies", "learning_curve_figure", "save"]
