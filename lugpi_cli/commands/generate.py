"""``lugpi generate DATASET``: one privileged image per distinct prompt, into the store."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console, multinode, runtime
from lugpi_cli.commands.options import DatasetArg, JsonFlag, params_options, stage_dataset_options
from lugpi_cli.commands.stage_progress import stage_hooks
from lugpi_cli.stages import generate

SHOWN = ("samples", "distinct_prompts", "generated", "reused", "reused_similar", "truncated", "failed", "retried",
         "other_shards")
SHOWN_IF_ANY = ("other_shards", "reused_similar", "retried")


def generate_command(dataset: DatasetArg, params: dict | None = None, data_options: dict | None = None,
                     json_out: JsonFlag = False) -> None:
    """Generate a privileged image for every distinct prompt of a data set (diffusers) into the store.

    Identical prompts are drawn once; images already in the store are reused; an
    interrupted run resumes where it stopped.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    p = generate.Params.from_mapping(params, dataset={"name": dataset, **data_options})
    with stage_hooks("generate", p) as hooks:
        result = generate.run(state.space, p, **hooks)
    console.emit(result.to_json(), lambda out: render(out, result))
    error = generate.failure(result)
    if error is not None:
        raise error


def render(out: Console, result: generate.Result) -> None:
    summary, shown = result.summary, result.to_json()
    table = Table(box=None, show_header=False)
    for name in SHOWN:
        if name not in SHOWN_IF_ANY or shown[name]:
            table.add_row(name.replace("_", " "), str(shown[name]))
    out.print(table)
    if summary.generated:
        out.print(f"{summary.generated} images in {summary.seconds:.1f} s "
                  f"({summary.images_per_second:.2f} img/s on {result.device}).")
    elif not summary.failed:
        out.print("Nothing to generate: every image is already in the store.")
    out.print(f"generator fingerprint {summary.generator_fingerprint[:16]}  ({result.model})")
    multinode.render(out, result.multinode)


def register(app: typer.Typer) -> None:
    app.command("generate")(stage_dataset_options(params_options(generate.Params)(generate_command)))
