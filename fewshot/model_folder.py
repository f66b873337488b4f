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

import importlib
from pathlib import Path

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
from ._folder.provenance import check_versions, restore_provenance

__all__ = ["KINDS", "MANIFEST", "PipelineFolder", "load_model", "save_model"]

#: Folder kind -> the estimator class that reads it (its ``_read_folder`` hook), as
#: ``"module:Class"`` so nothing is imported before a folder of that kind is loaded.
#: Writing asks the estimator itself (its ``_write_folder`` hook); a scikit-learn
#: Pipeline, which has no hooks, is kind "pipeline", read and written here.
KINDS = {
    "setfit": "fewshot.setfit:SetFitClassifier",
    "setfit-adapter": "fewshot.setfit:SetFitClassifier",
    "head": "fewshot.head_classifier:HeadClassifier",
    "pipeline": "fewshot.model_folder:PipelineFolder",
    "static-student": "fewshot.distill:StaticStudentClassifier",
}


# -- writing ---------------------------------------------------------------------------


def save_model(
    estimator, directory, *, metadata=None, metrics=None, setfit_compatible: bool = False
) -> Path:
    """Write a fitted fewshot model to ``directory`` (created if needed).

    Parameters
    ----------
    estimator : SetFitClassifier, HeadClassifier or Pipeline
        A fitted fewshot classifier (any estimator with a ``_write_folder`` hook), or a
        fitted ``Pipeline([("embed", DistilEmbedder(...)), ..., (name, classifier)])``
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
    see :mod:`fewshot._folder.provenance`) and a ``README.md`` model card generated from
    it. For a Pipeline the training data is what its ``DistilEmbedder`` saw in ``fit``.

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
    owner = estimator if hasattr(estimator, "_write_folder") else PipelineFolder(estimator)
    options = {}
    if setfit_compatible:
        if "setfit" not in owner._folder_kinds:
            raise ValueError("setfit_compatible=True applies to a SetFitClassifier only.")
        options["setfit_compatible"] = True
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    owner._write_folder(folder, metadata=metadata, metrics=metrics, **options)
    return folder


class PipelineFolder:
    """Kind "pipeline": ``Pipeline([DistilEmbedder, ..., classifier])`` and its folder.

    The embedder's parameters go into the manifest (its pretrained weights under
    ``encoder/``), the steps after it into ``head.skops``.
    """

    _folder_kinds = ("pipeline",)

    def __init__(self, pipeline):
        steps = getattr(pipeline, "steps", None)
        first = steps[0][1] if steps and len(steps) >= 2 else None
        if not hasattr(first, "_pipeline_step_params"):
            names = f" with steps {[type(s).__name__ for _, s in steps]}" if steps else ""
            raise TypeError(
                "save_model takes a fitted fewshot classifier (SetFitClassifier, "
                "HeadClassifier, ...) or a Pipeline whose first step is a DistilEmbedder, "
                f"got {type(pipeline).__name__}{names}."
            )
        self.pipeline = pipeline

    def _write_folder(self, folder: Path, *, metadata=None, metrics=None) -> None:
        from sklearn.utils.validation import check_is_fitted

        pipeline = self.pipeline
        rest = pipeline[1:]
        head = rest.steps[0][1] if len(rest.steps) == 1 else rest
        check_is_fitted(head)
        params, loaded = pipeline.steps[0][1]._pipeline_step_params()
        write_encoder(loaded, folder / ENCODER_FOLDER)
        manifest = new_manifest(
            "pipeline",
            metadata,
            estimator=pipeline,
            loaded=loaded,
            metrics=metrics,
            params=params,
            steps=[name for name, _ in pipeline.steps],
            classes=list(pipeline.classes_.tolist()),
        )
        dump_head(head, folder / HEAD_FILE)
        write_manifest(folder, manifest)

    @classmethod
    def _read_folder(cls, folder, manifest, *, model, device, trust_remote_code, trusted):
        from sklearn.pipeline import Pipeline

        from ._folder.encoder import encoder_params
        from .embedder import DistilEmbedder

        head = load_head(folder, trusted)
        params = dict(manifest.get("params") or {})
        params = encoder_params(folder, manifest, params, model, device, trust_remote_code)
        embedder = DistilEmbedder(**params)
        restore_provenance(embedder, manifest, keys=("base_model", "training_data"))
        names = manifest.get("steps") or ["embed", "classify"]
        rest = head.steps if isinstance(head, Pipeline) else [(names[-1], head)]
        return Pipeline([(names[0], embedder), *rest])


# -- reading ---------------------------------------------------------------------------


def load_model(
    directory,
    *,
    model=None,
    device="auto",
    trust_remote_code: bool = False,
    trusted=None,
    kind=None,
):
    """Load a model folder written by :func:`save_model`, an estimator's ``save`` or the CLI.

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
        Types a custom head needs beyond the allow-list
        (:data:`fewshot._folder.trust.HEAD_TYPES`: the heads fewshot writes and the
        documented head types, numpy data), allowed at this call only, never stored in
        the folder. A head that names anything else (a function, a class not on the
        list) is refused before skops reads it.
    kind : class, optional
        Refuse a folder that this estimator class does not read (``SetFitClassifier.load``
        passes itself).

    Returns
    -------
    SetFitClassifier, HeadClassifier, Pipeline or another fewshot estimator
        Predicts exactly as the estimator that was saved.
    """
    folder = Path(directory)
    what = "fewshot model" if kind is None else kind.__name__
    manifest = read_manifest(folder, what=what)
    found = manifest.get("kind")
    if found not in KINDS:
        raise ValueError(f"{str(folder)!r} holds an unknown model kind {found!r}; upgrade fewshot.")
    if kind is not None and found not in kind._folder_kinds:
        raise ValueError(
            f"{str(folder)!r} is not a {kind.__name__} folder: it holds a {found!r} model; "
            "load it with fewshot.load_model."
        )
    check_remote_code(folder, dict(manifest.get("params") or {}), trust_remote_code)
    check_versions(manifest, repr(str(folder)))
    module, name = KINDS[found].split(":")
    reader = getattr(importlib.import_module(module), name)
    return reader._read_folder(
        folder,
        manifest,
        model=model,
        device=device,
        trust_remote_code=trust_remote_code,
        trusted=trusted,
    )
