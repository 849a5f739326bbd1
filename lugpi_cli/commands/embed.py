"""``lugpi embed DATASET --encoder clip|vit|MODEL``: frozen image features into the store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli import console, multinode, runtime
from lugpi_cli.commands.options import (
    DatasetArg,
    JsonFlag,
    dataset_options,
    parse_splits,
)
from lugpi_cli.commands.training_common import resolve_workers
from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
from lugpi_cli.encoders import EncoderConfig, embed_images, load_encoder
from lugpi_cli.errors import UserError
from lugpi_cli.lineage import image_source, record_embedding
from lugpi_cli.model_ids import alias_help


def embed_command(
    dataset: DatasetArg,
    encoder: Annotated[str, typer.Option("--encoder", "-e", help=alias_help("image encoder") + ", "
                                         "vae-latent (the generator's VAE latents), or any image model id or "
                                         "directory.")]
    = "clip",
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision of the encoder.")] = None,
    vae_model: Annotated[Optional[str], typer.Option("--vae-model", help="--encoder vae-latent: the diffusion "
                                                     "model whose VAE encodes the images (default: the "
                                                     "generator's).")] = None,
    vae_size: Annotated[int, typer.Option("--vae-size", min=8, help="--encoder vae-latent: image size in px "
                                          "(128 gives 4x16x16 = 1024 values for SD).")] = 128,
    pooled_only: Annotated[bool, typer.Option("--pooled-only", help="Store only the pooled vector, not the "
                                              "token sequence (smaller; the fusion teacher needs tokens).")] = False,
    generator: Annotated[Optional[str], typer.Option("--generator", help="Embed the images of this generator "
                                                     "fingerprint (default: the latest `generate` of DATASET).")]
    = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    workers: Annotated[int, typer.Option("--workers", min=-1, help="DataLoader workers decoding images "
                                         "(-1: 4 on GPU, 0 on CPU).")] = -1,
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, float16, bfloat16 (features are stored "
                                       "in float16 either way).")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    splits: Annotated[str, typer.Option("--splits", help="Comma-separated splits.")] = "train,validation,test",
    node_store: multinode.NodeStoreOpt = None,
    data_options: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Embed the generated images with a frozen CLIP/ViT encoder into the store.

    Stores, per image, the encoder's token sequence (last hidden state, CLS
    first, float16) and its pooled vector. Images shared by several samples are
    encoded once; a re-run embeds nothing; an interrupted run resumes.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    torch_device = runtime.resolve_device(device)
    torch_dtype = runtime.resolve_dtype(dtype, torch_device)
    store = multinode.open_stage_store(state, node_store)
    ds = resolve_dataset(DatasetRequest(dataset, **data_options), store)
    source = image_source(store, ds.name, generator)
    if encoder.lower() == "vae-latent" and vae_model is None:
        vae_model = source.model
    config = EncoderConfig(encoder, revision=revision, pooled_only=pooled_only, dtype=runtime.dtype_name(torch_dtype),
                           vae_model=vae_model, vae_size=vae_size)
    samples = ds.samples(parse_splits(splits))
    image_keys = source.image_keys(samples)
    workers = resolve_workers(workers, device)

    with console.ProgressBar("embedding", unit="img", kept="images embedded and stored") as bar:
        summary = embed_images(store, list(image_keys.values()), config,
                               lambda: load_encoder(config, torch_device, torch_dtype),
                               batch_size=batch_size, workers=workers, on_start=bar.start, on_batch=bar.advance,
                               shard=(runtime.process_info().rank, runtime.process_info().world_size))
    if summary.embedded or summary.reused:
        record_embedding(store, ds.name, config.label, {
            "encoder_fingerprint": summary.encoder_fingerprint, "encoder_config": config.fingerprint_config(),
            "encoder": config.model, "generator_fingerprint": source.fingerprint, "generator_seed": source.seed,
            "pooled_only": pooled_only or summary.tokens_shape is None, "tokens_shape": summary.tokens_shape,
            "pooled_dim": summary.pooled_dim,
        })
    nodes = multinode.finish_stage(store)
    result = {"dataset": ds.name, "encoder": config.model, "samples": len(samples),
              "generator_fingerprint": source.fingerprint, "device": str(torch_device), **summary.to_json(),
              **({"multinode": nodes} if nodes else {})}

    def render(out: Console) -> None:
        out.print(f"{summary.images} distinct images: {summary.embedded} embedded, {summary.reused} already in "
                  f"the store, {summary.missing_images} missing.")
        if summary.tokens_shape or summary.pooled_dim:
            out.print(f"features: tokens {summary.tokens_shape or '-'}  pooled {summary.pooled_dim}  "
                      f"(encoder fingerprint {summary.encoder_fingerprint[:16]}, {config.model})")
        multinode.render(out, nodes)

    console.emit(result, render)
    if summary.missing_images:
        raise UserError(f"{summary.missing_images} image(s) of {ds.name} are not in the store (generator "
                        f"{source.fingerprint[:16]})",
                        f"Run `lugpi generate {ds.name}` with the same settings to finish them (failed images are "
                        "retried), then embed again: what is done is kept.")


def register(app: typer.Typer) -> None:
    app.command("embed")(dataset_options(embed_command))
