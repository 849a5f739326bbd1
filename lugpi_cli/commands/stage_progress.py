"""The progress a stage shows while it runs (the same bars from its command and from `lugpi run`).

:func:`stage_hooks` is a context manager yielding the keyword arguments the stage's ``run`` takes for its
progress (``on_start``/``on_batch`` for generate and embed, ``hooks`` for training).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from lugpi_cli import console


@contextlib.contextmanager
def stage_hooks(stage: str, params: Any) -> Iterator[dict[str, Any]]:
    if stage in ("generate", "embed"):
        with _image_bar(stage, params) as bar:
            yield {"on_start": bar.start, "on_batch": bar.advance}
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
