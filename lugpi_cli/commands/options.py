"""Option types shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON object on stdout (same as the global --json)."),
]

DatasetArg = Annotated[
    str,
    typer.Argument(
        metavar="DATASET",
        help="A built-in data set (imdb, 20newsgroups, cwi-news, cwi-wikinews, cwi-wikipedia) "
        "or a .csv/.tsv/.jsonl/.parquet file.",
    ),
]
DataOpt = Annotated[
    Optional[Path],
    typer.Option("--data", help="Where the data set's files are (archive, folder or table file). "
                 "Default: $LUGPI_DATA, the user cache, or the workspace's last copy."),
]
TextColOpt = Annotated[Optional[str], typer.Option("--text-col", help="Table files: the text column.")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="Table files: the label column.")]
SplitColOpt = Annotated[
    Optional[str], typer.Option("--split-col", help="Table files: train/validation/test column (else carved).")
]
PromptColOpt = Annotated[
    Optional[str], typer.Option("--prompt-col", help="Table files: what the diffusion model draws (default: the text).")
]
IdColOpt = Annotated[Optional[str], typer.Option("--id-col", help="Table files: a stable sample id column.")]
LimitOpt = Annotated[
    Optional[int],
    typer.Option("--limit", min=1, help="At most N samples per split (stratified; for smoke runs)."),
]


def parse_splits(text: str) -> list[str]:
    """``"train,test"`` -> ["train", "test"], checked against the known split names."""
    from lugpi_cli.data import SPLITS
    from lugpi_cli.errors import UserError

    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    aliases = {"val": "validation", "valid": "validation", "dev": "validation"}
    names = [aliases.get(n, n) for n in names]
    bad = [n for n in names if n not in SPLITS]
    if bad or not names:
        raise UserError(f"unknown split {bad[0] if bad else text!r}", f"Use a comma-separated subset of {', '.join(SPLITS)}.")
    return list(dict.fromkeys(names))


# -- training (train-teacher, distill) -------------------------------------------------
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")]
LrOpt = Annotated[float, typer.Option("--lr", help="AdamW learning rate (linear decay to 0).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Mini-batch size (the paper's: 14).")]
GradAccumOpt = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")]
MaxStepsOpt = Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after N optimizer steps "
                                                    "(smoke runs).")]
MaxLengthOpt = Annotated[int, typer.Option("--max-length", min=8, help="Max tokens per text.")]
EarlyStoppingOpt = Annotated[Optional[int], typer.Option("--early-stopping", min=1, help="Stop after N epochs "
                                                         "without a better validation accuracy.")]
WarmupOpt = Annotated[float, typer.Option("--warmup", help="Fraction of steps of linear warm-up.")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of initialisation, shuffling and dropout.")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name (default: derived from the config hash).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Retrain even if this run is done.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda (GPUs: see accelerate launch).")]
PrecisionOpt = Annotated[str, typer.Option("--mixed-precision", help="auto (bf16/fp16 autocast on GPU, none on "
                                           "CPU), no, bf16, fp16.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=-1, help="DataLoader workers tokenising and reading "
                                         "the store (-1: 4 on GPU, 0 on CPU).")]
InitOpt = Annotated[str, typer.Option("--init", help="pretrained, or xavier (Glorot normal; Algorithm 1, line 9).")]
TextModelOpt = Annotated[str, typer.Option("--text-model", help="Text model id or directory (AutoModel).")]
