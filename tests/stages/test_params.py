"""A stage's Params: the one parser every entry point (command, recipe, grid cell) goes through."""

from __future__ import annotations

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.stages import embed, evaluate, generate, report
from lugpi_cli.stages.common import DatasetParams, TrainingParams, parse_splits
from lugpi_cli.training.config import TrainConfig


def test_defaults_come_from_one_place():
    """Training defaults are TrainConfig's; the typer options are built from the same fields."""
    fields = TrainingParams.param_fields()
    assert fields["epochs"].default == TrainConfig.epochs and fields["lr"].default == TrainConfig.lr
    assert fields["batch_size"].default == TrainConfig.batch_size == 14
    assert TrainingParams().train_config(resolve_workers=False).hashed() == TrainConfig(workers=0).hashed()


def test_recipe_keys_are_the_long_flags():
    keys = generate.Params.keys()
    assert "format" in keys and "image_format" not in keys and "reuse_similar" in keys
    assert generate.Params.from_mapping({"format": "png"}).image_format == "png"
    assert generate.Params.from_mapping({"image_format": "png"}).image_format == "png"  # the attribute works too


@pytest.mark.parametrize(("values", "message"), [
    ({"stepz": 2}, "unknown key 'stepz'"),
    ({"steps": "many"}, "steps: expected an integer (got 'many')"),
    ({"guidance": float("nan")}, "guidance: expected a finite number (got nan)"),
    ({"batch_size": 0}, "batch_size: must be >= 1 (got 0)"),
    ({"compile": "yes"}, "compile takes true or false, got 'yes'"),
    ({"format": "gif"}, "unknown image format 'gif'"),
    ({"splits": "train,dev2"}, "unknown split 'dev2'"),
    ({"steps": [1, 2]}, "steps must be a single value"),
])
def test_bad_values_are_named(values, message):
    with pytest.raises(UserError) as caught:
        generate.Params.from_mapping(values, where="x.toml: generate: ")
    assert message in caught.value.message and caught.value.message.startswith("x.toml: generate: ")


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(UserError) as caught:
        embed.Params.from_mapping({"encodr": "clip"})
    assert "encoder" in caught.value.hint and "pooled_only" in caught.value.hint


def test_toml_values_coerce_like_the_command_line():
    """``size = 512`` in TOML is the string "512" of ``--size 512``; a float option takes an int."""
    p = generate.Params.from_mapping({"size": 512, "guidance": 7})
    assert p.size == "512" and p.guidance == 7.0 and isinstance(p.guidance, float)
    assert p.generation_config("float32").height == 512


def test_the_same_settings_give_the_same_fingerprint_whatever_the_spelling():
    a = generate.Params.from_mapping({"steps": "20", "reuse_similar": "0.9", "format": "png"})
    b = generate.Params.from_mapping({"steps": 20, "reuse_similar": 0.9, "image_format": "png"})
    c = generate.Params.from_mapping({"steps": 20, "format": "png"})
    assert a.generation_config("float32").fingerprint() == b.generation_config("float32").fingerprint()
    assert a.generation_config("float32").fingerprint() != c.generation_config("float32").fingerprint()


def test_repeatable_values():
    assert report.Params.from_mapping({"student": None}).student == ()
    assert report.Params.from_mapping({"student": ["a", "b"]}).student == ("a", "b")
    assert evaluate.Params.from_mapping({"runs": "x"}).runs == ("x",)


def test_dataset_params():
    ds = DatasetParams.from_mapping({"name": "imdb", "limit": 3, "data": "/tmp/x"})
    assert ds.request().limit == 3 and str(ds.request().data) == "/tmp/x"
    with pytest.raises(UserError, match="dataset.name is missing"):
        DatasetParams.from_mapping({"limit": 3})
    with pytest.raises(UserError, match="limit: must be >= 1"):
        DatasetParams.from_mapping({"name": "imdb", "limit": 0})
    p = embed.Params.from_mapping({}, dataset={"name": "imdb"})
    assert isinstance(p.dataset, DatasetParams) and p.dataset.name == "imdb"


def test_parse_splits():
    assert parse_splits("train, dev,test,train") == ["train", "validation", "test"]
    with pytest.raises(UserError):
        parse_splits(" , ")
