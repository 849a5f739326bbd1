"""``lugpi distill [--teacher RUN] --alpha 3 --beta 1 --tau 8``: a text-only student from cached teacher outputs."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Optional

import typer

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import (
    InitOpt,
    JsonFlag,
    TextModelOpt,
    dataset_options,
    training_options,
)
from lugpi_cli.commands.training_common import (
    TrainingProgress,
    dataset_and_request,
    emit_stage,
)
from lugpi_cli.data.snapshot import DatasetRequest, limit_dataset
from lugpi_cli.errors import UserError
from lugpi_cli.loss_specs import option_tables as method_options
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.multinode import open_training_store
from lugpi_cli.training.runs import find_run


def parse_option_pairs(pairs: list[str]) -> dict[str, str]:
    """``["alpha=3", "soften=both"]`` -> ``{"alpha": "3", "soften": "both"}``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad --option {pair!r}", "Use KEY=VALUE, e.g. --option tau=4.")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def loss_options(method: str, flags: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Options from the explicit flags and --option pairs, checked against the method's table (no torch)."""
    from lugpi_cli.loss_specs import parse_options

    raw = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in flags.items() if v is not None}
    raw.update(parse_option_pairs(pairs))
    return parse_options(method, raw)


EXPLICIT_FLAGS = ("alpha", "beta", "tau", "soften", "tau2")


def method_defaults(key: str) -> str:
    """Each method's default for an option, e.g. ``"kd 4, lugpi 8, msd 4"`` (one value if they agree)."""
    found = {name: opts[key].default for name, opts in sorted(method_options().items()) if key in opts}
    if len(set(map(repr, found.values()))) == 1:
        return f"{', '.join(found)}: {next(iter(found.values()))}"
    return ", ".join(f"{name} {value}" for name, value in found.items())


def _help_of(option: Any) -> str:
    """An option's help, with its choices when it has some."""
    return f"{option.help}: {'|'.join(map(str, option.choices))}" if option.choices else option.help


def method_flag_table() -> dict[str, tuple[Any, list[str]]]:
    """Every registered method's options (beyond the explicit LUGPI ones): name -> (Option, methods)."""
    table: dict[str, tuple[Any, list[str]]] = {}
    for name, opts in sorted(method_options().items()):
        for key, option in opts.items():
            if key not in EXPLICIT_FLAGS:
                table.setdefault(key, (option, []))[1].append(name)
    return table


def flag_values(params: dict[str, Any]) -> dict[str, Any]:
    """The loss-option flags given on the command line (or in a recipe), by option name."""
    names = (*EXPLICIT_FLAGS, *method_flag_table())
    return {k: params[k] for k in names if params.get(k) is not None}


def distill_command(
    teacher: Annotated[Optional[str], typer.Option("--teacher", "-t", help="Teacher run name or directory "
                                                   "(default: the most recent finished teacher that caches what "
                                                   "--method reads, multimodal ones first).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Data set, when no teacher is used "
                                                   "(default: the teacher's).")] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="Distillation objective by name (lugpi = Eq. 2 "
                                        "of the paper).")] = "lugpi",
    alpha: Annotated[Optional[float], typer.Option("--alpha", help="Weight of the soft-label term CE(t, s) "
                                                   "(lugpi default 3).")] = None,
    beta: Annotated[Optional[float], typer.Option("--beta", help="Weight of ||e_T - e_S||^2 (lugpi default 1).")]
    = None,
    tau: Annotated[Optional[float], typer.Option("--tau", help="Temperature softening the teacher (default: the "
                                               f"method's, {method_defaults('tau')}).")]
    = None,
    soften: Annotated[Optional[str], typer.Option("--soften", help="teacher (the paper's text) or both "
                                                  "(Hinton).")] = None,
    tau2: Annotated[Optional[bool], typer.Option("--tau2/--no-tau2", help="Scale the soft term by tau^2.",
                                                 show_default=False)] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Any option of the method, "
                                                        "KEY=VALUE (repeatable).")] = None,
    text_model: TextModelOpt = DEFAULT_TEXT_MODEL,
    init: InitOpt = "pretrained",
    data_options: dict | None = None,
    training: dict | None = None,
    json_out: JsonFlag = False,
    **method_flags: Any,
) -> None:
    """Distil a text-only student from the cached teacher outputs.

    Loss (Eq. 2): CE(y, s) + alpha * CE(t, s) + beta * ||e_T - e_S||^2, t the
    teacher's probabilities softened by tau. --alpha 0 --beta 0 is the plain
    fine-tuned baseline and needs no teacher.
    """
    from lugpi_cli.losses import build_loss
    from lugpi_cli.training.stages import StudentSpec, default_teacher, distill, teacher_dataset

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    runtime.resolve_device(training["device"])
    options = loss_options(method, {"alpha": alpha, "beta": beta, "tau": tau, "soften": soften, "tau2": tau2,
                                    **method_flags}, option or [])
    loss = build_loss(method, **options)
    needs_teacher = loss.requires_teacher
    store = open_training_store(state)  # multi-node: read-only except on rank 0
    teacher_run = find_run(state.runs_path, teacher) if teacher else None
    if teacher_run is not None and teacher_run.config().get("kind") != "teacher":
        raise UserError(f"{teacher_run.name} is not a teacher run", "Pass a run made by `lugpi train-teacher`.")
    if teacher_run is None and dataset is None:
        # the teacher to distil from or, for a baseline, whose data set (and --limit) to share
        teacher_run = default_teacher(state.runs_path, loss.teacher_fields if needs_teacher else ())
    if dataset is None:
        ds = teacher_dataset(store, teacher_run)
        described = teacher_run.config()["dataset"]
        if data_options["limit"] is not None:
            ds = limit_dataset(ds, data_options["limit"])
            described = {**described, "limit": data_options["limit"]}
    else:
        request = DatasetRequest(dataset, **data_options)
        ds, described = dataset_and_request(request, store)
    if needs_teacher and teacher_run is None:
        raise UserError("this distillation needs a teacher run", "Pass --teacher RUN (see `ls WORKSPACE/runs`).")
    spec = StudentSpec(text_model=text_model, init=init, method=method, options=tuple(sorted(options.items())))
    cfg, device = training["config"], training["device"]
    with TrainingProgress(cfg) as hooks:
        result = distill(store, state.runs_path, ds, spec, cfg, teacher=teacher_run, dataset_request=described,
                         run=training["run"], force=training["force"], device=device, hooks=hooks)
    emit_stage(result)


def _with_method_flags(func):
    """Give the command one flag per option of every registered method (``--lam``, ``--w-d``, ``--weighting``,
    ``--ema-decay``, ``--mixup`` ...), so each method's options are ordinary flags, checked against --method."""
    signature = inspect.signature(func, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    tables = method_options()
    for key, (option, methods) in method_flag_table().items():
        flag = "--" + key.replace("_", "-")
        decl = f"{flag}/--no-{key.replace('_', '-')}" if option.type is bool else flag
        helps = dict.fromkeys(_help_of(tables[m][key]) for m in methods)
        text = (f"{_help_of(option)} (default {method_defaults(key)})" if len(helps) == 1 else
                "; ".join(f"{m}: {_help_of(tables[m][key])} (default {tables[m][key].default})"
                          for m in methods))
        annotation = Annotated[Optional[option.type], typer.Option(decl, help=text, show_default=False,
                                                                   rich_help_panel="Options of other methods")]
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    func.__signature__ = signature.replace(parameters=params)
    return func


def register(app: typer.Typer) -> None:
    app.command("distill")(_with_method_flags(training_options(dataset_options(distill_command))))
