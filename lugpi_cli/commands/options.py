"""Option types shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from lugpi_cli.model_ids import alias_help

if TYPE_CHECKING:
    from lugpi_cli.training.config import TrainConfig

JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON object on stdout (same as the global --json)."),
]

DatasetArg = Annotated[
    str,
    typer.Argument(
        metavar="DATASET",
        help="A built-in data set (imdb, 20newsgroups, cwi-news, cwi-wikinews, cwi-wikipedia), "
        "a .csv/.tsv/.jsonl/.parquet file, a directory written by datasets' save_to_disk(), "
        "or a Hugging Face Hub data set id (owner/name).",
    ),
]
DataOpt = Annotated[
    Optional[Path],
    typer.Option("--data", help="Where the data set's files are (archive, folder or table file). "
                 "Default: $LUGPI_DATA, the user cache, or the workspace's last copy."),
]
TextColOpt = Annotated[Optional[str], typer.Option("--text-col", help="Table files and Hugging Face data sets "
                       "(default there: text): the text column.")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="Table files and Hugging Face data sets "
                        "(default there: label): the label column.")]
SplitColOpt = Annotated[
    Optional[str], typer.Option("--split-col", help="Table files: train/validation/test column (else carved).")
]
PromptColOpt = Annotated[
    Optional[str], typer.Option("--prompt-col", help="Table files: what the diffusion model draws (default: the text).")
]
IdColOpt = Annotated[Optional[str], typer.Option("--id-col", help="Table files: a stable sample id column.")]
DataConfigOpt = Annotated[Optional[str], typer.Option("--data-config", help="Hugging Face Hub data sets: "
                          "the config (subset) to load.")]
DataRevisionOpt = Annotated[Optional[str], typer.Option("--data-revision", help="Hugging Face Hub data sets: "
                            "the revision (branch, tag or commit hash) to load.")]
LimitOpt = Annotated[
    Optional[int],
    typer.Option("--limit", min=1, help="At most N samples per split (stratified; for smoke runs)."),
]


def parse_splits(text: str) -> list[str]:
    """``"train,test"`` -> ["train", "test"], checked against the known split names."""
    from lugpi_cli.data import SPLITS
    from lugpi_cli.errors import UserError

    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    aliases = {"val": "validation", "valid": "validation", "dev": "validation"}
    names = [aliases.get(n, n) for n in names]
    bad = [n for n in names if n not in SPLITS]
    if bad or not names:
        raise UserError(f"unknown split {bad[0] if bad else text!r}", f"Use a comma-separated subset of {', '.join(SPLITS)}.")
    return list(dict.fromkeys(names))


# -- training (train-teacher, distill) -------------------------------------------------
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")]
LrOpt = Annotated[float, typer.Option("--lr", help="AdamW learning rate (linear decay to 0).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Mini-batch size (the paper's: 14).")]
GradAccumOpt = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")]
MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after N optimizer steps "
                                                    "(smoke runs).")]
MaxLengthOpt = Annotated[int, typer.Option("--max-length", min=8, help="Max tokens per text.")]
EarlyStoppingOpt = Annotated[Optional[int], typer.Option("--early-stopping", min=1, help="Stop after N epochs "
                                                         "without a better validation accuracy.")]
WarmupOpt = Annotated[float, typer.Option("--warmup", help="Fraction of steps of linear warm-up.")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of initialisation, shuffling and dropout.")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name (default: derived from the config hash).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Retrain even if this run is done.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda (GPUs: see accelerate launch).")]
PrecisionOpt = Annotated[str, typer.Option("--mixed-precision", help="auto (bf16/fp16 autocast on GPU, none on "
                                           "CPU), no, bf16, fp16.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=-1, help="DataLoader workers tokenising and reading "
                                         "the store (-1: 4 on GPU, 0 on CPU).")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the model's forward (pays off on long "
                                          "GPU runs; the same results within float tolerance).")]
InitOpt = Annotated[str, typer.Option("--init", help="pretrained, or xavier (Glorot normal; Algorithm 1, line 9).")]
TextModelOpt = Annotated[str, typer.Option("--text-model", help="Text model id or directory (AutoModel); alias "
                                            + alias_help("text model") + ".")]
ReportToOpt = Annotated[str, typer.Option("--report-to", help="Experiment trackers: tensorboard, wandb, mlflow, "
                                          "all (the installed ones), none, or a comma-separated list.")]


# -- option groups shared by several commands ------------------------------------------
#
# Typer reads a command's options from its signature. These decorators append a
# group of options to that signature and hand the command one value for the
# group, so every command spells them the same way and none repeats them.

DATASET_OPTIONS: tuple[tuple[str, object, object], ...] = (
    ("data", DataOpt, None), ("text_col", TextColOpt, None), ("label_col", LabelColOpt, None),
    ("split_col", SplitColOpt, None), ("prompt_col", PromptColOpt, None), ("id_col", IdColOpt, None),
    ("limit", LimitOpt, None), ("data_config", DataConfigOpt, None), ("data_revision", DataRevisionOpt, None),
)
TRAINING_OPTIONS: tuple[tuple[str, object, object], ...] = (
    ("epochs", EpochsOpt, 3), ("lr", LrOpt, 5e-5), ("batch_size", BatchSizeOpt, 14), ("grad_accum", GradAccumOpt, 1),
    ("max_steps", MaxStepsOpt, None), ("max_length", MaxLengthOpt, 512), ("early_stopping", EarlyStoppingOpt, None),
    ("warmup", WarmupOpt, 0.0), ("weight_decay", WeightDecayOpt, 0.01), ("seed", SeedOpt, 0),
    ("mixed_precision", PrecisionOpt, "auto"), ("workers", WorkersOpt, -1), ("compile", CompileOpt, False),
    ("device", DeviceOpt, "auto"),
    ("run", RunOpt, None), ("force", ForceOpt, False), ("report_to", ReportToOpt, "none"),
)


def extend_signature(func, group: tuple[tuple[str, object, object], ...], receiver: str, build):
    """Wrap ``func``: its signature gains ``group``'s options (before ``json_out``); the wrapper passes
    ``build(values)`` as the keyword ``receiver`` instead of the group's separate values."""
    import functools
    import inspect

    signature = inspect.signature(func, eval_str=True)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
           if p.name != receiver and p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, annotation, default in group]
    tail = [p for p in own if p.name == "json_out"]
    params = [p for p in own if p.name != "json_out"] + added + tail
    names = [name for name, _, _ in group]

    @functools.wraps(func)
    def wrapper(**kwargs):
        values = {name: kwargs.pop(name) for name in names}
        return func(**kwargs, **{receiver: build(values)})

    wrapper.__signature__ = signature.replace(parameters=params)
    return wrapper


def dataset_options(func):
    """``--data``, ``--text-col`` ... ``--limit``, received as ``data_options`` (a dict for DatasetRequest)."""
    return extend_signature(func, DATASET_OPTIONS, "data_options", dict)


def train_config(values: dict) -> "TrainConfig":
    """A TrainConfig from option values (as the commands and recipes hold them)."""
    from lugpi_cli.training.config import TrainConfig

    return TrainConfig(epochs=values["epochs"], lr=values["lr"], batch_size=values["batch_size"],
                       grad_accum=values["grad_accum"], max_steps=values["max_steps"], max_length=values["max_length"],
                       early_stopping=values["early_stopping"], warmup_ratio=values["warmup"],
                       weight_decay=values["weight_decay"], seed=values["seed"],
                       mixed_precision=values["mixed_precision"], workers=values.get("workers", 0),
                       report_to=values.get("report_to", "none"),
                       compile=bool(values.get("compile", False)))


def training_options(func):
    """The shared training options, received as ``training``: {"config", "device", "run", "force"}."""
    def build(values: dict) -> dict:
        from lugpi_cli.commands.training_common import resolve_workers

        values = {**values, "workers": resolve_workers(values["workers"], values["device"])}
        return {"config": train_config(values), "device": values["device"], "run": values["run"],
                "force": values["force"]}

    return extend_signature(func, TRAINING_OPTIONS, "training", build)


# -- options derived from a stage's Params (the one source of flags, recipe keys and grid keys) ---------

def typer_annotation(field) -> object:
    """A stage parameter as a typer option: its flag(s), help, bound (int options) and type."""
    meta = field.meta
    decls = [f"{field.flag}/--no-{field.flag[2:]}" if meta.negatable else field.flag, *([meta.short] if meta.short
                                                                                        else [])]
    extra: dict = {}
    if meta.min is not None and field.type is int:
        extra["min"] = int(meta.min)
    if meta.panel:
        extra["rich_help_panel"] = meta.panel
    kind = field.type if not field.nullable and field.default is not None else Optional[field.type]
    if meta.multiple:
        kind = Optional[list[field.type]]
    return Annotated[kind, typer.Option(*decls, help=meta.help, show_default=meta.show_default, **extra)]


def param_group(params_cls, *, skip: tuple[str, ...] = ()) -> tuple[tuple[str, object, object], ...]:
    """``(name, annotation, default)`` of every command-line parameter of ``params_cls``, its own fields first
    (then those it inherits, e.g. the training options)."""
    fields = params_cls.param_fields()
    own = [n for n in getattr(params_cls, "__annotations__", {}) if n in fields]
    order = own + [n for n in fields if n not in own]
    return tuple((n, typer_annotation(fields[n]), fields[n].default if not fields[n].meta.multiple else None)
                 for n in order if fields[n].meta.cli and n not in skip)


def params_options(params_cls, *, skip: tuple[str, ...] = ()):
    """Give a command one option per parameter of ``params_cls``, received together as ``params`` (a dict for
    ``params_cls.from_mapping``)."""
    def decorate(func):
        return extend_signature(func, param_group(params_cls, skip=skip), "params", dict)

    return decorate


def stage_dataset_options(func):
    """The data set's options (``--data``, ``--text-col`` ... ``--limit``) from :class:`DatasetParams`,
    received as ``data_options``."""
    from lugpi_cli.stages.common import DatasetParams

    return extend_signature(func, param_group(DatasetParams), "data_options", dict)
