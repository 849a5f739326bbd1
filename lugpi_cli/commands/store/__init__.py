"""``lugpi store info|verify|gc|merge``: inspect and maintain the feature store (one module per subcommand)."""

from __future__ import annotations

from pathlib import Path

import typer

from lugpi_cli import console
from lugpi_cli.errors import UserError
from lugpi_store import Store

SUBCOMMANDS = ("info", "verify", "gc", "merge")
store_app = typer.Typer(
    help="Inspect and maintain the feature store (info, verify, gc, merge).",
    no_args_is_help=True,
)


def existing_store(path: Path | None = None) -> Store:
    store = Store(path) if path is not None else console.state().open_store()
    if not store.exists:
        raise UserError(
            f"no feature store at {store.path}",
            "Check --workspace / LUGPI_WORKSPACE; the store is created by the first command that writes, "
            "e.g. `lugpi generate DATASET`.",
        )
    return store


def register(app: typer.Typer) -> None:
    import importlib

    for name in SUBCOMMANDS:  # each module registers its subcommand on store_app, in this order
        importlib.import_module(f"lugpi_cli.commands.store.{name}")

    app.add_typer(store_app, name="store")
