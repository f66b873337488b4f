"""``OnnxClassifier`` and ``read_manifest``: a file's manifest, session and batches.

What the runtime promises is described in :mod:`fewshot.runtime`.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np

__all__ = ["MANIFEST_KEY", "TOKENIZER_KEY", "OnnxClassifier", "read_manifest"]

# Metadata keys of an exported file (ONNX metadata_props).
MANIFEST_KEY = "fewshot.manifest"
TOKENIZER_KEY = "fewshot.tokenizer_json"
FORMAT = "fewshot-onnx"
FORMAT_VERSION = 2  # 2: the manifest may hold a prompt
CUSTOM_DOMAIN = "ai.onnx.contrib"


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            "fewshot.runtime needs onnxruntime, which is not installed. Install the extra: "
            "pip install 'fewshot[runtime]'"
        ) from exc
    return onnxruntime


def _extensions_library() -> str:
    """Path of the onnxruntime-extensions custom-op library.

    Found without importing the ``onnxruntime_extensions`` package: its ``__init__``
    imports onnx, and through its converters torch and transformers when they are
    installed, which would cost seconds and hundreds of MB at start-up.
    """
    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None:
        raise ImportError(
            "This file tokenises texts inside the graph with onnxruntime-extensions, which "
            "is not installed. Install the extra: pip install 'fewshot[runtime]' (or export "
            "with inputs='token_ids' for runtimes without the extensions)."
        )
    for folder in spec.submodule_search_locations or ():
        for name in sorted(os.listdir(folder)):
            if name.startswith("_extensions_pydll") and name.endswith((".so", ".pyd", ".dylib")):
                return os.path.join(folder, name)
    from onnxruntime_extensions import get_library_path  # an unusual layout: ask the package

    return get_library_path()


def _check_manifest(manifest: dict, where: str) -> dict:
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{where} is not a fewshot export (no {MANIFEST_KEY!r} manifest).")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{where} holds export format version {manifest.get('format_version')}; this "
            f"fewshot reads up to version {FORMAT_VERSION}. Upgrade fewshot."
        )
    return manifest


def read_manifest(path) -> dict:
    """The manifest stored in an exported ONNX file (a dict).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`fewshot.export.to_onnx`.

    Returns
    -------
    dict
        ``kind``, ``inputs``, ``outputs``, ``classes``, ``max_length``, ``checks``
        (the agreement measured at export) and the rest of the manifest.
    """
    _, manifest = _read_checked(path)
    return manifest


def _read_checked(path) -> tuple[bytes, dict]:
    """The file's bytes and manifest, once the bytes are read as data and pass the audit.

    Nothing outside the standard ops and the tokenizer runs, and nothing is read from
    other files (:mod:`fewshot.runtime._audit`); ONNX Runtime gets these same bytes.
    """
    from ._audit import UntrustedGraphError, audit_onnx

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file {path!r} does not exist.")
    with open(path, "rb") as file:
        data = file.read()
    audit = audit_onnx(data, repr(path))
    refused = audit.refused
    if refused:
        raise UntrustedGraphError(
            f"{path!r} holds {', '.join(refused)}: a fewshot export runs standard ONNX ops "
            "and its tokenizer only, from one file, so it is refused and nothing in it ran. "
            "Export the model again with fewshot export."
        )
    return data, _manifest_of(audit.metadata, path)


def _manifest_of(metadata: dict, where: str) -> dict:
    if MANIFEST_KEY not in metadata:
        raise ValueError(f"{where!r} is not a fewshot export (no {MANIFEST_KEY!r} manifest).")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except ValueError as exc:
        raise ValueError(f"{where!r} has an unreadable {MANIFEST_KEY!r} manifest ({exc}).") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{where!r} has a {MANIFEST_KEY!r} manifest that is not an object.")
    return _check_manifest(manifest, repr(where))


def _session(ort, model: bytes, options, providers):
    """An InferenceSession with the extensions' custom ops registered when installed.

    Registering is a library load of a few milliseconds; when the extensions are not
    installed, a file that needs them fails here with a message saying what to install.
    """
    try:
        options.register_custom_ops_library(_extensions_library())
    except ImportError as missing:
        try:
            return ort.InferenceSession(model, options, providers=providers)
        except Exception as exc:
            if CUSTOM_DOMAIN in str(exc):
                raise missing from exc
            raise
    return ort.InferenceSession(model, options, providers=providers)


class OnnxClassifier:
    """A fewshot model exported to ONNX, run by ONNX Runtime: texts in, labels out.

    Works like the estimator it was exported from (``predict``, ``predict_proba``,
    ``transform``, ``classes_``) without torch, transformers or scikit-learn. Files that
    take token ids (``to_onnx(..., inputs="token_ids")``) take lists of token ids
    instead of texts.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`fewshot.export.to_onnx` or ``fewshot export``.
    n_threads : int, optional
        ONNX Runtime intra-op threads; default: ONNX Runtime's choice (one per core).
    batch_size : int, default=32
        Texts per ONNX Runtime call; inputs are sorted by length first so batches pad
        little, and results come back in input order.
    providers : list of str, optional
        ONNX Runtime execution providers, e.g. ``["CUDAExecutionProvider",
        "CPUExecutionProvider"]``; default CPU. (The in-graph tokenizer always runs on
        the CPU.)

    Attributes
    ----------
    manifest : dict
        The file's manifest (see :func:`read_manifest`).
    classes_ : ndarray or None
        Class labels in probability-column order; None for a feature extractor.
    kind : str
        ``"setfit"``, ``"pipeline"``, ``"head"`` or ``"embedder"``.
    inputs : str
        ``"text"`` or ``"token_ids"``.
    prompt : str or None
        The prompt of the exported model, applied to every text before tokenising.

    Examples
    --------
    >>> clf = OnnxClassifier("model.onnx")  # doctest: +SKIP
    >>> clf.predict(["late again"])  # doctest: +SKIP
    array(['delivery'], dtype=object)
    """

    def __init__(self, path, *, n_threads=None, batch_size: int = 32, providers=None):
        ort = _import_onnxruntime()
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"ONNX file {self.path!r} does not exist.")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ValueError(f"n_threads must be None or an int >= 1, got {n_threads!r}.")
        self.batch_size = batch_size
        self.n_threads = n_threads
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if n_threads is not None:
            options.intra_op_num_threads = n_threads
            options.inter_op_num_threads = 1
        data, self.manifest = _read_checked(self.path)
        self._session = _session(ort, data, options, list(providers or ["CPUExecutionProvider"]))
        self.kind = self.manifest.get("kind")
        self.inputs = self.manifest.get("inputs", "text")
        classes = self.manifest.get("classes")
        self.classes_ = None if classes is None else _as_labels(classes, self.manifest)
        self.max_length = int(self.manifest.get("max_length") or 0) or None
        self.pad_token_id = int(self.manifest.get("pad_token_id", 0))
        self.prompt = self.manifest.get("prompt")
        # Stored split at export, so this file needs no template parser of its own.
        self._prompt_parts = tuple(self.manifest.get("prompt_parts") or ("", ""))
        self._outputs = [o.name for o in self._session.get_outputs()]

    def __repr__(self) -> str:
        classes = "" if self.classes_ is None else f", classes={self.classes_.tolist()!r}"
        return f"OnnxClassifier({self.path!r}, kind={self.kind!r}, inputs={self.inputs!r}{classes})"

    # -- public API ------------------------------------------------------------------

    def predict(self, X) -> np.ndarray:
        """Predicted class per text (or per token-id sequence).

        Parameters
        ----------
        X : sequence of str, or of token-id sequences for a ``token_ids`` file

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.predict_with_proba(X)[0]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (float64).

        Parameters
        ----------
        X : sequence of str, or of token-id sequences for a ``token_ids`` file

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self.predict_with_proba(X)[1]

    def predict_with_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one run (what a server wants).

        Parameters
        ----------
        X : sequence of str, or of token-id sequences for a ``token_ids`` file

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        probabilities : ndarray of shape (n_samples, n_classes)
        """
        if self.classes_ is None:
            raise TypeError(
                f"{self.path!r} is a feature extractor (a DistilEmbedder export): it has no "
                "classes; use transform."
            )
        labels, proba = self._run(["label", "probabilities"], X)
        if self.manifest.get("class_type") == "bool":
            labels = labels.astype(bool)
        return labels, proba.astype(np.float64, copy=False)

    def transform(self, X) -> np.ndarray:
        """Features: a DistilEmbedder's output, or the embedding a classifier's head sees.

        Parameters
        ----------
        X : sequence of str, or of token-id sequences for a ``token_ids`` file

        Returns
        -------
        ndarray of shape (n_samples, n_features), float32
        """
        return self._run(["features"], X)[0]

    def run(self, outputs, X) -> list[np.ndarray]:
        """Any of the file's outputs (``"label"``, ``"probabilities"``, ``"features"``).

        Parameters
        ----------
        outputs : list of str
        X : sequence of str, or of token-id sequences for a ``token_ids`` file

        Returns
        -------
        list of ndarray
            One array per requested output, rows in input order.
        """
        unknown = [name for name in outputs if name not in self._outputs]
        if unknown:
            raise ValueError(f"{self.path!r} has no output {unknown}; it has {self._outputs}.")
        return self._run(list(outputs), X)

    # -- internals --------------------------------------------------------------------

    def _rows(self, X) -> list:
        if isinstance(X, str):
            raise TypeError("X must be a sequence of texts, not one str; wrap it: [text].")
        if isinstance(X, np.ndarray):
            if X.ndim == 2 and self.inputs == "token_ids":
                return [list(row) for row in X]
            X = X.tolist()
        rows = list(X)
        if self.inputs == "text":
            for i, text in enumerate(rows):
                if not isinstance(text, str):
                    raise TypeError(
                        f"X[{i}] is {type(text).__name__}, not str; every item must be a text."
                    )
            before, after = self._prompt_parts
            if before or after:
                rows = [before + text + after for text in rows]
        else:
            for i, ids in enumerate(rows):
                if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
                    raise TypeError(
                        f"X[{i}] is {type(ids).__name__}; this file takes token ids (one "
                        "list of ints per text), tokenised with the tokenizer.json stored in "
                        f"its metadata ({TOKENIZER_KEY!r})."
                    )
                if len(ids) == 0:
                    raise ValueError(f"X[{i}] is empty; a sequence needs at least one token.")
                if self.max_length and len(ids) > self.max_length:
                    raise ValueError(
                        f"X[{i}] has {len(ids)} tokens; this model takes at most "
                        f"{self.max_length} (truncate when tokenising)."
                    )
        return rows

    def _feeds(self, rows) -> dict:
        if self.inputs == "text":
            return {"text": np.asarray(rows, dtype=object)}
        length = max(len(ids) for ids in rows)
        input_ids = np.full((len(rows), length), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = np.asarray(ids, dtype=np.int64)
            mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def _empty(self, name):
        for output in self._session.get_outputs():
            if output.name == name:
                width = _width(output, self.classes_)
                if name == "label":
                    dtype = self.classes_.dtype if self.classes_ is not None else object
                    return np.empty((0,), dtype=dtype)
                return np.empty(
                    (0, width), dtype=np.float64 if name == "probabilities" else np.float32
                )
        raise ValueError(f"no output {name!r}")

    def _run(self, names: list[str], X) -> list[np.ndarray]:
        rows = self._rows(X)
        if not rows:
            return [self._empty(name) for name in names]
        # Longest first, so similar lengths share a batch and padding stays small.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        parts: list[list[np.ndarray]] = [[] for _ in names]
        for start in range(0, len(order), self.batch_size):
            batch = [rows[i] for i in order[start : start + self.batch_size]]
            outputs = self._session.run(names, self._feeds(batch))
            for k, value in enumerate(outputs):
                parts[k].append(value)
        inverse = np.empty(len(order), dtype=np.intp)
        inverse[np.asarray(order)] = np.arange(len(order))
        return [np.concatenate(chunks)[inverse] for chunks in parts]


def _width(output, classes) -> int:
    shape = output.shape
    if len(shape) > 1 and isinstance(shape[1], int):
        return shape[1]
    return 0 if classes is None else len(classes)


def _as_labels(classes: list, manifest: dict) -> np.ndarray:
    kind = manifest.get("class_type")
    if kind == "str":
        return np.asarray(classes, dtype=object)
    if kind == "bool":
        return np.asarray(classes, dtype=bool)
    if kind == "float":
        return np.asarray(classes, dtype=np.float64)
    return np.asarray(classes, dtype=np.int64)
