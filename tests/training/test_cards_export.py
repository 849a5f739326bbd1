"""Model cards in every saved model directory, and `lugpi export` (offline; a push fails clearly)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lugpi_cli.training.runs import Run

from .conftest import TABLE


@pytest.fixture(scope="module")
def trained_root(prepared, tmp_path_factory, tiny_models):
    """A teacher and a student trained once for the module, in their own copy of the prepared workspace."""
    from typer.testing import CliRunner

    from lugpi_cli.app import app
    from lugpi_store import close_all

    ws = tmp_path_factory.mktemp("trained") / "ws"
    shutil.copytree(prepared[0], ws)
    text = ["--text-model", tiny_models["text"], "--max-length", "32", "--epochs", "1", "--batch-size", "8"]
    names = []
    for args in (["train-teacher", prepared[1], *TABLE, "--encoder", tiny_models["clip"], *text, "--hidden", "32"],
                 ["distill", "--teacher", "<teacher>", *text]):
        args = [names[0] if a == "<teacher>" else a for a in args]
        result = CliRunner().invoke(app, ["--workspace", str(ws), *map(str, args), "--json"])
        assert result.exit_code == 0, result.output
        names.append(json.loads(result.stdout)["run"])
    close_all()
    return ws, names


@pytest.fixture
def trained(trained_root, workspace):
    """The module's runs and store in this test's workspace (the runs' configs still name the module's copy)."""
    for part in ("runs", "store"):
        shutil.rmtree(workspace / part, ignore_errors=True)
        shutil.copytree(trained_root[0] / part, workspace / part)
    return tuple(Run(workspace / "runs" / name) for name in trained_root[1])


def _card(directory: Path):
    from huggingface_hub import ModelCard

    return ModelCard.load(directory / "README.md")


def test_every_saved_model_gets_a_model_card(trained, tiny_models):
    teacher, student = trained
    card = _card(student.model_dir)
    data = card.data.to_dict()
    metrics = student.metrics()
    assert data["pipeline_tag"] == "text-classification" and data["library_name"] == "transformers"
    assert "base_model" not in data  # a local directory is no Hub id
    assert "lugpi" in data["tags"] and "distillation-lugpi" in data["tags"]
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"accuracy": metrics["test"]["accuracy"], "f1": metrics["test"]["macro_f1"]}
    assert card.data.eval_results[0].dataset_name == "films" and card.data.eval_results[0].dataset_split == "test"
    text = card.text
    assert "**lugpi**" in text and r"\beta\,\lVert e_T - e_S \rVert_2^2" in text  # the loss and its equation
    assert "| alpha | 3 |" in text and "| tau | 8 |" in text  # its hyperparameters
    assert teacher.name in text and str(tiny_models["clip"]) in text and str(tiny_models["sd"]) in text
    command = student.config()["invocation"]["command"]
    assert command.startswith("lugpi --workspace ") and f" distill --teacher {teacher.name} " in command
    assert command in text
    teacher_card = _card(teacher.model_dir)
    assert teacher_card.data.library_name == "lugpi" and teacher_card.data.pipeline_tag is None
    assert "privileged-information generator" in teacher_card.text and teacher.config()["invocation"]["command"] in teacher_card.text


def test_card_metadata_names_hub_models_and_data_sets(tmp_path):
    from lugpi_cli.cards import card_text

    run = Run(tmp_path / "student-x")
    (run.model_dir).mkdir(parents=True)
    (run.model_dir / "config.json").write_text("{}")
    run.config_path.write_text(json.dumps({
        "name": "student-x", "kind": "student", "method": "kd", "loss_options": {"lam": 0.5, "tau": 4.0},
        "text_model": "distilbert-base-uncased", "labels": ["neg", "pos"], "fingerprint": "ab" * 32,
        "config": {"text_model": {"model": "distilbert-base-uncased", "revision": "main"}, "train": {"lr": 5e-5}},
        "dataset": {"name": "stanfordnlp/imdb", "origin": {"kind": "hub", "id": "stanfordnlp/imdb", "config": None,
                                                           "revision": "main"}},
        "invocation": {"command": "lugpi distill stanfordnlp/imdb --method kd", "cwd": "/w",
                       "within": "lugpi run imdb.toml"}}))
    run.metrics_path.write_text(json.dumps({"test": {"accuracy": 0.75, "macro_f1": 0.7, "n_samples": 4}}))
    text = card_text(run, reference="me/imdb-student")
    assert "base_model: distilbert-base-uncased" in text and "- stanfordnlp/imdb" in text
    assert "Knowledge distillation (Hinton" in text and r"\tau^2" in text and "| lam | 0.5 |" in text
    assert "lugpi run imdb.toml" in text and 'model="me/imdb-student"' in text


def test_export_copies_a_loadable_model_and_its_card(cli, trained, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _teacher, student = trained
    out = tmp_path / "export" / "student"
    result = json.loads(cli("export", student.name, out, "--json").stdout)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                      "tokenizer.json", "tokenizer_config.json"]
    assert result["files"][-1] == "README.md" and not result["replaced"]
    assert not list(out.parent.glob(".*"))  # no staging directory left behind
    tokenizer = AutoTokenizer.from_pretrained(out)
    exported = AutoModelForSequenceClassification.from_pretrained(out).eval()
    original = AutoModelForSequenceClassification.from_pretrained(student.model_dir).eval()
    batch = tokenizer(["the film 3 was good"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(exported(**batch).logits, original(**batch).logits)
    assert exported.config.id2label == {0: "neg", 1: "pos"}
    assert _card(out).data.model_name == student.name
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = json.loads(cli("export", student.name, out, "--json").stdout)
    assert again["replaced"] and {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_refuses_what_it_must_not_replace(cli, trained, tmp_path, workspace):
    teacher, student = trained
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    err = cli("export", student.name, mine, "--overwrite", code=1).stderr
    assert "holds other files than a model's (e.g. notes.txt)" in err and (mine / "notes.txt").exists()
    cli("export", teacher.name, tmp_path / "model")
    err = cli("export", student.name, tmp_path / "model", code=1).stderr
    assert "already holds another model" in err and "--overwrite" in err
    assert "text_encoder" in {p.name for p in (tmp_path / "model").iterdir()}  # the teacher is still there
    cli("export", student.name, tmp_path / "model", "--overwrite")
    assert _card(tmp_path / "model").data.model_name == student.name
    err = cli("export", student.name, workspace, code=1).stderr
    assert "overlaps the run directory" in err and (workspace / "store").is_dir()
    assert "no run 'nope'" in cli("export", "nope", tmp_path / "x", code=1).stderr


def test_push_without_network_fails_clearly_after_a_complete_export(cli, trained, tmp_path, monkeypatch):
    _teacher, student = trained
    err = cli("export", student.name, tmp_path / "bad", "--push-to-hub", "not a repo!", code=1).stderr
    assert "is not a Hub repo id" in err and not (tmp_path / "bad").exists()
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    out = tmp_path / "pushed"
    result = cli("export", student.name, out, "--push-to-hub", "someone/lugpi-student", "--json", code=1)
    error = json.loads(result.stdout.strip().splitlines()[-1])
    assert "cannot push" in error["error"] and "someone/lugpi-student" in error["error"]
    assert "export in" in error["hint"] and "Traceback" not in result.stderr
    assert (out / "model.safetensors").is_file() and 'model="someone/lugpi-student"' in (out / "README.md").read_text()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    err = cli("export", student.name, out, "--push-to-hub", "someone/lugpi-student", code=1).stderr
    assert "the Hub could not be reached" in err or "the Hub refused" in err



@pytest.fixture
def hub_calls(monkeypatch):
    """``HfApi.create_repo`` / ``upload_folder`` replaced by recorders (no network); what each was given,
    and the uploaded folder's files (name -> bytes) as they were at the moment of the upload."""
    from huggingface_hub import HfApi

    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", {"repo_id": repo_id, "token": self.token, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        calls.append(("upload_folder", {"token": self.token, "files": files, **kwargs}))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_uploads_exactly_the_exported_files(cli, trained, tmp_path, hub_calls):
    _teacher, student = trained
    out = tmp_path / "pushed"
    result = json.loads(cli("export", student.name, out, "--push-to-hub", "someone/lugpi-student", "--private",
                            "--json").stdout)
    assert result["pushed_to"] == "https://huggingface.co/someone/lugpi-student"
    assert [name for name, _ in hub_calls] == ["create_repo", "upload_folder"]
    create, upload = hub_calls[0][1], hub_calls[1][1]
    assert create["repo_id"] == "someone/lugpi-student" and create["repo_type"] == "model"
    assert create["private"] is True and create["exist_ok"] is True
    assert upload["repo_id"] == "someone/lugpi-student" and upload["repo_type"] == "model"
    assert Path(upload["folder_path"]) == out.resolve() and student.name in upload["commit_message"]
    exported = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert sorted(upload["files"]) == sorted(result["files"]) == sorted(exported)  # exactly the export, no extras
    assert upload["files"] == exported
    assert 'model="someone/lugpi-student"' in upload["files"]["README.md"].decode()  # the card names the repo
    hub_calls.clear()
    cli("export", student.name, tmp_path / "public", "--push-to-hub", "someone/lugpi-student")
    assert hub_calls[0][1]["private"] is False  # --private is passed through, not assumed


def test_push_passes_the_token_through(trained, tmp_path, hub_calls):
    from lugpi_cli.export import export_run, push_to_hub

    _teacher, student = trained
    done = export_run(student, tmp_path / "tok")
    url = push_to_hub(done.directory, "someone/tokened", token="hf_given", run_name=student.name)
    assert url == "https://huggingface.co/someone/tokened"
    assert [call["token"] for _, call in hub_calls] == ["hf_given", "hf_given"]
    hub_calls.clear()
    push_to_hub(done.directory, "someone/tokened")  # no token: huggingface_hub's own login / HF_TOKEN decide
    assert [call["token"] for _, call in hub_calls] == [None, None]

def test_a_recipe_step_records_its_command_and_the_recipe(cli, workspace, tmp_path, table, tiny_models, text_args):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[dataset]\nname = "{table}"\n' + "".join(f'{k} = "{v}"\n' for k, v in zip(
        ("text_col", "label_col", "prompt_col"), TABLE[1::2])) + f'[[student]]\nid = "base"\nalpha = 0.0\n'
        f'beta = 0.0\ntext_model = "{tiny_models["text"]}"\nepochs = 1\nmax_length = 32\nbatch_size = 8\n')
    done = json.loads(cli("run", recipe, "--json").stdout)
    run = Run(workspace / "runs" / done["runs"]["base"])
    invocation = run.config()["invocation"]
    assert invocation["within"] == f"lugpi run {recipe} --json" and invocation["command"].startswith("lugpi --workspace")
    assert " distill " in invocation["command"] and invocation["within"] in (run.model_dir / "README.md").read_text()
