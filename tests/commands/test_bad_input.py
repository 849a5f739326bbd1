"""Bad input a real user types: NaN/inf options (CLI, recipes, grids) and a workspace that is a file."""

from __future__ import annotations

import json

import pytest

NON_FINITE = ["nan", "-inf", "+Infinity"]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("args,option", [
    (("generate", "cwi-news", "--guidance"), "--guidance"),
    (("generate", "cwi-news", "--reuse-similar"), "--reuse-similar"),
    (("distill", "--alpha"), "--alpha"),
    (("distill", "--beta"), "--beta"),
    (("distill", "--tau"), "--tau"),
    (("train-teacher", "imdb", "--lr"), "--lr"),
    (("train-teacher", "imdb", "--weight-decay"), "--weight-decay"),
    (("distill", "--warmup"), "--warmup"),
    (("evaluate", "--alpha-level"), "--alpha-level"),
])
def test_non_finite_float_options_are_refused_naming_the_option(cli, workspace, args, option, value):
    result = cli(*args, value, code=1)
    text = " ".join(result.stderr.split())
    assert option in text and "not a finite number" in text and value in text
    assert "Traceback" not in result.stderr and "Unexpected" not in result.stderr
    assert not (workspace / "store").exists()


def test_every_float_option_of_every_command_is_checked():
    import typer

    from lugpi_cli.app import app

    group = typer.main.get_command(app)
    seen = []

    def walk(command):
        for param in getattr(command, "params", []):
            if getattr(getattr(param, "type_descriptor", None), "annotation", None) is float:
                seen.append(param.name)
                assert getattr(param, "_lugpi_finite", False), param.name
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(group)
    assert {"guidance", "lr", "alpha", "tau", "weight_decay"} <= set(seen)


def test_non_finite_json_error(cli):
    result = cli("generate", "cwi-news", "--guidance", "nan", "--json", code=1)
    error = json.loads(result.stdout)
    assert error["exit_code"] == 1 and "--guidance" in error["error"]


@pytest.mark.parametrize("body,where", [
    ('[generate]\nguidance = nan\n', "guidance"),
    ('[generate]\nguidance = inf\n', "guidance"),
    ('[[teacher]]\nid = "t"\nlr = nan\n', "lr"),
    ('[[teacher]]\nid = "t"\n[[student]]\nid = "s"\nteacher = "t"\ntau = -inf\n', "tau"),
    ('[[teacher]]\nid = "t"\n[ablate]\nteacher = "t"\n[ablate.grid]\nalpha = [0, nan]\n', "alpha"),
    ('[[teacher]]\nid = "t"\n[ablate]\nteacher = "t"\n[ablate.grid]\nalpha = [0, 1]\n[ablate.set]\nlr = inf\n', "lr"),
])
def test_non_finite_values_in_recipes_are_refused(cli, tmp_path, body, where):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[dataset]\nname = "imdb"\n\n' + body)
    result = cli("run", recipe, "--dry-run", code=1)
    text = " ".join(result.stderr.split())
    assert where in text and ("finite" in text) and "Traceback" not in result.stderr


@pytest.mark.parametrize("spec", [("--grid", "alpha=0,nan"), ("--grid", "tau=inf"), ("--set", "lr=nan"),
                                  ("--grid", "weight_decay=-inf")])
def test_non_finite_grid_values_are_refused(cli, spec):
    args = ["ablate", *spec] + (["--grid", "alpha=0,1"] if spec[0] == "--set" else [])
    result = cli(*args, code=1)
    text = " ".join(result.stderr.split())
    assert "finite" in text and spec[1].split("=")[0] in text and "Traceback" not in result.stderr


COMMAND_LINES = [
    ("generate", "cwi-news", "--limit", "2"),
    ("embed", "cwi-news"),
    ("probe", "cwi-news"),
    ("train-teacher", "cwi-news"),
    ("distill", "--alpha", "0", "--beta", "0", "--dataset", "cwi-news"),
    ("distill",),
    ("evaluate",),
    ("ablate", "--grid", "alpha=0,1"),
    ("report",),
    ("store", "info"),
    ("store", "verify"),
    ("store", "gc", "--drop-fingerprint", "abcdef"),
    ("store", "merge", "elsewhere"),
    ("data", "show", "cwi-news"),
    ("demo",),
    ("run", "recipe.toml"),
    ("export", "student-x", "out"),
]


@pytest.mark.parametrize("args", COMMAND_LINES, ids=lambda a: " ".join(a[:2]))
def test_a_workspace_that_is_a_file_is_refused_by_every_command(cli, tmp_path, args):
    file = tmp_path / "FILE"
    file.write_text("not a workspace")
    result = cli("-w", file, *args, code=1)
    assert f"the workspace {file} is a file" in result.stderr and "Traceback" not in result.stderr
    assert file.read_text() == "not a workspace"
    inside = cli("-w", file / "sub", *args, code=1)
    assert "which is a file" in inside.stderr


def test_every_command_is_in_the_workspace_list():
    import typer

    from lugpi_cli.app import app

    group = typer.main.get_command(app)
    covered = {a[0] for a in COMMAND_LINES}
    assert set(group.commands) <= covered
