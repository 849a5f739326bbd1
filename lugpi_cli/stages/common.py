"""Parameter groups several stages share: the data set, the training options, splits and devices.

Each default lives here once (training defaults come from :class:`~lugpi_cli.training.config.TrainConfig`);
the commands' flags, the recipes' keys and the ablation grid's keys are derived from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from lugpi_cli.data.samples import SPLITS
from lugpi_cli.errors import UserError
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.training.config import TrainConfig

ALL_SPLITS = ",".join(SPLITS)
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation"}
INIT_CHOICES = ("pretrained", "xavier")
DEVICE_HELP = "auto, cpu, cuda, cuda:N, mps."
NODE_STORE_HELP = ("Multi-node launches: the directory holding one store per node (node-<rank>), on a file system "
                   "node 0 can read. Default WORKSPACE/nodes; unused on one machine.")


def parse_splits(text: str) -> list[str]:
    """``"train,test"`` -> ["train", "test"], checked against the known split names."""
    names = [SPLIT_ALIASES.get(n, n) for n in (part.strip().lower() for part in text.split(",")) if n]
    bad = [n for n in names if n not in SPLITS]
    if bad or not names:
        raise UserError(f"unknown split {bad[0] if bad else text!r}",
                        f"Use a comma-separated subset of {', '.join(SPLITS)}.")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class DatasetParams(StageParams):
    """The DATASET argument and its options (a recipe's ``[dataset]`` table)."""

    name: str = opt(None, "A built-in data set (imdb, 20newsgroups, cwi-news, cwi-wikinews, cwi-wikipedia), a "
                    ".csv/.tsv/.jsonl/.parquet file, a directory written by datasets' save_to_disk(), or a Hugging "
                    "Face Hub data set id (owner/name).", cli=False)
    data: Optional[Path] = opt(None, "Where the data set's files are (archive, folder or table file). Default: "
                               "$LUGPI_DATA, the user cache, or the workspace's last copy.")
    text_col: Optional[str] = opt(None, "Table files and Hugging Face data sets (default there: text): the text "
                                  "column.")
    label_col: Optional[str] = opt(None, "Table files and Hugging Face data sets (default there: label): the label "
                                   "column.")
    split_col: Optional[str] = opt(None, "Table files: train/validation/test column (else carved).")
    prompt_col: Optional[str] = opt(None, "Table files: what the diffusion model draws (default: the text).")
    id_col: Optional[str] = opt(None, "Table files: a stable sample id column.")
    limit: Optional[int] = opt(None, "At most N samples per split (stratified; for smoke runs).", min=1)
    data_config: Optional[str] = opt(None, "Hugging Face Hub data sets: the config (subset) to load.")
    data_revision: Optional[str] = opt(None, "Hugging Face Hub data sets: the revision (branch, tag or commit "
                                       "hash) to load.")

    def check(self) -> None:
        if not self.name:
            raise UserError("dataset.name is missing", "e.g. name = \"imdb\" or name = \"reviews.csv\"")

    def request(self):
        from lugpi_cli.data.snapshot import DatasetRequest

        return DatasetRequest(**{k: v for k, v in self.values().items()})

    def without_limit(self) -> "DatasetParams":
        return replace(self, limit=None)


def dataset_params(value: Any, where: str = "") -> DatasetParams | None:
    """A :class:`DatasetParams` from a mapping (a recipe table, the CLI's options), a name, or itself."""
    if value is None or isinstance(value, DatasetParams):
        return value
    if isinstance(value, str):
        value = {"name": value}
    return DatasetParams.from_mapping(value, where=where + ("dataset." if where else ""))


_T = TrainConfig  # the training defaults' one home


@dataclass(frozen=True)
class TrainingParams(StageParams):
    """What ``train-teacher`` and ``distill`` share (optimisation, device, run naming, trackers)."""

    epochs: int = opt(_T.epochs, "Training epochs.", min=1)
    lr: float = opt(_T.lr, "AdamW learning rate (linear decay to 0).")
    batch_size: int = opt(_T.batch_size, "Mini-batch size (the paper's: 14).", min=1)
    grad_accum: int = opt(_T.grad_accum, "Gradient accumulation steps.", min=1)
    max_steps: Optional[int] = opt(_T.max_steps, "Stop after N optimizer steps (smoke runs).", min=1)
    max_length: int = opt(_T.max_length, "Max tokens per text.", min=8)
    early_stopping: Optional[int] = opt(_T.early_stopping, "Stop after N epochs without a better validation "
                                        "accuracy.", min=1)
    warmup: float = opt(_T.warmup_ratio, "Fraction of steps of linear warm-up.")
    weight_decay: float = opt(_T.weight_decay, "AdamW weight decay.")
    seed: int = opt(_T.seed, "Seed of initialisation, shuffling and dropout.", min=0)
    mixed_precision: str = opt(_T.mixed_precision, "auto (bf16/fp16 autocast on GPU, none on CPU), no, bf16, fp16.")
    workers: int = opt(-1, "DataLoader workers tokenising and reading the store (-1: 4 on GPU, 0 on CPU).", min=-1)
    compile: bool = opt(_T.compile, "torch.compile the model's forward (pays off on long GPU runs; the same "
                        "results within float tolerance).")
    device: str = opt("auto", "auto, cpu, cuda (GPUs: see accelerate launch).")
    run: Optional[str] = opt(None, "Run name (default: derived from the config hash).")
    force: bool = opt(False, "Retrain even if this run is done.")
    report_to: str = opt(_T.report_to, "Experiment trackers: tensorboard, wandb, mlflow, all (the installed "
                         "ones), none, or a comma-separated list.")

    def train_config(self, *, resolve_workers: bool = True) -> TrainConfig:
        """The TrainConfig (``workers`` -1 resolved for the device unless told not to: plans keep -1 -> 0)."""
        workers = self.workers
        if workers < 0:
            workers = device_workers(self.device) if resolve_workers else 0
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, grad_accum=self.grad_accum,
                           max_steps=self.max_steps, max_length=self.max_length, early_stopping=self.early_stopping,
                           warmup_ratio=self.warmup, weight_decay=self.weight_decay, seed=self.seed,
                           mixed_precision=self.mixed_precision, workers=workers, report_to=self.report_to,
                           compile=self.compile)

    def check_training(self) -> None:
        from lugpi_cli.training.runs import checked_run_name

        self.train_config(resolve_workers=False).check()
        if self.run is not None:
            checked_run_name(self.run)


#: the training keys an ablation grid (or ``--set``) may vary
GRID_TRAIN_KEYS = ("epochs", "lr", "batch_size", "grad_accum", "max_steps", "max_length", "warmup", "weight_decay",
                   "early_stopping")


def device_workers(device: str) -> int:
    """-1 means: 4 DataLoader workers on a GPU (never starve it), none on the CPU (they would compete)."""
    from lugpi_cli import runtime

    return 4 if runtime.resolve_device(device).type == "cuda" else 0


def resolve_workers(workers: int, device: str) -> int:
    return workers if workers >= 0 else device_workers(device)


def train_config_from(values: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from option values by name (a grid cell's training keys over the defaults)."""
    return TrainingParams.from_mapping({k: v for k, v in values.items()
                                        if k in TrainingParams.param_fields()}).train_config(resolve_workers=False)
