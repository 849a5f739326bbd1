"""Data sets from the Hugging Face ``datasets`` library: a Hub id or a ``save_to_disk`` directory.

Sources
    A directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``
    (read with ``datasets.load_from_disk``; named after the directory), or a
    Hub id ``owner/name`` (``datasets.load_dataset(id, config, revision=...)``;
    named after the id, plus ``:config`` when one is given). Under
    ``HF_HUB_OFFLINE=1`` a Hub id is read from the local ``datasets`` cache only.

Columns
    ``text_col`` (default ``text``) and ``label_col`` (default ``label``) as for
    table files, and the optional ``split_col``, ``prompt_col`` and ``id_col``.

Splits
    A ``DatasetDict``'s own splits are used as they are, through the table
    files' split names (``train``, ``validation``/``valid``/``val``/``dev``,
    ``test``); a split of another name (IMDB's ``unsupervised``) is left out
    and counted in ``skipped``. A single ``Dataset`` is all train. With
    ``split_col`` every row's split comes from that column instead. Splits the
    source lacks are carved from train exactly as for table files.

Labels
    A ``ClassLabel`` column keeps its own names and integer ids (``-1``, "no
    label", is skipped and counted); any other column is read like a table
    file's label column (sorted distinct values of train).

Identity
    ``sample id = H(name, the source split's name, row number in it)`` — or the
    ``id_col`` value instead of the row number. The data set fingerprint is, as
    for every data set, the hash of the cleaned content (so one content hits
    one cache however it was obtained); ``origin`` records where it came from:
    the Hub id, config and revision, and ``datasets``' own fingerprint of
    every split.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from lugpi_cli.data.clean import normalize_whitespace
from lugpi_cli.data.samples import Dataset, Sample, assemble, sample_id
from lugpi_cli.data.tabular import SPLIT_SYNONYMS, label_key, sort_labels
from lugpi_cli.errors import UserError

DEFAULT_TEXT_COL = "text"
DEFAULT_LABEL_COL = "label"
INSTALL_HINT = "pip install 'lugpi[datasets]' (or pip install datasets)"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FLAGS = {"text_col": "--text-col", "label_col": "--label-col", "split_col": "--split-col",
          "prompt_col": "--prompt-col", "id_col": "--id-col"}


def is_saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or
                              ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()))


def is_hub_id(name: str) -> bool:
    """``owner/name`` that is not a local path (a Hugging Face Hub dataset id)."""
    return bool(_HUB_ID.match(name)) and not Path(name).expanduser().exists()


def _datasets():
    try:
        import datasets
    except ImportError as exc:
        raise UserError("reading a Hugging Face data set needs the `datasets` library", INSTALL_HINT) from exc
    from lugpi_cli import console

    if console.state().verbose < 2:
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    return datasets


def read_disk(path: Path) -> dict[str, Any]:
    """``{split name: datasets.Dataset}`` of a save_to_disk directory (a lone Dataset is ``train``)."""
    datasets = _datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises FileNotFoundError, ValueError, arrow errors
        raise UserError(f"cannot read the saved data set {path}: {_first_line(exc)}",
                        "Give a directory written by Dataset.save_to_disk() or DatasetDict.save_to_disk().") from exc
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def read_hub(hub_id: str, config: str | None, revision: str | None) -> dict[str, Any]:
    """``{split name: datasets.Dataset}`` of a Hub data set (from the cache when offline)."""
    from lugpi_cli.hub import offline

    datasets = _datasets()
    try:
        loaded = datasets.load_dataset(hub_id, config, revision=revision)
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as exc:
        where = f"{hub_id!r}" + (f" (config {config!r})" if config else "") + (f" at revision {revision!r}"
                                                                               if revision else "")
        if isinstance(exc, ValueError) and "config" in str(exc).lower():
            raise UserError(f"Hugging Face data set {where}: {_first_line(exc)}",
                            "Pass one of its configs with --data-config.") from exc
        mode = ("HF_HUB_OFFLINE is set and it is not in the local datasets cache" if offline() else
                "not found on the Hugging Face Hub, or the Hub could not be reached and it is not cached")
        raise UserError(
            f"cannot load the Hugging Face data set {where}: {mode} (and there is no local directory of that name)",
            "Check the id (owner/name, as on huggingface.co/datasets). Offline: on a connected machine, "
            "load it and save_to_disk() it to a directory, copy that here and pass its path."
            + ("" if offline() else " Set HF_HUB_OFFLINE=1 to fail at once when offline."),
        ) from exc
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _columns(where: str, parts: dict[str, Any], chosen: dict[str, str | None]) -> dict[str, str | None]:
    """The chosen columns with the defaults filled in, each checked to exist in every split."""
    names = list(next(iter(parts.values())).column_names)
    chosen = dict(chosen)
    for option, default in (("text_col", DEFAULT_TEXT_COL), ("label_col", DEFAULT_LABEL_COL)):
        if not chosen[option]:
            if default not in names:
                raise UserError(f"{where}: which column holds the {option[:-4]}? none given and no column "
                                f"{default!r}", f"pass {_FLAGS[option]} COLUMN; the columns are: "
                                f"{', '.join(map(repr, names))}")
            chosen[option] = default
    for split, part in parts.items():
        for option, column in chosen.items():
            if column and column not in part.column_names:
                raise UserError(f"{where}: split {split!r} has no column {column!r} ({_FLAGS[option]})",
                                f"the columns are: {', '.join(map(repr, part.column_names))}")
    return chosen


def _class_names(parts: dict[str, Any], label_col: str) -> list[str] | None:
    """The ClassLabel names of the label column (None when it is not a ClassLabel)."""
    from datasets import ClassLabel

    feature = next(iter(parts.values())).features[label_col]
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _text(where: str, column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        raise UserError(f"{where}: column {column!r} holds {type(value).__name__}, not text: {value!r:.80}")
    return normalize_whitespace(str(value))


def _rows(name: str, parts: dict[str, Any], cols: dict[str, str | None], class_names: list[str] | None,
          skipped: Counter) -> list[tuple[str, str, Any, str, str, Any]]:
    """``(where, split, id, text, prompt, label)`` of every kept row; unused splits and empty rows counted."""
    kept, seen_ids, used = [], {}, {}
    for source_split, part in parts.items():
        if not cols["split_col"]:
            split = SPLIT_SYNONYMS.get(source_split.strip().lower())
            if split is None:
                skipped[f"split {source_split}"] += len(part)
                continue
            if split in used:
                raise UserError(f"{name}: splits {used[split]!r} and {source_split!r} are both {split}",
                                "Keep one of them (e.g. DatasetDict.pop) and save the data set again.")
            used[split] = source_split
        wanted = list(dict.fromkeys(c for c in cols.values() if c))
        columns = part.with_format(None).select_columns(wanted).to_dict()
        for row in range(len(part)):
            where = f"{name}, split {source_split!r}, row {row}"
            values = {c: columns[c][row] for c in wanted}
            text = _text(where, cols["text_col"], values[cols["text_col"]])
            prompt = _text(where, cols["prompt_col"], values[cols["prompt_col"]]) if cols["prompt_col"] else text
            label = values[cols["label_col"]]
            if not text or not prompt:
                skipped["empty text" if not text else "empty prompt"] += 1
                continue
            if class_names is not None and label == -1:
                skipped["no label"] += 1
                continue
            if class_names is None:
                label = label_key(label)
                if label is None:
                    raise UserError(f"{where}: empty label in column {cols['label_col']!r}",
                                    "fill in the label, or remove the row")
            row_split = split if not cols["split_col"] else _split(where, cols["split_col"], values[cols["split_col"]])
            identity = _identity(where, cols["id_col"], values, row, seen_ids)
            kept.append((where, row_split, [source_split, identity], text, prompt, label))
    return kept


def _split(where: str, column: str, value: Any) -> str:
    key = "" if value is None else str(value).strip().lower()
    if key not in SPLIT_SYNONYMS:
        raise UserError(f"{where}: split {value!r} in column {column!r} is not a split name",
                        "use train, validation (or valid, val, dev) or test")
    return SPLIT_SYNONYMS[key]


def _identity(where: str, id_col: str | None, values: dict[str, Any], row: int, seen: dict[str, str]) -> Any:
    if not id_col:
        return row
    identity = label_key(values[id_col])
    if identity is None:
        raise UserError(f"{where}: empty id in column {id_col!r}", "give every row an id")
    if identity in seen:
        raise UserError(f"{where}: id {identity!r} in column {id_col!r} repeats {seen[identity]}", "ids must be unique")
    seen[identity] = where
    return identity


def _labels(name: str, kept: list, class_names: list[str] | None, label_col: str) -> tuple[list[str], list]:
    """Label names and the rows with integer labels; a validation/test label unseen in train is an error."""
    train = {label for _, split, _, _, _, label in kept if split == "train"}
    if not train:
        raise UserError(f"{name}: no row is in the train split", "a classifier needs training rows")
    for where, split, _, _, _, label in kept:
        if label not in train:
            shown = class_names[label] if class_names is not None and 0 <= label < len(class_names) else label
            raise UserError(f"{where}: label {shown!r} ({split}) never occurs in the train split",
                            "a classifier cannot learn a label it never sees")
    if class_names is not None:
        bad = next((label for label in train if not 0 <= label < len(class_names)), None)
        if bad is not None:
            raise UserError(f"{name}: label {bad} in column {label_col!r} is not one of its {len(class_names)} "
                            "ClassLabel names")
        return class_names, kept
    names = sort_labels(train)
    index = {label: i for i, label in enumerate(names)}
    return names, [(*row[:5], index[row[5]]) for row in kept]


def load(parts: dict[str, Any], *, name: str, source: str, origin: dict[str, Any], text_col: str | None = None,
         label_col: str | None = None, split_col: str | None = None, prompt_col: str | None = None,
         id_col: str | None = None, test_fraction: float = 0.1, **options: Any) -> Dataset:
    """A :class:`Dataset` from ``{split name: datasets.Dataset}`` (see the module docstring for the rules)."""
    if not parts or not any(len(p) for p in parts.values()):
        raise UserError(f"the data set {name} has no rows")
    cols = _columns(name, parts, {"text_col": text_col, "label_col": label_col, "split_col": split_col,
                                  "prompt_col": prompt_col, "id_col": id_col})
    class_names = _class_names(parts, cols["label_col"])
    skipped: Counter[str] = Counter()
    kept = _rows(name, parts, cols, class_names, skipped)
    if not kept:
        raise UserError(f"{name}: every row was skipped ({dict(skipped)})", f"check the text column {cols['text_col']!r}")
    label_names, kept = _labels(name, kept, class_names, cols["label_col"])
    samples = [Sample(id=sample_id(name, identity[0], identity[1]), text=text, prompt=prompt, label=int(label),
                      split=split) for _where, split, identity, text, prompt, label in kept]
    origin = {**origin, "fingerprints": {split: getattr(p, "_fingerprint", None) for split, p in parts.items()}}
    ds = assemble(name, label_names, samples, source=source, skipped=dict(skipped), test_fraction=test_fraction,
                  **options)
    ds.origin = origin
    return ds


def load_saved(path: Path, *, name: str | None = None, **kwargs: Any) -> Dataset:
    """A ``save_to_disk`` directory as a :class:`Dataset` (named after the directory unless ``name``)."""
    path = path.expanduser()
    return load(read_disk(path), name=name or path.resolve().name, source=str(path),
                origin={"kind": "save_to_disk", "path": str(path.resolve())}, **kwargs)


def load_hub(hub_id: str, *, config: str | None = None, revision: str | None = None, name: str | None = None,
             **kwargs: Any) -> Dataset:
    """A Hub data set (``owner/name``) as a :class:`Dataset` (named after the id, and config, unless ``name``)."""
    name = name or (hub_id if not config else f"{hub_id}:{config}")
    source = f"Hugging Face Hub {hub_id}" + (f" ({config})" if config else "") + (f" @ {revision}" if revision else "")
    return load(read_hub(hub_id, config, revision), name=name, source=source,
                origin={"kind": "hub", "id": hub_id, "config": config, "revision": revision or "main"}, **kwargs)
