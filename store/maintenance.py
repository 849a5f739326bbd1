"""Whole-store operations: info, verify, gc, merge.

They read in short transactions and write in batches, so they can run while
other processes use the store.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lugpi_store import codec
from lugpi_store.errors import CorruptRecord, CorruptStore, MergeConflict, StoreError
from lugpi_store.keys import FP_PREFIX_LEN
from lugpi_store.lmdb_store import FAILED_META_PREFIX, FP_META_PREFIX, NAMESPACES, SCHEMA_KEY, Store, is_local_meta

DATA_NAMESPACES = tuple(ns for ns in NAMESPACES if ns != "meta")
MERGE_BATCH_BYTES = 64 << 20


def _group(key: bytes) -> str:
    """The fingerprint prefix of a data key ('' for keys of another shape)."""
    text = key[:FP_PREFIX_LEN + 1].decode("ascii", errors="replace")
    return text[:FP_PREFIX_LEN] if text[FP_PREFIX_LEN:FP_PREFIX_LEN + 1] == "/" else ""


def info(store: Store) -> dict[str, Any]:
    """Counts and bytes per namespace and per fingerprint, with each fingerprint's config."""
    registry = store.fingerprints()
    namespaces: dict[str, Any] = {}
    failed = 0
    for ns in NAMESPACES:
        per_fp: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        total = [0, 0]
        for key, size in store.sizes(ns):
            total[0] += 1
            total[1] += size
            if ns == "meta" and key.startswith(FAILED_META_PREFIX):
                failed += 1
            elif ns != "meta":
                slot = per_fp[_group(key)]
                slot[0] += 1
                slot[1] += size
        namespaces[ns] = {
            "records": total[0],
            "bytes": total[1],
            "fingerprints": {
                fp: {
                    "records": n,
                    "bytes": b,
                    "fingerprint": registry.get(fp, {}).get("fingerprint"),
                    "config": registry.get(fp, {}).get("config"),
                }
                for fp, (n, b) in sorted(per_fp.items())
            },
        }
    data_file = store.path / "data.mdb"
    return {
        "path": str(store.path),
        "schema": store.get("meta", SCHEMA_KEY),
        "file_bytes": data_file.stat().st_size if data_file.exists() else 0,
        "map_size": store.map_size(),
        "namespaces": namespaces,
        "failed_prompts": failed,  # images an earlier `generate` could not draw; the next run retries them
    }


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)  # (namespace, key, reason)
    damaged: CorruptStore | None = None  # the file itself (truncated): no record could be read safely

    @property
    def ok(self) -> bool:
        return not self.corrupt and self.damaged is None


def verify(store: Store, namespaces: Iterable[str] = NAMESPACES) -> VerifyReport:
    """Check the data file's length against LMDB's page count, then every record's header and CRC32."""
    report = VerifyReport()
    try:
        store.env
    except CorruptStore as exc:
        report.damaged = exc
        return report
    for ns in namespaces:
        for key, raw in store.iter_raw(ns):
            report.checked += 1
            try:
                codec.check(raw)
            except CorruptRecord as exc:
                report.corrupt.append((ns, key.decode("utf-8", errors="replace"), exc.message))
    return report


def drop_corrupt(store: Store, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete exactly the records :func:`verify` finds corrupt (their producers recompute them on the next run)."""
    report = verify(store)
    if report.damaged is not None:
        raise report.damaged
    by_ns: dict[str, list[bytes]] = defaultdict(list)
    for ns, key, _ in report.corrupt:
        if ns != "meta" or not key.startswith(SCHEMA_KEY.decode()):
            by_ns[ns].append(key.encode("utf-8", errors="surrogateescape"))
    if not dry_run:
        for ns, keys in by_ns.items():
            store.delete_many(ns, keys)
    return {"dry_run": dry_run, "deleted": {ns: {"(corrupt)": len(keys)} for ns, keys in by_ns.items()},
            "records": sum(len(keys) for keys in by_ns.values()), "checked": report.checked}


def resolve_fingerprints(store: Store, given: Iterable[str]) -> list[str]:
    """Expand abbreviated fingerprints (at least 6 hex digits) to 16-hex prefixes.

    Fingerprints found only as key prefixes (never registered) count too.
    """
    known = set(store.fingerprints())
    for ns in DATA_NAMESPACES:
        known.update(_group(k) for k, _ in store.sizes(ns))
    known.discard("")
    out = []
    for fp in given:
        fp = fp.strip().lower()
        if len(fp) < 6:
            raise StoreError(f"fingerprint {fp!r} is too short", "Give at least 6 hex digits (see `lugpi store info`).")
        matches = sorted(k for k in known if k.startswith(fp[:FP_PREFIX_LEN]))
        if not matches:
            raise StoreError(f"no fingerprint {fp!r} in {store.path}", "See `lugpi store info` for the fingerprints it holds.")
        if len(matches) > 1:
            raise StoreError(f"fingerprint {fp!r} is ambiguous: {', '.join(matches)}", "Give more hex digits.")
        out.append(matches[0])
    return out


def gc(
    store: Store,
    *,
    keep: Iterable[str] | None = None,
    drop: Iterable[str] | None = None,
    namespaces: Iterable[str] = DATA_NAMESPACES,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Delete records by fingerprint: everything but ``keep``, or exactly ``drop``.

    ``keep`` prunes only the namespaces that hold records of a kept
    fingerprint (keeping one generator's images does not wipe every feature
    and teacher output). Returns what was (or, with ``dry_run``, would be)
    deleted per namespace and fingerprint. Registry entries of fully removed
    fingerprints go too.
    """
    if (keep is None) == (drop is None):
        raise StoreError("say which fingerprints to keep or which to drop, not both or neither")
    keep_set = set(resolve_fingerprints(store, keep)) if keep is not None else None
    drop_set = set(resolve_fingerprints(store, drop)) if drop is not None else None
    doomed: dict[str, dict[str, list[bytes]]] = {}
    for ns in namespaces:
        if ns not in DATA_NAMESPACES:
            raise StoreError(f"cannot gc namespace {ns!r}; choose from {', '.join(DATA_NAMESPACES)}")
        by_fp: dict[str, list[bytes]] = defaultdict(list)
        sizes = list(store.sizes(ns))
        if keep_set is not None and not any(_group(key) in keep_set for key, _ in sizes):
            continue  # nothing kept lives here: this namespace is not what --keep-fingerprint is about
        for key, _ in sizes:
            fp = _group(key)
            if (keep_set is not None and fp not in keep_set) or (drop_set is not None and fp in drop_set):
                by_fp[fp].append(key)
        doomed[ns] = by_fp
    deleted = {ns: {fp: len(keys) for fp, keys in by_fp.items()} for ns, by_fp in doomed.items()}
    if not dry_run:
        for ns, by_fp in doomed.items():
            for keys in by_fp.values():
                for start in range(0, len(keys), 10_000):
                    store.delete_many(ns, keys[start:start + 10_000])
        remaining = set()
        for ns in DATA_NAMESPACES:
            remaining.update(_group(k) for k, _ in store.sizes(ns))
        scope = set(namespaces)
        stale = [fp for fp, entry in store.fingerprints().items()
                 if fp not in remaining and set(entry.get("namespaces", [])) <= scope]
        if stale:
            store.delete_many("meta", [FP_META_PREFIX + fp.encode("ascii") for fp in stale])
    return {"dry_run": dry_run, "deleted": deleted, "records": sum(sum(d.values()) for d in deleted.values())}



def merge(dest: Store, sources: Iterable[str | Path], *, dry_run: bool = False) -> dict[str, Any]:
    """Copy every record of ``sources`` into ``dest``.

    Identical keys with identical bytes are skipped; any key holding different
    bytes in two stores is a :class:`MergeConflict` and nothing is written.
    Every source record's CRC is checked first: a corrupt source is refused.
    Workspace-local meta records (schema, ``latest/`` pointers, ``failed/``
    notes) are not copied; fingerprint registry entries are unioned.
    """
    srcs = [Store(p) for p in sources]
    for src in srcs:
        if Path(src.path).resolve() == Path(dest.path).resolve():
            raise StoreError(f"cannot merge the store {src.path} into itself")
    # Pass 1: read everything, find conflicts (across sources too) and corruption.
    plan = _merge_plan(dest, srcs)
    added = {ns: 0 for ns in NAMESPACES}
    if dry_run:
        for _, ns, new in plan:
            added[ns] += new
        return {"dry_run": True, "added": added, "sources": [str(s.path) for s in srcs]}
    # Pass 2: copy in batches, one transaction per batch.
    dest.create = True
    for src in srcs:
        _copy_records(dest, src, added)
    return {"dry_run": False, "added": added, "sources": [str(s.path) for s in srcs]}


def _not_merged(ns: str, key: bytes) -> bool:
    """Workspace-local meta records stay where they are; fingerprint registrations are unioned, not copied."""
    return ns == "meta" and (is_local_meta(key) or key.startswith(FP_META_PREFIX))


def _merge_plan(dest: Store, srcs: list[Store]) -> list[tuple[Store, str, int]]:
    """``(source, namespace, records it adds)``; raises :class:`MergeConflict` or, for a corrupt record,
    :class:`StoreError` before anything is written."""
    conflicts: list[tuple[str, str, str]] = []
    plan: list[tuple[Store, str, int]] = []
    seen: dict[tuple[str, bytes], tuple[int, str]] = {}
    for src in srcs:
        for ns in NAMESPACES:
            new = 0
            for key, raw in src.iter_raw(ns):
                if _not_merged(ns, key):
                    continue
                try:
                    codec.check(raw)
                except CorruptRecord as exc:
                    raise StoreError(
                        f"record {ns}/{key.decode(errors='replace')} in {src.path} is corrupt: {exc.message}",
                        "Run `lugpi store verify` on that store and drop the bad records; nothing was merged.",
                    ) from exc
                digest = (len(raw), _crc_of(raw))
                prior = seen.get((ns, key))
                if prior is not None:
                    if prior[0] != digest:
                        conflicts.append((ns, key.decode(errors="replace"), str(src.path)))
                    continue
                seen[(ns, key)] = (digest, str(src.path))
                existing = dest.get_raw(ns, key) if dest.exists else None
                if existing is not None:
                    if existing != raw:
                        conflicts.append((ns, key.decode(errors="replace"), str(src.path)))
                    continue
                new += 1
            plan.append((src, ns, new))
    if conflicts:
        raise MergeConflict(conflicts)
    return plan


def _copy_records(dest: Store, src: Store, added: dict[str, int]) -> None:
    """``src``'s fingerprint registrations and records into ``dest``, in batches of about
    ``MERGE_BATCH_BYTES`` (one transaction each); counts the new records into ``added``."""
    for fp_prefix, entry in src.fingerprints().items():
        for ns in entry.get("namespaces", []):
            dest.register(ns, entry["fingerprint"], entry.get("config"))
    for ns in NAMESPACES:
        batch: list[tuple[bytes, bytes]] = []
        size = 0
        for key, raw in src.iter_raw(ns):
            if _not_merged(ns, key):
                continue
            batch.append((key, raw))
            size += len(raw)
            if size >= MERGE_BATCH_BYTES:
                added[ns] += dest.put_many(ns, batch)
                batch, size = [], 0
        added[ns] += dest.put_many(ns, batch)


def _crc_of(raw: bytes) -> int:
    return zlib.crc32(raw) & 0xFFFFFFFF
