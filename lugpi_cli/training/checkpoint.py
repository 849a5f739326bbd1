"""A fit's checkpoint (``RUN/checkpoint/``): writing it atomically, and resuming from it.

It holds everything resuming needs (nanoGPT style): the objective's weights
(safetensors), the best weights so far, the optimizer, LR scheduler and fp16
scaler states, every rank's random state, the objective's extra state and the
trainer's counters (``trainer.json``). The ``.pt`` files load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lugpi_cli.training.objectives import Objective
from lugpi_cli.training.runs import BEST_WEIGHTS, Run


def save_checkpoint(path: Path, objective: "Objective", optimizer, scheduler, state: dict[str, Any],
                    best_path: Path | None, *, rng: list[dict[str, Any]], scaler=None, final: bool = False) -> None:
    """Write the checkpoint to ``path.tmp`` and swap it in, so a kill never leaves half a checkpoint.

    ``rng`` holds every process's random state (index = rank), so each rank of a
    resumed DDP run continues its own dropout stream; ``scaler`` is the fp16 loss
    scaler, if any. A ``final`` checkpoint (after the fit's last epoch: no step
    is left to take) leaves out what only further steps need — the optimizer
    state (twice the model for AdamW), the schedule, the random and scaler
    states — so a kill while the outputs are predicted and cached resumes there
    without retraining, and a run does not pay for writing state it never reads.
    """
    from safetensors.torch import save_model

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(objective, str(tmp / "objective.safetensors"))
    if best_path is not None and best_path.exists():
        shutil.copy2(best_path, tmp / BEST_WEIGHTS)
    if final:
        state = {**state, "final": True}
    else:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"ranks": rng}, tmp / "rng.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
    extra = objective.extra_state()
    if extra:
        torch.save(extra, tmp / "extra.pt")
    (tmp / "trainer.json").write_text(json.dumps(state, sort_keys=True))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint_state(path: Path) -> dict[str, Any] | None:
    trainer = path / "trainer.json"
    return json.loads(trainer.read_text()) if trainer.exists() else None


def recover_run_dir(run: Run, accelerator) -> dict[str, Any] | None:
    """The last checkpoint's trainer state (``None``: a fresh start), the run directory made to match it.

    A kill between the two renames of a checkpoint swap left only ``checkpoint.old``: it is put back.
    Resuming, the checkpoint's best weights become the run's and history past it is cut; starting
    afresh, a previous start's leftovers go. One process edits the directory; all wait for it.
    """
    main = accelerator.is_main_process
    run.dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run.checkpoint_dir
    backup = checkpoint.with_name(checkpoint.name + ".old")
    if main and not checkpoint.exists() and load_checkpoint_state(backup) is not None:
        os.replace(backup, checkpoint)  # killed between the two renames of a checkpoint swap
    accelerator.wait_for_everyone()
    best_path = run.dir / BEST_WEIGHTS
    state = load_checkpoint_state(checkpoint)
    start_epoch = int(state["epoch"]) if state is not None else 0
    if main:  # one process edits the run directory
        if state is not None and (checkpoint / BEST_WEIGHTS).exists():
            shutil.copy2(checkpoint / BEST_WEIGHTS, best_path)
        elif state is None:
            best_path.unlink(missing_ok=True)  # leftovers of a start that never reached a checkpoint
        run.truncate_history(start_epoch)
    accelerator.wait_for_everyone()
    return state


def load_objective_state(objective: Objective, checkpoint: Path) -> None:
    """The checkpoint's weights and the objective's extra state, into ``objective``."""
    from safetensors.torch import load_model

    load_model(objective, str(checkpoint / "objective.safetensors"))
    extra = checkpoint / "extra.pt"
    if extra.exists():
        objective.load_extra_state(torch.load(extra, weights_only=True))


def load_optimizer_state(checkpoint: Path, optimizer, scheduler, rank: int) -> None:
    """The optimizer's and LR scheduler's states, and this rank's random state."""
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    _load_rng_state(checkpoint / "rng.pt", rank)


def load_scaler_state(checkpoint: Path, scaler) -> None:
    """The fp16 loss scaler's state, if there is a scaler and the checkpoint holds one."""
    if scaler is not None and (checkpoint / "scaler.pt").exists():
        scaler.load_state_dict(torch.load(checkpoint / "scaler.pt", weights_only=True))


# -- random state -------------------------------------------------------------------

def _rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }


def _load_rng_state(path: Path, rank: int) -> None:
    """Restore this rank's random state from a checkpoint's ``rng.pt``."""
    saved = torch.load(path, weights_only=True)
    ranks = saved.get("ranks", [saved])  # older checkpoints held one (rank 0's) state
    _set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0])


def _set_rng_state(saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    version, state, gauss = saved["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def gather_rng(accelerator) -> list[dict[str, Any]]:
    """Every process's random state, in rank order (a collective: all ranks call it)."""
    if accelerator.num_processes == 1:
        return [_rng_state()]
    from accelerate.utils import gather_object

    return list(gather_object([_rng_state()]))
