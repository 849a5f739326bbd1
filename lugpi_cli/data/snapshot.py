"""Data set snapshots in the store, so later stages need neither ``--data`` nor a re-parse.

The first stage that reads a data set (``generate``, ``embed``, ...) writes its
cleaned samples into the store's ``meta`` namespace under
``dataset/<fingerprint>`` (content-addressed: identical on every machine, so
``store merge`` unions snapshots without conflict) and points
``latest/dataset/<name>`` at it (workspace-local, never merged). Later stages
given only the name load that snapshot: ``lugpi generate imdb --data
~/aclImdb_v1.tar.gz`` then ``lugpi embed imdb`` just works.

``--limit N`` is applied after loading (stratified, deterministic; see
:func:`lugpi_cli.data.samples.cap`), so the full data set is snapshotted once
and every limit is a subset of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lugpi_cli.data import hf
from lugpi_cli.data.registry import BUILTIN_DATASETS, load_dataset
from lugpi_cli.data.samples import Dataset, Sample, cap
from lugpi_cli.data.tabular import FORMATS as TABLE_FORMATS
from lugpi_cli.errors import UserError
from lugpi_cli.lineage import pointer_key
from lugpi_store import Store

SNAPSHOT_PREFIX = "dataset/"
LATEST_PREFIX = "latest/dataset/"  # = lineage.pointer_key("dataset", NAME) without NAME


@dataclass(frozen=True)
class DatasetRequest:
    """How the user named a data set on the command line."""

    name: str
    data: Path | None = None
    text_col: str | None = None
    label_col: str | None = None
    split_col: str | None = None
    prompt_col: str | None = None
    id_col: str | None = None
    limit: int | None = None
    data_config: str | None = None  # Hugging Face Hub data sets: the config (subset) name
    data_revision: str | None = None  # ... and the Hub revision (branch, tag or commit)

    @property
    def columns(self) -> dict[str, str | None]:
        return {"text_col": self.text_col, "label_col": self.label_col, "split_col": self.split_col,
                "prompt_col": self.prompt_col, "id_col": self.id_col}

    @property
    def reads_source(self) -> bool:
        """Whether the source must be read rather than the workspace's snapshot of the name.

        Yes when the request names files or options (``--data``, a table file or a directory, column or Hub
        options); a built-in name, a Hugging Face Hub id or a name an earlier ``NAME --data ...`` gave is
        read from its snapshot when there is one.
        """
        if (self.data is not None or any(self.columns.values()) or self.data_config is not None
                or self.data_revision is not None):
            return True
        return self.name.lower() not in BUILTIN_DATASETS and Path(self.name).expanduser().exists()

    @property
    def hub(self) -> dict[str, str | None]:
        return {"data_config": self.data_config, "data_revision": self.data_revision}


def save_snapshot(store: Store, ds: Dataset) -> str:
    """Write ``ds`` into the store (once) and make it the latest for its name."""
    fp = ds.fingerprint()
    record = {  # content only: the same bytes on every machine, so stores merge without conflict
        "name": ds.name,
        "label_names": list(ds.label_names),
        "skipped": dict(ds.skipped),
        "fingerprint": fp,
        "samples": [[s.id, s.split, s.label, s.text, s.text_pair, s.prompt] for split in ds.splits.values() for s in split],
    }
    if store.get_meta(SNAPSHOT_PREFIX + fp) is None:  # (deferred: written with the command's first record)
        store.put_meta(SNAPSHOT_PREFIX + fp, record, overwrite=False, defer=True)
    pointer = {"fingerprint": fp, "source": ds.source, **({"origin": ds.origin} if ds.origin else {})}
    key = pointer_key("dataset", ds.name)
    if store.get_meta(key) != pointer:  # unchanged: no write (multi-node readers)
        store.put_meta(key, pointer, defer=True)
    return fp


def load_snapshot(store: Store, fingerprint: str) -> Dataset | None:
    record = store.get_meta(SNAPSHOT_PREFIX + fingerprint)
    if record is None:
        return None
    splits: dict[str, list[Sample]] = {"train": [], "validation": [], "test": []}
    for sid, split, label, text, text_pair, prompt in record["samples"]:
        splits.setdefault(split, []).append(Sample(sid, text, prompt, int(label), split, text_pair))
    ds = Dataset(record["name"], list(record["label_names"]), splits, f"workspace snapshot {fingerprint[:16]}",
                 dict(record["skipped"]))
    ds._fingerprint = record["fingerprint"]
    return ds


def latest_snapshot(store: Store, name: str) -> Dataset | None:
    pointer = store.get_meta(pointer_key("dataset", name))
    ds = None if pointer is None else load_snapshot(store, pointer["fingerprint"])
    if ds is not None and pointer.get("source"):
        ds.source = pointer["source"]
    if ds is not None and pointer.get("origin"):
        ds.origin = dict(pointer["origin"])
    return ds


def limit_dataset(ds: Dataset, limit: int | None) -> Dataset:
    """At most ``limit`` samples per split, stratified by label (a new, smaller data set)."""
    if limit is None:
        return ds
    if limit < 1:
        raise UserError(f"--limit must be a positive number of samples per split, got {limit}")
    splits = {name: cap(samples, limit) for name, samples in ds.splits.items()}
    return Dataset(ds.name, list(ds.label_names), splits, ds.source, dict(ds.skipped), dict(ds.origin))


def resolve_dataset(request: DatasetRequest, store: Store | None = None, *, persist: bool = True) -> Dataset:
    """The data set a command asked for, from its files or from the workspace's snapshot.

    Files are read when the request names them (``--data``, a table file, column
    options) or when no snapshot exists; with ``persist`` the result is
    snapshotted into ``store``.
    """
    ds = None
    if store is not None and store.exists and not request.reads_source:
        ds = latest_snapshot(store, request.name)
    if ds is None:
        _require_source(request, store)
        ds = load_dataset(request.name, data=request.data, **request.columns, **request.hub)
        if persist and store is not None:
            store.create = True
            save_snapshot(store, ds)
    return limit_dataset(ds, request.limit)



def snapshot_names(store: Store | None) -> list[str]:
    """The data set names the workspace's ``latest/dataset/`` pointers know (lower-cased)."""
    if store is None or not store.exists:
        return []
    return [k.decode()[len(LATEST_PREFIX):] for k in store.keys("meta", LATEST_PREFIX)]


def _require_source(request: DatasetRequest, store: Store | None) -> None:
    """A bare name with no snapshot behind it (``lugpi embed reviews`` before any stage read
    ``reviews.csv``): an error saying how a name gets its snapshot, instead of "not a table file"."""
    name = request.name
    if request.reads_source or name.lower() in BUILTIN_DATASETS or hf.is_hub_id(name):
        return
    where = (f"the workspace store {store.path} holds no snapshot of that name" if store is not None and store.exists
             else "this workspace has no store yet")
    files = [name + suffix for suffix in TABLE_FORMATS if Path(name + suffix).expanduser().is_file()]
    file = files[0] if files else f"{name}.csv"  # the file beside the user, if there is one
    known = snapshot_names(store)
    raise UserError(
        f"unknown data set {name!r}: not a built-in name, and {where}",
        f"Give its file once to a stage that reads it, e.g. `lugpi generate {file} --text-col TEXT --label-col "
        f"LABEL` (or embed / train-teacher; `data show` stores nothing): the workspace then keeps a snapshot "
        f"and later stages accept `{name}` alone. "
        + (f"Names this workspace knows: {', '.join(known)}." if known else
           f"Built-in data sets: {', '.join(sorted(BUILTIN_DATASETS))}."))

def describe_request(request: DatasetRequest) -> dict[str, Any]:
    """The request as JSON-able config (for run configs and logs)."""
    out = {"name": request.name, "data": str(request.data) if request.data else None, "limit": request.limit}
    out.update({k: v for k, v in {**request.columns, **request.hub}.items() if v is not None})
    return out
