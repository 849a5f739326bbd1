"""The CLI shell: help, global options, exit codes, error reporting."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys

from lugpi_cli.app import hoist_global_options

COMMANDS = ["generate", "embed", "train-teacher", "distill", "evaluate", "ablate", "store"]


def test_help_lists_every_subcommand(cli):
    out = cli("--help").stdout
    for name in COMMANDS:
        assert f" {name} " in out
    assert "--workspace" in out and "--json" in out


def test_no_arguments_prints_help(cli):
    assert "Usage" in cli().stdout


def test_bad_option_is_exit_1_with_a_message(cli):
    result = cli("store", "verify", "--no-such-flag", code=1)
    assert "No such option" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args,shown", [
    (("distill", "--alpha", "abc"), "(got 'abc')"),
    (("evaluate", "--alpha-level=abc"), "(got 'abc')"),
    (("train-teacher", "x", "--epochs", "0"), "(got '0')"),
])
def test_a_value_that_does_not_parse_is_named(cli, args, shown):
    result = cli(*args, code=1)
    assert shown in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_json_before_or_after_the_subcommand(cli, workspace):
    from lugpi_store import Store

    Store(workspace / "store", create=True).count("images")
    before = json.loads(cli("--json", "store", "verify").stdout)
    after = json.loads(cli("store", "verify", "--json").stdout)
    assert before == after and before["ok"] is True


def test_global_options_after_the_subcommand_are_hoisted():
    assert hoist_global_options(["store", "info", "-v", "--workspace", "x"]) == ["-v", "--workspace", "x", "store", "info"]
    assert hoist_global_options(["gen", "--", "-v"]) == ["gen", "--", "-v"]
    assert hoist_global_options(["-v", "store"]) == ["-v", "store"]


def test_workspace_option_and_env(cli, tmp_path, monkeypatch):
    from lugpi_store import Store

    Store(tmp_path / "elsewhere" / "store", create=True).count("images")
    cli("store", "info", code=1)  # LUGPI_WORKSPACE (from the fixture) has no store
    cli("--workspace", tmp_path / "elsewhere", "store", "info")
    monkeypatch.setenv("LUGPI_WORKSPACE", str(tmp_path / "elsewhere"))
    cli("store", "info")


def test_verbose_shows_the_traceback(cli):
    assert "Traceback" not in cli("store", "info", code=1).stderr
    assert "Traceback" in cli("-v", "store", "info", code=1).stderr


def test_quiet_suppresses_human_output(cli, workspace):
    from lugpi_store import Store

    Store(workspace / "store", create=True).count("images")
    assert cli("--quiet", "store", "verify").stdout == ""
    assert json.loads(cli("--quiet", "store", "verify", "--json").stdout)["ok"]


def test_console_script_and_module_entry_points(tmp_path):
    for cmd in (["lugpi", "--version"], [sys.executable, "-m", "lugpi_cli", "--version"]):
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("lugpi ")


def test_a_closed_pipe_is_a_quiet_success(tmp_path):
    """`lugpi ... | head`: the reader stopped reading; no error, no traceback, exit 0."""
    import os
    import subprocess
    import sys

    import numpy as np

    from lugpi_store import Store, encode_array, fingerprint, record_key

    fp = fingerprint({"pipe": 1})
    Store(tmp_path / "store", create=True).put("features", record_key(fp, "x"), encode_array(np.zeros(2)))
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "lugpi_cli", "--workspace", str(tmp_path), "store", "info"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr == ""


def test_under_json_an_error_is_one_json_object_too(cli, workspace):
    import json

    missing = json.loads(cli("store", "info", "--json", code=1).stdout)
    assert missing["exit_code"] == 1 and "no feature store" in missing["error"] and "lugpi generate" in missing["hint"]
    bad = json.loads(cli("--json", "distill", "--alpha", "abc", code=1).stdout)
    assert "(got 'abc')" in bad["error"]
    assert cli("store", "info", code=1).stdout == ""  # without --json, stdout stays empty
