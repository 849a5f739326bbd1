"""`lugpi demo`: the whole method offline; the second run reuses everything."""

from __future__ import annotations

import json

import pytest
from PIL import Image


@pytest.mark.slow
def test_demo_end_to_end_and_again(cli, workspace, monkeypatch):
    first = json.loads(cli("demo", "--epochs", "1", "--json").stdout)
    assert set(first["runs"]) == {"text-only", "teacher", "baseline", "lugpi"}
    for name in ("contact_sheet", "densities", "heatmap"):
        image = Image.open(first["report"][name])
        image.load()
        assert min(image.size) > 100
    rows = first["evaluation"]["runs"]
    assert len(rows) == 4 and all(0 <= r["metrics"]["accuracy"] <= 1 for r in rows)

    # the second run: no diffusion, no encoder forward, no training
    from lugpi_cli.encoders import embedder
    from lugpi_cli.generation import runner
    from lugpi_cli.training import lifecycle as stages

    calls = {"pipeline": 0, "encode": 0, "fit": 0}

    def counting(name, original):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(runner, "run_pipeline", counting("pipeline", runner.run_pipeline))
    monkeypatch.setattr(embedder, "encode", counting("encode", embedder.encode))
    monkeypatch.setattr(stages, "fit", counting("fit", stages.fit))
    second = json.loads(cli("demo", "--epochs", "1", "--json").stdout)
    assert calls == {"pipeline": 0, "encode": 0, "fit": 0}
    assert second["runs"] == first["runs"]
    assert second["seconds"] < first["seconds"]
