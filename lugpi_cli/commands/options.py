"""Options shared by several commands, and the typer options of a stage's parameters.

Every stage option is declared once, as a field of the stage's ``Params`` (:mod:`lugpi_cli.stages.params`);
:func:`params_options` turns those fields into the command's typer options.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lugpi_cli.stages.common import DatasetParams

JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON object on stdout (same as the global --json)."),
]

DatasetArg = Annotated[str, typer.Argument(metavar="DATASET", help=DatasetParams.param_fields()["name"].meta.help)]


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
    return extend_signature(func, param_group(DatasetParams), "data_options", dict)
