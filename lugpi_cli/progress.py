"""Progress bars that stay readable at any width, and what an interrupted command kept.

One bar line always shows the description, the bar, the count, the rate and
the ETA (``epoch 2 ━━━━━━━━━━ 1,024/2,048  73.1 samples/s  ETA 0:00:14``); the
bar itself takes whatever width is left. Loss parts and other details go on a
second, indented line that is cut (with an ellipsis) before anything on the
first line is, so an 80-column terminal never loses the count or the ETA.

While a bar runs it is the command's *interrupt note*: on Ctrl-C the CLI prints
one line saying what was kept (``Interrupted: 2,179 of 4,975 images stored; run
the same command to continue``) and, under ``--json``, one object with the same
facts (:func:`lugpi_cli.console.interrupt_report`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Callable, Iterable

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Column
from rich.text import Text

from lugpi_cli.console import running_bars

RESUME = "run the same command to continue"


def format_eta(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` while unknown)."""
    if seconds is None:
        return "-:--:--"
    return str(timedelta(seconds=int(seconds)))


class StatsColumn(ProgressColumn):
    """``count/total  rate unit/s  ETA h:mm:ss`` as one cell that is never wrapped or shrunk."""

    def __init__(self, unit: str, rate_unit: str, rate_scale: float, eta_label: str):
        super().__init__(table_column=Column(no_wrap=True))
        self.unit, self.rate_unit, self.rate_scale, self.eta_label = unit, rate_unit, rate_scale, eta_label

    def render(self, task: Task) -> Text:
        total = int(task.total or 0)
        text = f"{int(task.completed):,}/{total:,}"
        speed = task.speed
        if task.finished and task.finished_time:
            speed = task.completed / task.finished_time  # the whole task's mean rate
        if speed:
            text += f"  {speed * self.rate_scale:,.2f} {self.rate_unit}/s"
        if task.finished:
            text += f"  done in {format_eta(task.finished_time)}"
        else:
            text += f"  {self.eta_label} {format_eta(task.time_remaining)}"
        return Text(text, style="progress.remaining")


class TwoLineProgress(Progress):
    """rich's Progress with each running task's ``postfix`` field on a line of its own, cut to the width."""

    def get_renderables(self) -> Iterable[RenderableType]:
        for task in self.tasks:
            if not task.visible:
                continue
            yield self.make_tasks_table([task])
            postfix = str(task.fields.get("postfix") or "")
            if postfix and not task.finished:
                yield Text("  " + postfix, no_wrap=True, overflow="ellipsis", style="dim")


class ProgressBar:
    """A progress bar on stderr with count, rate and ETA (silent with --quiet).

    ``unit`` names what is counted; the rate is shown in ``rate_unit`` per second,
    ``rate_scale`` of them per counted item (a training bar counts batches and shows
    samples/s). ``kept`` phrases what the finished items mean when interrupted
    (``"images stored"``).

    >>> with ProgressBar("generating", unit="img") as bar:   # doctest: +SKIP
    ...     bar.start(total)
    ...     bar.advance(8)
    """

    def __init__(self, description: str, *, unit: str = "it", rate_unit: str | None = None, rate_scale: float = 1.0,
                 eta_label: str = "ETA", kept: str | None = None, console: Console | None = None,
                 quiet: bool = False):
        self.description = description
        self.unit = unit
        self.kept = kept or f"{unit} done"
        self.note: Callable[["ProgressBar"], dict[str, Any]] | None = None  # a custom interrupt note
        self._progress = TwoLineProgress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                          max_width=24)),
            BarColumn(bar_width=None),
            StatsColumn(unit, rate_unit or unit, rate_scale, eta_label),
            console=console or Console(stderr=True, quiet=quiet), transient=False,
        )
        self._task = None
        self.completed = 0  # items done over every task of this bar
        self.total = 0

    def __enter__(self) -> "ProgressBar":
        running_bars.append(self)
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._progress.__exit__(exc_type, *exc)
        if exc_type is None or not issubclass(exc_type, KeyboardInterrupt):
            if self in running_bars:
                running_bars.remove(self)

    def start(self, total: int, description: str | None = None) -> None:
        """Begin a task of ``total`` items (a new line per call: one per epoch)."""
        if total > 0:  # nothing to do: no empty bar
            self.total += total
            self._task = self._progress.add_task(description or self.description, total=total, postfix="")

    def log(self, message: str) -> None:
        """A line above the bars (suppressed by --quiet)."""
        self._progress.console.print(message, markup=False, highlight=False)

    def advance(self, n: int = 1, postfix: str = "") -> None:
        if self._task is None:
            return
        self.completed += n
        self._progress.update(self._task, advance=n, postfix=postfix)

    def interrupt_note(self) -> dict[str, Any]:
        """What was kept: ``message`` (one line) and the facts for ``--json``."""
        if self.note is not None:
            return self.note(self)
        if not self.total:
            return generic_note()
        return {"message": f"{self.completed:,} of {self.total:,} {self.kept}; {RESUME}",
                "kept": self.completed, "total": self.total, "unit": self.unit}


def generic_note() -> dict[str, Any]:
    return {"message": f"finished batches are kept; {RESUME}"}


class TrainingProgress:
    """Epoch bars (count, samples/s, ETA; loss parts on a second line) and log lines, on stderr.

    ``with TrainingProgress(cfg) as hooks:`` gives the stage its :class:`~lugpi_cli.stages.runs.Hooks`.
    Interrupted, it says how many epochs the run's checkpoint holds: the fit loop logs
    ``epoch N: ...`` only after epoch N's checkpoint is written.
    """

    def __init__(self, cfg: Any = None, *, quiet: bool | None = None) -> None:
        if quiet is None:  # the CLI's --quiet
            from lugpi_cli.console import state

            quiet = state().quiet
        self.epochs = getattr(cfg, "epochs", None)
        self.bar = ProgressBar("training", unit="batch", rate_unit="samples",
                               rate_scale=float(getattr(cfg, "batch_size", 1) or 1), quiet=quiet)
        self.bar.note = self._note
        self.saved = 0  # epochs in the checkpoint
        self.epoch = 0  # the epoch in progress

    def __enter__(self) -> Any:
        from lugpi_cli.stages.runs import Hooks

        self.bar.__enter__()
        return Hooks(log=self._log, on_epoch_start=self._epoch_start,
                     on_step=lambda n, parts: self.bar.advance(n, loss_postfix(parts)))

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def _epoch_start(self, epoch: int, batches: int) -> None:
        self.epoch, self.saved = epoch, max(self.saved, epoch - 1)
        self.bar.start(batches, f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else ""))

    def _log(self, message: str) -> None:
        match = re.match(r"(?:epoch|resuming \S+ after epoch) (\d+)\b", message)
        if match:
            self.saved = max(self.saved, int(match.group(1)))
        self.bar.log(message)

    def _note(self, _bar: Any) -> dict[str, Any]:
        of = f" of {self.epochs}" if self.epochs else ""
        if self.epoch == 0:
            message = f"no epoch had started; {RESUME}"
        elif self.saved >= self.epoch:
            message = f"{self.saved}{of} epoch(s) trained and checkpointed; {RESUME}"
        else:
            message = (f"in epoch {self.epoch}{of}; {self.saved} finished epoch(s) are kept in the run's "
                       f"checkpoint; run the same command to resume from epoch {self.saved + 1}")
        return {"message": message, "epochs_kept": self.saved, "epoch": self.epoch, "epochs": self.epochs}


def loss_postfix(parts: dict[str, float]) -> str:
    """A training bar's second line: the loss parts (``total`` only beside two or more parts)."""
    shown = {k: v for k, v in parts.items() if k != "total" or len(parts) > 2}
    return "  ".join(f"{k} {v:.3f}" for k, v in shown.items())


__all__ = ["ProgressBar", "RESUME", "StatsColumn", "TrainingProgress", "TwoLineProgress", "format_eta",
           "generic_note", "loss_postfix"]
