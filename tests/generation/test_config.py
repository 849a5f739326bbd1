"""Generation settings: validation and fingerprints."""

from __future__ import annotations

import shutil

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.generation import GenerationConfig
from lugpi_cli.generation.config import parse_size
from lugpi_cli.hub import model_identity


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 0}, "--steps"),
        ({"guidance": -1.0}, "--guidance"),
        ({"height": 33}, "multiple of 8"),
        ({"scheduler": "magic"}, "unknown scheduler 'magic'"),
        ({"timestep_spacing": "random"}, "timestep spacing"),
        ({"image_format": "gif"}, "unknown image format 'gif'"),
        ({"quality": 0}, "--quality"),
    ],
)
def test_bad_values_are_named(change, message):
    with pytest.raises(UserError, match=message):
        GenerationConfig(model="m", **change).check()


def test_fingerprint_covers_what_changes_images():
    base = GenerationConfig(model="org/model")
    fp = base.fingerprint()
    for change in ({"steps": 26}, {"guidance": 7.0}, {"height": 256}, {"scheduler": "ddim"}, {"seed": 1},
                   {"dtype": "float16"}, {"negative_prompt": "blurry"}, {"image_format": "png"}, {"revision": "abc"},
                   {"model": "org/other"}):
        assert GenerationConfig(**{**base.__dict__, **change}).fingerprint() != fp, change
    assert GenerationConfig(model="org/model").fingerprint() == fp
    png = GenerationConfig(model="org/model", image_format="png")
    assert GenerationConfig(model="org/model", image_format="png", quality=10).fingerprint() == png.fingerprint()


def test_local_model_identity_is_by_content(tiny_models, tmp_path):
    copy = shutil.copytree(tiny_models["sd"], tmp_path / "elsewhere" / "renamed-sd")
    assert model_identity(str(copy)) == model_identity(str(tiny_models["sd"]))
    weights = next(copy.rglob("diffusion_pytorch_model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # "retrained": same size, other bytes
    weights.write_bytes(bytes(data))
    assert model_identity(str(copy)) != model_identity(str(tiny_models["sd"]))
    assert model_identity("org/model") == {"model": "org/model", "revision": "main"}


def test_parse_size():
    assert parse_size("512") == (512, 512)
    assert parse_size("768x512") == (512, 768)
    with pytest.raises(UserError, match="--size"):
        parse_size("big")
