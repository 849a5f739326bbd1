"""Stage 2, ``embed``: frozen image features (CLIP, ViT, any image model, VAE latents) of the generated images.

``plan`` derives the encoder fingerprint and counts the feature records the store holds (no model loaded);
``run`` encodes the missing ones and records the ``embed`` lineage pointer the teacher reads, so a
Python caller leaves the same lineage a command does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from lugpi_cli import runtime
from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import alias_help
from lugpi_cli.stages.common import ALL_SPLITS, DEVICE_HELP, NODE_STORE_HELP, DatasetParams, dataset_params, \
    parse_splits, resolve_workers
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.workspace import Workspace


@dataclass(frozen=True)
class Params(StageParams):
    STAGE = "embed"

    dataset: DatasetParams | None = None
    encoder: str = opt("clip", alias_help("image encoder") + ", vae-latent (the generator's VAE latents), or any "
                       "image model id or directory.", short="-e")
    revision: Optional[str] = opt(None, "Hub revision of the encoder.")
    vae_model: Optional[str] = opt(None, "--encoder vae-latent: the diffusion model whose VAE encodes the images "
                                   "(default: the generator's).")
    vae_size: int = opt(128, "--encoder vae-latent: image size in px (128 gives 4x16x16 = 1024 values for SD).",
                        min=8)
    pooled_only: bool = opt(False, "Store only the pooled vector, not the token sequence (smaller; the fusion "
                            "teacher needs tokens).")
    generator: Optional[str] = opt(None, "Embed the images of this generator fingerprint (default: the latest "
                                   "`generate` of DATASET).")
    batch_size: int = opt(32, "Images per encoder call.", min=1)
    workers: int = opt(-1, "DataLoader workers decoding images (-1: 4 on GPU, 0 on CPU).", min=-1)
    dtype: str = opt("auto", "auto, float32, float16, bfloat16 (features are stored in float16 either way).")
    device: str = opt("auto", DEVICE_HELP)
    splits: str = opt(ALL_SPLITS, "Comma-separated splits.")
    node_store: Optional[Path] = opt(None, NODE_STORE_HELP)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", dataset_params(self.dataset))

    def check(self) -> None:
        parse_splits(self.splits)

    def encoder_config(self, dtype: str | None = None, vae_model: str | None = None):
        from lugpi_cli.encoders import EncoderConfig

        return EncoderConfig(self.encoder, revision=self.revision, pooled_only=self.pooled_only,
                             dtype=dtype or runtime.planned_dtype(self.dtype, self.device),
                             vae_model=self.vae_model or vae_model, vae_size=self.vae_size)

    @property
    def label(self) -> str:
        """The encoder's name in lineage pointers and messages (``clip`` for the alias and its hub id)."""
        from lugpi_cli.encoders import EncoderConfig

        return EncoderConfig(self.encoder).label


@dataclass
class Plan:
    label: str
    features: dict[str, Any]  # the embed pointer this stage will record (what a planned teacher reads)
    total: int | None  # distinct images (None: not generated yet)
    cached: int

    @property
    def status(self) -> str:
        if self.total is None:
            return "images not generated yet: every feature to compute"
        return f"{self.cached} of {self.total} feature records cached, {self.total - self.cached} to compute"


def plan(ws: Workspace, params: Params, generator: dict[str, Any] | None = None, ds=None) -> Plan:
    """The encoder fingerprint and the feature records the store holds; ``generator`` is a planned
    generate step's image source (else the workspace's latest)."""
    from lugpi_cli.lineage import ImageSource
    from lugpi_cli.stages.data import planned_dataset
    from lugpi_store import record_key

    ds = ds if ds is not None else planned_dataset(ws, params.dataset)
    generator = generator or ws.planned_image_source(ds.name)
    config = params.encoder_config(vae_model=generator.get("model"))
    features = {"encoder_fingerprint": config.fingerprint(), "generator_fingerprint": generator["fingerprint"],
                "generator_seed": generator["seed"], "pooled_only": params.pooled_only or config.is_vae}
    if generator["fingerprint"] is None:
        return Plan(config.label, features, None, 0)
    source = ImageSource(generator["fingerprint"], generator["seed"], {})
    keys = list(dict.fromkeys(source.image_keys(ds.samples(parse_splits(params.splits))).values()))
    store = ws.existing_store()
    cached = sum(store.contains_many("features", [record_key(config.fingerprint(), k) for k in keys])) \
        if store is not None and keys else 0
    return Plan(config.label, features, len(keys), cached)


@dataclass
class Result:
    dataset: str
    encoder: str
    samples: int
    generator_fingerprint: str
    device: str
    summary: Any  # EmbedSummary
    multinode: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "encoder": self.encoder, "samples": self.samples,
                "generator_fingerprint": self.generator_fingerprint, "device": self.device,
                **self.summary.to_json(), **({"multinode": self.multinode} if self.multinode else {})}


def run(ws: Workspace, params: Params, *, on_start: Callable[[int], None] | None = None,
        on_batch: Callable[..., None] | None = None) -> Result:
    """Encode every image of the data set that has no feature record; record the ``embed`` pointer."""
    from lugpi_cli import multinode
    from lugpi_cli.data.snapshot import resolve_dataset
    from lugpi_cli.encoders import embed_images, load_encoder

    # 1. device and dtype; the store this process writes; the data set and its images
    torch_device = runtime.resolve_device(params.device)
    torch_dtype = runtime.resolve_dtype(params.dtype, torch_device)
    store = multinode.open_stage_store(ws, params.node_store)
    ds = resolve_dataset(params.dataset.request(), store)
    source = ws.image_source(ds.name, params.generator, store=store)
    config = params.encoder_config(runtime.dtype_name(torch_dtype), vae_model=source.model)
    samples = ds.samples(parse_splits(params.splits))
    info = runtime.process_info()
    # 2. encode what is missing
    summary = embed_images(store, list(source.image_keys(samples).values()), config,
                           lambda: load_encoder(config, torch_device, torch_dtype), batch_size=params.batch_size,
                           workers=resolve_workers(params.workers, params.device), on_start=on_start,
                           on_batch=on_batch, shard=(info.rank, info.world_size))
    # 3. the lineage pointer the teacher follows
    if summary.embedded or summary.reused:
        ws.record_features(store, ds.name, config.label, {
            "encoder_fingerprint": summary.encoder_fingerprint, "encoder_config": config.fingerprint_config(),
            "encoder": config.model, "generator_fingerprint": source.fingerprint, "generator_seed": source.seed,
            "pooled_only": params.pooled_only or summary.tokens_shape is None, "tokens_shape": summary.tokens_shape,
            "pooled_dim": summary.pooled_dim,
        })
    # 4. multi-node: the barrier and node 0's merge
    nodes = multinode.finish_stage(store)
    return Result(ds.name, config.model, len(samples), source.fingerprint, str(torch_device), summary, nodes)


def failure(result: Result) -> UserError | None:
    """The error a run with images missing from the store ends with (after its result is reported)."""
    if not result.summary.missing_images:
        return None
    return UserError(f"{result.summary.missing_images} image(s) of {result.dataset} are not in the store (generator "
                     f"{result.generator_fingerprint[:16]})",
                     f"Run `lugpi generate {result.dataset}` with the same settings to finish them (failed images are "
                     "retried), then embed again: what is done is kept.")
