"""``generate`` and ``embed`` over several machines: node-local stores, a barrier, one merge.

LMDB's locks live in a memory-mapped file and work between processes of one
machine only, so processes on different machines must never write one store
(a workspace on a shared file system included). Under a multi-node launch
(``WORLD_SIZE > LOCAL_WORLD_SIZE``: ``torchrun --nnodes N``, ``accelerate
launch --num_machines N``, either under Slurm's ``srun``):

1. every rank meets the others through the launch's c10d TCP store (barriers
   that poll it, and heartbeats, so a killed node stops the others instead
   of leaving them waiting);
2. global rank 0 merges node stores an interrupted run left behind into the
   workspace store (a resumed run starts from them), then the others go on;
3. every rank reads the workspace store read-only, without LMDB's lock table
   (nothing writes it until step 5), and writes into its node's own store,
   ``NODE_STORE_DIR/node-<node rank>`` (default ``WORKSPACE/nodes``), shared
   by the processes of that node only; the work is split across all ranks
   by global rank, as on one machine;
4. a barrier: every rank is done;
5. rank 0 merges every node store into the workspace store (``store merge``:
   identical records skipped, conflicting ones refused), carries over the
   ``latest/`` pointers and ``failed/`` notes, verifies every record's CRC,
   removes the node stores, and tells every rank the outcome.

The node stores must be readable from node 0 at the same path (the shared
file system the workspace is on, or another one): a node store node 0 cannot
see is an error naming it, and nothing is merged. Killed at any point, the
same command resumes: finished batches are in the node stores (step 2) or
already in the workspace store.

Training stages (``train-teacher``, ``distill``, ``ablate``) under a multi-node
launch write only from global rank 0 (run directory, teacher outputs, and the
data set's snapshot): :func:`open_training_store` gives every other rank the
workspace store read-only without LMDB's lock table, and
:func:`resolve_training_dataset` lets rank 0 alone read ``--data`` and commit
its snapshot while the others wait at a barrier, then read that snapshot.
"""

from __future__ import annotations

import heapq
import os
import shutil
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional, Sequence

import typer

from lugpi_cli.errors import UserError
from lugpi_cli.node_group import Group, NodeLaunch
from lugpi_store import Store, StoreError, close_all, maintenance
from lugpi_store.lmdb_store import FAILED_META_PREFIX, exists

NODE_DIR_NAME = "nodes"  # WORKSPACE/nodes/node-<node rank>: the default place of the node stores

NodeStoreOpt = Annotated[Optional[Path], typer.Option(
    "--node-store", help="Multi-node launches: the directory holding one store per node (node-<rank>), "
    "on a file system node 0 can read. Default WORKSPACE/nodes; unused on one machine.")]


def node_launch(env: dict[str, str] | None = None) -> NodeLaunch | None:
    """The multi-node launch this process belongs to, or ``None`` (one machine, as before).

    ``torchrun`` (and ``accelerate launch``, which runs it) set ``LOCAL_WORLD_SIZE``
    and ``GROUP_RANK`` (the node rank) besides ``RANK`` and ``WORLD_SIZE``.
    """
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", 1))
        local_world = int(env.get("LOCAL_WORLD_SIZE", 0) or 0)
        if local_world < 1 or world <= local_world:
            return None
        rank = int(env.get("RANK", 0))
        node = int(env.get("GROUP_RANK", env.get("NODE_RANK", rank // local_world)))
        return NodeLaunch(rank, world, int(env.get("LOCAL_RANK", 0)), local_world, node)
    except ValueError as exc:
        raise UserError(f"bad distributed environment: {exc}",
                        "Launch with torchrun or accelerate launch, which set RANK, WORLD_SIZE, "
                        "LOCAL_WORLD_SIZE and GROUP_RANK.") from exc


def node_store_dir(workspace: Path, given: Path | None) -> Path:
    return Path(given) if given is not None else Path(workspace) / NODE_DIR_NAME


def open_stage_store(state: Any, node_store: Path | None = None) -> Store:
    """The store ``generate`` / ``embed`` write to: the workspace's, or under a multi-node launch this
    node's (steps 1-3 of the module docstring). Pair it with :func:`finish_stage`."""
    launch = node_launch()
    if launch is None:
        return state.open_store(create=True)
    directory = node_store_dir(state.root, node_store)  # state: a Workspace
    workspace_store = Path(state.store_path)
    if exists(workspace_store):
        Store(workspace_store).require_writable()  # rank 0 will merge into it: refuse now, not at the end
    group = Group(launch)
    # leftovers of an interrupted run first, so a changed layout (nodes, batch size) cannot conflict
    group.outcome("start", lambda: _merge_nodes(workspace_store, _present_nodes(directory)))
    store = NodeStore(directory / f"node-{launch.node_rank}", Store(workspace_store, readonly=True, lock=False))
    store.env  # noqa: B018 - create it now (the node's ranks race to; LMDB serialises them)
    store.group = group
    return store


def finish_stage(store: Store) -> dict[str, Any] | None:
    """After the stage: nothing on one machine (``None``); under a multi-node launch, the barrier and
    rank 0's merge (steps 4-5), and what the command adds to its result."""
    group = getattr(store, "group", None)
    if not isinstance(store, NodeStore) or group is None:
        return None
    launch = group.launch
    close_all()
    try:
        group.arrive("done", [launch.node_rank, str(store.path)])
        places = group.wait_all("done") if launch.is_main else []  # the barrier
        outcome = group.outcome("merge", lambda: _merge_nodes(Path(store.base.path), _checked(places)))
        group.arrive("ack", 1)
        if launch.is_main:
            group.wait_all("ack")  # the others have read the outcome before rank 0 (a store host) leaves
    finally:
        group.stop()
    out: dict[str, Any] = {"node_rank": launch.node_rank, "rank": launch.rank, "world_size": launch.world_size,
                           "node_store": str(store.path)}
    return {**out, **outcome} if launch.is_main else out


def render(out: Any, nodes: dict[str, Any] | None) -> None:
    """The human line a multi-node rank adds to its command's output."""
    if not nodes:
        return
    where = f"node {nodes['node_rank']}, rank {nodes['rank']} of {nodes['world_size']}"
    if "verified_records" in nodes:
        added = sum(nodes["merged"].values())
        out.print(f"{where}: merged {nodes['merged_node_stores']} node store(s) into the workspace store "
                  f"({added} new records); verified {nodes['verified_records']} records.")
    else:
        out.print(f"{where}: wrote into {nodes['node_store']}; node 0 merged it into the workspace store.")



# -- training stages: rank 0 writes, the others read ------------------------------------


def open_training_store(state: Any) -> Store:
    """The store a training stage uses: the workspace's, writable; under a multi-node launch, on every rank
    but global rank 0 read-only and without LMDB's lock table (its reader table is per machine). That is
    safe because nothing writes while they read: rank 0 commits the data set snapshot before they start
    (:func:`resolve_training_dataset`) and writes teacher outputs only after training, when they are done."""
    launch = node_launch()
    if launch is None or launch.is_main:
        return state.open_store(create=True)
    return Store(state.store_path, readonly=True, lock=False)


def resolve_training_dataset(request: Any, store: Store) -> Any:
    """:func:`~lugpi_cli.data.snapshot.resolve_dataset` for training stages. Under a multi-node launch
    global rank 0 alone resolves the request (reading ``--data`` if need be) and commits the snapshot
    to the workspace store; the other ranks wait for it (a barrier) and then read that snapshot, never
    the source files and never writing (a failure on rank 0 is the same error on every rank)."""
    from lugpi_cli.data.snapshot import resolve_dataset

    launch = node_launch()
    if launch is None:
        return resolve_dataset(request, store)
    resolved: list[Any] = []

    def commit() -> dict[str, Any]:  # rank 0
        ds = resolve_dataset(request, store)
        store.flush()  # now, not with the command's first record: the other ranks read it next
        resolved.append(ds)
        return {"fingerprint": ds.fingerprint(), "source": ds.source, "origin": ds.origin}

    group = Group(launch)
    try:
        made = group.outcome("dataset", commit)
    finally:
        group.stop()
    return resolved[0] if launch.is_main else _dataset_of(made, store)


def _dataset_of(made: dict[str, Any], store: Store) -> Any:
    """The snapshot rank 0 committed, read without the lock table (whatever ``store`` was opened as)."""
    from lugpi_cli.data.snapshot import load_snapshot

    ds = load_snapshot(Store(store.path, readonly=True, lock=False), made["fingerprint"])
    if ds is None:
        raise UserError(f"rank 0 wrote the data set snapshot {made['fingerprint'][:16]} but this rank cannot "
                        f"find it in {store.path}",
                        "The workspace must be on a file system every node shares (the same path on each).")
    ds.source = made["source"]
    ds.origin = dict(made["origin"] or {})
    return ds

# -- the store a rank works in ---------------------------------------------------------


class NodeStore(Store):
    """Writes go to this node's store; reads see it and the workspace store (read-only, no lock table).

    Everything not overridden here (writes, deletes, claims) acts on the node store alone.
    """

    def __init__(self, path: str | os.PathLike, base: Store):
        super().__init__(path, create=True)
        self.base = base
        self.group: Group | None = None  # the ranks to meet at the end (set by open_stage_store)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "base": self.base}  # no group: DataLoader workers only read

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.group = None

    def __repr__(self) -> str:
        return f"NodeStore({str(self.path)!r}, base={self.base!r})"

    def _base(self) -> Store | None:
        return self.base if self.base.exists else None

    def get(self, namespace: str, key: bytes | str, *, verify: bool = False) -> Any:
        value = super().get(namespace, key, verify=verify)
        base = self._base()
        return base.get(namespace, key, verify=verify) if value is None and base is not None else value

    def get_many(self, namespace: str, keys: Sequence[bytes | str], *, verify: bool = False) -> list[Any]:
        values = super().get_many(namespace, keys, verify=verify)
        return self._fill(values, keys, lambda missing: self.base.get_many(namespace, missing, verify=verify))

    def get_raw(self, namespace: str, key: bytes | str) -> bytes | None:
        value = super().get_raw(namespace, key)
        base = self._base()
        return base.get_raw(namespace, key) if value is None and base is not None else value

    def contains_many(self, namespace: str, keys: Sequence[bytes | str]) -> list[bool]:
        have = super().contains_many(namespace, keys)
        base = self._base()
        if base is None or all(have):
            return have
        missing = [i for i, h in enumerate(have) if not h]
        for i, found in zip(missing, base.contains_many(namespace, [keys[i] for i in missing])):
            have[i] = found
        return have

    def iter_raw(self, namespace: str, prefix: bytes | str = b"", *, batch: int = 4096) -> Iterator[tuple[bytes, bytes]]:
        """Both stores' records in key order (the node's where both hold a key)."""
        base = self._base()
        if base is None:
            yield from super().iter_raw(namespace, prefix, batch=batch)
            return
        last = None
        # node records sort first among equal keys (tag 0), so the node's copy wins
        tagged = heapq.merge(((k, 0, v) for k, v in super().iter_raw(namespace, prefix, batch=batch)),
                             ((k, 1, v) for k, v in base.iter_raw(namespace, prefix, batch=batch)))
        for key, _, value in tagged:
            if key != last:
                yield key, value
            last = key

    def count(self, namespace: str) -> int:
        return sum(1 for _ in self.iter_raw(namespace))

    def _fill(self, values: list[Any], keys: Sequence[bytes | str], fetch: Any) -> list[Any]:
        missing = [i for i, v in enumerate(values) if v is None]
        if missing and self._base() is not None:
            for i, value in zip(missing, fetch([keys[i] for i in missing])):
                values[i] = value
        return values


# -- merging the node stores (global rank 0) --------------------------------------------


def _present_nodes(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("node-*") if exists(p)) if directory.is_dir() else []


def _checked(places: list[tuple[int, str]]) -> list[Path]:
    """The node stores every rank wrote, each once; one node 0 cannot see is an error."""
    paths: dict[str, int] = {}
    for node, path in places:
        paths.setdefault(path, node)
    unseen = [f"{path} (node {node})" for path, node in paths.items() if not exists(path)]
    if unseen:
        raise UserError(f"node 0 cannot see the node store(s) {', '.join(unseen)}",
                        "--node-store must be a directory on a file system every node shares with node 0 "
                        "(the default, WORKSPACE/nodes, is); re-run the same command there: finished "
                        "images are kept in the node stores.")
    return sorted(Path(p) for p in paths)


def _merge_nodes(workspace_store: Path, sources: list[Path]) -> dict[str, Any]:
    """Merge node stores into the workspace store, carry local meta over, verify, remove the sources."""
    if not sources:
        return {"merged_node_stores": 0}
    dest = Store(workspace_store, create=True)
    try:
        result = maintenance.merge(dest, sources)
    except StoreError as exc:
        raise UserError(f"merging the node stores into {workspace_store} failed: {exc.message}",
                        exc.hint or "Nothing was merged; the node stores are kept.") from exc
    _carry_local_meta(dest, sources)
    report = maintenance.verify(dest)
    if not report.ok:
        ns, key, why = report.corrupt[0]
        raise UserError(f"the merged store {workspace_store} has {len(report.corrupt)} corrupt record(s) "
                        f"(first {ns}/{key}: {why})",
                        "The node stores are kept; run `lugpi store verify` and `lugpi store gc`.")
    close_all()
    for source in sources:
        shutil.rmtree(source)
    return {"merged_node_stores": len(sources), "merged": result["added"], "verified_records": report.checked}


def _carry_local_meta(dest: Store, sources: list[Path]) -> None:
    """``latest/`` pointers (node 0's last, so its own win) and ``failed/`` notes still pending."""
    failed: list[tuple[bytes, bytes]] = []
    for source in sorted(sources, key=lambda p: p.name != "node-0"):
        src = Store(source)
        pointers = list(src.iter_raw("meta", b"latest/"))
        if pointers:
            dest.put_many("meta", pointers, overwrite=True)
        failed.extend(src.iter_raw("meta", FAILED_META_PREFIX))
    if failed:
        dest.put_many("meta", failed)
    notes = dest.keys("meta", FAILED_META_PREFIX)
    drawn = dest.contains_many("images", [k[len(FAILED_META_PREFIX):] for k in notes])
    done = [k for k, have in zip(notes, drawn) if have]
    if done:
        dest.delete_many("meta", done)
