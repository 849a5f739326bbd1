"""The Store: batched writes, reads, map growth, schema, fork and DataLoader safety."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest

from lugpi_store import (
    SCHEMA_VERSION,
    SchemaError,
    Store,
    StoreError,
    StoreNotFound,
    close_all,
    encode_array,
    encode_bundle,
    encode_json,
    fingerprint,
    record_key,
)

FP = fingerprint({"test": "store"})


def _records(n: int, shape=(50, 768), start: int = 0):
    rng = np.random.default_rng(start)
    values = {record_key(FP, i): rng.standard_normal(shape).astype(np.float16) for i in range(start, start + n)}
    return values, [(k, encode_array(v)) for k, v in values.items()]


def test_missing_store_is_not_created_by_reads(tmp_path):
    store = Store(tmp_path / "nope")
    with pytest.raises(StoreNotFound, match="no feature store"):
        store.count("features")
    assert not (tmp_path / "nope").exists()


def test_put_many_get_many_and_idempotence(tmp_path):
    store = Store(tmp_path / "s", create=True)
    values, items = _records(30)
    assert store.put_many("features", items) == 30
    assert store.put_many("features", items) == 0  # the same keys again: nothing new
    assert store.count("features") == 30 and store.count("images") == 0
    keys = list(values)[::-1] + [record_key(FP, "missing")]
    got = store.get_many("features", keys)
    assert got[-1] is None
    for k, v in zip(keys, got):
        if v is not None:
            np.testing.assert_array_equal(v, values[k])
    assert store.contains_many("features", keys) == [True] * 30 + [False]
    assert store.keys("features") == sorted(values)


def test_reader_zero_copy_inside_a_transaction(tmp_path):
    store = Store(tmp_path / "s", create=True)
    values, items = _records(3, shape=(4,))
    store.put_many("features", items)
    with store.reader() as r:
        views = [r.get("features", k, copy=False) for k in values]
        assert all(not v.flags.owndata for v in views)
        copies = [v.copy() for v in views]
    for c, v in zip(copies, values.values()):
        np.testing.assert_array_equal(c, v)


def test_one_transaction_across_namespaces(tmp_path):
    store = Store(tmp_path / "s", create=True)
    added = store.write({
        "teacher": [(record_key(FP, "s1"), encode_bundle({"logits": np.zeros(2, np.float32)}))],
        "meta": [(b"note", encode_json({"x": 1}))],
    })
    assert added == 2
    assert store.get_meta("note") == {"x": 1}
    with pytest.raises(ValueError, match="unknown store namespace 'imgs'"):
        store.put_many("imgs", [])


def test_map_grows_geometrically_without_losing_a_batch(tmp_path):
    store = Store(tmp_path / "s", create=True, map_size=64 << 10)
    start = store.map_size()
    values, items = _records(120)  # ~9 MB into a 64 KiB map
    for b in range(0, 120, 40):
        assert store.put_many("features", items[b:b + 40]) == 40
    size = store.map_size()
    assert size >= 9 << 20 and (size // start) & (size // start - 1) == 0  # a power-of-two multiple
    for k, v in zip(values, store.get_many("features", list(values), verify=True)):
        np.testing.assert_array_equal(v, values[k])


def test_newer_schema_is_refused_and_nothing_is_changed(tmp_path, cli, workspace):
    store = Store(workspace / "store", create=True)
    _, items = _records(2, shape=(3,))
    store.put_many("features", items)
    store.put("meta", b"schema", encode_json({"schema_version": SCHEMA_VERSION + 1}), overwrite=True)
    close_all()
    with pytest.raises(SchemaError, match="newer"):
        Store(workspace / "store").count("features")
    close_all()
    result = cli("store", "info", code=1)
    assert "schema version 2" in result.stderr and "Upgrade lugpi" in result.stderr
    assert "Traceback" not in result.stderr


def test_fingerprint_registry(tmp_path):
    store = Store(tmp_path / "s", create=True)
    store.register("images", FP, {"test": "store"})
    store.register("images", FP, {"test": "store"})
    store.register("features", FP, {"test": "store"})
    entry = store.fingerprints()[FP[:16]]
    assert entry == {"fingerprint": FP, "namespaces": ["features", "images"], "config": {"test": "store"}}
    forged = FP[:16] + "0" * 48
    with pytest.raises(StoreError, match="collision"):
        store.register("images", forged, {})


def test_pickled_store_reopens_lazily(tmp_path):
    store = Store(tmp_path / "s", create=True)
    _, items = _records(2, shape=(3,))
    store.put_many("features", items)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.count("features") == 2
    assert "_env" not in pickle.dumps(store).decode("latin-1")


def _child_reads(store: Store, keys, queue) -> None:
    queue.put([None if v is None else v.tolist() for v in store.get_many("features", keys)])


def test_forked_child_reopens_instead_of_reusing_the_parents_handle(tmp_path):
    store = Store(tmp_path / "s", create=True)
    values, items = _records(5, shape=(3,))
    store.put_many("features", items)
    store.get("features", items[0][0])  # the parent has the environment open
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_reads, args=(store, list(values), queue))
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert got == [v.tolist() for v in values.values()]
    assert store.count("features") == 5  # the parent's handle still works


class _StoreDataset:
    def __init__(self, store: Store, keys):
        self.store, self.keys = store, keys

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        return self.store.get("features", self.keys[i])


def test_dataloader_workers_read_the_store(tmp_path):
    torch = pytest.importorskip("torch")
    store = Store(tmp_path / "s", create=True)
    values, items = _records(24, shape=(8, 16))
    store.put_many("features", items)
    keys = list(values)
    loader = torch.utils.data.DataLoader(_StoreDataset(store, keys), batch_size=4, num_workers=2)
    batches = torch.cat(list(loader))
    np.testing.assert_array_equal(batches.numpy(), np.stack([values[k] for k in keys]))
