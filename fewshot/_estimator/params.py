"""Estimator parameters: declared constraints, and the one resolver into an encoding plan.

Every estimator declares its parameters as a ``{name: constraint}`` mapping and checks
them with :func:`validate_params` (in ``fit``, never in ``__init__``). Everything that
embeds (``DistilEmbedder``, ``SetFitClassifier``, ``probe_layers``, ``fewshot.viz``,
``fewshot.distributed``, the CLI) turns parameters into an
:class:`~fewshot._core.plan.EncodingPlan` with :func:`resolve_plan`, the only place where
layers, pooling, lengths, threads, backend and cache are resolved against a loaded model.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping

import numpy as np

from .._core.encoding import COMBINE, HEAD_OUTPUTS, LONG_TEXT, EncodingSpec
from .._core.loading import DEFAULT_MODEL, LoadedModel, get_model, resolve_device, resolve_dtype
from .._core.onnx_backend import BACKENDS, QUANTIZE, check_onnx_installed
from .._core.plan import EncodingPlan, as_cache
from .._core.pooling import POOLINGS
from .._core.prompt import prompt_parts

__all__ = [
    "EMBEDDER_CONSTRAINTS",
    "ENCODING_CONSTRAINTS",
    "Boolean",
    "Classifier",
    "Integer",
    "ModelReference",
    "Options",
    "Prompt",
    "Real",
    "check_backend",
    "embedding_plan",
    "load_model_for",
    "model_name",
    "resolve_defaults",
    "resolved_normalize",
    "resolve_layers",
    "resolve_plan",
    "validate_params",
]


# -- constraints ------------------------------------------------------------------------


class Options:
    """One of a fixed set of values (``None`` allowed only when listed)."""

    def __init__(self, *values):
        self.values = values

    def check(self, name, value):
        if value not in self.values:
            raise ValueError(f"{name}={value!r} is not valid; choose one of {list(self.values)}.")


class Integer:
    """An int (not a bool) ``>= minimum``; with ``optional`` also None."""

    def __init__(self, minimum, *, optional=False):
        self.minimum, self.optional = minimum, optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or value < self.minimum
        ):
            raise ValueError(f"{name} must be an int >= {self.minimum}, got {value!r}.")


class Real:
    """A real number in ``[low, high)`` (``high=None``: unbounded); ``low_open`` excludes low.

    With ``optional`` also None.
    """

    def __init__(self, low, high=None, *, low_open=False, optional=False):
        self.low, self.high, self.low_open = low, high, low_open
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok:
            ok = value > self.low if self.low_open else value >= self.low
            ok = ok and (self.high is None or value < self.high)
        if not ok:
            if self.high is None:
                bound = f"> {self.low}" if self.low_open else f">= {self.low}"
            else:
                bound = f"in {'(' if self.low_open else '['}{self.low}, {self.high})"
            raise ValueError(f"{name} must be a float {bound}, got {value!r}.")


class Boolean:
    """True or False (numpy bools too); with ``optional`` also None."""

    def __init__(self, *, optional=False):
        self.optional = optional

    def check(self, name, value):
        if value is None and self.optional:
            return
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}.")


class ModelReference:
    """A Hugging Face model id or a folder: a non-empty str or any ``os.PathLike``."""

    def check(self, name, value):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise TypeError(
                f"{name} must be a Hugging Face model id or a folder path (str or "
                f"pathlib.Path), got {value!r}."
            )


class Prompt:
    """None, or a str: a template with exactly one ``{text}`` field, or a prefix.

    Other braces must be escaped as ``{{`` and ``}}`` (see :mod:`fewshot._core.prompt`).
    """

    def check(self, name, value):
        if value is not None:
            prompt_parts(value)


class Classifier:
    """None or an unfitted scikit-learn classifier (checked before any training)."""

    def check(self, name, value):
        from sklearn.base import is_classifier

        if value is None:
            return
        if not (hasattr(value, "fit") and hasattr(value, "predict")):
            raise TypeError(f"{name} must be a scikit-learn classifier or None, got {value!r}.")
        if not is_classifier(value):
            raise TypeError(
                f"{name}={value!r} is not a classifier (a regressor or transformer would "
                "only fail after fine-tuning); pass a classifier such as "
                "LogisticRegression(), or None for the default."
            )


class Devices:
    """``"auto"`` or a torch device that exists here."""

    def check(self, name, value):
        resolve_device(value)


class DType:
    """A dtype name that torch runs: "float32", "float16" or "bfloat16"."""

    def check(self, name, value):
        resolve_dtype(value, None)


class CacheReference:
    """None, a non-empty folder path or an EmbeddingCache."""

    def check(self, name, value):
        as_cache(value)


def validate_params(estimator, constraints: Mapping) -> None:
    """Check every parameter named in ``constraints``; raise naming the first bad one."""
    for name, constraint in constraints.items():
        constraint.check(name, getattr(estimator, name))


# The settings shared by everything that embeds with a pretrained or fine-tuned model.
ENCODING_CONSTRAINTS = {
    "model": ModelReference(),
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
}


def model_name(model) -> str:
    """A model reference as the str that loading and messages use."""
    return os.fspath(model)


# -- resolution ------------------------------------------------------------------------


def resolve_layers(layers, n_layers: int, model: str = "the model") -> tuple[int, ...]:
    """Turn ``layers`` (int, list of ints or "all") into layer numbers ``0..n_layers``.

    Negative numbers count from the top: -1 is the last layer, ``-(n_layers + 1)`` the
    embedding output.

    Examples
    --------
    >>> resolve_layers([0, -1], 6)
    (0, 6)
    >>> resolve_layers("all", 2)
    (0, 1, 2)
    """
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(
                f"layers={layers!r} is not valid; use an int, a list of ints or 'all'."
            )
        return tuple(range(n_layers + 1))
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
        requested = [layers]
    elif isinstance(layers, (list, tuple, range, np.ndarray)):
        requested = list(layers)
    else:
        raise TypeError(
            f"layers must be an int, a list of ints or 'all', got {type(layers).__name__}."
        )
    resolved = []
    for layer in requested:
        if not isinstance(layer, numbers.Integral) or isinstance(layer, bool):
            raise TypeError(f"layers holds {layer!r}; every layer must be an int.")
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(
                f"layer {layer} is out of range for {model}, which has {n_layers} "
                f"layers: use 0..{n_layers} (0 = embedding output, {n_layers} = last) "
                f"or -{n_layers + 1}..-1 counting from the top."
            )
        resolved.append(int(layer) % (n_layers + 1))
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"layers={layers!r} names the same layer twice.")
    return tuple(resolved)


def check_backend(params: Mapping) -> None:
    """The backend/quantize/dtype/device combinations that can run."""
    backend, quantize = params.get("backend", "torch"), params.get("quantize")
    if quantize is not None and backend != "onnx":
        raise ValueError(
            f"quantize={quantize!r} is ONNX Runtime's dynamic quantisation; use "
            f"backend='onnx', quantize={quantize!r} (pip install 'fewshot[onnx]')."
        )
    if backend != "onnx":
        return
    dtype = params.get("dtype", "float32")
    if resolve_dtype(dtype, None) != resolve_dtype("float32", None):
        raise ValueError(
            f"backend='onnx' runs float32 weights, but dtype={dtype!r}; use "
            "dtype='float32' (quantize='int8' for a smaller, faster model)."
        )
    device = params.get("device", "auto")
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
    return get_model(
        model_name(params.get("model", DEFAULT_MODEL)),
        revision=params.get("revision"),
        # ONNX Runtime runs on the CPU; export from weights that live there too.
        device="cpu" if params.get("backend") == "onnx" else params.get("device", "auto"),
        dtype=params.get("dtype", "float32"),
        trust_remote_code=bool(params.get("trust_remote_code", False)),
        keep=keep,
    )


# Used when neither the caller nor a sentence-transformers folder sets them.
FALLBACKS = {"pooling": "mean", "normalize": False, "max_length": 512}


def resolve_defaults(params: Mapping, loaded: LoadedModel) -> dict:
    """``params`` with ``pooling``, ``normalize``, ``max_length`` and ``prompt`` filled in.

    The rule: what the caller set wins; else what a sentence-transformers folder states
    (its pooling mode, its ``Normalize`` module, its ``max_seq_length``, the prompt its
    ``default_prompt_name`` names), so its default vectors are the model card's; else
    ``FALLBACKS`` (and no prompt). ``prompt=""`` means no prompt, whatever the folder says.
    """
    filled = dict(params)
    for name, fallback in FALLBACKS.items():
        if filled.get(name) is None:
            filled[name] = loaded.st_settings.get(name, fallback)
    if filled.get("prompt") is None:
        filled["prompt"] = loaded.st_settings.get("prompt")
    return filled


def resolve_plan(loaded: LoadedModel, params: Mapping, **overrides) -> EncodingPlan:
    """Resolve embedding parameters against ``loaded`` into an :class:`EncodingPlan`.

    ``params`` holds an estimator's parameters (missing ones take DistilEmbedder's
    defaults); ``overrides`` replace some of them (``probe_layers`` asks for every layer
    and pooling at once, for instance). ``pooling`` may be a tuple of poolings.
    """
    params = resolve_defaults({**params, **overrides}, loaded)
    name = f"model {model_name(params.get('model', loaded.name))!r}"
    layers = resolve_layers(params.get("layers", -1), loaded.n_layers, name)
    head = params.get("head")
    if head is not None and not loaded.has_head:
        architectures = getattr(loaded.config, "architectures", None)
        raise ValueError(
            f"head={head!r} needs a sequence-classification head, but {name} has none "
            f"(architectures: {architectures}). Use head=None, or a model fine-tuned for "
            f"classification such as {DEFAULT_MODEL!r}."
        )
    if not layers and head is None:
        raise ValueError("layers=[] and head=None ask for no features; request a layer or a head.")
    max_length = min(int(params["max_length"]), loaded.max_length)
    long_text = params.get("long_text", "truncate")
    stride = int(params.get("stride", 64))
    if long_text == "chunk":
        room = max_length - loaded.tokenizer.num_special_tokens_to_add()
        if stride >= room:
            raise ValueError(
                f"stride={stride} must be smaller than the {room} text tokens "
                f"of a window (max_length={max_length} minus special tokens)."
            )
    spec = EncodingSpec(
        layers=layers,
        pooling=params["pooling"],
        combine=params.get("combine", "concat"),
        head=head,
        max_length=max_length,
        long_text=long_text,
        stride=stride,
        normalize=bool(params["normalize"]),
        backend=params.get("backend", "torch"),
        quantize=params.get("quantize"),
        prompt=params["prompt"] or None,  # "" asks for no prompt
    )
    return EncodingPlan(
        loaded=loaded,
        spec=spec,
        batch_size=int(params.get("batch_size", 32)),
        n_threads=params.get("n_threads"),
        cache=as_cache(params.get("cache")),
        progress=bool(params.get("progress", False)),
    )


# DistilEmbedder's own constraints (beyond the shared ones).
EMBEDDER_CONSTRAINTS = {
    **ENCODING_CONSTRAINTS,
    "combine": Options(*COMBINE),
    "head": Options(None, *HEAD_OUTPUTS),
    "long_text": Options(*LONG_TEXT),
    "stride": Integer(0),
    "pooling": Options(None, *POOLINGS),
    "max_length": Integer(2, optional=True),
    "normalize": Boolean(optional=True),
    "dtype": DType(),
    "cache": CacheReference(),
}


def resolved_normalize(embedder) -> bool:
    """Whether ``embedder`` L2-normalises, after the sentence-transformers rule."""
    params = embedder.get_params(deep=False)
    return bool(resolve_defaults(params, load_model_for(params))["normalize"])


def embedding_plan(embedder, **overrides) -> EncodingPlan:
    """Validate a DistilEmbedder's parameters, load its model and resolve its plan.

    ``overrides`` replace parameters for this plan only (the estimator is not changed).
    """
    validate_params(embedder, EMBEDDER_CONSTRAINTS)
    params = {**embedder.get_params(deep=False), **overrides}
    layers = params.get("layers")
    if isinstance(layers, (list, tuple)) and not layers and params.get("head") is None:
        # Before loading, so the mistake costs no download.
        raise ValueError("layers=[] and head=None ask for no features; request a layer or a head.")
    check_backend(params)
    return resolve_plan(load_model_for(params), params)
