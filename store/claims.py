"""Short-lived claims, so concurrent identical runs (two shells, a job array without ``--shard``, a
restarted job while the old one still runs) share the work instead of each doing all of it.

Before a lease of batches a process re-checks the store and, in ONE write transaction (LMDB
serialises writers, so two processes never take the same item), claims up to a lease of items that
are neither stored yet nor claimed by a live process. A lease is one ``meta`` record
``claim/<namespace>/<owner token>/<n>`` holding the owner (host, pid, token), an expiry time and the
record keys it covers, so claiming costs one look-up per item and one write per lease, and a process
alone in the store reads no claims but its own prefix scan. Every claim of this process is deleted
at the end (:meth:`ClaimSet.release`), after its batches are committed. A claim whose owner died is
taken over: at once when the owner was on this host (its pid is gone), otherwise when it expires
(``ttl``: at least ``MIN_TTL`` s, and four times the slowest batch so far). When only other
processes' claims remain, the process waits for them (polling) rather than drawing them again.
Claims are workspace-local (never merged).

>>> claims = ClaimSet(store, "images", keys)                       # doctest: +SKIP
>>> for batch in claims.batches(8):  # positions into ``keys``; waits for others at the end  # doctest: +SKIP
...     draw_and_commit(batch)
...     claims.done(batch)
>>> claims.by_others                 # items other processes stored meanwhile                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Iterator, Sequence

from lugpi_store import codec
from lugpi_store.lmdb_store import Store, _as_key

CLAIM_PREFIX = b"claim/"
MIN_TTL = 600.0  # seconds; a first batch includes loading the model and warming up
POLL = 0.2  # seconds between re-checks while waiting for other processes' claims
LEASE_SECONDS = 1.0  # fast batches are claimed several at a time, one (synced) write transaction per ~second
MAX_LEASE = 32  # batches claimed at once at most


def _alive(owner: dict) -> bool:
    if owner.get("host") != socket.gethostname():
        return True  # cannot tell from here: the expiry decides
    try:
        os.kill(int(owner.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


class ClaimSet:
    """Claims on the items ``keys`` of ``namespace`` (their record keys) for this process."""

    def __init__(self, store: Store, namespace: str, keys: Sequence[bytes], *, ttl: float = MIN_TTL,
                 poll: float = POLL):
        self.store, self.namespace = store, namespace
        self.keys = [_as_key(k) for k in keys]
        self.ttl, self.poll = ttl, poll
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8)}
        self.by_others = 0  # items another process stored while this one ran
        self._next = 0  # scan position: items before it were taken, found stored, or are in _elsewhere
        self._elsewhere: set[int] = set()  # items a live process holds (re-checked when the scan is done)
        self._records: list[bytes] = []  # this process's lease records
        self._prefix = CLAIM_PREFIX + namespace.encode() + b"/"
        self._slowest = 0.0
        self._taken_at = 0.0
        self._batch_seconds: float | None = None  # how long the consumer took for its last batch
        self.transactions = 0  # claim transactions taken (what the lease saves)

    def _own_prefix(self) -> bytes:
        return self._prefix + self.owner["token"].encode() + b"/"

    def _held_by_others(self, txn, dbs, now: float) -> set[bytes]:
        """Record keys in other live processes' unexpired leases (a prefix scan: empty when alone)."""
        held: set[bytes] = set()
        own = self._own_prefix()
        cursor = txn.cursor(db=dbs["meta"])
        if not cursor.set_range(self._prefix):
            return held
        for key, raw in cursor.iternext():
            if not key.startswith(self._prefix):
                break
            if key.startswith(own):
                continue
            other = codec.decode(raw)
            if other.get("expires", 0) > now and _alive(other):
                held.update(k.encode("latin-1") for k in other.get("keys", ()))
        return held

    def _take(self, size: int) -> tuple[list[int], int]:
        """Claim up to ``size`` free items in one write transaction; also how many others still hold.

        Items are scanned once in order; those another process holds are re-checked only when the
        scan has reached the end, so a lease costs about ``size`` look-ups and one write.
        """
        now = time.time()
        self.transactions += 1
        taken: list[int] = []
        with self.store._txn(write=True) as (txn, dbs):
            held, items = self._held_by_others(txn, dbs, now), dbs[self.namespace]
            while len(taken) < size and self._next < len(self.keys):
                i, self._next = self._next, self._next + 1
                if txn.get(self.keys[i], db=items) is not None:
                    self.by_others += 1
                elif self.keys[i] in held:
                    self._elsewhere.add(i)
                else:
                    taken.append(i)
            live = 0
            if len(taken) < size or size == 0:
                for i in sorted(self._elsewhere):
                    if txn.get(self.keys[i], db=items) is not None:
                        self._elsewhere.discard(i)
                        self.by_others += 1
                    elif self.keys[i] in held:
                        live += 1
                    elif len(taken) < size:
                        self._elsewhere.discard(i)
                        taken.append(i)
            if taken:
                self._put_lease(txn, dbs, taken, now)
        self._taken_at = time.monotonic()
        return taken, live

    def _put_lease(self, txn, dbs, taken: list[int], now: float) -> None:
        record = self._own_prefix() + b"%08d" % len(self._records)
        lease = {**self.owner, "expires": now + max(self.ttl, 4 * self._slowest),
                 "keys": [self.keys[i].decode("latin-1") for i in taken]}
        txn.put(record, codec.encode_json(lease), db=dbs["meta"])
        self._records.append(record)

    def lease(self) -> int:
        """Batches to claim in the next transaction: 1 until a batch was timed, then enough for about
        ``LEASE_SECONDS`` of work (fast batches, e.g. embedding on a GPU, would otherwise pay a synced LMDB
        write per batch), at most ``MAX_LEASE``. Another process still finds every unclaimed item."""
        if not self._batch_seconds:
            return 1
        return max(1, min(MAX_LEASE, int(LEASE_SECONDS / max(self._batch_seconds, 1e-4))))

    def batches(self, size: int, *, wait: bool = True) -> Iterator[list[int]]:
        """Claimed batches of positions until every item is stored or attempted by this process.

        With ``wait`` it waits (polling) for items other live processes hold and releases this
        process's claims when it ends. Without, it stops when only those are left and keeps the
        claims (a DataLoader fetches batches ahead of the ones committed): then call
        :meth:`wait_for_others` and, at the very end, :meth:`release`. Several batches may be
        claimed in one transaction (:meth:`lease`); they are handed out one batch at a time.
        """
        leased: list[int] = []
        try:
            while True:
                if not leased:
                    leased, elsewhere = self._take(size * self.lease())
                    if not leased:
                        if not elsewhere or not wait:
                            return
                        time.sleep(self.poll)
                        continue
                batch, leased = leased[:size], leased[size:]
                started = time.monotonic()
                yield batch
                self._batch_seconds = time.monotonic() - started
        finally:
            if wait:
                self.release()

    def wait_for_others(self) -> bool:
        """Block until no other live process holds a claim here; whether items are left for this one."""
        while True:
            _, elsewhere = self._take(0)
            if not elsewhere:  # what is left in _elsewhere now is free (its owner died or its claim expired)
                return bool(self._elsewhere) or self._next < len(self.keys)
            time.sleep(self.poll)

    def done(self, positions: Sequence[int]) -> None:
        """The batch is committed (or failed): note how long it took (claims on stored items are moot;
        all of this process's claims are deleted together at the end)."""
        self._slowest = max(self._slowest, time.monotonic() - self._taken_at)

    def release(self) -> None:
        """Delete this process's claims (its lease records)."""
        if not self._records or not self.store.exists:
            return
        with self.store._txn(write=True) as (txn, dbs):
            for record in self._records:
                txn.delete(record, db=dbs["meta"])
        self._records.clear()
