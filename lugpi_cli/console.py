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

    _space: Any = field(default=None, repr=False)

    @property
    def space(self):
        """The :class:`~lugpi_cli.workspace.Workspace` the stages take (store, runs, lineage, run lookup)."""
        if self._space is None or self._space.root != Path(self.workspace):
            from lugpi_cli.workspace import Workspace

            self._space = Workspace(self.workspace)
        return self._space

    @property
    def store_path(self) -> Path:
        return self.space.store_path

    @property
    def runs_path(self) -> Path:
        return self.space.runs_path

    @property
    def opened(self) -> list:
        """The stores this command writes (flushed when it succeeds)."""
        return self.space.opened

    def open_store(self, *, create: bool = False):
        """The workspace's feature store (see :meth:`lugpi_cli.workspace.Workspace.open_store`)."""
        return self.space.open_store(create=create)

    def flush_stores(self) -> None:
        """The command succeeded: commit what its stores still hold back (see ``Store.defer_meta``)."""
        self.space.flush()


# The state of the current invocation. The CLI sets it in the app callback; the
# error handler reads ``verbose`` from it after the click context is gone.
_state = State()


def state() -> State:
    return _state


def set_state(new: State) -> State:
    global _state
    _state = new
    return new


# The command lines being run, outermost first: ["run", "x.toml"], then a recipe step's own command line.
_invocations: list[list[str]] = []


def push_invocation(args: list[str]) -> None:
    _invocations.append(list(args))


def pop_invocation() -> None:
    if _invocations:
        _invocations.pop()


def invocation() -> dict[str, Any] | None:
    """The command line being run (``lugpi ...``), what ran it (a recipe), and the working directory.

    Recorded in every run's ``config.json`` and shown in its model card; None outside the CLI.
    """
    if not _invocations:
        return None
    import shlex

    out: dict[str, Any] = {"command": shlex.join(["lugpi", *_invocations[-1]]), "cwd": os.getcwd()}
    if len(_invocations) > 1:
        out["within"] = shlex.join(["lugpi", *_invocations[0]])
    return out


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


def ProgressBar(description: str, *, unit: str = "it", **options: Any):
    """A progress bar on stderr (count, rate, ETA; details on a second line); silent with --quiet.
    See :class:`lugpi_cli.progress.ProgressBar` for the options."""
    from lugpi_cli.progress import ProgressBar as _Bar

    return _Bar(description, unit=unit, quiet=_state.quiet, **options)


running_bars: list[Any] = []  # progress bars entered and not left normally, innermost last


def interrupt_report() -> dict[str, Any]:
    """After Ctrl-C: what the innermost running bar kept (``message`` and facts), else a generic note."""
    if running_bars:
        note = running_bars[-1].interrupt_note()
    else:
        from lugpi_cli.progress import generic_note

        note = generic_note()
    running_bars.clear()
    return {"interrupted": True, **note}
