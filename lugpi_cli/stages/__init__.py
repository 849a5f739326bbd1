"""The stages every entry point calls: a command, a recipe step and an ablation cell.

One module per stage. Each has a ``Params`` dataclass (checked once, from a plain mapping, by
``Params.from_mapping``), ``plan(workspace, params)`` (fingerprints, run names and cache state without loading a
model: what ``--dry-run`` prints) and ``run(workspace, params)`` returning a result whose ``to_json()`` is what
``--json`` prints. See :mod:`lugpi_cli.stages.params` and :class:`lugpi_cli.workspace.Workspace`.
"""
