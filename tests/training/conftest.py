"""A workspace with generated images and tiny-CLIP features of a small table, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

TABLE = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]


def write_table(path: Path, n: int = 48) -> Path:
    rows = ["text,label,prompt"]
    for i in range(n):
        label = ("neg", "pos")[i % 2]
        rows.append(f"the film {i} was {('bad', 'good')[i % 2]},{label},a photo of {('cat', 'dog')[i % 2]} {i}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_models) -> tuple[Path, Path]:
    from lugpi_cli.app import app
    from lugpi_store import close_all

    root = tmp_path_factory.mktemp("prepared")
    table = write_table(root / "films.csv")
    runner = CliRunner()
    for args in (["generate", table, *TABLE, "--model", tiny_models["sd"], "--steps", "2", "--size", "32"],
                 ["embed", table, *TABLE, "--encoder", tiny_models["clip"]]):
        result = runner.invoke(app, ["--workspace", str(root / "ws"), *map(str, args)])
        assert result.exit_code == 0, result.output
    close_all()
    return root / "ws", table


@pytest.fixture
def workspace(prepared, tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(prepared[0], ws)
    monkeypatch.setenv("LUGPI_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def table(prepared) -> Path:
    return prepared[1]


@pytest.fixture
def text_args(tiny_models) -> list:
    return ["--text-model", tiny_models["text"], "--max-length", "32", "--epochs", "2", "--batch-size", "8"]


@pytest.fixture
def teacher_args(tiny_models, table, text_args) -> list:
    return ["train-teacher", table, *TABLE, "--encoder", tiny_models["clip"], *text_args, "--hidden", "32"]
