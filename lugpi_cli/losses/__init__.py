"""Distillation objectives, one signature, registered by name.

>>> from lugpi_cli.losses import build_loss, DistillInputs
>>> loss = build_loss("lugpi", alpha=3, beta=1, tau=8)
>>> out = loss(DistillInputs(student_logits=..., student_embedding=..., labels=...,
...                          teacher_logits=..., teacher_embedding=...))   # doctest: +SKIP
>>> out.total.backward(); out.scalars()                                      # doctest: +SKIP
"""

from lugpi_cli.losses.armada import ArmadaLoss  # registers "armada"
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossContext, LossOptionError, LossOutput, Option
from lugpi_cli.losses.ema import EmaLoss, ema_update_, make_ema_model, mixup_lambda  # registers "ema"
from lugpi_cli.losses.kd import FitNetLoss, KDLoss  # registers "kd", "fitnet"
from lugpi_cli.losses.lugpi import LugpiLoss  # registers "lugpi"
from lugpi_cli.losses.meta import MetaWeightNet, meta_weight_step
from lugpi_cli.losses.msd import MsdLoss  # registers "msd"
from lugpi_cli.losses.registry import (
    LOSSES,
    build_loss,
    get_loss_class,
    loss_options,
    parse_loss_options,
    register_loss,
)
from lugpi_cli.losses.relational import RKDLoss, SPLoss  # registers "rkd", "sp"

__all__ = [
    "LOSSES",
    "ArmadaLoss",
    "DistillInputs",
    "DistillLoss",
    "LossContext",
    "EmaLoss",
    "FitNetLoss",
    "KDLoss",
    "LossOptionError",
    "LossOutput",
    "LugpiLoss",
    "MetaWeightNet",
    "MsdLoss",
    "Option",
    "RKDLoss",
    "SPLoss",
    "build_loss",
    "ema_update_",
    "get_loss_class",
    "loss_options",
    "make_ema_model",
    "meta_weight_step",
    "mixup_lambda",
    "parse_loss_options",
    "register_loss",
]
