"""One model-folder format for every fitted fewshot model, with one loader and one trust rule.

``SetFitClassifier.save``, ``fewshot train`` and :func:`save_model` all write the same
layout; :func:`load_model` (behind ``SetFitClassifier.load`` and ``fewshot predict``)
reads it::

    my-model/
      fewshot.json        the manifest: format, kind, parameters, classes, provenance
      head.skops          the fitted scikit-learn head (skops: no pickle)
      config.json, model.safetensors, tokenizer files, modules.json, 1_Pooling/
                          kind "setfit": the fine-tuned encoder, also a
                          sentence-transformers model
      encoder/            kind "pipeline": the pretrained encoder the pipeline embeds with;
                          kind "head" (a HeadClassifier): the pretrained model with its
                          classification head, whose temperature and label map are in
                          the manifest (no head.skops)
      adapter_config.json, adapter_model.safetensors
                          kind "setfit-adapter" (``SetFitClassifier(adapter="lora")``):
                          the LoRA adapter in peft's format, and no encoder

A folder is self-contained: it holds every weight it needs, so loading it never reaches
the hub. The one exception is a LoRA adapter folder, which holds no base weights: the
caller names its base with ``model=`` (the error without it says which base was
recorded), and a base whose files' fingerprint differs from the recorded one is refused.
The trust rule, the same for every kind:

- weights load from safetensors only; the head's skops schema is read as data first and
  every type it names must be on an explicit allow-list (the scikit-learn heads fewshot
  writes and the documented head types, numpy data; :mod:`fewshot._folder.trust`): a function,
  a class called with stored arguments or any other type is refused before skops builds
  anything, unless the caller names it in ``trusted=`` at that call (never pickle);
- remote code stays off: a folder whose stored parameters ask for it is refused unless
  the caller passes ``trust_remote_code=True`` to :func:`load_model` themselves;
- a model reference stored in the manifest is provenance only and is never followed;
  the caller may pass ``model=`` to embed with an encoder of their choice instead.

Folders written by fewshot 0.1's ``SetFitClassifier.save`` (``fewshot_setfit.json``)
still load. Folders written by fewshot 0.1's ``fewshot train`` for a linear probe
(``fewshot-model.json`` with ``pipeline.skops``) are refused: that file trusted fewshot
types and could be rewritten to run code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._folder.format import (
    ENCODER_FOLDER,
    HEAD_FILE,
    MANIFEST,
    check_remote_code,
    dump_head,
    load_head,
    new_manifest,
    read_manifest,
    write_encoder,
    write_manifest,
)
from ._folder.provenance import check_base, check_versions, restore_provenance
from .embedder import DistilEmbedder
from .setfit._classifier import SetFitClassifier
from .setfit._folder import restore_setfit
from .setfit._lora import ADAPTER_KIND

__all__ = ["MANIFEST", "load_model", "save_model"]


# -- writing ---------------------------------------------------------------------------


def save_model(
    estimator, directory, *, metadata=None, metrics=None, setfit_compatible: bool = False
) -> Path:
    """Write a fitted fewshot model to ``directory`` (created if needed).

    Parameters
    ----------
    estimator : SetFitClassifier, HeadClassifier or Pipeline
        A fitted :class:`~fewshot.SetFitClassifier` or :class:`~fewshot.HeadClassifier`,
        or a fitted ``Pipeline([("embed", DistilEmbedder(...)), ..., (name, classifier)])``
        whose steps after the embedder are scikit-learn estimators.
    directory : str or path-like
    metadata : dict, optional
        JSON-serialisable notes stored in the manifest (the CLI records its columns);
        ``metadata["datasets"]`` (dataset names) also goes into the model card.
    metrics : dict, optional
        ``{name: number}`` from an evaluation (``{"accuracy": 0.91}``), recorded in the
        manifest and the model card.
    setfit_compatible : bool, default=False
        For a SetFitClassifier: also write ``config_setfit.json`` and setfit's pickled
        ``model_head.pkl`` so ``setfit.SetFitModel.from_pretrained`` loads the folder.
        fewshot never reads that pickle.

    Returns
    -------
    Path
        The folder.

    Notes
    -----
    Every folder records its provenance in the manifest (package versions, the base
    model's id, revision, resolved commit and fingerprint, every parameter, the
    training data's size, class counts and hash, the seeds, metrics and creation time;
    see :mod:`fewshot._folder.provenance`) and a ``README.md`` model card generated from it.
    For a Pipeline the training data is what its ``DistilEmbedder`` saw in ``fit``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from fewshot import DistilEmbedder, load_model, save_model
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))
    >>> clf = Pipeline([("embed", DistilEmbedder(model=path)), ("lr", LogisticRegression())])
    >>> clf = clf.fit(["good", "bad", "great", "awful"], [1, 0, 1, 0])
    >>> folder = save_model(clf, tempfile.mkdtemp())
    >>> load_model(folder).predict(["good"]).tolist() == clf.predict(["good"]).tolist()
    True
    """
    if isinstance(estimator, SetFitClassifier):
        return estimator.save(
            directory, setfit_compatible=setfit_compatible, metadata=metadata, metrics=metrics
        )
    if setfit_compatible:
        raise ValueError("setfit_compatible=True applies to a SetFitClassifier only.")
    from .head_classifier import HeadClassifier

    if isinstance(estimator, HeadClassifier):
        return _save_head_classifier(estimator, directory, metadata, metrics)
    from sklearn.utils.validation import check_is_fitted

    from ._estimator.params import embedding_plan

    embedder, head = _split_pipeline(estimator)
    check_is_fitted(head)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    plan = embedding_plan(embedder)
    loaded = plan.loaded
    write_encoder(loaded, folder / ENCODER_FOLDER)
    params = _with_resolved_defaults(embedder.get_params(deep=False), plan)
    manifest = new_manifest(
        "pipeline",
        metadata,
        estimator=estimator,
        loaded=loaded,
        metrics=metrics,
        params={k: v for k, v in params.items() if k not in ("cache", "progress")},
        steps=[name for name, _ in estimator.steps],
        classes=np.asarray(head.classes_).tolist(),
    )
    dump_head(head, folder / HEAD_FILE)
    write_manifest(folder, manifest)
    return folder


def _save_head_classifier(clf, directory, metadata, metrics) -> Path:
    """Write kind "head": the pretrained model, its head included, under ``encoder/``.

    The temperature, label map and classes go in the manifest; nothing is pickled.
    """
    from sklearn.utils.validation import check_is_fitted

    from .head_classifier import head_fitted_state, head_plan

    check_is_fitted(clf, "temperature_")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    plan = head_plan(clf)
    loaded = plan.loaded
    write_encoder(loaded, folder / ENCODER_FOLDER)
    params = _with_resolved_defaults(clf.get_params(deep=False), plan)
    manifest = new_manifest(
        "head",
        metadata,
        estimator=clf,
        loaded=loaded,
        metrics=metrics,
        # label_map travels in "fitted" as pairs: JSON object keys would turn ints into str.
        params={k: v for k, v in params.items() if k not in ("cache", "progress", "label_map")},
        fitted=head_fitted_state(clf),
        classes=clf.classes_.tolist(),
    )
    write_manifest(folder, manifest)
    return folder


def _with_resolved_defaults(params: dict, plan) -> dict:
    """``params`` with what the plan resolved for those left at None.

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


def _split_pipeline(estimator):
    """``(DistilEmbedder, head)`` of a fewshot pipeline, or a clear error."""
    from sklearn.pipeline import Pipeline

    if not (
        isinstance(estimator, Pipeline)
        and len(estimator.steps) >= 2
        and isinstance(estimator.steps[0][1], DistilEmbedder)
    ):
        raise TypeError(
            f"save_model takes a fitted SetFitClassifier or a Pipeline whose first step is "
            f"a DistilEmbedder, got {type(estimator).__name__}."
        )
    rest = estimator[1:]
    return estimator.steps[0][1], (rest.steps[0][1] if len(rest.steps) == 1 else rest)


# -- reading ---------------------------------------------------------------------------


def load_model(
    directory, *, model=None, device="auto", trust_remote_code: bool = False, trusted=None
):
    """Load a model folder written by :func:`save_model`, ``SetFitClassifier.save`` or the CLI.

    Parameters
    ----------
    directory : str or path-like
    model : str or path-like, optional
        For a pipeline or HeadClassifier folder: use this model instead of the copy in
        the folder (it must be the same weights when the folder recorded their
        fingerprint).
        For a LoRA adapter folder (``SetFitClassifier(adapter="lora")``), required: the
        base model (folder or id; the recorded hub id loads at the recorded commit) to
        put the adapter on; its fingerprint must match the recorded one.
        A (full) SetFit folder holds its own fine-tuned encoder and takes no ``model``.
    device : "auto", str or torch.device, default="auto"
    trust_remote_code : bool, default=False
        Allow a folder saved with ``trust_remote_code=True`` to load (its model code
        then runs). Never implied by anything stored in the folder.
    trusted : list of str or type, optional
        Types a custom head needs beyond the allow-list (:data:`fewshot._folder.trust.HEAD_TYPES`:
        the heads fewshot writes and the documented head types), allowed at this call
        only, never stored in the folder. A head that names anything else (a function,
        a class not on the list) is refused before skops reads it.

    Returns
    -------
    SetFitClassifier, HeadClassifier or Pipeline
        Predicts exactly as the estimator that was saved.
    """
    folder = Path(directory)
    manifest = read_manifest(folder)
    params = dict(manifest.get("params") or {})
    check_remote_code(folder, params, trust_remote_code)
    check_versions(manifest, repr(str(folder)))
    kind = manifest.get("kind")
    if kind == "setfit":
        if model is not None:
            raise ValueError(
                f"{str(folder)!r} holds its own fine-tuned encoder; model= is not used for "
                "a SetFit folder."
            )
        head = load_head(folder, trusted)
        return restore_setfit(SetFitClassifier, folder, manifest, head, device)
    if kind == ADAPTER_KIND:
        head = load_head(folder, trusted)
        return restore_setfit(
            SetFitClassifier, folder, manifest, head, device, model, trust_remote_code
        )
    if kind == "pipeline":
        head = load_head(folder, trusted)
        return _load_pipeline(folder, manifest, params, head, model, device, trust_remote_code)
    if kind == "head":
        return _load_head_classifier(folder, manifest, params, model, device, trust_remote_code)
    raise ValueError(f"{str(folder)!r} holds an unknown model kind {kind!r}; upgrade fewshot.")


def _encoder_params(folder, manifest, params, model, device, trust_remote_code) -> dict:
    """``params`` pointed at the folder's ``encoder/`` (or the caller's ``model``, checked).

    The one place a pipeline or head folder's weights are found: never a reference stored
    in the manifest, and a caller's model must have the fingerprint that was saved.
    """
    from ._estimator.params import load_model_for

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


def _load_pipeline(folder, manifest, params, head, model, device, trust_remote_code):
    from sklearn.pipeline import Pipeline

    params = _encoder_params(folder, manifest, params, model, device, trust_remote_code)
    embedder = DistilEmbedder(**params)
    restore_provenance(embedder, manifest, keys=("base_model", "training_data"))
    names = manifest.get("steps") or ["embed", "classify"]
    rest = head.steps if isinstance(head, Pipeline) else [(names[-1], head)]
    return Pipeline([(names[0], embedder), *rest])


def _load_head_classifier(folder, manifest, params, model, device, trust_remote_code):
    """A HeadClassifier from a kind "head" folder: its model from ``encoder/`` (or ``model``)."""
    from .head_classifier import restore_head_classifier

    params = _encoder_params(folder, manifest, params, model, device, trust_remote_code)
    return restore_head_classifier(params, manifest)
