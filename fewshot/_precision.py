"""Compute precision: bfloat16 autocast where the hardware runs it natively.

``SetFitClassifier(dtype=...)`` keeps float32 weights (the optimiser's master copy and
what is saved and exported) and runs the body's matrix products in bfloat16 under
:func:`torch.autocast`, in training and at inference. That pays only where the hardware
has bfloat16 arithmetic: CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX (oneDNN
kernels). Elsewhere torch emulates it, slower than float32.

``"auto"`` picks bfloat16 on CPUs with native bfloat16 only. Measured
(``benchmarks/bf16_speed.py``, docs/benchmarks.md): on an AVX512-BF16 CPU a MiniLM
fit is about 1.7x faster; on an H200 the few-shot batches (16 pairs) are bound by
kernel launches, not arithmetic, and autocast's extra casts made fits 1.0-1.6x slower.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

__all__ = ["COMPUTE_DTYPES", "bf16_native", "compute_autocast", "resolve_compute_dtype"]

COMPUTE_DTYPES = ("auto", "float32", "bfloat16")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matrix products in hardware."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        try:  # oneDNN's own check: AVX512-BF16 or AMX
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_compute_dtype(dtype: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bfloat16"`` on a CPU with native bf16, else ``"float32"``.

    Warns when ``"bfloat16"`` is asked for where it is emulated.
    """
    if dtype == "auto":
        return "bfloat16" if device.type == "cpu" and bf16_native(device) else "float32"
    if dtype == "bfloat16" and not bf16_native(device):
        warnings.warn(
            f"dtype='bfloat16': {device} has no native bfloat16 arithmetic, so torch "
            "emulates it and it runs slower than float32; use dtype='float32' or 'auto'.",
            UserWarning,
            stacklevel=3,
        )
    return dtype


def compute_autocast(device: torch.device, dtype: str):
    """A context that runs the body in ``dtype`` (float32: no autocast at all)."""
    if dtype != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
