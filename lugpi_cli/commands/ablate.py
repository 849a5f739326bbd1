"""``lugpi ablate --grid alpha=0,1,3 --grid beta=0,1 --seeds 3``: a grid of distill runs, analysed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import (
    BatchSizeOpt,
    DeviceOpt,
    EpochsOpt,
    JsonFlag,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    ReportToOpt,
    TextModelOpt,
    dataset_options,
)
from lugpi_cli.commands.training_common import dataset_and_request
from lugpi_cli.data.snapshot import DatasetRequest
from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.multinode import open_training_store
from lugpi_cli.training.runs import find_run
from lugpi_store import fingerprint

RECIPE_KEYS = {"teacher", "dataset", "seeds", "preset", "jobs", "grid", "set"}


def read_recipe(path: Path) -> dict[str, Any]:
    """The ``[ablate]`` table of a TOML recipe, keys checked (no code is executed)."""
    from lugpi_cli.recipe import read_toml

    section = read_toml(path).get("ablate")
    if not isinstance(section, dict):
        raise UserError(f"recipe {path} has no [ablate] table", "Put the grid under [ablate.grid].")
    unknown = sorted(set(section) - RECIPE_KEYS)
    if unknown:
        raise UserError(f"unknown key ablate.{unknown[0]} in {path}", f"Valid keys: {', '.join(sorted(RECIPE_KEYS))}.")
    for table in ("grid", "set"):
        if table in section and not isinstance(section[table], dict):
            raise UserError(f"ablate.{table} in {path} must be a table", f"e.g. [ablate.{table}] alpha = [0, 3]")
    for key, levels in section.get("grid", {}).items():
        if not isinstance(levels, list) or not levels:
            raise UserError(f"ablate.grid.{key} in {path} must be a non-empty list", f"e.g. {key} = [0, 1, 3]")
    return section


def ablate_command(
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", help="KEY=V1,V2,...: a factor and its "
                                                      "levels (repeatable). Any distill option or training key.")]
    = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", min=1, help="Replicates per setting (seeds 0..N-1).")]
    = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="loss-terms: the paper's Table 2 (no KD; soft "
                                                  "labels; L2; both) at alpha 3, beta 1, tau 8.")] = None,
    fixed: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="KEY=VALUE held fixed in every cell "
                                                       "(repeatable), e.g. --set tau=8.")] = None,
    recipe: Annotated[Optional[Path], typer.Option("--recipe", help="A TOML file with an \\[ablate] table "
                                                   "(grid, set, seeds, preset, teacher, jobs).")] = None,
    teacher: Annotated[Optional[str], typer.Option("--teacher", "-t", help="Teacher run (default: the most "
                                                   "recent finished multimodal teacher, else the most recent "
                                                   "teacher).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Data set for grids that need no teacher.")]
    = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Cells in parallel (one per GPU when "
                                                "there are several; processes on CPU).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output directory (default: "
                                                "WORKSPACE/ablations/<dataset>-<hash>).")] = None,
    text_model: TextModelOpt = DEFAULT_TEXT_MODEL,
    epochs: EpochsOpt = 3,
    lr: LrOpt = 5e-5,
    batch_size: BatchSizeOpt = 14,
    max_length: MaxLengthOpt = 512,
    max_steps: MaxStepsOpt = None,
    device: DeviceOpt = "auto",
    report_to: ReportToOpt = "none",
    data_options: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Run a grid of distill settings and analyse it (mean ± std, best setting, ANOVA, heatmap).

    Every cell is an ordinary `lugpi distill` run, so an interrupted grid resumes
    where it stopped and a cell already run by hand is reused. Teacher outputs
    and features come from the store: no cell generates, embeds or runs a teacher.
    """
    from lugpi_cli.ablation.analysis import analyse, write_analysis, write_results
    from lugpi_cli.ablation.grid import PRESET_FIXED, PRESETS, expand, parse_assignment, parse_grid
    from lugpi_cli.ablation.runner import GridContext, run_grid
    from lugpi_cli.losses import build_loss
    from lugpi_cli.training.loop import TrainConfig
    from lugpi_cli.training.stages import default_teacher, full_fingerprint_of, teacher_dataset

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    section = read_recipe(recipe) if recipe else {}
    levels: dict[str, list[Any]] = {k: list(v) for k, v in section.get("grid", {}).items()}
    for key, values in parse_grid(grid or []).items():
        if key in levels:
            raise UserError(f"--grid {key} is also in the recipe's [ablate.grid]")
        levels[key] = values
    settings: dict[str, Any] = dict(section.get("set", {}))
    preset = preset or section.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}", f"Choose from {', '.join(PRESETS)}.")
        for key, values in PRESETS[preset].items():
            if key in levels:
                raise UserError(f"--grid {key} conflicts with --preset {preset}")
            levels[key] = values
        settings = {**PRESET_FIXED[preset], **settings}
    for spec in fixed or []:
        key, values = parse_assignment(spec, flag="--set")
        if len(values) != 1:
            raise UserError(f"--set {spec!r} gives several values", "Vary it with --grid instead.")
        settings[key] = values[0]
    settings.setdefault("text_model", text_model)
    if not levels:
        raise UserError("the grid is empty", "Give --grid KEY=V1,V2 (e.g. --grid alpha=0,1,3) or --preset loss-terms.")
    n_seeds = seeds or int(section.get("seeds", 1))
    cells = expand(levels, settings, n_seeds)
    losses = [build_loss(c.method, **c.student_and_train(TrainConfig())[1]) for c in cells]
    needs_teacher = any(loss.requires_teacher for loss in losses)
    read = set().union(*(loss.teacher_fields for loss in losses if loss.requires_teacher))

    store = open_training_store(state)  # multi-node: read-only except on rank 0
    teacher = teacher or section.get("teacher")
    dataset = dataset or section.get("dataset")
    teacher_run = find_run(state.runs_path, teacher) if teacher else None
    if teacher_run is None and (needs_teacher or dataset is None):
        teacher_run = default_teacher(state.runs_path, read)
    if teacher_run is not None and teacher_run.config().get("kind") != "teacher":
        raise UserError(f"{teacher_run.name} is not a teacher run")
    limit = data_options["limit"]
    if dataset is None:
        ds = teacher_dataset(store, teacher_run)
        info = dict(teacher_run.config()["dataset"])
        if limit is not None:
            from lugpi_cli.data.snapshot import limit_dataset

            ds = limit_dataset(ds, limit)
            info["limit"] = limit
    else:
        ds, info = dataset_and_request(DatasetRequest(dataset, **data_options), store)
    info = {**info, "name": ds.name, "fingerprint": ds.fingerprint(), "full_fingerprint": full_fingerprint_of(store, info)}
    base = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, max_length=max_length, max_steps=max_steps,
                       report_to=report_to).check()
    header = {"dataset": ds.name, "teacher": teacher_run.name if teacher_run else None,
              "grid": {k: [str(v) for v in vs] for k, vs in levels.items()},
              "set": {k: str(v) for k, v in settings.items()}, "seeds": n_seeds}
    out_dir = out or state.workspace / "ablations" / \
        f"{ds.name}-{fingerprint({**header, 'train': base.hashed(), 'data': ds.fingerprint()})[:10]}"
    base = replace(base, project=f"lugpi-ablate-{out_dir.name}")  # every cell under one tracker project
    ctx = GridContext(store.path, state.runs_path, teacher_run.dir if teacher_run else None, info, base, device)
    factors = list(levels)
    rows: list[dict[str, Any] | None] = [None] * len(cells)
    bar = console.ProgressBar("cells", unit="cell", kept=f"grid cells finished (in {out_dir / 'results.csv'})")

    def done(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        write_results(out_dir, rows, header)
        shown = " ".join(f"{k}={row[k]}" for k in factors)
        bar.log(f"{shown} seed={row['seed']}: {row['status']}, validation {row['validation_accuracy']:.4f}, "
                f"test {row['test_accuracy']:.4f}")
        bar.advance(1)

    with bar:
        bar.start(len(cells))
        run_grid(ctx, cells, jobs=jobs or int(section.get("jobs", 1)), verbose=state.verbose, on_result=done)
    analysis = analyse(rows, factors)
    files = write_analysis(out_dir, analysis, rows)
    result = {"out_dir": str(out_dir), "cells": len(cells),
              "trained": sum(r["status"] == "trained" for r in rows), "reused": sum(r["status"] == "reused" for r in rows),
              **header, "rows": rows, **analysis,
              "files": [str(out_dir / "results.csv"), str(out_dir / "results.json"), *map(str, files)]}

    def render(out_console: Console) -> None:
        render_analysis(out_console, analysis, factors)
        out_console.print(f"{result['trained']} cell(s) trained, {result['reused']} reused.  Files in {out_dir}:")
        for path in result["files"]:
            out_console.print(f"  {path}")

    console.emit(result, render)


def render_analysis(out: Console, analysis: dict[str, Any], factors: list[str]) -> None:
    summary = Table(*factors, "n", "validation", "test", title="mean ± std over seeds", title_justify="left")
    for row in analysis["summary"]:
        summary.add_row(*(str(row[f]) for f in factors), str(row["n_runs"]),
                        _pm(row["validation_accuracy_mean"], row["validation_accuracy_std"]),
                        _pm(row["test_accuracy_mean"], row["test_accuracy_std"]))
    out.print(summary)
    best = analysis.get("best")
    if best:
        out.print(best_line(best))
    anova = analysis.get("anova")
    if anova:
        table = Table("term", "df", "sum sq", "F", "p", title=f"ANOVA (type II) of test accuracy: {anova['formula']}",
                      title_justify="left")
        for row in anova["rows"]:
            table.add_row(str(row["term"]), f"{row['df']:g}", f"{row['sum_sq']:.4g}",
                          "-" if row["F"] is None else f"{row['F']:.3f}",
                          "-" if row["PR(>F)"] is None else f"{row['PR(>F)']:.3g}")
        out.print(table)
    elif analysis.get("anova_note"):
        out.print(f"ANOVA: not computed ({analysis['anova_note']}).")


def best_line(best: dict[str, Any]) -> str:
    """The best setting on validation; when others have the same validation mean, says so and names them."""
    def shown(setting: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in setting.items())

    scores = f"validation {100 * best['select_mean']:.2f}%, test {100 * best['report_mean']:.2f}%"
    tied = best.get("tied") or []
    if not tied:
        return f"best on validation: {shown(best['setting'])}  ({scores})"
    others = "; ".join(shown(t) for t in tied)
    return (f"best on validation: {len(tied) + 1} settings tied at validation {100 * best['select_mean']:.2f}%: "
            f"{shown(best['setting'])} (listed first, test {100 * best['report_mean']:.2f}%); also {others}")


def _pm(mean: Any, std: Any) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def register(app: typer.Typer) -> None:
    app.command("ablate")(dataset_options(ablate_command))
