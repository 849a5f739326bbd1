"""VAE latents of generated images (ARMADA's cached teacher vector), with the tiny SD pipeline's VAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lugpi_cli.encoders.vae import latent_shape, load_vae, preprocess, vae_latents, vae_scale_factor
from lugpi_cli.errors import UserError

SIZE = 32  # tiny VAE: downsampling factor 2 -> 4 x 16 x 16 = 1024 values, the width of SD's 128 px latent


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from lugpi_cli.runtime import quiet_libraries
    from lugpi_cli.tiny_models import build_tiny_sd

    quiet_libraries()
    return build_tiny_sd(tmp_path_factory.mktemp("vae") / "sd")


@pytest.fixture(scope="module")
def vae(tiny_sd):
    return load_vae(str(tiny_sd), "cpu", torch.float32)


def images(n, seed=0, size=(40, 50)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for _ in range(n)]


def test_load_vae_reads_the_pipelines_vae_subfolder(tiny_sd, vae):
    from diffusers import AutoencoderKL

    assert type(vae) is AutoencoderKL and not vae.training and vae.dtype == torch.float32
    assert not any(p.requires_grad for p in vae.parameters())
    assert vae_scale_factor(vae) == 2 and latent_shape(vae, SIZE) == (4, 16, 16)
    assert type(load_vae(str(tiny_sd / "vae"))) is AutoencoderKL  # a VAE directory itself also works
    assert load_vae(str(tiny_sd), dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated")
def test_load_vae_failures_are_user_errors(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    with pytest.raises(UserError, match="no such directory"):
        load_vae(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load text-to-image model's VAE from the directory"):
        load_vae(str(tmp_path / "empty"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        load_vae("lugpi-tests/no-such-model")


def test_shape_dtype_and_a_direct_encoding(vae):
    ims = images(3)
    z = vae_latents(vae, ims, size=SIZE)
    assert z.shape == (3, 4 * 16 * 16) and z.dtype == np.float16
    with torch.no_grad():
        x = preprocess(ims, SIZE)
        direct = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    np.testing.assert_allclose(z, direct.flatten(1).numpy(), atol=2e-3, rtol=2e-3)
    assert vae_latents(vae, [], size=SIZE).shape == (0, 1024)


def test_preprocess_scales_to_minus_one_one():
    black, white = Image.new("RGB", (7, 9), (0, 0, 0)), Image.new("L", (5, 5), 255)
    x = preprocess([black, white], 8)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert torch.all(x[0] == -1) and torch.all(x[1] == 1)


def test_deterministic_and_distinct(vae):
    a, b, c = images(3, seed=1)
    first = vae_latents(vae, [a, b, c], size=SIZE)
    np.testing.assert_array_equal(vae_latents(vae, [a, b, c], size=SIZE), first)  # same call, same bits
    alone = vae_latents(vae, [c], size=SIZE)[0]
    np.testing.assert_allclose(alone.astype(np.float32), first[2].astype(np.float32), atol=1e-3)  # any batch slot
    chunked = vae_latents(vae, [a, b, c], size=SIZE, batch_size=2)
    np.testing.assert_allclose(chunked.astype(np.float32), first.astype(np.float32), atol=1e-3)
    assert np.abs(first[0].astype(np.float32) - first[1].astype(np.float32)).max() > 1e-2


def test_size_must_fit_the_vae(vae):
    assert vae_latents(vae, images(1), size=16).shape == (1, 4 * 8 * 8)
    with pytest.raises(ValueError, match="multiple of the VAE's downsampling factor 2"):
        vae_latents(vae, images(1), size=31)
