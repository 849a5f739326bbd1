"""Record access inside a transaction: key and namespace checks, CRC-checked decoding, :class:`Reader`."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from lugpi_store import codec
from lugpi_store.errors import CorruptRecord

NAMESPACES = ("images", "features", "teacher", "meta")


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


def _as_key(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _check_ns(namespace: str) -> None:
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown store namespace {namespace!r}; use one of {', '.join(NAMESPACES)}")
