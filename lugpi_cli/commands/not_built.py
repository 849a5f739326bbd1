"""Commands whose issue has not landed yet: registered, documented, exit code 2."""

from __future__ import annotations

import typer

from lugpi_cli.errors import NotBuiltError

_PENDING = {
    "generate": ("Generate a privileged image for every prompt of a data set (diffusers) into the store.", 3),
    "embed": ("Embed the generated images with a frozen CLIP/ViT encoder into the store.", 4),
    "train-teacher": ("Train the multimodal (text + image) teacher and cache its outputs.", 4),
    "distill": ("Distil a text-only student from the cached teacher outputs.", 4),
    "evaluate": ("Compare runs: metrics, McNemar / Cochran's Q significance, teacher-student agreement.", 5),
    "ablate": ("Run a grid of distill settings and analyse it (mean ± std, ANOVA, heatmap).", 5),
}


def _make(name: str, summary: str, issue: int):
    def command(ctx: typer.Context) -> None:
        raise NotBuiltError(
            f"`lugpi {name}` is not built yet (planned in issue #{issue}); nothing was done.",
            "See README.md for what works today.",
        )

    command.__doc__ = f"{summary} [not built yet]"
    return command


def register(app: typer.Typer, names: tuple[str, ...] | None = None) -> None:
    for name, (summary, issue) in _PENDING.items():
        if names is None or name in names:
            app.command(
                name,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                add_help_option=True,
            )(_make(name, summary, issue))
