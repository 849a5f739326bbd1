"""IMDB Large Movie Review data set (Maas et al., ACL 2011).

Source layout: ``aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`` in
``aclImdb_v1.tar.gz`` or the unpacked ``aclImdb/`` folder (``unsup/`` and the
``.feat`` files are ignored). Labels ``["neg", "pos"]``. Text = prompt = the
review with HTML tags stripped, entities unescaped and whitespace normalised.
Identity of a sample: its archive member path. IMDB has no validation split:
:func:`~lugpi_cli.data.samples.assemble` carves 10 % of train, stratified
(25,000 -> 22,500 + 2,500; test 25,000).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from lugpi_cli.data.archive import is_archive, iter_archive, iter_folder, member_sort_key
from lugpi_cli.data.clean import clean_imdb_review, decode_text
from lugpi_cli.data.samples import Dataset, Sample, assemble, sample_id
from lugpi_cli.errors import UserError

NAME = "imdb"
LABEL_NAMES = ["neg", "pos"]
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
FOLDER_NAME = "aclImdb"
URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
#: SHA-256 of the file at :data:`URL` (84,125,825 bytes), as published by its
#: users (TensorFlow Datasets, Julia MLDatasets). A re-packed copy (for example
#: without ``unsup/``) loads just as well: loading never checks it.
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

_MEMBER = re.compile(r"^aclImdb/(train|test)/(neg|pos)/[^/]+\.txt$")


def _is_folder(path: Path) -> bool:
    return path.is_dir() and (path / "train").is_dir() and (path / "test").is_dir()


def locate(root: Path) -> Path | None:
    """The archive or ``aclImdb`` folder at or inside ``root``, or None."""
    if is_archive(root) or _is_folder(root):
        return root
    if root.is_dir():
        for candidate in (root / ARCHIVE_NAME, root / FOLDER_NAME):
            if candidate.is_file() or _is_folder(candidate):
                return candidate
    return None


def load(path: Path, **options) -> Dataset:
    """Load IMDB from an archive or unpacked folder (see :func:`locate`)."""
    members = iter_archive(path, _MEMBER) if path.is_file() else iter_folder(path, FOLDER_NAME, _MEMBER)
    found: list[tuple[str, Sample]] = []
    skipped: Counter[str] = Counter()
    for member, match, data in members:
        split, label = match.group(1), match.group(2)
        text = clean_imdb_review(decode_text(data))
        if not text:
            skipped["empty text"] += 1
            continue
        sample = Sample(
            id=sample_id(NAME, split, member), text=text, prompt=text, label=LABEL_NAMES.index(label), split=split
        )
        found.append((member, sample))
    if not found:
        raise UserError(
            f"{path} holds no IMDB reviews (expected aclImdb/{{train,test}}/{{neg,pos}}/*.txt)",
            f"pass the canonical {ARCHIVE_NAME} from {URL} or its unpacked aclImdb/ folder",
        )
    found.sort(key=lambda pair: member_sort_key(pair[0]))
    samples = [sample for _, sample in found]
    return assemble(NAME, LABEL_NAMES, samples, source=str(path), skipped=dict(skipped), **options)
