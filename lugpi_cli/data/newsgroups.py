"""20 Newsgroups, "bydate" version (train 11,314 / test 7,532 posts, 20 groups).

Source layout: ``20news-bydate-{train,test}/<group>/<id>`` in
``20news-bydate.tar.gz`` or the unpacked folders. Labels: the group names,
sorted. Text = prompt = the post body: header block dropped (everything
before the first blank line, the Subject line included, and header lines
that open the body, see :func:`~lugpi_cli.data.clean.strip_newsgroup_header`),
e-mail addresses dropped everywhere, whitespace normalised. Files are UTF-8
except 73 legacy posts, read as latin-1.

Posts whose body is empty after cleaning (35 in bydate, 19 train + 16 test:
all they say is in their Subject line) are *kept*, with empty text and
prompt, so the splits keep the standard sizes every published bydate result
uses. Validation: 10 % of train, stratified
(11,314 -> 10,183 + 1,131).

The LUGPI paper used the 20news-18828 version with its own split
(11,353 / 1,261 / 6,214); bydate is the standard, reproducible one.
"""

from __future__ import annotations

import re
from pathlib import Path

from lugpi_cli.data.archive import is_archive, iter_archive, iter_folder, member_sort_key
from lugpi_cli.data.clean import clean_newsgroup_post, decode_text
from lugpi_cli.data.samples import Dataset, Sample, assemble, sample_id
from lugpi_cli.errors import UserError

NAME = "20newsgroups"
ARCHIVE_NAME = "20news-bydate.tar.gz"
URL = "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz"
#: The copy scikit-learn downloads, and the SHA-256 it verifies.
MIRROR_URL = "https://ndownloader.figshare.com/files/5975967"
MIRROR_SHA256 = "8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610"

_MEMBER = re.compile(r"^20news-bydate-(train|test)/([^/]+)/([^/]+)$")
_FOLDERS = ("20news-bydate-train", "20news-bydate-test")


def _is_parent(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_dir() for f in _FOLDERS)


def locate(root: Path) -> Path | None:
    """The archive, or the folder holding ``20news-bydate-train/`` and ``-test/``, at or in ``root``."""
    if is_archive(root) or _is_parent(root):
        return root
    if root.is_dir() and root.name in _FOLDERS and _is_parent(root.parent):
        return root.parent
    if (root / ARCHIVE_NAME).is_file():
        return root / ARCHIVE_NAME
    return None


def load(path: Path, **options) -> Dataset:
    """Load 20 Newsgroups bydate from an archive or the parent of the unpacked folders."""
    members = iter_archive(path, _MEMBER) if path.is_file() else iter_folder(path, "", _MEMBER)
    posts: list[tuple[str, str, str, str]] = []  # (member, split, group, text)
    for member, match, data in members:
        posts.append((member, match.group(1), match.group(2), clean_newsgroup_post(decode_text(data))))
    if not posts:
        raise UserError(
            f"{path} holds no 20 Newsgroups posts (expected 20news-bydate-{{train,test}}/<group>/<id>)",
            f"pass the canonical {ARCHIVE_NAME} from {URL} or the folder holding its unpacked folders",
        )
    label_names = sorted({group for _, split, group, _ in posts if split == "train"})
    unknown = sorted({group for _, split, group, _ in posts if group not in label_names})
    if unknown:
        raise UserError(
            f"{path}: test group {unknown[0]!r} has no training posts",
            "use the complete bydate distribution (20 groups in both 20news-bydate-train and -test)",
        )
    posts.sort(key=lambda p: member_sort_key(p[0]))
    index = {group: i for i, group in enumerate(label_names)}
    samples = [
        Sample(id=sample_id(NAME, split, member), text=text, prompt=text, label=index[group], split=split)
        for member, split, group, text in posts
    ]
    return assemble(NAME, label_names, samples, source=str(path), **options)
