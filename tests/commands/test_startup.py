"""Fast start: the app, every ``--help`` and the light commands leave the heavy libraries unimported.

Each check runs in a fresh interpreter (``tests/commands/import_trace.py``), which records, for the
first import of each watched library, the modules and lugpi functions that led to it, so a
failure names the module and line at fault (for example ``lugpi_cli.commands.ablate:14 ->
lugpi_cli.ablation.grid:19 -> lugpi_cli.losses:10``). The loss option tables that ``distill``'s
flags are built from, and that plans resolve run names with, come from the torch-free
:mod:`lugpi_cli.loss_specs`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recipe_tables import tiny_student, tiny_tables, write_recipe

REPO = Path(__file__).resolve().parents[2]
TRACER = Path(__file__).with_name("import_trace.py")

#: Model-running libraries: only commands that load a model or train may import them.
MODEL_LIBS = ("torch", "transformers", "diffusers", "accelerate", "safetensors")
#: Analysis, plotting, indexing, data and tracking libraries: only the work that uses them.
OTHER_HEAVY = ("scipy", "statsmodels", "pandas", "faiss", "matplotlib", "pyarrow", "huggingface_hub", "datasets",
               "tensorboard", "wandb", "mlflow")
HEAVY = MODEL_LIBS + OTHER_HEAVY


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The subprocess environment: this checkout first, an empty user cache (nothing is read from one)."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    return {**os.environ, "XDG_CACHE_HOME": str(cache),
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}


def trace(env: dict[str, str], tmp_path: Path, watched, *invocations: list[str], module: str | None = None):
    """Run the invocations (or import ``module``) in a fresh interpreter; the tracer's report and stdout."""
    out = tmp_path / "trace.json"
    argv = ["--import", module] if module else ["--"] + [a for i, inv in enumerate(invocations)
                                                          for a in ([] if i == 0 else ["--next"]) + list(inv)]
    proc = subprocess.run([sys.executable, str(TRACER), str(out), ",".join(watched), *map(str, argv)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and out.exists(), f"tracer failed:\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(out.read_text())
    return report, proc.stdout, proc.stderr


def assert_not_imported(report: dict, forbidden) -> None:
    assert not report["preloaded"], f"already imported at interpreter start: {report['preloaded']}"
    bad = {name: hit for name, hit in report["first_import"].items() if name in forbidden}
    assert not bad, "heavy libraries imported eagerly:\n" + "\n".join(
        f"  {name}, during `{hit['invocation']}`, via\n      " + "\n      -> ".join(hit["chain"])
        for name, hit in bad.items())


def test_importing_the_app_leaves_torch_and_the_other_heavy_libraries_out(env, tmp_path):
    report, _, _ = trace(env, tmp_path, HEAVY, module="lugpi_cli.app")
    assert_not_imported(report, HEAVY)


@pytest.mark.slow  # imports torch in the subprocess
def test_the_tracer_names_the_module_that_imports_torch(env, tmp_path):
    """The check itself can fail: importing the losses imports torch, and the chain says where."""
    report, _, _ = trace(env, tmp_path, ["torch"], module="lugpi_cli.losses")
    chain = report["first_import"]["torch"]["chain"]
    assert chain[0].startswith("lugpi_cli.losses:") and all(":" in link for link in chain)
    with pytest.raises(AssertionError, match=r"torch, during `import lugpi_cli.losses`"):
        assert_not_imported(report, ["torch"])


def _command_paths() -> list[list[str]]:
    import typer

    from lugpi_cli.app import app

    def walk(command, path):
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def test_help_of_every_command_imports_no_heavy_library(env, tmp_path):
    paths = _command_paths()
    assert ["store", "info"] in paths and ["distill"] in paths and len(paths) > 15
    report, stdout, stderr = trace(env, tmp_path, HEAVY, *([*path, "--help"] for path in paths))
    assert report["exit_codes"] == [0] * len(paths), stderr
    assert_not_imported(report, HEAVY)
    # distill's per-method flags, built from the torch-free option tables, are all there
    from lugpi_cli.stages.student import method_flag_table

    for key in method_flag_table():
        assert "--" + key.replace("_", "-") in stdout


def _filled_store(path: Path) -> str:
    from tests.store.test_maintenance import GEN_FP, _fill

    _fill(path)
    from lugpi_store import close_all

    close_all()
    return GEN_FP


def test_store_commands_import_no_heavy_library(env, tmp_path):
    fp = _filled_store(tmp_path / "ws" / "store")
    _filled_store(tmp_path / "other" / "store")
    ws = ["--workspace", str(tmp_path / "ws")]
    report, _, stderr = trace(env, tmp_path, HEAVY, [*ws, "store", "info"], [*ws, "store", "verify"],
                              [*ws, "store", "gc", "--keep-fingerprint", fp[:12], "--dry-run"],
                              [*ws, "store", "merge", str(tmp_path / "other"), "--dry-run"])
    assert report["exit_codes"] == [0, 0, 0, 0], stderr
    assert_not_imported(report, HEAVY)


def test_data_show_imports_no_heavy_library(env, tmp_path, tiny_csv):
    report, stdout, stderr = trace(env, tmp_path, HEAVY, ["--workspace", str(tmp_path / "ws"), "data", "show",
                                                          str(tiny_csv), "--text-col", "text", "--label-col", "label",
                                                          "--prompt-col", "prompt"])
    assert report["exit_codes"] == [0], stderr
    assert "distinct prompts" in stdout
    assert_not_imported(report, HEAVY)


@pytest.mark.slow  # scipy and statsmodels load in the subprocess
def test_evaluate_imports_no_model_library(env, tmp_path):
    """evaluate loads scipy and statsmodels for its tests, never torch or transformers."""
    import numpy as np

    from tests.commands.test_evaluate import N, make_run

    ws = tmp_path / "ws"
    rng = np.random.default_rng(0)
    make_run(ws, "baseline", correct=rng.random(N) < 0.7, alpha=0.0, beta=0.0)
    make_run(ws, "student", correct=rng.random(N) < 0.8)
    report, stdout, stderr = trace(env, tmp_path, HEAVY, ["--workspace", str(ws), "evaluate", "baseline", "student"])
    assert report["exit_codes"] == [0], stderr
    assert "McNemar" in stdout
    assert "statsmodels" in report["first_import"]  # the work was done
    assert_not_imported(report, MODEL_LIBS + ("faiss", "matplotlib", "datasets", "tensorboard", "wandb", "mlflow"))


def _first_json(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


def _tiny_recipe(tmp_path: Path, tiny_models, tiny_csv) -> Path:
    """Every stage on tiny models; students whose run names depend on what their loss reads from the teacher."""
    tables = tiny_tables(tiny_models, tiny_csv)
    tables["student"] += [tiny_student("kd-no-kl", tiny_models, teacher="teacher", method="kd", lam=1.0),
                          tiny_student("rkd", tiny_models, teacher="teacher", method="rkd")]
    return write_recipe(tmp_path / "tiny.toml", tables)


@pytest.mark.slow  # trains a tiny teacher and four tiny students
def test_run_dry_run_imports_no_model_library_and_plans_what_the_stages_make(env, cli, tmp_path, tiny_models,
                                                                             tiny_csv):
    """The torch-free plan names the runs and the generator the stages then make; planned again after the run,
    every image, feature and run is found (the embed fingerprint, dtype included, agrees); `evaluate --paper`
    (which plans the recipe to match its rows) imports no model library either."""
    recipe = _tiny_recipe(tmp_path, tiny_models, tiny_csv)
    ws = ["--workspace", str(tmp_path / "ws")]
    report, stdout, stderr = trace(env, tmp_path, HEAVY, [*ws, "run", str(recipe), "--dry-run", "--json"])
    assert report["exit_codes"] == [0], stderr
    assert_not_imported(report, HEAVY)
    planned = _first_json(stdout)
    done = json.loads(cli(*ws, "run", recipe, "--json").stdout)
    assert {row["id"]: row["run"] for row in planned["plan"] if row["run"]} == done["runs"]
    assert planned["generator"]["fingerprint"] == done["results"]["generate:generate"]["generator_fingerprint"]
    runs = list(done["runs"].values())
    report, stdout, stderr = trace(env, tmp_path, MODEL_LIBS, [*ws, "run", str(recipe), "--dry-run", "--json"],
                                   [*ws, "evaluate", *runs, "--paper", str(recipe), "--json"])
    assert report["exit_codes"] == [0, 0], stderr
    assert_not_imported(report, MODEL_LIBS)
    again, evaluation = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    status = {row["id"]: row["status"] for row in again["plan"]}
    assert status["generate"] == "8 of 8 images cached, 0 to generate"
    assert status[str(tiny_models["clip"])] == "8 of 8 feature records cached, 0 to compute"
    assert all(status[id_] == "done: reused" for id_ in done["runs"])
    assert {r["run"]: r.get("paper") for r in evaluation["runs"]}[done["runs"]["lugpi"]] == 0.9


@pytest.mark.slow  # reads the real IMDB and CWI corpora
@pytest.mark.parametrize("name", ["quickstart.toml", "paper/cwi-news.toml", "related-work.toml",  # every method
                                  "paper/table2-loss-terms.toml"])  # an ablation grid
def test_shipped_recipes_plan_without_model_libraries(env, cli, tmp_path, shared_data, monkeypatch, name):
    """The plan of each shipped recipe, made without torch, equals the one made with torch and the loss
    classes loaded (this process): fingerprints, run names, statuses, commands."""
    import lugpi_cli.losses  # noqa: F401 - this process plans through the loss classes and torch
    import torch  # noqa: F401

    monkeypatch.setenv("LUGPI_DATA", str(shared_data))
    recipe = REPO / "recipes" / name
    args = ["--workspace", str(tmp_path / "ws"), "run", str(recipe), "--dry-run", "--json"]
    report, stdout, stderr = trace({**env, "LUGPI_DATA": str(shared_data)}, tmp_path, MODEL_LIBS, args)
    assert report["exit_codes"] == [0], stderr
    assert_not_imported(report, MODEL_LIBS)
    torch_free = _first_json(stdout)
    assert torch_free == json.loads(cli(*args).stdout)
    assert all(row["run"] for row in torch_free["plan"] if row["stage"] in ("teacher", "student"))


# -- shell completion ------------------------------------------------------------------------


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o default -F _lugpi_completion lugpi"),
                                          ("zsh", "compdef _lugpi_completion lugpi"),
                                          ("fish", "complete --command lugpi")])
def test_show_completion_prints_the_script_for_each_shell(env, tmp_path, shell, marker):
    proc = subprocess.run([sys.executable, "-m", "lugpi_cli", "--show-completion", shell], capture_output=True,
                          text=True, env={**env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and f"_LUGPI_COMPLETE=complete_{shell}" in proc.stdout


def test_install_completion_writes_the_script_and_sources_it(env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run([sys.executable, "-m", "lugpi_cli", "--install-completion", "bash"], capture_output=True,
                          text=True, timeout=120,
                          env={**env, "HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert proc.returncode == 0, proc.stderr
    script = home / ".bash_completions" / "lugpi.sh"
    assert "_LUGPI_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


@pytest.mark.parametrize("words,cword,expected", [
    ("lugpi st", 1, ["store"]),
    ("lugpi store ", 2, ["info", "verify", "gc", "merge"]),
    ("lugpi -v store ", 3, ["info", "verify", "gc", "merge"]),
    ("lugpi distill --ema", 2, ["--ema-decay"]),  # a method's flag, from the torch-free option tables
    ("lugpi data show x --text", 4, ["--text-col"]),
])
def test_completion_protocol_answers_without_heavy_imports(env, tmp_path, words, cword, expected):
    """What the installed bash script does on <TAB>: run lugpi with the completion variables set."""
    completing = {**env, "_LUGPI_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    report, stdout, stderr = trace(completing, tmp_path, HEAVY, [])
    assert report["exit_codes"] == [0], stderr
    assert stdout.split() == expected
    assert_not_imported(report, HEAVY)
