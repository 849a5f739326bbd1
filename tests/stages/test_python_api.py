"""The stages from Python, as the README shows them: a Workspace passed explicitly, lineage recorded by the
library, so the CLI afterwards finds (and reuses) what Python made."""

from __future__ import annotations

import json

from lugpi_cli.stages import embed, generate, teacher
from lugpi_cli.workspace import Workspace


def test_python_stages_leave_what_the_commands_find(cli, workspace, tiny_models, tiny_csv):
    ws = Workspace(workspace)
    data = {"name": str(tiny_csv), "text_col": "text", "label_col": "label", "prompt_col": "prompt"}
    gen = generate.Params.from_mapping({"model": str(tiny_models["sd"]), "steps": 2, "size": 32, "format": "png"},
                                       dataset=data)
    assert generate.plan(ws, gen).status == "0 of 8 images cached, 8 to generate"
    assert generate.run(ws, gen).summary.generated == 8
    assert generate.plan(ws, gen).status == "8 of 8 images cached, 0 to generate"
    embedded = embed.run(ws, embed.Params.from_mapping({"encoder": str(tiny_models["clip"])}, dataset=data))
    assert embedded.summary.embedded == 8
    ws.flush()
    label = embed.Params(encoder=str(tiny_models["clip"])).label
    assert ws.pointer("embed", embedded.dataset, label)["encoder_fingerprint"] == embedded.summary.encoder_fingerprint

    # the embed pointer was recorded by the library: a teacher finds the features with no `lugpi embed`
    settings = {"encoder": str(tiny_models["clip"]), "text_model": str(tiny_models["text"]), "hidden": 32,
                "epochs": 1, "max_length": 32}
    params = teacher.Params.from_mapping(settings, dataset=data)
    planned = teacher.plan(ws, params)
    assert planned.status == "to train" and planned.run_name
    result = teacher.run(ws, params)
    assert result.status == "trained" and result.run.name == planned.run_name
    ws.flush()

    # the same settings on the command line: the same run, reused
    out = json.loads(cli("train-teacher", tiny_csv, "--text-col", "text", "--label-col", "label", "--prompt-col",
                         "prompt", "--encoder", tiny_models["clip"], "--text-model", tiny_models["text"],
                         "--hidden", "32", "--epochs", "1", "--max-length", "32", "--json").stdout)
    assert out["run"] == planned.run_name and out["status"] == "reused"
    assert json.loads(cli("generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--prompt-col",
                          "prompt", "--model", tiny_models["sd"], "--steps", "2", "--size", "32", "--format", "png",
                          "--json").stdout)["generated"] == 0
