"""Builders of tiny data sets in the canonical layouts, and the path of the real ones."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ..conftest import SHARED_DATA


def shared_path(*parts: str) -> Path:
    """A path under the real data folder; skips the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data set {path} absent")
    return path


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    """A ``.tar.gz`` holding ``files`` (member path -> bytes), with their folders."""
    folders = sorted({str(Path(name).parent) for name in files} - {"."})
    with tarfile.open(path, "w:gz") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def imdb_files(per_class: int = 10) -> dict[str, bytes]:
    """A tiny IMDB in the canonical layout, with ``<br />`` tags and entities."""
    files = {"aclImdb/README": b"readme", "aclImdb/imdb.vocab": b"the\n"}
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            for i in range(per_class):
                text = f"{label} review {i} of {split}.<br /><br />It was <i>so</i> &amp; so."
                files[f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt"] = text.encode()
    files["aclImdb/train/unsup/0_0.txt"] = b"unlabelled"
    return files


NEWS_POST = (
    "From: jdoe@cs.example.edu (John Doe)\n"
    "Subject: Re: a question about {group}\n"
    "Organization: Example University\n"
    "Lines: 4\n"
    "\n"
    "In article <1993Apr5.1234@cs.example.edu> smith@math.example.com writes:\n"
    ">Post {i} in {group}.\n"
    "I agree. Mail me at jdoe@cs.example.edu.\n"
)


def newsgroups_files(groups=("sci.space", "alt.atheism", "rec.autos"), per_group: int = 10) -> dict[str, bytes]:
    """A tiny 20news-bydate: train and test folders, one latin-1 post."""
    files = {}
    for split in ("train", "test"):
        for group in groups:
            for i in range(per_group):
                files[f"20news-bydate-{split}/{group}/{1000 + i}"] = NEWS_POST.format(group=group, i=i).encode()
    files[f"20news-bydate-train/{groups[0]}/999"] = (
        b"From: x@y.org\nSubject: caf\xe9\n\nCaf\xe9 cr\xe8me, \xb6 15.\n"
    )
    return files


def cwi_line(hit: str, sentence: str, start: int, end: int, label: int) -> str:
    target = sentence[start:end]
    return "\t".join([hit, sentence, str(start), str(end), target, "10", "10", str(label * 3), "0", str(label),
                      str(label * 0.3)])


def write_cwi(folder: Path, genre: str = "News", rows: int = 6) -> Path:
    """``<genre>_{Train,Dev,Test}.tsv`` in the CWI 2018 format (CR LF, quotes, no header)."""
    folder.mkdir(parents=True, exist_ok=True)
    sentence = 'The "barren" islands, reefs and coral outcrops are believed to be rich.'
    for suffix in ("Train", "Dev", "Test"):
        lines = []
        for i in range(rows):
            start = sentence.index("islands") if i % 2 else sentence.index("barren")
            end = start + (7 if i % 2 else 6)
            lines.append(cwi_line(f"HIT{suffix}{i // 2}", sentence, start, end, i % 2))
        # the same (HIT, span) twice, as in the real files
        lines.append(lines[0])
        (folder / f"{genre}_{suffix}.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return folder
