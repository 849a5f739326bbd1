"""The background store writer: order, overlap, errors, and nothing lost on leaving the block."""

from __future__ import annotations

import threading
import time

import pytest

from lugpi_cli.writer import BackgroundWriter
from lugpi_store import Store


def test_jobs_run_in_order_on_another_thread_and_all_finish_on_exit():
    done: list[tuple[int, str]] = []
    with BackgroundWriter() as writer:
        for i in range(20):
            writer.submit(lambda i=i: (time.sleep(0.001), done.append((i, threading.current_thread().name))))
    assert [i for i, _ in done] == list(range(20))
    assert {name for _, name in done} == {"lugpi-store-writer"}


def test_a_job_overlaps_the_callers_next_work():
    started, release = threading.Event(), threading.Event()
    with BackgroundWriter() as writer:
        writer.submit(lambda: (started.set(), release.wait(5)))
        assert started.wait(5)  # the job is running while the caller goes on
        release.set()


def test_depth_bounds_the_waiting_jobs():
    gate = threading.Event()
    writer = BackgroundWriter(depth=1).__enter__()
    writer.submit(gate.wait)  # taken by the worker
    time.sleep(0.05)
    writer.submit(lambda: None)  # waits in the queue (its only slot)
    blocked = threading.Thread(target=writer.submit, args=(lambda: None,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # a third submit blocks until the worker catches up
    gate.set()
    blocked.join(5)
    writer.close()


def test_a_failing_job_is_raised_in_the_caller_and_later_jobs_are_skipped():
    ran: list[int] = []

    def boom():
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        with BackgroundWriter() as writer:
            writer.submit(boom)
            time.sleep(0.05)
            writer.submit(ran.append, 1)  # raises the earlier failure instead of queueing
    assert ran == []


def test_an_exception_in_the_block_still_commits_what_was_submitted(tmp_path):
    store = Store(tmp_path / "s", create=True)
    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter() as writer:
            for i in range(3):
                writer.submit(store.put_many, "meta", [(f"k{i}".encode(), b"v")])
            raise KeyboardInterrupt
    assert store.contains_many("meta", [b"k0", b"k1", b"k2"]) == [True, True, True]


def test_depth_zero_runs_inline():
    names: list[str] = []
    with BackgroundWriter(depth=0) as writer:
        writer.submit(lambda: names.append(threading.current_thread().name))
    assert names == [threading.current_thread().name]
    with pytest.raises(ValueError):
        BackgroundWriter(depth=-1)
