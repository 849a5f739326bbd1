"""The one signature every distillation objective shares.

A loss is a small :class:`torch.nn.Module` (vit-pytorch ``distill.py`` style)
that holds its hyperparameters as keyword-only constructor arguments and maps
one :class:`DistillInputs` to one :class:`LossOutput`. Each class declares its
hyperparameters in ``options`` (name -> :class:`Option`: type, default, help,
allowed values), so the CLI, recipes and ablation grids can validate keys and
parse values from strings (``--grid alpha=0,1,3``) without knowing the loss.

The teacher's outputs are cached in the store, so they arrive as plain tensors
(never with a graph); a loss detaches them anyway.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lugpi_cli.errors import UserError

__all__ = ["DistillInputs", "DistillLoss", "LossOptionError", "LossOutput", "Option"]


class LossOptionError(UserError, ValueError):
    """A bad loss name, option name or option value (a UserError and a ValueError)."""


@dataclass
class DistillInputs:
    """Everything a distillation loss may read for one batch.

    ``student_logits`` (B, k) and ``student_embedding`` (B, d) come from the
    student's forward pass; ``labels`` (B,) are class indices. The teacher's
    cached outputs are ``teacher_logits`` (B, k) and ``teacher_embedding``
    (B, D), ``None`` when the loss does not read them. ``teacher_extra`` carries
    any further cached teacher output by name (for example per-modality teacher
    probabilities ``{"probs_text": (B, k), "probs_image": (B, k)}``);
    ``student_extra`` does the same for the student (for example intermediate
    hidden states). In-batch relational losses use the batch dimension of the
    embeddings directly.
    """

    student_logits: Tensor
    student_embedding: Tensor
    labels: Tensor
    teacher_logits: Tensor | None = None
    teacher_embedding: Tensor | None = None
    teacher_extra: dict[str, Tensor] = field(default_factory=dict)
    student_extra: dict[str, Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.student_logits.shape[0])

    def to(self, device: torch.device | str) -> DistillInputs:
        """A copy with every tensor on ``device``."""

        def mv(t):
            return None if t is None else t.to(device)

        return DistillInputs(
            student_logits=mv(self.student_logits),
            student_embedding=mv(self.student_embedding),
            labels=mv(self.labels),
            teacher_logits=mv(self.teacher_logits),
            teacher_embedding=mv(self.teacher_embedding),
            teacher_extra={k: mv(v) for k, v in self.teacher_extra.items()},
            student_extra={k: mv(v) for k, v in self.student_extra.items()},
        )


@dataclass
class LossOutput:
    """``total`` is what to back-propagate; ``parts`` are the loss's named terms
    (unweighted, for progress bars and ``history.jsonl``)."""

    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """``{"total": ..., **parts}`` as plain floats."""
        out = {"total": float(self.total.detach())}
        out.update({k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in self.parts.items()})
        return out


_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


@dataclass(frozen=True)
class Option:
    """One hyperparameter of a loss: its type, default and allowed values.

    ``type`` is one of ``bool``, ``int``, ``float``, ``str``. ``choices`` limits
    the allowed values; ``min`` is a lower bound (exclusive when
    ``min_exclusive``).
    """

    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    min_exclusive: bool = False

    def describe(self) -> str:
        if self.choices:
            return "|".join(map(str, self.choices))
        bound = ""
        if self.min is not None:
            bound = f" {'>' if self.min_exclusive else '>='} {self.min:g}"
        return f"{self.type.__name__}{bound}"

    def parse(self, text: str) -> Any:
        """Parse a command-line string (``"0.5"``, ``"true"``, ``"both"``) and check it."""
        if not isinstance(text, str):
            return self.check(text)
        s = text.strip()
        if self.type is bool:
            if s.lower() in _TRUE:
                return True
            if s.lower() in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if self.type is int:
            try:
                value: Any = int(s)
            except ValueError:
                raise ValueError(f"expected an integer, got {text!r}") from None
        elif self.type is float:
            try:
                value = float(s)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
        else:
            value = s
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to the option's type, or raise ValueError saying why not."""
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {value!r}")
        elif t is str and not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
            raise ValueError(f"must be {'>' if self.min_exclusive else '>='} {self.min:g}, got {value!r}")
        return value


class DistillLoss(nn.Module, ABC):
    """Base class: ``forward(DistillInputs) -> LossOutput``.

    Subclasses set ``options`` and take exactly those names as keyword-only
    ``__init__`` arguments with the same defaults (checked by
    :func:`~lugpi_cli.losses.registry.register_loss`), plus the structural
    ``student_dim`` / ``teacher_dim`` (embedding widths, ``None`` when unknown),
    and call ``super().__init__(**values)`` with the option values.
    """

    #: Registered name, set by ``register_loss``.
    name: ClassVar[str] = ""
    #: Hyperparameters: name -> Option.
    options: ClassVar[dict[str, Option]] = {}
    #: Every teacher output this class can read (instances say which they do read).
    all_teacher_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **values: Any):
        super().__init__()
        self.hparams: dict[str, Any] = self.check_options(values)

    # -- options -----------------------------------------------------------------

    @classmethod
    def check_options(cls, values: dict[str, Any], *, parse: bool = False) -> dict[str, Any]:
        """Defaults filled in, each value checked (``parse``: values are strings).

        Raises :class:`LossOptionError` naming an unknown option or a bad value.
        """
        unknown = [k for k in values if k not in cls.options]
        if unknown:
            raise LossOptionError(
                f"unknown option {unknown[0]!r} for loss {cls.name or cls.__name__!r}",
                hint=f"valid options: {cls.describe_options()}",
            )
        out = {k: opt.default for k, opt in cls.options.items()}
        for key, value in values.items():
            opt = cls.options[key]
            try:
                out[key] = opt.parse(value) if parse else opt.check(value)
            except ValueError as exc:
                raise LossOptionError(
                    f"invalid value {value!r} for option {key!r} of loss {cls.name or cls.__name__!r}: {exc}",
                    hint=f"{key}: {opt.describe()}" + (f" ({opt.help})" if opt.help else ""),
                ) from None
        return out

    @classmethod
    def describe_options(cls) -> str:
        if not cls.options:
            return "(none)"
        return ", ".join(f"{k}={opt.default} ({opt.describe()})" for k, opt in cls.options.items())

    @classmethod
    def _check_signature(cls) -> None:
        """The ``options`` table and the ``__init__`` keyword arguments agree."""
        params = inspect.signature(cls.__init__).parameters
        for key, opt in cls.options.items():
            p = params.get(key)
            if p is None or p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"{cls.__name__}.__init__ lacks keyword-only argument {key!r}")
            if p.default != opt.default:
                raise TypeError(
                    f"{cls.__name__}: default of {key!r} is {p.default!r} in __init__, {opt.default!r} in options"
                )
            opt.check(opt.default)

    # -- what it needs -------------------------------------------------------------

    @property
    def teacher_fields(self) -> frozenset[str]:
        """The cached teacher outputs this instance reads (``"logits"``, ``"embedding"``, extra names)."""
        return self.all_teacher_fields

    @property
    def requires_teacher(self) -> bool:
        return bool(self.teacher_fields)

    @property
    def aligned(self) -> bool:
        """True when the loss holds trainable parameters (e.g. a width aligner)."""
        return any(True for _ in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())

    @abstractmethod
    def forward(self, inputs: DistillInputs) -> LossOutput:
        """The loss of one batch (every registered objective defines it)."""
