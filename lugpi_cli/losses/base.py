"""The one signature every distillation objective shares.

A loss is a small :class:`torch.nn.Module` (vit-pytorch ``distill.py`` style)
that holds its hyperparameters as keyword-only constructor arguments and maps
one :class:`DistillInputs` to one :class:`LossOutput`. Each class declares its
hyperparameters in ``options`` (name -> :class:`Option`: type, default, help,
allowed values), so the CLI, recipes and ablation grids can validate keys and
parse values from strings (``--grid alpha=0,1,3``) without knowing the loss.
The built-in methods take that table, their bounds and the teacher outputs they
read from their torch-free ``spec`` (:mod:`lugpi_cli.loss_specs`), which plans
and the CLI read without importing torch.

The teacher's outputs are cached in the store, so they arrive as plain tensors
(never with a graph); a loss detaches them anyway.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lugpi_cli.loss_specs import LossOptionError, LossSpec, Option, check_values, describe_options

__all__ = ["DistillInputs", "DistillLoss", "LossContext", "LossOptionError", "LossOutput", "Option"]


@dataclass(frozen=True)
class LossContext:
    """What a loss's trainable parts are sized by, known once the student is built and before its optimizer:
    the student's embedding width d_S, the cached teacher embedding's width D (``None`` when the loss reads
    no teacher embedding) and the number of classes k."""

    student_dim: int
    teacher_dim: int | None
    num_labels: int


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
    #: The built-in method's torch-free description (:data:`lugpi_cli.loss_specs.LOSS_SPECS`), the source of
    #: ``options``, ``all_teacher_fields``, the checks and ``teacher_fields``; None for a class declaring its own.
    spec: ClassVar[LossSpec | None] = None

    def __init__(self, **values: Any):
        super().__init__()
        self.hparams: dict[str, Any] = self.check_options(values)

    # -- options -----------------------------------------------------------------

    @classmethod
    def check_options(cls, values: dict[str, Any], *, parse: bool = False) -> dict[str, Any]:
        """Defaults filled in, each value checked (``parse``: values are strings), by the class's ``spec``
        (bounds and cross-option checks included) or, without one, its ``options`` table.

        Raises :class:`LossOptionError` naming an unknown option or a bad value.
        """
        name = cls.name or cls.__name__
        if cls.spec is not None and cls.spec.options is cls.options:
            return cls.spec.check_options(values, parse=parse, name=name)
        return check_values(name, cls.options, values, parse=parse)

    @classmethod
    def describe_options(cls) -> str:
        return describe_options(cls.options)

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
        if self.spec is not None and self.spec.options is self.options:
            return self.spec.teacher_fields(self.hparams)
        return self.all_teacher_fields

    @property
    def requires_teacher(self) -> bool:
        return bool(self.teacher_fields)

    @property
    def aligned(self) -> bool:
        """True when the loss holds trainable parameters (e.g. a width aligner)."""
        return any(True for _ in self.parameters())

    def prepare_for(self, context: LossContext) -> DistillLoss:
        """Create the loss's trainable parts (aligners, heads, weight nets) for ``context`` before the optimizer
        is built; the same call for every loss (a no-op for those without trainable parts)."""
        return self

    def objective_class(self) -> type:
        """The training objective this loss trains with (:class:`lugpi_cli.training.objectives.Objective`:
        the student's output and the cached teacher outputs); a loss with its own trainer declares another."""
        from lugpi_cli.training.objectives import Objective

        return Objective

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())

    @abstractmethod
    def forward(self, inputs: DistillInputs) -> LossOutput:
        """The loss of one batch (every registered objective defines it)."""
