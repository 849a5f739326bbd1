"""Global CLI state and output: human text with rich, results as JSON.

With ``--json`` the command's result goes to stdout as exactly one JSON object
and everything meant for people (tables, progress, notes) goes to stderr, so
``lugpi distill ... --json | jq .run_dir`` works. ``--quiet`` drops the human
output but never errors or the JSON result.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

DEFAULT_WORKSPACE = "lugpi-workspace"
WORKSPACE_ENV = "LUGPI_WORKSPACE"


@dataclass
class State:
    """Options given before the subcommand (``lugpi --json store info``)."""

    workspace: Path = field(default_factory=lambda: Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE))
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    emitted: bool = False  # a result object was printed (an error then adds no second one)
    opened: list = field(default_factory=list)  # stores this command writes (flushed when it succeeds)

    @property
    def store_path(self) -> Path:
        return self.workspace / "store"

    @property
    def runs_path(self) -> Path:
        return self.workspace / "runs"

    def open_store(self, *, create: bool = False):
        """The workspace's feature store (created on first write when ``create``, which also means
        the command will write: a read-only store is refused before any work)."""
        from store import Store

        if not create:
            return Store(self.store_path)
        # meta records (registrations, snapshots) wait for the command's first record, or its success
        store = Store(self.store_path, create=True, defer_meta=True).require_writable()
        self.opened.append(store)
        return store

    def flush_stores(self) -> None:
        """The command succeeded: commit what its stores still hold back (see ``Store.defer_meta``)."""
        for store in self.opened:
            store.flush()
        self.opened.clear()


# The state of the current invocation. The CLI sets it in the app callback; the
# error handler reads ``verbose`` from it after the click context is gone.
_state = State()


def state() -> State:
    return _state


def set_state(new: State) -> State:
    global _state
    _state = new
    return new


def use_json(flag: bool) -> State:
    """Merge a command's own ``--json`` flag into the global state."""
    if flag:
        _state.json = True
    return _state


PIPE_WIDTH = 200  # columns when output goes to a file or pipe (rich would assume 80)


class _Console(Console):
    """rich's Console, but a closed pipe (``lugpi ... | head``) is the reader's choice, not a failure:
    the CLI exits 0 quietly instead of rich's exit 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def human() -> Console:
    """Where people-facing output goes: stdout normally, stderr in JSON mode."""
    stream = sys.stderr if _state.json else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return _Console(file=stream, quiet=_state.quiet, highlight=False, width=width)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


def emit(result: dict[str, Any], render: Callable[[Console], None] | None = None) -> None:
    """Report a command's result: JSON on stdout with ``--json``, else ``render``."""
    if _state.json:
        if render is not None and not _state.quiet:
            render(human())
        sys.stdout.write(json.dumps(_jsonable(result), sort_keys=True) + "\n")
        sys.stdout.flush()
        _state.emitted = True
    elif render is not None:
        render(human())


def note(message: str) -> None:
    """A one-line human message (suppressed by ``--quiet``)."""
    human().print(message)


class ProgressBar:
    """A rich progress bar on stderr with items/s and ETA (silent with --quiet).

    >>> with ProgressBar("generating", unit="img") as bar:   # doctest: +SKIP
    ...     bar.start(total)
    ...     bar.advance(8)
    """

    def __init__(self, description: str, *, unit: str = "it"):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.description = description
        self.unit = unit
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[postfix]}"),
            console=Console(stderr=True, quiet=_state.quiet), transient=False,
        )
        self._task = None

    def __enter__(self) -> "ProgressBar":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def start(self, total: int, description: str | None = None) -> None:
        """Begin a task of ``total`` items (a new line per call: one per epoch)."""
        if self._task is not None:
            self._progress.update(self._task, visible=True)
        if total > 0:  # nothing to do: no empty bar
            self._task = self._progress.add_task(description or self.description, total=total, rate="", postfix="")

    def log(self, message: str) -> None:
        """A line above the bars (suppressed by --quiet)."""
        self._progress.console.print(message, markup=False, highlight=False)

    def advance(self, n: int = 1, postfix: str = "") -> None:
        if self._task is None:
            return
        self._progress.advance(self._task, n)
        speed = self._progress.tasks[self._task].speed
        rate = f"{speed:.2f} {self.unit}/s" if speed else ""
        self._progress.update(self._task, rate=rate, postfix=postfix)
