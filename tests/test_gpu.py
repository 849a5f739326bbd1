"""GPU speed settings, checked on the CPU: each one is off there by default, and forcing it on does not
change results beyond float tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lugpi_cli import gpu
from lugpi_cli.data.samples import Sample
from lugpi_cli.generation import GenerationConfig, load_pipeline
from lugpi_cli.generation.runner import run_pipeline


@pytest.fixture
def pipe_config(tiny_models):
    return GenerationConfig(model=str(tiny_models["sd"]), steps=2, height=32, width=32, image_format="png")


def test_channels_last_unet_and_vae_give_the_same_images(pipe_config):
    pipe = load_pipeline(pipe_config, torch.device("cpu"), torch.float32)
    assert pipe.unet.conv_in.weight.is_contiguous()  # off on the CPU unless forced
    reference = run_pipeline(pipe, ["a cat", "a dog"], [1, 2], pipe_config)
    assert gpu.channels_last(pipe.unet, pipe.vae, device="cpu", force=True)
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    again = run_pipeline(pipe, ["a cat", "a dog"], [1, 2], pipe_config)
    np.testing.assert_allclose(again, reference, atol=1e-5)


def test_tf32_only_on_ampere_and_later(monkeypatch):
    assert not gpu.enable_tf32("cpu")
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert not gpu.enable_tf32("cuda")  # Turing: no TF32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    try:
        a, b = torch.randn(64, 64), torch.randn(64, 64)
        before = a @ b
        assert gpu.enable_tf32("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        torch.testing.assert_close(a @ b, before, rtol=0, atol=0)  # CPU float32 matmuls are untouched
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def test_prepare_pipeline_is_a_no_op_on_the_cpu(pipe_config):
    pipe = load_pipeline(pipe_config, torch.device("cpu"), torch.float32)
    assert gpu.prepare_pipeline(pipe, "cpu") == {"tf32": False, "channels_last": False}


def test_attention_is_scaled_dot_product_and_matches_eager(tiny_models, pipe_config):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lugpi_cli.models import TextClassifier

    pipe = load_pipeline(pipe_config, torch.device("cpu"), torch.float32)
    assert gpu.attention_kind(pipe.unet) == "AttnProcessor2_0"  # diffusers' SDPA processor
    student = TextClassifier.from_pretrained(tiny_models["text"], labels=["a", "b"])
    assert gpu.attention_kind(student.model) == "sdpa"
    torch.manual_seed(0)
    eager = AutoModelForSequenceClassification.from_pretrained(tiny_models["text"], num_labels=2,
                                                               attn_implementation="eager").eval()
    assert gpu.attention_kind(eager) == "eager"
    student.model.load_state_dict(eager.state_dict())
    student.model.eval()
    batch = AutoTokenizer.from_pretrained(tiny_models["text"])(["the film", "a good movie was not bad"],
                                                               padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(student.model(**batch).logits, eager(**batch).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compiled_training_steps_match_eager_ones(tmp_path, tiny_models):
    from transformers import AutoTokenizer

    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import TextClassifier
    from lugpi_cli.training.data import Collator, TrainingData
    from lugpi_cli.training.loop import Objective, TrainConfig, fit
    from lugpi_cli.training.runs import Run

    samples = [Sample(f"s{i}", f"the film was {('bad', 'good')[i % 2]}", "p", i % 2, "train") for i in range(16)]
    val = [Sample(f"v{i}", f"a movie {('bad', 'good')[i % 2]}", "p", i % 2, "validation") for i in range(4)]
    collate = Collator(AutoTokenizer.from_pretrained(tiny_models["text"]), 16)
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"])
        for module in model.modules():  # compiled dropout draws from another RNG stream: compare without it
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        cfg = TrainConfig(epochs=1, batch_size=4, lr=1e-3, seed=0, compile=compiled)
        fit(Run(tmp_path / str(compiled)), Objective(model, build_loss("lugpi", alpha=0.0, beta=0.0)),
            TrainingData(samples), TrainingData(val), collate, cfg, device="cpu")
        results[compiled] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert results[True].keys() == results[False].keys()  # compiled in place: the same parameter names
    for name, value in results[False].items():
        torch.testing.assert_close(results[True][name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert TrainConfig(compile=True).hashed() == TrainConfig().hashed()  # the same run name either way
