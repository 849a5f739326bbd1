"""A workspace: the feature store, the run directories, the lineage pointers and run lookup.

Every stage takes a :class:`Workspace` explicitly (the CLI builds one from ``--workspace``; a recipe, an
ablation cell or a Python caller builds their own), so nothing reads a module global. It owns every
``latest/*`` pointer read and write (spelled once, in :mod:`lugpi_cli.lineage`) and every lookup of a
run by name, so a library call records the same lineage a command does::

    from lugpi_cli.workspace import Workspace
    from lugpi_cli.stages import embed
    ws = Workspace("lugpi-workspace")
    embed.run(ws, embed.Params.from_mapping({"encoder": "clip"}, dataset={"name": "imdb"}))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from lugpi_cli.errors import UserError

if TYPE_CHECKING:
    from lugpi_cli.lineage import ImageSource
    from lugpi_cli.training.runs import Run
    from lugpi_store import Store


@dataclass
class Workspace:
    root: Path
    opened: list = field(default_factory=list, repr=False)  # stores written by the current work (flushed on success)
    planned_datasets: dict = field(default_factory=dict, repr=False)  # what plans read, once (stages/data.py)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # -- places ---------------------------------------------------------------------------------

    @property
    def store_path(self) -> Path:
        return self.root / "store"

    @property
    def runs_path(self) -> Path:
        return self.root / "runs"

    @property
    def ablations_path(self) -> Path:
        return self.root / "ablations"

    def check_usable(self) -> None:
        """Refuse, for every command, a workspace that is (or lies inside) something other than a directory."""
        for place in (self.root, *self.root.parents):
            if place.exists() or place.is_symlink():
                if not place.is_dir():
                    what = "a file" if place.is_file() else "not a directory"
                    where = "is " + what if place == self.root else f"lies inside {place}, which is {what}"
                    raise UserError(f"the workspace {self.root} {where}",
                                    "Pass --workspace (or LUGPI_WORKSPACE) a directory, or a path where one can be "
                                    "created; nothing was changed.")
                return

    # -- the store ------------------------------------------------------------------------------

    def open_store(self, *, create: bool = False) -> Store:
        """The feature store (created on first write when ``create``, which also means the work will write:
        a read-only store is refused before any work). Meta records a writing command makes wait for its
        first record or for :meth:`flush` (see ``Store.defer_meta``)."""
        from lugpi_store import Store

        if not create:
            return Store(self.store_path)
        store = Store(self.store_path, create=True, defer_meta=True).require_writable()
        self.opened.append(store)
        return store

    def open_training_store(self) -> Store:
        """The store a training stage uses: writable, except on the ranks other than global rank 0 of a
        multi-node launch, which read it without LMDB's lock table (:func:`lugpi_cli.multinode.open_training_store`)."""
        from lugpi_cli.multinode import open_training_store

        return open_training_store(self)

    def existing_store(self) -> Store | None:
        """The store if it exists (plans and read-only lookups), else None."""
        store = self.open_store()
        return store if store.exists else None

    def flush(self) -> None:
        """The work succeeded: commit what the stores it opened still hold back."""
        for store in self.opened:
            store.flush()
        self.opened.clear()

    # -- lineage pointers (latest/*) ------------------------------------------------------------

    def pointer(self, kind: str, dataset: str, label: str | None = None, *, store: Store | None = None
                ) -> dict[str, Any] | None:
        """The latest ``dataset`` snapshot, ``generate`` images or ``embed`` features of a data set."""
        from lugpi_cli import lineage

        return lineage.read_pointer(store if store is not None else self.existing_store(), kind, dataset, label)

    def image_source(self, dataset: str, generator: str | None = None, *, store: Store | None = None
                     ) -> ImageSource:
        """The images ``dataset`` uses: its latest ``generate``, or the registered fingerprint ``generator``."""
        from lugpi_cli import lineage

        return lineage.image_source(store if store is not None else self.open_store(), dataset, generator)

    def planned_image_source(self, dataset: str) -> dict[str, Any]:
        """For a plan: the latest generator's fingerprint, seed and model, or ``fingerprint`` None."""
        pointer = self.pointer("generate", dataset)
        if pointer is None:
            return {"fingerprint": None, "seed": 0, "model": None}
        return {"fingerprint": pointer["generator_fingerprint"], "seed": int(pointer.get("seed", 0)),
                "model": pointer.get("model")}

    def feature_source(self, dataset: str, encoder_label: str, *, store: Store | None = None) -> dict[str, Any]:
        """The latest ``embed`` of ``dataset`` with ``encoder_label`` (raises naming the command that makes it)."""
        from lugpi_cli import lineage

        return lineage.feature_source(store if store is not None else self.open_store(), dataset, encoder_label)

    def record_features(self, store: Store, dataset: str, encoder_label: str, pointer: dict[str, Any]) -> None:
        from lugpi_cli import lineage

        lineage.record_embedding(store, dataset, encoder_label, pointer)

    # -- runs -----------------------------------------------------------------------------------

    def run(self, name: str) -> Run:
        from lugpi_cli.training.runs import Run

        return Run(self.runs_path / name)

    def find_run(self, name_or_path: str | Path) -> Run:
        """A run by directory path or by name under the workspace's ``runs/``."""
        from lugpi_cli.training.runs import find_run

        return find_run(self.runs_path, name_or_path)

    def find_runs(self, names) -> list[Run]:
        """Runs by name, path or glob (relative to the current directory, the workspace or its ``runs/``)."""
        from lugpi_cli.training.runs import find_runs

        return find_runs(self.runs_path, list(names))

    def completed_runs(self, kind: str | None = None) -> list[Run]:
        from lugpi_cli.training.runs import completed_runs

        return completed_runs(self.runs_path, kind)

    def teacher_run(self, name: str | None, fields: Iterable[str] = (), *, required: bool = True) -> Run | None:
        """``--teacher NAME`` (checked to be a teacher run), else the default teacher for a method reading
        ``fields`` (None when not ``required`` and there is none)."""
        if name:
            run = self.find_run(name)
            if run.config().get("kind") != "teacher":
                raise UserError(f"{run.name} is not a teacher run", "Pass a run made by `lugpi train-teacher`.")
            return run
        from lugpi_cli.training.teachers import default_teacher

        if not required and not self.completed_runs("teacher"):
            return None
        return default_teacher(self.runs_path, fields)
