"""``lugpi data show``: what a data set holds after preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import DatasetArg, JsonFlag, stage_dataset_options
from lugpi_cli.data import dataset_summary, download_dataset
from lugpi_cli.reports.tables import counts_table
from lugpi_cli.stages.common import dataset_params
from lugpi_cli.stages.data import planned_dataset

data_app = typer.Typer(help="Inspect data sets (counts, labels, cleaned examples, prompts).", no_args_is_help=True)


def show_command(
    dataset: DatasetArg,
    examples: Annotated[int, typer.Option("--examples", "-n", min=0, help="Cleaned examples to print.")] = 3,
    data_options: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Counts per split and label, distinct prompts, and a few cleaned examples with their prompts."""
    state = console.use_json(json_out)
    ds = planned_dataset(state.space, dataset_params({"name": dataset, **data_options}))
    summary = dataset_summary(ds)
    summary["fingerprint"] = ds.fingerprint()

    def render(out: Console) -> None:
        out.print(f"[bold]{ds.name}[/] from {ds.source}  (fingerprint {summary['fingerprint'][:16]})")
        out.print(counts_table(summary["splits"], ds.label_names))
        if ds.skipped:
            out.print("skipped: " + ", ".join(f"{n} {why}" for why, n in ds.skipped.items()))
        for sample in ds.samples("train")[:examples]:
            text = ds.display_text(sample)
            out.print(f"\n[bold]{sample.id}[/] label={ds.label_names[sample.label]}")
            out.print(f"  text:   {text[:300]}{'…' if len(text) > 300 else ''}", markup=False)
            out.print(f"  prompt: {sample.prompt[:200]}{'…' if len(sample.prompt) > 200 else ''}", markup=False)

    console.emit(summary, render)


@data_app.command("download")
def download_command(
    name: Annotated[str, typer.Argument(help="imdb or 20newsgroups (CWI 2018 must be fetched by hand).")],
    dest: Annotated[Optional[Path], typer.Option("--dest", help="Folder (default: the user cache, "
                                                 "where loaders look).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Download a data set's canonical archive (checksum-verified) to where the loaders find it."""
    console.use_json(json_out)
    path = download_dataset(name.lower(), dest)
    console.emit({"dataset": name.lower(), "path": str(path)}, lambda out: out.print(f"{name}: {path}"))


data_app.command("show")(stage_dataset_options(show_command))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
