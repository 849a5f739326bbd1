"""``lugpi export RUN DIR``: a run's model, tokenizer and model card in a clean directory; optionally to the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag


def export_command(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A finished run: its name under WORKSPACE/runs or its "
                                       "directory.")],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Where the model goes (created; an earlier "
                                              "export of the same run there is replaced).")],
    push_to_hub: Annotated[Optional[str], typer.Option("--push-to-hub", metavar="REPO_ID", help="Also upload the "
                                                       "directory to this Hugging Face model repo (created if "
                                                       "needed; needs `hf auth login` or HF_TOKEN).")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repo private.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another model already in DIR.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Copy a run's model to DIR: config, safetensors weights, tokenizer and a model card (README.md).

    Nothing of training (checkpoints, optimizer state, predictions) and nothing
    pickled is copied. A student exports as a plain transformers model
    (AutoModelForSequenceClassification / pipeline("text-classification")).
    """
    from lugpi_cli.export import check_repo_id, export_run, push_to_hub as push
    from lugpi_cli.training.runs import find_run

    state = console.use_json(json_out)
    if push_to_hub:
        check_repo_id(push_to_hub)
    the_run = find_run(state.runs_path, run)
    store = state.open_store()
    result = export_run(the_run, directory, store=store if store.exists else None, overwrite=overwrite,
                        reference=push_to_hub)
    if push_to_hub:
        result.pushed = push(result.directory, push_to_hub, private=private, run_name=the_run.name)

    def render(out) -> None:
        out.print(f"Exported {the_run.name} to {result.directory}: {', '.join(result.files)}")
        if result.skipped:
            out.print(f"  not exported: {', '.join(result.skipped)}")
        if result.pushed:
            out.print(f"  pushed to {result.pushed}")

    console.emit(result.to_json(), render)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
