"""``lugpi store verify``: every record's header and CRC32 checked; exit 1 if any is corrupt."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.commands.store import existing_store, store_app
from lugpi_cli.errors import UserError
from lugpi_store import NAMESPACES, maintenance


@store_app.command("verify")
def verify_command(
    namespace: Annotated[Optional[list[str]], typer.Option("--namespace", "-n", help="Only these namespaces.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check every record's header and CRC32; exit 1 if any record is corrupt."""
    console.use_json(json_out)
    store = existing_store()
    chosen = namespace or list(NAMESPACES)
    for ns in chosen:
        if ns not in NAMESPACES:
            raise UserError(f"unknown namespace {ns!r}", f"Choose from {', '.join(NAMESPACES)}.")
    report = maintenance.verify(store, chosen)
    result = {
        "checked": report.checked,
        "corrupt": [{"namespace": ns, "key": key, "reason": why} for ns, key, why in report.corrupt],
        "ok": report.ok,
    }
    if report.damaged is not None:
        result["file"] = {"path": str(store.path / "data.mdb"), "reason": report.damaged.message,
                          "hint": report.damaged.hint}

    def render(out: Console) -> None:
        if report.damaged is not None:
            out.print(f"[bold red]CORRUPT[/]: {report.damaged.message}", highlight=False)
            out.print(report.damaged.hint or "", markup=False, highlight=False)
            return
        if report.ok:
            out.print(f"[green]OK[/]: {report.checked} records checked, none corrupt.")
            return
        table = Table("namespace", "key", "problem", title=f"{len(report.corrupt)} corrupt of {report.checked}")
        for ns, key, why in report.corrupt:
            table.add_row(ns, key, why)
        out.print(table)
        out.print("Delete them with `lugpi store gc --corrupt` and rerun the command that produced them.")

    console.emit(result, render)
    if not report.ok:
        raise typer.Exit(1)
