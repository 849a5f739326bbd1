"""Recipes: a whole experiment in one TOML file, run stage by stage with `lugpi run`.

A recipe names a data set and the stages to run on it; each stage's keys are the parameters of the stage
(:mod:`lugpi_cli.stages`), spelled as the long options of the command that runs it (``batch_size`` is
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

Every key and value is checked by the stage's own ``Params.from_mapping`` — the same parser the command's
options go through — before any work starts. Model and file paths are relative to the recipe file. Every
stage is idempotent through the store and run hashing, so an interrupted recipe resumes where it stopped;
:func:`lugpi_cli.recipe_run.plan` tells what is cached and what would be computed. No code is executed
from the file (``tomllib``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from lugpi_cli.errors import UserError

#: recipe section -> (stage module name under lugpi_cli.stages, the command that runs it)
SECTIONS = {"generate": ("generate", "generate"), "embed": ("embed", "embed"), "teacher": ("teacher", "train-teacher"),
            "student": ("student", "distill"), "ablate": ("ablate", "ablate"), "evaluate": ("evaluate", "evaluate")}
TOP_KEYS = {"title", "description", "dataset", "paper", *SECTIONS}
#: set by the recipe itself, never by its tables
RESERVED = {"runs", "dataset", "paper", "json_out", "run", "force", "csv_path", "recipe"}
PATH_KEYS = {"data", "csv", "out", "ablation"}  # file paths: relative to the recipe when they exist there
MODEL_KEYS = {"model", "text_model", "encoder", "vae_model", "text_encoder"}  # a relative directory, or a hub id
TABLE_FILES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@dataclass
class Step:
    stage: str  # recipe section: generate, embed, teacher, student, ablate, evaluate
    id: str
    values: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)  # key -> the recipe id it refers to (teacher, runs, baseline)
    params: dict[str, Any] = field(default_factory=dict)  # the checked parameter values (defaults filled in)

    @property
    def command(self) -> str:
        return SECTIONS[self.stage][1]

    @property
    def module(self):
        import importlib

        return importlib.import_module("lugpi_cli.stages." + SECTIONS[self.stage][0])


@dataclass
class Recipe:
    path: Path
    title: str
    dataset: Any  # stages.common.DatasetParams
    steps: list[Step]
    paper: dict[str, Any]

    def step(self, stage: str, id_: str) -> Step:
        return next(s for s in self.steps if s.stage == stage and s.id == id_)

    def ids(self, stage: str) -> list[str]:
        return [s.id for s in self.steps if s.stage == stage]

    def where(self, step: Step) -> str:
        return f"{self.path.name}: {step.stage}" + ("" if step.id == step.stage else f"[{step.id}]") + ": "


# -- reading -------------------------------------------------------------------------------------

def read_toml(path: str | Path) -> dict[str, Any]:
    """A recipe file's tables (``tomllib``: no code runs); clear errors for a missing or broken file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"recipe {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {path} is not valid TOML: {exc}") from exc


def resolve_path(base: Path, key: str, value: Any, where: str) -> Any:
    """A path-like value relative to the recipe's folder. An existing relative path becomes absolute; a model
    value written as a path (``./``, ``../``, ``/``, ``~``) that does not exist is refused here, so the
    dry run fails exactly where the real run would."""
    if not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    candidate = path if path.is_absolute() else (base / path)
    if candidate.exists():
        return str(candidate.resolve())
    if key in MODEL_KEYS and (value.startswith(("./", "../", "/", "~")) or value in (".", "..")):
        raise UserError(f"{where}{key} {value!r}: no such directory (paths are relative to the recipe, {base})",
                        "Point it at a model directory, or give a Hugging Face Hub id (owner/name) or an alias.")
    return value


def _dataset(document: dict, base: Path, where: str):
    from lugpi_cli.data.hf import is_hub_id
    from lugpi_cli.stages.common import DatasetParams

    table = _table(document, "dataset", where, required=True)
    bad = sorted(set(table) - set(DatasetParams.keys()))
    if bad:
        raise UserError(f"{where}unknown key dataset.{bad[0]}", f"Valid keys: {', '.join(sorted(DatasetParams.keys()))}.")
    if "name" not in table:
        raise UserError(f"{where}dataset.name is missing", "e.g. name = \"imdb\" or name = \"reviews.csv\"")
    table = {k: resolve_path(base, "data", v, where) if k in ("name", "data") else v for k, v in table.items()}
    name = Path(str(table["name"]))
    if name.suffix.lower() in TABLE_FILES and not name.exists():
        raise UserError(f"{where}dataset.name {table['name']!r}: no such file",
                        "Give a built-in data set name or a table file (relative to the recipe or absolute).")
    if "data" in table and not Path(str(table["data"])).exists() and not is_hub_id(str(table["data"])):
        raise UserError(f"{where}dataset.data {table['data']!r}: no such file or folder",
                        "Point it at the data set's archive, folder or file (relative to the recipe or absolute), "
                        "or give a Hugging Face Hub data set id (owner/name).")
    return DatasetParams.from_mapping(table, where=where + "dataset.")


def _steps(document: dict, where: str) -> list[Step]:
    steps: list[Step] = []
    if "generate" in document:
        steps.append(Step("generate", "generate", _table(document, "generate", where)))
    for stage in ("embed", "teacher", "student"):
        entries = document.get(stage, [])
        entries = [entries] if isinstance(entries, dict) else entries
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise UserError(f"{where}{stage} must be a table or an array of tables ([[{stage}]])")
        for i, entry in enumerate(entries):
            values = dict(entry)
            id_ = str(values.get("encoder", "clip")) if stage == "embed" else values.pop("id", None)
            if not isinstance(id_, str) or not id_:
                raise UserError(f"{where}{stage}[{i}].id is missing", f"Give every [[{stage}]] an id = \"...\".")
            if stage != "embed" and any(s.stage in ("teacher", "student") and s.id == id_ for s in steps):
                raise UserError(f"{where}the id {id_!r} is used twice", "Teacher and student ids must all differ.")
            if stage == "embed" and any(s.stage == "embed" and s.id == id_ for s in steps):
                raise UserError(f"{where}the encoder {id_!r} is embedded twice")
            steps.append(Step(stage, id_, values))
    for stage in ("ablate", "evaluate"):
        if stage in document:
            steps.append(Step(stage, stage, _table(document, stage, where)))
    return steps


def _table(document: dict, key: str, where: str, required: bool = False) -> dict[str, Any]:
    value = document.get(key, {} if not required else None)
    if value is None:
        raise UserError(f"{where}the [{key}] table is missing")
    if not isinstance(value, dict):
        raise UserError(f"{where}{key} must be a table ([{key}])")
    return dict(value)


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe: every key and value of every step, before any work."""
    path = Path(path)
    document = read_toml(path)
    where = path.name + ": "
    unknown = sorted(set(document) - TOP_KEYS)
    if unknown:
        raise UserError(f"{where}unknown key {unknown[0]!r}", f"Valid keys: {', '.join(sorted(TOP_KEYS))}.")
    base = path.resolve().parent
    recipe = Recipe(path, str(document.get("title", path.stem)), _dataset(document, base, where),
                    _steps(document, where), _table(document, "paper", where))
    for step in recipe.steps:
        step.values = {k: resolve_path(base, k, v, recipe.where(step)) if k in PATH_KEYS | MODEL_KEYS else v
                       for k, v in step.values.items()}
        step.params = params_of(recipe, step).values()  # checks every value
    return recipe


# -- a step's parameters ---------------------------------------------------------------------------

def _ref(recipe: Recipe, step: Step, key: str, id_: str, stages: tuple[str, ...]) -> str:
    ids = [i for s in stages for i in recipe.ids(s)]
    if id_ not in ids:
        kind = "a [[teacher]] id" if stages == ("teacher",) else "a teacher or student id"
        raise UserError(f"{recipe.where(step)}{key} {id_!r} is not {kind} of the recipe",
                        f"Ids: {', '.join(ids) or '(none)'}.")
    return id_


def _teacher_ref(recipe: Recipe, step: Step, values: dict[str, Any]) -> str | None:
    teacher = values.pop("teacher", None)
    if teacher is None and step.stage == "ablate":
        teachers = recipe.ids("teacher")
        if len(teachers) > 1:
            raise UserError(f"{recipe.where(step)}the recipe has several teachers: say which one the grid distils "
                            "from (teacher = \"<id>\")", f"Teacher ids: {', '.join(teachers)}.")
        teacher = teachers[0] if teachers else None  # the recipe's only teacher
    return None if teacher is None else _ref(recipe, step, "teacher", str(teacher), ("teacher",))


def params_of(recipe: Recipe, step: Step, names: dict[str, str] | None = None):
    """The step's stage ``Params`` (checked by the stage's own parser). ``names`` maps recipe ids to run names
    once known; before, a placeholder ``<id>`` stands in (a plan passes the teacher's planned fingerprint)."""
    names = names or {}
    values = dict(step.values)
    reserved = sorted(set(values) & RESERVED - ({"teacher"} if step.stage in ("student", "ablate") else set()))
    if reserved:
        raise UserError(f"{recipe.where(step)}unknown key {reserved[0]!r}",
                        f"Valid keys: {', '.join(sorted(set(step.module.Params.keys()) - RESERVED))}.")
    extra: dict[str, Any] = {}
    if step.stage in ("generate", "embed", "teacher"):
        extra["dataset"] = recipe.dataset
    elif step.stage in ("student", "ablate"):
        teacher = _teacher_ref(recipe, step, values)
        if teacher is not None:
            step.refs["teacher"] = teacher
            values["teacher"] = names.get(teacher, f"<{teacher}>")
        else:
            extra["dataset"] = recipe.dataset
    else:  # evaluate: run ids -> run names
        ids = values.pop("runs", None) or [*recipe.ids("teacher"), *recipe.ids("student")]
        values["runs"] = [names.get(_ref(recipe, step, "runs", i, ("teacher", "student")), f"<{i}>") for i in ids]
        if values.get("baseline") is not None:
            baseline = _ref(recipe, step, "baseline", str(values["baseline"]), ("teacher", "student"))
            step.refs["baseline"] = baseline
            values["baseline"] = names.get(baseline, f"<{baseline}>")
        if recipe.paper:
            values["paper"] = str(recipe.path)
    return step.module.Params.from_mapping(values, where=recipe.where(step), **extra)


def command_line(recipe: Recipe, step: Step, params) -> str:
    """The ``lugpi ...`` command that runs the same stage with the same parameters (what the dry run prints)."""
    import shlex

    args = [step.command]
    dataset = getattr(params, "dataset", None)
    if dataset is not None:
        args += ([] if step.stage in ("generate", "embed", "teacher") else ["--dataset"]) + [str(dataset.name)]
        args += _flags(dataset, skip=("name",))
    if step.stage == "evaluate":
        args += list(params.runs)
    args += _flags(params, skip=("runs",))
    return "lugpi " + shlex.join(args)


def _flags(params, skip: tuple[str, ...] = ()) -> list[str]:
    """The flags that differ from their defaults."""
    out: list[str] = []
    for name, f in params.param_fields().items():
        value = getattr(params, name)
        if name in skip or value == f.default or value is None or (f.meta.multiple and not value):
            continue
        if f.type is bool and not f.meta.negatable:
            out += [f.flag] if value else []
            continue
        if f.type is bool:
            out.append(f.flag if value else "--no-" + f.flag[2:])
            continue
        for item in value if f.meta.multiple else [value]:
            out += [f.flag, str(item)]
    return out


def paper_numbers(recipe_path: str | Path, ws) -> dict[str, Any]:
    """Run name -> the paper's numbers for that row, from a recipe's [paper] table."""
    from lugpi_cli.recipe_run import plan

    recipe = load_recipe(recipe_path)
    names = {row["id"]: row["run"] for row in plan(recipe, ws) if row["run"]}
    return {names[id_]: value for id_, value in recipe.paper.items() if id_ in names}
