"""Reading text files from a ``.tar.gz`` (streamed once, never extracted) or an unpacked folder.

Both give the same member paths (``aclImdb/train/pos/0_9.txt``), so sample ids
do not depend on which form of a distribution a user has.
"""

from __future__ import annotations

import os
import re
import tarfile
import zlib
from pathlib import Path
from typing import Iterator

from lugpi_cli.errors import UserError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def member_sort_key(name: str) -> list[str | int]:
    """Natural sort key of a member path: ``pos/9_7.txt`` before ``pos/10_8.txt``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def iter_archive(path: Path, pattern: re.Pattern[str]) -> Iterator[tuple[str, re.Match[str], bytes]]:
    """Yield ``(member path, match, bytes)`` for the regular files whose path matches ``pattern``.

    Streams the archive in member order (``r|*``), reading it once. A leading
    ``./`` is dropped from member paths.
    """
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name[2:] if member.name.startswith("./") else member.name
                match = pattern.match(name)
                if match is None:
                    continue
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    continue
                yield name, match, handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise UserError(
            f"cannot read archive {path}: {exc}",
            "the download may be truncated or corrupt: fetch it again (or pass the unpacked folder with --data)",
        ) from exc


def iter_folder(root: Path, prefix: str, pattern: re.Pattern[str]) -> Iterator[tuple[str, re.Match[str], bytes]]:
    """Like :func:`iter_archive` for an unpacked folder; member paths are ``prefix/relative/path``.

    Files are visited in sorted order so the result does not depend on the file system.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for filename in sorted(filenames):
            rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
            name = f"{prefix}/{rel}" if prefix else rel
            match = pattern.match(name)
            if match is None:
                continue
            try:
                data = (Path(dirpath) / filename).read_bytes()
            except OSError as exc:
                raise UserError(f"cannot read {Path(dirpath) / filename}: {exc}") from exc
            yield name, match, data
