"""Ablation tests reuse the training tests' prepared workspace (images + features) and add a teacher."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.training.conftest import TABLE, prepared, table, teacher_args, text_args  # noqa: F401


@pytest.fixture(scope="module")
def with_teacher(prepared, tiny_models, tmp_path_factory) -> Path:  # noqa: F811
    from typer.testing import CliRunner

    from lugpi_cli.app import app
    from lugpi_store import close_all

    ws = tmp_path_factory.mktemp("with-teacher") / "ws"
    shutil.copytree(prepared[0], ws)
    args = ["train-teacher", prepared[1], *TABLE, "--encoder", tiny_models["clip"], "--text-model",
            tiny_models["text"], "--max-length", "32", "--epochs", "1", "--batch-size", "8", "--hidden", "32"]
    result = CliRunner().invoke(app, ["--workspace", str(ws), *map(str, args)])
    assert result.exit_code == 0, result.output
    close_all()
    return ws


@pytest.fixture
def workspace(with_teacher, tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(with_teacher, ws)
    monkeypatch.setenv("LUGPI_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def grid_args(tiny_models) -> list:
    return ["--text-model", tiny_models["text"], "--epochs", "1", "--max-length", "32", "--batch-size", "8"]
