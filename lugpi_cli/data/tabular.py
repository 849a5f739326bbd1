"""Any labelled text table: ``.csv``, ``.tsv``, ``.jsonl`` (``.json``, ``.ndjson``) or ``.parquet``.

Columns are chosen by name: ``text_col`` and ``label_col`` are required,
``split_col``, ``prompt_col`` and ``id_col`` are optional. The data set is
named after the file stem.

Reading
    CSV and TSV: a header row with the column names (surrounding spaces
    dropped), standard double-quote quoting (as written by pandas, Excel or
    Python's csv module), blank lines ignored. JSON lines: one object per
    line; a ``.json`` file holding one array of objects works too. Parquet
    needs pyarrow (or pandas with a parquet engine). Text files must be UTF-8:
    other bytes are a UserError naming the byte offset, never a silent guess.

Rows
    text and prompt are whitespace-normalised; the prompt defaults to the
    text. A row with empty text (or an empty prompt when ``prompt_col`` is
    given) is skipped and counted (``"empty text"``, ``"empty prompt"``).
    An empty label, an unknown split value, an empty or repeated id, or a
    validation/test label that never occurs in train is a UserError naming
    the file, the line (row for parquet, counting from 1) and the value.

Labels
    The sorted distinct values of the label column in train, as strings
    (``1.0`` reads as ``1``; when all are integers they sort numerically).

Splits
    ``split_col`` values: train (training), validation (valid, val, dev,
    development), test (testing), any case. A split the file lacks is carved
    from train, stratified and independent of row order: test first
    (``test_fraction``, 10 %, always with seed 0 so every run of a study sees
    the same test set), then validation (``validation_fraction`` of what is
    left, seeded by ``seed``). Without ``split_col`` every row is train, so a
    single file gives 80 % / 10 % / 10 %.

Identity
    ``id_col``'s value when given (keep ids stable across edits of the
    file), else the data row number (1 = first row after the header).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lugpi_cli.data.clean import normalize_whitespace
from lugpi_cli.data.files import read_utf8
from lugpi_cli.data.samples import Dataset, Sample, assemble, sample_id
from lugpi_cli.errors import UserError

#: file suffix -> format
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

SPLIT_SYNONYMS = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "development": "validation",
    "test": "test",
    "testing": "test",
}

_OPTION_FLAGS = {"text_col": "--text-col", "label_col": "--label-col", "split_col": "--split-col",
                 "prompt_col": "--prompt-col", "id_col": "--id-col"}
_INT = re.compile(r"^[+-]?\d+$")


def is_tabular(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


@dataclass
class Table:
    """Rows read from a file: column names and ``(where, row number, values)``."""

    columns: list[str]
    rows: list[tuple[str, int, dict[str, Any]]]


# --- readers -----------------------------------------------------------------


def _read_delimited(path: Path, delimiter: str) -> Table:
    text = read_utf8(path)
    if not text.strip():
        raise UserError(f"{path} is empty", "give a file with a header row and at least one data row")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[str, int, dict[str, Any]]] = []
    header: list[str] | None = None
    last_line = 0
    try:
        for fields in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                continue
            if len(fields) != len(header):
                raise UserError(
                    f"{path}, line {line}: {len(fields)} fields, but the header has {len(header)}",
                    "check the quoting: a value holding the separator, a quote or a line break must be "
                    'in double quotes, with inner quotes doubled ("")',
                )
            rows.append((f"line {line}", len(rows) + 1, dict(zip(header, fields))))
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: cannot parse: {exc}") from exc
    assert header is not None
    return Table(header, rows)


def _read_jsonl(path: Path) -> Table:
    text = read_utf8(path)
    if not text.strip():
        raise UserError(f"{path} is empty", "give one JSON object per line")
    records: list[tuple[str, Any]] = []
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {exc.lineno}: invalid JSON: {exc.msg}") from exc
        records = [(f"record {i}", value) for i, value in enumerate(array, start=1)]
    else:
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}, line {number}: invalid JSON: {exc.msg}",
                    "a JSON lines file holds one complete JSON object per line",
                ) from exc
    columns: dict[str, None] = {}
    rows = []
    for where, value in records:
        if not isinstance(value, dict):
            raise UserError(f"{path}, {where}: expected a JSON object, found {type(value).__name__}")
        columns.update(dict.fromkeys(value))
        rows.append((where, len(rows) + 1, value))
    return Table(list(columns), rows)


def _read_parquet(path: Path, wanted: list[str]) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    try:
        if pq is not None:
            names = list(pq.ParquetFile(path).schema_arrow.names)
            data = pq.read_table(path, columns=[c for c in wanted if c in names]).to_pydict()
        else:
            import pandas as pd

            frame = pd.read_parquet(path)
            names = [str(c) for c in frame.columns]
            data = {c: frame[c].tolist() for c in wanted if c in names}
    except ImportError as exc:
        raise UserError(
            f"reading {path} needs a parquet library", "pip install pyarrow"
        ) from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for files it cannot parse
        raise UserError(f"{path} is not a readable parquet file: {exc}") from exc
    length = len(next(iter(data.values()))) if data else 0
    rows = [(f"row {i + 1}", i + 1, {c: data[c][i] for c in data}) for i in range(length)]
    return Table(names, rows)


def read_table(path: Path, wanted: list[str]) -> Table:
    """The rows of ``path`` (format from its suffix); ``wanted`` columns are the ones needed."""
    fmt = FORMATS[path.suffix.lower()]
    if fmt == "parquet":
        table = _read_parquet(path, wanted)
    elif fmt == "jsonl":
        table = _read_jsonl(path)
    else:
        table = _read_delimited(path, "," if fmt == "csv" else "\t")
    return table


# --- values ------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(path: Path, where: str, column: str, value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, (list, dict)):
        raise UserError(f"{path}, {where}: column {column!r} holds {type(value).__name__}, not text: {value!r:.80}")
    return normalize_whitespace(str(value))


def label_key(value: Any) -> str | None:
    """The label as a string (None when missing): ``1``, ``1.0`` and ``"1"`` are all ``"1"``."""
    if _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def sort_labels(labels: set[str]) -> list[str]:
    """Numeric order when every label is an integer, else string order."""
    if labels and all(_INT.match(label) for label in labels):
        return sorted(labels, key=lambda label: (int(label), label))
    return sorted(labels)


def _split(path: Path, where: str, column: str, value: Any) -> str:
    key = "" if _is_missing(value) else str(value).strip().lower()
    if key not in SPLIT_SYNONYMS:
        raise UserError(
            f"{path}, {where}: split {value!r} in column {column!r} is not a split name",
            "use train, validation (or valid, val, dev) or test",
        )
    return SPLIT_SYNONYMS[key]


# --- loading -----------------------------------------------------------------


def load(
    path: Path,
    *,
    text_col: str | None,
    label_col: str | None,
    split_col: str | None = None,
    prompt_col: str | None = None,
    id_col: str | None = None,
    test_fraction: float = 0.1,
    **options,
) -> Dataset:
    """Load a table file (see the module docstring for every rule)."""
    # 1. the columns asked for, checked against the file
    chosen = {"text_col": text_col, "label_col": label_col, "split_col": split_col,
              "prompt_col": prompt_col, "id_col": id_col}
    table = _read_checked(path, chosen)
    # 2. the rows kept (and why others were skipped)
    kept, skipped = _kept_rows(path, table, chosen)
    if not kept:
        raise UserError(f"{path}: every row was skipped ({dict(skipped)})", f"check the text column {text_col!r}")
    # 3. the label names: those of the train split, every other split's labels among them
    label_names = _label_names(path, kept, split_col)
    index = {label: i for i, label in enumerate(label_names)}
    name = path.stem
    samples = [
        Sample(id=sample_id(name, split, identity), text=text, prompt=prompt, label=index[label], split=split)
        for _where, split, identity, text, prompt, label in kept
    ]
    return assemble(name, label_names, samples, source=str(path), skipped=dict(skipped),
                    test_fraction=test_fraction, **options)


def _read_checked(path: Path, chosen: dict[str, str | None]) -> Table:
    """The table's rows, once the text and label columns are named and every named column exists."""
    for required in ("text_col", "label_col"):
        if not chosen[required]:
            raise UserError(
                f"{path}: which column holds the {required[:-4]}? none given",
                f"pass {_OPTION_FLAGS[required]} COLUMN",
            )
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    wanted = [c for c in chosen.values() if c]
    table = read_table(path, wanted)
    if not table.rows:
        raise UserError(f"{path} has no data rows", "the file holds only a header (or only blank lines)")
    for option, column in chosen.items():
        if column and column not in table.columns:
            raise UserError(
                f"{path}: no column {column!r} ({_OPTION_FLAGS[option]})",
                f"the columns are: {', '.join(map(repr, table.columns))}",
            )
    return table


def _kept_rows(path: Path, table: Table, chosen: dict[str, str | None]) -> tuple[list[tuple], Counter[str]]:
    """``(where, split, identity, text, prompt, label)`` of every row kept; the skipped rows counted by reason."""
    text_col, label_col, split_col = chosen["text_col"], chosen["label_col"], chosen["split_col"]
    prompt_col, id_col = chosen["prompt_col"], chosen["id_col"]
    skipped: Counter[str] = Counter()
    kept: list[tuple[str, str, Any, str, str, str]] = []  # where, split, identity, text, prompt, label
    seen_ids: dict[str, str] = {}
    for where, number, values in table.rows:
        text = _text(path, where, text_col, values.get(text_col))
        if not text:
            skipped["empty text"] += 1
            continue
        prompt = _text(path, where, prompt_col, values.get(prompt_col)) if prompt_col else text
        if not prompt:
            skipped["empty prompt"] += 1
            continue
        label = label_key(values.get(label_col))
        if label is None:
            raise UserError(
                f"{path}, {where}: empty label in column {label_col!r}",
                "fill in the label, or remove the row",
            )
        split = _split(path, where, split_col, values.get(split_col)) if split_col else "train"
        identity = _row_id(path, where, values, id_col, seen_ids) if id_col else number
        kept.append((where, split, identity, text, prompt, label))
    return kept, skipped


def _row_id(path: Path, where: str, values: dict[str, Any], id_col: str, seen_ids: dict[str, str]) -> str:
    """The row's id from ``id_col``: present and unique (``seen_ids``: id -> where it was first seen)."""
    identity = label_key(values.get(id_col))
    if identity is None:
        raise UserError(f"{path}, {where}: empty id in column {id_col!r}", "give every row an id")
    if identity in seen_ids:
        raise UserError(
            f"{path}, {where}: id {identity!r} in column {id_col!r} repeats {seen_ids[identity]}",
            "ids must be unique",
        )
    seen_ids[identity] = where
    return identity


def _label_names(path: Path, kept: list[tuple], split_col: str | None) -> list[str]:
    """The sorted label names of the train split; a label of another split missing from it is an error."""
    train_labels = {label for _, split, _, _, _, label in kept if split == "train"}
    if not train_labels:
        raise UserError(
            f"{path}: no row has split 'train' in column {split_col!r}",
            "a classifier needs training rows: mark some rows train",
        )
    for where, split, _, _, _, label in kept:
        if label not in train_labels:
            raise UserError(
                f"{path}, {where}: label {label!r} ({split}) never occurs in the train split",
                "a classifier cannot learn a label it never sees: fix the label, or add training rows with it",
            )
    return sort_labels(train_labels)
