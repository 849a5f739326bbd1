"""The workspace's LMDB environment: named databases, batched writes, lazy per-process open.

Discipline (see DESIGN.md):

* one write transaction per batch, keys sorted; a crash loses at most the
  batch in flight and never earlier, committed data (LMDB is copy-on-write
  and syncs on commit);
* ``MapFullError`` doubles the map and retries the same batch;
* the environment opens lazily, once per process: a ``Store`` pickled into a
  DataLoader worker, or inherited through ``fork``, reopens in the child;
* readers never block the writer (MVCC); several processes may write, LMDB
  serialises them;
* a schema record refuses stores written by a newer format;
* a store whose directory is not writable opens read-only (``info``,
  ``verify``, reading features, ``merge`` from it); a write to it is refused
  with a message.
"""

from __future__ import annotations

import os
import struct
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import lmdb

from lugpi_store import codec
from lugpi_store.errors import CorruptRecord, CorruptStore, SchemaError, StoreError, StoreNotFound
from lugpi_store.keys import fingerprint_prefix

NAMESPACES = ("images", "features", "teacher", "meta")
SCHEMA_KEY = b"schema"
SCHEMA_VERSION = 1
FP_META_PREFIX = b"fp/"
FAILED_META_PREFIX = b"failed/"  # failed/<image key>: a prompt `generate` could not draw (retried next run)
# meta keys that describe this workspace, not content: never merged between stores
LOCAL_META_PREFIXES = (SCHEMA_KEY, b"latest/", FAILED_META_PREFIX, b"claim/")  # claim/: store/claims.py
DEFAULT_MAP_SIZE = 1 << 30  # 1 GiB to start; doubled whenever it fills
MAX_READERS = 512

# One environment per (path, process). LMDB forbids opening the same
# environment twice in one process; a forked child closes the handle it
# inherited (which releases nothing of the parent's: fcntl locks and reader
# slots belong to the process) and opens its own.
_ENVS: dict[str, tuple[int, lmdb.Environment, dict[str, Any]]] = {}
_LOCK = threading.RLock()
_GENERATION = 0  # bumped by close_all(); invalidates the handles Store objects cache


def _data_file(path: Path) -> Path:
    return path / "data.mdb"


def exists(path: str | os.PathLike) -> bool:
    """Whether a store has been created at ``path``."""
    return _data_file(Path(path)).exists()


def close_all() -> None:
    """Close every environment this process opened (tests, compaction)."""
    global _GENERATION
    with _LOCK:
        _GENERATION += 1
        for key, (_, env, _) in list(_ENVS.items()):
            env.close()
            del _ENVS[key]


class Store:
    """A content-addressed record store in one LMDB environment.

    Values are records from :mod:`lugpi_store.codec`. Writes are idempotent: a key
    already present is left alone (its bytes are, by construction of the key,
    the same).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        create: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool | None = None,
        lock: bool | None = None,
        defer_meta: bool = False,
    ):
        self.path = Path(path)
        self.create = create
        self.want_readonly = readonly  # None: read-only exactly when the directory is not writable
        # None: LMDB's lock table unless read-only with an unwritable lock file. False (read-only
        # stores only): no lock table, safe only while nothing writes (a multi-node run's workspace)
        self.want_lock = lock
        self.initial_map_size = int(map_size)
        # defer_meta: producer registrations and deferred meta records wait in this process and are
        # committed in the same transaction as the next record written (or by flush()), so a command
        # that fails before its work leaves the store exactly as it was (and creates none).
        self.defer_meta = defer_meta
        self._pending: dict[bytes, bytes] = {}
        self._cached: tuple[int, int, lmdb.Environment, dict[str, Any]] | None = None

    # -- environment -----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "create": self.create,
            "initial_map_size": self.initial_map_size,
            "want_readonly": self.want_readonly,
            "want_lock": self.want_lock,
            "defer_meta": self.defer_meta,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.want_lock = None
        self.__dict__.update(state)
        self.defer_meta = state.get("defer_meta", False)
        self._pending = {}  # pending meta belongs to the process that queued it
        self._cached = None

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def exists(self) -> bool:
        return exists(self.path)

    def _handles(self) -> tuple[lmdb.Environment, dict[str, Any]]:
        pid = os.getpid()
        cached = self._cached
        if cached is not None and cached[0] == pid and cached[1] == _GENERATION:
            return cached[2], cached[3]
        key = os.path.realpath(self.path)
        with _LOCK:
            entry = _ENVS.get(key)
            if entry is not None and entry[0] == pid:
                self._cached = (pid, _GENERATION, entry[1], entry[2])
                return entry[1], entry[2]
            if entry is not None:  # inherited through fork: close it, open our own
                entry[1].close()
                del _ENVS[key]
            env, dbs = self._open()
            _ENVS[key] = (pid, env, dbs)
            self._cached = (pid, _GENERATION, env, dbs)
            return env, dbs

    @property
    def env(self) -> lmdb.Environment:
        return self._handles()[0]

    def _open(self) -> tuple[lmdb.Environment, dict[str, Any]]:
        created = not exists(self.path)
        if created and not self.create:
            raise StoreNotFound(
                f"no feature store at {self.path}",
                "Check --workspace (or LUGPI_WORKSPACE); a store is created by the first command that "
                "writes to it, e.g. `lugpi generate DATASET`.",
            )
        if created:
            self.path.mkdir(parents=True, exist_ok=True)
        readonly = not created and (
            self.want_readonly if self.want_readonly is not None else not os.access(self.path, os.W_OK)
        )
        on_disk = _data_file(self.path).stat().st_size if not created else 0
        size = max(self.initial_map_size, on_disk)
        try:
            env = lmdb.open(
                str(self.path),
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
                lock=not readonly or (os.access(self.path / "lock.mdb", os.W_OK) if self.want_lock is None
                                      else self.want_lock),
            )
        except lmdb.InvalidError as exc:
            raise CorruptStore(f"the store file {_data_file(self.path)} is not a readable LMDB file ({exc})",
                               TRUNCATED_HINT) from exc
        except lmdb.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
        try:
            check_length(env, _data_file(self.path))
        except CorruptStore:
            env.close()
            raise
        if not readonly:
            env.reader_check()  # clear reader slots left by killed processes
        dbs = self._open_dbs(env, readonly=readonly)
        self._check_schema(env, dbs, readonly=readonly)
        return env, dbs

    def _open_dbs(self, env: lmdb.Environment, *, readonly: bool = False) -> dict[str, Any]:
        if readonly:
            try:  # no txn= here: a handle opened inside a read transaction dies with it
                return {ns: env.open_db(ns.encode(), create=False) for ns in NAMESPACES}
            except lmdb.Error as exc:
                raise StoreError(
                    f"the read-only store at {self.path} lacks a namespace ({exc})",
                    "It was not written by lugpi, or not finished; open it once from a writable copy.",
                ) from exc
        while True:
            try:
                with _begin(env, write=True) as txn:
                    return {ns: env.open_db(ns.encode(), txn=txn, create=True) for ns in NAMESPACES}
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)

    def _check_schema(self, env: lmdb.Environment, dbs: dict[str, Any], *, readonly: bool = False) -> None:
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
                f"the store at {self.path} has schema version {version}, newer than this lugpi reads "
                f"({SCHEMA_VERSION})",
                "Upgrade lugpi (pip install -U lugpi) to use this store; nothing was changed.",
            )

    @property
    def readonly(self) -> bool:
        """Whether this store refuses writes (asked for, or its directory is not writable)."""
        return bool(self.want_readonly) or bool(self.env.flags()["readonly"])

    def _refuse_write(self) -> None:
        if self.want_readonly:
            why = "opened with readonly=True"
        elif os.access(self.path, os.W_OK):  # another Store opened this environment read-only in this process
            why = "already open read-only in this process"
        else:
            why = "its directory is not writable"
        raise StoreError(
            f"the store at {self.path} is read-only ({why})",
            "Read from it as it is, or copy it into a writable workspace with "
            "`lugpi store merge PATH` and work there.",
        )

    def require_writable(self) -> "Store":
        """Fail now, before any work, if a command that writes would be refused later."""
        if self.want_readonly or (exists(self.path) and not os.access(self.path, os.W_OK)):
            self._refuse_write()
        return self

    @contextmanager
    def _txn(self, *, write: bool = False) -> Iterator[tuple[Any, dict[str, Any]]]:
        env, dbs = self._handles()
        if write and (self.want_readonly or env.flags()["readonly"]):
            self._refuse_write()
        txn = _begin(env, write=write)
        try:
            yield txn, dbs
        except BaseException:
            txn.abort()
            raise
        else:
            txn.commit()

    @contextmanager
    def reader(self) -> Iterator["Reader"]:
        """A read transaction for many gets; zero-copy decodes are valid inside it."""
        with self._txn() as (txn, dbs):
            yield Reader(txn, dbs, self.path)

    # -- writes -----------------------------------------------------------
    def write(self, batch: Mapping[str, Iterable[tuple[bytes, bytes]]], *, overwrite: bool = False) -> int:
        """Commit records in several namespaces in ONE transaction; return how many were new.

        Keys are sorted before insertion. If the map fills, it is doubled and the
        whole batch retried, so a batch is either fully committed or not at all.
        """
        prepared = {ns: sorted((_as_key(k), bytes(v)) for k, v in items) for ns, items in batch.items()}
        for ns in prepared:
            _check_ns(ns)
        if not any(prepared.values()) and not self._pending:
            return 0
        while True:
            try:
                added = 0
                pending = dict(self._pending)
                with self._txn(write=True) as (txn, dbs):
                    for ns, items in prepared.items():
                        with txn.cursor(dbs[ns]) as cur:
                            added += cur.putmulti(items, overwrite=overwrite)[1]
                    for key in sorted(pending):  # registrations and pointers travel with the first record
                        txn.put(key, pending[key], db=dbs["meta"], overwrite=True)
                for key, value in pending.items():
                    if self._pending.get(key) is value:
                        del self._pending[key]
                return added
            except lmdb.MapFullError:
                env = self.env
                env.set_mapsize(env.info()["map_size"] * 2)

    def flush(self) -> None:
        """Commit the deferred meta records now (a command that succeeded without writing a record)."""
        if self._pending:
            self.write({})

    def put_many(self, namespace: str, items: Iterable[tuple[bytes, bytes]], *, overwrite: bool = False) -> int:
        """Write encoded records into one namespace in one transaction."""
        return self.write({namespace: items}, overwrite=overwrite)

    def put(self, namespace: str, key: bytes | str, record: bytes, *, overwrite: bool = False) -> bool:
        return self.put_many(namespace, [(key, record)], overwrite=overwrite) == 1

    def delete_many(self, namespace: str, keys: Iterable[bytes | str]) -> int:
        _check_ns(namespace)
        with self._txn(write=True) as (txn, dbs):
            return sum(bool(txn.delete(_as_key(k), db=dbs[namespace])) for k in sorted(keys, key=_as_key))

    # -- reads ------------------------------------------------------------
    def get(self, namespace: str, key: bytes | str, *, verify: bool = True) -> Any:
        """The decoded record (copied out of the map), or ``None``.

        Its CRC32 is checked (``verify``): a corrupt record raises
        :class:`CorruptRecord` naming the key, never a silent input.
        """
        if self._pending and namespace == "meta" and _as_key(key) in self._pending:
            return codec.decode(self._pending[_as_key(key)])
        if self.defer_meta and self._cached is None and not self.exists:  # nothing stored: don't create it
            _check_ns(namespace)
            return None
        env, dbs = self._handles()
        txn = _begin(env)
        try:
            value = txn.get(_as_key(key), db=dbs[namespace])
            return None if value is None else _decode(value, namespace, key, self.path, verify=verify)
        except KeyError:
            _check_ns(namespace)
            raise
        finally:
            txn.abort()

    def get_many(self, namespace: str, keys: Sequence[bytes | str], *, verify: bool = True) -> list[Any]:
        """Decoded records for ``keys`` in order (``None`` where missing), one transaction."""
        with self.reader() as r:
            return [r.get(namespace, k, verify=verify) for k in keys]

    def get_raw(self, namespace: str, key: bytes | str) -> bytes | None:
        with self.reader() as r:
            return r.get_raw(namespace, key)

    def contains_many(self, namespace: str, keys: Sequence[bytes | str]) -> list[bool]:
        if self.defer_meta and self._cached is None and not self.exists:
            return [False] * len(keys)
        with self.reader() as r:
            return [r.contains(namespace, k) for k in keys]

    def keys(self, namespace: str, prefix: bytes | str = b"") -> list[bytes]:
        """All keys (optionally under a prefix), sorted."""
        return [k for k, _ in self.iter_raw(namespace, prefix)]

    def iter_raw(self, namespace: str, prefix: bytes | str = b"", *, batch: int = 4096) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, record bytes)`` in key order, copying out in short transactions.

        Short read transactions keep a long scan from pinning old pages while
        writers commit.
        """
        _check_ns(namespace)
        pre = _as_key(prefix) if prefix else b""
        start = pre
        first = True
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            with self._txn() as (txn, dbs):
                cur = txn.cursor(dbs[namespace])
                ok = cur.set_range(start) if start else cur.first()
                while ok:
                    k = bytes(cur.key())
                    if pre and not k.startswith(pre):
                        break
                    if first or k != start:
                        chunk.append((k, bytes(cur.value())))
                    if len(chunk) >= batch:
                        break
                    ok = cur.next()
            yield from chunk
            if len(chunk) < batch:
                return
            start, first = chunk[-1][0], False

    def sizes(self, namespace: str) -> Iterator[tuple[bytes, int]]:
        """``(key, value length)`` for every record, without reading the values' pages."""
        _check_ns(namespace)
        with self._txn() as (txn, dbs):
            return iter([(bytes(k), len(v)) for k, v in txn.cursor(dbs[namespace]).iternext()])

    def count(self, namespace: str) -> int:
        _check_ns(namespace)
        with self._txn() as (txn, dbs):
            return txn.stat(dbs[namespace])["entries"]

    # -- metadata ---------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        return self.get("meta", key.encode("utf-8"))

    def put_meta(self, key: str, value: Any, *, overwrite: bool = True, defer: bool = False) -> None:
        """Write a JSON meta record; ``defer`` (on a ``defer_meta`` store) holds it for the next write."""
        if defer and self.defer_meta:
            self._pending[key.encode("utf-8")] = codec.encode_json(value)
            return
        self.put("meta", key.encode("utf-8"), codec.encode_json(value), overwrite=overwrite)

    def register(self, namespace: str, fp: str, config: Any) -> None:
        """Record which config a fingerprint stands for (shown by ``store info``).

        Raises :class:`StoreError` if a different fingerprint already owns the
        same 16-hex prefix (a collision the key scheme cannot tolerate).
        """
        _check_ns(namespace)
        key = FP_META_PREFIX + fingerprint_prefix(fp).encode("ascii")
        existing = self.get("meta", key)
        if existing is not None:
            if existing.get("fingerprint") != fp:
                raise StoreError(
                    f"fingerprint prefix collision: {fp} vs {existing.get('fingerprint')} in {self.path}"
                )
            if namespace in existing.get("namespaces", []):
                return
            existing["namespaces"] = sorted({*existing.get("namespaces", []), namespace})
            self._put_registration(key, existing, overwrite=True)
            return
        entry = {"fingerprint": fp, "namespaces": [namespace], "config": config}
        self._put_registration(key, entry, overwrite=False)

    def _put_registration(self, key: bytes, entry: dict[str, Any], *, overwrite: bool) -> None:
        if self.defer_meta:  # registered together with the producer's first record
            self._pending[key] = codec.encode_json(entry)
        else:
            self.put("meta", key, codec.encode_json(entry), overwrite=overwrite)

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        """Registered fingerprints: ``{prefix: {"fingerprint", "namespaces", "config"}}``."""
        return {
            k[len(FP_META_PREFIX):].decode("ascii"): codec.decode(v)
            for k, v in self.iter_raw("meta", FP_META_PREFIX)
        }

    def map_size(self) -> int:
        return self.env.info()["map_size"]


TRUNCATED_HINT = (
    "It was cut short (an incomplete copy, a full disk) and reading it would crash. Nothing was read or written. "
    "Restore data.mdb from where it came from (the original store or a backup); or move the store directory "
    "aside and rerun the commands, which recompute what is missing (records kept in other intact stores, e.g. "
    "each node's workspace, can be combined with `lugpi store merge`).")


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


class Reader:
    """Gets inside one read transaction."""

    def __init__(self, txn: Any, dbs: dict[str, Any], path: Path | None = None):
        self._txn = txn
        self._dbs = dbs
        self._path = path

    def get_raw(self, namespace: str, key: bytes | str) -> bytes | None:
        value = self._txn.get(_as_key(key), db=self._db(namespace))
        return None if value is None else bytes(value)

    def get(self, namespace: str, key: bytes | str, *, verify: bool = True, copy: bool = True) -> Any:
        """The decoded record (CRC checked unless ``verify=False``), or ``None``."""
        value = self._txn.get(_as_key(key), db=self._db(namespace))
        return None if value is None else _decode(value, namespace, key, self._path, verify=verify, copy=copy)

    def contains(self, namespace: str, key: bytes | str) -> bool:
        with self._txn.cursor(self._db(namespace)) as cur:
            return cur.set_key(_as_key(key))

    def _db(self, namespace: str) -> Any:
        try:
            return self._dbs[namespace]
        except KeyError:
            _check_ns(namespace)
            raise


def _decode(value: Any, namespace: str, key: bytes | str, path: Path | None, *, verify: bool,
            copy: bool = True) -> Any:
    try:
        return codec.decode(value, verify=verify, copy=copy)
    except CorruptRecord as exc:
        name = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key
        where = f" in the store at {path}" if path is not None else ""
        raise CorruptRecord(
            f"record {namespace}/{name}{where} is corrupt ({exc.message}); it was not used",
            "Run `lugpi store verify` to list every corrupt record, delete them with `lugpi store gc --corrupt`, "
            "then rerun the command that produced them: only they are recomputed.") from None
    except (IndexError, struct.error) as exc:  # a header too damaged to parse its fields
        raise CorruptRecord(f"record {namespace}/{key!r} is corrupt ({exc})",
                            "Run `lugpi store verify`, then `lugpi store gc --corrupt`.") from None


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


def is_local_meta(key: bytes) -> bool:
    """Workspace-local meta records (schema, "latest" pointers, failure notes) are not merged."""
    return key == SCHEMA_KEY or key.startswith(LOCAL_META_PREFIXES[1:])


def _begin(env: lmdb.Environment, *, write: bool = False) -> Any:
    """Begin a transaction, adopting the map size if another process grew it."""
    while True:
        try:
            return env.begin(write=write, buffers=not write)
        except lmdb.MapResizedError:
            env.set_mapsize(0)


def _as_key(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _check_ns(namespace: str) -> None:
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown store namespace {namespace!r}; use one of {', '.join(NAMESPACES)}")
