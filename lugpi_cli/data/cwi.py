"""CWI 2018 shared task, English (Yimam et al., BEA 2018): complex word identification.

Three data sets, ``cwi-news``, ``cwi-wikinews``, ``cwi-wikipedia``, each from
its own ``<Genre>_Train.tsv`` / ``_Dev.tsv`` / ``_Test.tsv`` (Dev ->
validation; nothing is carved). Files: UTF-8, tab-separated, no header, CR LF
line ends, no quoting (sentences contain quote characters), 11 columns:

    HIT id, sentence, start offset, end offset, target word or phrase,
    native annotators, non-native annotators, native complex count,
    non-native complex count, binary label, probabilistic label

Sample: text = the sentence, text_pair = the target, prompt = the target
(whitespace normalised), label = the binary column (``["simple", "complex"]``).
Identity: ``[HIT id, start, end, target, line number]`` -- the same
(HIT, span) occurs on several lines, so the line number makes it unique.
Sizes: News 14,002 / 1,764 / 2,095; WikiNews 7,746 / 870 / 1,287;
Wikipedia 5,551 / 694 / 870.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lugpi_cli.data.clean import normalize_whitespace
from lugpi_cli.data.files import read_utf8
from lugpi_cli.data.samples import Dataset, Sample, assemble, sample_id
from lugpi_cli.errors import UserError

LABEL_NAMES = ["simple", "complex"]
URL = "https://sites.google.com/view/cwisharedtask2018/datasets"
#: data set name -> file name prefix
GENRES = {"cwi-news": "News", "cwi-wikinews": "WikiNews", "cwi-wikipedia": "Wikipedia"}
#: file suffix -> split
FILE_SPLITS = {"Train": "train", "Dev": "validation", "Test": "test"}
NUM_COLUMNS = 11
COLUMNS = (
    "HIT id, sentence, start offset, end offset, target, native annotators, non-native annotators, "
    "native complex count, non-native complex count, binary label, probabilistic label"
)
# Sub-folders the files may sit in: this repository's copy, and the
# shared task's own release (traindevset/english, testset/english).
_SUBDIRS = (".", "cwi2018-english", "english", "traindevset/english", "testset/english")


def file_names(name: str) -> list[str]:
    return [f"{GENRES[name]}_{suffix}.tsv" for suffix in FILE_SPLITS]


def _find(root: Path, filename: str) -> Path | None:
    for sub in _SUBDIRS:
        candidate = root / sub / filename
        if candidate.is_file():
            return candidate
    return None


def locate(name: str, root: Path) -> dict[str, Path] | None:
    """``{split: path}`` of the three files of ``name`` at or below ``root``, or None when any is missing.

    ``root`` may also be one of the three files: its folder is searched.
    """
    if root.is_file():
        if root.name not in file_names(name):
            return None
        root = root.parent
    if not root.is_dir():
        return None
    found = {FILE_SPLITS[f.rsplit("_", 1)[1][:-4]]: _find(root, f) for f in file_names(name)}
    if any(path is None for path in found.values()):
        return None
    return found  # type: ignore[return-value]


def missing_files(name: str, root: Path) -> list[str]:
    """Which of the three files of ``name`` are not at or below ``root``."""
    root = root.parent if root.is_file() else root
    return [f for f in file_names(name) if not root.is_dir() or _find(root, f) is None]


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, 11 fields)`` for every non-blank line; a clear UserError for anything else."""
    text = read_utf8(path, what="CWI file")
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != NUM_COLUMNS:
            raise UserError(
                f"{path}, line {number}: {len(fields)} tab-separated fields, expected {NUM_COLUMNS} ({COLUMNS})",
                "use the CWI 2018 English files with gold labels, unmodified (tabs, no quoting)",
            )
        rows.append((number, fields))
    return rows


def _int(path: Path, number: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{path}, line {number}: {column} {value!r} is not an integer") from None


def load(name: str, files: dict[str, Path], **options) -> Dataset:
    """Load one CWI data set from its three files (see :func:`locate`)."""
    options.pop("validation_fraction", None)  # CWI has its own Dev split
    samples = []
    skipped: Counter[str] = Counter()
    for split in ("train", "validation", "test"):
        path = files[split]
        for number, fields in read_rows(path):
            hit, sentence, start, end, target = fields[:5]
            binary = fields[9].strip()
            if binary not in ("0", "1"):
                raise UserError(
                    f"{path}, line {number}: binary label {binary!r} is not 0 or 1",
                    f"columns are: {COLUMNS}",
                )
            span = (_int(path, number, "start offset", start), _int(path, number, "end offset", end))
            identity = [hit, *span, target, number]
            sentence_clean, target_clean = normalize_whitespace(sentence), normalize_whitespace(target)
            if not sentence_clean:
                skipped["empty text"] += 1
                continue
            if not target_clean:
                skipped["empty target"] += 1
                continue
            samples.append(
                Sample(
                    id=sample_id(name, split, identity),
                    text=sentence_clean,
                    prompt=target_clean,
                    label=int(binary),
                    split=split,
                    text_pair=target_clean,
                )
            )
    source = str(files["train"].parent)
    return assemble(name, LABEL_NAMES, samples, source=source, skipped=dict(skipped), **options)
