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

On the CPU, oneDNN keeps every bfloat16 kernel it builds (one per matrix shape, up to
1024 by default) in a process-wide cache. Few-shot steps vary their shapes from step
to step, so that cache grew a fit's peak memory by about 220 MiB (all-MiniLM-L6-v2,
SST-5, N = 8; 770 MiB at N = 64) for no speed gain; :func:`resolve_compute_dtype`
therefore bounds it (:data:`ONEDNN_CACHE_CAPACITY`) unless the user set
``ONEDNN_PRIMITIVE_CACHE_CAPACITY``. oneDNN reads that setting once, at its first kernel
in the process, so the bound holds when fewshot's bfloat16 work comes first (or when the
variable is set before Python starts).
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

__all__ = [
    "COMPUTE_DTYPES",
    "ONEDNN_CACHE_CAPACITY",
    "bf16_native",
    "bound_onednn_cache",
    "compute_autocast",
    "inference_dtype",
    "resolve_compute_dtype",
]

COMPUTE_DTYPES = ("auto", "float32", "bfloat16")

# Kernels oneDNN keeps. One SST-5 fit (N = 8; docs/benchmarks.md, issue 12's fifth
# measurement): 1024 (its default) peaked at 1,577 MiB, 64 at 1,388, 16 at 1,348, all in
# 40-44 s; 0 (no cache) at 1,307 MiB but in 56 s.
ONEDNN_CACHE_CAPACITY = 16
_ONEDNN_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


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

    Warns when ``"bfloat16"`` is asked for where it is emulated. A CPU bfloat16 result
    also bounds oneDNN's kernel cache (:func:`bound_onednn_cache`), before any kernel of
    the fit or load that asked is built.
    """
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cpu" and bf16_native(device) else "float32"
    elif dtype == "bfloat16" and not bf16_native(device):
        warnings.warn(
            f"dtype='bfloat16': {device} has no native bfloat16 arithmetic, so torch "
            "emulates it and it runs slower than float32; use dtype='float32' or 'auto'.",
            UserWarning,
            stacklevel=3,
        )
    if dtype == "bfloat16" and device.type == "cpu":
        bound_onednn_cache()
    return dtype


def bound_onednn_cache() -> None:
    """Cap oneDNN's kernel cache at :data:`ONEDNN_CACHE_CAPACITY` unless the user chose one.

    Takes effect only if oneDNN has built no kernel yet in this process (it reads the
    setting once); the user's own ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` always wins.
    """
    if not any(name in os.environ for name in _ONEDNN_CACHE_VARIABLES):
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(ONEDNN_CACHE_CAPACITY)


def compute_autocast(device: torch.device, dtype: str):
    """A context that runs the body in ``dtype`` (float32: no autocast at all)."""
    if dtype != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def inference_dtype(clf) -> str:
    """Prediction precision: bfloat16 only where asked for by name ("auto" trains in it)."""
    return clf.dtype_ if clf.dtype == "bfloat16" else "float32"
