"""Per-sample predictions of a run, their file format, and joining several runs by sample id.

Paired tests and teacher-student agreement compare runs sample by sample, so
the runs' predictions are joined on the sample id, never on row order.

File format (``.csv``)
    UTF-8 CSV (RFC 4180 quoting, as Python's ``csv`` module and pandas write
    it), one header row, one row per sample::

        sample_id,label,predicted,prob_0,prob_1
        4f2b17a3bf3d968b,1,1,0.1,0.9
        0a9c33e1d2b4f5a6,0,1,0.45,0.55

    ``sample_id``
        the sample's id (a string; see :func:`lugpi_cli.data.samples.sample_id`).
    ``label``
        the true label, an integer class index.
    ``predicted``
        the predicted class index.
    ``prob_0 .. prob_{k-1}``
        optional class probabilities (softmax outputs), all k or none.

    Floats are written with Python's ``repr`` (the shortest text that reads
    back to the same float64), so a write/read round trip is exact. Reading
    looks columns up by name: column order is free, other columns are
    ignored, blank lines are skipped. Rows keep the file's order.

    Shell: ``column -s, -t < test.csv | head``. pandas:
    ``pd.read_csv(path, dtype={"sample_id": str})`` (without the dtype, pandas
    would turn an all-digit hex id into a number).

Alignment (:func:`align`)
    All runs must predict exactly the same set of sample ids, each id once,
    with the same true label; the aligned order is the ids sorted as strings,
    so the result does not depend on any file's row order.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lugpi_cli.data.files import read_utf8
from lugpi_cli.errors import UserError

#: Required columns of a predictions file, in the order they are written.
COLUMNS = ("sample_id", "label", "predicted")
PROB_PREFIX = "prob_"

_EXAMPLES = 3


@dataclass(frozen=True, eq=False)
class Predictions:
    """One run's predictions on one split.

    Attributes:
        sample_ids: ``(n,)`` str array of sample ids.
        labels: ``(n,)`` int64 true labels.
        predicted: ``(n,)`` int64 predicted labels.
        probs: ``(n, k)`` float64 class probabilities, or None.

    Inputs are converted (lists are fine); lengths must agree.
    """

    sample_ids: Any
    labels: Any
    predicted: Any
    probs: Any = None

    def __post_init__(self) -> None:
        ids = np.asarray([str(i) for i in self.sample_ids], dtype=str).reshape(-1)
        labels = _int_array(self.labels, "labels")
        predicted = _int_array(self.predicted, "predicted")
        n = len(ids)
        if labels.shape != (n,) or predicted.shape != (n,):
            raise ValueError(
                f"{n} sample ids but labels has shape {labels.shape} and predicted has shape {predicted.shape}"
            )
        probs = self.probs
        if probs is not None:
            probs = np.asarray(probs, dtype=np.float64)
            if probs.ndim != 2 or probs.shape[0] != n:
                raise ValueError(f"probs must have shape ({n}, k), got {probs.shape}")
        object.__setattr__(self, "sample_ids", ids)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "predicted", predicted)
        object.__setattr__(self, "probs", probs)

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def correct(self) -> np.ndarray:
        """``(n,)`` booleans: predicted == label (the input of the paired tests)."""
        return self.predicted == self.labels

    @property
    def num_labels(self) -> int | None:
        """Number of probability columns, or None without probabilities."""
        return None if self.probs is None else int(self.probs.shape[1])

    def take(self, index: Any) -> Predictions:
        """The rows at ``index`` (an integer array or a boolean mask), in that order."""
        return Predictions(
            self.sample_ids[index],
            self.labels[index],
            self.predicted[index],
            None if self.probs is None else self.probs[index],
        )

    def __repr__(self) -> str:
        k = "" if self.probs is None else f", k={self.probs.shape[1]}"
        return f"Predictions(n={len(self)}{k})"


def align(runs: Mapping[str, Predictions]) -> tuple[np.ndarray, dict[str, Predictions]]:
    """Join the predictions of several runs on sample id.

    Args:
        runs: run name -> its predictions on the same split.

    Returns:
        ``(ids, aligned)``: the sorted sample ids, and every run's predictions
        reordered so that row i of each is sample ``ids[i]``.

    Raises:
        UserError: a run repeats a sample id; two runs predict different sets
            of samples (the message names both runs, how many ids differ and a
            few examples); two runs disagree on a sample's true label.
    """
    if not runs:
        raise ValueError("align() needs at least one run")
    aligned: dict[str, Predictions] = {}
    for name, preds in runs.items():
        order = np.argsort(preds.sample_ids, kind="stable")
        ids = preds.sample_ids[order]
        dup = ids[1:][ids[1:] == ids[:-1]]
        if dup.size:
            unique_dups = sorted(set(dup.tolist()))
            raise UserError(
                f"run {name!r} has {len(unique_dups)} repeated sample ids (e.g. {_examples(unique_dups)})",
                "each sample must appear once in a predictions file; re-run the evaluation of that run",
            )
        aligned[name] = preds.take(order)

    names = list(aligned)
    ref_name = names[0]
    ref = aligned[ref_name]
    for name in names[1:]:
        other = aligned[name]
        if not np.array_equal(ref.sample_ids, other.sample_ids):
            only_ref = np.setdiff1d(ref.sample_ids, other.sample_ids)
            only_other = np.setdiff1d(other.sample_ids, ref.sample_ids)
            raise UserError(
                f"runs {ref_name!r} and {name!r} predict different samples: "
                f"{only_ref.size} ids only in {ref_name!r}{_eg(only_ref)}, "
                f"{only_other.size} ids only in {name!r}{_eg(only_other)} "
                f"({len(ref)} and {len(other)} samples)",
                "compare runs evaluated on the same data set, split and sample limit",
            )
        differ = np.flatnonzero(ref.labels != other.labels)
        if differ.size:
            i = differ[0]
            raise UserError(
                f"runs {ref_name!r} and {name!r} disagree on the true label of {differ.size} samples "
                f"(e.g. {ref.sample_ids[i]}: {ref.labels[i]} vs {other.labels[i]})",
                "the runs were evaluated on different versions of the data set (or a different label order)",
            )
    return ref.sample_ids.copy(), aligned


def write_predictions(path: str | os.PathLike, preds: Predictions) -> Path:
    """Write ``preds`` as a predictions CSV (format in the module docstring); returns the path.

    The file is written beside its final name and renamed into place, so a
    reader never sees half a file. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = preds.num_labels or 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*COLUMNS, *(f"{PROB_PREFIX}{j}" for j in range(k))])
    for i in range(len(preds)):
        row = [preds.sample_ids[i], int(preds.labels[i]), int(preds.predicted[i])]
        if k:
            row.extend(repr(float(x)) for x in preds.probs[i])
        writer.writerow(row)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(buf.getvalue(), encoding="utf-8", newline="")
    os.replace(tmp, path)
    return path


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read a predictions CSV (format in the module docstring).

    Raises:
        UserError: the file is missing or not UTF-8, a required column is
            missing, the probability columns are not ``prob_0 .. prob_{k-1}``,
            or a value does not parse (naming the file, line and column).
    """
    path = Path(path)
    text = read_utf8(path, what="predictions file")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None:
        raise UserError(f"predictions file {path} is empty", f"expected a header: {','.join(COLUMNS)},prob_0,...")
    header = [h.strip() for h in header]
    col = {}
    for j, h in enumerate(header):
        if h in col:
            raise UserError(f"predictions file {path} has the column {h!r} twice")
        col[h] = j
    missing = [c for c in COLUMNS if c not in col]
    if missing:
        raise UserError(
            f"predictions file {path} lacks the column(s) {', '.join(missing)}; its header is {','.join(header)}",
            f"expected a header: {','.join(COLUMNS)},prob_0,...,prob_<k-1>",
        )
    prob_cols = {}
    for h in header:
        if h.startswith(PROB_PREFIX):
            m = re.fullmatch(re.escape(PROB_PREFIX) + r"(0|[1-9][0-9]*)", h)
            if not m:
                raise UserError(f"predictions file {path}: bad probability column {h!r}", "name them prob_0, prob_1, ...")
            prob_cols[int(m.group(1))] = col[h]
    k = len(prob_cols)
    if sorted(prob_cols) != list(range(k)):
        raise UserError(
            f"predictions file {path}: probability columns must be prob_0 .. prob_{k - 1}, "
            f"found {', '.join(PROB_PREFIX + str(j) for j in sorted(prob_cols))}"
        )

    ids: list[str] = []
    labels: list[int] = []
    predicted: list[int] = []
    probs: list[list[float]] = []
    for row in rows:
        line = rows.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise UserError(f"{path} line {line}: {len(row)} fields, but the header has {len(header)}")
        sid = row[col["sample_id"]].strip()
        if not sid:
            raise UserError(f"{path} line {line}: empty sample_id")
        ids.append(sid)
        labels.append(_parse_int(row[col["label"]], path, line, "label"))
        predicted.append(_parse_int(row[col["predicted"]], path, line, "predicted"))
        if k:
            probs.append([_parse_float(row[prob_cols[j]], path, line, f"{PROB_PREFIX}{j}") for j in range(k)])
    prob_array = np.asarray(probs, dtype=np.float64).reshape(len(ids), k) if k else None
    return Predictions(ids, np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64), prob_array)


# -- helpers ------------------------------------------------------------------


def _int_array(a: Any, name: str) -> np.ndarray:
    x = np.asarray(a)
    if x.size == 0:
        return x.astype(np.int64).reshape(-1)
    if np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.bool_):
        return x.astype(np.int64)
    if np.issubdtype(x.dtype, np.floating) and np.isfinite(x).all() and np.equal(np.mod(x, 1), 0).all():
        return x.astype(np.int64)
    raise ValueError(f"{name} must hold integer class indices, got dtype {x.dtype}")


def _parse_int(value: str, path: Path, line: int, column: str) -> int:
    v = value.strip()
    try:
        return int(v)
    except ValueError:
        try:
            f = float(v)
        except ValueError:
            f = None
        if f is not None and f.is_integer():  # "1.0", as some writers produce
            return int(f)
        raise UserError(f"{path} line {line}: {column} {value!r} is not an integer class index") from None


def _parse_float(value: str, path: Path, line: int, column: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise UserError(f"{path} line {line}: {column} {value!r} is not a number") from None


def _examples(values: list[str]) -> str:
    shown = ", ".join(values[:_EXAMPLES])
    return shown + (", ..." if len(values) > _EXAMPLES else "")


def _eg(ids: np.ndarray) -> str:
    return f" (e.g. {_examples(ids.tolist())})" if ids.size else ""
