"""Distillation objectives, one signature, registered by name.

>>> from lugpi_cli.losses import build_loss, DistillInputs
>>> loss = build_loss("lugpi", alpha=3, beta=1, tau=8)
>>> out = loss(DistillInputs(student_logits=..., student_embedding=..., labels=...,
...                          teacher_logits=..., teacher_embedding=...))   # doctest: +SKIP
>>> out.total.backward(); out.scalars()                                      # doctest: +SKIP
"""

from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOptionError, LossOutput, Option
from lugpi_cli.losses.lugpi import LugpiLoss  # registers "lugpi"
from lugpi_cli.losses.registry import (
    LOSSES,
    build_loss,
    get_loss_class,
    loss_options,
    parse_loss_options,
    register_loss,
)

__all__ = [
    "LOSSES",
    "DistillInputs",
    "DistillLoss",
    "LossOptionError",
    "LossOutput",
    "LugpiLoss",
    "Option",
    "build_loss",
    "get_loss_class",
    "loss_options",
    "parse_loss_options",
    "register_loss",
]
