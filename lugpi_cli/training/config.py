"""The optimisation settings of a training run, without torch: a plan (``lugpi run --dry-run``) hashes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lugpi_cli.errors import UserError


@dataclass
class TrainConfig:
    """Optimisation settings (the paper's defaults: AdamW, lr 5e-5, linear decay, batch 14)."""

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 14
    eval_batch_size: int = 64
    grad_accum: int = 1
    max_steps: int | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    early_stopping: int | None = None
    seed: int = 0
    max_length: int = 512
    mixed_precision: str = "auto"
    workers: int = 0
    report_to: str = "none"  # experiment trackers (see training/tracking.py); never part of the hash
    project: str | None = None  # the trackers' project (ablation cells share one)
    compile: bool = False  # torch.compile the model's forward (GPU runs; results equal within float tolerance)

    def check(self) -> "TrainConfig":
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        for name in ("batch_size", "eval_batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise UserError(f"--early-stopping must be at least 1 epoch, got {self.early_stopping}")
        if not self.weight_decay >= 0:
            raise UserError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if not self.max_grad_norm >= 0:
            raise UserError(f"--max-grad-norm must be >= 0 (0 turns clipping off), got {self.max_grad_norm}")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"--warmup must be in [0, 1), got {self.warmup_ratio}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise UserError(f"--mixed-precision {self.mixed_precision!r}", "Use auto, no, bf16 or fp16.")
        from lugpi_cli.training.tracking import parse_report_to

        parse_report_to(self.report_to)
        return self

    def hashed(self) -> dict[str, Any]:
        """What changes the result (``workers``, ``compile`` and the trackers do not)."""
        out = asdict(self)
        for key in ("workers", "compile", "report_to", "project"):
            out.pop(key)
        return out
