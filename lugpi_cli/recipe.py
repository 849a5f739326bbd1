"""Recipes: a whole experiment in one TOML file, run stage by stage with `lugpi run`.

A recipe names a data set and the stages to run on it; each stage's keys are
exactly the options of the command that runs it (``batch_size`` is
``--batch-size``)::

    [dataset]                 # the DATASET argument and its options (paths relative to the recipe)
    name = "imdb"
    [generate]                # lugpi generate
    steps = 50
    [[embed]]                 # lugpi embed, once per table
    encoder = "clip"
    [[teacher]]               # lugpi train-teacher; `id` names it inside the recipe
    id = "clip-teacher"
    encoder = "clip"
    [[student]]               # lugpi distill; `teacher` is a teacher id (omit it for a baseline)
    id = "lugpi-clip"
    teacher = "clip-teacher"
    alpha = 3
    [ablate]                  # lugpi ablate; grid/set as tables, teacher as an id
    grid = { alpha = [0, 3], beta = [0, 1] }
    [evaluate]                # lugpi evaluate over the recipe's runs; baseline as an id
    baseline = "distilbert"
    [paper]                   # the paper's numbers per row id, printed beside the measured ones
    distilbert = { imdb = 0.0 }

Everything is checked — unknown keys (with the valid ones), values (by the
commands' own parsers, then the library's checks) — before any work starts.
Every stage is idempotent through the store and run hashing, so an
interrupted recipe resumes where it stopped; :func:`plan` tells what is cached
and what would be computed. No code is executed from the file (``tomllib``).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from lugpi_cli.errors import UserError, naming_given_value

STAGES = {"generate": "generate", "embed": "embed", "teacher": "train-teacher", "student": "distill",
          "ablate": "ablate", "evaluate": "evaluate"}
TOP_KEYS = {"title", "description", "dataset", "paper", *STAGES}
DATASET_KEYS = {"name", "data", "text_col", "label_col", "split_col", "prompt_col", "id_col", "limit",
                "data_config", "data_revision"}
RESERVED = {"json_out", "json", "run", "force", "dataset", "csv_path"}  # set by the runner, never by the recipe
PATH_KEYS = {"data", "csv", "out", "recipe"}


@dataclass
class Step:
    stage: str  # recipe section: generate, embed, teacher, student, ablate, evaluate
    id: str
    values: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)  # option -> recipe id it refers to
    params: dict[str, Any] = field(default_factory=dict)  # parsed by the command's own parser
    status: str = ""

    @property
    def command(self) -> str:
        return STAGES[self.stage]


@dataclass
class Recipe:
    path: Path
    title: str
    dataset: dict[str, Any]
    steps: list[Step]
    paper: dict[str, Any]

    def step(self, stage: str, id_: str) -> Step:
        return next(s for s in self.steps if s.stage == stage and s.id == id_)

    def ids(self, stage: str) -> list[str]:
        return [s.id for s in self.steps if s.stage == stage]


# -- loading and checking ----------------------------------------------------------------

def _group():
    import typer

    from lugpi_cli.app import app

    return typer.main.get_command(app)


def _resolve_path(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        candidate = (base / value).resolve()
        if candidate.exists():
            return str(candidate)
    return value


def read_toml(path: str | Path) -> dict[str, Any]:
    """A recipe file's tables (``tomllib``: no code runs); clear errors for a missing or broken file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"recipe {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {path} is not valid TOML: {exc}") from exc


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    document = read_toml(path)
    where = path.name
    unknown = sorted(set(document) - TOP_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}", f"Valid keys: {', '.join(sorted(TOP_KEYS))}.")
    dataset = _table(document, "dataset", where, required=True)
    bad = sorted(set(dataset) - DATASET_KEYS)
    if bad:
        raise UserError(f"{where}: unknown key dataset.{bad[0]}", f"Valid keys: {', '.join(sorted(DATASET_KEYS))}.")
    if "name" not in dataset:
        raise UserError(f"{where}: dataset.name is missing", "e.g. name = \"imdb\" or name = \"reviews.csv\"")
    base = path.resolve().parent
    dataset = {k: _resolve_path(base, v) if k in ("name", "data") else v for k, v in dataset.items()}
    name = Path(str(dataset["name"]))
    if name.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".parquet") and not name.exists():
        raise UserError(f"{where}: dataset.name {dataset['name']!r}: no such file",
                        "Give a built-in data set name or a table file (relative to the recipe or absolute).")
    from lugpi_cli.data.hf import is_hub_id

    if "data" in dataset and not Path(str(dataset["data"])).exists() and not is_hub_id(str(dataset["data"])):
        raise UserError(f"{where}: dataset.data {dataset['data']!r}: no such file or folder",
                        "Point it at the data set's archive, folder or file (relative to the recipe or absolute), "
                        "or give a Hugging Face Hub data set id (owner/name).")
    steps: list[Step] = []
    if "generate" in document:
        steps.append(Step("generate", "generate", _table(document, "generate", where)))
    for stage in ("embed", "teacher", "student"):
        entries = document.get(stage, [])
        entries = [entries] if isinstance(entries, dict) else entries
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise UserError(f"{where}: {stage} must be a table or an array of tables ([[{stage}]])")
        for i, entry in enumerate(entries):
            values = dict(entry)
            if stage == "embed":
                id_ = str(values.get("encoder", "clip"))
            else:
                id_ = values.pop("id", None)
                if not isinstance(id_, str) or not id_:
                    raise UserError(f"{where}: {stage}[{i}].id is missing", f"Give every [[{stage}]] an id = \"...\".")
            if stage != "embed" and any(s.stage in ("teacher", "student") and s.id == id_ for s in steps):
                raise UserError(f"{where}: the id {id_!r} is used twice", "Teacher and student ids must all differ.")
            if stage == "embed" and any(s.stage == "embed" and s.id == id_ for s in steps):
                raise UserError(f"{where}: the encoder {id_!r} is embedded twice")
            steps.append(Step(stage, id_, values))
    for stage in ("ablate", "evaluate"):
        if stage in document:
            steps.append(Step(stage, stage, _table(document, stage, where)))
    paper = _table(document, "paper", where)
    recipe = Recipe(path, str(document.get("title", path.stem)), dataset, steps, paper)
    check(recipe)
    return recipe


def _table(document: dict, key: str, where: str, required: bool = False) -> dict[str, Any]:
    value = document.get(key, {} if not required else None)
    if value is None:
        raise UserError(f"{where}: the [{key}] table is missing")
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key} must be a table ([{key}])")
    return dict(value)


def _argv(option_names: dict[str, Any], values: dict[str, Any], where: str) -> list[str]:
    """Recipe values -> command-line arguments, through the command's own option table."""
    args: list[str] = []
    for key, value in values.items():
        param = option_names.get(key)
        if param is None or key in RESERVED:
            valid = sorted({_key_of(p) for p in option_names.values()} - RESERVED - DATASET_KEYS)
            raise UserError(f"{where}: unknown key {key!r}", f"Valid keys: {', '.join(valid)}.")
        flag = param.opts[0]
        if getattr(param, "is_flag", False) and not isinstance(value, bool):
            raise UserError(f"{where}: {key} takes true or false, got {value!r}")
        if getattr(param, "is_flag", False):
            if value:
                args.append(flag)
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
            continue
        for item in (value if param.multiple and isinstance(value, list) else [value]):
            if isinstance(item, (dict, list)):
                raise UserError(f"{where}: {key} must be a single value, got {item!r}")
            args += [flag, str(item).lower() if isinstance(item, bool) else str(item)]
    return args


def _key_of(param: Any) -> str:
    """The recipe key users see for an option: its long name (``format`` for ``--format``)."""
    long = next((o for o in param.opts if o.startswith("--")), None)
    return long[2:].replace("-", "_") if long is not None else param.name


def _dataset_argv(recipe: Recipe) -> list[str]:
    args = [str(recipe.dataset["name"])]
    for key, value in recipe.dataset.items():
        if key != "name":
            args += ["--" + key.replace("_", "-"), str(value)]
    return args


def step_argv(recipe: Recipe, step: Step, runs: dict[str, str] | None = None) -> list[str]:
    """The full command line of a step (``runs`` maps recipe ids to run names once known)."""
    group = _group()
    command = group.commands[step.command]
    options = {p.name: p for p in command.params if p.param_type_name == "option"}
    for p in list(options.values()):  # the long option's name works too: format = "png" for --format
        long = next((o for o in p.opts if o.startswith("--")), None)
        if long is not None:
            options.setdefault(long[2:].replace("-", "_"), p)
    where = f"{recipe.path.name}: {step.stage}" + ("" if step.id == step.stage else f"[{step.id}]")
    values = dict(step.values)
    extra: list[str] = []
    base = recipe.path.resolve().parent
    values = {k: _resolve_path(base, v) if k in PATH_KEYS else v for k, v in values.items()}
    if step.stage in ("generate", "embed", "teacher"):
        extra = _dataset_argv(recipe)
    if step.stage in ("student", "ablate"):
        teacher = values.pop("teacher", None)
        if teacher is None and step.stage == "ablate" and len(recipe.ids("teacher")) == 1:
            teacher = recipe.ids("teacher")[0]  # the recipe's only teacher
        if teacher is not None:
            if teacher not in recipe.ids("teacher"):
                raise UserError(f"{where}: teacher {teacher!r} is not a [[teacher]] id of the recipe",
                                f"Teacher ids: {', '.join(recipe.ids('teacher')) or '(none)'}.")
            step.refs["teacher"] = teacher
            extra += ["--teacher", (runs or {}).get(teacher, f"<{teacher}>")]
        elif step.stage == "ablate" and recipe.ids("teacher"):
            raise UserError(f"{where}: the recipe has several teachers: say which one the grid distils from "
                            "(teacher = \"<id>\")",
                            f"Teacher ids: {', '.join(recipe.ids('teacher'))}.")
        else:
            extra += ["--dataset", *_dataset_argv(recipe)]
    if step.stage == "ablate":
        for table, flag in (("grid", "--grid"), ("set", "--set")):
            spec = values.pop(table, None)
            if isinstance(spec, dict):
                for key, levels in spec.items():
                    levels = levels if isinstance(levels, list) else [levels]
                    extra += [flag, f"{key}=" + ",".join(str(v) for v in levels)]
            elif spec is not None:
                values[table] = spec
    if step.stage == "evaluate":
        ids = values.pop("runs", None) or [*recipe.ids("teacher"), *recipe.ids("student")]
        baseline = values.pop("baseline", None)
        for ref in [*ids, *([baseline] if baseline else [])]:
            if ref not in [*recipe.ids("teacher"), *recipe.ids("student")]:
                raise UserError(f"{where}: {ref!r} is not a teacher or student id of the recipe")
        extra = [(runs or {}).get(ref, f"<{ref}>") for ref in ids]
        if baseline:
            extra += ["--baseline", (runs or {}).get(baseline, f"<{baseline}>")]
        if recipe.paper:
            extra += ["--paper", str(recipe.path)]
    return [step.command, *extra, *_argv(options, values, where)]


def check(recipe: Recipe) -> None:
    """Every key and value of every step, by the commands' own parsers and the library's checks."""
    group = _group()
    for step in recipe.steps:
        argv = step_argv(recipe, step)
        command = group.commands[step.command]
        where = f"{recipe.path.name}: {step.stage}" + ("" if step.id == step.stage else f"[{step.id}]")
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                ctx = command.make_context(step.command, argv[1:], resilient_parsing=False)
        except Exception as exc:  # the command's parser: bad type, out of range, missing value
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            message = naming_given_value(message, exc, argv[1:])
            raise UserError(f"{where}: {message}", "Each key is the command's option without the dashes.") from exc
        step.params = dict(ctx.params)
        _semantic_check(step, where)


def _semantic_check(step: Step, where: str) -> None:
    p = step.params
    try:
        if step.stage == "generate":
            from lugpi_cli.generation import GenerationConfig
            from lugpi_cli.generation.config import parse_size

            height, width = parse_size(p["size"])
            GenerationConfig(model=p["model"], steps=p["steps"], guidance=p["guidance"], height=height, width=width,
                             scheduler=p["scheduler"], timestep_spacing=p["timestep_spacing"],
                             image_format=p["image_format"], quality=p["quality"], seed=p["seed"]).check()
        elif step.stage == "teacher":
            from lugpi_cli.training.specs import TeacherSpec, teacher_modality

            TeacherSpec(modality=teacher_modality(p["modality"], p["arch"]), init=p["init"], arch=p["arch"],
                        modality_dropout=p["modality_dropout"],
                        gamma=p["gamma"]).check()
            _train_config(p).check()
        elif step.stage == "student":
            from lugpi_cli.commands.distill import flag_values, loss_options

            loss_options(p["method"], flag_values(p), p["option"] or [])
            _train_config(p).check()
            if p["init"] not in ("pretrained", "xavier"):
                raise UserError(f"unknown --init {p['init']!r}", "Choose pretrained or xavier.")
        elif step.stage == "ablate":
            from lugpi_cli.ablation.grid import expand, parse_assignment, parse_grid

            fixed = dict(parse_assignment(s, flag="--set") for s in p["fixed"] or [])
            if p["preset"] is None:
                expand(parse_grid(p["grid"] or []), {k: v[0] for k, v in fixed.items()}, p["seeds"] or 1)
    except UserError as exc:
        raise UserError(f"{where}: {exc.message}", exc.hint) from exc


def _train_config(p: dict[str, Any]):
    from lugpi_cli.commands.options import train_config

    return train_config(p)


# -- planning and running ------------------------------------------------------------------

def plan(recipe: Recipe, state, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per step: the command line, and what is cached vs what would be computed (no work done).

    ``context`` (if given) is filled with what the planning found: the images to generate, the runs to train
    (for :func:`gpu_estimate`).
    """
    from lugpi_cli.recipe_plan import step_status

    runs: dict[str, str] = {}
    rows = []
    context = {} if context is None else context
    for step in recipe.steps:
        status, run = step_status(recipe, step, state, runs, context)
        if run:
            runs[step.id] = run
        rows.append({"stage": step.stage, "id": step.id, "command": "lugpi " + " ".join(step_argv(recipe, step, runs)),
                     "status": status, "run": run,
                     "epochs": _epochs(step)})
    return rows


def _epochs(step: Step) -> Any:
    """The epochs a training step runs (an ablation's ``set`` wins over its own flag)."""
    if step.stage == "ablate":
        fixed = step.values.get("set")
        return fixed.get("epochs", step.params.get("epochs")) if isinstance(fixed, dict) else step.params.get("epochs")
    return step.params.get("epochs") if step.stage in ("teacher", "student") else None


def gpu_estimate(context: dict[str, Any]) -> dict[str, Any] | None:
    """A plan's GPU time from the paper's figures (:mod:`lugpi_cli.cost`); None without a generate stage."""
    from lugpi_cli.cost import estimate

    images = context.get("images")
    if images is None:
        return None
    return estimate(images["distinct"], images["to_generate"], context.get("to_train", 0))


def run_step(argv: list[str], workspace: Path, *, quiet: bool = False) -> dict[str, Any]:
    """One stage, exactly as on the command line, in this process; its JSON result."""
    from lugpi_cli import console

    saved = console.state()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = _group().main(args=["--workspace", str(workspace), *(["--quiet"] if quiet else []), *argv,
                                       "--json"], standalone_mode=False)
    finally:
        console.set_state(saved)
    if code != 0:
        raise UserError(f"`lugpi {' '.join(argv)}` failed (exit code {code})",
                        "Fix what it said and run the recipe again: finished stages are reused.")
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def execute(recipe: Recipe, state, log=None, *, quiet: bool = False) -> dict[str, Any]:
    runs: dict[str, str] = {}
    results: dict[str, Any] = {}
    for step in recipe.steps:
        argv = step_argv(recipe, step, runs)
        if log is not None:
            log(f"[{step.stage}{'' if step.id == step.stage else ' ' + step.id}] lugpi {' '.join(argv)}")
        result = run_step(argv, state.workspace, quiet=quiet or state.quiet)
        if step.stage in ("teacher", "student"):
            runs[step.id] = result["run"]
        results[f"{step.stage}:{step.id}"] = result
    return {"recipe": str(recipe.path), "title": recipe.title, "runs": runs, "results": results}


def paper_numbers(recipe_path: str | Path, state) -> dict[str, Any]:
    """Run name -> the paper's numbers for that row, from a recipe's [paper] table."""
    recipe = load_recipe(recipe_path)
    names = {row["id"]: row["run"] for row in plan(recipe, state) if row["run"]}
    return {names[id_]: value for id_, value in recipe.paper.items() if id_ in names}
