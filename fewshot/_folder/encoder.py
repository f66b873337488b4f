"""The encoder of a pipeline or head folder: where its weights come from, what it records.

Such a folder keeps the pretrained model under ``encoder/`` (without the
sentence-transformers files), so its manifest records the settings a
sentence-transformers folder would have given (:func:`with_resolved_defaults`), and a
loader takes the weights from ``encoder/`` or from the caller's ``model``, checked
against the recorded fingerprint: never from a reference stored in the manifest
(:func:`encoder_params`).
"""

from __future__ import annotations

import os

from .format import ENCODER_FOLDER
from .provenance import check_base

__all__ = ["encoder_params", "with_resolved_defaults"]


def with_resolved_defaults(params: dict, plan) -> dict:
    """``params`` with what ``plan`` resolved for those left at None.

    ``encoder/`` holds the weights without the sentence-transformers files, so a
    folder's own pooling, normalisation, length and default prompt would be lost on
    loading; the manifest records them instead.
    """
    spec = plan.spec
    resolved = {
        "pooling": spec.pooling,
        "normalize": spec.normalize,
        "max_length": spec.max_length,
        "prompt": spec.prompt,
    }
    return {k: resolved[k] if v is None and k in resolved else v for k, v in params.items()}


def encoder_params(folder, manifest, params, model, device, trust_remote_code) -> dict:
    """``params`` pointed at the folder's ``encoder/`` (or the caller's ``model``, checked).

    The one place a pipeline or head folder's weights are found: never a reference stored
    in the manifest, and a caller's model must have the fingerprint that was saved.
    """
    from .._estimator.resolve import load_model_for

    base = manifest.get("base_model") or {}
    params = dict(params)
    if model is None:
        encoder = folder / ENCODER_FOLDER
        if not (encoder / "config.json").is_file():
            raise ValueError(
                f"{str(folder)!r} has no {ENCODER_FOLDER}/ with the encoder's weights "
                f"(trained on {base.get('model')!r}); pass model=<that model's folder or id>."
            )
        params.update(model=str(encoder.resolve()), revision=None)
    else:
        params.update(model=os.fspath(model))
    params.update(device=device, trust_remote_code=bool(trust_remote_code), progress=False)
    if model is not None:
        check_base(base, load_model_for(params), where=repr(str(folder)))
    return params
