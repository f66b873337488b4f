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
      encoder/            kind "pipeline": the pretrained encoder the pipeline embeds with

A folder is self-contained: it holds every weight it needs, so loading it never reaches
the hub. The trust rule, the same for every kind:

- weights load from safetensors only; the head loads with skops trusting scikit-learn
  and numpy types only (never pickle, never fewshot or third-party types);
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

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["MANIFEST", "load_model", "save_model"]  # the rest is fewshot-internal

MANIFEST = "fewshot.json"
FORMAT = "fewshot-model"
FORMAT_VERSION = 2
HEAD_FILE = "head.skops"
ENCODER_FOLDER = "encoder"
_LEGACY_SETFIT = "fewshot_setfit.json"
_LEGACY_CLI = "fewshot-model.json"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.")


# -- writing ---------------------------------------------------------------------------


def write_encoder(loaded, folder: Path, *, pooling: str | None = None, max_length=None) -> None:
    """Save a loaded encoder as a Hugging Face folder (safetensors + tokenizer).

    With ``pooling``, also the sentence-transformers module files, so
    ``SentenceTransformer(folder)`` embeds as fewshot does.
    """
    from ._loading import quiet_transformers

    folder = Path(folder)
    with quiet_transformers():
        loaded.model.save_pretrained(folder, safe_serialization=True)
    loaded.tokenizer.save_pretrained(folder)
    if pooling is None:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    _write_json(folder / "modules.json", modules)
    _write_json(
        folder / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False}
    )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": loaded.hidden_size,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    })


def encoder_to_bytes(loaded) -> dict[str, bytes]:
    """An encoder's saved files as ``{relative path: bytes}`` (how a pickle carries weights)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_encoder(loaded, Path(tmp))
        return {
            str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
        }


def encoder_from_bytes(files: dict, device="auto"):
    """The encoder :func:`encoder_to_bytes` wrote, loaded again (safetensors only)."""
    from ._loading import load_saved_body

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise ValueError(f"refusing to write {name!r} outside the temporary folder.")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return load_saved_body(tmp, device)


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.random.RandomState):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _stored_params(estimator, drop=()) -> dict:
    params = estimator.get_params(deep=False)
    return {k: v for k, v in params.items() if k not in drop}


def save_model(estimator, directory, *, metadata=None, setfit_compatible: bool = False) -> Path:
    """Write a fitted fewshot model to ``directory`` (created if needed).

    Parameters
    ----------
    estimator : SetFitClassifier or Pipeline
        A fitted :class:`~fewshot.SetFitClassifier`, or a fitted
        ``Pipeline([("embed", DistilEmbedder(...)), ..., (name, classifier)])`` whose steps
        after the embedder are scikit-learn estimators.
    directory : str or path-like
    metadata : dict, optional
        JSON-serialisable notes stored in the manifest (the CLI records its columns).
    setfit_compatible : bool, default=False
        For a SetFitClassifier: also write ``config_setfit.json`` and setfit's pickled
        ``model_head.pkl`` so ``setfit.SetFitModel.from_pretrained`` loads the folder.
        fewshot never reads that pickle.

    Returns
    -------
    Path
        The folder.

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
    import skops.io
    from sklearn.utils.validation import check_is_fitted

    from . import __version__
    from .setfit import SetFitClassifier

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fewshot_version": __version__,
        "metadata": dict(metadata or {}),
    }
    if isinstance(estimator, SetFitClassifier):
        check_is_fitted(estimator, "head_")
        write_encoder(
            estimator.body_, folder, pooling=estimator.pooling, max_length=estimator.max_length_
        )
        head = estimator.head_
        manifest.update(
            kind="setfit",
            params=_stored_params(estimator, drop=("head",)),
            default_head=estimator.head is None,
            fitted=estimator._fitted_state(),
            classes=estimator.classes_.tolist(),
        )
        if setfit_compatible:
            _write_setfit_files(estimator, folder)
    else:
        embedder, head = _split_pipeline(estimator)
        check_is_fitted(head)
        from ._params import embedding_plan

        plan_loaded = embedding_plan(embedder).loaded
        write_encoder(plan_loaded, folder / ENCODER_FOLDER)
        manifest.update(
            kind="pipeline",
            params=_stored_params(embedder, drop=("cache", "progress")),
            steps=[name for name, _ in estimator.steps],
            classes=np.asarray(head.classes_).tolist(),
            base_model={
                "model": _model_identity(embedder.model),
                "revision": embedder.revision,
                "fingerprint": plan_loaded.fingerprint(),
            },
        )
        if setfit_compatible:
            raise ValueError("setfit_compatible=True applies to a SetFitClassifier only.")
    skops.io.dump(head, folder / HEAD_FILE)
    _write_json(folder / MANIFEST, manifest)
    return folder


def _model_identity(model) -> str:
    """A model reference for the record: local folders as absolute paths."""
    name = os.path.expanduser(os.fspath(model))
    return os.path.abspath(name) if os.path.isdir(name) else os.fspath(model)


def _split_pipeline(estimator):
    """``(DistilEmbedder, head)`` of a fewshot pipeline, or a clear error."""
    from sklearn.pipeline import Pipeline

    from .embedder import DistilEmbedder

    if not (isinstance(estimator, Pipeline) and len(estimator.steps) >= 2
            and isinstance(estimator.steps[0][1], DistilEmbedder)):
        raise TypeError(
            f"save_model takes a fitted SetFitClassifier or a Pipeline whose first step is "
            f"a DistilEmbedder, got {type(estimator).__name__}."
        )
    rest = estimator[1:]
    return estimator.steps[0][1], (rest.steps[0][1] if len(rest.steps) == 1 else rest)


def _write_setfit_files(estimator, folder: Path) -> None:
    import joblib

    labels = None if estimator.multilabel_ else [str(c) for c in estimator.classes_]
    _write_json(folder / "config_setfit.json", {"normalize_embeddings": False, "labels": labels})
    joblib.dump(estimator.head_, folder / "model_head.pkl")


# -- reading ---------------------------------------------------------------------------


def read_manifest(folder, *, what: str = "fewshot model") -> dict:
    """The manifest of a saved folder (a fewshot 0.1 SetFit marker is converted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist.")
    if (folder / MANIFEST).is_file():
        manifest = _read_json(folder / MANIFEST)
    elif (folder / _LEGACY_SETFIT).is_file():
        manifest = _from_legacy_setfit(_read_json(folder / _LEGACY_SETFIT))
    elif (folder / _LEGACY_CLI).is_file():
        raise ValueError(
            f"{str(folder)!r} was written by fewshot 0.1's `fewshot train`, whose "
            "pipeline.skops could be rewritten to run code when loaded; it is not loaded. "
            "Train it again with this version (`fewshot train ...`)."
        )
    else:
        raise ValueError(
            f"{str(folder)!r} is not a {what} folder saved by fewshot: it has no {MANIFEST}. "
            "Save one with save_model(estimator, folder), SetFitClassifier.save(folder) or "
            "`fewshot train`."
        )
    if manifest.get("format") != FORMAT or int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{str(folder)!r} holds format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; this fewshot reads {FORMAT!r} up to "
            f"version {FORMAT_VERSION}. Upgrade fewshot."
        )
    return manifest


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not readable JSON ({exc}).") from exc


def _from_legacy_setfit(marker: dict) -> dict:
    return {
        "format": FORMAT,
        "format_version": 1,
        "fewshot_version": marker.get("fewshot_version"),
        "kind": "setfit",
        "params": marker["params"],
        "default_head": marker.get("default_head", True),
        "fitted": {key: marker[key] for key in
                   ("layer", "max_length", "multilabel", "n_pairs", "train_loss")},
        "classes": marker["classes"],
        "metadata": {},
    }


def _load_head(folder: Path):
    import skops.io

    file = folder / HEAD_FILE
    if not file.is_file():
        raise ValueError(f"{str(folder)!r} has no {HEAD_FILE}; the folder is incomplete.")
    untrusted = skops.io.get_untrusted_types(file=file)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise ValueError(
            f"The head in {str(folder)!r} uses types outside scikit-learn and numpy "
            f"({foreign}); refusing to load them. Load it with skops yourself if you trust it."
        )
    return skops.io.load(file, trusted=untrusted)


def _check_remote_code(folder: Path, params: dict, trust_remote_code: bool) -> None:
    if params.get("trust_remote_code") and not trust_remote_code:
        raise ValueError(
            f"{str(folder)!r} was saved with trust_remote_code=True: loading it could run "
            "Python code from a model folder, so it is refused. If you have read that code "
            "and trust it, pass trust_remote_code=True to load_model (--trust-remote-code "
            "on the command line)."
        )


def load_model(directory, *, model=None, device="auto", trust_remote_code: bool = False):
    """Load a model folder written by :func:`save_model`, ``SetFitClassifier.save`` or the CLI.

    Parameters
    ----------
    directory : str or path-like
    model : str or path-like, optional
        For a pipeline folder: embed with this encoder instead of the copy in the
        folder (it must be the same weights when the folder recorded their fingerprint).
        A SetFit folder holds its own fine-tuned encoder and takes no ``model``.
    device : "auto", str or torch.device, default="auto"
    trust_remote_code : bool, default=False
        Allow a folder saved with ``trust_remote_code=True`` to load (its model code
        then runs). Never implied by anything stored in the folder.

    Returns
    -------
    SetFitClassifier or Pipeline
        Predicts exactly as the estimator that was saved.
    """
    folder = Path(directory)
    manifest = read_manifest(folder)
    params = dict(manifest.get("params") or {})
    _check_remote_code(folder, params, trust_remote_code)
    kind = manifest.get("kind")
    if kind == "setfit":
        if model is not None:
            raise ValueError(
                f"{str(folder)!r} holds its own fine-tuned encoder; model= is not used for "
                "a SetFit folder."
            )
        from .setfit import SetFitClassifier

        return SetFitClassifier._from_folder(folder, manifest, _load_head(folder), device)
    if kind == "pipeline":
        return _load_pipeline(folder, manifest, params, model, device, trust_remote_code)
    raise ValueError(f"{str(folder)!r} holds an unknown model kind {kind!r}; upgrade fewshot.")


def _load_pipeline(folder, manifest, params, model, device, trust_remote_code):
    from sklearn.pipeline import Pipeline

    from ._params import load_model_for
    from .embedder import DistilEmbedder

    head = _load_head(folder)
    base = manifest.get("base_model") or {}
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
    embedder = DistilEmbedder(**params)
    if model is not None and base.get("fingerprint"):
        found = load_model_for(params).fingerprint()
        if found is not None and found != base["fingerprint"]:
            raise ValueError(
                f"model={os.fspath(model)!r} is not the encoder {str(folder)!r} was trained "
                f"with ({base.get('model')!r}): its files differ. Pass that model."
            )
    names = manifest.get("steps") or ["embed", "classify"]
    rest = head.steps if isinstance(head, Pipeline) else [(names[-1], head)]
    return Pipeline([(names[0], embedder), *rest])
