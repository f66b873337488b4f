"""SetFitClassifier's folder: its fine-tuned body, head and manifest, in the one format.

The body is saved as a Hugging Face model plus sentence-transformers module files (so
``SentenceTransformer(folder)`` embeds as the classifier does), the head with skops,
the rest in the manifest (:mod:`fewshot._persistence`); ``setfit_compatible`` adds the
files setfit's own loader wants. A LoRA classifier (``adapter="lora"``, kind
``"setfit-adapter"``) saves its adapter in peft's format and the base it needs in the
manifest instead of a body (:mod:`fewshot._adapters`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._adapters import ADAPTER_KIND, check_base, read_adapter, write_adapter
from ._loading import load_saved_body
from ._persistence import (
    HEAD_FILE,
    MANIFEST,
    check_remote_code,
    load_head,
    new_manifest,
    read_manifest,
    write_encoder,
    write_json,
)

__all__ = ["read_setfit_folder", "restore_setfit", "write_setfit_folder"]


def write_setfit_folder(clf, directory, *, setfit_compatible=False, metadata=None) -> Path:
    """Write a fitted SetFitClassifier to ``directory`` (see ``SetFitClassifier.save``)."""
    import skops.io

    check_is_fitted(clf, "head_")
    adapter = getattr(clf, "base_model_", None)
    if adapter is not None:
        _check_adapter_savable(clf, setfit_compatible)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if adapter is None:
        write_encoder(clf.body_, folder, pooling=clf.pooling, max_length=clf.max_length_)
    else:
        write_adapter(clf.body_, folder)
    params = {k: v for k, v in clf.get_params(deep=False).items() if k != "head"}
    extra = {} if adapter is None else {"base_model": adapter}
    manifest = new_manifest(
        "setfit" if adapter is None else ADAPTER_KIND,
        metadata,
        params=params,
        default_head=clf.head is None,
        fitted=fitted_state(clf),
        classes=clf.classes_.tolist(),
        **extra,
    )
    skops.io.dump(clf.head_, folder / HEAD_FILE)
    write_json(folder / MANIFEST, manifest)
    if setfit_compatible:
        import joblib

        labels = None if clf.multilabel_ else [str(c) for c in clf.classes_]
        write_json(folder / "config_setfit.json", {"normalize_embeddings": False, "labels": labels})
        joblib.dump(clf.head_, folder / "model_head.pkl")
    return folder


def _check_adapter_savable(clf, setfit_compatible: bool) -> None:
    if setfit_compatible:
        raise ValueError(
            "setfit_compatible=True writes a whole fine-tuned body for setfit; this "
            "classifier holds a LoRA adapter on a shared base, which setfit cannot load. "
            "Save it without setfit_compatible."
        )
    if clf.base_model_.get("fingerprint") is None:
        raise ValueError(
            f"The base model {clf.model!r} has no fingerprint (its folder changed after it "
            "was loaded), so a saved adapter could not be checked against it. Call "
            "fewshot.clear_caches() and fit again."
        )


def read_setfit_folder(cls, directory, *, model=None, device="auto", trust_remote_code=False):
    """A ``cls`` (SetFitClassifier) from a folder; see ``SetFitClassifier.load``."""
    folder = Path(directory)
    manifest = read_manifest(folder, what="SetFitClassifier")
    if manifest.get("kind") not in ("setfit", ADAPTER_KIND):
        raise ValueError(
            f"{str(folder)!r} is not a SetFitClassifier folder: it holds a "
            f"{manifest.get('kind')!r} model; load it with fewshot.load_model."
        )
    check_remote_code(folder, manifest.get("params") or {}, trust_remote_code)
    if model is not None and manifest.get("kind") != ADAPTER_KIND:
        raise ValueError(
            f"{str(folder)!r} holds its own fine-tuned encoder; model= is only for a LoRA "
            "adapter folder, whose base it names."
        )
    return restore_setfit(
        cls, folder, manifest, load_head(folder), device, model, trust_remote_code
    )


def restore_setfit(cls, folder, manifest, head, device, model=None, trust_remote_code=False):
    """A fitted ``cls`` from a folder's manifest, head and weights (checks already done).

    A LoRA adapter folder loads its base from ``model`` if given, else from the model
    and revision it recorded; either way the base's fingerprint must be the recorded one.
    """
    known = cls().get_params(deep=False)
    params = {k: v for k, v in manifest["params"].items() if k in known}
    params.update(device=device, progress=False)
    clf = cls(**params)
    clf.head = None if manifest.get("default_head", True) else _unwrap(head)
    fitted = manifest["fitted"]
    clf.layer_ = int(fitted["layer"])
    if manifest.get("kind") == ADAPTER_KIND:
        _restore_adapter(clf, folder, manifest["base_model"], model, trust_remote_code)
    else:
        clf.body_ = load_saved_body(folder, device)
    clf.max_length_ = int(fitted["max_length"])
    clf.multilabel_ = bool(fitted["multilabel"])
    clf.classes_ = np.asarray(manifest["classes"])
    clf.n_pairs_ = int(fitted["n_pairs"])
    clf.train_loss_ = list(fitted["train_loss"])
    clf.head_ = head
    return clf


def _restore_adapter(clf, folder, base, model, trust_remote_code) -> None:
    """The adapter on its base: ``model`` if given, else the recorded one (checked)."""
    from ._loading import ModelNotFoundError
    from ._params import load_model_for

    if model is not None:
        clf.set_params(model=model, revision=None)
    else:
        clf.set_params(model=base["model"], revision=base.get("revision"))
    params = {**clf.get_params(deep=False), "backend": "torch"}
    try:  # remote code only when this caller asks, whatever the folder says
        pretrained = load_model_for({**params, "trust_remote_code": bool(trust_remote_code)})
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"{str(folder)!r} holds a LoRA adapter, not a whole model: it needs its base "
            f"model {base['model']!r}, which cannot be loaded here ({exc}). Pass "
            "model=<a folder or id of that base> to load it."
        ) from exc
    check_base(pretrained, base, repr(str(folder)))
    clf.body_ = read_adapter(pretrained, clf.layer_, folder)
    clf.base_model_ = dict(base)


def fitted_state(clf) -> dict:
    """The fitted scalars a SetFit manifest records."""
    return {
        "layer": int(clf.layer_),
        "max_length": int(clf.max_length_),
        "multilabel": bool(clf.multilabel_),
        "n_pairs": int(clf.n_pairs_),
        "train_loss": [float(v) for v in clf.train_loss_],
    }


def _unwrap(head):
    """The user's head inside a multi-label wrapper, for the ``head`` parameter."""
    inner = getattr(head, "estimator", None) or getattr(head, "base_estimator", None)
    return clone(inner if inner is not None else head)
