"""A command that fails before doing its work leaves the store exactly as it was (or creates none)."""

from __future__ import annotations

import pytest

from lugpi_store import NAMESPACES, Store, close_all

FAST = ["--steps", "2", "--size", "32", "--format", "png"]
TABLE = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]


def _everything(path) -> dict:
    store = Store(path)
    out = {ns: list(store.iter_raw(ns)) for ns in NAMESPACES}
    close_all()
    return out


def _other_table(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("text,label,prompt\n" + "".join(f"line {i},{i % 2},drawing {i}\n" for i in range(12)))
    return path


@pytest.fixture
def bad_models(tmp_path, tiny_models):
    return {"missing directory": tmp_path / "no" / "model", "a text model": tiny_models["text"],
            "an image encoder": tiny_models["clip"]}


@pytest.mark.parametrize("which", ["missing directory", "a text model", "an image encoder"])
def test_generate_with_a_model_that_cannot_load_changes_nothing(cli, workspace, tiny_models, tiny_csv, tmp_path,
                                                                 bad_models, which):
    cli("generate", tiny_csv, *TABLE, "--model", tiny_models["sd"], *FAST)  # a store with real content
    before = _everything(workspace / "store")
    cli("generate", _other_table(tmp_path), *TABLE, "--model", bad_models[which], *FAST, code=1)
    assert _everything(workspace / "store") == before


def test_generate_that_fails_on_a_fresh_workspace_creates_no_store(cli, workspace, tiny_csv, tmp_path):
    cli("generate", tiny_csv, *TABLE, "--model", tmp_path / "missing", *FAST, code=1)
    assert not (workspace / "store" / "data.mdb").exists()


def test_embed_with_nothing_generated_changes_nothing(cli, workspace, tiny_models, tiny_csv, tmp_path):
    cli("generate", tiny_csv, *TABLE, "--model", tiny_models["sd"], *FAST)
    before = _everything(workspace / "store")
    other = _other_table(tmp_path)
    result = cli("embed", other, *TABLE, "--encoder", tiny_models["clip"], code=1)
    assert "no images have been generated" in result.stderr
    assert _everything(workspace / "store") == before


def test_registration_and_snapshot_arrive_with_the_first_record(cli, workspace, tiny_models, tiny_csv):
    cli("generate", tiny_csv, *TABLE, "--model", tiny_models["sd"], *FAST)
    store = Store(workspace / "store")
    (fp,) = [entry["fingerprint"] for entry in store.fingerprints().values()]
    assert store.get_meta("latest/generate/tiny")["generator_fingerprint"] == fp
    assert store.get_meta("latest/dataset/tiny") is not None and store.count("images") == 8


def test_a_deferring_store_commits_pending_meta_with_the_next_write(tmp_path):
    from lugpi_store import encode_array, fingerprint, record_key

    store = Store(tmp_path / "s", create=True, defer_meta=True)
    fp = fingerprint({"x": 1})
    store.register("features", fp, {"x": 1})
    store.put_meta("latest/thing", {"a": 1}, defer=True)
    assert store.get_meta("latest/thing") == {"a": 1}  # this process reads what it queued
    assert not (tmp_path / "s" / "data.mdb").exists()  # but nothing is on disk yet
    store.put_many("features", [(record_key(fp, "k"), encode_array([1.0]))])
    close_all()
    again = Store(tmp_path / "s")
    assert again.get_meta("latest/thing") == {"a": 1} and fp[:16] in again.fingerprints()
