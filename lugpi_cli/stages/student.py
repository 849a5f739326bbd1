"""Stage 3b, ``distill``: a text-only student from the teacher's cached outputs (it never runs the teacher).

``Params`` holds every loss option as a field (the explicit LUGPI ones, ``--option KEY=VALUE`` pairs and
one per option of every registered method), parsed once, against ``method``'s table, into
``Params.loss`` (a sorted tuple of (key, value), as :class:`~lugpi_cli.training.specs.StudentSpec` holds
it). ``plan`` derives the run name without loading a model; ``run`` builds the loss once and trains.
A command line, a recipe table and an ablation cell with the same settings give the same run name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from lugpi_cli.errors import UserError
from lugpi_cli.loss_specs import option_tables, parse_options, resolve_loss
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.stages.common import INIT_CHOICES, DatasetParams, TrainingParams, dataset_params
from lugpi_cli.stages.params import opt
from lugpi_cli.stages.runs import Hooks, StageResult, run_status, teacher_dataset
from lugpi_cli.stages.teacher import INIT_HELP, TEXT_MODEL_HELP
from lugpi_cli.training.specs import StudentSpec, student_config
from lugpi_cli.workspace import Workspace

#: the loss options with flags of their own (LUGPI's Eq. 2); the other methods' options follow the tables
EXPLICIT_FLAGS = ("alpha", "beta", "tau", "soften", "tau2")
OTHER_METHODS_PANEL = "Options of other methods"


def method_defaults(key: str) -> str:
    """Each method's default for an option, e.g. ``"kd 4, lugpi 8, msd 4"`` (one value if they agree)."""
    found = {name: opts[key].default for name, opts in sorted(option_tables().items()) if key in opts}
    if len(set(map(repr, found.values()))) == 1:
        return f"{', '.join(found)}: {next(iter(found.values()))}"
    return ", ".join(f"{name} {value}" for name, value in found.items())


def _help_of(option: Any) -> str:
    """An option's help, with its choices when it has some."""
    return f"{option.help}: {'|'.join(map(str, option.choices))}" if option.choices else option.help


def method_flag_table() -> dict[str, tuple[Any, list[str]]]:
    """Every registered method's options (beyond the explicit LUGPI ones): name -> (Option, methods)."""
    table: dict[str, tuple[Any, list[str]]] = {}
    for name, opts in sorted(option_tables().items()):
        for key, option in opts.items():
            if key not in EXPLICIT_FLAGS:
                table.setdefault(key, (option, []))[1].append(name)
    return table


def _method_field(key: str, option: Any, methods: list[str]) -> tuple[str, Any, Any]:
    """A method option as a parameter (``--lam``, ``--w-d``, ``--weighting`` ...), None unless given."""
    tables = option_tables()
    helps = dict.fromkeys(_help_of(tables[m][key]) for m in methods)
    text = (f"{_help_of(option)} (default {method_defaults(key)})" if len(helps) == 1 else
            "; ".join(f"{m}: {_help_of(tables[m][key])} (default {tables[m][key].default})" for m in methods))
    return key, Optional[option.type], opt(None, text, show_default=False, panel=OTHER_METHODS_PANEL,
                                           negatable=option.type is bool)


def parse_option_pairs(pairs) -> dict[str, str]:
    """``["alpha=3", "soften=both"]`` -> ``{"alpha": "3", "soften": "both"}``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad --option {pair!r}", "Use KEY=VALUE, e.g. --option tau=4.")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def loss_options(method: str, flags: dict[str, Any], pairs) -> dict[str, Any]:
    """Options from the explicit flags and --option pairs, checked against the method's table (no torch)."""
    raw = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in flags.items() if v is not None}
    raw.update(parse_option_pairs(pairs))
    return parse_options(method, raw)


def flag_values(params: dict[str, Any]) -> dict[str, Any]:
    """The loss-option flags given (by option name) in a mapping of parameters."""
    names = (*EXPLICIT_FLAGS, *method_flag_table())
    return {k: params[k] for k in names if params.get(k) is not None}


@dataclass(frozen=True)
class _Fields(TrainingParams):
    STAGE = "student"

    dataset: DatasetParams | None = None  # the data set when no teacher gives it (--dataset)
    teacher: Optional[str] = opt(None, "Teacher run name or directory (default: the most recent finished teacher "
                                 "that caches what --method reads, multimodal ones first).", short="-t")
    method: str = opt("lugpi", "Distillation objective by name (lugpi = Eq. 2 of the paper).", short="-m")
    alpha: Optional[float] = opt(None, "Weight of the soft-label term CE(t, s) (lugpi default 3).")
    beta: Optional[float] = opt(None, "Weight of ||e_T - e_S||^2 (lugpi default 1).")
    tau: Optional[float] = opt(None, "Temperature softening the teacher (default: the method's, "
                               f"{method_defaults('tau')}).")
    soften: Optional[str] = opt(None, "teacher (the paper's text) or both (Hinton).")
    tau2: Optional[bool] = opt(None, "Scale the soft term by tau^2.", negatable=True, show_default=False)
    option: Optional[tuple[str, ...]] = opt((), "Any option of the method, KEY=VALUE (repeatable).", short="-o",
                                            multiple=True)
    text_model: str = opt(DEFAULT_TEXT_MODEL, TEXT_MODEL_HELP)
    init: str = opt("pretrained", INIT_HELP)
    limit: Optional[int] = opt(None, "At most N samples per split of the teacher's data set.", min=1, cli=False)
    project: Optional[str] = opt(None, "The experiment trackers' project (an ablation's cells share one).",
                                 cli=False)
    #: the loss options, parsed once from the fields above: sorted (key, value) pairs
    loss: tuple[tuple[str, Any], ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))
        object.__setattr__(self, "option", tuple(self.option or ()))
        flags = flag_values({name: getattr(self, name) for name in self.param_fields()})
        object.__setattr__(self, "loss", tuple(sorted(loss_options(self.method, flags, self.option).items())))

    def check(self) -> None:
        if self.init not in INIT_CHOICES:
            raise UserError(f"unknown --init {self.init!r}", "Choose pretrained or xavier.")
        self.check_training()

    def spec(self) -> StudentSpec:
        return StudentSpec(text_model=self.text_model, init=self.init, method=self.method, options=self.loss)

    @property
    def data_limit(self) -> int | None:
        return self.dataset.limit if self.dataset is not None else self.limit


#: ``Params``: the fields above plus one per option of every registered method
Params = dataclasses.make_dataclass(
    "Params", [_method_field(k, o, m) for k, (o, m) in method_flag_table().items() if not hasattr(_Fields, k)],
    bases=(_Fields,), frozen=True, namespace={"__module__": __name__, "__doc__": "The distill stage's parameters."})


@dataclass
class Plan:
    status: str
    run_name: str | None
    reads_text_model: bool = True  # as the teacher's Plan: a student always fine-tunes a text model

    @property
    def to_train(self) -> bool:
        return self.run_name is not None and not self.status.startswith("done")


def plan(ws: Workspace, params: Params, teacher_output_fingerprint: str | None = None, *,
         cache: dict | None = None) -> Plan:
    """The run name and state of the student ``params`` describe (no model is loaded).

    ``teacher_output_fingerprint`` is given when the teacher is only planned (a recipe's dry run): the data
    set is then ``params.dataset``; else the teacher run (or the data set) is looked up in the workspace.
    ``cache`` (a dict the caller keeps) holds the data sets resolved so far: a grid's cells share one.
    """
    from lugpi_cli.training.runs import run_name

    hparams, fields = resolve_loss(params.method, dict(params.loss))
    # the default teacher depends on what the method reads; a named (or planned) one does not
    named = params.teacher is not None or teacher_output_fingerprint is not None
    key = (params.dataset, params.limit, params.teacher, teacher_output_fingerprint, named or frozenset(fields))
    if cache is None or key not in cache:
        found = _planned_teacher_and_dataset(ws, params, fields, teacher_output_fingerprint)
        if cache is None:
            cache = {}
        cache[key] = found
    teacher_fp, ds = cache[key]
    config = student_config(ds.fingerprint(), params.spec(), hparams, params.train_config(resolve_workers=False),
                            teacher_fp if fields else None)
    name = params.run or run_name("student", ds.name, config)
    return Plan(run_status(ws.run(name)), name)


def _planned_teacher_and_dataset(ws: Workspace, params: Params, fields, teacher_output_fingerprint: str | None):
    """(the teacher's output fingerprint or None, the data set) of a plan."""
    from lugpi_cli.data.snapshot import limit_dataset
    from lugpi_cli.stages.data import planned_dataset

    if teacher_output_fingerprint is not None:
        if params.dataset is None:
            raise UserError("a student of a teacher that is only planned needs its data set",
                            "Pass the teacher's data set: student.plan(ws, params with dataset=..., fingerprint).")
        return teacher_output_fingerprint, limit_dataset(planned_dataset(ws, params.dataset), params.limit)
    teacher, ds, _ = _teacher_and_dataset(ws, params, fields, ws.existing_store(), planned=True)
    return (teacher.config().get("output_fingerprint") if teacher is not None else None), ds


def _teacher_and_dataset(ws: Workspace, params: Params, fields, store, *, planned: bool = False):
    """(teacher run or None, data set, its description): the teacher's own data set unless ``--dataset``."""
    from lugpi_cli.data.snapshot import limit_dataset

    needs_teacher = bool(fields)
    teacher = None
    if params.teacher or params.dataset is None:
        # the teacher to distil from or, for a baseline, whose data set (and --limit) to share
        teacher = ws.teacher_run(params.teacher, fields if needs_teacher else ())
    if params.dataset is None:
        ds, described = teacher_dataset(store, teacher), dict(teacher.config()["dataset"])
        if params.limit is not None:
            ds, described = limit_dataset(ds, params.limit), {**described, "limit": params.limit}
    elif planned:
        from lugpi_cli.stages.data import planned_dataset

        ds, described = planned_dataset(ws, params.dataset), {}
    else:
        from lugpi_cli.stages.data import dataset_and_request

        ds, described = dataset_and_request(params.dataset, store)
    if needs_teacher and teacher is None:
        raise UserError("this distillation needs a teacher run", "Pass --teacher RUN (see `ls WORKSPACE/runs`).")
    return (teacher if needs_teacher else None), ds, described


def run(ws: Workspace, params: Params, hooks: Hooks | None = None) -> StageResult:
    """Train (or reuse) the student; it reads the teacher's outputs from the store only."""
    from lugpi_cli import runtime
    from lugpi_cli.losses import build_loss

    # 1. resolve: the device, the loss (built once), the store, the teacher and the data set
    runtime.resolve_device(params.device)
    loss = build_loss(params.method, **dict(params.loss))
    store = ws.open_training_store()  # multi-node: read-only except on rank 0
    teacher, ds, described = _teacher_and_dataset(ws, params, loss.teacher_fields, store)
    cfg = dataclasses.replace(params.train_config(), project=params.project)
    return train(store, ws.runs_path, ds, params.spec(), loss, cfg, teacher=teacher,
                 dataset_request=described, run=params.run, force=params.force, device=params.device, hooks=hooks)


def train(store, runs_dir, ds, spec: StudentSpec, loss, cfg, *, teacher, dataset_request: dict[str, Any],
          run: str | None = None, force: bool = False, device: str = "auto", hooks: Hooks | None = None
          ) -> StageResult:
    """The student of a loaded data set: check -> plan -> open the run -> build -> fit -> write outputs."""
    from lugpi_cli.runtime import process_info
    from lugpi_cli.training import lifecycle as fitting
    from lugpi_cli.training.runs import Run, checked_run_name, run_name
    from lugpi_store import fingerprint

    # 2. check: the training config, the teacher (when the loss reads it), the text model
    cfg.check()
    if loss.requires_teacher and teacher is None:
        raise UserError(f"method {spec.method!r} with these options needs a teacher run", "Pass --teacher RUN.")
    teacher_fp = teacher.config().get("output_fingerprint") if loss.requires_teacher else None
    fitting.check_text_model(spec.text_model)
    # 3. plan: the config whose hash names the run
    config = student_config(ds.fingerprint(), spec, loss.hparams, cfg, teacher_fp)
    the_run = Run(runs_dir / (checked_run_name(run) if run is not None else run_name("student", ds.name, config)))
    # 4. open the run: reuse a finished one; check the teacher's cached outputs before starting
    reused = fitting.existing_run(the_run, force, config)
    if reused is not None:
        return reused
    splits = fitting.split_samples(ds)
    teacher_keys = _teacher_keys(store, teacher, teacher_fp, ds, splits, loss, spec) if teacher_fp else None
    main = process_info().is_main
    with fitting.guard(the_run):
        if main:
            the_run.start("student", config, extra=_run_info(ds, spec, loss, teacher if teacher_fp else None,
                                                             dataset_request))
        # 5. build: the student, the loss's trainable parts, the objective the loss trains with
        student, objective, collate, tokenizer, train_data, val_data = _build(
            store, ds, spec, loss, cfg, splits, teacher_keys)
        if loss.aligned and main:
            _note_aligned(the_run, student.embedding_dim, _teacher_dim(store, teacher_keys, loss))
        # 6. fit
        result = fitting.fit_run(the_run, objective, train_data, val_data, collate, cfg, device, hooks)
        if not main:
            return StageResult(the_run, "trained", {}, fingerprint(config))
        # 7. write outputs: predictions and metrics per split
        from lugpi_cli.training.data import TrainingData

        metrics, _ = fitting.write_outputs(the_run, ds, splits, student, collate, cfg,
                                           next(student.parameters()).device, lambda samples: TrainingData(samples))
        # 8. mark done (model, metrics and card first)
        fitting.finish_run(the_run, metrics, result, store,
                           lambda: student.cpu().save_pretrained(the_run.model_dir, tokenizer))
    return StageResult(the_run, "trained", metrics, fingerprint(config))


def _teacher_keys(store, teacher, teacher_fp: str, ds, splits, loss, spec: StudentSpec) -> list[bytes]:
    """The training samples' teacher-output keys, refused unless every one is cached with what the loss reads."""
    from lugpi_cli.training.teachers import FIELD_HINTS
    from lugpi_store import record_key

    keys = [record_key(teacher_fp, s.id) for s in splits["train"]]
    missing = sum(not have for have in store.contains_many("teacher", keys)) if store.exists else len(keys)
    if missing:
        _refuse_other_dataset(teacher, ds, missing, len(keys))
        raise UserError(f"{missing} of {len(keys)} training samples have no cached output of teacher {teacher.name}",
                        "Re-run its `lugpi train-teacher` command: it writes the outputs again from the saved "
                        "model, without retraining (a distill never runs the teacher itself).")
    cached = set(store.get("teacher", keys[0]))
    lacking = sorted(set(loss.teacher_fields) - cached)
    if lacking:
        raise UserError(f"method {spec.method!r} reads teacher outputs {', '.join(lacking)}, which teacher "
                        f"{teacher.name} did not cache (it has {', '.join(sorted(cached))})",
                        FIELD_HINTS.get(lacking[0], "Train a teacher that provides them."))
    return keys


def _run_info(ds, spec: StudentSpec, loss, teacher, dataset_request: dict[str, Any]) -> dict[str, Any]:
    """What config.json records beside the hashed config."""
    return {"dataset": {**dataset_request, "name": ds.name, "fingerprint": ds.fingerprint()},
            "labels": list(ds.label_names), "teacher_run": teacher.name if teacher else None,
            "teacher_run_dir": str(teacher.dir) if teacher else None, "method": spec.method,
            "loss_options": loss.hparams, "text_model": spec.text_model, "aligned": False}


def _teacher_dim(store, teacher_keys, loss) -> int | None:
    """The width of the cached teacher vector the loss aligns to (``manifold`` for ARMADA, else e_T)."""
    if not teacher_keys:
        return None
    sample = store.get("teacher", teacher_keys[0])
    width_field = "manifold" if "manifold" in loss.teacher_fields else "embedding"
    return int(sample[width_field].shape[-1]) if width_field in sample else None


def _build(store, ds, spec: StudentSpec, loss, cfg, splits, teacher_keys):
    """The student (seeded by ``--seed``), the loss prepared for it, and the objective the loss declares."""
    import torch

    from lugpi_cli.losses import LossContext
    from lugpi_cli.models import TextClassifier
    from lugpi_cli.training.data import Collator, TrainingData
    from lugpi_cli.training.loop import seed_everything
    from lugpi_cli.training.objectives import ObjectiveSetting
    from lugpi_cli.training.lifecycle import tokenizer_for

    tokenizer = tokenizer_for(spec.text_model, cfg.max_length)
    seed_everything(cfg.seed)  # --seed decides the head's (and --init xavier's) initial weights
    student = TextClassifier.from_pretrained(spec.text_model, labels=list(ds.label_names), init=spec.init)
    loss.prepare_for(LossContext(student.embedding_dim, _teacher_dim(store, teacher_keys, loss), ds.num_labels))
    collate = Collator(tokenizer, cfg.max_length)
    train_data = TrainingData(splits["train"], store, teacher_keys=teacher_keys)
    val_data = TrainingData(splits["validation"])

    def val_loader():
        return torch.utils.data.DataLoader(val_data, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                                           generator=torch.Generator().manual_seed(cfg.seed))

    objective = loss.objective_class().for_training(student, loss, ObjectiveSetting(cfg.seed, val_loader))
    return student, objective, collate, tokenizer, train_data, val_data


def _refuse_other_dataset(teacher, ds, missing: int, total: int) -> None:
    """A teacher has outputs only for the samples it was trained on: say so instead of advising a re-run."""
    trained = teacher.config().get("dataset") or {}
    if trained.get("fingerprint") in (None, ds.fingerprint()):
        return

    def named(info: dict[str, Any], name: str, fp: str) -> str:
        limit = info.get("limit")
        return f"{name!r}" + (f" (--limit {limit})" if limit else "") + f", fingerprint {fp[:12]}"

    raise UserError(
        f"teacher {teacher.name} was trained on a different data set: "
        f"{named(trained, trained.get('name'), trained['fingerprint'])}, not "
        f"{named({'limit': None}, ds.name, ds.fingerprint())} ({missing} of {total} training samples of this one "
        "have no teacher output)",
        f"Distil on the teacher's own data (leave out --dataset), or pass --teacher a run trained on "
        f"{ds.name!r} (`lugpi train-teacher {ds.name}` makes one).")


def _note_aligned(run, student_dim: int, teacher_dim: int | None) -> None:
    import json

    document = run.config()
    document["aligned"] = {"student_dim": student_dim, "teacher_dim": teacher_dim,
                           "note": "a learned linear map (student side, training only) aligns e_S to e_T"}
    run.config_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
