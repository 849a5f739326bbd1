"""``lugpi generate DATASET``: one privileged image per distinct prompt, into the store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lugpi_cli import console, multinode, runtime
from lugpi_cli.commands.options import (
    DatasetArg,
    JsonFlag,
    dataset_options,
    parse_splits,
)
from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
from lugpi_cli.errors import UserError
from lugpi_cli.generation import GenerationConfig, generate_dataset, load_pipeline
from lugpi_cli.generation.config import DEFAULT_MODEL, parse_size
from lugpi_cli.model_ids import alias_help
from lugpi_cli.generation.pipeline import load_tokenizer


def parse_shard(text: str | None) -> tuple[int, int]:
    """``I/N`` -> (I, N); default: this process's rank and world size under accelerate/torchrun."""
    if text is None:
        info = runtime.process_info()
        return info.rank, info.world_size
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError as exc:
        raise UserError(f"bad --shard {text!r}", "Use I/N, e.g. --shard 0/4 for the first of four.") from exc
    if not (count >= 1 and 0 <= index < count):
        raise UserError(f"bad --shard {text!r}: need 0 <= I < N", "e.g. --shard 3/4 is the last of four.")
    return index, count


def generate_command(
    dataset: DatasetArg,
    splits: Annotated[str, typer.Option("--splits", help="Comma-separated splits (the teacher needs test images too).")]
    = "train,validation,test",
    model: Annotated[str, typer.Option("--model", help="Diffusers text-to-image model: an alias ("
                                  + alias_help("generator") + "), a hub id or a directory.")] = DEFAULT_MODEL,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision (a commit hash pins it).")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option("--guidance", help="Classifier-free guidance scale (0 = off).")] = 7.5,
    size: Annotated[str, typer.Option("--size", help="Image size: 512 or WIDTHxHEIGHT.")] = "512",
    scheduler: Annotated[str, typer.Option("--scheduler", help="model (the model's own), ddim, pndm, dpm++, "
                                           "dpm++-karras, dpm++-sde, euler, euler-a, lms, unipc, heun, lcm.")] = "model",
    timestep_spacing: Annotated[str, typer.Option("--timestep-spacing", help="model, leading, trailing (1-4 step "
                                                  "models), linspace.")] = "model",
    negative_prompt: Annotated[Optional[str], typer.Option("--negative-prompt", help="Used when guidance > 1.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per pipeline call.")] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Base seed; each prompt's seed derives from it.")] = 0,
    dtype: Annotated[str, typer.Option("--dtype", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, float16, "
                                       "bfloat16.")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N, mps.")] = "auto",
    image_format: Annotated[str, typer.Option("--format", help="webp, png or jpeg (how images are stored).")] = "webp",
    quality: Annotated[int, typer.Option("--quality", help="WebP/JPEG quality.")] = 90,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the UNet (long GPU runs).")] = False,
    reuse_similar: Annotated[Optional[float], typer.Option("--reuse-similar", help="Group prompts whose "
                                                           "text-encoder embeddings reach this cosine similarity and "
                                                           "draw one image per group (off by default).")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="I/N: this process draws its 1/N of the prompts "
                                                 "(automatic under accelerate launch / torchrun).")] = None,
    node_store: multinode.NodeStoreOpt = None,
    data_options: dict | None = None,
    json_out: JsonFlag = False,
) -> None:
    """Generate a privileged image for every distinct prompt of a data set (diffusers) into the store.

    Identical prompts are drawn once; images already in the store are reused; an
    interrupted run resumes where it stopped.
    """
    state = console.use_json(json_out)
    runtime.quiet_libraries(state.verbose)
    height, width = parse_size(size)
    torch_device = runtime.resolve_device(device)
    torch_dtype = runtime.resolve_dtype(dtype, torch_device)
    config = GenerationConfig(
        model=model, revision=revision, steps=steps, guidance=guidance, height=height, width=width,
        scheduler=scheduler, timestep_spacing=timestep_spacing, negative_prompt=negative_prompt, seed=seed,
        dtype=runtime.dtype_name(torch_dtype), image_format=image_format.lower(), quality=quality,
        reuse_similar=reuse_similar,
    ).check()
    shard_index, shard_count = parse_shard(shard)
    store = multinode.open_stage_store(state, node_store)
    request = DatasetRequest(dataset, **data_options)
    ds = resolve_dataset(request, store)
    samples = ds.samples(parse_splits(splits))

    eta = "GPU time left" if torch_device.type == "cuda" else "ETA"
    with console.ProgressBar("generating", unit="img", eta_label=eta, kept="images stored") as bar:
        summary = generate_dataset(
            store, samples, config,
            lambda: load_pipeline(config, torch_device, torch_dtype, compile=compile),
            batch_size=batch_size, shard=(shard_index, shard_count), dataset_fingerprint=ds.fingerprint(),
            dataset_name=ds.name, on_start=bar.start, on_batch=bar.advance,
            tokenizer_factory=lambda: load_tokenizer(config),
        )
    nodes = multinode.finish_stage(store)
    result = {"dataset": ds.name, "splits": parse_splits(splits), "shard": f"{shard_index}/{shard_count}",
              "device": str(torch_device), **summary.to_json(), **({"multinode": nodes} if nodes else {})}

    def render(out: Console) -> None:
        table = Table(box=None, show_header=False)
        for name in ("samples", "distinct_prompts", "generated", "reused", "reused_similar", "truncated", "failed",
                     "retried", "other_shards"):
            if name not in ("other_shards", "reused_similar", "retried") or result[name]:
                table.add_row(name.replace("_", " "), str(result[name]))
        out.print(table)
        if summary.generated:
            out.print(f"{summary.generated} images in {summary.seconds:.1f} s "
                      f"({summary.images_per_second:.2f} img/s on {torch_device}).")
        elif not summary.failed:
            out.print("Nothing to generate: every image is already in the store.")
        out.print(f"generator fingerprint {summary.generator_fingerprint[:16]}  ({config.model})")
        multinode.render(out, nodes)

    console.emit(result, render)
    if summary.failed:
        raise UserError(
            f"{summary.failed} prompt(s) got no image (NaN/inf pixels, or, with --reuse-similar, their group's "
            "first prompt did); they are recorded and will be retried "
            "on the next run (first: " + repr(summary.failures[0]["prompt"][:80]) + ")",
            "If it persists, try --dtype float32 or bfloat16 (fp16 overflows in some models), or another --seed.",
        )


def register(app: typer.Typer) -> None:
    app.command("generate")(dataset_options(generate_command))
