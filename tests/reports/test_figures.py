"""Figures at real sizes keep the layout rules: bounded size, at most 5 panel columns, titles inside the figure
and not overlapping, legends off the data, percent units, the right plot kind for the grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lugpi_cli.reports.plots import (
    DPI,
    MAX_COLUMNS,
    MAX_INCHES,
    density_figure,
    grid_figure,
    history_accuracies,
    learning_curve_figure,
)

from .test_tables import CLASSES


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5


def layout_problems(fig) -> list[str]:
    """Every rule a figure breaks (empty when it is fine)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    problems = []
    width, height = fig.get_size_inches()
    if width > MAX_INCHES[0] + 1e-6 or height > MAX_INCHES[1] + 1e-6:
        problems.append(f"figure {width:.1f} x {height:.1f} in")
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    columns = {round(ax.get_position().x0, 3) for ax in axes}
    if len(columns) > MAX_COLUMNS:
        problems.append(f"{len(columns)} panel columns")
    titles = [t for t in [ax.title for ax in axes] + ([fig._suptitle] if fig._suptitle else []) if t.get_text()]
    extents = [t.get_window_extent(renderer) for t in titles]
    for t, e in zip(titles, extents):
        if e.x0 < box.x0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y0 < box.y0 - 0.5 or e.y1 > box.y1 + 0.5:
            problems.append(f"title {t.get_text()!r} leaves the figure")
    for i in range(len(extents)):
        for j in range(i + 1, len(extents)):
            if _overlap(extents[i], extents[j]):
                problems.append(f"titles {titles[i].get_text()!r} and {titles[j].get_text()!r} overlap")
    for legend in fig.legends + [ax.get_legend() for ax in axes if ax.get_legend()]:
        extent = legend.get_window_extent(renderer)
        for ax in axes:
            if _overlap(extent, ax.get_window_extent(renderer)):
                problems.append("a legend covers a panel")
    for ax in axes:
        label_box = ax.get_tightbbox(renderer)
        if label_box.x0 < box.x0 - 1 or label_box.x1 > box.x1 + 1 or label_box.y0 < box.y0 - 1:
            problems.append(f"panel {ax.get_title()!r} is cut at the figure's edge")
    return problems


def _densities(n_classes: int, runs: list[str]):
    rng = np.random.default_rng(0)
    probs = {run: [rng.beta(4, 2, 60) for _ in range(n_classes)] for run in runs}
    return density_figure(probs, CLASSES[:n_classes], "P(c) on the test samples of class c")


RUNS = ["teacher", "student: LUGPI student (α=3 τ=8, β=1) [soften=both, tau2=true]", "baseline"]


@pytest.mark.parametrize("n_classes", [2, 20])
def test_density_grid_keeps_the_rules(n_classes):
    fig = _densities(n_classes, RUNS)
    assert layout_problems(fig) == []
    width, height = fig.get_size_inches() * DPI
    assert width <= 1800 and height <= 1400, (width, height)  # not 8,800 x 352
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == n_classes
    if n_classes == 20:
        assert {round(ax.get_position().x0, 3) for ax in visible}.__len__() == 5  # 4 rows of 5
        assert fig.legends and all(not ax.get_legend() for ax in visible)  # one legend, outside


def _grid(factors: dict[str, list], seeds: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for values in pd.MultiIndex.from_product(list(factors.values())):
        values = values if isinstance(values, tuple) else (values,)
        for seed in range(seeds):
            rows.append({**dict(zip(factors, values)), "seed": seed, "test_accuracy": 0.8 + 0.05 * rng.random()})
    return pd.DataFrame(rows)


def test_one_varied_factor_is_a_bar_plot_with_error_bars():
    df = _grid({"alpha": [0, 0.1, 1, 3, 5]})
    fig = grid_figure(df, ["alpha"])
    assert layout_problems(fig) == []
    (ax,) = fig.axes
    bars = ax.patches
    assert len(bars) == 5 and not ax.images  # bars, not a one-column heatmap
    means = df.groupby("alpha")["test_accuracy"].mean().to_numpy() * 100
    assert np.allclose([b.get_height() for b in bars], means)
    errors = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert errors, "error bars over seeds"
    assert "%" in ax.get_ylabel() and "3 seed(s)" in ax.get_title()


def test_heatmap_annotations_and_colour_bar_are_both_percent():
    df = _grid({"alpha": [0, 1, 3], "tau": [1, 4, 8], "beta": [0, 1]}, seeds=2)
    fig = grid_figure(df, ["alpha", "tau", "beta"])
    assert layout_problems(fig) == []
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 9 and all(t.endswith("%") for t in cells)
    expected = 100 * df[(df.alpha == 3) & (df.tau == 8)]["test_accuracy"].mean()
    assert f"{expected:.1f}%" in cells
    colour_bar = fig.axes[1]
    assert "(%)" in colour_bar.get_ylabel()
    ticks = [t.get_text() for t in colour_bar.get_yticklabels() if t.get_text()]
    assert ticks and all(t.endswith("%") for t in ticks)
    values = ax.images[0].get_array()
    assert 50 < float(values.mean()) <= 100  # the colours are in percent too
    assert "averaged over beta" in " ".join(ax.get_title().split())


def test_learning_curves_mean_and_band_over_seeds():
    curves = {"alpha=0": [[0.5, 0.6, 0.7], [0.5, 0.62, 0.72]], "alpha=3": [[0.55, 0.66, 0.76]]}
    fig = learning_curve_figure(curves, "validation accuracy per epoch")
    assert layout_problems(fig) == []
    ax = fig.axes[0]
    first, second = ax.get_lines()
    assert np.allclose(first.get_ydata(), [50, 61, 71]) and list(first.get_xdata()) == [1, 2, 3]
    assert np.allclose(second.get_ydata(), [55, 66, 76])
    assert len(ax.collections) == 1  # a ± std band only where there are several seeds
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == ["alpha=0 (n=2)", "alpha=3"]


def test_history_accuracies_reads_epochs_in_order():
    rows = [{"epoch": 2, "val_accuracy": 0.7}, {"epoch": 1, "val_accuracy": 0.6}, {"epoch": 3}]
    assert history_accuracies(rows) == [0.6, 0.7]


def test_ablation_curves_group_cells_by_setting_over_seeds(tmp_path):
    import json

    from lugpi_cli.ablation.analysis import setting_curves

    rows = []
    for alpha in (0, 3):
        for seed in (0, 1):
            run_dir = tmp_path / f"cell-{alpha}-{seed}"
            run_dir.mkdir()
            (run_dir / "history.jsonl").write_text("".join(
                json.dumps({"epoch": e, "val_accuracy": 0.1 * e + 0.01 * seed + alpha / 100}) + "\n"
                for e in (1, 2)))
            rows.append({"alpha": alpha, "beta": 1, "seed": seed, "run_dir": str(run_dir)})
    rows.append({"alpha": 5, "beta": 1, "seed": 0, "run_dir": str(tmp_path / "missing")})  # no history: left out
    curves = setting_curves(rows, ["alpha"])
    assert list(curves) == ["alpha=0", "alpha=3"]
    assert np.allclose(curves["alpha=3"], [[0.13, 0.23], [0.14, 0.24]])
    fig = learning_curve_figure(curves, "validation accuracy per epoch, mean ± std over seeds")
    assert layout_problems(fig) == [] and len(fig.axes[0].collections) == 2
