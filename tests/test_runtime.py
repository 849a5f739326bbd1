"""The plan's dtype (``runtime.planned_dtype``): what torch resolves on this machine, decided without torch
where the device is surely the CPU."""

from __future__ import annotations

import pytest
import torch

from lugpi_cli import runtime
from lugpi_cli.errors import UserError

DTYPES = ["auto", "float32", "fp32", "float16", "FP16", "bf16", "bfloat16", "int8"]
DEVICES = ["auto", "cpu", "CPU", "cuda", "cuda:1", "mps"]


def _by_torch(dtype: str, device: str) -> str:
    return runtime.dtype_name(runtime.resolve_dtype(dtype, runtime.resolve_device(device)))


def _outcome(call, *args):
    try:
        return "ok", call(*args)
    except UserError as exc:
        return "error", str(exc)


def test_this_machine_is_known_to_have_no_gpu_without_torch():
    """This machine's torch is a CPU build (torch/version.py: cuda = hip = None), as torch itself says."""
    assert runtime.torch_build_has_gpu() is (torch.version.cuda is not None or torch.version.hip is not None)
    assert runtime.no_gpu_here() is (not torch.cuda.is_available() and not torch.backends.mps.is_available())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_torch_free_answer_is_torchs(dtype, device):
    """Every answer (a dtype name or the error message) equals the one torch's path gives here."""
    if not runtime.no_gpu_here():
        pytest.skip("a GPU may be present: the plan asks torch")
    assert _outcome(runtime.dtype_without_torch, dtype, device) == _outcome(_by_torch, dtype, device)


def test_where_a_gpu_may_be_present_torch_is_asked(monkeypatch):
    """A CUDA build of torch and a GPU device node: only torch can tell bf16 from fp16 for `auto`."""
    monkeypatch.setattr(runtime, "torch_build_has_gpu", lambda: True)
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert not runtime.no_gpu_here()
    assert runtime.dtype_without_torch("auto", "auto") is None
    assert runtime.dtype_without_torch("bf16", "cuda") is None
    assert runtime.dtype_without_torch("auto", "cpu") == "float32"  # the CPU whatever the machine has
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: False)  # a CUDA build, no GPU device node
    assert runtime.no_gpu_here() and runtime.dtype_without_torch("auto", "auto") == "float32"
    monkeypatch.setattr(runtime.sys, "platform", "darwin")  # MPS: only torch knows
    assert not runtime.no_gpu_here()


def test_an_unreadable_torch_version_file_means_ask_torch(monkeypatch, tmp_path):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "version.py").write_text("cuda = some_call()\n")
    monkeypatch.setattr(runtime.sys, "path", [str(tmp_path)])
    assert runtime.torch_build_has_gpu() is None
    monkeypatch.setattr(runtime.sys, "path", [str(tmp_path / "nowhere")])
    assert runtime.torch_build_has_gpu() is None


def test_an_explicit_dtype_on_device_auto_needs_no_torch_even_where_a_gpu_may_be(monkeypatch):
    """`--dtype float16` (any explicit dtype) gives that dtype whatever device `auto` picks: a plan on a GPU
    machine need not import torch for it; `auto` there still asks torch (bf16 support), and so does an
    explicit CUDA device (is it there?)."""
    monkeypatch.setattr(runtime, "torch_build_has_gpu", lambda: True)
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert runtime.dtype_without_torch("float16", "auto") == "float16"
    assert runtime.dtype_without_torch("bf16", "auto") == "bfloat16"
    assert runtime.dtype_without_torch("auto", "auto") is None
    assert runtime.dtype_without_torch("fp16", "cuda:0") is None
    assert runtime.dtype_without_torch("nonsense", "auto") is None  # torch's path names the bad value
    with pytest.raises(UserError, match="unknown dtype 'nonsense'"):
        runtime.dtype_without_torch("nonsense", "cpu")
