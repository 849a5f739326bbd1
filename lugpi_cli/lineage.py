"""Which earlier stage's outputs a command builds on: images, features, teacher runs.

Stages leave workspace-local pointers in the store's ``meta`` namespace
(``latest/generate/<dataset>``, ``latest/embed/<dataset>/<encoder>``), so
``lugpi embed imdb`` finds the images ``lugpi generate imdb`` made, and
``lugpi train-teacher imdb --encoder clip`` the features ``lugpi embed imdb
--encoder clip`` made. An explicit fingerprint (``--generator FP``) picks an
older one from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lugpi_cli.data.samples import Sample
from lugpi_cli.errors import UserError
from lugpi_store import Store
from lugpi_store.maintenance import resolve_fingerprints

GENERATE_POINTER = "latest/generate/"
EMBED_POINTER = "latest/embed/"
DATASET_POINTER = "latest/dataset/"  # data/snapshot.py's LATEST_PREFIX lists them


def pointer_key(kind: str, dataset: str, label: str | None = None) -> str:
    """The one spelling of a lineage pointer: ``latest/<kind>/<dataset>[/<label>]`` (dataset lower-cased).

    ``kind`` is ``dataset`` (the snapshot a name stands for), ``generate`` (the images) or ``embed``
    (the features, per encoder ``label``)."""
    if kind not in ("dataset", "generate", "embed"):
        raise ValueError(f"unknown lineage pointer kind {kind!r}")
    return f"latest/{kind}/{dataset.lower()}" + (f"/{label}" if label is not None else "")


def read_pointer(store: Store | None, kind: str, dataset: str, label: str | None = None) -> dict[str, Any] | None:
    """A lineage pointer, or None (no store, or nothing recorded)."""
    if store is None or not store.exists:
        return None
    return store.get_meta(pointer_key(kind, dataset, label))


@dataclass(frozen=True)
class ImageSource:
    """The generator whose images a data set uses."""

    fingerprint: str
    seed: int
    config: dict[str, Any]
    model: str | None = None  # the model id or directory as given to `generate` (when known)

    def image_keys(self, samples: Sequence[Sample]) -> dict[str, bytes]:
        from lugpi_cli.generation.runner import image_keys

        return image_keys(samples, self.fingerprint, self.seed)


def image_source(store: Store, dataset: str, generator: str | None = None) -> ImageSource:
    """The latest generator run for ``dataset``, or the registered fingerprint ``generator``."""
    if generator is not None:
        if not store.exists:
            raise UserError(f"no feature store at {store.path}", "Run `lugpi generate` first.")
        (prefix,) = resolve_fingerprints(store, [generator])
        entry = store.fingerprints()[prefix]
        config = entry.get("config") or {}
        if config.get("stage") != "generate":
            raise UserError(f"fingerprint {generator} is not a generator (it is {config.get('stage', 'unknown')})",
                            "See `lugpi store info` for the image fingerprints.")
        return ImageSource(entry["fingerprint"], int(config.get("seed", 0)), config)
    pointer = read_pointer(store, "generate", dataset)
    if pointer is None:
        raise UserError(f"no images have been generated for {dataset!r} in this workspace",
                        f"Run `lugpi generate {dataset}` first (or pass --generator FP for another run's images).")
    return ImageSource(pointer["generator_fingerprint"], int(pointer.get("seed", 0)), pointer["generator_config"],
                       pointer.get("model"))


def record_embedding(store: Store, dataset: str, encoder_label: str, pointer: dict[str, Any]) -> None:
    store.put_meta(pointer_key("embed", dataset, encoder_label), pointer)


def feature_keys(pointer: dict[str, Any], samples: Sequence[Sample]) -> list[bytes]:
    """The feature record key of each sample, from an ``embed`` pointer (encoder + generator fingerprints)."""
    from lugpi_store import record_key

    images = ImageSource(pointer["generator_fingerprint"], int(pointer["generator_seed"]), {}).image_keys(samples)
    return [record_key(pointer["encoder_fingerprint"], images[s.id]) for s in samples]


def feature_source(store: Store, dataset: str, encoder_label: str) -> dict[str, Any]:
    """The latest ``embed`` of ``dataset`` with ``encoder_label`` (encoder + generator fingerprints)."""
    pointer = read_pointer(store, "embed", dataset, encoder_label)
    if pointer is None:
        raise UserError(f"no {encoder_label!r} features for {dataset!r} in this workspace",
                        f"Run `lugpi embed {dataset} --encoder {encoder_label}` first.")
    return pointer


def with_directory(config: dict[str, Any], model: str) -> dict[str, Any]:
    """``config`` plus, for a model read from a local directory, that directory's name (``directory``): what
    ``store info`` shows beside the content hash. Only for the registry's display — never part of a fingerprint,
    so the same model in another place still hits the same cache."""
    if config.get("model") != "local":
        return config
    return {**config, "directory": Path(model).expanduser().name}
