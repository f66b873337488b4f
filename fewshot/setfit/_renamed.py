"""SetFitClassifier's renamed parameters, and how old values map onto the new ones.

fewshot 0.2 made ``batch_size`` mean one thing across estimators: texts per forward
pass, as in ``DistilEmbedder`` and ``HeadClassifier``. SetFit's training batch is now
``pairs_per_step`` (it was ``batch_size``) and ``inference_batch_size`` became
``batch_size``. The five LoRA parameters became one: ``adapter=None | "lora" |
LoRA(rank=..., alpha=..., dropout=..., targets=...)``.

The old names stay as parameters with the default ``"deprecated"`` for two releases:
set, they still act (with a ``FutureWarning`` naming the new spelling). Saved folders
and pickles made before the change are read with the old meaning
(:func:`migrate_params`).
"""

from __future__ import annotations

import warnings

from ._lora import LoRA, lora_settings

__all__ = ["LEGACY_LORA", "lora_of", "migrate_params", "texts_per_pass", "warn_renamed"]

LEGACY_LORA = {"lora_rank": "rank", "lora_alpha": "alpha", "lora_dropout": "dropout",
               "lora_targets": "targets"}  # fmt: skip


def texts_per_pass(clf) -> int:
    """Texts per forward pass: ``batch_size``, or the deprecated ``inference_batch_size``."""
    old = getattr(clf, "inference_batch_size", "deprecated")
    return int(clf.batch_size if old == "deprecated" else old)


def lora_of(clf) -> LoRA | None:
    """The LoRA settings a classifier trains with (None: a whole-body fine-tune)."""
    lora = lora_settings(clf.adapter)
    legacy = {
        new: getattr(clf, old)
        for old, new in LEGACY_LORA.items()
        if getattr(clf, old, "deprecated") != "deprecated"
    }
    if lora is None or not legacy:
        return lora
    return LoRA(**{**lora.get_params(), **legacy})


def warn_renamed(clf) -> None:
    """One ``FutureWarning`` per renamed parameter the caller set, saying the new spelling."""
    if clf.inference_batch_size != "deprecated":
        _warn("inference_batch_size", "batch_size (texts per forward pass)")
    for old, new in LEGACY_LORA.items():
        if getattr(clf, old) != "deprecated":
            _warn(old, f"adapter=LoRA({new}=...)")
    if clf.batch_size != _default("batch_size") and clf.pairs_per_step == _default(
        "pairs_per_step"
    ):
        warnings.warn(
            f"SetFitClassifier(batch_size={clf.batch_size!r}) now sets texts per forward "
            "pass, as in DistilEmbedder (it was pairs per training step before fewshot "
            "0.2); pairs per step are pairs_per_step (default 16). Pass pairs_per_step= "
            "to set them; this warning stops once you do.",
            FutureWarning,
            stacklevel=3,
        )


def migrate_params(params: dict) -> dict:
    """Parameters saved before the renaming (a folder's manifest, a pickle), in new names."""
    params = dict(params)
    adapter = params.get("adapter")
    if isinstance(adapter, dict):  # a LoRA as the manifest records an estimator
        params["adapter"] = LoRA(**adapter.get("params", {}))
    if "pairs_per_step" in params:  # saved with the new names
        return params
    if "batch_size" in params:
        params["pairs_per_step"] = params.pop("batch_size")
    if "inference_batch_size" in params:
        params["batch_size"] = params.pop("inference_batch_size")
    legacy = {new: params.pop(old) for old, new in LEGACY_LORA.items() if old in params}
    if params.get("adapter") == "lora":
        params["adapter"] = LoRA(**legacy)
    params.update(dict.fromkeys([*LEGACY_LORA, "inference_batch_size"], "deprecated"))
    return params


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"SetFitClassifier({old}=...) is deprecated; use {new}. It still acts in this release.",
        FutureWarning,
        stacklevel=4,
    )


def _default(name: str):
    import inspect

    from ._classifier import SetFitClassifier

    return inspect.signature(SetFitClassifier.__init__).parameters[name].default
