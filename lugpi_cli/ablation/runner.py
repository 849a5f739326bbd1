"""Running grid cells as ordinary distill runs, in this process or in a pool of processes.

A cell whose run is already DONE (an earlier, interrupted grid; a run made by
hand with the same settings) is reused, not retrained — the run name is the
config hash either way. With ``jobs > 1`` cells run in spawned worker
processes: on a machine with several GPUs each worker takes one GPU, on the
CPU the cores are shared out. Only the parent writes the results files.
Nothing here generates, embeds or runs a teacher: cells read the store.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lugpi_cli.ablation.grid import Cell
from lugpi_cli.training.loop import TrainConfig


@dataclass(frozen=True)
class GridContext:
    """What every cell shares (picklable, for worker processes)."""

    store_path: Path
    runs_dir: Path
    teacher_dir: Path | None
    dataset: dict[str, Any]  # {"name", "fingerprint", "full_fingerprint", "limit"}
    base: TrainConfig
    device: str = "auto"


def _dataset(ctx: GridContext, store):
    from lugpi_cli.data.snapshot import limit_dataset, load_snapshot
    from lugpi_cli.errors import UserError

    ds = load_snapshot(store, ctx.dataset["full_fingerprint"])
    if ds is None:
        raise UserError(f"no snapshot of data set {ctx.dataset['name']!r} in {ctx.store_path}")
    return limit_dataset(ds, ctx.dataset.get("limit"))


def run_cell(ctx: GridContext, cell: Cell) -> dict[str, Any]:
    """Train (or reuse) the cell's distill run; one row of the results table."""
    from lugpi_cli.training.runs import Run
    from lugpi_cli.training.stages import StudentSpec, distill
    from lugpi_store import Store

    store = Store(ctx.store_path)
    student, loss, cfg = cell.student_and_train(ctx.base)
    spec = StudentSpec(options=tuple(sorted(loss.items())), **student)
    result = distill(store, ctx.runs_dir, _dataset(ctx, store), spec, cfg,
                     teacher=Run(ctx.teacher_dir) if ctx.teacher_dir else None,
                     dataset_request=ctx.dataset, device=ctx.device)
    metrics = result.metrics
    row: dict[str, Any] = {**dict(cell.factors), "seed": cell.seed, "run": result.run.name,
                           "status": result.status}
    for split in ("validation", "test"):
        for name in ("accuracy", "macro_f1"):
            row[f"{split}_{name}"] = metrics.get(split, {}).get(name)
    row["run_dir"] = str(result.run.dir)
    return row


def _init_worker(devices, threads: int, verbose: int) -> None:
    """Each worker: one GPU (if any), its share of CPU threads, quiet libraries."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())
    import torch

    from lugpi_cli.runtime import quiet_libraries

    torch.set_num_threads(threads)
    quiet_libraries(verbose)


def run_grid(ctx: GridContext, cells: Sequence[Cell], *, jobs: int = 1, verbose: int = 0,
             on_result: Callable[[int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell; ``on_result(index, row)`` after each (in the parent process)."""
    rows: list[dict[str, Any] | None] = [None] * len(cells)
    if jobs <= 1:
        for i, cell in enumerate(cells):
            rows[i] = run_cell(ctx, cell)
            if on_result is not None:
                on_result(i, rows[i])
        return rows  # type: ignore[return-value]
    import multiprocessing as mp

    import torch

    context = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    devices = None
    if gpus > 1:
        devices = context.Manager().Queue()
        for i in range(jobs):
            devices.put(i % gpus)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=(devices, threads, verbose)) as pool:
        pending = {pool.submit(run_cell, ctx, cell): i for i, cell in enumerate(cells)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    rows[i] = future.result()
                    if on_result is not None:
                        on_result(i, rows[i])
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return rows  # type: ignore[return-value]
