"""Training stages under a multi-node launch, in one process: rank 0 alone writes the data set snapshot,
the other ranks wait for it and read it from the workspace store opened read-only without a lock table.

The barrier is the real :class:`lugpi_cli.node_group.Group` protocol's ``outcome`` replayed in one
process (rank 0's result, JSON round-tripped as through the launch's TCP store); the real rendezvous
runs in ``test_two_node_training.py``.
"""

from __future__ import annotations

import json

import pytest

from lugpi_cli import multinode
from lugpi_cli.console import State
from lugpi_cli.data.snapshot import LATEST_PREFIX, SNAPSHOT_PREFIX, DatasetRequest
from lugpi_cli.errors import UserError
from lugpi_store import Store, close_all

LAUNCH = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}


class ReplayedGroup:
    """``Group.outcome`` with rank 0's answer kept here instead of in the TCP store."""

    answers: dict[str, list] = {}
    made = 0

    def __init__(self, launch):
        self.launch = launch
        ReplayedGroup.made += 1

    def outcome(self, phase, work):
        if self.launch.is_main:
            try:
                ReplayedGroup.answers[phase] = ["ok", work()]
            except UserError as exc:
                ReplayedGroup.answers[phase] = ["error", exc.message, exc.hint]
        answer = json.loads(json.dumps(ReplayedGroup.answers[phase]))  # what crosses the TCP store
        if answer[0] == "error":
            raise UserError(answer[1], answer[2])
        return answer[1]

    def stop(self):
        pass


@pytest.fixture
def group(monkeypatch):
    ReplayedGroup.answers, ReplayedGroup.made = {}, 0
    monkeypatch.setattr(multinode, "Group", ReplayedGroup)
    return ReplayedGroup


def _as_rank(monkeypatch, rank: int) -> None:
    close_all()  # a new "process": no environment inherited from the other rank
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("GROUP_RANK", str(rank))
    for key, value in LAUNCH.items():
        monkeypatch.setenv(key, value)


def _table(path):
    path.write_text("text,label\n" + "".join(f"text {i},{('neg', 'pos')[i % 2]}\n" for i in range(20)))
    return path


def test_rank_0_writes_the_snapshot_the_others_read_it(tmp_path, monkeypatch, group):
    state = State(workspace=tmp_path / "ws")
    data = _table(tmp_path / "toy.csv")
    request = DatasetRequest(str(data), text_col="text", label_col="label")
    _as_rank(monkeypatch, 0)
    main_store = multinode.open_training_store(state)
    assert not main_store.want_readonly and main_store in state.opened  # rank 0: the writable workspace store
    ds0 = multinode.resolve_training_dataset(request, main_store)
    fp = ds0.fingerprint()
    close_all()  # committed now (not deferred to the command's end): the others read it next
    written = Store(state.store_path)
    assert written.get_meta(SNAPSHOT_PREFIX + fp) is not None
    assert written.get_meta(LATEST_PREFIX + "toy")["fingerprint"] == fp
    before = {ns: dict(written.iter_raw(ns)) for ns in ("meta", "images", "features", "teacher")}

    _as_rank(monkeypatch, 1)
    data.unlink()  # rank 1 never reads the source: the file may live on node 0's disk only
    state1 = State(workspace=tmp_path / "ws")
    store1 = multinode.open_training_store(state1)
    assert store1.want_readonly is True and store1.want_lock is False and not state1.opened
    ds1 = multinode.resolve_training_dataset(request, store1)
    assert ds1.fingerprint() == fp and ds1.splits == ds0.splits and ds1.label_names == ds0.label_names
    assert ds1.source == ds0.source
    flags = store1.env.flags()
    assert flags["readonly"] is True and flags["lock"] is False  # no reader table over the network
    with pytest.raises(Exception, match="read-only|readonly"):  # and no way to write
        store1.put_meta("x", 1)
    close_all()
    after = Store(state.store_path)
    assert {ns: dict(after.iter_raw(ns)) for ns in before} == before
    assert group.made == 2  # one barrier per rank


def test_rank_0_failing_is_the_same_error_on_every_rank(tmp_path, monkeypatch, group):
    request = DatasetRequest(str(tmp_path / "missing.csv"), text_col="text", label_col="label")
    errors = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank)
        state = State(workspace=tmp_path / "ws")
        with pytest.raises(UserError) as err:
            multinode.resolve_training_dataset(request, multinode.open_training_store(state))
        errors.append((err.value.message, err.value.hint))
    assert errors[0] == errors[1] and "does not exist" in errors[0][0]
    assert not (tmp_path / "ws" / "store").exists()


def test_one_machine_is_unchanged(tmp_path, monkeypatch, group):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")  # two processes on one machine: every rank as before
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    state = State(workspace=tmp_path / "ws")
    store = multinode.open_training_store(state)
    assert not store.want_readonly and store in state.opened
    ds = multinode.resolve_training_dataset(DatasetRequest(str(_table(tmp_path / "toy.csv")), text_col="text",
                                                           label_col="label"), store)
    assert group.made == 0 and len(ds.splits["train"]) > 0
