"""``lugpi store info|verify|gc|merge``: inspect and maintain the feature store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.errors import UserError
from lugpi_store import NAMESPACES, Store, maintenance

store_app = typer.Typer(
    help="Inspect and maintain the feature store (info, verify, gc, merge).",
    no_args_is_help=True,
)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


SUMMARY_FIRST = ("stage", "model", "run", "kind", "modality", "steps", "guidance", "height", "width", "scheduler",
                 "pooled_only", "dtype", "image_format")


def _config_summary(config: Any, width: int = 90) -> str:
    """The readable part of a fingerprint's config: names and settings first, no hashes."""
    if not isinstance(config, dict):
        return "(unregistered)" if config is None else str(config)[:width]
    config = _with_identities(config)
    keys = [k for k in SUMMARY_FIRST if k in config] + [k for k in config if k not in SUMMARY_FIRST]
    shown = [f"{k}={config[k]}" for k in keys
             if not isinstance(config[k], (dict, list)) and not _is_hash(config[k]) and config[k] is not None]
    text = ", ".join(shown)
    return text if len(text) <= width else text[: width - 1] + "…"


def local_model(identity: dict[str, Any]) -> str:
    """A local model as ``local:DIRECTORY@HASH8`` (the directory name when recorded, a short content hash),
    so two local models never look the same."""
    name = identity.get("directory")
    return f"local:{name}@{str(identity.get('content', ''))[:8]}" if name else \
        f"local@{str(identity.get('content', ''))[:8]}"


def _with_identities(config: dict[str, Any]) -> dict[str, Any]:
    """Model identities (``{"model": "local", "content": ...}``, also nested as ``text_model``) made readable."""
    out = dict(config)
    if out.get("model") == "local":
        out["model"] = local_model(out)
        out.pop("directory", None)
    for key, value in config.items():
        if isinstance(value, dict) and value.get("model") == "local":
            out[key] = local_model(value)
        elif isinstance(value, dict) and isinstance(value.get("model"), str) and set(value) <= {"model", "revision"}:
            out[key] = value["model"] + ("" if value.get("revision") in (None, "main") else f"@{value['revision']}")
    return out


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 32 and all(c in "0123456789abcdef" for c in value)


def _existing_store(path: Path | None = None) -> Store:
    store = Store(path) if path is not None else console.state().open_store()
    if not store.exists:
        raise UserError(
            f"no feature store at {store.path}",
            "Check --workspace / LUGPI_WORKSPACE; the store is created by the first command that writes, "
            "e.g. `lugpi generate DATASET`.",
        )
    return store


@store_app.command("info")
def info_command(json_out: JsonFlag = False) -> None:
    """Counts and bytes per namespace and per fingerprint, with each fingerprint's config."""
    console.use_json(json_out)
    store = _existing_store()
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


@store_app.command("verify")
def verify_command(
    namespace: Annotated[Optional[list[str]], typer.Option("--namespace", "-n", help="Only these namespaces.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check every record's header and CRC32; exit 1 if any record is corrupt."""
    console.use_json(json_out)
    store = _existing_store()
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
    store = _existing_store()
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


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
