"""The tiny recipe the recipe, start-up and equivalence tests run: every stage on the session's tiny models,
as plain tables a test adjusts, then written as TOML (``write_recipe``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def tiny_student(id_: str, tiny_models, **options: Any) -> dict[str, Any]:
    """A ``[[student]]`` table on the tiny text model (one epoch, 32 tokens) with ``options``."""
    return {"id": id_, **options, "text_model": tiny_models["text"], "epochs": 1, "max_length": 32}


def tiny_tables(tiny_models, tiny_csv) -> dict[str, Any]:
    """Generate, embed, one teacher, a baseline and a LUGPI student, evaluate, one paper number."""
    return {
        "title": "tiny",
        "dataset": {"name": str(tiny_csv), "text_col": "text", "label_col": "label", "prompt_col": "prompt"},
        "generate": {"model": tiny_models["sd"], "steps": 2, "size": "32"},
        "embed": [{"encoder": tiny_models["clip"]}],
        "teacher": [{"id": "teacher", "encoder": tiny_models["clip"], "text_model": tiny_models["text"],
                     "hidden": 32, "epochs": 1, "max_length": 32}],
        "student": [tiny_student("baseline", tiny_models, alpha=0.0, beta=0.0),
                    tiny_student("lugpi", tiny_models, teacher="teacher")],
        "evaluate": {"baseline": "baseline"},
        "paper": {"lugpi": 0.9},
    }


def _value(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_recipe(path: Path, tables: dict[str, Any], extra: str = "") -> Path:
    """``tables`` as TOML (top-level keys, then ``[table]`` for a dict and ``[[table]]`` per item of a list of
    dicts, in order), then the raw text ``extra``."""
    lines = [f"{k} = {_value(v)}" for k, v in tables.items() if not isinstance(v, (dict, list))]
    for name, value in tables.items():
        for table, header in ([(value, f"[{name}]")] if isinstance(value, dict) else
                              [(item, f"[[{name}]]") for item in value] if isinstance(value, list) else []):
            lines += [header, *(f"{k} = {_value(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path
