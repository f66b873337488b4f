"""What made a fitted model: versions, base model, training data, seeds, parameters.

Every saved fewshot folder (and every exported ONNX file) records this in its manifest
so a team can audit a model and rebuild it:

- ``versions``: fewshot, torch, transformers and scikit-learn (:func:`package_versions`);
- ``base_model``: the pretrained model as it was loaded (:func:`base_record`): the id or
  folder asked for, the revision asked for, the commit the hub resolved it to (a branch
  name alone is not a pin) and the content fingerprint of its files;
- ``training_data``: size, class counts and a hash of the texts and labels, never the
  texts themselves (:func:`training_data_record`);
- ``seeds`` and ``estimator`` (every parameter, nested estimators included);
- ``created_at``: UTC, ISO 8601.

Estimators capture the base and data records during ``fit`` (``base_model_``,
``training_data_``, ``seeds_``), since only then are the texts and the pretrained model
at hand. Loading checks a manifest with :func:`check_versions` (one warning naming
every package whose version differs) and, where the base weights come from elsewhere
(an adapter on a shared base), :func:`check_base`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import warnings
from collections import Counter

import numpy as np

__all__ = [
    "PACKAGES",
    "base_license",
    "base_record",
    "check_base",
    "check_versions",
    "created_at",
    "estimator_record",
    "hub_commit",
    "model_identity",
    "package_versions",
    "provenance_of",
    "public_module",
    "restore_provenance",
    "seed_record",
    "training_data_record",
]

# The packages whose versions decide what a saved model computes, by distribution name.
PACKAGES = ("fewshot", "torch", "transformers", "scikit-learn")
_MODULES = {"fewshot": "fewshot", "torch": "torch", "transformers": "transformers"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def package_versions() -> dict[str, str | None]:
    """``{package: version}`` for :data:`PACKAGES` in this process (None if missing)."""
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        module = _MODULES.get(name)
        try:
            version = (
                __import__(module).__version__ if module is not None else metadata.version(name)
            )
        except (ImportError, AttributeError, metadata.PackageNotFoundError):
            version = None
        versions[name] = str(version) if version is not None else None
    return versions


def created_at() -> str:
    """The current UTC time, ISO 8601 to the second (``2025-01-31T12:00:00Z``)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


# -- the base model --------------------------------------------------------------------


def model_identity(model) -> str:
    """A model reference for the record: local folders as absolute paths, ids as given."""
    name = os.path.expanduser(os.fspath(model))
    return os.path.abspath(name) if os.path.isdir(name) else os.fspath(model)


def hub_commit(folder) -> str | None:
    """The commit of a Hugging Face cache snapshot folder, else None.

    The hub cache keeps each resolved revision in
    ``.../models--<org>--<name>/snapshots/<commit>/``, so a model loaded from there was
    resolved to that commit whatever branch or tag was asked for.
    """
    if folder is None:
        return None
    parts = os.path.normpath(os.fspath(folder)).split(os.sep)
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-1] if _COMMIT.match(parts[-1]) else None
    return None


def base_license(folder) -> str | None:
    """The ``license`` in a model folder's README.md YAML front matter, if it states one."""
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, "README.md"), encoding="utf-8") as handle:
            text = handle.read(100_000)
    except OSError:
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.DOTALL)
    if match is None:
        return None
    import yaml

    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    value = front.get("license") if isinstance(front, dict) else None
    return str(value) if isinstance(value, (str, int, float)) else None


def base_record(model, revision, loaded) -> dict:
    """What the pretrained model was, as loaded: the record a manifest keeps.

    Parameters
    ----------
    model : str or path-like
        The model id or folder the estimator asked for.
    revision : str or None
        The revision it asked for (a branch, tag or commit; None for the default).
    loaded : LoadedModel
        The shared pretrained model (``fewshot._core.loading.get_model``).

    Returns
    -------
    dict
        ``{"model", "revision", "commit", "fingerprint", "license"}``: ``commit`` is
        the hub commit the revision resolved to (None for a local folder), and
        ``fingerprint`` the content hash of its weight, config and tokenizer files
        (``LoadedModel.fingerprint``).
    """
    folder = getattr(loaded, "folder", None)
    return {
        "model": model_identity(model),
        "revision": revision,
        "commit": hub_commit(folder),
        "fingerprint": loaded.fingerprint(),
        "license": base_license(folder),
    }


def check_base(manifest_base, loaded, *, where: str = "this folder") -> None:
    """Refuse a base model whose files are not the ones a saved model was trained on.

    For folders that hold only part of a model (an adapter) and take their base from
    elsewhere. A full fewshot folder holds its own weights and needs no such check.

    Parameters
    ----------
    manifest_base : dict
        The manifest's ``base_model`` record (:func:`base_record`).
    loaded : LoadedModel
        The base model about to be used.
    where : str
        Names the saved model in the message.

    Raises
    ------
    ValueError
        When the fingerprints differ, or when ``loaded`` has none to compare (its files
        changed since it was loaded, or it is not a model loaded from a folder).
    """
    expected = (manifest_base or {}).get("fingerprint")
    if not expected:
        return
    wanted = _describe_base(manifest_base)
    given = repr(getattr(loaded, "name", "?"))
    found = loaded.fingerprint()
    if found is None:
        raise ValueError(
            f"the base model {given} cannot be checked against the encoder {where} was "
            f"trained on ({wanted}): its files changed since it was loaded, or it was not "
            "loaded from a model folder. Call fewshot.clear_caches() and load it again."
        )
    if found != expected:
        raise ValueError(
            f"the base model {given} is not the encoder {where} was trained on ({wanted}): "
            f"its files differ (fingerprint {found[:12]}..., expected {expected[:12]}...). "
            "Pass that model (from the hub: revision=<the recorded commit>)."
        )


def _describe_base(base: dict) -> str:
    text = repr(base.get("model"))
    if base.get("commit"):
        text += f" at commit {base['commit']}"
    elif base.get("revision"):
        text += f" at revision {base['revision']!r}"
    return text


# -- training data ---------------------------------------------------------------------


def _label_value(label):
    """A label as the JSON value the hash covers (numpy scalars as Python values)."""
    if isinstance(label, np.ndarray):
        return [_label_value(v) for v in label.tolist()]
    if isinstance(label, (list, tuple)):
        return [_label_value(v) for v in label]
    if isinstance(label, np.generic):
        return label.item()
    if label is None or isinstance(label, (str, int, float, bool)):
        return label
    return str(label)


def training_data_record(texts, y=None) -> dict:
    """Size, class counts and hash of training data; the texts themselves are not kept.

    The hash is the SHA-256 of the UTF-8 bytes of the canonical JSON of the list of
    ``[text, label]`` pairs in input order::

        json.dumps([[text, label], ...], ensure_ascii=False, separators=(",", ":"))

    where a label is its plain Python value (``np.str_("a")`` -> ``"a"``,
    ``np.int64(1)`` -> ``1``; an int and a str label hash differently), a multi-label
    indicator row is the list of its values, and a label is ``null`` when no ``y`` was
    given. Any other label type is hashed as its ``str``.

    Parameters
    ----------
    texts : sequence of str
        The training texts, as the estimator received them.
    y : array-like of shape (n_samples,) or (n_samples, n_labels), optional
        Their labels.

    Returns
    -------
    dict
        ``{"n_samples", "class_counts", "sha256"}``. ``class_counts`` maps ``str(label)``
        to its count (sorted by label); for a 2-D ``y`` it maps each column index to the
        number of rows where it is set; None without ``y``.

    Examples
    --------
    >>> record = training_data_record(["good", "bad", "fine"], ["pos", "neg", "pos"])
    >>> record["n_samples"], record["class_counts"]
    (3, {'neg': 1, 'pos': 2})
    """
    texts = [str(t) for t in texts]
    labels = None
    if y is not None:
        array = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
        if len(array) == len(texts):
            labels = [_label_value(row) for row in array]
    pairs = [[text, None if labels is None else labels[i]] for i, text in enumerate(texts)]
    payload = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return {
        "n_samples": len(texts),
        "class_counts": None if labels is None else _class_counts(labels),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }


def _class_counts(labels: list) -> dict[str, int]:
    if labels and isinstance(labels[0], list):
        totals = np.asarray(labels, dtype=float).sum(axis=0)
        return {str(j): int(total) for j, total in enumerate(totals)}
    counts = Counter(labels)
    try:
        order = sorted(counts)
    except TypeError:  # mixed types: order by their text
        order = sorted(counts, key=str)
    return {str(label): int(counts[label]) for label in order}


# -- parameters and seeds --------------------------------------------------------------


def _json_value(value):
    """A parameter value as JSON: estimators described, other objects by their repr."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return estimator_record(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def estimator_record(estimator) -> dict:
    """Every parameter of an estimator as JSON, nested estimators (and steps) included.

    Returns
    -------
    dict
        ``{"class": "module.Name", "params": {...}}``; a value that is not JSON is
        recorded as its ``repr`` (a cache object, a ``RandomState``).
    """
    kind = type(estimator)
    params = estimator.get_params(deep=False)
    if "steps" in params:  # a Pipeline: its steps in order, each described
        params = dict(params, steps=[[name, _json_value(step)] for name, step in params["steps"]])
    return {
        "class": f"{public_module(kind.__module__)}.{kind.__qualname__}",
        "params": {name: _json_value(value) for name, value in params.items()},
    }


def public_module(module: str) -> str:
    """The import path users know: ``fewshot.setfit._classifier`` -> ``fewshot.setfit``.

    Private modules inside fewshot's public packages are dropped; the package exports the
    name. Other libraries' paths are recorded as they are.
    """
    parts = module.split(".")
    if parts[0] != "fewshot":
        return module
    public = [parts[0]]
    for part in parts[1:]:
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join(public)


def seed_record(estimator) -> dict | None:
    """The seeds a fit used: an estimator's ``seeds_`` or every ``random_state`` in it."""
    seeds = getattr(estimator, "seeds_", None)
    if seeds is not None:
        return dict(seeds)
    if not hasattr(estimator, "get_params"):
        return None
    found = {
        name: _json_value(value)
        for name, value in estimator.get_params(deep=True).items()
        if name == "random_state" or name.endswith("__random_state")
    }
    return found or None


def provenance_of(estimator, loaded=None) -> dict:
    """The manifest's provenance fields for a fitted estimator.

    Parameters
    ----------
    estimator : SetFitClassifier, HeadClassifier, DistilEmbedder or Pipeline
        Fitted; for a Pipeline the records come from its first step (the embedder),
        which saw the training texts and labels: a scikit-learn Pipeline gives no
        other place to learn them.
    loaded : LoadedModel, optional
        The pretrained model, for a base record when the estimator has none (fitted by
        an older fewshot).

    Returns
    -------
    dict
        ``{"base_model", "training_data", "seeds", "estimator"}``.
    """
    source = estimator
    steps = getattr(estimator, "steps", None)
    if steps:
        source = steps[0][1]
    base = getattr(source, "base_model_", None)
    if base is None and loaded is not None and hasattr(source, "model"):
        base = base_record(source.model, getattr(source, "revision", None), loaded)
    return {
        "base_model": None if base is None else dict(base),
        "training_data": getattr(source, "training_data_", None),
        "seeds": seed_record(estimator),
        "estimator": estimator_record(estimator),
    }


def restore_provenance(estimator, manifest: dict, keys=("base_model", "training_data", "seeds")):
    """Set ``<key>_`` on a loaded estimator from its manifest, so a re-save keeps them."""
    for key in keys:
        if manifest.get(key) is not None:
            setattr(estimator, f"{key}_", manifest[key])


# -- loading checks --------------------------------------------------------------------


def check_versions(manifest: dict, where: str) -> list[str]:
    """Warn once, naming every package whose version differs from the one that saved.

    Returns the differing package names (empty when all match or none were recorded).
    """
    saved = manifest.get("versions") or {}
    here = package_versions()
    differ = [
        name for name in PACKAGES if saved.get(name) is not None and saved[name] != here.get(name)
    ]
    if differ:
        detail = ", ".join(f"{name} {saved[name]} (here {here.get(name)})" for name in differ)
        warnings.warn(
            f"{where} was saved with other package versions: {detail}. It loads, but "
            "predictions may differ slightly; install those versions to reproduce it "
            "exactly.",
            UserWarning,
            stacklevel=3,
        )
    return differ
