"""Store commits on a background thread, so they overlap the next batch's model work.

``generate`` and ``embed`` alternate a model call (diffusion steps, a vision
forward pass) with encoding and one LMDB commit per batch; the commit syncs to
disk and costs a few milliseconds, which on a fast GPU (or a small encoder) is
a sizeable share of a batch. :class:`BackgroundWriter` runs those jobs on one
thread, in submission order, while the caller computes the next batch:

    with BackgroundWriter() as writer:
        for batch in batches:
            result = model(batch)                 # overlaps the previous commit
            writer.submit(commit, result)          # blocks only when `depth` jobs wait

Guarantees: jobs run one at a time and in order (one write transaction per
batch, as before); at most ``depth`` batches wait in memory; leaving the
``with`` block — normally or by an exception such as Ctrl-C — waits for every
submitted job, so each batch is either fully committed or was never started,
exactly as without the thread; an exception raised by a job is re-raised in
the caller at its next ``submit`` or on leaving the block (jobs after a failed
one are skipped). ``depth=0`` runs every job inline (no thread).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

DEFAULT_DEPTH = 2  # batches that may wait for their commit: enough to hide one slow sync


class BackgroundWriter:
    """One worker thread that runs submitted callables in order; see the module docstring."""

    def __init__(self, depth: int = DEFAULT_DEPTH, *, name: str = "lugpi-store-writer"):
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.depth = depth
        self.name = name
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._failed = False  # set by the worker on the first failure: later jobs are skipped

    def __enter__(self) -> "BackgroundWriter":
        if self.depth:
            self._queue = queue.Queue(maxsize=self.depth)
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(raise_error=exc_type is None)

    def submit(self, job: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``job(*args, **kwargs)``; re-raise a failure of an earlier job first."""
        self._raise()
        if self._queue is None:
            job(*args, **kwargs)
            return
        self._queue.put((job, args, kwargs))

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for every queued job; re-raise a job's failure (unless ``raise_error`` is false)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _work(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._failed:
                continue  # a failed commit: skip the rest, the caller sees the first error
            job, args, kwargs = item
            try:
                job(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._failed = True
                self._error = exc
