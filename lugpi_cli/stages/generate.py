"""Stage 1, ``generate``: one privileged image per distinct prompt of a data set, into the store.

``plan`` derives the generator fingerprint and counts the images the store holds, without loading a
model; ``run`` draws the missing ones (diffusers), resumable and shardable across processes and nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from lugpi_cli import runtime
from lugpi_cli.errors import UserError
from lugpi_cli.generation.config import DEFAULT_MODEL, SCHEDULERS, GenerationConfig, parse_size
from lugpi_cli.model_ids import alias_help
from lugpi_cli.stages.common import ALL_SPLITS, DEVICE_HELP, NODE_STORE_HELP, DatasetParams, dataset_params, parse_splits
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.workspace import Workspace


@dataclass(frozen=True)
class Params(StageParams):
    STAGE = "generate"

    dataset: DatasetParams | None = None
    splits: str = opt(ALL_SPLITS, "Comma-separated splits (the teacher needs test images too).")
    model: str = opt(DEFAULT_MODEL, "Diffusers text-to-image model: an alias (" + alias_help("generator")
                     + "), a hub id or a directory.")
    revision: Optional[str] = opt(None, "Hub revision (a commit hash pins it).")
    steps: int = opt(50, "Denoising steps.")
    guidance: float = opt(7.5, "Classifier-free guidance scale (0 = off).")
    size: str = opt("512", "Image size: 512 or WIDTHxHEIGHT.")
    scheduler: str = opt("model", "model (the model's own), " + ", ".join(s for s in SCHEDULERS if s != "model")
                         + ".")
    timestep_spacing: str = opt("model", "model, leading, trailing (1-4 step models), linspace.")
    negative_prompt: Optional[str] = opt(None, "Used when guidance > 1.")
    batch_size: int = opt(4, "Images per pipeline call.", min=1)
    seed: int = opt(0, "Base seed; each prompt's seed derives from it.", min=0)
    dtype: str = opt("auto", "auto (bf16/fp16 on GPU, fp32 on CPU), float32, float16, bfloat16.")
    device: str = opt("auto", DEVICE_HELP)
    image_format: str = opt("webp", "webp, png or jpeg (how images are stored).", flag="--format")
    quality: int = opt(90, "WebP/JPEG quality.")
    compile: bool = opt(False, "torch.compile the UNet (long GPU runs).")
    reuse_similar: Optional[float] = opt(None, "Group prompts whose text-encoder embeddings reach this cosine "
                                         "similarity and draw one image per group (off by default).")
    shard: Optional[str] = opt(None, "I/N: this process draws its 1/N of the prompts (automatic under "
                               "accelerate launch / torchrun).")
    node_store: Optional[Path] = opt(None, NODE_STORE_HELP)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))

    def check(self) -> None:
        parse_splits(self.splits)
        self.generation_config(dtype="float32")
        parse_shard(self.shard, default=(0, 1))

    def generation_config(self, dtype: str | None = None) -> GenerationConfig:
        """The fingerprinted config; ``dtype`` is the resolved dtype name (default: what this machine gives)."""
        height, width = parse_size(self.size)
        return GenerationConfig(
            model=self.model, revision=self.revision, steps=self.steps, guidance=self.guidance, height=height,
            width=width, scheduler=self.scheduler, timestep_spacing=self.timestep_spacing,
            negative_prompt=self.negative_prompt, seed=self.seed,
            dtype=dtype or runtime.planned_dtype(self.dtype, self.device), image_format=self.image_format.lower(),
            quality=self.quality, reuse_similar=self.reuse_similar,
        ).check()


def parse_shard(text: str | None, default: tuple[int, int] | None = None) -> tuple[int, int]:
    """``I/N`` -> (I, N); default: this process's rank and world size under accelerate/torchrun."""
    if text is None:
        if default is not None:
            return default
        info = runtime.process_info()
        return info.rank, info.world_size
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as exc:
        raise UserError(f"bad --shard {text!r}", "Use I/N, e.g. --shard 0/4 for the first of four.") from exc
    if not (count >= 1 and 0 <= index < count):
        raise UserError(f"bad --shard {text!r}: need 0 <= I < N", "e.g. --shard 3/4 is the last of four.")
    return index, count


@dataclass
class Plan:
    config: GenerationConfig
    distinct: int
    cached: int

    @property
    def status(self) -> str:
        return f"{self.cached} of {self.distinct} images cached, {self.distinct - self.cached} to generate"

    @property
    def generator(self) -> dict[str, Any]:
        """What later stages of the same plan read as their image source."""
        return {"fingerprint": self.config.fingerprint(), "seed": self.config.seed, "model": self.config.model}


def plan(ws: Workspace, params: Params, ds=None) -> Plan:
    """The generator fingerprint and how many of the images the store holds (no model is loaded)."""
    from lugpi_cli.generation import plan_images
    from lugpi_cli.stages.data import planned_dataset

    ds = ds if ds is not None else planned_dataset(ws, params.dataset)
    config = params.generation_config()
    images = plan_images(ds.samples(parse_splits(params.splits)), config.fingerprint(), config.seed)
    store = ws.existing_store()
    cached = sum(store.contains_many("images", images.keys)) if store is not None and images.keys else 0
    return Plan(config, len(images.keys), cached)


@dataclass
class Result:
    dataset: str
    splits: list[str]
    shard: str
    device: str
    model: str
    summary: Any  # GenerationSummary
    multinode: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "splits": self.splits, "shard": self.shard, "device": self.device,
                **self.summary.to_json(), **({"multinode": self.multinode} if self.multinode else {})}


def run(ws: Workspace, params: Params, *, on_start: Callable[[int], None] | None = None,
        on_batch: Callable[..., None] | None = None) -> Result:
    """Draw every missing image (reusing the store's), record the ``generate`` lineage pointer."""
    from lugpi_cli import multinode
    from lugpi_cli.data.snapshot import resolve_dataset
    from lugpi_cli.generation import generate_dataset, load_pipeline
    from lugpi_cli.generation.pipeline import load_tokenizer

    # 1. resolve the device, dtype and config
    torch_device = runtime.resolve_device(params.device)
    torch_dtype = runtime.resolve_dtype(params.dtype, torch_device)
    config = params.generation_config(runtime.dtype_name(torch_dtype))
    shard = parse_shard(params.shard)
    # 2. the store this process writes (its node's under a multi-node launch) and the data set
    store = multinode.open_stage_store(ws, params.node_store)
    ds = resolve_dataset(params.dataset.request(), store)
    splits = parse_splits(params.splits)
    # 3. draw what is missing; the runner records the lineage pointer
    summary = generate_dataset(
        store, ds.samples(splits), config,
        lambda: load_pipeline(config, torch_device, torch_dtype, compile=params.compile),
        batch_size=params.batch_size, shard=shard, dataset_fingerprint=ds.fingerprint(), dataset_name=ds.name,
        on_start=on_start, on_batch=on_batch, tokenizer_factory=lambda: load_tokenizer(config),
    )
    # 4. multi-node: the barrier and node 0's merge
    nodes = multinode.finish_stage(store)
    return Result(ds.name, splits, f"{shard[0]}/{shard[1]}", str(torch_device), config.model, summary, nodes)


def failure(result: Result) -> UserError | None:
    """The error a run with failed prompts ends with (after its result is reported)."""
    summary = result.summary
    if not summary.failed:
        return None
    return UserError(
        f"{summary.failed} prompt(s) got no image (NaN/inf pixels, or, with --reuse-similar, their group's "
        "first prompt did); they are recorded and will be retried "
        "on the next run (first: " + repr(summary.failures[0]["prompt"][:80]) + ")",
        "If it persists, try --dtype float32 or bfloat16 (fp16 overflows in some models), or another --seed.",
    )
