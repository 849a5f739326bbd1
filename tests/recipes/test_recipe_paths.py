"""Recipe paths and hints: model directories relative to the recipe file, a missing local model refused by the
dry run as by the real run, and a missing data set's hint in the recipe's words."""

from __future__ import annotations

import json
import shutil


def _write(tmp_path, text: str):
    folder = tmp_path / "experiment"
    folder.mkdir(exist_ok=True)
    path = folder / "r.toml"
    path.write_text(text)
    return path


def test_model_directories_are_relative_to_the_recipe(cli, workspace, tmp_path, tiny_models, tiny_csv, monkeypatch):
    folder = tmp_path / "experiment"
    shutil.copytree(tiny_models["sd"], folder / "models" / "sd")
    shutil.copy(tiny_csv, folder / "films.csv")
    recipe = _write(tmp_path, '[dataset]\nname = "films.csv"\ntext_col = "text"\nlabel_col = "label"\nprompt_col = "prompt"\n'
                              '[generate]\nmodel = "models/sd"\nsteps = 2\nsize = 32\n')
    monkeypatch.chdir(tmp_path)  # not the recipe's folder: its paths still resolve
    out = json.loads(cli("run", recipe, "--dry-run", "--json").stdout)
    assert out["plan"][0]["status"].endswith("to generate")
    assert str((folder / "models" / "sd").resolve()) in out["plan"][0]["command"]
    # the same fingerprint as the model named by its absolute path
    absolute = _write(tmp_path, recipe.read_text().replace('"models/sd"', f'"{(folder / "models" / "sd").resolve()}"'))
    assert json.loads(cli("run", absolute, "--dry-run", "--json").stdout)["generator"] == out["generator"]


def test_a_missing_local_model_fails_the_dry_run_as_the_run(cli, workspace, tmp_path, tiny_csv):
    recipe = _write(tmp_path, f'[dataset]\nname = "{tiny_csv}"\nprompt_col = "prompt"\n'
                              '[generate]\nmodel = "./models/nowhere"\nsteps = 2\n')
    for args in (("run", recipe, "--dry-run"), ("run", recipe)):
        err = cli(*args, code=1).stderr
        assert "model './models/nowhere': no such directory" in err and "r.toml: generate" in err, err
        assert "Traceback" not in err
    assert not workspace.exists()


def test_missing_data_hint_names_what_the_recipe_sets(cli, workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("LUGPI_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    recipe = _write(tmp_path, '[dataset]\nname = "imdb"\n[generate]\nsteps = 2\n')
    err = cli("run", recipe, "--dry-run", code=1).stderr
    assert "no local copy of data set 'imdb'" in err
    assert 'data = "PATH" under [dataset]' in err and "(in r.toml)" in err
    assert "--data PATH" not in err


def test_a_table_files_column_hint_names_the_recipe_key(cli, workspace, tmp_path, tiny_csv):
    recipe = _write(tmp_path, f'[dataset]\nname = "{tiny_csv}"\n[generate]\nsteps = 2\n')
    err = cli("run", recipe, "--dry-run", code=1).stderr
    assert 'set text_col = "COLUMN" under [dataset]' in err and "--text-col" not in err
