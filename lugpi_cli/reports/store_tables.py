"""How `lugpi store info` shows sizes and fingerprint configs (names and settings, no hashes)."""

from __future__ import annotations

from typing import Any


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


SUMMARY_FIRST = ("stage", "model", "run", "kind", "modality", "steps", "guidance", "height", "width", "scheduler",
                 "pooled_only", "dtype", "image_format")


def _config_summary(config: Any, width: int = 90) -> str:
    """The readable part of a fingerprint's config: names and settings first, no hashes."""
    if not isinstance(config, dict):
        return "(unregistered)" if config is None else str(config)[:width]
    config = _with_identities(config)
    keys = [k for k in SUMMARY_FIRST if k in config] + [k for k in config if k not in SUMMARY_FIRST]
    shown = [f"{k}={config[k]}" for k in keys
             if not isinstance(config[k], (dict, list)) and not _is_hash(config[k]) and config[k] is not None]
    text = ", ".join(shown)
    return text if len(text) <= width else text[: width - 1] + "…"


def local_model(identity: dict[str, Any]) -> str:
    """A local model as ``local:DIRECTORY@HASH8`` (the directory name when recorded, a short content hash),
    so two local models never look the same."""
    name = identity.get("directory")
    return f"local:{name}@{str(identity.get('content', ''))[:8]}" if name else \
        f"local@{str(identity.get('content', ''))[:8]}"


def _with_identities(config: dict[str, Any]) -> dict[str, Any]:
    """Model identities (``{"model": "local", "content": ...}``, also nested as ``text_model``) made readable."""
    out = dict(config)
    if out.get("model") == "local":
        out["model"] = local_model(out)
        out.pop("directory", None)
    for key, value in config.items():
        if isinstance(value, dict) and value.get("model") == "local":
            out[key] = local_model(value)
        elif isinstance(value, dict) and isinstance(value.get("model"), str) and set(value) <= {"model", "revision"}:
            out[key] = value["model"] + ("" if value.get("revision") in (None, "main") else f"@{value['revision']}")
    return out


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 32 and all(c in "0123456789abcdef" for c in value)
