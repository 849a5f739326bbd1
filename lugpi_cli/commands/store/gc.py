"""``lugpi store gc``: delete records by fingerprint, or the corrupt ones."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.commands.store import existing_store, store_app
from lugpi_cli.errors import UserError
from lugpi_store import maintenance


@store_app.command("gc")
def gc_command(
    keep: Annotated[
        Optional[list[str]],
        typer.Option("--keep-fingerprint", "-k", help="Keep only these fingerprints (≥ 6 hex digits); delete the rest."),
    ] = None,
    drop: Annotated[
        Optional[list[str]], typer.Option("--drop-fingerprint", "-d", help="Delete exactly these fingerprints.")
    ] = None,
    namespace: Annotated[
        Optional[list[str]], typer.Option("--namespace", "-n", help="Only these namespaces (default: all data).")
    ] = None,
    corrupt: Annotated[bool, typer.Option("--corrupt", help="Delete exactly the records `lugpi store verify` "
                                          "finds corrupt; rerunning their commands recomputes them.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Delete records by fingerprint (see `lugpi store info`), or the corrupt ones. LMDB reuses the freed pages."""
    console.use_json(json_out)
    if not keep and not drop and not corrupt:
        raise UserError("nothing to do: give --keep-fingerprint FP..., --drop-fingerprint FP... or --corrupt",
                        "List the fingerprints with `lugpi store info`.")
    if sum(map(bool, (keep, drop, corrupt))) > 1:
        raise UserError("give one of --keep-fingerprint, --drop-fingerprint and --corrupt, not both")
    store = existing_store()
    store.require_writable()
    if corrupt:
        result = maintenance.drop_corrupt(store, dry_run=dry_run)
    else:
        result = maintenance.gc(store, keep=keep, drop=drop, namespaces=namespace or maintenance.DATA_NAMESPACES,
                                dry_run=dry_run)

    def render(out: Console) -> None:
        verb = "Would delete" if dry_run else "Deleted"
        out.print(f"{verb} {result['records']} records.")
        for ns, by_fp in result["deleted"].items():
            for fp, n in by_fp.items():
                out.print(f"  {ns:9} {fp or '(other)'}  {n}")

    console.emit(result, render)
