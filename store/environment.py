"""Opening a store's LMDB environment: the named databases, the schema record, the truncation check.

:func:`open_environment` is what :class:`~lugpi_store.lmdb_store.Store` calls,
once per process, on first use. A missing store is created only when asked;
a directory that is not writable opens read-only; a data file cut short is
refused before LMDB maps it (a page past its end would be a SIGBUS); a store
written by a newer format is refused. :func:`_begin` starts every
transaction, adopting the map size another process grew.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import lmdb

from lugpi_store import codec
from lugpi_store.errors import CorruptStore, SchemaError, StoreError, StoreNotFound
from lugpi_store.meta import SCHEMA_KEY, SCHEMA_VERSION
from lugpi_store.records import NAMESPACES

DEFAULT_MAP_SIZE = 1 << 30  # 1 GiB to start; doubled whenever it fills
MAX_READERS = 512

TRUNCATED_HINT = (
    "It was cut short (an incomplete copy, a full disk) and reading it would crash. Nothing was read or written. "
    "Restore data.mdb from where it came from (the original store or a backup); or move the store directory "
    "aside and rerun the commands, which recompute what is missing (records kept in other intact stores, e.g. "
    "each node's workspace, can be combined with `lugpi store merge`).")


def _data_file(path: Path) -> Path:
    return path / "data.mdb"


def exists(path: str | os.PathLike) -> bool:
    """Whether a store has been created at ``path``."""
    return _data_file(Path(path)).exists()


def open_environment(path: Path, *, create: bool, map_size: int, readonly: bool | None,
                     lock: bool | None) -> tuple[lmdb.Environment, dict[str, Any]]:
    """The environment at ``path`` and its namespaces' database handles, checked and ready.

    ``readonly`` None: read-only exactly when the directory is not writable.
    ``lock`` None: LMDB's lock table unless read-only with an unwritable lock file.
    """
    created = not exists(path)
    if created and not create:
        raise StoreNotFound(
            f"no feature store at {path}",
            "Check --workspace (or LUGPI_WORKSPACE); a store is created by the first command that "
            "writes to it, e.g. `lugpi generate DATASET`.",
        )
    if created:
        path.mkdir(parents=True, exist_ok=True)
    readonly = not created and (readonly if readonly is not None else not os.access(path, os.W_OK))
    on_disk = _data_file(path).stat().st_size if not created else 0
    env = _lmdb_open(path, max(map_size, on_disk), on_disk, readonly=readonly, lock=lock)
    try:
        check_length(env, _data_file(path))
    except CorruptStore:
        env.close()
        raise
    if not readonly:
        env.reader_check()  # clear reader slots left by killed processes
    dbs = _open_dbs(env, path, readonly=readonly)
    _check_schema(env, dbs, path, readonly=readonly)
    return env, dbs


def _lmdb_open(path: Path, size: int, on_disk: int, *, readonly: bool, lock: bool | None) -> lmdb.Environment:
    try:
        return lmdb.open(
            str(path),
            map_size=size,
            subdir=True,
            max_dbs=len(NAMESPACES) + 2,
            max_readers=MAX_READERS,
            readahead=_readahead(on_disk),
            meminit=False,
            readonly=readonly,
            # A read-only directory whose lock file we cannot write (a shared store
            # mounted or shipped read-only): nobody here can write it either, so
            # reading without the reader table is safe.
            lock=not readonly or (os.access(path / "lock.mdb", os.W_OK) if lock is None else lock),
        )
    except lmdb.InvalidError as exc:
        raise CorruptStore(f"the store file {_data_file(path)} is not a readable LMDB file ({exc})",
                           TRUNCATED_HINT) from exc
    except lmdb.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc


def _open_dbs(env: lmdb.Environment, path: Path, *, readonly: bool = False) -> dict[str, Any]:
    if readonly:
        try:  # no txn= here: a handle opened inside a read transaction dies with it
            return {ns: env.open_db(ns.encode(), create=False) for ns in NAMESPACES}
        except lmdb.Error as exc:
            raise StoreError(
                f"the read-only store at {path} lacks a namespace ({exc})",
                "It was not written by lugpi, or not finished; open it once from a writable copy.",
            ) from exc
    while True:
        try:
            with _begin(env, write=True) as txn:
                return {ns: env.open_db(ns.encode(), txn=txn, create=True) for ns in NAMESPACES}
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)


def _check_schema(env: lmdb.Environment, dbs: dict[str, Any], path: Path, *, readonly: bool = False) -> None:
    with _begin(env) as txn:
        raw = txn.get(SCHEMA_KEY, db=dbs["meta"])
        found = codec.decode(raw) if raw is not None else None
    if found is None:
        if readonly:
            return
        record = codec.encode_json({"schema_version": SCHEMA_VERSION, "namespaces": list(NAMESPACES)})
        with _begin(env, write=True) as txn:
            txn.put(SCHEMA_KEY, record, overwrite=False, db=dbs["meta"])
        return
    version = int(found.get("schema_version", 0))
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the store at {path} has schema version {version}, newer than this lugpi reads "
            f"({SCHEMA_VERSION})",
            "Upgrade lugpi (pip install -U lugpi) to use this store; nothing was changed.",
        )


def check_length(env: lmdb.Environment, data_file: Path) -> None:
    """Refuse a data file that ends before a page its B-trees reference.

    LMDB maps the file and trusts its meta page: a page past the end of a
    truncated file is a SIGBUS, not an error. The cheap test comes first: a file
    holding ``last_pgno + 1`` pages is whole. A shorter one is not necessarily
    damaged (LMDB counts, but never writes, a transaction's loose pages), so
    then every tree is walked with file reads (:mod:`lugpi_store.pages`) and the
    file is refused only if a referenced page lies past its end.
    """
    from lugpi_store.pages import PastTheEnd, referenced_end

    pages = env.info()["last_pgno"] + 1
    page_size = env.stat()["psize"]
    have = data_file.stat().st_size
    if have >= pages * page_size:
        return
    fd = os.open(data_file, os.O_RDONLY)
    try:
        referenced_end(fd, page_size, have)
    except PastTheEnd as exc:
        raise CorruptStore(
            f"the store file {data_file} is truncated: {have:,} bytes, but its LMDB index references {exc} "
            f"beyond them ({pages:,} pages of {page_size} bytes counted)", TRUNCATED_HINT) from None
    except struct.error as exc:
        raise CorruptStore(f"the store file {data_file} is damaged: its B-tree pages do not parse ({exc})",
                           TRUNCATED_HINT) from None
    finally:
        os.close(fd)


def _readahead(data_bytes: int) -> bool:
    """OS readahead for the memory map: on while the store fits comfortably in RAM.

    With it, a page fault maps its neighbours too (a 77 KB token matrix is one
    or two faults instead of nineteen: random reads run ~2x faster from the page
    cache). A store larger than half the RAM turns it off, as LMDB advises for
    random access to data that does not fit. ``LUGPI_STORE_READAHEAD=0|1``
    overrides the choice.
    """
    forced = os.environ.get("LUGPI_STORE_READAHEAD")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return True
    return data_bytes < ram // 2


def _begin(env: lmdb.Environment, *, write: bool = False) -> Any:
    """Begin a transaction, adopting the map size if another process grew it."""
    while True:
        try:
            return env.begin(write=write, buffers=not write)
        except lmdb.MapResizedError:
            env.set_mapsize(0)
