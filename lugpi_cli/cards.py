"""Model cards: a ``README.md`` with Hugging Face model-card metadata in every saved model directory.

Written with ``huggingface_hub``'s :class:`ModelCard` / :class:`ModelCardData`
from what the run recorded (``config.json``, ``metrics.json``) and, when a
store is at hand, the generator and encoder configs it registered. The YAML
header holds the base model (the text model, when it is a Hub id), the data
set (when it is a Hub data set), the pipeline tag, tags, metrics and the test
results as ``model-index`` entries; the body the method and its loss (the
equation from the loss's own docstring) with its hyperparameters, the teacher
it learned from, the privileged-information generator and image encoder, the
training settings, and the exact command (and recipe) that made the run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lugpi_cli.training.runs import Run

CARD_NAME = "README.md"
PROJECT_URL = "https://arxiv.org/abs/2309.15238"  # the LUGPI paper
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def is_hub_id(model: str | None) -> bool:
    """A Hugging Face id (``distilbert-base-uncased``, ``org/name``), not a path."""
    return bool(model) and bool(_HUB_ID.match(model)) and not Path(model).expanduser().exists()


def loss_summary(method: str) -> tuple[str, str | None]:
    """(the loss's one-line title, its LaTeX equation) from the registered loss class's docstring."""
    from lugpi_cli.losses import LOSSES

    cls = LOSSES.get(method)
    doc = (cls.__doc__ or "") if cls is not None else ""
    paragraphs = [p for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    title = " ".join(paragraphs[0].split()) if paragraphs else method
    match = re.search(r"\.\. math::\s*\n\s*\n(.*?)(?:\n\s*\n(?! {8})|\Z)", doc, re.S)
    if match is None:
        return title, None
    lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
    return title, "\n".join(lines)


def _generator(store, feature_source: dict[str, Any] | None, dataset: str) -> dict[str, Any] | None:
    """The generator config (and the model as given) of the images a teacher's features came from."""
    if not feature_source or not feature_source.get("generator_fingerprint"):
        return None
    fp = feature_source["generator_fingerprint"]
    out: dict[str, Any] = {"fingerprint": fp}
    if store is None or not store.exists:
        return out
    entry = store.fingerprints().get(fp[:16])
    if entry is not None:
        out.update(entry.get("config") or {})
    from lugpi_cli.lineage import read_pointer

    pointer = read_pointer(store, "generate", dataset)
    if pointer is not None and pointer.get("generator_fingerprint") == fp and pointer.get("model"):
        out["model"] = pointer["model"]
    return out


def _teacher_config(config: dict[str, Any]) -> dict[str, Any] | None:
    directory = config.get("teacher_run_dir")
    path = Path(directory) / "config.json" if directory else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def _plain_text_model(run: Run) -> bool:
    """Whether the model directory loads with ``AutoModelForSequenceClassification`` (no lugpi needed)."""
    model_dir = run.model_dir
    if not (model_dir / "config.json").is_file():
        return False
    lugpi_json = model_dir / "lugpi_model.json"
    return not lugpi_json.is_file() or json.loads(lugpi_json.read_text()).get("kind") == "text"


def card_data(run: Run, config: dict[str, Any], metrics: dict[str, Any]):
    """The YAML header: base model, data set, pipeline tag, tags, metrics, test results (model-index)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = config.get("dataset") or {}
    origin = dataset.get("origin") or {}
    hub_data = origin.get("id") if origin.get("kind") == "hub" else None
    text_model = config.get("text_model")
    identity = (config.get("config") or {}).get("text_model") or {}
    local = identity.get("model") == "local"  # a directory, fingerprinted by content: no Hub id to name
    plain = _plain_text_model(run)
    results = []
    test = metrics.get("test") or {}
    for metric, key, extra in (("accuracy", "accuracy", {}), ("f1", "macro_f1", {"metric_config": "macro"})):
        if test.get(key) is not None:
            results.append(EvalResult(
                task_type="text-classification", dataset_type=hub_data or dataset.get("name", "unknown"),
                dataset_name=dataset.get("name", "unknown"), dataset_split="test",
                dataset_config=origin.get("config"), dataset_revision=origin.get("revision") if hub_data else None,
                metric_type=metric, metric_value=float(test[key]),
                metric_name=f"{'macro F1' if key == 'macro_f1' else 'accuracy'} (test)", **extra))
    tags = ["lugpi", "learning-using-privileged-information", f"lugpi-{config.get('kind', 'model')}"]
    if config.get("kind") == "student":
        tags += ["knowledge-distillation", f"distillation-{config.get('method', 'lugpi')}"]
    return ModelCardData(
        model_name=run.name,
        base_model=text_model if text_model and not local and is_hub_id(text_model) else None,
        datasets=[hub_data] if hub_data else None,
        library_name="transformers" if plain else "lugpi",
        pipeline_tag="text-classification" if plain else None,
        tags=tags,
        metrics=["accuracy", "f1"],
        eval_results=results or None,
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in rows if value is not None]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    elif isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _summary(config: dict[str, Any], teacher: dict[str, Any] | None) -> str:
    kind, modality = config.get("kind"), config.get("modality")
    if kind == "student" and teacher is not None:
        return ("A text-only classifier distilled with lugpi (Learning Using Generated Privileged Information, "
                f"[arXiv:2309.15238]({PROJECT_URL})) from a teacher that read the text together with an image a "
                "text-to-image diffusion model drew for it. The student reads text only: it needs no image, no "
                "diffusion model and no teacher at inference.")
    if kind == "student":
        return ("A text-only classifier fine-tuned with lugpi without a teacher (the baseline the distilled "
                "students are compared with).")
    if modality == "both":
        return ("A multimodal lugpi teacher: it classifies a text together with features of an image a "
                "text-to-image diffusion model drew for it (the privileged information). It is lugpi's own "
                "architecture (`lugpi_cli.models.load_model`), used to teach text-only students.")
    return f"A lugpi teacher of modality {modality!r} (`lugpi_cli.models.load_model` loads it)."


def _usage(plain: bool, reference: str | None) -> str:
    if plain:
        return ("```python\nfrom transformers import pipeline\n\n"
                f"classify = pipeline(\"text-classification\", model=\"{reference or 'PATH-OR-REPO-ID'}\")\n"
                "classify(\"a text to label\")\n```")
    return ("```python\nfrom lugpi_cli.models import load_model\n\n"
            f"model = load_model(\"{reference or 'PATH'}\")  # the directory holding this card\n```")


def _data_section(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    d = config.get("dataset") or {}
    origin = d.get("origin") or {}
    sizes = ", ".join(f"{split} {metrics[split]['n_samples']}" for split in ("train", "validation", "test")
                      if isinstance(metrics.get(split), dict) and "n_samples" in metrics[split])
    columns = {k: d[k] for k in ("text_col", "label_col", "split_col", "prompt_col", "id_col") if d.get(k)}
    return _table([("data set", d.get("name")), ("source", d.get("data")), ("columns", columns or None),
                   ("Hugging Face origin", origin or None), ("--limit (per split)", d.get("limit")),
                   ("samples", sizes or None), ("labels", ", ".join(map(str, config.get("labels") or [])) or None),
                   ("fingerprint", d.get("fingerprint"))])


def _method_section(config: dict[str, Any]) -> str:
    method = config.get("method") or "lugpi"
    title, equation = loss_summary(method)
    parts = [f"**{method}** — {title}"]
    if equation:
        parts.append(f"$$\n{equation}\n$$")
    options = config.get("loss_options") or {}
    if options:
        parts.append("Hyperparameters:\n\n" + _table(sorted(options.items())))
    if config.get("aligned"):
        parts.append(f"Embedding alignment: {config['aligned'].get('note')}.")
    return "\n\n".join(parts)


def _teacher_section(teacher: dict[str, Any], store, *, own: bool = False) -> str:
    """The teacher a student learned from (``own``: a teacher's card about itself)."""
    source = teacher.get("feature_source") or {}
    generator = _generator(store, source, (teacher.get("dataset") or {}).get("name", ""))
    rows = [("teacher run", None if own else teacher.get("name")), ("modality", teacher.get("modality")),
            ("architecture", teacher.get("arch")), ("text model", teacher.get("text_model")),
            ("image encoder (frozen)", teacher.get("encoder")),
            ("encoder fingerprint", source.get("encoder_fingerprint")),
            ("teacher test accuracy", None if own else ((teacher.get("metrics") or {}).get("test") or {}).get("accuracy"))]
    if generator:
        keep = ("model", "steps", "guidance", "height", "width", "scheduler", "timestep_spacing", "negative_prompt",
                "seed", "dtype", "image_format", "fingerprint")
        rows.append(("privileged-information generator", {k: generator[k] for k in keep if k in generator}))
    return _table(rows)


def _results_section(metrics: dict[str, Any]) -> str:
    lines = ["| split | samples | accuracy | macro F1 | ROC-AUC |", "|---|---|---|---|---|"]
    for split in ("train", "validation", "test"):
        m = metrics.get(split)
        if isinstance(m, dict):
            cells = [m.get("n_samples"), m.get("accuracy"), m.get("macro_f1"), m.get("roc_auc")]
            lines.append(f"| {split} | " + " | ".join("-" if c is None else _cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _reproduce_section(config: dict[str, Any]) -> str:
    inv = config.get("invocation") or {}
    parts = []
    if inv.get("command"):
        parts.append(f"Command (run in `{inv.get('cwd', '.')}`):\n\n```bash\n{inv['command']}\n```")
    if inv.get("within"):
        parts.append(f"Run as a step of:\n\n```bash\n{inv['within']}\n```")
    if not parts:
        parts.append("Made through the Python API (no command line was recorded).")
    parts.append("The same command in the same workspace reuses this run; the run name derives from the hash "
                 f"of its config (`{config.get('fingerprint', '')[:16]}`).")
    return "\n\n".join(parts)


def card_text(run: Run, store=None, reference: str | None = None) -> str:
    """The whole card: the YAML header, then the sections (``reference``: the path or repo id to load it by)."""
    config = run.config()
    metrics = run.metrics()
    teacher = _teacher_config(config) if config.get("kind") == "student" else config
    if teacher is not None and teacher is not config:
        teacher = {**teacher, "metrics": Run(Path(config["teacher_run_dir"])).metrics()}
    plain = _plain_text_model(run)
    train = (config.get("config") or {}).get("train") or {}
    sections = [f"# {run.name}", _summary(config, teacher if teacher is not config else None),
                "## How to use", _usage(plain, reference), "## Training data", _data_section(config, metrics)]
    if config.get("kind") == "student":
        sections += ["## Method and loss", _method_section(config)]
        if teacher is not None:
            sections += ["## Teacher and privileged information", _teacher_section(teacher, store)]
    else:
        sections += ["## Privileged information", _teacher_section(config, store, own=True)]
    sections += ["## Results", _results_section(metrics),
                 "## Training", _table([("text model", config.get("text_model")),
                                        ("init", (config.get("config") or {}).get("init")), *sorted(train.items()),
                                        ("best epoch", metrics.get("best_epoch")), ("steps", metrics.get("steps"))]),
                 "Library versions: " + ", ".join(f"{k} {v}" for k, v in sorted((config.get("versions") or {}).items())),
                 "## Reproduce", _reproduce_section(config)]
    data = card_data(run, config, metrics)
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"


def write_model_card(run: Run, directory: str | Path | None = None, store=None, reference: str | None = None) -> Path:
    """Write the card as ``README.md`` into ``directory`` (default: the run's model directory)."""
    from huggingface_hub import ModelCard

    target = Path(directory) if directory is not None else run.model_dir
    target.mkdir(parents=True, exist_ok=True)
    path = target / CARD_NAME
    ModelCard(card_text(run, store, reference)).save(path)
    return path
