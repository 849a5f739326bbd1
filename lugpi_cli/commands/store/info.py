"""``lugpi store info``: counts and bytes per namespace and per fingerprint, with each fingerprint's config."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.commands.store import existing_store, store_app
from lugpi_cli.reports.store_tables import _config_summary, human_bytes
from lugpi_store import maintenance


@store_app.command("info")
def info_command(json_out: JsonFlag = False) -> None:
    """Counts and bytes per namespace and per fingerprint, with each fingerprint's config."""
    console.use_json(json_out)
    store = existing_store()
    result = maintenance.info(store)

    def render(out: Console) -> None:
        out.print(f"Store [bold]{result['path']}[/] — {human_bytes(result['file_bytes'])} on disk, "
                  f"map {human_bytes(result['map_size'])}, schema {(result['schema'] or {}).get('schema_version')}")
        table = Table("namespace", "fingerprint", "records", "bytes", "config", box=None, pad_edge=False)
        for ns, entry in result["namespaces"].items():
            table.add_row(f"[bold]{ns}[/]", "", str(entry["records"]), human_bytes(entry["bytes"]), "")
            for fp, sub in entry["fingerprints"].items():
                config = sub["config"]
                shown = json.dumps(config, sort_keys=True) if console.state().verbose else _config_summary(config)
                table.add_row("", fp or "(other)", str(sub["records"]), human_bytes(sub["bytes"]), shown)
        out.print(table)
        if result["failed_prompts"]:
            out.print(f"{result['failed_prompts']} prompt(s) failed in an earlier `lugpi generate` "
                      "(NaN/inf images); the next run of it retries them.")

    console.emit(result, render)
