"""Devices, dtypes, processes and library noise: what every stage that runs a model needs.

Device ``auto`` picks CUDA (``cuda:LOCAL_RANK`` under ``accelerate launch`` or
``torchrun``), then Apple MPS, then the CPU. Dtype ``auto`` picks bfloat16 on
GPUs that support it, float16 on other GPUs, float32 on the CPU (half
precision is slow there).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lugpi_cli.errors import UserError

if TYPE_CHECKING:  # torch is imported lazily: `lugpi --help` should not pay for it
    import torch

DTYPE_ALIASES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
                 "bfloat16": "bfloat16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in a multi-process launch (``accelerate launch``, ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_info() -> ProcessInfo:
    """Read RANK / WORLD_SIZE / LOCAL_RANK, which both ``accelerate launch`` and ``torchrun`` set."""
    env = os.environ
    try:
        return ProcessInfo(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    except ValueError as exc:
        raise UserError(f"bad distributed environment: {exc}") from exc


def resolve_device(name: str = "auto") -> "torch.device":
    """``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps`` -> a device this machine has."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", process_info().local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"unknown device {name!r}", "Use auto, cpu, cuda, cuda:N or mps.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: this machine has no CUDA GPU", "Use --device auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available here", "Use --device auto or cpu.")
    return device


def resolve_dtype(name: str, device: "torch.device") -> "torch.dtype":
    """``auto`` -> bf16 on GPUs with bf16, fp16 on other GPUs and MPS, fp32 on CPU."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    if name not in DTYPE_ALIASES:
        raise UserError(f"unknown dtype {name!r}", f"Use auto or one of {', '.join(sorted(DTYPE_ALIASES))}.")
    return getattr(torch, DTYPE_ALIASES[name])


def dtype_name(dtype: "torch.dtype") -> str:
    return str(dtype).replace("torch.", "")


#: Device nodes a CUDA (native or WSL) or ROCm GPU shows on Linux; with none of them torch finds no GPU.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


def torch_build_has_gpu() -> bool | None:
    """Whether the installed torch was built with CUDA or ROCm, from its ``torch/version.py`` (read from the
    first ``sys.path`` entry holding one, not imported); None when there is no such file to read."""
    import ast
    from pathlib import Path

    for entry in sys.path:
        path = Path(entry or ".", "torch", "version.py")
        if not path.is_file():
            continue
        try:
            values = {}
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
                if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
                    values[target.id] = ast.literal_eval(node.value)
            return bool(values["cuda"] or values["hip"])
        except (OSError, SyntaxError, ValueError, KeyError):
            return None
    return None


def no_gpu_here() -> bool:
    """True only when torch certainly finds no CUDA/ROCm GPU and no MPS, decided without importing torch:
    not macOS (MPS), and a torch built without CUDA and ROCm, or (Linux) none of :data:`GPU_DEVICE_NODES`."""
    if sys.platform == "darwin":
        return False
    if torch_build_has_gpu() is False:
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def planned_dtype(dtype: str, device: str = "auto") -> str:
    """The dtype name ``dtype_name(resolve_dtype(dtype, resolve_device(device)))`` gives on this machine.

    For a plan (``lugpi run --dry-run``): without importing torch where :func:`dtype_without_torch` can
    tell; torch is asked where a GPU may be present (``auto`` then depends on its bf16 support).
    """
    if "torch" not in sys.modules:
        name = dtype_without_torch(dtype, device)
        if name is not None:
            return name
    return dtype_name(resolve_dtype(dtype, resolve_device(device)))


def dtype_without_torch(dtype: str, device: str = "auto") -> str | None:
    """What :func:`planned_dtype` answers without torch: an explicit dtype on ``--device auto`` (whatever
    device torch would pick, it cannot fail); when the device is surely the CPU (``--device cpu``, or :func:`no_gpu_here`)
    ``auto`` -> float32 and the same errors for ``cuda``/``mps`` and unknown dtypes as torch's path; None
    when only torch can tell (``auto`` where a GPU may be: it depends on the GPU's bf16 support)."""
    import re

    name = (device or "auto").lower()
    cuda = re.fullmatch(r"cuda(:\d+)?", name) is not None
    chosen = (dtype or "auto").lower()
    if chosen in DTYPE_ALIASES and name == "auto":
        return DTYPE_ALIASES[chosen]  # an explicit dtype is the same whatever device torch would pick
    if not (name == "cpu" or (name in ("auto", "mps") or cuda) and no_gpu_here()):
        return None
    if cuda:
        raise UserError(f"--device {name}: this machine has no CUDA GPU", "Use --device auto or cpu.")
    if name == "mps":
        raise UserError(f"--device {name}: MPS is not available here", "Use --device auto or cpu.")
    if chosen == "auto":
        return "float32"
    if chosen not in DTYPE_ALIASES:
        raise UserError(f"unknown dtype {chosen!r}", f"Use auto or one of {', '.join(sorted(DTYPE_ALIASES))}.")
    return DTYPE_ALIASES[chosen]


def library_versions() -> dict[str, str]:
    """Versions that belong in a run's config (reproducibility)."""
    import importlib.metadata  # ~0.1 s: only when a run records its config

    out = {"python": platform.python_version()}
    for package in ("lugpi", "torch", "transformers", "diffusers", "accelerate", "numpy", "lmdb"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def quiet_libraries(verbose: int = 0) -> None:
    """Silence the progress bars and advice transformers/diffusers print (unless ``-vv``).

    Through environment variables the libraries read when they are imported,
    so that commands which never need diffusers do not pay for importing it;
    libraries already imported are quietened directly.
    """
    global _QUIET
    if verbose >= 2:
        return
    _QUIET = True
    for name, value in (("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("DIFFUSERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", message=".*torchvision.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("transformers", "diffusers", "huggingface_hub", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet_loaded()


_QUIET = False


def quiet_loaded() -> None:
    """Quieten transformers/diffusers if they are imported by now (after ``quiet_libraries``)."""
    if not _QUIET:
        return
    for module in ("transformers", "diffusers"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            try:
                loaded.utils.logging.set_verbosity_error()
                loaded.utils.logging.disable_progress_bar()
            except Exception:  # noqa: BLE001 - optional niceties
                pass
