"""``lugpi probe DATASET --encoder clip``: kNN accuracy of cached features (faiss), per split and class."""

from __future__ import annotations

import typer
from rich.console import Console

from lugpi_cli import console, runtime
from lugpi_cli.commands.options import DatasetArg, JsonFlag, params_options, stage_dataset_options
from lugpi_cli.reports.tables import probe_tables
from lugpi_cli.stages import probe


def probe_command(dataset: DatasetArg, params: dict | None = None, data_options: dict | None = None,
                  json_out: JsonFlag = False) -> None:
    """k-nearest-neighbour accuracy of cached image (and frozen text) features, per split and per class.

    In seconds it estimates what the image-only teacher measures by training:
    whether the generated images carry label signal.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    result = probe.run(state.space, probe.Params.from_mapping(params, dataset={"name": dataset, **data_options}))

    def render(out: Console) -> None:
        for space, by_split in result.results.items():
            out.print(probe_tables(space, result.k, by_split, result.label_names))
        if result.crowded:
            out.print(f"Note: k={result.k} is not below the smallest class's {result.smallest_class} training "
                      f"samples (of {result.train_n}): the vote then follows class sizes more than neighbourhoods; "
                      "use a smaller --k.")

    console.emit(result.to_json(), render)


def register(app: typer.Typer) -> None:
    app.command("probe")(stage_dataset_options(params_options(probe.Params)(probe_command)))
