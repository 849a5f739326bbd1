"""Plots written as PNG files (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid_heatmap(df: pd.DataFrame, factors: Sequence[str], path: Path, metric: str = "test_accuracy") -> Path:
    """Mean ``metric`` over seeds for the two main factors (rows = first, columns = second); one factor: one row."""
    plt = _pyplot()
    rows_f = factors[0]
    cols_f = factors[1] if len(factors) > 1 else None
    data = df.assign(_all="all") if cols_f is None else df
    cols_f = cols_f or "_all"
    table = data.groupby([rows_f, cols_f], sort=True)[metric].mean().unstack(cols_f)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * table.shape[1], 1.0 + 0.6 * table.shape[0]), dpi=120)
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel("" if cols_f == "_all" else cols_f)
    ax.set_ylabel(rows_f)
    values = table.to_numpy(dtype=float)
    span = (values.max() - values.min()) or 1.0
    for (i, j), value in pd.DataFrame(values).stack().items():
        ax.text(j, i, f"{100 * value:.1f}", ha="center", va="center",
                color="white" if value < values.min() + span / 2 else "black", fontsize=9)
    fig.colorbar(image, ax=ax, label=f"mean {metric.replace('_', ' ')}")
    ax.set_title(f"mean {metric.replace('_', ' ')} over seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
