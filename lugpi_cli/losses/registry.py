"""Distillation objectives by name (torchdistill style).

``@register_loss("name")`` on a :class:`~lugpi_cli.losses.base.DistillLoss`
subclass puts it in :data:`LOSSES`; :func:`build_loss` makes one from a name
and keyword options (values already typed, or strings with ``parse=True``), so
recipes, ``distill --method`` and ``ablate --grid`` refer to methods by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lugpi_cli.loss_specs import unknown_method
from lugpi_cli.losses.base import DistillLoss, Option

__all__ = ["LOSSES", "build_loss", "get_loss_class", "loss_options", "parse_loss_options", "register_loss"]

#: name -> loss class
LOSSES: dict[str, type[DistillLoss]] = {}


def register_loss(name: str):
    """Class decorator: register a DistillLoss subclass under ``name``."""

    def deco(cls: type[DistillLoss]) -> type[DistillLoss]:
        if not (isinstance(cls, type) and issubclass(cls, DistillLoss)):
            raise TypeError(f"@register_loss({name!r}) needs a DistillLoss subclass, got {cls!r}")
        if name in LOSSES and LOSSES[name] is not cls:
            raise ValueError(f"loss name {name!r} is already registered to {LOSSES[name].__qualname__}")
        cls.name = name
        cls._check_signature()
        LOSSES[name] = cls
        return cls

    return deco


def get_loss_class(name: str) -> type[DistillLoss]:
    """The class registered as ``name``; a UserError listing the choices otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        pass
    raise unknown_method(name, LOSSES)


def loss_options(name: str) -> dict[str, Option]:
    """The hyperparameters the method ``name`` takes."""
    return dict(get_loss_class(name).options)


def parse_loss_options(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check option names and parse string values (``{"alpha": "0.5"}`` -> ``{"alpha": 0.5}``).

    Only the given keys are returned (defaults are not filled in). Raises
    UserError naming an unknown option or a value that does not parse.
    """
    cls = get_loss_class(name)
    full = cls.check_options(dict(raw), parse=True)
    return {k: full[k] for k in raw}


def build_loss(
    name: str,
    *,
    student_dim: int | None = None,
    teacher_dim: int | None = None,
    parse: bool = False,
    **options: Any,
) -> DistillLoss:
    """Make the loss ``name`` with ``options`` (strings parsed when ``parse``).

    ``student_dim``/``teacher_dim`` are the embedding widths when known, so a
    loss that aligns widths creates its parameters now (before the optimizer
    is built) rather than at its first forward.
    """
    cls = get_loss_class(name)
    values = cls.check_options(options, parse=parse)
    return cls(student_dim=student_dim, teacher_dim=teacher_dim, **values)
