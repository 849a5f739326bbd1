"""info, verify, gc and merge — through the library and through `lugpi store ...`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lugpi_store import MergeConflict, Store, encode_array, encode_image, fingerprint, maintenance, record_key

GEN = {"model": "tiny-sd", "steps": 2}
ENC = {"encoder": "tiny-clip", "pooling": "cls"}
GEN_FP, ENC_FP = fingerprint(GEN), fingerprint(ENC)


def _fill(path, n_images=4, n_features=3, offset=0, value=0.0) -> Store:
    store = Store(path, create=True)
    store.register("images", GEN_FP, GEN)
    store.register("features", ENC_FP, ENC)
    store.put_many("images", [(record_key(GEN_FP, f"p{i}", 0), encode_image(bytes([i]) * 100, "png"))
                              for i in range(offset, offset + n_images)])
    store.put_many("features", [(record_key(ENC_FP, f"p{i}"), encode_array(np.full(8, i + value, np.float16)))
                                for i in range(offset, offset + n_features)])
    return store


def _corrupt_one(store: Store) -> bytes:
    key = store.keys("features")[0]
    raw = bytearray(store.get_raw("features", key))
    raw[-1] ^= 0xFF
    store.put("features", key, bytes(raw), overwrite=True)
    return key


def test_info_counts_per_namespace_and_fingerprint(tmp_path):
    store = _fill(tmp_path / "s")
    result = maintenance.info(store)
    images = result["namespaces"]["images"]
    assert images["records"] == 4
    assert images["bytes"] == sum(len(store.get_raw("images", k)) for k in store.keys("images"))
    assert images["fingerprints"][GEN_FP[:16]]["config"] == GEN
    assert images["fingerprints"][GEN_FP[:16]]["records"] == 4
    assert result["namespaces"]["features"]["fingerprints"][ENC_FP[:16]]["records"] == 3
    assert result["schema"]["schema_version"] == 1


def test_verify_finds_exactly_the_corrupt_record(tmp_path):
    store = _fill(tmp_path / "s")
    assert maintenance.verify(store).ok
    key = _corrupt_one(store)
    report = maintenance.verify(store)
    assert report.checked == 4 + 3 + len(store.keys("meta"))
    assert [(ns, k) for ns, k, _ in report.corrupt] == [("features", key.decode())]
    assert "CRC" in report.corrupt[0][2]


def test_gc_keep_drop_and_dry_run(tmp_path):
    store = _fill(tmp_path / "s")
    dry = maintenance.gc(store, drop=[GEN_FP[:8]], dry_run=True)
    assert dry["deleted"]["images"] == {GEN_FP[:16]: 4} and store.count("images") == 4
    other = fingerprint({"encoder": "other"})
    store.register("features", other, {"encoder": "other"})
    store.put_many("features", [(record_key(other, "p0"), encode_array(np.zeros(8, np.float16)))])
    maintenance.gc(store, keep=[ENC_FP[:10]])
    # --keep prunes the namespace the kept fingerprint lives in, and leaves the others alone
    assert store.count("features") == 3 and store.count("images") == 4
    assert other[:16] not in store.fingerprints() and ENC_FP[:16] in store.fingerprints()
    maintenance.gc(store, drop=[GEN_FP[:10]])
    assert store.count("images") == 0 and GEN_FP[:16] not in store.fingerprints()
    with pytest.raises(Exception, match="no fingerprint"):
        maintenance.gc(store, drop=["abcdef"])


def test_merge_identical_overlap_is_fine(tmp_path):
    a = _fill(tmp_path / "a", offset=0)
    _fill(tmp_path / "b", offset=2)  # p2, p3 overlap with identical bytes
    result = maintenance.merge(a, [tmp_path / "b"])
    assert result["added"]["images"] == 2 and result["added"]["features"] == 2
    assert a.count("images") == 6 and a.count("features") == 5
    assert maintenance.verify(a).ok
    assert maintenance.merge(a, [tmp_path / "b"])["added"]["images"] == 0  # idempotent


def test_merge_conflict_writes_nothing(tmp_path):
    a = _fill(tmp_path / "a", offset=0)
    _fill(tmp_path / "b", offset=1, n_images=0, value=0.5)  # same feature keys, other bytes
    _fill(tmp_path / "c", offset=10)
    before = a.count("features")
    with pytest.raises(MergeConflict) as info:
        maintenance.merge(a, [tmp_path / "c", tmp_path / "b"])
    assert {k for _, k, _ in info.value.conflicts} == {record_key(ENC_FP, f"p{i}").decode() for i in (1, 2)}
    assert a.count("features") == before and a.count("images") == 4  # not even c's records


def test_merge_refuses_a_corrupt_source(tmp_path):
    a = _fill(tmp_path / "a")
    b = _fill(tmp_path / "b", offset=5)
    _corrupt_one(b)
    with pytest.raises(Exception, match="corrupt"):
        maintenance.merge(a, [tmp_path / "b"])
    assert a.count("features") == 3


# -- the CLI -----------------------------------------------------------------

def test_cli_info_verify_gc(cli, workspace):
    store = _fill(workspace / "store")
    info = json.loads(cli("store", "info", "--json").stdout)
    assert info["namespaces"]["images"]["records"] == 4
    human = cli("store", "info").stdout
    assert GEN_FP[:16] in human and "tiny-sd" in human
    assert json.loads(cli("--json", "store", "verify").stdout)["ok"] is True
    key = _corrupt_one(store)
    result = cli("store", "verify", code=1)
    assert key.decode() in result.stdout
    out = json.loads(cli("store", "verify", "--json", code=1).stdout)
    assert out["corrupt"][0]["key"] == key.decode()
    cli("store", "gc", "--drop-fingerprint", ENC_FP[:12])
    cli("store", "verify")
    assert Store(workspace / "store").count("features") == 0


def test_cli_merge_and_conflict(cli, workspace, tmp_path):
    _fill(workspace / "store")
    _fill(tmp_path / "other" / "store", offset=2)
    result = json.loads(cli("store", "merge", tmp_path / "other", "--json").stdout)  # a workspace path works
    assert result["added"]["images"] == 2
    _fill(tmp_path / "bad", offset=0, n_images=0, value=0.25)
    err = cli("store", "merge", tmp_path / "bad", code=1).stderr
    assert "different bytes" in err and "Nothing was written" in err and "Traceback" not in err
    assert "no feature store" in cli("store", "merge", tmp_path / "missing", code=1).stderr


def test_cli_user_errors(cli, workspace):
    assert "no feature store" in cli("store", "info", code=1).stderr
    _fill(workspace / "store")
    assert "too short" in cli("store", "gc", "--drop-fingerprint", "ab", code=1).stderr
    assert "nothing to do" in cli("store", "gc", code=1).stderr
    assert "unknown namespace" in cli("store", "verify", "-n", "pictures", code=1).stderr


# -- a read-only store (a shared store mounted or shipped read-only) ---------

def _not_writable(monkeypatch, root):
    """Make ``root`` and everything under it look read-only to the store (works as root too)."""
    import os

    import lugpi_store.lmdb_store as lmdb_store

    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and str(os.path.realpath(path)).startswith(str(os.path.realpath(root))):
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(lmdb_store.os, "access", access)


def test_a_read_only_store_is_read_merged_from_and_refuses_writes(tmp_path, monkeypatch, cli, workspace):
    from lugpi_store import StoreError, close_all

    shared = tmp_path / "shared" / "store"
    _fill(shared)
    before = {ns: Store(shared).keys(ns) for ns in ("images", "features", "meta")}
    close_all()
    _not_writable(monkeypatch, tmp_path / "shared")

    ro = Store(shared)
    assert ro.readonly
    assert maintenance.info(ro)["namespaces"]["features"]["records"] == 3
    assert maintenance.verify(ro).ok
    assert ro.get_many("features", [record_key(ENC_FP, "p1")])[0][0] == 1.0
    with pytest.raises(StoreError, match="read-only") as info:
        ro.put("features", record_key(ENC_FP, "new"), encode_array(np.zeros(2, np.float16)))
    assert "lugpi store merge" in info.value.hint

    # the workspace's own store stays writable; merging from the read-only one works, from the CLI too
    _fill(workspace / "store", offset=10)
    out = json.loads(cli("store", "merge", shared, "--json").stdout)
    assert (out["added"]["images"], out["added"]["features"]) == (4, 3)
    assert json.loads(cli("store", "info", "--json").stdout)["namespaces"]["images"]["records"] == 8
    close_all()
    monkeypatch.undo()
    assert {ns: Store(shared).keys(ns) for ns in ("images", "features", "meta")} == before


def test_a_store_opened_read_only_on_request(tmp_path):
    from lugpi_store import StoreError, close_all

    _fill(tmp_path / "s")
    close_all()
    ro = Store(tmp_path / "s", readonly=True)
    assert ro.readonly and ro.count("images") == 4
    with pytest.raises(StoreError, match="read-only"):
        ro.delete_many("images", ro.keys("images"))
    assert Store(tmp_path / "s", readonly=True).count("images") == 4
    # one environment per process: the mode a Store asked for still holds when another opened it first
    close_all()
    writer = Store(tmp_path / "s")
    assert writer.count("images") == 4 and not writer.readonly
    with pytest.raises(StoreError, match="opened with readonly=True"):
        Store(tmp_path / "s", readonly=True).put("images", b"k", b"v")
    close_all()
    Store(tmp_path / "s", readonly=True).count("images")
    with pytest.raises(StoreError, match="already open read-only in this process"):
        Store(tmp_path / "s").put("images", b"k", b"v")
    close_all()


def test_commands_that_write_refuse_a_read_only_workspace_before_any_work(cli, workspace, monkeypatch):
    _fill(workspace / "store")
    _not_writable(monkeypatch, workspace)
    err = cli("generate", "imdb", "--model", "/nonexistent/model", code=1).stderr
    assert "read-only" in err and "its directory is not writable" in err and "Traceback" not in err
    assert json.loads(cli("store", "info", "--json").stdout)["namespaces"]["images"]["records"] == 4  # reads work
