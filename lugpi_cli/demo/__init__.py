"""``lugpi demo``: the whole method, offline, on a CPU, in a minute or two.

A small labelled text set written for this project (``scenes.csv``: 120
sentences about nature and city scenes, with their prompts) and tiny models
built from configs into the workspace (a Stable Diffusion pipeline, a CLIP
vision tower, a DistilBERT-shaped text model) run through a recipe:
generate -> embed -> train-teacher (text-only and multimodal) -> distill
(baseline and LUGPI student) -> a 2x2 ablation of the loss terms -> evaluate
-> report. Tiny untrained models show the mechanics, not the method's
accuracy. A second run reuses everything.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_DATA = "scenes.csv"


def data_path() -> Path:
    return Path(str(resources.files("lugpi_cli.demo").joinpath(DEMO_DATA)))


def vocabulary() -> tuple[str, ...]:
    """Every word of the demo texts: whole tokens for the tiny WordPiece vocabulary."""
    import csv
    import re

    with open(data_path(), newline="") as handle:
        words = {w for row in csv.DictReader(handle) for w in re.findall(r"[a-z]+", row["text"].lower())}
    return tuple(sorted(words))


def build_models(root: Path) -> dict[str, Path]:
    """Tiny models under ``root`` (built once; a marker says they are complete)."""
    from lugpi_cli.tiny_models import build_tiny_clip_vision, build_tiny_sd, build_tiny_text_model

    paths = {"sd": root / "tiny-sd", "clip": root / "tiny-clip", "text": root / "tiny-text"}
    if not (root / "DONE").exists():
        build_tiny_sd(paths["sd"])
        build_tiny_clip_vision(paths["clip"])
        build_tiny_text_model(paths["text"], words=vocabulary())
        (root / "DONE").write_text("tiny models built from configs\n")
    return paths


def recipe_text(models: dict[str, Path], epochs: int = 8) -> str:
    train = 'text_model = "{text}"\nepochs = {epochs}\nlr = 0.005\nbatch_size = 16\nmax_length = 32'.format(
        epochs=epochs, **models)
    return f"""# Written by `lugpi demo`: tiny models, toy data. It runs the real pipeline, nothing is mocked.
title = "lugpi demo: tiny models on 120 toy sentences"

[dataset]
name = "{data_path()}"
text_col = "text"
label_col = "label"
prompt_col = "prompt"
split_col = "split"

[generate]
model = "{models['sd']}"
steps = 2
size = "32"
batch_size = 16
format = "png"

[[embed]]
encoder = "{models['clip']}"

[[teacher]]
id = "text-only"
modality = "text"
{train}

[[teacher]]
id = "teacher"
encoder = "{models['clip']}"
hidden = 32
{train}

[[student]]
id = "baseline"
alpha = 0.0
beta = 0.0
{train}

[[student]]
id = "lugpi"
teacher = "teacher"
alpha = 3.0
beta = 1.0
tau = 8.0
{train}

[ablate]
teacher = "teacher"
preset = "loss-terms"
seeds = 1
{train}

[evaluate]
baseline = "baseline"
"""
