"""Stage 4, ``ablate``: a grid of distill runs, analysed (mean ± std, best setting, ANOVA, heatmap).

Every grid cell becomes a :class:`lugpi_cli.stages.student.Params` through
``student.Params.from_mapping`` and runs through :func:`lugpi_cli.stages.student.run`, so a cell and the
``lugpi distill`` command line with the same settings are the same run by construction: an interrupted
grid resumes, and a cell already run by hand is reused. Teacher outputs and features come from the
store: no cell generates, embeds or runs a teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.stages.common import DatasetParams, TrainingParams, dataset_params
from lugpi_cli.stages.params import opt
from lugpi_cli.stages.teacher import TEXT_MODEL_HELP
from lugpi_cli.workspace import Workspace

#: the keys of a recipe file's ``[ablate]`` table (``--recipe``)
RECIPE_KEYS = {"teacher", "dataset", "seeds", "preset", "jobs", "grid", "set"}
#: training parameters that are not the grid's: each cell names its own run and takes its seed from ``--seeds``
NOT_PER_CELL = ("run", "force", "seed")


@dataclass(frozen=True)
class Params(TrainingParams):
    STAGE = "ablate"

    dataset: DatasetParams | None = None  # the data set of a grid that needs no teacher (--dataset)
    grid: Optional[tuple[str, ...]] = opt((), "KEY=V1,V2,...: a factor and its levels (repeatable). Any distill "
                                          "option or training key.", short="-g", multiple=True)
    seeds: Optional[int] = opt(None, "Replicates per setting (seeds 0..N-1).", min=1)
    preset: Optional[str] = opt(None, "loss-terms: the paper's Table 2 (no KD; soft labels; L2; both) at alpha 3, "
                                "beta 1, tau 8.")
    fixed: Optional[tuple[str, ...]] = opt((), "KEY=VALUE held fixed in every cell (repeatable), e.g. --set tau=8.",
                                           flag="--set", short="-s", multiple=True)
    recipe: Optional[Path] = opt(None, "A TOML file with an \\[ablate] table (grid, set, seeds, preset, teacher, "
                                 "jobs).")
    teacher: Optional[str] = opt(None, "Teacher run (default: the most recent finished multimodal teacher, else the "
                                 "most recent teacher).", short="-t")
    jobs: Optional[int] = opt(None, "Cells in parallel (one per GPU when there are several; processes on CPU).",
                              short="-j", min=1)
    out: Optional[Path] = opt(None, "Output directory (default: WORKSPACE/ablations/<dataset>-<hash>).")
    text_model: str = opt(DEFAULT_TEXT_MODEL, TEXT_MODEL_HELP)
    limit: Optional[int] = opt(None, "At most N samples per split of the teacher's data set.", min=1, cli=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))
        object.__setattr__(self, "grid", tuple(self.grid or ()))
        object.__setattr__(self, "fixed", tuple(self.fixed or ()))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "", **extra: Any) -> "Params":
        """As every stage's, and ``grid`` / ``set`` also as tables ``{key: [levels]}`` (a recipe's)."""
        values = {k: _assignments(v) if k in ("grid", "set", "fixed") and isinstance(v, Mapping) else v
                  for k, v in values.items()}
        return super().from_mapping(values, where=where, **extra)

    def check(self) -> None:
        if self.run is not None:
            raise UserError("ablate names every cell's run itself: drop run", "Each cell is named by its settings.")
        self.check_training()
        design(self)

    def cell_values(self) -> dict[str, Any]:
        """What every cell shares: the training parameters (each cell varies or fixes some of them)."""
        return {k: getattr(self, k) for k in TrainingParams.param_fields() if k not in NOT_PER_CELL}


def _assignments(table: Mapping[str, Any]) -> tuple[str, ...]:
    """``{"alpha": [0, 3]}`` -> ``("alpha=0,3",)``: a recipe table in the command line's spelling."""
    return tuple(f"{key}=" + ",".join(str(v) for v in (levels if isinstance(levels, list) else [levels]))
                 for key, levels in table.items())


@dataclass(frozen=True)
class Design:
    """The grid after folding in the recipe file and the preset: factors, fixed settings, seeds, cells."""

    levels: dict[str, list[Any]]
    settings: dict[str, Any]
    seeds: int
    teacher: str | None
    dataset: str | None
    jobs: int
    cells: list = field(default_factory=list)


def design(params: Params) -> Design:
    """Fold ``--recipe``, ``--grid``, ``--preset`` and ``--set`` into one grid; every cell checked."""
    from lugpi_cli.ablation.grid import PRESET_FIXED, PRESETS, expand, parse_assignment, parse_grid

    section = read_recipe(params.recipe) if params.recipe else {}
    levels: dict[str, list[Any]] = {k: list(v) for k, v in section.get("grid", {}).items()}
    for key, values in parse_grid(params.grid).items():
        if key in levels:
            raise UserError(f"--grid {key} is also in the recipe's [ablate.grid]")
        levels[key] = values
    settings: dict[str, Any] = dict(section.get("set", {}))
    preset = params.preset or section.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}", f"Choose from {', '.join(PRESETS)}.")
        for key, values in PRESETS[preset].items():
            if key in levels:
                raise UserError(f"--grid {key} conflicts with --preset {preset}")
            levels[key] = values
        settings = {**PRESET_FIXED[preset], **settings}
    for spec in params.fixed:
        key, values = parse_assignment(spec, flag="--set")
        if len(values) != 1:
            raise UserError(f"--set {spec!r} gives several values", "Vary it with --grid instead.")
        settings[key] = values[0]
    settings.setdefault("text_model", params.text_model)
    if not levels:
        raise UserError("the grid is empty", "Give --grid KEY=V1,V2 (e.g. --grid alpha=0,1,3) or --preset loss-terms.")
    seeds = params.seeds or int(section.get("seeds", 1))
    return Design(levels, settings, seeds, params.teacher or section.get("teacher"),
                  section.get("dataset"), params.jobs or int(section.get("jobs", 1)),
                  expand(levels, settings, seeds))


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


def cell_params(params: Params, grid: Design, cell, teacher: str | None, project: str | None = None):
    """A cell as the distill stage's parameters: exactly what ``lugpi distill`` with its settings parses."""
    from lugpi_cli.stages import student

    values = {**params.cell_values(), **cell.values(), "teacher": teacher, "project": project}
    dataset = params.dataset
    if dataset is None and grid.dataset is not None:
        dataset = {"name": grid.dataset, "limit": params.limit}
    if dataset is None:
        values["limit"] = params.limit
    return student.Params.from_mapping(values, dataset=dataset)


@dataclass
class Plan:
    done: int
    cells: int
    run_name: None = None

    @property
    def to_train(self) -> int:
        return self.cells - self.done

    @property
    def status(self) -> str:
        return f"{self.done} of {self.cells} cells done, {self.to_train} to train"


def plan(ws: Workspace, params: Params, teacher_output_fingerprint: str | None = None) -> Plan:
    """How many of the grid's cells are done (their run names derived as ``distill``'s; no model is loaded)."""
    from lugpi_cli.stages import student

    grid = design(params)
    teacher = None if teacher_output_fingerprint is not None else _teacher_name(ws, params, grid)
    done = 0
    datasets: dict = {}  # every cell reads the same data set: resolved once
    for cell in grid.cells:
        try:
            planned = student.plan(ws, cell_params(params, grid, cell, teacher), teacher_output_fingerprint,
                                   cache=datasets)
        except UserError:
            continue
        done += planned.status.startswith("done")
    return Plan(done, len(grid.cells))


def _teacher_name(ws: Workspace, params: Params, grid: Design) -> str | None:
    """The one teacher every cell reads (its directory): ``--teacher``, else the default teacher for what the
    cells' methods read (also when no cell reads one but the grid has no data set: the teacher's is used)."""
    from lugpi_cli.loss_specs import resolve_loss

    read: set[str] = set()
    for cell in grid.cells:
        settings = cell.settings
        loss = {k: v for k, v in settings.items() if k not in _student_and_training_keys()}
        read |= resolve_loss(settings.get("method", "lugpi"), loss)[1]
    if grid.teacher is None and not read and (params.dataset is not None or grid.dataset is not None):
        return None
    return str(ws.teacher_run(grid.teacher, read).dir)


def _student_and_training_keys() -> set[str]:
    from lugpi_cli.ablation.grid import STUDENT_KEYS
    from lugpi_cli.stages.common import GRID_TRAIN_KEYS

    return {*STUDENT_KEYS, *GRID_TRAIN_KEYS}


@dataclass
class Result:
    out_dir: Path
    header: dict[str, Any]
    rows: list[dict[str, Any]]
    analysis: dict[str, Any]
    files: list[Path]
    factors: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "cells": len(self.rows),
                "trained": sum(r["status"] == "trained" for r in self.rows),
                "reused": sum(r["status"] == "reused" for r in self.rows),
                **self.header, "rows": self.rows, **self.analysis,
                "files": [str(self.out_dir / "results.csv"), str(self.out_dir / "results.json"),
                          *map(str, self.files)]}


def run(ws: Workspace, params: Params, on_cell: Callable[[int, dict[str, Any]], None] | None = None, *,
        on_start: Callable[[int, Path, list[str]], None] | None = None, verbose: int = 0) -> Result:
    """Run (or reuse) every cell, writing the results after each; analyse the grid.

    ``on_start(cells, out_dir, factors)`` before the first cell, ``on_cell(index, row)`` after each.
    """
    from lugpi_cli.ablation.analysis import analyse, write_analysis, write_results
    from lugpi_cli.ablation.runner import run_grid
    from lugpi_store import fingerprint

    # 1. resolve: the grid, the teacher every cell reads, each cell's distill parameters
    grid = design(params)
    teacher = _teacher_name(ws, params, grid)
    first = cell_params(params, grid, grid.cells[0], teacher)
    ds = _dataset(ws, first)
    header = {"dataset": ds.name, "teacher": Path(teacher).name if teacher else None,
              "grid": {k: [str(v) for v in vs] for k, vs in grid.levels.items()},
              "set": {k: str(v) for k, v in grid.settings.items()}, "seeds": grid.seeds}
    train = params.train_config(resolve_workers=False)
    out_dir = params.out or ws.ablations_path / \
        f"{ds.name}-{fingerprint({**header, 'train': train.hashed(), 'data': ds.fingerprint()})[:10]}"
    project = f"lugpi-ablate-{out_dir.name}"  # every cell under one tracker project
    cells = [cell_params(params, grid, cell, teacher, project) for cell in grid.cells]
    # 2. run the cells (each an ordinary distill run), the results file rewritten after each
    rows: list[dict[str, Any] | None] = [None] * len(cells)

    def done(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        write_results(out_dir, rows, header)
        if on_cell is not None:
            on_cell(i, row)

    factors = list(grid.levels)
    if on_start is not None:
        on_start(len(cells), out_dir, factors)
    run_grid(ws, grid.cells, cells, jobs=grid.jobs, verbose=verbose, on_result=done)
    # 3. analyse: mean ± std per setting, the best on validation, ANOVA, heatmap
    analysis = analyse(rows, factors)
    files = write_analysis(out_dir, analysis, rows)
    return Result(out_dir, header, rows, analysis, files, factors)


def _dataset(ws: Workspace, cell):
    """The data set every cell trains on (the teacher's, or ``--dataset``'s), resolved once."""
    from lugpi_cli.data.snapshot import limit_dataset
    from lugpi_cli.stages.data import dataset_and_request
    from lugpi_cli.stages.runs import teacher_dataset

    store = ws.open_training_store()  # multi-node: read-only except on rank 0
    if cell.dataset is not None:
        return dataset_and_request(cell.dataset, store)[0]
    return limit_dataset(teacher_dataset(store, ws.find_run(cell.teacher)), cell.limit)
