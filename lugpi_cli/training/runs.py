"""Run directories: everything a training run produced, found again by its config hash.

A run directory (``WORKSPACE/runs/<name>/``) holds::

    config.json         resolved config, its fingerprint, seed, library versions
    history.jsonl       one line per epoch (losses, validation metrics, time)
    metrics.json        final metrics per split
    predictions/        <split>.csv: sample_id, label, predicted, prob_0..prob_{k-1}
    model/              the model (Hugging Face save_pretrained format for text models)
    checkpoint/         while training: what resuming needs (model, optimizer, scheduler,
                        epoch, best metric, RNG states; after the last epoch the model and
                        counters only); removed once the run is DONE
    DONE                written last; resume trusts this marker, not partial files

The default name is ``<kind>-<dataset>-<first 12 hex of the config hash>``: the
same command twice finds the same directory and does the work once. A lock
file keeps two processes from training the same run at once.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import glob
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lugpi_cli.errors import UserError
from lugpi_cli.runtime import library_versions
from lugpi_store import fingerprint

BEST_WEIGHTS = "best.safetensors"  # the best validation weights so far, in a run and in its checkpoint


def checked_run_name(name: str) -> str:
    """A ``--run NAME`` given by the user: one directory name under ``runs/``."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name.startswith("."):
        raise UserError(f"--run {name!r} is not a run name",
                        "Use one directory name of letters, digits, '-', '_' or '.', e.g. --run lugpi-a3-t8.")
    return name


def run_name(kind: str, dataset: str, config: dict[str, Any]) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset.lower())
    return f"{kind}-{safe}-{fingerprint(config)[:12]}"


@dataclass(frozen=True)
class Run:
    dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def config_path(self) -> Path:
        return self.dir / "config.json"

    @property
    def history_path(self) -> Path:
        return self.dir / "history.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def predictions_dir(self) -> Path:
        return self.dir / "predictions"

    @property
    def model_dir(self) -> Path:
        return self.dir / "model"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoint"

    @property
    def done_path(self) -> Path:
        return self.dir / "DONE"

    def is_done(self) -> bool:
        return self.done_path.exists()

    def predictions_path(self, split: str) -> Path:
        return self.predictions_dir / f"{split}.csv"

    def config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError as exc:
            raise UserError(f"{self.dir} is not a lugpi run (no config.json)",
                            "Pass a run directory under WORKSPACE/runs/ or a run name.") from exc

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_path.read_text()) if self.metrics_path.exists() else {}

    def history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        return [json.loads(line) for line in self.history_path.read_text().splitlines() if line.strip()]

    # -- writing -----------------------------------------------------------
    def start(self, kind: str, config: dict[str, Any], *, extra: dict[str, Any] | None = None) -> None:
        """Create the directory and its config.json (kept as is when resuming)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.config_path.exists():
            return
        document = {
            "name": self.name, "kind": kind, "fingerprint": fingerprint(config), "config": config,
            "versions": library_versions(), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        from lugpi_cli.console import invocation

        if invocation() is not None:  # the exact command line (and recipe) that made the run
            document["invocation"] = invocation()
        _atomic_write(self.config_path, json.dumps(document, indent=2, sort_keys=True) + "\n")

    def append_history(self, record: dict[str, Any]) -> None:
        with open(self.history_path, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_history(self, epochs: int) -> None:
        """Keep the first ``epochs`` records (a resumed run redoes the rest)."""
        kept = [r for r in self.history() if r.get("epoch", 0) <= epochs]
        _atomic_write(self.history_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        _atomic_write(self.metrics_path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")

    def mark_done(self) -> None:
        """Write DONE last, then drop what only resuming needed (optimizer state, best-so-far weights)."""
        _atomic_write(self.done_path, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds") + "\n")
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        (self.dir / BEST_WEIGHTS).unlink(missing_ok=True)

    def reset(self) -> None:
        """Delete everything (``--force``)."""
        if self.dir.exists():
            shutil.rmtree(self.dir)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive while training; a second process gets a clear error instead of a race."""
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise UserError(f"run {self.name} is being trained by another process",
                            "Wait for it to finish (its result will then be reused) or pass another --run name.") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def in_progress(self) -> bool:
        """Whether another process holds the run's lock right now."""
        path = self.dir / ".lock"
        if not path.exists():
            return False
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def find_run(runs_dir: Path, name_or_path: str | Path) -> Run:
    """A run by directory path or by name under ``runs_dir``."""
    path = Path(name_or_path).expanduser()
    for candidate in (path, runs_dir / str(name_or_path)):
        if (candidate / "config.json").exists():
            return Run(candidate)
    raise UserError(f"no run {str(name_or_path)!r}",
                    f"Give a run directory or a run name under {runs_dir} (see `ls {runs_dir}`).")



GLOB_CHARS = "*?["


def find_runs(runs_dir: Path, names: list[str | Path]) -> list[Run]:
    """Runs by name, path or glob, in the order given (each run once).

    A glob (``runs/teacher-*``, ``'student-imdb-*'``: one the shell did not expand
    because it matched nothing where the user stands, or one in quotes) matches
    run directories relative to the current directory, to the workspace (the
    parent of ``runs_dir``) and to ``runs_dir`` itself, in that order; a pattern
    matching no run anywhere is an error naming it.
    """
    found: dict[Path, Run] = {}
    for name in names:
        text = str(name)
        if not any(c in text for c in GLOB_CHARS):
            run = _find_literal(runs_dir, text)
            found.setdefault(run.dir.resolve(), run)
            continue
        matched = _glob_runs(runs_dir, text)
        if not matched:
            raise UserError(f"no run matches {text!r}",
                            f"The pattern is matched against run directories in the current directory, in "
                            f"{runs_dir.parent} and in {runs_dir} (see `ls {runs_dir}`).")
        for run in matched:
            found.setdefault(run.dir.resolve(), run)
    return list(found.values())


def _find_literal(runs_dir: Path, text: str) -> Run:
    """:func:`find_run`, plus a path relative to the workspace (``runs/NAME`` typed outside it)."""
    path = Path(text).expanduser()
    in_workspace = runs_dir.parent / path
    if not (path / "config.json").exists() and not path.is_absolute() and (in_workspace / "config.json").exists():
        return Run(in_workspace)
    return find_run(runs_dir, text)


def _glob_runs(runs_dir: Path, pattern: str) -> list[Run]:
    expanded = os.path.expanduser(pattern)
    bases = [Path(".")] if os.path.isabs(expanded) else [Path("."), runs_dir.parent, runs_dir]
    for base in bases:
        hits = sorted(glob.glob(str(base / expanded)))  # an absolute pattern ignores the base
        runs = [Run(Path(hit)) for hit in hits if (Path(hit) / "config.json").is_file()]
        if runs:
            return runs
    return []

def completed_runs(runs_dir: Path, kind: str | None = None) -> list[Run]:
    """Finished runs, oldest first (by the time DONE was written)."""
    if not runs_dir.is_dir():
        return []
    runs = [Run(d) for d in runs_dir.iterdir() if (d / "DONE").exists() and (d / "config.json").exists()]
    if kind is not None:
        runs = [r for r in runs if r.config().get("kind") == kind]
    return sorted(runs, key=lambda r: (r.done_path.stat().st_mtime, r.name))


def multimodal_teachers(runs_dir: Path) -> list[Run]:
    """Finished text + image teacher runs, oldest first."""
    return [r for r in completed_runs(runs_dir, "teacher") if r.config().get("modality") == "both"]
