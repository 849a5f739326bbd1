"""Resolving a stage's data set: from its files or the workspace's snapshot, for a run or for a plan."""

from __future__ import annotations

from typing import Any

from lugpi_cli.stages.common import DatasetParams
from lugpi_cli.workspace import Workspace


def planned_dataset(ws: Workspace, dataset: DatasetParams):
    """The data set a plan reads (its snapshot, or its files), writing nothing. Read once per workspace object
    (a command's, a recipe run's): every stage of a plan, every cell of a grid, plans the same data."""
    from lugpi_cli.data.snapshot import resolve_dataset

    if dataset not in ws.planned_datasets:
        ws.planned_datasets[dataset] = resolve_dataset(dataset.request(), ws.existing_store(), persist=False)
    return ws.planned_datasets[dataset]


def dataset_and_request(dataset: DatasetParams, store) -> tuple[Any, dict[str, Any]]:
    """The (limited) data set and a JSON description that lets later stages find it again."""
    from lugpi_cli.data.snapshot import describe_request, limit_dataset
    from lugpi_cli.multinode import resolve_training_dataset

    request = dataset.request()
    full = resolve_training_dataset(dataset.without_limit().request(), store)  # multi-node: rank 0 writes
    ds = limit_dataset(full, request.limit)
    origin = {"origin": full.origin} if full.origin else {}  # a Hugging Face data set's id, revision, fingerprints
    return ds, {**describe_request(request), "full_fingerprint": full.fingerprint(), **origin}
