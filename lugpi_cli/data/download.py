"""Fetching IMDB and 20 Newsgroups archives into the user cache, checksum-verified.

Only on explicit request (``download_dataset(name)``): :func:`load_dataset`
never touches the network. The archive is streamed to ``<name>.part``, its
SHA-256 compared with the published one, and only then renamed into place,
so an interrupted or corrupt download never looks like a copy. CWI 2018 has
no stable direct download link: fetch it by hand from the shared task page.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from lugpi_cli.data import imdb, newsgroups
from lugpi_cli.data.registry import BUILTINS, cache_dir
from lugpi_cli.errors import UserError


@dataclass(frozen=True)
class Remote:
    url: str
    filename: str
    sha256: str


REMOTES = {
    "imdb": Remote(imdb.URL, imdb.ARCHIVE_NAME, imdb.SHA256),
    # scikit-learn's mirror of the bydate archive, with the checksum it verifies
    "20newsgroups": Remote(newsgroups.MIRROR_URL, newsgroups.ARCHIVE_NAME, newsgroups.MIRROR_SHA256),
}


def download_dataset(name: str, dest: str | Path | None = None, *, timeout: float = 60.0) -> Path:
    """Download the archive of ``name`` into ``dest`` (default: :func:`cache_dir`); return its path.

    An archive already there with the right checksum is not fetched again.
    """
    import urllib.error
    import urllib.request  # http and ssl load only when something is downloaded

    remote = REMOTES.get(name)
    if remote is None:
        builtin = BUILTINS.get(name)
        hint = f"fetch it by hand from {builtin.url}" if builtin else f"choose one of: {', '.join(REMOTES)}"
        raise UserError(f"data set {name!r} cannot be downloaded automatically", hint)
    folder = Path(dest).expanduser() if dest is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    if target.is_file() and file_sha256(target) == remote.sha256:
        return target
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise UserError(
            f"cannot download {remote.url}: {getattr(exc, 'reason', exc)}",
            f"download it by hand into {folder}, or pass --data PATH to a copy",
        ) from exc
    if digest.hexdigest() != remote.sha256:
        part.unlink(missing_ok=True)
        raise UserError(
            f"the download of {remote.url} has SHA-256 {digest.hexdigest()}, expected {remote.sha256}",
            "the transfer was corrupted or the file changed upstream: try again, or fetch it by hand",
        )
    os.replace(part, target)
    return target


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
