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

The pieces live beside this module: :mod:`lugpi_store.environment` opens and
checks an environment, :mod:`lugpi_store.records` decodes records and holds
:class:`Reader`, :mod:`lugpi_store.meta` lays out the ``meta`` namespace (its
:class:`~lugpi_store.meta.MetaRecords` gives ``Store`` its meta and
fingerprint-registry methods). Their names stay importable from here.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import lmdb

from lugpi_store import codec
from lugpi_store.environment import (
    DEFAULT_MAP_SIZE,
    MAX_READERS,
    TRUNCATED_HINT,
    _begin,
    check_length,
    exists,
    open_environment,
)
from lugpi_store.errors import StoreError
from lugpi_store.meta import (
    FAILED_META_PREFIX,
    FP_META_PREFIX,
    LOCAL_META_PREFIXES,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    MetaRecords,
    is_local_meta,
)
from lugpi_store.records import NAMESPACES, Reader, _as_key, _check_ns, _decode

# Names imported from here before this module was split (every one still is).
__all__ = [
    "DEFAULT_MAP_SIZE",
    "FAILED_META_PREFIX",
    "FP_META_PREFIX",
    "LOCAL_META_PREFIXES",
    "MAX_READERS",
    "NAMESPACES",
    "SCHEMA_KEY",
    "SCHEMA_VERSION",
    "TRUNCATED_HINT",
    "Reader",
    "Store",
    "check_length",
    "close_all",
    "exists",
    "is_local_meta",
]

# One environment per (path, process). LMDB forbids opening the same
# environment twice in one process; a forked child closes the handle it
# inherited (which releases nothing of the parent's: fcntl locks and reader
# slots belong to the process) and opens its own.
_ENVS: dict[str, tuple[int, lmdb.Environment, dict[str, Any]]] = {}
_LOCK = threading.RLock()
_GENERATION = 0  # bumped by close_all(); invalidates the handles Store objects cache


def close_all() -> None:
    """Close every environment this process opened (tests, compaction)."""
    global _GENERATION
    with _LOCK:
        _GENERATION += 1
        for key, (_, env, _) in list(_ENVS.items()):
            env.close()
            del _ENVS[key]


class Store(MetaRecords):
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
            env, dbs = open_environment(self.path, create=self.create, map_size=self.initial_map_size,
                                        readonly=self.want_readonly, lock=self.want_lock)
            _ENVS[key] = (pid, env, dbs)
            self._cached = (pid, _GENERATION, env, dbs)
            return env, dbs

    @property
    def env(self) -> lmdb.Environment:
        return self._handles()[0]

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

    def map_size(self) -> int:
        return self.env.info()["map_size"]

