"""SetFitClassifier's folder: its fine-tuned body, head and manifest, in the one format.

The body is saved as a Hugging Face model plus sentence-transformers module files (so
``SentenceTransformer(folder)`` embeds as the classifier does), the head with skops,
the rest in the manifest (:mod:`fewshot._persistence`); ``setfit_compatible`` adds the
files setfit's own loader wants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._loading import load_saved_body
from ._persistence import (
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
from ._precision import resolve_compute_dtype
from ._provenance import check_versions, restore_provenance

__all__ = ["read_setfit_folder", "restore_setfit", "write_setfit_folder"]


def write_setfit_folder(
    clf, directory, *, setfit_compatible=False, metadata=None, metrics=None
) -> Path:
    """Write a fitted SetFitClassifier to ``directory`` (see ``SetFitClassifier.save``)."""
    check_is_fitted(clf, "head_")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    write_encoder(
        clf.body_,
        folder,
        pooling=clf.pooling,
        max_length=clf.max_length_,
        prompt=getattr(clf, "prompt_", None),
    )
    params = {k: v for k, v in clf.get_params(deep=False).items() if k != "head"}
    manifest = new_manifest(
        "setfit",
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


def read_setfit_folder(cls, directory, *, device="auto", trust_remote_code=False):
    """A ``cls`` (SetFitClassifier) from a folder; see ``SetFitClassifier.load``."""
    folder = Path(directory)
    manifest = read_manifest(folder, what="SetFitClassifier")
    if manifest.get("kind") != "setfit":
        raise ValueError(
            f"{str(folder)!r} is not a SetFitClassifier folder: it holds a "
            f"{manifest.get('kind')!r} model; load it with fewshot.load_model."
        )
    check_remote_code(folder, manifest.get("params") or {}, trust_remote_code)
    check_versions(manifest, repr(str(folder)))
    return restore_setfit(cls, folder, manifest, load_head(folder), device)


def restore_setfit(cls, folder, manifest, head, device):
    """A fitted ``cls`` from a folder's manifest, head and weights (checks already done)."""
    known = cls().get_params(deep=False)
    params = {k: v for k, v in manifest["params"].items() if k in known}
    params.update(device=device, progress=False)
    clf = cls(**params)
    clf.head = None if manifest.get("default_head", True) else _unwrap(head)
    fitted = manifest["fitted"]
    clf.body_ = load_saved_body(folder, device)
    clf.dtype_ = resolve_compute_dtype(clf.dtype, clf.body_.device)
    clf.layer_ = int(fitted["layer"])
    clf.max_length_ = int(fitted["max_length"])
    clf.multilabel_ = bool(fitted["multilabel"])
    clf.classes_ = np.asarray(manifest["classes"])
    clf.n_pairs_ = int(fitted["n_pairs"])
    clf.train_loss_ = list(fitted["train_loss"])
    # Folders from before prompts existed were trained without one.
    clf.prompt_ = fitted.get("prompt", params.get("prompt")) or None
    clf.head_ = head
    restore_provenance(clf, manifest)
    return clf


def fitted_state(clf) -> dict:
    """The fitted scalars a SetFit manifest records."""
    return {
        "layer": int(clf.layer_),
        "max_length": int(clf.max_length_),
        "multilabel": bool(clf.multilabel_),
        "n_pairs": int(clf.n_pairs_),
        "train_loss": [float(v) for v in clf.train_loss_],
        "prompt": getattr(clf, "prompt_", None),
    }


def _unwrap(head):
    """The user's head inside a multi-label wrapper, for the ``head`` parameter."""
    inner = getattr(head, "estimator", None) or getattr(head, "base_estimator", None)
    return clone(inner if inner is not None else head)
