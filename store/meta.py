"""The ``meta`` namespace: its key layout and the JSON records :class:`~lugpi_store.lmdb_store.Store` keeps there.

* ``schema``: the store's format version (:mod:`lugpi_store.environment` writes and checks it);
* ``fp/<16 hex>``: which config a fingerprint stands for (:meth:`MetaRecords.register`, shown by ``store info``);
* ``latest/...``, ``failed/<image key>``, ``claim/...``: workspace-local pointers, failure notes and
  claims (:mod:`lugpi_store.claims`), never merged between stores (:func:`is_local_meta`).
"""

from __future__ import annotations

from typing import Any

from lugpi_store import codec
from lugpi_store.errors import StoreError
from lugpi_store.keys import fingerprint_prefix
from lugpi_store.records import _check_ns

SCHEMA_KEY = b"schema"
SCHEMA_VERSION = 1
FP_META_PREFIX = b"fp/"
FAILED_META_PREFIX = b"failed/"  # failed/<image key>: a prompt `generate` could not draw (retried next run)
# meta keys that describe this workspace, not content: never merged between stores
LOCAL_META_PREFIXES = (SCHEMA_KEY, b"latest/", FAILED_META_PREFIX, b"claim/")  # claim/: store/claims.py


def is_local_meta(key: bytes) -> bool:
    """Workspace-local meta records (schema, "latest" pointers, failure notes) are not merged."""
    return key == SCHEMA_KEY or key.startswith(LOCAL_META_PREFIXES[1:])


class MetaRecords:
    """JSON meta records and the fingerprint registry, on top of a Store's ``get``/``put``/``iter_raw``.

    A ``defer_meta`` store holds registrations (and meta records written with
    ``defer=True``) in ``_pending``; its next write commits them with its records.
    """

    path: Any
    defer_meta: bool
    _pending: dict[bytes, bytes]

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
