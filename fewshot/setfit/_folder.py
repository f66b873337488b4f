"""SetFitClassifier's folder and pickles: all of its saving, in the one format.

The body is saved as a Hugging Face model plus sentence-transformers module files (so
``SentenceTransformer(folder)`` embeds as the classifier does), the head with skops,
the rest in the manifest (:mod:`fewshot._folder.format`); ``setfit_compatible`` adds the
files setfit's own loader wants. A LoRA classifier (kind ``"setfit-adapter"``) saves its
adapter in peft's format instead of a body, and loads on the base the caller names,
checked against the fingerprint its manifest records (:mod:`fewshot.setfit._lora`).
A pickle carries the weights as safetensors bytes, never as pickled tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._core.loading import load_saved_body
from .._folder.format import (
    HEAD_FILE,
    dump_head,
    encoder_from_bytes,
    encoder_to_bytes,
    load_head,
    new_manifest,
    write_encoder,
    write_json,
    write_manifest,
)
from .._folder.provenance import check_base, estimator_record, restore_provenance
from ._heads import unwrap_head
from ._lora import (
    ADAPTER_KIND,
    adapter_from_bytes,
    adapter_to_bytes,
    is_adapter,
    read_adapter,
    write_adapter,
)
from ._precision import resolve_compute_dtype
from ._renamed import migrate_params

__all__ = ["FolderMixin", "fitted_normalize"]


class FolderMixin:
    """``save``, ``load`` and pickling of a SetFitClassifier, and its folder hooks."""

    #: The folder kinds this classifier writes and reads (see fewshot.model_folder).
    _folder_kinds = ("setfit", ADAPTER_KIND)

    def save(self, directory, *, setfit_compatible: bool = False, metadata=None, metrics=None):
        """Write the fitted classifier to ``directory``: :func:`fewshot.save_model`.

        The fine-tuned body as a Hugging Face and sentence-transformers model in
        safetensors (with an ``adapter``: the adapter in peft's format and the base's
        id, revision and fingerprint instead), the head in skops format, and the
        manifest ``fewshot.json`` with its provenance and a ``README.md`` model card.
        ``setfit_compatible=True`` adds ``config_setfit.json`` and setfit's pickled
        ``model_head.pkl`` for ``setfit.SetFitModel.from_pretrained`` (fewshot never
        reads that pickle). ``metadata`` (JSON notes) and ``metrics`` (``{name:
        number}``) go into the manifest and the card.

        Returns
        -------
        Path
        """
        from ..model_folder import save_model

        return save_model(
            self, directory, setfit_compatible=setfit_compatible, metadata=metadata, metrics=metrics
        )

    @classmethod
    def load(cls, directory, *, model=None, device="auto", trust_remote_code=False, trusted=None):
        """Load a classifier written by :meth:`save`: :func:`fewshot.load_model`.

        ``model`` is for a LoRA adapter folder only, and required there: its base (the
        folder's own base reference is never followed; the base's fingerprint must be
        the recorded one). ``trust_remote_code`` and ``trusted`` (types a custom head
        needs beyond the allow-list) count at this call only; nothing stored in the
        folder turns them on. Predictions are identical to the saved classifier's.

        Returns
        -------
        SetFitClassifier
        """
        from ..model_folder import load_model

        return load_model(
            directory,
            model=model,
            device=device,
            trust_remote_code=trust_remote_code,
            trusted=trusted,
            kind=cls,
        )

    def _write_folder(self, folder: Path, *, metadata=None, metrics=None, setfit_compatible=False):
        """Kind "setfit" (the fine-tuned body) or "setfit-adapter" (the adapter only)."""
        check_is_fitted(self, "head_")
        adapter = is_adapter(self.body_)
        if adapter:
            _check_adapter_savable(self, setfit_compatible)
            write_adapter(self.body_, folder)  # the base's weights stay out
        else:
            write_encoder(
                self.body_,
                folder,
                pooling=self.pooling,
                max_length=self.max_length_,
                prompt=getattr(self, "prompt_", None),
                normalize=fitted_normalize(self),
            )
        params = {
            name: estimator_record(value) if hasattr(value, "get_params") else value
            for name, value in self.get_params(deep=False).items()
            if name != "head"
        }
        manifest = new_manifest(
            ADAPTER_KIND if adapter else "setfit",
            metadata,
            estimator=self,
            metrics=metrics,
            params=params,
            default_head=self.head is None,
            fitted=_fitted_state(self),
            classes=self.classes_.tolist(),
        )
        dump_head(self.head_, folder / HEAD_FILE)
        write_manifest(folder, manifest)
        if setfit_compatible:
            import joblib

            labels = None if self.multilabel_ else [str(c) for c in self.classes_]
            config = {"normalize_embeddings": False, "labels": labels}
            write_json(folder / "config_setfit.json", config)
            joblib.dump(self.head_, folder / "model_head.pkl")

    @classmethod
    def _read_folder(cls, folder, manifest, *, model, device, trust_remote_code, trusted):
        """A fitted classifier from a folder whose manifest was read and checked."""
        kind = manifest.get("kind")
        if model is not None and kind != ADAPTER_KIND:
            raise ValueError(
                f"{str(folder)!r} holds its own fine-tuned encoder; model= is not used for a "
                "SetFit folder (only for a LoRA adapter folder, whose base it names)."
            )
        head = load_head(folder, trusted)
        known = cls().get_params(deep=False)
        params = {k: v for k, v in migrate_params(manifest["params"]).items() if k in known}
        clf = cls(**{**params, "device": device, "progress": False})
        clf.head = None if manifest.get("default_head", True) else unwrap_head(head)
        fitted = manifest["fitted"]
        clf.layer_ = int(fitted["layer"])
        if kind == ADAPTER_KIND:
            _restore_adapter(clf, folder, manifest["base_model"], model, trust_remote_code)
        else:
            clf.body_ = load_saved_body(folder, device)
        _restore_fitted(clf, fitted, params, manifest)
        clf.head_ = head
        return clf

    def __getstate__(self):
        state = self.__dict__.copy()
        body = state.pop("body_", None)
        if body is not None and is_adapter(body):
            # An adapter travels as its peft files and finds its base (checked) on arrival.
            state["_adapter_files"] = adapter_to_bytes(body)
        elif body is not None:
            state["_body_files"] = encoder_to_bytes(body)
        return state

    def __setstate__(self, state):
        files = state.pop("_body_files", None)
        adapter_files = state.pop("_adapter_files", None)
        if "pairs_per_step" not in state:  # pickled before the parameters were renamed
            state.update(migrate_params(state))
        self.__dict__.update(state)
        if files is not None:
            self.body_ = encoder_from_bytes(files, self.device)
        if adapter_files is not None:
            from .._estimator.resolve import training_base

            pretrained = training_base(self.get_params(deep=False))
            check_base(self.base_model_, pretrained, where="this unpickled SetFitClassifier")
            self.body_ = adapter_from_bytes(adapter_files, pretrained, self.layer_)


def _restore_fitted(clf, fitted: dict, params: dict, manifest: dict) -> None:
    from ._fit import training_schedule

    clf.dtype_ = resolve_compute_dtype(clf.dtype, clf.body_.device)
    clf.max_length_ = int(fitted["max_length"])
    clf.multilabel_ = bool(fitted["multilabel"])
    clf.classes_ = np.asarray(manifest["classes"])
    clf.n_pairs_ = int(fitted["n_pairs"])
    clf.train_loss_ = list(fitted["train_loss"])
    # Folders from before early stopping trained on every pair.
    every_pair = training_schedule(clf).n_steps(clf.n_pairs_)
    clf.n_steps_ = int(fitted.get("n_steps", every_pair))
    # Folders from before prompts existed were trained without one.
    clf.prompt_ = fitted.get("prompt", params.get("prompt")) or None
    # Folders from before normalize_ existed: the parameter was a bool then.
    clf.normalize_ = bool(fitted.get("normalize", params.get("normalize")))
    restore_provenance(clf, manifest)


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


def _restore_adapter(clf, folder, base, model, trust_remote_code) -> None:
    """The adapter on the base the caller names, checked against the recorded fingerprint.

    The folder's own base reference is never followed: a folder is data, and whoever
    edits its manifest could point it anywhere. The caller passes ``model=`` (the
    error says which one was recorded); the same hub id loads at the recorded commit.
    """
    from .._core.errors import ModelNotFoundError
    from .._estimator.resolve import training_base

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
    params = {**clf.get_params(deep=False), "trust_remote_code": bool(trust_remote_code)}
    try:  # remote code only when this caller asks, whatever the folder says
        pretrained = training_base(params)
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


def _fitted_state(clf) -> dict:
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
