"""`lugpi run --dry-run`: what each stage of a recipe would find cached and would compute.

Everything is derived the way the stages themselves derive it — fingerprints
of the generation and encoder configs, run names from config hashes — without
loading a model or training anything.
"""

from __future__ import annotations

from typing import Any

from lugpi_cli import runtime
from lugpi_cli.errors import UserError


def _dataset(recipe, state, context):
    if "dataset" not in context:
        from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset

        d = recipe.dataset
        request = DatasetRequest(str(d["name"]), d.get("data"), d.get("text_col"), d.get("label_col"),
                                 d.get("split_col"), d.get("prompt_col"), d.get("id_col"), d.get("limit"),
                                 d.get("data_config"), d.get("data_revision"))
        store = state.open_store()
        context["dataset"] = resolve_dataset(request, store if store.exists else None, persist=False)
    return context["dataset"]


def _store(state):
    store = state.open_store()
    return store if store.exists else None


def _count(store, namespace: str, keys: list) -> int:
    return sum(store.contains_many(namespace, keys)) if store is not None and keys else 0


def step_status(recipe, step, state, runs: dict[str, str], context: dict[str, Any]) -> tuple[str, str | None]:
    p = step.params
    store = _store(state)
    if step.stage == "generate":
        from lugpi_cli.commands.options import parse_splits
        from lugpi_cli.generation import GenerationConfig, plan_images
        from lugpi_cli.generation.config import parse_size

        ds = _dataset(recipe, state, context)
        height, width = parse_size(p["size"])
        dtype = runtime.planned_dtype(p["dtype"], p["device"])
        config = GenerationConfig(model=p["model"], revision=p["revision"], steps=p["steps"], guidance=p["guidance"],
                                  height=height, width=width, scheduler=p["scheduler"],
                                  timestep_spacing=p["timestep_spacing"], negative_prompt=p["negative_prompt"],
                                  seed=p["seed"], dtype=dtype, image_format=p["image_format"],
                                  quality=p["quality"])
        images = plan_images(ds.samples(parse_splits(p["splits"])), config.fingerprint(), config.seed)
        context["generator"] = {"fingerprint": config.fingerprint(), "seed": config.seed, "model": config.model}
        have = _count(store, "images", images.keys)
        context["images"] = {"distinct": len(images.keys), "to_generate": len(images.keys) - have}
        return f"{have} of {len(images.keys)} images cached, {len(images.keys) - have} to generate", None
    if step.stage == "embed":
        from lugpi_cli.encoders import EncoderConfig
        from lugpi_cli.lineage import ImageSource

        ds = _dataset(recipe, state, context)
        generator = context.get("generator") or _latest_generator(store, ds.name)
        dtype = runtime.planned_dtype(p["dtype"], p["device"])
        config = EncoderConfig(p["encoder"], revision=p["revision"], pooled_only=p["pooled_only"],
                               dtype=dtype, vae_model=p["vae_model"] or generator.get("model"),
                               vae_size=p["vae_size"])
        context.setdefault("features", {})[config.label] = {
            "encoder_fingerprint": config.fingerprint(), "generator_fingerprint": generator["fingerprint"],
            "generator_seed": generator["seed"], "pooled_only": p["pooled_only"] or config.is_vae}
        if generator["fingerprint"] is None:
            return "images not generated yet: every feature to compute", None
        from lugpi_store import record_key

        keys = list(dict.fromkeys(ImageSource(generator["fingerprint"], generator["seed"], {})
                                  .image_keys(ds.samples()).values()))
        have = _count(store, "features", [record_key(config.fingerprint(), k) for k in keys])
        return f"{have} of {len(keys)} feature records cached, {len(keys) - have} to compute", None
    if step.stage == "teacher":
        from lugpi_cli.encoders import EncoderConfig
        from lugpi_cli.recipe import _train_config
        from lugpi_cli.training.runs import Run, run_name
        from lugpi_cli.training.specs import (
            TeacherSpec,
            teacher_config,
            teacher_modality,
            teacher_output_fingerprint,
        )

        ds = _dataset(recipe, state, context)
        spec = TeacherSpec(modality=teacher_modality(p["modality"], p["arch"]), text_model=p["text_model"],
                           encoder=p["encoder"], init=p["init"],
                           hidden=p["hidden"], heads=p["heads"], dropout=p["dropout"], arch=p["arch"],
                           modality_dropout=p["modality_dropout"], proj_dim=p["proj_dim"], gamma=p["gamma"])
        features = None
        if spec.modality != "text":
            label = EncoderConfig(spec.encoder).label
            features = context.get("features", {}).get(label) or _latest_features(store, ds.name, label)
            if features is None:
                return f"needs {label!r} features (no embed stage for them): cannot plan", None
        config = teacher_config(ds.fingerprint(), spec, _train_config(p), features)
        name = run_name("teacher", ds.name, config)
        context.setdefault("teachers", {})[step.id] = teacher_output_fingerprint(config, name)
        status = _run_status(Run(state.runs_path / name))
        if status.startswith("done") and store is not None:
            from lugpi_cli.training.recache import missing_outputs

            missing = missing_outputs(store, Run(state.runs_path / name), ds)
            status = f"done: {missing} cached outputs missing, re-cached from its saved model" if missing else status
        _count_training(context, status, spec.modality != "image")
        return status, name
    if step.stage == "student":
        return _student_status(step, p, state, runs, context, recipe)
    if step.stage == "ablate":
        return _ablate_status(step, p, state, runs, context, recipe), None
    return "reads the runs above", None


def _count_training(context: dict[str, Any], status: str, text_model: bool) -> None:
    """Runs still to train that read a text model (the GPU-time estimate counts those)."""
    if text_model and not status.startswith("done"):
        context["to_train"] = context.get("to_train", 0) + 1


def _run_status(run) -> str:
    if run.is_done():
        return "done: reused"
    if run.checkpoint_dir.exists():
        return "interrupted: resumes from its last epoch"
    return "to train"


def _latest_generator(store, dataset: str) -> dict[str, Any]:
    pointer = store.get_meta("latest/generate/" + dataset.lower()) if store is not None else None
    if pointer is None:
        return {"fingerprint": None, "seed": 0, "model": None}
    return {"fingerprint": pointer["generator_fingerprint"], "seed": int(pointer.get("seed", 0)),
            "model": pointer.get("model")}


def _latest_features(store, dataset: str, label: str) -> dict[str, Any] | None:
    return store.get_meta(f"latest/embed/{dataset.lower()}/{label}") if store is not None else None


def _student_config_name(ds, p, teacher_fp, options) -> tuple[dict, str]:
    from lugpi_cli.loss_specs import resolve_loss
    from lugpi_cli.recipe import _train_config
    from lugpi_cli.training.runs import run_name
    from lugpi_cli.training.specs import StudentSpec, student_config

    spec = StudentSpec(text_model=p["text_model"], init=p["init"], method=p["method"],
                       options=tuple(sorted(options.items())))
    hparams, teacher_fields = resolve_loss(spec.method, options)  # build_loss's .hparams, .teacher_fields
    config = student_config(ds.fingerprint(), spec, hparams, _train_config(p), teacher_fp if teacher_fields else None)
    return config, run_name("student", ds.name, config)


def _student_status(step, p, state, runs, context, recipe) -> tuple[str, str | None]:
    from lugpi_cli.commands.distill import flag_values, loss_options
    from lugpi_cli.training.runs import Run

    ds = _dataset(recipe, state, context)
    if p.get("limit") and step.refs.get("teacher"):
        from lugpi_cli.data.snapshot import limit_dataset

        ds = limit_dataset(ds, p["limit"])
    options = loss_options(p["method"], flag_values(p), p["option"] or [])
    teacher_fp = context.get("teachers", {}).get(step.refs.get("teacher"))
    if step.refs.get("teacher") and teacher_fp is None:
        return "its teacher cannot be planned yet", None
    _, name = _student_config_name(ds, p, teacher_fp, options)
    status = _run_status(Run(state.runs_path / name))
    _count_training(context, status, True)
    return status, name


def _ablate_status(step, p, state, runs, context, recipe) -> str:
    from lugpi_cli.ablation.grid import PRESET_FIXED, PRESETS, expand, parse_assignment, parse_grid
    from lugpi_cli.data.snapshot import limit_dataset
    from lugpi_cli.training.runs import Run

    ds = limit_dataset(_dataset(recipe, state, context), p.get("limit"))
    levels = dict(parse_grid(p["grid"] or []))
    fixed = {k: v[0] for k, v in (parse_assignment(s, flag="--set") for s in p["fixed"] or [])}
    if p["preset"]:
        levels.update(PRESETS[p["preset"]])
        fixed = {**PRESET_FIXED[p["preset"]], **fixed}
    fixed.setdefault("text_model", p["text_model"])
    cells = expand(levels, fixed, p["seeds"] or 1)
    teacher_fp = context.get("teachers", {}).get(step.refs.get("teacher"))
    done = 0
    base = {**p, "grad_accum": 1, "early_stopping": None, "warmup": 0.0, "weight_decay": 0.01,
            "mixed_precision": "auto", "seed": 0, "init": "pretrained", "method": "lugpi"}
    for cell in cells:
        student, loss, train = cell.student_and_train(_train(base))
        q = {**base, **student, "epochs": train.epochs, "lr": train.lr, "batch_size": train.batch_size,
             "max_length": train.max_length, "max_steps": train.max_steps, "seed": train.seed,
             "grad_accum": train.grad_accum, "warmup": train.warmup_ratio, "weight_decay": train.weight_decay,
             "early_stopping": train.early_stopping}
        try:
            _, name = _student_config_name(ds, q, teacher_fp, loss)
        except UserError:
            continue
        done += Run(state.runs_path / name).is_done()
    context["to_train"] = context.get("to_train", 0) + len(cells) - done
    return f"{done} of {len(cells)} cells done, {len(cells) - done} to train"


def _train(p):
    from lugpi_cli.recipe import _train_config

    return _train_config(p)
