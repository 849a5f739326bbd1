"""Ablation grids: n-way ANOVA over the grid's factors, per-setting summaries, validation-based selection.

A grid is a table (one row per run) with a column per factor (``alpha``,
``temperature``, ``loss`` ...), usually a ``seed`` column, and metric columns
(``validation_accuracy``, ``test_accuracy`` ...). A *setting* is one
combination of factor levels; its seeds are its replicates.

ANOVA (:func:`grid_anova`)
    Ordinary least squares of the response on the factors, each treated as
    categorical, and a type-II ANOVA table (each term's sum of squares given
    every other term that does not contain it; Langsrud 2003, "ANOVA for
    unbalanced data: Use Type II instead of Type III sums of squares",
    Statistics and Computing 13). ``F = (SS_term / df_term) / (SS_res / df_res)``
    and ``PR(>F)`` is its upper tail under ``F(df_term, df_res)``.

    Model rule
        Factors with a single level are dropped (nothing to compare) and
        reported. The model has *all interactions* (``a * b * c``) when the
        design is complete and replicated: every combination of the remaining
        factors' levels is present, each with at least two runs (e.g. several
        seeds). Otherwise it has *main effects only* (``a + b + c``): an
        unreplicated full-interaction model fits every cell exactly and leaves
        no residual degrees of freedom to test anything against, and missing
        cells make interaction terms inestimable.

    The table's attrs record what was fitted: ``attrs["formula"]`` (with the
    real factor names), ``attrs["interactions"]`` (bool),
    ``attrs["dropped_factors"]`` (single-level factors), ``attrs["n_runs"]``,
    ``attrs["dropped_runs"]`` (rows whose response is missing).

Selection (:func:`best_setting`)
    The best setting is chosen on the selection metric (validation) alone and
    the report metric (test) is only read off, so the test set never takes
    part in choosing. Means are over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas loads when a grid is analysed, not with the CLI
    import pandas as pd

from lugpi_cli.errors import UserError


def grid_anova(
    df: pd.DataFrame,
    response: str = "test_accuracy",
    factors: Sequence[str] = (),
    *,
    typ: int = 2,
) -> pd.DataFrame:
    """n-way ANOVA of ``response`` on the categorical ``factors`` of a grid of runs.

    Args:
        df: one row per run; must hold ``response`` and every factor column.
        response: the metric column to explain.
        factors: the grid's factor columns (not the seed: seeds are replicates).
        typ: the ANOVA sum-of-squares type passed to ``anova_lm`` (default 2).

    Returns:
        A DataFrame indexed by term (``"alpha"``, ``"alpha:loss"``, ...,
        ``"Residual"``) with columns ``sum_sq, df, F, PR(>F)`` (F and p are NaN
        for the residual row); ``attrs`` describes the model (module docstring).

    Raises:
        UserError: a column is missing, no factor has two levels, or there are
            too few runs to leave residual degrees of freedom.
    """
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    # 1. the inputs
    factors = list(factors)
    _require_columns(df, [response, *factors])
    if not factors:
        raise UserError("grid_anova needs at least one factor", "name the grid's factor columns")
    if len(set(factors)) != len(factors):
        raise UserError(f"a factor is named twice: {', '.join(factors)}")
    # 2. the runs with a response, each varying factor coded f0, f1, ...
    data, used, dropped_factors, dropped_runs = _coded(df, response, factors)
    # 3. the model: full interactions when every cell holds replicates, else main effects
    keys = [f"f{i}" for i in range(len(used))]
    interactions = _interactions_estimable(data, keys)
    joiner = " * " if interactions else " + "
    _require_residual_df(data, keys, interactions, response, used)
    # 4. fit, and name the terms by their factors
    table = anova_lm(ols("y ~ " + joiner.join(f"C({k})" for k in keys), data=data).fit(), typ=typ)
    names = dict(zip((f"C({k})" for k in keys), used))
    table.index = [
        term if term == "Residual" else ":".join(names.get(part, part) for part in term.split(":"))
        for term in table.index
    ]
    table = table[["sum_sq", "df", "F", "PR(>F)"]].copy()
    table.attrs.update(
        formula=f"{response} ~ " + joiner.join(used),
        interactions=interactions,
        dropped_factors=dropped_factors,
        n_runs=len(data),
        dropped_runs=dropped_runs,
    )
    return table


def _coded(df: pd.DataFrame, response: str, factors: list[str]) -> tuple[pd.DataFrame, list[str], list[str], int]:
    """``(data, used, dropped_factors, dropped_runs)``: column ``y`` (the numeric response of the runs that
    have one) and one integer-coded column ``f<i>`` per factor with two or more levels among them."""
    import pandas as pd

    y = pd.to_numeric(df[response], errors="coerce")
    keep = y.notna().to_numpy()
    dropped_runs = int((~keep).sum())
    data = pd.DataFrame({"y": y.to_numpy(dtype=np.float64)[keep]})
    used: list[str] = []
    dropped_factors: list[str] = []
    for name in factors:
        codes, _ = pd.factorize(df[name], use_na_sentinel=False)  # a missing level is a level
        codes = codes[keep]
        if len(np.unique(codes)) < 2:
            dropped_factors.append(name)
            continue
        data[f"f{len(used)}"] = codes
        used.append(name)
    if not used:
        raise UserError(
            f"no factor varies in the grid ({', '.join(factors)} each have a single level)",
            "an ANOVA needs a factor with at least two levels",
        )
    return data, used, dropped_factors, dropped_runs


def _full_cells(data: pd.DataFrame, keys: list[str]) -> int:
    return math.prod(int(data[k].nunique()) for k in keys)


def _interactions_estimable(data: pd.DataFrame, keys: list[str]) -> bool:
    """Whether every combination of levels occurs, each at least twice (so interactions can be estimated)."""
    cell_sizes = data.groupby(keys).size()
    return len(cell_sizes) == _full_cells(data, keys) and int(cell_sizes.min()) >= 2


def _require_residual_df(data: pd.DataFrame, keys: list[str], interactions: bool, response: str,
                         used: list[str]) -> None:
    n = len(data)
    model_df = (_full_cells(data, keys) if interactions else 1 + sum(int(data[k].nunique()) - 1 for k in keys))
    if n - model_df < 1:
        raise UserError(
            f"too few runs for an ANOVA of {response}: {n} runs and {model_df} model parameters "
            f"({', '.join(used)}) leave no residual degrees of freedom",
            "add seeds (replicates) or fewer factors",
        )


def summarize_grid(df: pd.DataFrame, factors: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of each metric over the runs (seeds) of every setting.

    Returns:
        One row per setting, in order of first appearance in ``df``: the
        factor columns, ``n_runs``, then ``<metric>_mean`` and ``<metric>_std``
        for each metric. The std is the sample standard deviation (ddof=1),
        NaN for a setting with a single run. Missing metric values are skipped.
    """
    factors, metrics = list(factors), list(metrics)
    _require_columns(df, [*factors, *metrics])
    if not factors:
        raise UserError("summarize_grid needs at least one factor")
    import pandas as pd

    values = df[metrics].apply(pd.to_numeric, errors="coerce")
    grouped = pd.concat([df[factors], values], axis=1).groupby(factors, sort=False, dropna=False)
    out = grouped.size().rename("n_runs").to_frame()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_std"] = grouped[m].std(ddof=1)
    return out.reset_index()


def best_setting(
    df: pd.DataFrame,
    factors: Sequence[str],
    select: str = "validation_accuracy",
    report: str = "test_accuracy",
    *,
    maximize: bool = True,
) -> dict[str, Any]:
    """The setting with the best mean ``select`` metric over its seeds, with its ``report`` metric.

    Only ``select`` decides; ``report`` is read off the chosen setting. Ties
    (means equal to 12 decimals) go to the setting that appears first in
    ``df``, so the answer is deterministic. ``maximize=False`` for metrics
    where lower is better (a loss). Settings whose ``select`` mean is missing
    are never chosen.

    Returns:
        ``{"setting": {factor: level}, "select": name, "select_mean",
        "select_std", "report": name, "report_mean", "report_std", "n_runs",
        "tied": [other settings with the same select mean]}``.
    """
    summary = summarize_grid(df, factors, [select] if select == report else [select, report])
    score = summary[f"{select}_mean"].round(12)
    if score.isna().all():
        raise UserError(f"no run has a value for {select!r}", "select on a metric the runs recorded")
    best_value = score.max() if maximize else score.min()
    tied = np.flatnonzero((score == best_value).to_numpy())
    row = summary.iloc[tied[0]]

    def setting(r: pd.Series) -> dict[str, Any]:
        return {f: _plain(r[f]) for f in factors}

    return {
        "setting": setting(row),
        "select": select,
        "select_mean": float(row[f"{select}_mean"]),
        "select_std": float(row[f"{select}_std"]),
        "report": report,
        "report_mean": float(row[f"{report}_mean"]),
        "report_std": float(row[f"{report}_std"]),
        "n_runs": int(row["n_runs"]),
        "tied": [setting(summary.iloc[i]) for i in tied[1:]],
    }


def _require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        raise UserError(
            f"the grid has no column(s) {', '.join(map(repr, missing))}",
            f"its columns are: {', '.join(map(str, df.columns))}",
        )


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars, so settings print and serialise cleanly."""
    return v.item() if isinstance(v, np.generic) else v
