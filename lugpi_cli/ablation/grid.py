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
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.training.config import TrainConfig

#: Training keys a grid (or ``--set``) may vary, with their types and bounds.
TRAIN_OPTIONS: dict[str, Option] = {
    "epochs": Option(int, 3, "training epochs", min=1),
    "lr": Option(float, 5e-5, "learning rate", min=0, min_exclusive=True),
    "batch_size": Option(int, 14, "mini-batch size", min=1),
    "grad_accum": Option(int, 1, "gradient accumulation steps", min=1),
    "max_steps": Option(int, 0, "stop after N optimizer steps (0: no limit)", min=0),
    "max_length": Option(int, 512, "max tokens per text", min=8),
    "warmup": Option(float, 0.0, "warm-up fraction", min=0),
    "weight_decay": Option(float, 0.01, "AdamW weight decay", min=0),
    "early_stopping": Option(int, 0, "patience in epochs (0: off)", min=0),
}
STUDENT_OPTIONS: dict[str, Option] = {
    "method": Option(str, "lugpi", "distillation method"),
    "text_model": Option(str, DEFAULT_TEXT_MODEL, "student text model"),
    "init": Option(str, "pretrained", "initialisation", choices=("pretrained", "xavier")),
}

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
    if key in TRAIN_OPTIONS:
        return TRAIN_OPTIONS[key]
    if key in STUDENT_OPTIONS:
        return STUDENT_OPTIONS[key]
    options = find_spec(method).options
    if key in options:
        return options[key]
    valid = sorted({*TRAIN_OPTIONS, *STUDENT_OPTIONS, *options})
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

    def student_and_train(self, base: TrainConfig) -> tuple[dict[str, Any], dict[str, Any], TrainConfig]:
        """(student options, loss options, training config) of this cell."""
        settings = self.settings
        student = {k: settings[k] for k in STUDENT_OPTIONS if k in settings}
        loss = {k: v for k, v in settings.items() if k not in TRAIN_OPTIONS and k not in STUDENT_OPTIONS}
        train = {}
        for key in TRAIN_OPTIONS:
            if key in settings:
                value = settings[key]
                name = {"warmup": "warmup_ratio"}.get(key, key)
                train[name] = None if key in ("max_steps", "early_stopping") and value == 0 else value
        return student, loss, replace(base, seed=self.seed, **train)


def expand(grid: Mapping[str, list[Any]], fixed: Mapping[str, Any], seeds: int) -> list[Cell]:
    """Every combination of levels x seeds, in grid order; values parsed and checked per cell's method."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    overlap = set(grid) & set(fixed)
    if overlap:
        raise UserError(f"{', '.join(sorted(overlap))} is both varied (--grid) and fixed (--set)")
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        raw = {**fixed, **dict(zip(keys, combo))}
        method = raw.get("method", "lugpi")
        parsed = {k: parse_value(k, v, method) for k, v in raw.items()}
        find_spec(parsed.get("method", "lugpi")).check_options(
            {k: v for k, v in parsed.items() if k not in TRAIN_OPTIONS and k not in STUDENT_OPTIONS})
        factors = tuple((k, parsed[k]) for k in keys)
        fixed_part = tuple(sorted((k, parsed[k]) for k in fixed))
        for seed in range(seeds):
            cells.append(Cell(factors, fixed_part, seed))
    return list(dict.fromkeys(cells))
