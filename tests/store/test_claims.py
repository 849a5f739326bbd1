"""Claim leases: fast batches are claimed several at a time (one synced write transaction for about a second of
work), yet every item is handed out once and another process still gets what is not claimed."""

from __future__ import annotations

import time

from lugpi_store import Store
from lugpi_store import claims as claims_module
from lugpi_store.claims import MAX_LEASE, ClaimSet


def _keys(n: int) -> list[bytes]:
    return [f"k{i:04d}".encode() for i in range(n)]


def test_fast_batches_are_claimed_several_per_transaction(tmp_path):
    store = Store(tmp_path / "s", create=True)
    claims = ClaimSet(store, "images", _keys(200))
    handed = [i for batch in claims.batches(2) for i in batch]  # the consumer takes microseconds per batch
    assert handed == list(range(200))  # each once, in order
    assert claims.transactions < 100 / 4  # 100 batches; one per batch without the lease
    assert claims.lease() == MAX_LEASE


def test_slow_batches_are_claimed_one_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_module, "LEASE_SECONDS", 0.01)
    store = Store(tmp_path / "s", create=True)
    claims = ClaimSet(store, "images", _keys(6))
    for _ in claims.batches(2):
        time.sleep(0.02)  # slower than the lease target
    assert claims.lease() == 1 and claims.transactions >= 3


def test_a_lease_leaves_the_rest_to_another_process(tmp_path):
    store = Store(tmp_path / "s", create=True)
    keys = _keys(200)
    first = ClaimSet(store, "images", keys)
    batches = first.batches(2, wait=False)
    got = [next(batches), next(batches)]  # the second transaction leases several batches
    second = ClaimSet(store, "images", keys)
    other = [i for batch in second.batches(2, wait=False) for i in batch]
    mine = [i for batch in got for i in batch] + [i for batch in batches for i in batch]
    assert sorted(mine + other) == list(range(200)) and not set(mine) & set(other)
    assert other  # the lease did not take everything


def test_a_lease_is_one_record_and_release_deletes_them(tmp_path):
    store = Store(tmp_path / "s", create=True)
    keys = _keys(200)
    claims = ClaimSet(store, "images", keys)
    batches = claims.batches(2, wait=False)
    handed = [i for batch in batches for i in batch]
    assert handed == list(range(200))
    records = store.keys("meta", b"claim/images/")
    assert len(records) == claims.transactions - 1  # one per lease; the last transaction found nothing left
    claimed = [k for r in records for k in store.get("meta", r)["keys"]]
    assert sorted(claimed) == [k.decode() for k in keys]  # every item claimed once
    claims.release()
    assert not store.keys("meta", b"claim/")


def test_an_expired_lease_is_taken_over(tmp_path):
    store = Store(tmp_path / "s", create=True)
    keys = _keys(10)
    stale = ClaimSet(store, "images", keys, ttl=0.0)
    stale.owner = {**stale.owner, "host": "another-host"}  # its pid cannot be checked from here
    assert stale._take(10)[0] == list(range(10))
    time.sleep(0.01)  # past its expiry (a ttl of 0 and no batch timed yet)
    fresh = ClaimSet(store, "images", keys)
    assert [i for batch in fresh.batches(5, wait=False) for i in batch] == list(range(10))
