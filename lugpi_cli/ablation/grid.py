"""Ablation grids over any distill option: parsing, presets, validation, expansion into cells.

A grid maps keys to level lists (``--grid alpha=0,0.1,1,3,5 --grid beta=0,1``).
A key is either an option of the distillation method (``alpha``, ``beta``,
``tau``, ``soften``, ... — see ``lugpi distill --help`` and each method's
options) or a training option (``lr``, ``epochs``, ``batch_size``, ``init``,
``text_model``, ``max_length``, ``method`` ...). Every value is parsed and
checked for every cell before any training starts. ``--seeds N`` replicates
every setting with seeds 0..N-1. Each cell is an ordinary ``distill`` run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from lugpi_cli.errors import UserError
from lugpi_cli.loss_specs import Option, find_spec
from lugpi_cli.stages.common import GRID_TRAIN_KEYS, INIT_CHOICES
from lugpi_cli.training.config import TrainConfig

#: The student's own keys a grid (or ``--set``) may vary besides the training keys and the method's options.
STUDENT_KEYS = ("method", "text_model", "init")
#: Training keys whose level 0 turns them off (``None``: no step limit, no early stopping).
ZERO_IS_OFF = ("max_steps", "early_stopping")


def _derived_option(key: str) -> Option:
    """A training or student key's type, default, help and bound, from :class:`lugpi_cli.stages.student.Params`
    (the one source of the distill flags), so a grid level is read as the same flag would be."""
    from lugpi_cli.stages import student

    field = student.Params.param_fields()[key]
    option = field.option
    if key in ZERO_IS_OFF:
        return Option(int, 0, f"{field.meta.help} (0: off)", min=0)
    if key == "init":
        return Option(str, option.default, option.help, choices=INIT_CHOICES)
    return option


#: The paper's Table 2: no KD terms; soft labels only; L2 only; both (alpha 3, beta 1, tau 8).
PRESETS: dict[str, dict[str, list[Any]]] = {
    "loss-terms": {"alpha": [0.0, 3.0], "beta": [0.0, 1.0]},
}
PRESET_FIXED: dict[str, dict[str, Any]] = {"loss-terms": {"tau": 8.0}}


def parse_assignment(spec: str, *, flag: str) -> tuple[str, list[str]]:
    """``"alpha=0,0.1"`` -> ``("alpha", ["0", "0.1"])``."""
    key, sep, values = spec.partition("=")
    key = key.strip().replace("-", "_")
    levels = [v.strip() for v in values.split(",")]
    if not sep or not key or not values.strip() or any(v == "" for v in levels):
        raise UserError(f"bad {flag} {spec!r}", f"Use {flag} KEY=V1,V2,... e.g. {flag} alpha=0,1,3.")
    return key, levels


def parse_grid(specs: Iterable[str], *, flag: str = "--grid") -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, levels = parse_assignment(spec, flag=flag)
        if key in grid:
            raise UserError(f"{flag} {key} is given twice", f"Give all its levels at once: {flag} {key}=a,b,c.")
        if key == "seed":
            raise UserError("seed is not a grid key", "Use --seeds N to replicate every setting with seeds 0..N-1.")
        if len(set(levels)) != len(levels):
            raise UserError(f"{flag} {key} repeats a level: {','.join(levels)}")
        grid[key] = levels
    return grid


def _option_for(key: str, method: str) -> Option:
    if key in GRID_TRAIN_KEYS or key in STUDENT_KEYS:
        return _derived_option(key)
    options = find_spec(method).options
    if key in options:
        return options[key]
    valid = sorted({*GRID_TRAIN_KEYS, *STUDENT_KEYS, *options})
    raise UserError(f"unknown grid key {key!r} for method {method!r}", f"Valid keys: {', '.join(valid)}.")


def parse_value(key: str, text: Any, method: str) -> Any:
    option = _option_for(key, method)
    try:
        return option.parse(text) if isinstance(text, str) else option.check(text)
    except ValueError as exc:
        raise UserError(f"value {text!r} for {key!r} does not parse: {exc}",
                        f"{key} takes {option.describe()}.") from exc


@dataclass(frozen=True)
class Cell:
    """One grid point: the varied factor levels, the fixed settings, the seed."""

    factors: tuple[tuple[str, Any], ...]
    fixed: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def settings(self) -> dict[str, Any]:
        return {**dict(self.fixed), **dict(self.factors)}

    @property
    def method(self) -> str:
        return self.settings.get("method", "lugpi")

    def values(self) -> dict[str, Any]:
        """The cell as ``distill`` parameters (what ``lugpi_cli.stages.student.Params.from_mapping`` takes):
        its settings (level 0 of ``max_steps`` / ``early_stopping`` is off) and its seed."""
        out = {k: None if k in ZERO_IS_OFF and v == 0 else v for k, v in self.settings.items()}
        return {**out, "seed": self.seed}

    def student_and_train(self, base: TrainConfig) -> tuple[dict[str, Any], dict[str, Any], TrainConfig]:
        """(student options, loss options, training config) of this cell."""
        settings = self.settings
        student = {k: settings[k] for k in STUDENT_KEYS if k in settings}
        loss = {k: v for k, v in settings.items() if k not in GRID_TRAIN_KEYS and k not in STUDENT_KEYS}
        train = {}
        for key in GRID_TRAIN_KEYS:
            if key in settings:
                name = {"warmup": "warmup_ratio"}.get(key, key)
                train[name] = self.values()[key]
        return student, loss, replace(base, seed=self.seed, **train)


def expand(grid: Mapping[str, list[Any]], fixed: Mapping[str, Any], seeds: int) -> list[Cell]:
    """Every combination of levels x seeds, in grid order; values parsed and checked per cell's method."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    overlap = set(grid) & set(fixed)
    if overlap:
        raise UserError(f"{', '.join(sorted(overlap))} is both varied (--grid) and fixed (--set)")
    from lugpi_cli.stages import student

    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        raw = {**fixed, **dict(zip(keys, combo))}
        method = raw.get("method", "lugpi")
        parsed = {k: parse_value(k, v, method) for k, v in raw.items()}
        find_spec(parsed.get("method", "lugpi")).check_options(
            {k: v for k, v in parsed.items() if k not in GRID_TRAIN_KEYS and k not in STUDENT_KEYS})
        factors = tuple((k, parsed[k]) for k in keys)
        fixed_part = tuple(sorted((k, parsed[k]) for k in fixed))
        for seed in range(seeds):
            cells.append(Cell(factors, fixed_part, seed))
        student.Params.from_mapping(cells[-1].values())  # every cross-option check of a distill
    return list(dict.fromkeys(cells))
