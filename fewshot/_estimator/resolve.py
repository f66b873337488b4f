"""The one resolver: estimator parameters, against a loaded model, into an encoding plan.

Everything that embeds (``DistilEmbedder``, ``SetFitClassifier``, ``HeadClassifier``,
``probe_layers``, ``fewshot.viz``, ``fewshot.distributed``, the CLI) asks its estimator
for an :class:`~fewshot._core.plan.EncodingPlan` (the estimator's ``_encoding_plan``
hook), and every hook ends here: this is the only place where layers, pooling, lengths,
threads, backend and cache are resolved against a loaded model.

A default is written once, in an estimator's constructor signature. Parameters an
estimator does not have (``stride`` for a SetFitClassifier, say) take
``DistilEmbedder``'s signature defaults (:func:`encoding_defaults`); what neither the
caller nor a sentence-transformers folder sets comes from :data:`FALLBACKS`.
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Mapping
from functools import cache

from .._core.choices import (
    BACKENDS,
    COMBINE,
    DEFAULT_MODEL,
    HEAD_OUTPUTS,
    LONG_TEXT,
    POOLINGS,
    QUANTIZE,
)
from .._core.devices import resolve_device, resolve_dtype
from .._core.encoding import EncodingSpec
from .._core.loading import LoadedModel, get_model
from .._core.onnx_backend import check_onnx_installed
from .._core.plan import EncodingPlan, as_cache
from .constraints import (
    Boolean,
    CacheReference,
    Devices,
    DType,
    Integer,
    Layers,
    ModelReference,
    Options,
    Prompt,
    Text,
)

__all__ = [
    "CPU_FLOAT32",
    "ENCODING_CONSTRAINTS",
    "FALLBACKS",
    "TRAINING_BASE",
    "check_backend",
    "encoding_defaults",
    "load_model_for",
    "model_name",
    "resolve_defaults",
    "resolve_layers",
    "resolve_plan",
    "training_base",
]

# The settings shared by everything that embeds with a pretrained or fine-tuned model.
ENCODING_CONSTRAINTS = {
    "model": ModelReference(),
    "revision": Text(optional=True),
    "pooling": Options(*POOLINGS),
    "max_length": Integer(2),
    "batch_size": Integer(1),
    "device": Devices(),
    "backend": Options(*BACKENDS),
    "quantize": Options(*QUANTIZE),
    "n_threads": Integer(1, optional=True),
    "progress": Boolean(),
    "trust_remote_code": Boolean(),
    "prompt": Prompt(),
    "dtype": DType(),
    "cache": CacheReference(),
    "combine": Options(*COMBINE),
    "head": Options(None, *HEAD_OUTPUTS),
    "long_text": Options(*LONG_TEXT),
    "stride": Integer(0),
    "normalize": Boolean(optional=True),
}

# Used when neither the caller nor a sentence-transformers folder sets them.
FALLBACKS = {"pooling": "mean", "normalize": False, "max_length": 512}

# A body that trains: float32 master weights run by PyTorch (see fewshot.setfit._precision),
# whatever backend and precision the estimator predicts with.
TRAINING_BASE = {"backend": "torch", "dtype": "float32"}

# What an ONNX export is traced from: float32 weights on the CPU, run by PyTorch, no cache.
CPU_FLOAT32 = {**TRAINING_BASE, "device": "cpu", "quantize": None, "cache": None}


@cache
def encoding_defaults() -> dict:
    """``DistilEmbedder``'s constructor defaults: the encoding settings' one source."""
    from ..embedder import DistilEmbedder

    signature = inspect.signature(DistilEmbedder.__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def model_name(model) -> str:
    """A model reference as the str that loading and messages use."""
    return os.fspath(model)


def resolve_layers(layers, n_layers: int, what: str = "the model") -> tuple[int, ...]:
    """Turn ``layers`` (int, list of ints or "all") into layer numbers ``0..n_layers``.

    Negative numbers count from the top: -1 is the last layer, ``-(n_layers + 1)`` the
    embedding output. ``what`` names the model in an error.

    Examples
    --------
    >>> resolve_layers([0, -1], 6)
    (0, 6)
    >>> resolve_layers("all", 2)
    (0, 1, 2)
    """
    Layers().check("layers", layers)
    if isinstance(layers, str):
        return tuple(range(n_layers + 1))
    requested = [layers] if isinstance(layers, numbers.Integral) else list(layers)
    resolved = []
    for layer in requested:
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(
                f"layer {layer} is out of range for {what}, which has {n_layers} "
                f"layers: use 0..{n_layers} (0 = embedding output, {n_layers} = last) "
                f"or -{n_layers + 1}..-1 counting from the top."
            )
        resolved.append(int(layer) % (n_layers + 1))
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"layers={layers!r} names the same layer twice.")
    return tuple(resolved)


def check_backend(params: Mapping) -> None:
    """The backend/quantize/dtype/device combinations that can run."""
    params = {**encoding_defaults(), **params}
    backend, quantize = params["backend"], params["quantize"]
    if quantize is not None and backend != "onnx":
        raise ValueError(
            f"quantize={quantize!r} is ONNX Runtime's dynamic quantisation; use "
            f"backend='onnx', quantize={quantize!r} (pip install 'fewshot[onnx]')."
        )
    if backend != "onnx":
        return
    dtype = params["dtype"]
    if resolve_dtype(dtype, None) != resolve_dtype("float32", None):
        raise ValueError(
            f"backend='onnx' runs float32 weights, but dtype={dtype!r}; use "
            "dtype='float32' (quantize='int8' for a smaller, faster model)."
        )
    device = params["device"]
    if device != "auto" and resolve_device(device).type != "cpu":
        raise ValueError(
            f"backend='onnx' runs on the CPU, but device={device!r}; use "
            "device='cpu' or 'auto', or backend='torch' on the GPU."
        )
    check_onnx_installed()


def load_model_for(params: Mapping, *, keep: bool = True) -> LoadedModel:
    """The shared pretrained model that ``params`` (an estimator's ``get_params()``) name.

    ``keep=False``: the shared one if it is loaded, else one for the caller alone.
    """
    params = {**encoding_defaults(), **params}
    return get_model(
        model_name(params["model"]),
        revision=params["revision"],
        # ONNX Runtime runs on the CPU; export from weights that live there too.
        device="cpu" if params["backend"] == "onnx" else params["device"],
        dtype=params["dtype"],
        trust_remote_code=bool(params["trust_remote_code"]),
        keep=keep,
    )


def training_base(params: Mapping, *, keep: bool = True) -> LoadedModel:
    """The pretrained model a body trains from: ``params`` with :data:`TRAINING_BASE`."""
    return load_model_for({**params, **TRAINING_BASE}, keep=keep)


def resolve_defaults(params: Mapping, loaded: LoadedModel) -> dict:
    """``params`` with ``pooling``, ``normalize``, ``max_length`` and ``prompt`` filled in.

    The rule: what the caller set wins; else what a sentence-transformers folder states
    (its pooling mode, its ``Normalize`` module, its ``max_seq_length``, the prompt its
    ``default_prompt_name`` names), so its default vectors are the model card's; else
    ``FALLBACKS`` (and no prompt). ``prompt=""`` means no prompt, whatever the folder says.
    """
    filled = {**encoding_defaults(), **params}
    for name, fallback in FALLBACKS.items():
        if filled[name] is None:
            filled[name] = loaded.st_settings.get(name, fallback)
    if filled["prompt"] is None:
        filled["prompt"] = loaded.st_settings.get("prompt")
    return filled


def resolve_plan(loaded: LoadedModel, params: Mapping, **overrides) -> EncodingPlan:
    """Resolve embedding parameters against ``loaded`` into an :class:`EncodingPlan`.

    ``params`` holds an estimator's parameters (those it lacks take DistilEmbedder's
    defaults); ``overrides`` replace some of them (``probe_layers`` asks for every layer
    and pooling at once, for instance). ``pooling`` may be a tuple of poolings.
    """
    params = resolve_defaults({**params, **overrides}, loaded)
    name = f"model {model_name(params['model'])!r}"
    layers = resolve_layers(params["layers"], loaded.n_layers, name)
    _check_head(params["head"], loaded, name)
    if not layers and params["head"] is None:
        raise ValueError("layers=[] and head=None ask for no features; request a layer or a head.")
    max_length = min(int(params["max_length"]), loaded.max_length)
    _check_stride(params, loaded, max_length)
    spec = EncodingSpec(
        layers=layers,
        pooling=params["pooling"],
        combine=params["combine"],
        head=params["head"],
        max_length=max_length,
        long_text=params["long_text"],
        stride=int(params["stride"]),
        normalize=bool(params["normalize"]),
        backend=params["backend"],
        quantize=params["quantize"],
        prompt=params["prompt"] or None,  # "" asks for no prompt
    )
    return EncodingPlan(
        loaded=loaded,
        spec=spec,
        batch_size=int(params["batch_size"]),
        n_threads=params["n_threads"],
        cache=as_cache(params["cache"]),
        progress=bool(params["progress"]),
    )


def _check_head(head, loaded: LoadedModel, name: str) -> None:
    if head is not None and not loaded.has_head:
        architectures = getattr(loaded.config, "architectures", None)
        raise ValueError(
            f"head={head!r} needs a sequence-classification head, but {name} has none "
            f"(architectures: {architectures}). Use head=None, or a model fine-tuned for "
            f"classification such as {DEFAULT_MODEL!r}."
        )


def _check_stride(params: Mapping, loaded: LoadedModel, max_length: int) -> None:
    if params["long_text"] != "chunk":
        return
    stride = int(params["stride"])
    room = max_length - loaded.tokenizer.num_special_tokens_to_add()
    if stride >= room:
        raise ValueError(
            f"stride={stride} must be smaller than the {room} text tokens "
            f"of a window (max_length={max_length} minus special tokens)."
        )
