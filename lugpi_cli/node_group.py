"""The ranks of a multi-node launch meeting through the launch's c10d TCP store: barriers and heartbeats.

``torchrun`` (which ``accelerate launch`` runs) sets up a TCP key-value store at
``MASTER_ADDR:MASTER_PORT`` for its rendezvous; ``torch.distributed.rendezvous("env://")``
connects to it. Nothing here needs a process group or a GPU backend.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lugpi_cli.errors import UserError

TIMEOUT_ENV = "LUGPI_NODE_TIMEOUT"  # seconds without a heartbeat after which a rank counts as dead
DEFAULT_TIMEOUT = 300.0
HEARTBEAT_SECONDS = 2.0
POLL_SECONDS = 0.5
CONNECT_TIMEOUT = 600
STORE_PREFIX = "lugpi-multinode"
_ROUNDS = itertools.count()  # every rank runs the same stages in the same order: one key space each


@dataclass(frozen=True)
class NodeLaunch:
    """This process's place in a launch over several machines."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class Group:
    """The ranks of a multi-node launch, met through the c10d TCP store ``torchrun`` sets up.

    A barrier polls the store rather than blocking in a collective, and every
    rank bumps a heartbeat counter while it works: a rank whose counter has not
    moved for ``LUGPI_NODE_TIMEOUT`` seconds (default 300) was killed or lost,
    and the ranks waiting for it stop with a message instead of hanging. A
    slow rank that is alive is waited for however long it takes.
    """

    def __init__(self, launch: NodeLaunch):
        import torch.distributed as dist

        self.launch = launch
        self.stale = _seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT)
        try:
            store, _, _ = next(dist.rendezvous("env://", timeout=timedelta(seconds=CONNECT_TIMEOUT)))
        except Exception as exc:  # noqa: BLE001 - a rendezvous problem is the user's to fix
            raise UserError(f"cannot reach the launch's rendezvous store ({exc})",
                            "Check MASTER_ADDR / MASTER_PORT and that every node runs the same command.") from exc
        self.store = dist.PrefixStore(f"{STORE_PREFIX}/{next(_ROUNDS)}/", store)
        self._seen: dict[int, tuple[int, float]] = {}
        self._stopped = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._beating, name="lugpi-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self.store.add(f"beat/{self.launch.rank}", 1)

    def _beating(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - the store host is gone: the waits report it
                return

    def stop(self) -> None:
        self._stopped.set()

    def arrive(self, phase: str, value: Any) -> None:
        self._call(self.store.set, f"{phase}/{self.launch.rank}", json.dumps(value))

    def wait_all(self, phase: str) -> list[Any]:
        """Wait until every rank has arrived at ``phase``; their values, by rank."""
        keys = [f"{phase}/{r}" for r in range(self.launch.world_size)]
        pending = list(range(self.launch.world_size))
        while pending:
            pending = [r for r in pending if not self._call(self.store.check, [keys[r]])]
            if pending:
                self._alive(pending)
                time.sleep(POLL_SECONDS)
        return [json.loads(self._call(self.store.get, key)) for key in keys]

    def outcome(self, phase: str, work: Any) -> Any:
        """Rank 0 runs ``work``; every rank gets its result, or raises the same error."""
        key = f"outcome/{phase}"
        if self.launch.is_main:
            try:
                result: list[Any] = ["ok", work()]
            except UserError as exc:
                result = ["error", exc.message, exc.hint]
            self._call(self.store.set, key, json.dumps(result))
        else:
            while not self._call(self.store.check, [key]):
                self._alive([0])
                time.sleep(POLL_SECONDS)
            result = json.loads(self._call(self.store.get, key))
        if result[0] == "error":
            raise UserError(result[1], result[2])
        return result[1]

    def _alive(self, ranks: list[int]) -> None:
        now = time.monotonic()
        for rank in ranks:
            count = int(self._call(self.store.add, f"beat/{rank}", 0))
            seen = self._seen.get(rank)
            if seen is None or seen[0] != count:
                self._seen[rank] = (count, now)
            elif now - seen[1] > self.stale:
                raise UserError(f"rank {rank} of the multi-node run has given no sign of life for "
                                f"{now - seen[1]:.0f} s (killed, or its node lost)",
                                "Re-run the same command on every node: finished work is kept in the node "
                                f"stores and resumed. ({TIMEOUT_ENV} sets how long to wait.)")

    def _call(self, op: Any, *args: Any) -> Any:
        try:
            return op(*args)
        except Exception as exc:  # noqa: BLE001 - the store's host (node 0's launcher) is gone
            raise UserError(f"lost the multi-node run's rendezvous store ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})",
                            "Node 0 stopped: re-run the same command on every node; finished work is kept "
                            "and resumed.") from exc


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError as exc:
        raise UserError(f"bad {name}={os.environ[name]!r}", "Give seconds, e.g. 300.") from exc
    if value <= 0:
        raise UserError(f"bad {name}={os.environ[name]!r}: must be positive", "Give seconds, e.g. 300.")
    return value
