"""The body every stage command shares, and the progress a stage shows while it runs.

:func:`call_stage`: options -> the stage's ``Params`` (checked once) -> ``run`` with its progress -> print.
:func:`stage_hooks` (the same bars from a command and from `lugpi run`) is a context manager yielding the keyword arguments the stage's ``run`` takes for its
progress (``on_start``/``on_batch`` for generate and embed, ``hooks`` for training, ``on_start``/``on_cell`` for an
ablation's cells).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from lugpi_cli import console


def call_stage(module: Any, values: dict[str, Any], *, json_out: bool, dataset: dict[str, Any] | None = None,
               render: Callable[[Any, Any], None] | None = None, emit: Callable[[Any], None] | None = None) -> Any:
    """Run one stage for a command: ``render(console, result)`` prints it (or ``emit(result)`` reports it
    itself); a stage's ``failure(result)`` (images that could not be made) is raised after the report."""
    from lugpi_cli import runtime

    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    extra = {"dataset": dataset} if dataset is not None else {}
    params = module.Params.from_mapping(values, **extra)
    with stage_hooks(module.Params.STAGE, params) as hooks:
        result = module.run(state.space, params, **hooks)
    if emit is not None:
        emit(result)
    else:
        console.emit(result.to_json(), (lambda out: render(out, result)) if render is not None else None)
    failure = getattr(module, "failure", None)
    error = failure(result) if failure is not None else None
    if error is not None:
        raise error
    return result


@contextlib.contextmanager
def stage_hooks(stage: str, params: Any) -> Iterator[dict[str, Any]]:
    if stage in ("generate", "embed"):
        with _image_bar(stage, params) as bar:
            yield {"on_start": bar.start, "on_batch": bar.advance}
    elif stage == "ablate":
        with _cells_bar() as hooks:
            yield hooks
    elif stage in ("teacher", "student"):
        from lugpi_cli.progress import TrainingProgress

        with TrainingProgress(params.train_config(resolve_workers=False)) as hooks:
            yield {"hooks": hooks}
    else:
        yield {}


def _image_bar(stage: str, params: Any):
    if stage == "embed":
        return console.ProgressBar("embedding", unit="img", kept="images embedded and stored")
    from lugpi_cli import runtime

    eta = "GPU time left" if runtime.resolve_device(params.device).type == "cuda" else "ETA"
    return console.ProgressBar("generating", unit="img", eta_label=eta, kept="images stored")


@contextlib.contextmanager
def _cells_bar() -> Iterator[dict[str, Any]]:
    """An ablation's bar: one step per cell, a log line with each cell's factors and scores."""
    bar = console.ProgressBar("cells", unit="cell")
    factors: list[str] = []

    def start(cells: int, out_dir: Any, names: list[str]) -> None:
        factors.extend(names)
        bar.kept = f"grid cells finished (in {out_dir / 'results.csv'})"
        bar.start(cells)

    def done(i: int, row: dict[str, Any]) -> None:
        shown = " ".join(f"{k}={row[k]}" for k in factors)
        bar.log(f"{shown} seed={row['seed']}: {row['status']}, validation {row['validation_accuracy']:.4f}, "
                f"test {row['test_accuracy']:.4f}")
        bar.advance(1)

    with bar:
        yield {"on_cell": done, "on_start": start, "verbose": console.state().verbose}
