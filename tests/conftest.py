"""Fixtures shared by every test package.

Real corpora live in ``../shared/data`` beside the checkout; tests that read
them skip cleanly when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--heavy", action="store_true", help="also run the tests marked heavy (minutes each)")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` (two simulated nodes, one killed and resumed: minutes each) run with ``--heavy``
    only, so the default suite — CI's — stays well under 15 minutes on 2 cores."""
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavy: run with --heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real corpora not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _close_stores():
    """Each test starts with no LMDB environment open in this process."""
    yield
    from lugpi_store import close_all

    close_all()


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("LUGPI_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def cli(workspace):
    """Run ``lugpi ARGS`` in-process; assert the exit code (default 0)."""
    from lugpi_cli.app import app

    runner = CliRunner()

    def run(*args, code: int = 0):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == code, (
            f"lugpi {' '.join(map(str, args))} exited {result.exit_code}, expected {code}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
        )
        return result

    return run


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny models built from configs and saved once per session; loaded by path like hub ids."""
    from lugpi_cli.runtime import quiet_libraries
    from lugpi_cli.tiny_models import build_tiny_clip_vision, build_tiny_sd, build_tiny_text_model, build_tiny_vit

    quiet_libraries()
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "sd": build_tiny_sd(root / "sd"),
        "clip": build_tiny_clip_vision(root / "clip"),
        "vit": build_tiny_vit(root / "vit"),
        "text": build_tiny_text_model(root / "text"),
    }


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    """A small labelled table with repeated prompts (like CWI targets)."""
    rows = ["text,label,prompt"]
    words = ["cat", "dog", "red house", "blue sea", "old tree", "Cat", "small bird", "green hill"]
    for i in range(24):
        label = "yes" if i % 2 else "no"
        rows.append(f"sentence number {i} about a {words[i % 8]},{label},{words[i % 8]}")
    path = tmp_path / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
