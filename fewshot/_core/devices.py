"""Where and in what precision a model runs: ``device`` and ``dtype`` parameters resolved."""

from __future__ import annotations

import torch

__all__ = ["available_devices", "resolve_device", "resolve_dtype"]

_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; anything else goes to ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index is not None and resolved.index >= count):
            raise ValueError(
                f"device={device!r}: no such CUDA device is available here (this torch "
                f"sees {count} CUDA device{'s' if count != 1 else ''}); available: "
                f"{', '.join(available_devices())}. Use device='auto' to pick one."
            )
    return resolved


def available_devices() -> list[str]:
    """The torch devices this process can use, e.g. ``['cpu', 'cuda:0']``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        matches = [name for name, value in _DTYPES.items() if value == dtype]
        dtype = matches[0] if matches else str(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {sorted(_DTYPES)}.")
    return _DTYPES[dtype]
