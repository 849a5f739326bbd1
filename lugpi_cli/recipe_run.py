"""Planning and running a recipe through the stages (:mod:`lugpi_cli.stages`), never through the CLI.

:func:`plan` asks each stage's ``plan`` what it would find cached and compute — fingerprints of the
generation and encoder configs, run names from config hashes — without loading a model; a later step
reads what an earlier one planned (the images a generate step will draw, the features an embed step will
store, the outputs a teacher will cache). :func:`execute` runs each stage's ``run`` in order, the run names
of teachers feeding their students, and returns every step's result.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from typing import Any, Callable

from lugpi_cli.errors import UserError
from lugpi_cli.recipe import Recipe, Step, command_line, params_of

Progress = Callable[[Step, Any], Any]  # (step, params) -> a context manager yielding the run's keyword arguments


@contextlib.contextmanager
def recipe_hints(recipe: Recipe):
    """A library error's hint in a recipe's words: what the recipe sets (``data = "PATH" under [dataset]``),
    not the command-line flag (``pass --data PATH``) that `lugpi run` does not take."""
    try:
        yield
    except UserError as exc:
        if exc.hint:
            hint = _DATASET_FLAG.sub(_recipe_spelling, exc.hint)
            exc.hint = hint + f" (in {recipe.path.name})" if hint != exc.hint else hint
        raise


def _dataset_flag():
    from lugpi_cli.stages.common import DatasetParams

    flags = sorted((f.flag for f in DatasetParams.param_fields().values() if f.meta.cli), key=len, reverse=True)
    return re.compile(r"(?:pass )?(" + "|".join(map(re.escape, flags)) + r")\b(?! *=)(?: ([A-Z][A-Z_]*)\b)?")


def _recipe_spelling(match: re.Match) -> str:
    key = match.group(1)[2:].replace("-", "_")
    value = f' = "{match.group(2)}"' if match.group(2) else " = ..."
    return f"set {key}{value} under [dataset]" if match.group(0).startswith("pass ") else f"{key}{value} under [dataset]"


_DATASET_FLAG = _dataset_flag()


def plan(recipe: Recipe, ws, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per step: its command line, its status (what is cached vs what would be computed) and its run name.

    ``context`` (if given) is filled with what the planning found: the images to generate and the runs to
    train (for :func:`gpu_estimate`), each teacher's planned output fingerprint.
    """
    context = {} if context is None else context
    names: dict[str, str] = {}
    rows = []
    for step in recipe.steps:
        params = params_of(recipe, step, names)
        with recipe_hints(recipe):
            status, run = _plan_step(recipe, step, params, ws, context)
        if run:
            names[step.id] = run
        rows.append({"stage": step.stage, "id": step.id, "command": command_line(recipe, step, params),
                     "status": status, "run": run, "epochs": _epochs(params)})
    return rows


def _plan_step(recipe: Recipe, step: Step, params, ws, context: dict[str, Any]) -> tuple[str, str | None]:
    stage = step.module
    if step.stage == "generate":
        planned = stage.plan(ws, params, ds=_dataset(recipe, ws, context))
        context["generator"] = planned.generator
        context["images"] = {"distinct": planned.distinct, "to_generate": planned.distinct - planned.cached}
        return planned.status, None
    if step.stage == "embed":
        planned = stage.plan(ws, params, generator=context.get("generator"), ds=_dataset(recipe, ws, context))
        context.setdefault("features", {})[planned.label] = planned.features
        return planned.status, None
    if step.stage == "teacher":
        from lugpi_cli.stages.embed import Params as EmbedParams

        label = EmbedParams(encoder=params.encoder).label
        planned = stage.plan(ws, params, features=context.get("features", {}).get(label))
        if planned.run_name is not None:
            context.setdefault("teachers", {})[step.id] = planned.output_fingerprint
        _count(context, planned.to_train and planned.reads_text_model)
        return planned.status, planned.run_name
    if step.stage in ("student", "ablate"):
        ref = step.refs.get("teacher")
        teacher_fp = context.get("teachers", {}).get(ref) if ref else None
        if ref and teacher_fp is None:
            return "its teacher cannot be planned yet", None
        if ref and params.dataset is None:  # the planned teacher's data set: the recipe's
            params = params.replace(dataset=recipe.dataset)
        planned = stage.plan(ws, params, teacher_output_fingerprint=teacher_fp)
        _count(context, planned.to_train)
        return planned.status, planned.run_name
    return "reads the runs above", None


def _dataset(recipe: Recipe, ws, context: dict[str, Any]):
    if "dataset" not in context:
        from lugpi_cli.stages.data import planned_dataset

        context["dataset"] = planned_dataset(ws, recipe.dataset)
    return context["dataset"]


def _count(context: dict[str, Any], to_train: Any) -> None:
    """Runs still to train that read a text model (the GPU-time estimate counts those)."""
    context["to_train"] = context.get("to_train", 0) + int(to_train)


def _epochs(params) -> Any:
    """The epochs a training step runs (an ablation's ``set`` wins over its own option)."""
    fixed = getattr(params, "fixed", None)
    if isinstance(fixed, dict) and "epochs" in fixed:
        return fixed["epochs"]
    return getattr(params, "epochs", None)


def gpu_estimate(context: dict[str, Any]) -> dict[str, Any] | None:
    """A plan's GPU time from the paper's figures (:mod:`lugpi_cli.cost`); None without a generate stage."""
    from lugpi_cli.cost import estimate

    images = context.get("images")
    if images is None:
        return None
    return estimate(images["distinct"], images["to_generate"], context.get("to_train", 0))


def execute(recipe: Recipe, ws, *, progress: Progress | None = None, log: Callable[[str], None] | None = None
            ) -> dict[str, Any]:
    """Run every step through its stage; ``progress(step, params)`` gives each run its progress callbacks."""
    from lugpi_cli import console

    names: dict[str, str] = {}
    results: dict[str, Any] = {}
    for step in recipe.steps:
        params = params_of(recipe, step, names)
        line = command_line(recipe, step, params)
        if log is not None:
            log(f"[{step.stage}{'' if step.id == step.stage else ' ' + step.id}] {line}")
        # recorded in run configs and model cards: the command that does this step alone
        console.push_invocation(["--workspace", str(ws.root), *shlex.split(line)[1:]])
        try:
            with recipe_hints(recipe), \
                    (progress(step, params) if progress is not None else contextlib.nullcontext({})) as hooks:
                result = step.module.run(ws, params, **(hooks or {}))
        finally:
            console.pop_invocation()
        failure = getattr(step.module, "failure", None)
        error = failure(result) if failure is not None else None
        if error is not None:
            raise error
        document = result.to_json()
        if step.stage in ("teacher", "student"):
            names[step.id] = document["run"]
        results[f"{step.stage}:{step.id}"] = document
    ws.flush()
    return {"recipe": str(recipe.path), "title": recipe.title, "runs": names, "results": results}
