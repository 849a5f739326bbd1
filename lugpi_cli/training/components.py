"""The parts :func:`~lugpi_cli.training.loop.fit` puts together: seeding, the accelerator, the optimizer,
the LR schedule's length and the data loaders."""

from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch
from torch import nn

from lugpi_cli.errors import UserError
from lugpi_cli.training.config import TrainConfig

FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # where torch has a fused AdamW kernel (the Trainer's default since torch 2.8)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _mixed_precision(choice: str, device_type: str) -> str:
    if choice != "auto":
        return choice
    if device_type != "cuda":
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(cfg: TrainConfig, device: str = "auto", log_with: list | None = None):
    """An Accelerator for this process (DDP when launched with several processes; ``log_with``: trackers)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if device.startswith("cuda:"):
        raise UserError(f"--device {device}: training picks its GPU through accelerate",
                        f"Run it as CUDA_VISIBLE_DEVICES={device.split(':', 1)[1]} lugpi ... --device cuda, or with "
                        "`accelerate launch` for several GPUs.")
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {device!r} is not a training device", "Use auto, cpu or cuda.")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: this machine has no CUDA GPU", "Use --device auto or cpu.")
    AcceleratorState._reset_state(True)  # several runs in one process (ablate, tests)
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    precision = _mixed_precision(cfg.mixed_precision, "cpu" if cpu else "cuda")
    if cpu and precision == "fp16":
        raise UserError("--mixed-precision fp16 needs a GPU", "On the CPU use bf16 or no.")
    return Accelerator(cpu=cpu, mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum,
                       log_with=log_with or None)


def make_optimizer(objective: nn.Module, cfg: TrainConfig, device: "torch.device") -> torch.optim.AdamW:
    """AdamW, weight decay on matrices only; fused (one kernel per step, not a Python loop over the parameters)
    on the CPU and CUDA -- the same update within float tolerance (tests/training/test_optimizer.py)."""
    params = [p for p in objective.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    fused = device.type in FUSED_ADAMW_DEVICES and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)


def scheduler_steps_per_epoch(samples: int, batch_size: int, grad_accum: int, processes: int) -> int:
    """How often accelerate steps the LR scheduler in one epoch.

    Each of the ``processes`` ranks gets ``ceil(ceil(samples / batch_size) / processes)``
    batches (accelerate pads the shards to equal length), takes an optimizer
    step every ``grad_accum`` of them and at the end of the loader, and steps
    the scheduler once per process for each optimizer step.
    """
    per_rank = math.ceil(math.ceil(samples / batch_size) / processes)
    return math.ceil(per_rank / grad_accum) * processes


def make_loader(data, batch_size: int, collate: Callable, *, workers: int, shuffle: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                       collate_fn=collate, num_workers=workers,
                                       persistent_workers=False, pin_memory=torch.cuda.is_available())
