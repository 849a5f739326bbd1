"""Running grid cells as ordinary distill runs, in this process or in a pool of processes.

Every cell runs through :func:`lugpi_cli.stages.student.run`, exactly as ``lugpi distill`` with the same
settings would. A cell whose run is already DONE (an earlier, interrupted grid; a run made by
hand with the same settings) is reused, not retrained — the run name is the
config hash either way. With ``jobs > 1`` cells run in spawned worker
processes: on a machine with several GPUs each worker takes one GPU, on the
CPU the cores are shared out. Only the parent writes the results files.
Nothing here generates, embeds or runs a teacher: cells read the store.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lugpi_cli.ablation.grid import Cell

if TYPE_CHECKING:
    from lugpi_cli.workspace import Workspace


def row_of(cell: Cell, result: Any) -> dict[str, Any]:
    """One row of the results table: the cell's factor levels, seed, run and accuracies."""
    metrics = result.metrics
    row: dict[str, Any] = {**dict(cell.factors), "seed": cell.seed, "run": result.run.name,
                           "status": result.status}
    for split in ("validation", "test"):
        for name in ("accuracy", "macro_f1"):
            row[f"{split}_{name}"] = metrics.get(split, {}).get(name)
    row["run_dir"] = str(result.run.dir)
    return row


def run_cell(ws: Workspace | Path, cell: Cell, params: Any) -> dict[str, Any]:
    """Train (or reuse) the cell's distill run (``params``: its :class:`lugpi_cli.stages.student.Params`)."""
    from lugpi_cli.stages import student
    from lugpi_cli.workspace import Workspace

    own = not isinstance(ws, Workspace)  # a worker process: its own workspace object, flushed here
    space = Workspace(ws) if own else ws
    result = student.run(space, params)
    if own:
        space.flush()
    return row_of(cell, result)


def _init_worker(devices, threads: int, verbose: int) -> None:
    """Each worker: one GPU (if any), its share of CPU threads, quiet libraries."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())
    import torch

    from lugpi_cli.runtime import quiet_libraries

    torch.set_num_threads(threads)
    quiet_libraries(verbose)


def run_grid(ws: Workspace, cells: Sequence[Cell], params: Sequence[Any], *, jobs: int = 1, verbose: int = 0,
             on_result: Callable[[int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell (``params[i]`` the student parameters of ``cells[i]``); ``on_result(index, row)`` after
    each (in the parent process)."""
    rows: list[dict[str, Any] | None] = [None] * len(cells)
    if jobs <= 1:
        for i, cell in enumerate(cells):
            rows[i] = run_cell(ws, cell, params[i])
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
        ws.flush()  # what this process holds back (the data set's snapshot) before the workers read the store
        pending = {pool.submit(run_cell, ws.root, cell, params[i]): i for i, cell in enumerate(cells)}
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
