"""Short-lived claims, so concurrent identical runs (two shells, a job array without ``--shard``, a
restarted job while the old one still runs) share the work instead of each doing all of it.

Before each batch a process re-checks the store and, in ONE write transaction (LMDB serialises
writers, so two processes never take the same item), claims up to a batch of items that are neither
stored yet nor claimed by a live process: ``meta`` key ``claim/<namespace>/<record key>`` holding
the owner (host, pid, a random token) and an expiry time. A claim is released once its batch is
committed. A claim whose owner died is taken over: at once when the owner was on this host (its pid
is gone), otherwise when it expires (``ttl``: at least ``MIN_TTL`` s, and four times the slowest
batch so far). When only other processes' claims remain, the process waits for them (polling)
rather than drawing them again. Claims are workspace-local (never merged).

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
        self._held: set[int] = set()
        self._slowest = 0.0
        self._taken_at = 0.0
        self._batch_seconds: float | None = None  # how long the consumer took for its last batch
        self.transactions = 0  # claim transactions taken (what the lease saves)

    def _claim_key(self, i: int) -> bytes:
        return CLAIM_PREFIX + self.namespace.encode() + b"/" + self.keys[i]

    def _free(self, txn, dbs, i: int, now: float) -> bool | None:
        """Whether item ``i`` can be taken (None: it is stored already)."""
        if txn.get(self.keys[i], db=dbs[self.namespace]) is not None:
            return None
        raw = txn.get(self._claim_key(i), db=dbs["meta"])
        if raw is None:
            return True
        other = codec.decode(raw)
        return other.get("token") == self.owner["token"] or other.get("expires", 0) <= now or not _alive(other)

    def _take(self, size: int) -> tuple[list[int], int]:
        """Claim up to ``size`` free items in one write transaction; also how many others still hold.

        Items are scanned once in order; those another process holds are re-checked only when the
        scan has reached the end, so a batch costs about ``size`` look-ups, not one per item.
        """
        now = time.time()
        self.transactions += 1
        mine = codec.encode_json({**self.owner, "expires": now + max(self.ttl, 4 * self._slowest)})
        taken: list[int] = []
        with self.store._txn(write=True) as (txn, dbs):
            while len(taken) < size and self._next < len(self.keys):
                i, self._next = self._next, self._next + 1
                self._classify(txn, dbs, i, now, taken)
            live = 0
            if len(taken) < size or size == 0:
                for i in sorted(self._elsewhere):
                    free = self._free(txn, dbs, i, now)
                    if free is None:
                        self._elsewhere.discard(i)
                        self.by_others += 1
                    elif free and len(taken) < size:
                        self._elsewhere.discard(i)
                        taken.append(i)
                    elif not free:
                        live += 1
            for i in taken:
                txn.put(self._claim_key(i), mine, db=dbs["meta"], overwrite=True)
        self._held.update(taken)
        self._taken_at = time.monotonic()
        return taken, live

    def _classify(self, txn, dbs, i: int, now: float, taken: list[int]) -> None:
        free = self._free(txn, dbs, i, now)
        if free is None:
            self.by_others += 1
        elif free:
            taken.append(i)
        else:
            self._elsewhere.add(i)

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

    def release(self, positions: Sequence[int] | None = None) -> None:
        """Delete this process's claims (all, or on ``positions``)."""
        which = sorted(self._held if positions is None else set(positions) & self._held)
        if not which or not self.store.exists:
            return
        with self.store._txn(write=True) as (txn, dbs):
            for i in which:
                raw = txn.get(self._claim_key(i), db=dbs["meta"])
                if raw is not None and codec.decode(raw).get("token") == self.owner["token"]:
                    txn.delete(self._claim_key(i), db=dbs["meta"])
        self._held.difference_update(which)
