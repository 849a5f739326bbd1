"""The pieces of a multi-node run, in one process: launch detection, the node store, the merge."""

from __future__ import annotations

import pickle

import pytest

from lugpi_cli import multinode
from lugpi_cli.errors import UserError
from lugpi_store import Store, close_all, encode_json, maintenance


def _put(store: Store, ns: str, key: str, value) -> None:
    store.put(ns, key.encode(), encode_json(value))


def test_node_launch_only_when_the_world_spans_machines():
    assert multinode.node_launch({}) is None
    # one machine, two processes (accelerate launch --num_processes 2): as before
    assert multinode.node_launch({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}) is None
    assert multinode.node_launch({"RANK": "1", "WORLD_SIZE": "2"}) is None  # no LOCAL_WORLD_SIZE: not torchrun
    launch = multinode.node_launch({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                    "GROUP_RANK": "1"})
    assert (launch.rank, launch.world_size, launch.local_rank, launch.node_rank, launch.is_main) == (3, 4, 1, 1, False)
    # without GROUP_RANK the node rank follows from the global rank
    assert multinode.node_launch({"RANK": "5", "WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "2"}).node_rank == 2
    with pytest.raises(UserError, match="bad distributed environment"):
        multinode.node_launch({"RANK": "x", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})


def test_node_store_reads_both_and_writes_only_its_own(tmp_path):
    base = Store(tmp_path / "ws" / "store", create=True)
    _put(base, "images", "aaaa/1", {"from": "base"})
    _put(base, "images", "aaaa/3", {"from": "base"})
    close_all()
    node = multinode.NodeStore(tmp_path / "nodes" / "node-1", Store(tmp_path / "ws" / "store", readonly=True,
                                                                    lock=False))
    _put(node, "images", "aaaa/2", {"from": "node"})
    _put(node, "images", "aaaa/3", {"from": "node"})
    assert node.contains_many("images", [b"aaaa/1", b"aaaa/2", b"aaaa/4"]) == [True, True, False]
    assert node.get("images", b"aaaa/1") == {"from": "base"}
    assert [r and r["from"] for r in node.get_many("images", [b"aaaa/3", b"aaaa/1", b"zz"])] == ["node", "base", None]
    assert node.keys("images") == [b"aaaa/1", b"aaaa/2", b"aaaa/3"] and node.count("images") == 3
    assert node.get_raw("images", b"aaaa/1") is not None
    again = pickle.loads(pickle.dumps(node))  # what a DataLoader worker gets
    assert again.get("images", b"aaaa/1") == {"from": "base"} and again.group is None
    close_all()
    base = Store(tmp_path / "ws" / "store")
    assert base.keys("images") == [b"aaaa/1", b"aaaa/3"]  # the workspace store was never written
    assert Store(tmp_path / "nodes" / "node-1").keys("images") == [b"aaaa/2", b"aaaa/3"]


def test_merge_carries_pointers_and_pending_failures_then_removes_node_stores(tmp_path):
    ws = tmp_path / "ws" / "store"
    nodes = [tmp_path / "nodes" / f"node-{i}" for i in range(2)]
    zero, one = (Store(p, create=True) for p in nodes)
    _put(zero, "images", "aaaa/1", 1)
    _put(one, "images", "aaaa/2", 2)
    for store in (zero, one):
        store.put_meta("latest/generate/toy", {"generator_fingerprint": "aaaa"})
    _put(one, "meta", "failed/aaaa/3", {"reason": "NaN"})  # still pending
    _put(one, "meta", "failed/aaaa/1", {"reason": "NaN"})  # node 0 drew it after all
    close_all()
    out = multinode._merge_nodes(ws, nodes)
    assert out["merged_node_stores"] == 2 and out["merged"]["images"] == 2 and out["verified_records"] > 0
    merged = Store(ws)
    assert merged.keys("images") == [b"aaaa/1", b"aaaa/2"]
    assert merged.get_meta("latest/generate/toy") == {"generator_fingerprint": "aaaa"}
    assert merged.keys("meta", b"failed/") == [b"failed/aaaa/3"]
    assert maintenance.verify(merged).ok
    assert not any(p.exists() for p in nodes)
    assert multinode._merge_nodes(ws, []) == {"merged_node_stores": 0}


def test_a_node_store_node_0_cannot_see_is_named(tmp_path):
    seen = tmp_path / "node-0"
    Store(seen, create=True).put_meta("x", 1)
    close_all()
    with pytest.raises(UserError, match=r"node-1 \(node 1\)") as err:
        multinode._checked([(0, str(seen)), (1, str(tmp_path / "elsewhere" / "node-1"))])
    assert "--node-store" in err.value.hint
    assert multinode._checked([(0, str(seen)), (0, str(seen))]) == [seen]


def test_read_only_store_without_lock_table_reads(tmp_path):
    path = tmp_path / "store"
    _put(Store(path, create=True), "images", "aaaa/1", 1)
    close_all()
    (path / "lock.mdb").unlink()
    reader = Store(path, readonly=True, lock=False)
    assert reader.get("images", b"aaaa/1") == 1
    assert not (path / "lock.mdb").exists()  # no lock table was made
