"""What one training step computes: a model plus its objective, as one module ``accelerate`` prepares.

* :class:`Objective` — the model's output and the batch's cached teacher
  outputs (``teacher_<field>``) become one :class:`DistillInputs` for any
  registered loss (LUGPI, KD, FitNet, RKD, SP, MSD, ARMADA).
* :class:`EmaObjective` — self-distillation: the teacher is an exponential
  moving average of the student, run on the same (optionally mixup-interpolated)
  batch; it is a frozen submodule, so checkpoints hold it and resume restores it.
* :class:`MetaObjective` — MSD with meta-learned weights: before every
  ``meta_every``-th step a meta step (MSD's Algorithm 1, lines 4-5) on a validation batch.
* :class:`ArmadaTeacherLoss` — the ARMADA teacher-side aligner's own loss.

Each loss declares the objective it trains with (``loss.objective_class()``); every objective is built
the same way, ``cls.for_training(model, loss, setting)``, so the stages hold no per-loss branches.
``fit`` calls ``before_step(batch, lr)`` before each forward and ``after_step()`` after each optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput

TEACHER_PREFIX = "teacher_"
EXTRA_KEYS = ("labels_b", "lam")  # batch keys a mixup step adds for the loss


def make_inputs(out: Any, batch: dict[str, Any]) -> DistillInputs:
    """A model output and its batch -> the one input every loss takes."""
    teacher = {k[len(TEACHER_PREFIX):]: v for k, v in batch.items() if k.startswith(TEACHER_PREFIX)}
    student_extra = dict(getattr(out, "extra", {}) or {})
    student_extra.update({k: batch[k] for k in EXTRA_KEYS if k in batch})
    return DistillInputs(
        student_logits=out.logits, student_embedding=out.embedding, labels=batch["labels"],
        teacher_logits=teacher.pop("logits", None), teacher_embedding=teacher.pop("embedding", None),
        teacher_extra=teacher, student_extra=student_extra,
    )


@dataclass
class ObjectiveSetting:
    """What an objective may need besides the model and the loss: the run's seed (mixup draws) and
    a factory of validation batches (the meta set of meta-learned weights)."""

    seed: int = 0
    val_loader: Callable[[], Any] | None = None


class Objective(nn.Module):
    """A model and its training loss as one module, so ``accelerate`` prepares both."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model = model
        self.loss = loss

    @classmethod
    def for_training(cls, model: nn.Module, loss: DistillLoss, setting: ObjectiveSetting) -> "Objective":
        """The objective of ``loss`` (``loss.objective_class()``), built the same way for every loss."""
        return cls(model, loss)

    def forward(self, batch: dict[str, Any]) -> tuple[LossOutput, Any]:
        out = self.model(batch)
        return self.loss(make_inputs(out, batch)), out

    def before_step(self, batch: dict[str, Any], lr: float) -> None:
        """Called before each forward (no-op here)."""

    def after_step(self) -> None:
        """Called after each optimizer step (no-op here)."""

    def extra_state(self) -> dict[str, Any]:
        """Training state outside the module's parameters, for checkpoints (tensors and plain values)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state` when a run resumes."""


class ArmadaTeacherLoss(nn.Module):
    """The ARMADA teacher-side aligner's loss: ``CE(z1, y) + gamma * CE(z2, y)``.

    ``z1`` are the MLP head's logits, ``z2`` the auxiliary classifier's on the
    orthogonal projection (``student_extra["logits_aux"]`` of the inputs, i.e.
    the teacher's own output while it is being trained).
    """

    def __init__(self, gamma: float = 1.0):
        super().__init__()
        self.gamma = float(gamma)

    def forward(self, inputs: DistillInputs) -> LossOutput:
        main = F.cross_entropy(inputs.student_logits, inputs.labels)
        aux = F.cross_entropy(inputs.student_extra["logits_aux"], inputs.labels)
        return LossOutput(main + self.gamma * aux, {"ce": main.detach(), "ce_aux": aux.detach()})


def _embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    inner = getattr(model, "model", model)
    return inner.get_input_embeddings()(input_ids)


class EmaObjective(Objective):
    """Self-distillation from an exponential moving average of the student (``ema`` method).

    With ``mixup > 0`` both models read token embeddings of two samples mixed
    with ``lam ~ Beta(A, A)`` (each model through its own embedding table), the
    attention masks are united, and the loss mixes the hard labels alike.
    """

    def __init__(self, model: nn.Module, loss: DistillLoss, *, seed: int = 0):
        super().__init__(model, loss)
        from lugpi_cli.losses.ema import make_ema_model

        self.ema = make_ema_model(model)
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def for_training(cls, model: nn.Module, loss: DistillLoss, setting: ObjectiveSetting) -> "EmaObjective":
        return cls(model, loss, seed=setting.seed)

    def train(self, mode: bool = True) -> "EmaObjective":
        super().train(mode)
        self.ema.eval()  # the teacher never uses dropout
        return self

    def _mixed(self, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        from lugpi_cli.losses.ema import mixup_lambda

        lam = mixup_lambda(self.loss.mixup, self.generator)
        perm = torch.randperm(batch["labels"].shape[0], generator=self.generator).to(batch["labels"].device)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        united = torch.maximum(mask, mask[perm])
        common = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask", "token_type_ids")}
        common.update(attention_mask=united, labels_b=batch["labels"][perm],
                      lam=torch.tensor(lam, device=ids.device))

        def mix(model: nn.Module) -> dict[str, Any]:
            e = _embed(model, ids)
            return {**common, "inputs_embeds": lam * e + (1 - lam) * e[perm]}

        return mix(self.model), mix(self.ema)

    def forward(self, batch: dict[str, Any]) -> tuple[LossOutput, Any]:
        student_batch = teacher_batch = batch
        if self.training and self.loss.mixup > 0:
            student_batch, teacher_batch = self._mixed(batch)
        out = self.model(student_batch)
        if self.loss.needs_ema_teacher:
            with torch.no_grad():
                student_batch = {**student_batch, "teacher_logits": self.ema(teacher_batch).logits}
        return self.loss(make_inputs(out, student_batch)), out

    def after_step(self) -> None:
        from lugpi_cli.losses.ema import ema_update_

        ema_update_(self.ema, self.model, self.loss.ema_decay)

    def extra_state(self) -> dict[str, Any]:
        return {"mixup_generator": self.generator.get_state()}  # the EMA weights are a submodule already

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "mixup_generator" in state:
            self.generator.set_state(state["mixup_generator"])


class MetaObjective(Objective):
    """MSD with ``weighting="meta"``: a Meta-Weight-Net update before every ``meta_every``-th step.

    The validation split is the meta set; its batches are cycled. The weight net
    and its optimizer live outside the student (not saved with it, but saved in
    checkpoints with the position in the validation cycle, so a resumed run
    takes the same meta steps as an uninterrupted one).
    """

    def __init__(self, model: nn.Module, loss: DistillLoss, val_loader_factory: Callable[[], Any]):
        super().__init__(model, loss)
        self._val_factory = val_loader_factory
        self._val_iter: Iterator[dict[str, Any]] | None = None
        self._val_drawn = 0  # validation batches taken so far (over all cycles)
        self._meta_optimizer = None
        self._pending: dict[str, Any] | None = None  # loaded state, applied once the net is on its device
        self._steps = 0
        self.last_stats: dict[str, float] = {}

    @classmethod
    def for_training(cls, model: nn.Module, loss: DistillLoss, setting: ObjectiveSetting) -> "MetaObjective":
        if setting.val_loader is None:
            raise ValueError("meta-learned weights need the validation batches (ObjectiveSetting.val_loader)")
        return cls(model, loss, setting.val_loader)

    def _cycle(self) -> Iterator[dict[str, Any]]:
        """The validation batches, round and round, resuming after ``_val_drawn`` of them."""
        skip = self._val_drawn
        if skip:
            length = len(self._val_factory())
            skip %= max(length, 1)
        while True:
            empty = True
            for batch in self._val_factory():
                empty = False
                if skip:
                    skip -= 1
                    continue
                yield batch
            if empty:
                raise ValueError("the meta step needs validation batches, but the validation split is empty")

    def _val_batch(self, device: torch.device) -> dict[str, Any]:
        if self._val_iter is None:
            self._val_iter = self._cycle()
        batch = next(self._val_iter)
        self._val_drawn += 1
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def before_step(self, batch: dict[str, Any], lr: float) -> None:
        from lugpi_cli.losses.meta import meta_weight_step

        self._steps += 1
        if (self._steps - 1) % self.loss.meta_every:
            return
        device = next(self.model.parameters()).device
        self._ensure_meta()
        # Algorithm 1 of MSD: look-ahead step size alpha = the loss's meta_alpha (not the AdamW lr)
        self.last_stats = meta_weight_step(self.model, self.loss, batch, self._val_batch(device),
                                           meta_optimizer=self._meta_optimizer, make_inputs=make_inputs)

    def _ensure_meta(self) -> None:
        """Move the weight net beside the student and build its optimizer; apply a loaded state.

        Loading waits until here, after ``accelerator.prepare`` moved the student: the
        optimizer's state is then cast onto the device of the net's parameters.
        """
        if self._meta_optimizer is None:
            self.loss.to(next(self.model.parameters()).device)
            self._meta_optimizer = self.loss.make_meta_optimizer()
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.loss.weight_net.load_state_dict(state["weight_net"])
            self._meta_optimizer.load_state_dict(state["meta_optimizer"])

    def extra_state(self) -> dict[str, Any]:
        """The weight net, its optimizer, the step count and the position in the validation cycle."""
        self._ensure_meta()
        return {"weight_net": self.loss.weight_net.state_dict(), "meta_optimizer": self._meta_optimizer.state_dict(),
                "steps": self._steps, "val_drawn": self._val_drawn}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "weight_net" not in state:
            return
        self._pending = state
        self._steps = int(state["steps"])
        self._val_drawn = int(state.get("val_drawn", 0))
        self._val_iter = None
