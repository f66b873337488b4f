"""Compute precision: bfloat16 autocast where the hardware runs it natively.

``SetFitClassifier(dtype=...)`` keeps float32 weights (the optimiser's master copy and
what is saved and exported) and runs the body's matrix products in bfloat16 under
:func:`torch.autocast`, in training and at inference. That pays only where the hardware
has bfloat16 arithmetic: CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX (oneDNN
kernels). Elsewhere torch emulates it, slower than float32, so ``"auto"`` picks it only
where it is native.
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
    """``"auto"`` -> ``"bfloat16"`` where native, else ``"float32"``; warns on emulated bf16."""
    if dtype == "auto":
        return "bfloat16" if bf16_native(device) else "float32"
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
