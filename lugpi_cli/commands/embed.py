"""``lugpi embed DATASET --encoder clip|vit|MODEL``: frozen image features into the store."""

from __future__ import annotations

import typer
from rich.console import Console

from lugpi_cli import console, multinode, runtime
from lugpi_cli.commands.options import DatasetArg, JsonFlag, params_options, stage_dataset_options
from lugpi_cli.commands.stage_progress import stage_hooks
from lugpi_cli.stages import embed


def embed_command(dataset: DatasetArg, params: dict | None = None, data_options: dict | None = None,
                  json_out: JsonFlag = False) -> None:
    """Embed the generated images with a frozen CLIP/ViT encoder into the store.

    Stores, per image, the encoder's token sequence (last hidden state, CLS
    first, float16) and its pooled vector. Images shared by several samples are
    encoded once; a re-run embeds nothing; an interrupted run resumes.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    p = embed.Params.from_mapping(params, dataset={"name": dataset, **data_options})
    with stage_hooks("embed", p) as hooks:
        result = embed.run(state.space, p, **hooks)
    console.emit(result.to_json(), lambda out: render(out, result))
    error = embed.failure(result)
    if error is not None:
        raise error


def render(out: Console, result: embed.Result) -> None:
    summary = result.summary
    out.print(f"{summary.images} distinct images: {summary.embedded} embedded, {summary.reused} already in "
              f"the store, {summary.missing_images} missing.")
    if summary.tokens_shape or summary.pooled_dim:
        out.print(f"features: tokens {summary.tokens_shape or '-'}  pooled {summary.pooled_dim}  "
                  f"(encoder fingerprint {summary.encoder_fingerprint[:16]}, {result.encoder})")
    multinode.render(out, result.multinode)


def register(app: typer.Typer) -> None:
    app.command("embed")(stage_dataset_options(params_options(embed.Params)(embed_command)))
