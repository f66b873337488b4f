"""SetFitClassifier's folder: its fine-tuned body, head and manifest, in the one format.

The body is saved as a Hugging Face model plus sentence-transformers module files (so
``SentenceTransformer(folder)`` embeds as the classifier does), the head with skops,
the rest in the manifest (:mod:`fewshot._folder.format`); ``setfit_compatible`` adds the
files setfit's own loader wants. A LoRA classifier (``adapter="lora"``, kind
``"setfit-adapter"``) saves its adapter in peft's format instead of a body, and loads on
the base its manifest's ``base_model`` records, checked (:mod:`fewshot.setfit._lora`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._core.loading import load_saved_body
from .._folder.format import (
    HEAD_FILE,
    check_remote_code,
    dump_head,
    load_head,
    new_manifest,
    read_manifest,
    write_encoder,
    write_json,
    write_manifest,
)
from .._folder.provenance import check_base, check_versions, restore_provenance
from ._lora import ADAPTER_KIND, is_adapter, read_adapter, write_adapter
from ._precision import resolve_compute_dtype
from ._training import TrainingSchedule

__all__ = ["read_setfit_folder", "restore_setfit", "write_setfit_folder"]


def write_setfit_folder(
    clf, directory, *, setfit_compatible=False, metadata=None, metrics=None
) -> Path:
    """Write a fitted SetFitClassifier to ``directory`` (see ``SetFitClassifier.save``)."""
    check_is_fitted(clf, "head_")
    adapter = is_adapter(clf.body_)
    if adapter:
        _check_adapter_savable(clf, setfit_compatible)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if adapter:  # the base's weights stay out: the manifest's base_model names them
        write_adapter(clf.body_, folder)
    else:
        write_encoder(
            clf.body_,
            folder,
            pooling=clf.pooling,
            max_length=clf.max_length_,
            prompt=getattr(clf, "prompt_", None),
            normalize=fitted_normalize(clf),
        )
    params = {k: v for k, v in clf.get_params(deep=False).items() if k != "head"}
    manifest = new_manifest(
        ADAPTER_KIND if adapter else "setfit",
        metadata,
        estimator=clf,
        metrics=metrics,
        params=params,
        default_head=clf.head is None,
        fitted=fitted_state(clf),
        classes=clf.classes_.tolist(),
    )
    dump_head(clf.head_, folder / HEAD_FILE)
    write_manifest(folder, manifest)
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
    if not (getattr(clf, "base_model_", None) or {}).get("fingerprint"):
        raise ValueError(
            f"The base model {clf.model!r} has no fingerprint (its folder changed after it "
            "was loaded), so a saved adapter could not be checked against it. Call "
            "fewshot.clear_caches() and fit again."
        )


def read_setfit_folder(
    cls, directory, *, model=None, device="auto", trust_remote_code=False, trusted=None
):
    """A ``cls`` (SetFitClassifier) from a folder; see ``SetFitClassifier.load``."""
    folder = Path(directory)
    manifest = read_manifest(folder, what="SetFitClassifier")
    if manifest.get("kind") not in ("setfit", ADAPTER_KIND):
        raise ValueError(
            f"{str(folder)!r} is not a SetFitClassifier folder: it holds a "
            f"{manifest.get('kind')!r} model; load it with fewshot.load_model."
        )
    check_remote_code(folder, manifest.get("params") or {}, trust_remote_code)
    check_versions(manifest, repr(str(folder)))
    if model is not None and manifest.get("kind") != ADAPTER_KIND:
        raise ValueError(
            f"{str(folder)!r} holds its own fine-tuned encoder; model= is only for a LoRA "
            "adapter folder, whose base it names."
        )
    head = load_head(folder, trusted)
    return restore_setfit(cls, folder, manifest, head, device, model, trust_remote_code)


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
    clf.dtype_ = resolve_compute_dtype(clf.dtype, clf.body_.device)
    clf.max_length_ = int(fitted["max_length"])
    clf.multilabel_ = bool(fitted["multilabel"])
    clf.classes_ = np.asarray(manifest["classes"])
    clf.n_pairs_ = int(fitted["n_pairs"])
    clf.train_loss_ = list(fitted["train_loss"])
    # Folders from before early stopping trained on every pair.
    every_pair = TrainingSchedule(epochs=int(clf.epochs), batch_size=int(clf.batch_size))
    clf.n_steps_ = int(fitted.get("n_steps", every_pair.n_steps(clf.n_pairs_)))
    # Folders from before prompts existed were trained without one.
    clf.prompt_ = fitted.get("prompt", params.get("prompt")) or None
    # Folders from before normalize_ existed: the parameter was a bool then.
    clf.normalize_ = bool(fitted.get("normalize", params.get("normalize")))
    clf.head_ = head
    restore_provenance(clf, manifest)
    return clf


def _restore_adapter(clf, folder, base, model, trust_remote_code) -> None:
    """The adapter on the base the caller names, checked against the recorded fingerprint.

    The folder's own base reference is never followed: a folder is data, and whoever
    edits its manifest could point it anywhere. The caller passes ``model=`` (the
    error says which one was recorded); the same hub id loads at the recorded commit.
    """
    from .._core.loading import ModelNotFoundError
    from .._estimator.params import load_model_for

    recorded = base.get("model")
    pinned = base.get("commit") or base.get("revision")
    if model is None:
        at = f" (revision={pinned!r})" if pinned else ""
        raise ValueError(
            f"{str(folder)!r} holds a LoRA adapter, not a whole model: pass its base as "
            f"model=..., e.g. load_model({str(folder)!r}, model={recorded!r}){at}. fewshot "
            "does not load a model named inside a folder on its own; the base you pass is "
            "checked against the fingerprint recorded at training time."
        )
    if not base.get("fingerprint"):
        raise ValueError(
            f"{str(folder)!r} holds a LoRA adapter whose manifest records no base "
            "fingerprint, so no base can be checked against it; refit and save it again."
        )
    same = os.fspath(model) == recorded
    clf.set_params(model=model, revision=pinned if same else None)
    params = {**clf.get_params(deep=False), "backend": "torch", "dtype": "float32"}
    try:  # remote code only when this caller asks, whatever the folder says
        pretrained = load_model_for({**params, "trust_remote_code": bool(trust_remote_code)})
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"{str(folder)!r} holds a LoRA adapter, not a whole model: it needs its base "
            f"model {base['model']!r}, which cannot be loaded here ({exc}). Pass "
            "model=<a folder or id of that base> to load it."
        ) from exc
    try:
        check_base(base, pretrained, where=repr(str(folder)))
    except ValueError as exc:
        raise ValueError(
            f"{exc} Pass model=<a folder or id of that base> to load_model or "
            "SetFitClassifier.load."
        ) from exc
    clf.body_ = read_adapter(pretrained, clf.layer_, folder)


def fitted_state(clf) -> dict:
    """The fitted scalars a SetFit manifest records."""
    return {
        "layer": int(clf.layer_),
        "max_length": int(clf.max_length_),
        "multilabel": bool(clf.multilabel_),
        "n_pairs": int(clf.n_pairs_),
        "train_loss": [float(v) for v in clf.train_loss_],
        "n_steps": int(clf.n_steps_),
        "prompt": getattr(clf, "prompt_", None),
        "normalize": fitted_normalize(clf),
    }


def fitted_normalize(clf) -> bool:
    """Whether a fitted classifier's embeddings are unit length (``normalize_``).

    Pickles from before ``normalize_`` existed have only the parameter, a bool then.
    """
    return bool(getattr(clf, "normalize_", clf.normalize))


def _unwrap(head):
    """The user's head inside a multi-label wrapper, for the ``head`` parameter."""
    inner = getattr(head, "estimator", None) or getattr(head, "base_estimator", None)
    return clone(inner if inner is not None else head)
