"""ANOVA over synthetic ablation grids, per-setting summaries and validation-based selection."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import best_setting, grid_anova, summarize_grid


def synthetic_grid(seed: int, seeds: int = 3, noise: float = 0.01) -> pd.DataFrame:
    """accuracy = 0.7 + 0.1 * alpha_index + noise; the temperature does nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for (ai, alpha), temp, s in itertools.product(enumerate([0.1, 0.5, 1.0]), [1, 2, 4], range(seeds)):
        rows.append(
            {
                "alpha": alpha,
                "temperature": temp,
                "loss": "kl",  # a single-level factor
                "seed": s,
                "test_accuracy": 0.7 + 0.1 * ai + rng.normal(0, noise),
            }
        )
    return pd.DataFrame(rows)


def test_real_factor_is_significant_dummy_is_not():
    table = grid_anova(synthetic_grid(seed=0), "test_accuracy", ["alpha", "temperature"])
    assert list(table.columns) == ["sum_sq", "df", "F", "PR(>F)"]
    assert list(table.index) == ["alpha", "temperature", "alpha:temperature", "Residual"]
    assert table.loc["alpha", "PR(>F)"] < 0.001
    assert table.loc["temperature", "PR(>F)"] > 0.05
    assert table.loc["alpha", "df"] == 2 and table.loc["alpha:temperature", "df"] == 4
    assert table.loc["Residual", "df"] == 27 - 9
    assert np.isnan(table.loc["Residual", "F"])
    assert table.attrs["interactions"] is True
    assert table.attrs["formula"] == "test_accuracy ~ alpha * temperature"


@pytest.mark.parametrize("seed", range(1, 9))
def test_not_flaky_across_seeds(seed):
    # The dummy factor's p-value is uniform under H0; at 0.05 one seed in twenty would fail,
    # so the fixed seed above is what keeps the suite deterministic. These seeds were checked.
    table = grid_anova(synthetic_grid(seed=seed), "test_accuracy", ["alpha", "temperature"])
    assert table.loc["alpha", "PR(>F)"] < 0.001
    assert table.loc["temperature", "PR(>F)"] > 0.05


def test_against_one_way_anova_by_hand():
    df = synthetic_grid(seed=3)
    groups = [g["test_accuracy"].to_numpy() for _, g in df.groupby("alpha")]
    grand = df["test_accuracy"].mean()
    ss_between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    ss_within = sum(((g - g.mean()) ** 2).sum() for g in groups)
    f = (ss_between / 2) / (ss_within / (len(df) - 3))
    table = grid_anova(df, "test_accuracy", ["alpha"])
    assert table.loc["alpha", "sum_sq"] == pytest.approx(ss_between)
    assert table.loc["Residual", "sum_sq"] == pytest.approx(ss_within)
    assert table.loc["alpha", "F"] == pytest.approx(f)
    from scipy.stats import f_oneway

    assert table.loc["alpha", "PR(>F)"] == pytest.approx(f_oneway(*groups).pvalue)


def test_unreplicated_grid_has_main_effects_only():
    df = synthetic_grid(seed=0, seeds=1)
    table = grid_anova(df, "test_accuracy", ["alpha", "temperature"])
    assert list(table.index) == ["alpha", "temperature", "Residual"]
    assert table.attrs["interactions"] is False
    assert table.loc["Residual", "df"] == 9 - 1 - 2 - 2


def test_incomplete_grid_has_main_effects_only():
    df = synthetic_grid(seed=0)
    df = df[~((df.alpha == 1.0) & (df.temperature == 4))]  # one cell missing
    table = grid_anova(df, "test_accuracy", ["alpha", "temperature"])
    assert table.attrs["interactions"] is False
    assert "alpha:temperature" not in table.index


def test_single_level_factors_are_dropped_and_reported():
    table = grid_anova(synthetic_grid(seed=0), "test_accuracy", ["alpha", "loss", "temperature"])
    assert table.attrs["dropped_factors"] == ["loss"]
    assert "loss" not in table.index
    assert table.attrs["interactions"] is True


def test_factor_names_that_are_not_identifiers_and_missing_responses():
    df = synthetic_grid(seed=0).rename(columns={"alpha": "kd alpha", "temperature": "T-1"})
    df.loc[0, "test_accuracy"] = np.nan  # a failed run
    table = grid_anova(df, "test_accuracy", ["kd alpha", "T-1"])
    assert list(table.index) == ["kd alpha", "T-1", "kd alpha:T-1", "Residual"]
    assert table.attrs["dropped_runs"] == 1 and table.attrs["n_runs"] == 26


def test_anova_user_errors():
    df = synthetic_grid(seed=0)
    with pytest.raises(UserError, match="no column.*'beta'"):
        grid_anova(df, "test_accuracy", ["alpha", "beta"])
    with pytest.raises(UserError, match="single level"):
        grid_anova(df, "test_accuracy", ["loss"])
    tiny = df[(df.seed == 0) & (df.temperature == 1)]  # 3 runs, 3 levels of alpha
    with pytest.raises(UserError, match="residual degrees of freedom"):
        grid_anova(tiny, "test_accuracy", ["alpha"])


def test_summarize_grid_mean_and_std_over_seeds():
    df = pd.DataFrame(
        {
            "alpha": [0.5, 0.5, 0.5, 1.0, 1.0, 0.1],
            "seed": [0, 1, 2, 0, 1, 0],
            "acc": [0.70, 0.72, 0.74, 0.80, 0.90, 0.60],
        }
    )
    s = summarize_grid(df, ["alpha"], ["acc"])
    assert list(s.columns) == ["alpha", "n_runs", "acc_mean", "acc_std"]
    assert s["alpha"].tolist() == [0.5, 1.0, 0.1]  # order of first appearance
    assert s["n_runs"].tolist() == [3, 2, 1]
    assert s["acc_mean"].tolist() == pytest.approx([0.72, 0.85, 0.60])
    assert s["acc_std"].iloc[0] == pytest.approx(np.std([0.70, 0.72, 0.74], ddof=1))
    assert s["acc_std"].iloc[1] == pytest.approx(np.std([0.80, 0.90], ddof=1))
    assert np.isnan(s["acc_std"].iloc[2])


def selection_grid() -> pd.DataFrame:
    # setting (a=1, b=x) is best on validation; (a=2, b=y) is best on test
    rows = []
    means = {(1, "x"): (0.90, 0.80), (1, "y"): (0.85, 0.82), (2, "x"): (0.80, 0.84), (2, "y"): (0.88, 0.95)}
    for (a, b), (val, test) in means.items():
        for s, d in enumerate([-0.01, 0.0, 0.01]):
            rows.append({"a": a, "b": b, "seed": s, "validation_accuracy": val + d, "test_accuracy": test - d})
    return pd.DataFrame(rows)


def test_best_setting_selects_on_validation_not_test():
    best = best_setting(selection_grid(), ["a", "b"])
    assert best["setting"] == {"a": 1, "b": "x"}
    assert best["select_mean"] == pytest.approx(0.90)
    assert best["report_mean"] == pytest.approx(0.80)  # not the best test accuracy (0.95)
    assert best["n_runs"] == 3
    assert best["tied"] == []
    assert type(best["setting"]["a"]) is int
    # selecting on test would pick another setting: the two metrics really disagree here
    assert best_setting(selection_grid(), ["a", "b"], select="test_accuracy")["setting"] == {"a": 2, "b": "y"}


def test_best_setting_ties_go_to_first_setting_and_minimize():
    df = selection_grid()
    df.loc[(df.a == 2) & (df.b == "y"), "validation_accuracy"] = df.loc[
        (df.a == 1) & (df.b == "x"), "validation_accuracy"
    ].to_numpy()
    best = best_setting(df, ["a", "b"])
    assert best["setting"] == {"a": 1, "b": "x"}
    assert best["tied"] == [{"a": 2, "b": "y"}]
    reordered = pd.concat([df[(df.a == 2) & (df.b == "y")], df]).drop_duplicates()
    assert best_setting(reordered, ["a", "b"])["setting"] == {"a": 2, "b": "y"}
    low = best_setting(df, ["a", "b"], select="validation_accuracy", maximize=False)
    assert low["setting"] == {"a": 2, "b": "x"}
