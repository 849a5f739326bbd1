"""``lugpi store merge``: stores written elsewhere merged into the workspace's store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.commands.store import store_app
from lugpi_cli.errors import UserError
from lugpi_store import maintenance


@store_app.command("merge")
def merge_command(
    sources: Annotated[list[Path], typer.Argument(help="Store directories (or workspaces) to merge into this workspace's store.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check for conflicts and count, write nothing.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Merge stores written on other machines or by other processes into this workspace's store.

    Identical keys with identical bytes are fine; a key with different bytes in
    two stores is an error and nothing is written.
    """
    console.use_json(json_out)
    resolved = [_store_dir(p) for p in sources]
    dest = console.state().open_store(create=True)
    result = maintenance.merge(dest, resolved, dry_run=dry_run)

    def render(out: Console) -> None:
        verb = "Would add" if dry_run else "Added"
        parts = ", ".join(f"{n} {ns}" for ns, n in result["added"].items() if n)
        out.print(f"{verb} {parts or 'nothing new'} from {len(resolved)} store(s) into {dest.path}.")

    console.emit(result, render)


def _store_dir(path: Path) -> Path:
    """Accept a store directory or a workspace holding ``store/``."""
    for candidate in (path, path / "store"):
        if (candidate / "data.mdb").exists():
            return candidate
    raise UserError(f"no feature store at {path}", "Pass a store directory (holding data.mdb) or a workspace.")
